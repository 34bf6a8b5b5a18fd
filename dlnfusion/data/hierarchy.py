"""The hierarchical task of Saxe et al. used by Kleinman, Achille, Soatto & Kao (2023).

Eight items with one-hot inputs (X = I₈) and 15 binary features: one root feature shared by all
items, one per half (2), one per quarter (4) and one per item (8). Item i has feature 1 (root),
feature 1 + 1 + i // 4 (its half), 1 + 2 + i // 2 (its quarter) and 1 + 6 + i (its leaf).

The statistics use the SUM convention: Σ = XᵀX = I, Σ_yx = YᵀX = Yᵀ, Σ_yy = YᵀY, so the
toolkit's population loss ½ tr[(W − W*)Σ(W − W*)ᵀ] + L* equals the paper's ½ Σ_items ‖y − Wx‖²
and its learning rate (0.01) carries over unchanged. (The spec writes Σ_yx = YᵀX/8, the mean
convention; the sum-loss dynamics at learning rate η are those of the mean loss at 8η, and the
mode strengths then approach the singular values of Yᵀ, 8 times those of YᵀX/8.)
The singular values of Yᵀ are √15, √7, √3, √3, 1, 1, 1, 1 (item similarity YYᵀ: 4 on the
diagonal, 3 within a quarter, 2 within a half, 1 across halves).
"""
from __future__ import annotations

import numpy as np

from ..stats import Dataset, Stats

__all__ = ["hierarchy_items", "hierarchy"]


def hierarchy_items(levels: int = 3) -> tuple:
    """X (n × n identity) and Y (n × (2n − 1)) for n = 2**levels items of a binary tree."""
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ValueError(f"levels must be a positive integer, got {levels!r}")
    n = 2 ** int(levels)
    cols = []
    for depth in range(int(levels) + 1):          # depth 0: root; depth `levels`: leaves
        groups = 2 ** depth
        size = n // groups
        for g in range(groups):
            col = np.zeros(n)
            col[g * size:(g + 1) * size] = 1.0
            cols.append(col)
    return np.eye(n), np.stack(cols, axis=1)


def hierarchy(levels: int = 3, pathways: int = 1, samples: bool = False):
    """The task's statistics (sum convention), repeated for ``pathways`` parallel pathways
    (:meth:`Stats.repeated`); ``samples=True`` returns the Dataset (X, Y) instead (its own
    moments are the mean convention)."""
    X, Y = hierarchy_items(levels)
    if samples:
        return Dataset(tuple(X for _ in range(pathways)), Y)
    stats = Stats(X.T @ X, Y.T @ X, Y.T @ Y, (X.shape[1],))
    return stats if pathways == 1 else stats.repeated(pathways, names=tuple(
        "abcdefghijklmnopqrstuvwxyz"[:pathways]))
