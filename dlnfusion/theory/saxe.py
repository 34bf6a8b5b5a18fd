"""Sigmoidal (Saxe-type) solutions of two-layer linear networks.

For one modality with white input, Σ_m = σ² I, and a two-layer pathway whose weights are
balanced (W¹W¹ᵀ = W²ᵀW²) and rank-one along the top singular pair of Σ_yx_m = s u vᵀ, the total
map stays W^tot(t) = w(t) u vᵀ and gradient flow τ dW/dt = −∂L/∂W reduces to the logistic
equation (theory/saxe.py derives it)

    τ dw/dt = 2 w (s − σ² w),     w(t) = w* / (1 + (w*/w₀ − 1) e^{−2 s t / τ}),  w* = s/σ².

This is Zhang et al. (2024) eq. (21) and Kleinman et al. (2023) eq. (3) (σ = 1). Note on
eq. (21): its bracket holds ‖Σ_yx‖/(σ² u(0)), which is w*/w₀ with u(0) standing for the
initial *total weight* w₀, whereas the left-hand side u(t) is the fraction w(t)/w*; evaluating
the printed formula at t = 0 returns σ²u(0)/‖Σ_yx‖, not u(0). We use the consistent form above.

With a small random (not balanced, not aligned) initialization the same logistic holds once
the transient has aligned the weights; its effective initial value is the part of the weights
that grows (see :func:`effective_init`).
"""
from __future__ import annotations

import numpy as np
from scipy.special import digamma

from .common import Prediction
from ..networks import NetworkSpec, Params

__all__ = ["logistic_weight", "mode_strength", "saxe_late_fusion", "effective_init",
           "typical_effective_init", "white_uncorrelated"]


def logistic_weight(t, s: float, sigma2: float, w0: float, tau: float):
    """w(t) = w*/(1 + (w*/w₀ − 1) e^{−2st/τ}) with w* = s/σ² (Zhang et al. eq. 21).

    Parameters: ``t`` time (same units as τ; with τ = 1/η, t counts steps), ``s`` the singular
    value ‖Σ_yx_m‖ of the mode, ``sigma2`` the input variance σ² along it, ``w0`` the initial
    value of the mode, ``tau`` the time constant. Requires s > 0, σ² > 0, w₀ > 0.
    """
    if s <= 0 or sigma2 <= 0 or w0 <= 0 or tau <= 0:
        raise ValueError("logistic_weight needs s > 0, sigma2 > 0, w0 > 0 and tau > 0, got "
                         f"s={s}, sigma2={sigma2}, w0={w0}, tau={tau}")
    t = np.asarray(t, dtype=float)
    w_star = s / sigma2
    # Written with log1p/expm1-free algebra but stable for huge w*/w0 (w0 ~ 1e-17).
    return w_star / (1.0 + (w_star / w0 - 1.0) * np.exp(-2.0 * s * t / tau))


def mode_strength(t, s: float, a0: float, tau: float):
    """a(t) = s e^{2st/τ} / (e^{2st/τ} − 1 + s/a₀) (Kleinman et al. 2023, eq. 3; whitened input).

    Identical to :func:`logistic_weight` with σ² = 1; written in the paper's form and evaluated
    stably for large t.
    """
    if s <= 0 or a0 <= 0 or tau <= 0:
        raise ValueError(f"mode_strength needs s > 0, a0 > 0, tau > 0, got s={s}, a0={a0}, tau={tau}")
    t = np.asarray(t, dtype=float)
    em = np.exp(-2.0 * s * t / tau)  # divide numerator and denominator by e^{2st/τ}
    return s / (1.0 - em + (s / a0) * em)


def white_uncorrelated(stats, rtol: float = 1e-9) -> Prediction:
    """Whether every Σ_m is a multiple of the identity and every cross-block Σ_mn vanishes.

    The exact solution :func:`saxe_late_fusion` needs both (paper Appendix D.2).
    """
    caveats = []
    scale = np.max(np.abs(stats.sigma))
    for m in range(stats.n_modalities):
        S = stats.sigma_m(m)
        s2 = np.trace(S) / S.shape[0]
        if np.max(np.abs(S - s2 * np.eye(S.shape[0]))) > rtol * scale:
            caveats.append(f"Sigma_{stats.names[m]} is not white (not a multiple of I)")
        for n in range(m + 1, stats.n_modalities):
            if np.max(np.abs(stats.block(m, n))) > rtol * scale:
                caveats.append(f"modalities {stats.names[m]} and {stats.names[n]} are correlated")
    return Prediction(float(not caveats), not caveats, tuple(caveats))


