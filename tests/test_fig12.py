"""The XOR + linear task (dlnfusion.data.xor_task) and the Figure 12 module on quick settings."""
import json
import math

import numpy as np
import pytest

from dlnfusion import Dataset
from dlnfusion.data import xor_task
from dlnfusion.data.xor import XOR_POINTS, linear_share, xa_only_loss, xor_alignment, xor_of
from dlnfusion.simulations import zhang2024_fig12 as fig12

N = 8192


def test_xor_values():
    # XOR(x_B) = -x_B1 x_B2: -1 where the signs agree, +1 where they differ.
    assert xor_of(XOR_POINTS).tolist() == [-1.0, 1.0, 1.0, -1.0]


def test_structure_and_balanced_design():
    d = xor_task(2.0, n_samples=N, seed=3)
    assert isinstance(d, Dataset)
    assert d.dims == (1, 2) and d.n_samples == N and d.names == ("A", "B")
    x_a, x_b, y = d.xs[0][:, 0], d.xs[1], d.y[:, 0]
    assert set(np.unique(x_b)) == {-1.0, 1.0}
    counts = {tuple(p): int(np.sum(np.all(x_b == p, axis=1))) for p in XOR_POINTS}
    assert set(counts.values()) == {N // 4}
    # The target is x_A plus the XOR of the B signs, with no noise.
    assert np.array_equal(y, x_a + xor_of(x_b))


def test_xor_part_has_no_linear_component():
    d = xor_task(1.0, n_samples=N, seed=0)
    x_b = d.xs[1]
    xor = xor_of(x_b)
    # Sums of ±1 are exact: for the balanced design these moments hold with no sampling error.
    assert np.all(np.mean(xor[:, None] * x_b, axis=0) == 0.0)   # <XOR(x_B) x_B> = 0
    assert np.mean(xor) == 0.0 and np.mean(xor ** 2) == 1.0     # so 1/2 Var(XOR) = 0.5
    assert np.array_equal(x_b.T @ x_b / N, np.eye(2))           # <x_B x_B^T> = I


@pytest.mark.parametrize("sigma_a", [0.5, 1.0, 3.0])
def test_linear_modality_statistics(sigma_a):
    # sigma_a is a variance. <x_A^2>/sigma_a is a mean of N chi^2_1 draws, of standard deviation
    # sqrt(2/N) = 1.6 %; given x_B, <x_A x_Bj> and <x_A> are exactly N(0, sigma_a/N). Five
    # standard deviations: a false failure has probability < 1e-6 per check (and the seeds are
    # fixed, so the test is deterministic).
    for seed in range(3):
        d = xor_task(sigma_a, n_samples=N, seed=seed)
        x_a, x_b, y = d.xs[0][:, 0], d.xs[1], d.y[:, 0]
        assert abs(np.mean(x_a ** 2) / sigma_a - 1) < 5 * math.sqrt(2 / N)
        assert abs(np.mean(x_a)) < 5 * math.sqrt(sigma_a / N)
        tol = 5 * math.sqrt(sigma_a / N)
        assert np.all(np.abs(np.mean(x_a[:, None] * x_b, axis=0)) < tol)
        # <y x_B> is that cross term alone: the XOR part contributes zero (to the rounding of
        # a float64 mean of N terms of size ~|y|, far below 1e-12).
        assert np.allclose(np.mean(y[:, None] * x_b, axis=0),
                           np.mean(x_a[:, None] * x_b, axis=0), rtol=0, atol=1e-12)


def test_seed_draws_only_x_a():
    a, b, c = xor_task(1.0, 64, seed=1), xor_task(1.0, 64, seed=1), xor_task(1.0, 64, seed=2)
    assert np.array_equal(a.xs[0], b.xs[0]) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.xs[0], c.xs[0])
    assert np.array_equal(a.xs[1], c.xs[1])
    # The same seed gives the same standard normal draws, scaled by sqrt(sigma_a).
    assert np.allclose(xor_task(4.0, 64, seed=1).xs[0], 2 * a.xs[0], rtol=1e-15)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sigma_a=0.0), "sigma_a"), (dict(sigma_a=-1.0), "sigma_a"),
    (dict(sigma_a=float("nan")), "sigma_a"), (dict(sigma_a=float("inf")), "sigma_a"),
    (dict(sigma_a="1"), "sigma_a"), (dict(sigma_a=True), "sigma_a"),
    (dict(sigma_a=1.0, n_samples=0), "n_samples"), (dict(sigma_a=1.0, n_samples=6), "n_samples"),
    (dict(sigma_a=1.0, n_samples=8.0), "n_samples"),
    (dict(sigma_a=1.0, n_samples=True), "n_samples"),
    (dict(sigma_a=1.0, seed=-1), "seed"), (dict(sigma_a=1.0, seed=1.5), "seed"),
])
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        xor_task(**kwargs)


def test_xor_of_shape_error():
    with pytest.raises(ValueError, match="x_b"):
        xor_of(np.ones((4, 3)))


def test_xa_only_loss_is_the_population_value():
    # L_A is the best fit of y from x_A alone; for the population it is 1/2 Var(XOR) = 0.5.
    # Its sampling error is O(1/sqrt(N)) (the fit of x_A is nearly exact).
    assert xa_only_loss(xor_task(2.0, N, seed=0)) == pytest.approx(0.5, abs=0.01)


def test_xor_alignment_and_linear_share():
    diag = np.array([[1.0, 1.0], [-2.0, 2.0], [0.5, -0.5]])
    assert xor_alignment(diag) == pytest.approx(1.0)
    assert xor_alignment(np.array([[1.0, 0.0], [0.0, -3.0]])) == 0.0
    assert linear_share(np.array([3.0, 0.0]), np.array([[0.0, 4.0], [0.0, 0.0]])) \
        == pytest.approx(9 / 25)


def test_quick_run(tmp_path):
    result = fig12.run(tmp_path, quick=True)
    for ext in ("png", "pdf"):
        assert (tmp_path / f"{fig12.ID}.{ext}").stat().st_size > 5000
    assert result["json"].endswith(f"{fig12.ID}.json")
    d = json.loads((tmp_path / f"{fig12.ID}.json").read_text())
    assert d["figure"] == "zhang2024-fig12"
    assert d["criterion"]["success_loss"] == 0.05 and "x_A" in d["criterion"]["text"]
    entries = d["success"]
    assert {(e["fusion"], e["sigma_a"]) for e in entries} == \
        {(f, s) for f in ("early", "late") for s in (1.0, 2.0, 3.0)}
    for e in entries:
        S = len(e["seeds"])
        assert S == len(fig12.QUICK_SEEDS) and len(e["final_loss"]) == S
        assert 0.0 <= e["success_rate"] <= 1.0
        assert e["n_success"] + e["n_plateau"] + e["n_partial"] == S
        assert e["success_rate"] == pytest.approx(
            np.mean(np.asarray(e["final_loss"]) < d["criterion"]["success_loss"]))
        if e["fusion"] == "late":
            # Late fusion learns the task in every seed, with both transitions in the budget.
            assert e["success_rate"] == 1.0 and max(e["final_loss"]) < 0.05
            assert all(t is not None for t in e["steps_second_transition"])
            assert min(e["xor_alignment"]) > 0.9
    reps = d["representative"]
    assert len(reps["late/2"]["W_B1"]) == fig12.WIDTH and len(reps["late/2"]["W_A1"]) == 100
