"""Matrix completion tasks: random low-rank targets and nested sets of observed entries.

Setting of Kleinman, Achille, Soatto & Kao, "Critical Learning Periods Emerge Even in Deep
Linear Networks" (arXiv 2308.12221), matrix-completion experiments (see
``shared/specs/critical_periods.md``):

* target  W = U Vᵀ / √r,  U, V ∈ R^{n×r} with i.i.d. N(0, 1) entries, then rescaled so that
  ‖W‖_F = ``frobenius`` (100 in the paper, for n = 100: entries of root-mean-square 1);
* observed entries: a uniformly random set of ``count`` of the n² entries, drawn without
  replacement.

"The first k observed entries" is defined by an *order*: a random permutation of the n² flat
indices (row-major, index i·n + j for entry (i, j)); the observed set of size k is the first k
indices of that order. Sets from one order are nested, so a deficit that shows only the first
1000 observed entries and a later phase that shows 2000 of them (the paper's experiment 2) use
one order with two counts.

Symbol → argument: n → ``n``, r → ``rank``, ‖W‖_F → ``frobenius``, k → ``count``.
Randomness comes from numpy's ``default_rng`` seeded with a ``SeedSequence`` that includes the
kind of draw and its sizes, so a target and an order with the same integer seed are independent
draws, and so are targets of different ranks or sizes with the same seed.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["low_rank_target", "observed_order", "mask_from_order", "observed_mask",
           "nested_masks"]

# Tags that separate the random streams of the two kinds of draw (arbitrary distinct integers).
_TARGET_TAG, _ORDER_TAG = 2308_12221_1, 2308_12221_2


def _int(name: str, value, low: int, high: int | None = None, what: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if v < low or (high is not None and v > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {rng}{what}, got {v}")
    return v


def low_rank_target(seed: int, n: int = 100, rank: int = 5,
                    frobenius: float = 100.0) -> np.ndarray:
    """The n×n target W = U Vᵀ/√r, U, V ~ i.i.d. N(0, 1) of shape (n, r), scaled to
    ‖W‖_F = ``frobenius`` (float64).

    The rank is exactly ``rank`` with probability one (U, V of full column rank). The 1/√r
    factor only fixes the scale before the rescaling, which then sets it exactly; it is kept to
    follow the paper's construction.
    """
    seed = _int("seed", seed, 0)
    n = _int("n", n, 1)
    rank = _int("rank", rank, 1, n, " (the rank of an n×n matrix)")
    if isinstance(frobenius, bool) or not isinstance(frobenius, numbers.Real) \
            or not np.isfinite(frobenius) or frobenius <= 0:
        raise ValueError(f"frobenius must be a positive finite number, got {frobenius!r}")
    rng = np.random.default_rng(np.random.SeedSequence([_TARGET_TAG, seed, n, rank]))
    u = rng.standard_normal((n, rank))
    v = rng.standard_normal((n, rank))
    w = u @ v.T / np.sqrt(rank)
    return w * (float(frobenius) / np.linalg.norm(w))


def observed_order(seed: int, n: int = 100) -> np.ndarray:
    """A uniformly random order of the n² flat entry indices (int64, row-major i·n + j).

    The observed set of size k is ``order[:k]`` (:func:`mask_from_order`), so sets drawn from
    one order are nested and each is a uniform random k-subset.
    """
    seed = _int("seed", seed, 0)
    n = _int("n", n, 1)
    rng = np.random.default_rng(np.random.SeedSequence([_ORDER_TAG, seed, n]))
    return rng.permutation(n * n).astype(np.int64)


def mask_from_order(order, count: int, n: int | None = None) -> np.ndarray:
    """Boolean n×n mask of the first ``count`` entries of ``order`` (from
    :func:`observed_order`); n defaults to √len(order)."""
    order = np.asarray(order)
    if order.ndim != 1 or not np.issubdtype(order.dtype, np.integer):
        raise ValueError("order must be a 1-d integer array (see observed_order)")
    size = order.size
    if n is None:
        n = int(round(np.sqrt(size)))
    n = _int("n", n, 1)
    if size != n * n or not np.array_equal(np.sort(order), np.arange(n * n)):
        raise ValueError(f"order must be a permutation of the {n * n} flat indices of an "
                         f"{n}×{n} matrix")
    count = _int("count", count, 1, n * n, f" (the number of entries of an {n}×{n} matrix)")
    mask = np.zeros(n * n, dtype=bool)
    mask[order[:count]] = True
    return mask.reshape(n, n)


def observed_mask(seed: int, n: int = 100, count: int = 2000) -> np.ndarray:
    """Boolean n×n mask of ``count`` uniformly random observed entries: the first ``count`` of
    ``observed_order(seed, n)``, so masks with one seed and growing counts are nested."""
    n = _int("n", n, 1)
    count = _int("count", count, 1, n * n, f" (the number of entries of an {n}×{n} matrix)")
    return mask_from_order(observed_order(seed, n), count, n)


def nested_masks(seed: int, n: int = 100, counts=(1000, 2000)) -> np.ndarray:
    """Masks of shape (len(counts), n, n), mask k observing the first ``counts[k]`` entries of
    one order. ``counts`` is strictly increasing (integers in [1, n²]), so that every mask
    contains the ones before it."""
    try:
        counts = list(counts)
    except TypeError:
        raise ValueError(f"counts must be a sequence of integers, got {counts!r}") from None
    if not counts:
        raise ValueError("counts must name at least one count")
    n = _int("n", n, 1)
    counts = [_int("counts", c, 1, n * n, f" (the number of entries of an {n}×{n} matrix)")
              for c in counts]
    if any(b <= a for a, b in zip(counts, counts[1:])):
        raise ValueError(f"counts must be strictly increasing (nested masks), got "
                         f"{tuple(counts)}")
    order = observed_order(seed, n)
    return np.stack([mask_from_order(order, c, n) for c in counts])
