"""The heterogeneous task of Zhang, Latham & Saxe (2024), Appendix H.2: y = x_A + XOR(x_B).

Modality A is one linear feature x_A ~ N(0, σ_A); modality B is a point of the square
{[1, 1], [1, −1], [−1, 1], [−1, −1]} and enters the target only through the exclusive-or of
its two signs, XOR(x_B) = −x_B1·x_B2 (−1 on [1, 1] and [−1, −1], +1 on the other two). The
XOR part has no linear component: ⟨XOR(x_B) x_B⟩ = 0 exactly for the balanced design, so only
a nonlinear network can use modality B, while the best predictor built from x_A alone, ŷ = x_A,
leaves the loss ½⟨XOR²⟩ = ½ (the toolkit's ½·squared-error convention).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import checks
from ..stats import Dataset

__all__ = ["xor_task", "xor_of", "xa_only_loss", "xor_alignment", "linear_share"]

#: The four inputs of the XOR modality.
XOR_POINTS = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])


def xor_of(x_b) -> np.ndarray:
    """XOR of the two ±1 coordinates of x_B, −x_B1·x_B2, for an array of shape (P, 2)."""
    x = np.asarray(x_b, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x_b must have shape (P, 2), got {x.shape}")
    return -x[:, 0] * x[:, 1]


def xor_task(sigma_a: float, n_samples: int = 8192, seed: int = 0) -> Dataset:
    """Samples of y = x_A + XOR(x_B) (paper Appendix H.2, Figure 12).

    Parameters
    ----------
    sigma_a : the VARIANCE of the linear modality, x_A ~ N(0, sigma_a). The paper writes
        Var(x_A) ≡ σ_A = 1, 2, 3, and the authors' code draws x_A with standard deviation
        √σ_A. (Unlike :meth:`dlnfusion.Stats.scalar_toy`, whose ``sigma_a`` is a standard
        deviation.)
    n_samples : number of samples, a positive multiple of 4: every point of the square appears
        exactly ``n_samples // 4`` times (the balanced design, as in the paper's 8192 samples).
    seed : seed of the Gaussian draws of x_A (independent of x_B).

    Returns
    -------
    Dataset
        Modality "A" of shape (P, 1), modality "B" of shape (P, 2) and targets
        y = x_A + XOR(x_B) of shape (P, 1), no noise. The samples are ordered point by point of
        the square (irrelevant for full-batch training).
    """
    if isinstance(sigma_a, bool) or not isinstance(sigma_a, numbers.Real):
        raise ValueError(f"sigma_a (the variance of x_A) must be a positive finite number, "
                         f"got {sigma_a!r}")
    var = float(sigma_a)
    if not (np.isfinite(var) and var > 0):
        raise ValueError(f"sigma_a (the variance of x_A) must be a positive finite number, "
                         f"got {sigma_a!r}")
    n = checks.integer("n_samples", n_samples, 1, "a positive multiple of 4")
    if n % 4:
        raise ValueError(f"n_samples must be a positive multiple of 4 (a balanced design over "
                         f"the four XOR points), got {n_samples!r}")
    seed = checks.nonnegative_int("seed", seed)
    x_b = np.repeat(XOR_POINTS, n // 4, axis=0)
    x_a = np.sqrt(var) * np.random.default_rng(seed).standard_normal((n, 1))
    y = x_a + xor_of(x_b)[:, None]
    return Dataset((x_a, x_b), y, ("A", "B"))


def xa_only_loss(data: Dataset) -> float:
    """L_A: the least ½·MSE a network without biases can reach on the samples ``data`` of
    :func:`xor_task` using x_A alone.

    Every ReLU function of the scalar x_A without biases is c₊ relu(x_A) + c₋ relu(−x_A), so
    L_A is the least-squares fit of y on these two features (≈ 0.5, the population value)."""
    xa = data.xs[0][:, 0]
    F = np.stack([np.maximum(xa, 0.0), np.maximum(-xa, 0.0)], axis=1)
    c = np.linalg.lstsq(F, data.y[:, 0], rcond=None)[0]
    return float(0.5 * np.mean((data.y[:, 0] - F @ c) ** 2))


def xor_alignment(w_b, max_angle_deg: float = 10.0) -> float:
    """Share of Σ‖w_B,i‖² carried by the first-layer units whose W_B¹ row (``w_b``, (H, 2))
    lies within ``max_angle_deg`` of one of the four XOR directions (±1, ±1)/√2."""
    w_b = np.asarray(w_b, dtype=float)
    sq = np.sum(w_b ** 2, axis=1)
    ang = np.degrees(np.arctan2(w_b[:, 1], w_b[:, 0]))
    off = np.abs(ang % 90.0 - 45.0)          # angle to the nearest diagonal
    return float(np.sum(sq[off <= max_angle_deg]) / np.sum(sq))


def linear_share(w_a, w_b) -> float:
    """Σ W_A¹² / (Σ W_A¹² + Σ ‖W_B¹‖²): how much of the first layer (W_A¹ ``w_a``, W_B¹
    ``w_b``) reads the linear modality."""
    a, b = np.sum(np.asarray(w_a, dtype=float) ** 2), np.sum(np.asarray(w_b, dtype=float) ** 2)
    return float(a / (a + b))
