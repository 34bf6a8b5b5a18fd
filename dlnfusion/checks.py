"""The argument checks that several entry points share.

Each check takes the argument's public name and its value, returns the value in canonical form
(a Python int or float, a tuple of ints), and otherwise raises a ``ValueError`` that names the
argument and says what is accepted. Booleans are never accepted as numbers, and an integer
argument takes an integer type only (Python or numpy; ``2.0`` and ``2.5`` are refused), so that
a fractional value is never silently truncated.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

__all__ = ["integer", "positive_int", "nonnegative_int", "real", "positive", "nonnegative",
           "in_interval", "one_of", "seeds", "learning_rate", "level"]


def _scalar(value):
    """A number or a 0-d numeric array as a numpy scalar; None for anything else (booleans,
    strings, arrays with elements)."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or np.ndim(value) != 0:
        return None
    a = np.asarray(value)
    if a.dtype.kind not in "iuf":
        return None
    return a[()]


def _is_int(value) -> bool:
    v = _scalar(value)
    if v is None:
        return False
    return isinstance(v, np.integer)


def integer(name: str, value, low: int | None = None, what: str | None = None) -> int:
    """An integer (at least ``low`` when given)."""
    if not _is_int(value) or (low is not None and value < low):
        what = what or ("an integer" if low is None else f"an integer >= {low}")
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def positive_int(name: str, value) -> int:
    return integer(name, value, 1, "a positive integer")


def nonnegative_int(name: str, value) -> int:
    return integer(name, value, 0, "a non-negative integer")


def real(name: str, value, what: str = "a finite number") -> float:
    """A finite real number."""
    v = _scalar(value)
    if v is None or not np.isfinite(v):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(v)


def positive(name: str, value) -> float:
    v = real(name, value, "a positive finite number")
    if v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def nonnegative(name: str, value) -> float:
    v = real(name, value, "a non-negative finite number")
    if v < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return v


def in_interval(name: str, value, low: float, high: float, closed: str = "neither") -> float:
    """A finite number in the interval from ``low`` to ``high``; ``closed`` is 'neither',
    'left', 'right' or 'both'."""
    v = real(name, value)
    lo_ok = v >= low if closed in ("left", "both") else v > low
    hi_ok = v <= high if closed in ("right", "both") else v < high
    if not (lo_ok and hi_ok):
        left = "[" if closed in ("left", "both") else "("
        right = "]" if closed in ("right", "both") else ")"
        raise ValueError(f"{name} must lie in {left}{low:g}, {high:g}{right}, got {value!r}")
    return v


def one_of(name: str, value, choices: Iterable):
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def seeds(value, name: str = "seeds") -> tuple:
    """A non-empty sequence of integer seeds (a single integer is one seed)."""
    if _is_int(value):
        value = (value,)
    try:
        items = list(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer or a sequence of integers, "
                         f"got {value!r}") from None
    if not items:
        raise ValueError(f"{name} must name at least one seed")
    bad = [s for s in items if not _is_int(s) or s < 0]
    if bad:
        raise ValueError(f"{name} must be non-negative integers, got {bad[0]!r}")
    return tuple(int(s) for s in items)


def learning_rate(value, name: str = "lr") -> float:
    """A positive finite learning rate (nothing trains at 0)."""
    return positive(name, value)


def level(value, name: str = "level") -> float:
    """A crossing level strictly between 0 and 1."""
    return in_interval(name, value, 0.0, 1.0)
