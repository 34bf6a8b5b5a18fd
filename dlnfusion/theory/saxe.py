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

Early fusion (L_f = 1) is one two-layer pathway on the stacked input, ŷ = W² W¹ x. At small
weights the error correlation is Σ_yx, its growing mode is seeded by ¼‖W¹ê + W²ᵀ‖²,
ê = Σ_yx/‖Σ_yx‖ (:func:`effective_init_early`), and the balanced rank-one networks
W¹ = q a, W² = v qᵀ (‖q‖ = 1) are an invariant set of gradient descent on which the step is
a' = a + η v e, v' = v + η e aᵀ, e = Σ_yx − v a Σ (theory/saxe.py). Σ is not white in
general, so the total map turns from Σ_yx toward Σ_yx Σ⁻¹ while it grows and no logistic
closed form exists; :func:`predict_times_early` iterates these D + 1 numbers instead.
"""
from __future__ import annotations

import numpy as np
from scipy.special import digamma

from .common import Prediction
from ..networks import NetworkSpec, Params

__all__ = ["logistic_weight", "mode_strength", "saxe_late_fusion", "effective_init",
           "typical_effective_init", "white_uncorrelated", "effective_init_early",
           "predict_times_early"]


def logistic_weight(t, s: float, sigma2: float, init: float, *, lr: float):
    """w(t) = w*/(1 + (w*/w₀ − 1) e^{−2st/τ}) with w* = s/σ² (Zhang et al. eq. 21).

    Parameters: ``t`` time in steps at learning rate ``lr`` = η (the flow's time constant is
    τ = 1/η), ``s`` the singular value ‖Σ_yx_m‖ of the mode, ``sigma2`` the input variance σ²
    along it, ``init`` = w₀ the initial value of the mode. Requires s > 0, σ² > 0, w₀ > 0.
    """
    w0 = init
    if s <= 0 or sigma2 <= 0 or w0 <= 0 or not lr > 0:
        raise ValueError("logistic_weight needs s > 0, sigma2 > 0, init > 0 and lr > 0, got "
                         f"s={s}, sigma2={sigma2}, init={w0}, lr={lr}")
    tau = 1.0 / lr
    t = np.asarray(t, dtype=float)
    w_star = s / sigma2
    # Written with log1p/expm1-free algebra but stable for huge w*/w0 (w0 ~ 1e-17).
    return w_star / (1.0 + (w_star / w0 - 1.0) * np.exp(-2.0 * s * t / tau))


def mode_strength(t, s: float, init: float, *, lr: float):
    """a(t) = s e^{2st/τ} / (e^{2st/τ} − 1 + s/a₀) (Kleinman et al. 2023, eq. 3; whitened input).

    ``t`` in steps at learning rate ``lr`` (τ = 1/η), ``init`` = a₀ the initial mode strength.
    Identical to :func:`logistic_weight` with σ² = 1; written in the paper's form and evaluated
    stably for large t.
    """
    a0 = init
    if s <= 0 or a0 <= 0 or not lr > 0:
        raise ValueError(f"mode_strength needs s > 0, init > 0, lr > 0, got s={s}, init={a0}, "
                         f"lr={lr}")
    tau = 1.0 / lr
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


def saxe_late_fusion(stats, t, init, *, lr: float):
    """Exact total maps of a two-layer late-fusion network with balanced, aligned weights.

    For uncorrelated white modalities (Σ_AB = 0, Σ_m = σ_m² I, paper Appendix D.2) the branches
    decouple and each follows the logistic of eq. (21) along Σ_yx_m (scalar output):

        W_m^tot(t) = w_m(t) Σ_yx_m / ‖Σ_yx_m‖.

    ``init`` holds the initial total weight of each branch along Σ_yx_m (one value per
    modality; with :func:`effective_init` for random initializations); ``t`` in steps at
    learning rate ``lr``. Returns a tuple of arrays of shape (len(t), 1, d_m). Raises ValueError
    when the modalities are correlated or not white.
    """
    check = white_uncorrelated(stats)
    if not check.valid:
        raise ValueError("saxe_late_fusion needs uncorrelated white modalities: "
                         + "; ".join(check.caveats))
    if stats.output_dim != 1:
        raise ValueError("saxe_late_fusion is written for a scalar output")
    w0 = np.broadcast_to(np.asarray(init, dtype=float), (stats.n_modalities,))
    t = np.atleast_1d(np.asarray(t, dtype=float))
    out = []
    for m in range(stats.n_modalities):
        s_vec = stats.sigma_yx_m(m)
        s = float(np.linalg.norm(s_vec))
        sigma2 = float(np.trace(stats.sigma_m(m)) / stats.dims[m])
        w = logistic_weight(t, s, sigma2, w0[m], lr=lr) if s > 0 else np.zeros_like(t)
        direction = s_vec / s if s > 0 else np.zeros_like(s_vec)
        out.append(w[:, None, None] * direction[None])
    return tuple(out)


def effective_init(spec: NetworkSpec, params: Params, directions) -> np.ndarray:
    """Initial value of the growing mode of every two-layer branch.

    For a branch with weights W¹ (h×d) and W² (1×h) driven by a constant error correlation
    along the unit row vector v, the linear dynamics split exactly into a growing mode
    α = (W¹vᵀ + W²ᵀ)/√2, a decaying mode and a frozen rest (theory/saxe.py). The total map
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