def saxe_late_fusion(stats, t, w0, tau: float):
    """Exact total maps of a two-layer late-fusion network with balanced, aligned weights.

    For uncorrelated white modalities (Σ_AB = 0, Σ_m = σ_m² I, paper Appendix D.2) the branches
    decouple and each follows the logistic of eq. (21) along Σ_yx_m (scalar output):

        W_m^tot(t) = w_m(t) Σ_yx_m / ‖Σ_yx_m‖.

    ``w0`` holds the initial total weight of each branch along Σ_yx_m (one value per modality;
    with :func:`effective_init` for random initializations). Returns a tuple of arrays of shape
    (len(t), 1, d_m). Raises ValueError when the modalities are correlated or not white.
    """
    check = white_uncorrelated(stats)
    if not check.valid:
        raise ValueError("saxe_late_fusion needs uncorrelated white modalities: "
                         + "; ".join(check.caveats))
    if stats.output_dim != 1:
        raise ValueError("saxe_late_fusion is written for a scalar output")
    w0 = np.broadcast_to(np.asarray(w0, dtype=float), (stats.n_modalities,))
    t = np.atleast_1d(np.asarray(t, dtype=float))
    out = []
    for m in range(stats.n_modalities):
        s_vec = stats.sigma_yx_m(m)
        s = float(np.linalg.norm(s_vec))
        sigma2 = float(np.trace(stats.sigma_m(m)) / stats.dims[m])
        w = logistic_weight(t, s, sigma2, w0[m], tau) if s > 0 else np.zeros_like(t)
        direction = s_vec / s if s > 0 else np.zeros_like(s_vec)
        out.append(w[:, None, None] * direction[None])
    return tuple(out)


def effective_init(spec: NetworkSpec, params: Params, directions) -> np.ndarray:
    """Initial value of the growing mode of every two-layer branch.

    For a branch with weights W¹ (h×d) and W² (1×h) driven by a constant error correlation
    along the unit row vector v, the linear dynamics split exactly into a growing mode
    α = (W¹vᵀ + W²ᵀ)/√2, a decaying mode and a frozen rest (theory/modes.py). The total map
    along v then starts the logistic of eq. (21) from

        w₀ = ½‖α‖² = ¼ ‖W¹ vᵀ + W²ᵀ‖².

    ``directions`` gives one unit row vector v_m per modality (for a scalar modality, ±1: the
    sign of the error that will drive it). ``params`` may carry leading batch axes; the result
    has shape (*batch, M).
    """
    if any(d != 2 for d in spec.branch_depths) or spec.post_depth != 0 or spec.output_dim != 1:
        raise ValueError("effective_init is defined for two-layer late-fusion branches with a "
                         "scalar output (NetworkSpec.fusion(2, 2, ...))")
    out = []
    for m, (W1, W2) in enumerate(params.branches):
        v = np.asarray(directions[m], dtype=float).reshape(-1)
        if v.shape[0] != spec.input_dims[m] or not np.isclose(np.linalg.norm(v), 1.0):
            raise ValueError(f"directions[{m}] must be a unit vector of length {spec.input_dims[m]}")
        W1, W2 = np.asarray(W1), np.asarray(W2)
        growing = W1 @ v + W2[..., 0, :]
        out.append(0.25 * np.sum(growing ** 2, axis=-1))
    return np.stack(out, axis=-1)


def typical_effective_init(std: float, width: int) -> float:
    """exp E[ln w₀] of :func:`effective_init` when every weight is i.i.d. N(0, std²).

    W¹v + W²ᵀ has i.i.d. N(0, 2 std²) entries, so w₀ = (std²/2) χ²_h and
    E ln w₀ = ln std² + ψ(h/2) (ψ the digamma function). Theory curves for a given
    initialization scheme use this value; per-run predictions use :func:`effective_init`.
    """
    if not (std > 0 and np.isfinite(std)):
        raise ValueError(f"std must be positive and finite, got {std!r}")
    if int(width) != width or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    return float(std ** 2 * np.exp(digamma(width / 2.0)))
