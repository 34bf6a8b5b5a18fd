"""The shared argument checks: what each accepts, and errors that name the argument."""
import numpy as np
import pytest

from dlnfusion import checks


def test_integers():
    assert checks.positive_int("n", 3) == 3 and checks.positive_int("n", np.int64(2)) == 2
    assert checks.nonnegative_int("n", 0) == 0
    assert checks.integer("width", np.asarray(5), 2) == 5
    for bad in (0, -1, 2.5, 2.0, True, "3", np.nan, [1]):
        with pytest.raises(ValueError, match="^n must be a positive integer"):
            checks.positive_int("n", bad)
    with pytest.raises(ValueError, match="width must be an integer >= 2, got 1"):
        checks.integer("width", 1, 2)


def test_reals():
    assert checks.real("x", -2) == -2.0 and checks.positive("lr", np.float32(0.5)) == 0.5
    assert checks.nonnegative("alpha", 0) == 0.0
    for bad in (np.nan, np.inf, "1", None, True, np.ones(2)):
        with pytest.raises(ValueError, match="^x must be a finite number"):
            checks.real("x", bad)
    with pytest.raises(ValueError, match="lr must be a positive finite number, got 0"):
        checks.learning_rate(0)
    with pytest.raises(ValueError, match="beta must be a non-negative"):
        checks.nonnegative("beta", -1)


def test_intervals_choices_levels():
    assert checks.in_interval("rho", 0.5, -1, 1) == 0.5
    assert checks.in_interval("p", 1.0, 0, 1, closed="right") == 1.0
    with pytest.raises(ValueError, match=r"p must lie in \(0, 1\), got 1"):
        checks.in_interval("p", 1, 0, 1)
    with pytest.raises(ValueError, match=r"rho must lie in \[-1, 1\]"):
        checks.in_interval("rho", 1.5, -1, 1, closed="both")
    assert checks.level(0.5) == 0.5
    with pytest.raises(ValueError, match="level"):
        checks.level(1.0)
    assert checks.one_of("method", "gd", ("gd", "gf")) == "gd"
    with pytest.raises(ValueError, match=r"method must be one of \('gd', 'gf'\), got 'euler'"):
        checks.one_of("method", "euler", ("gd", "gf"))


def test_seeds():
    assert checks.seeds(range(3)) == (0, 1, 2) and checks.seeds(7) == (7,)
    assert checks.seeds([np.int64(1), 2]) == (1, 2)
    for bad, msg in (([1.7], "non-negative integers, got 1.7"), ([2.0], "got 2.0"), ([], "at least one"),
                     ([-1], "non-negative"), (None, "integer or a sequence"), ([True], "True")):
        with pytest.raises(ValueError, match=msg):
            checks.seeds(bad)