def _early_drive(stats) -> np.ndarray:
    if stats.output_dim != 1:
        raise ValueError("the early-fusion prediction is written for a scalar output")
    s = np.asarray(stats.sigma_yx, dtype=float).reshape(-1)
    n = float(np.linalg.norm(s))
    if n == 0:
        raise ValueError("Sigma_yx vanishes: an early-fusion network has no growing mode")
    return s / n


def effective_init_early(spec: NetworkSpec, params: Params, stats) -> np.ndarray:
    """Initial value of the growing mode of a two-layer early-fusion network.

    With W¹ the first layer on the stacked input (h×D, the branches' first layers side by
    side) and W² (1×h) the output layer, the error correlation at small weights is Σ_yx, and
    (theory/saxe.py, the same exact split as :func:`effective_init`) the total map along
    ê = Σ_yx/‖Σ_yx‖ starts growing from

        w₀ = ¼ ‖W¹êᵀ + W²ᵀ‖².

    Holds for the weights of a ReLU network too (its first phase is the linear one at half
    the rate, :mod:`dlnfusion.theory.relu`). ``params`` may carry leading batch axes; the
    result has the batch shape.
    """
    if spec.post_depth != 1 or any(d != 1 for d in spec.branch_depths) \
            or spec.output_dim != 1:
        raise ValueError("effective_init_early is defined for two-layer early fusion with a "
                         "scalar output (NetworkSpec.fusion(2, 1, ...))")
    if tuple(stats.dims) != tuple(spec.input_dims):
        raise ValueError(f"stats has modality dimensions {stats.dims}, the network "
                         f"{spec.input_dims}")
    e = _early_drive(stats)
    W1 = np.concatenate([np.asarray(layers[0]) for layers in params.branches], axis=-1)
    W2 = np.asarray(params.post[0])
    growing = W1 @ e + W2[..., 0, :]
    return 0.25 * np.sum(growing ** 2, axis=-1)


def predict_times_early(stats, lr: float, init: float, level: float = 0.5,
                        steps: int = 10 ** 7):
    """Half-way times (steps) of each modality in two-layer early fusion, gradient descent.

    t_m is the first (linearly interpolated) step at which the progress
    ⟨W_m, W*_m⟩/‖W*_m‖² of modality m's total map toward its block of the global solution
    W* = Σ_yx Σ⁻¹ reaches ``level``. Model: the balanced rank-one network on the stacked
    input, started on its growing mode, a₀ = √w₀ ê, v₀ = √w₀ (ê = Σ_yx/‖Σ_yx‖, ``init`` from
    :func:`effective_init_early` or :func:`typical_effective_init`), iterated with step
    η = ``lr`` (module docstring; exact on that invariant set). What it neglects of a random
    initialization are the decaying and frozen parts of the weights, O(w₀) in the total map.

    Returns a :class:`~.timescales.TimePrediction` whose ``t_A`` is the modality that reaches
    its level first and ``t_B`` the other one (there is one transition: the two differ only
    by how the total map turns while it grows).
    """
    from .timescales import TimePrediction

    if stats.n_modalities != 2:
        raise ValueError(f"predict_times_early compares two modalities, got {stats.n_modalities}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    init = float(init)
    if not (np.isfinite(init) and init > 0):
        raise ValueError(f"init must be a positive initial mode value, got {init!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    e = _early_drive(stats)
    S = np.asarray(stats.sigma, dtype=float)
    s = np.asarray(stats.sigma_yx, dtype=float).reshape(-1)
    W_star = np.asarray(stats.global_solution(), dtype=float).reshape(-1)
    refs = [np.zeros_like(W_star) for _ in range(2)]
    for m in range(2):
        refs[m][stats.slices[m]] = W_star[stats.slices[m]]
    norms = [float(np.sum(r * r)) for r in refs]
    names = stats.names
    if min(norms) == 0:
        raise ValueError("a modality's block of the global solution vanishes; its half-way "
                         "time is undefined")
    caveats = []
    if lr * float(np.linalg.norm(s)) >= 1:
        caveats.append("lr*||Sigma_yx|| >= 1: the growth factor per step is not small")
    a, v = np.sqrt(init) * e, np.sqrt(init)
    prev = np.array([np.dot(v * a, r) / n for r, n in zip(refs, norms)])
    if np.any(prev >= level):
        return TimePrediction(float("nan"), float("nan"), names[0], names[1], False,
                              ("initialization is not small: a modality starts beyond its "
                               "level",))
    times = [np.nan, np.nan]
    n = 0
    while np.isnan(times).any():
        if n >= steps:
            raise RuntimeError("predict_times_early: a modality did not reach its level within "
                               f"{steps} steps")
        err = s - v * (a @ S)
        a, v = a + lr * v * err, v + lr * float(err @ a)
        n += 1
        prog = np.array([np.dot(v * a, r) / nr for r, nr in zip(refs, norms)])
        if not np.all(np.isfinite(prog)):
            return TimePrediction(float("nan"), float("nan"), names[0], names[1], False,
                                  tuple(caveats) + ("gradient descent diverges",))
        for m in range(2):
            if np.isnan(times[m]) and prog[m] >= level:
                times[m] = n - 1 + (level - prev[m]) / (prog[m] - prev[m])
        prev = prog
    first = int(np.argmin(times))
    return TimePrediction(float(times[first]), float(times[1 - first]), names[first],
                          names[1 - first], not caveats, tuple(caveats))
