"""Deep versus shallow linear networks when a source is disabled (Kleinman, Achille & Soatto,
CVPR 2023, Section 2 and Fig. 2).

Setting. Whitened input, Σ = ⟨x xᵀ⟩ = I, split into sources (the modalities of a
:class:`~dlnfusion.stats.Stats`, each a group of input columns); Σ^{yx} = ⟨y xᵀ⟩ with thin SVD
Σ^{yx} = Σ_α s_α u_α v_αᵀ. Disabling source m is :func:`dlnfusion.interventions.delete`: x_m = 0,
so Σ's block m and Σ^{yx}'s columns of m vanish. Every Stats these functions accept therefore
has a diagonal Σ = diag(d) with d_k ∈ {0, 1} (deep) or d_k ≥ 0 (shallow). Loss
L = ½⟨‖y − W x‖²⟩, gradient flow τ dθ/dt = −∂L/∂θ with τ = 1/η in the toolkit's unit (one
gradient-descent step of rate η is one unit of time t; :mod:`dlnfusion.training.api`).

Deep (one hidden layer, W = W² W¹, any width h ≥ rank Σ^{yx}). With the aligned, balanced
initialization W¹(0) = R diag(√a₀) Vᵀ, W²(0) = U diag(√a₀) Rᵀ (R: h × r orthonormal columns;
:func:`aligned_params`) the flow keeps W¹ = R diag(q) Vᵀ, W² = U diag(q) Rᵀ with
τ dq_α/dt = q_α(s_α − q_α²), so a_α = q_α² obeys τ da_α/dt = 2a_α(s_α − a_α) and

    W(t) = Σ_α a_α(t) u_α v_αᵀ,    a_α(t) = s_α e^{2s_α t/τ} / (e^{2s_α t/τ} − 1 + s_α/a₀)

(paper eqs. 1-3; the factor 2 and τ = 1/η are derived in theory/sources.py). Disabling a
source changes the SVD of the remaining Σ^{yx}: the modes, and hence the time at which every
source that shares a mode with the disabled one is learned.

Shallow (one layer, W). τ dW/dt = Σ^{yx} − W Σ, entry by entry for diagonal Σ:

    W_jk(t) = W*_jk + (W_jk(0) − W*_jk) e^{−d_k t/τ},   W*_jk = Σ^{yx}_jk / d_k

(d_k = 1: the paper's W(t) = Σ^{yx}(1 − e^{−t/τ}) + W(0)e^{−t/τ}; a disabled column, d_k = 0,
receives no gradient and keeps W(0)). No entry depends on another: disabling a source changes
nothing about the others.

Features. The paper plots "the total weight attributed to each feature", a feature being a
sensor, i.e. a source (its Fig. 2 disables "the green feature", a column of Σ^{yx}). Here the
strength of source m is the projection of its block of the total map on its block of the full
task, w_m(t) = ⟨W_m(t), Σ^{yx}_m⟩_F / ‖Σ^{yx}_m‖_F (its limit is ‖Σ^{yx}_m‖_F when the source
is on, 0 when it is off); its half-learning time is the first t with w_m(t) = ½‖Σ^{yx}_m‖_F,
i.e. the toolkit's progress toward the global solution crossing ½ (for Σ = I, W* = Σ^{yx}).
The mode strengths u_αᵀ W(t) v_α on the modes of the full task are given as well.

For the deep network each w_m(t) = Σ_α a_α(t) s_α‖v_{α,m}‖² / ‖Σ^{yx}_m‖ is a non-negative
combination of increasing functions (theory/sources.py), so the half-learning time is
one crossing, found by root bracketing (:func:`half_times`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import brentq

from ..networks import NetworkSpec, Params
from .common import Prediction
from .saxe import mode_strength

__all__ = ["whitened_sources", "task_modes", "deep_total_map", "shallow_total_map",
           "source_strengths", "mode_projections", "half_times", "SourceDynamics",
           "source_dynamics", "PREDICTION_DIMS", "source_predictions", "aligned_params",
           "aligned_initial_map"]

#: Singular values below this fraction of the largest are zero (modes of a rank-deficient
#: Σ^{yx} after a source is disabled; the SVD of float64 matrices is exact to ~1e-16 relative).
RANK_RTOL = 1e-10
#: How far Σ may be from diag(d) (relative to its largest entry): float64 rounding of a
#: constructed identity, well above 1e-16 and far below any real correlation.
DIAG_RTOL = 1e-9
NETWORKS = ("deep", "shallow")


def _diag(stats) -> tuple[np.ndarray, list]:
    S = np.asarray(stats.sigma, dtype=float)
    d = np.diag(S).copy()
    scale = max(float(np.max(np.abs(S))), 1e-300)
    caveats = []
    if np.max(np.abs(S - np.diag(d))) > DIAG_RTOL * scale:
        caveats.append("Sigma is not diagonal (the inputs are not whitened)")
    return d, caveats


def whitened_sources(stats, network: str = "deep") -> Prediction:
    """Whether the closed forms of this module apply to ``stats``.

    ``network="deep"``: Σ = diag(d) with every d_k ∈ {0, 1} (whitened sources, some possibly
    disabled); ``"shallow"``: Σ diagonal with d_k ≥ 0. ``value`` is 1.0 when they hold.
    """
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
    d, caveats = _diag(stats)
    if network == "deep" and not caveats:
        off = np.minimum(np.abs(d), np.abs(d - 1.0))
        if np.max(off) > DIAG_RTOL:
            caveats.append("Sigma has diagonal entries other than 0 and 1 (the deep closed "
                           "form needs whitened sources)")
    return Prediction(float(not caveats), not caveats, tuple(caveats))


def _require(stats, network):
    check = whitened_sources(stats, network)
    if not check.valid:
        raise ValueError(f"the {network} closed form needs " + "; ".join(check.caveats))


def task_modes(stats) -> tuple:
    """U (d_out × r), s (r,), V (D × r): the modes of Σ^{yx} with s_α > RANK_RTOL·s_1 (thin SVD,
    descending; numpy's basis for repeated singular values). D stacks every source's columns."""
    U, s, Vt = np.linalg.svd(np.asarray(stats.sigma_yx, dtype=float), full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return U[:, :0], s[:0], Vt[:0].T
    r = int(np.sum(s > RANK_RTOL * s[0]))
    return U[:, :r], s[:r], Vt[:r].T


def _a0_per_mode(a0, r):
    a = np.broadcast_to(np.asarray(a0, dtype=float), (r,)) if np.ndim(a0) == 0 \
        else np.asarray(a0, dtype=float)
    if a.shape != (r,) or np.any(~np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"a0 must be positive and finite, a scalar or one value per mode ({r}),"
                         f" got {a0!r}")
    return a


def _times(t):
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if t.ndim != 1 or np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ValueError("t must be a vector of non-negative finite times")
    return t


def _tau(lr):
    """τ = 1/η from the learning rate (times are in steps at that rate)."""
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    return 1.0 / float(lr)


def deep_total_map(stats, t, init, *, lr: float) -> np.ndarray:
    """W(t) = Σ_α a_α(t) u_α v_αᵀ of the aligned, balanced one-hidden-layer network.

    ``stats``: the task the network trains on (whitened sources, disabled ones deleted);
    ``t``: times in steps at learning rate ``lr`` (the flow's τ = 1/η); ``init``: initial
    mode strength a_α(0), scalar or one per mode of :func:`task_modes`.
    Returns (len(t), d_out, D). Raises ValueError when Σ is not diag(0/1).
    """
    _require(stats, "deep")
    a0 = init
    t = _times(t)
    _tau(lr)
    U, s, V = task_modes(stats)
    a0 = _a0_per_mode(a0, s.size)
    W = np.zeros((t.size, stats.output_dim, stats.input_dim))
    for k in range(s.size):
        W += mode_strength(t, float(s[k]), float(a0[k]), lr=lr)[:, None, None] \
            * np.outer(U[:, k], V[:, k])[None]
    return W


def aligned_initial_map(stats, a0) -> np.ndarray:
    """W(0) = Σ_α a₀ u_α v_αᵀ: the total map of the aligned initialization (both networks)."""
    U, s, V = task_modes(stats)
    return (U * _a0_per_mode(a0, s.size)) @ V.T


def shallow_total_map(stats, t, init, *, lr: float) -> np.ndarray:
    """W(t) = W* + (W(0) − W*) e^{−d_k t/τ} per column k of the one-layer network.

    ``stats``: the trained task (Σ = diag(d), d_k ≥ 0; W*_jk = Σ^{yx}_jk/d_k, a column with
    d_k = 0 keeps W(0)); ``init``: the initial map (d_out, D) or a scalar for every entry;
    ``t``, ``lr`` as in :func:`deep_total_map`. Returns (len(t), d_out, D).
    """
    _require(stats, "shallow")
    w0 = init
    t, tau = _times(t), _tau(lr)
    d, _ = _diag(stats)
    shape = (stats.output_dim, stats.input_dim)
    w0 = np.broadcast_to(np.asarray(w0, dtype=float), shape)
    if np.any(~np.isfinite(w0)):
        raise ValueError("init must be finite")
    if np.any(d < 0):
        raise ValueError("Sigma has a negative diagonal entry")
    w_star = _shallow_target(stats, d, w0)
    x = -np.outer(t, d) / tau                                   # (T, D); 0 for d_k = 0
    # W(0) e^{x} + W*(1 − e^{x}) with expm1: exactly W(0) at t = 0, no cancellation early on.
    return w0[None] * np.exp(x)[:, None, :] - w_star[None] * np.expm1(x)[:, None, :]


def _shallow_target(stats, d, w0) -> np.ndarray:
    """The shallow network's limit: Σ^{yx}_jk/d_k on columns with d_k > 0, W(0) elsewhere."""
    on = d > 0
    return np.where(on[None, :], np.asarray(stats.sigma_yx) / np.where(on, d, 1.0)[None, :], w0)


def source_strengths(W, reference) -> np.ndarray:
    """w_m = ⟨W_m, R_m⟩_F/‖R_m‖_F for every source m; ``W`` (..., d_out, D), ``reference`` a
    Stats (R = its Σ^{yx}, e.g. the full task) whose ``dims`` split the columns. Returns
    (..., M); NaN for a source whose reference block is zero."""
    R = np.asarray(reference.sigma_yx, dtype=float)
    W = np.asarray(W, dtype=float)
    if W.shape[-2:] != R.shape:
        raise ValueError(f"W has trailing shape {W.shape[-2:]}, the reference {R.shape}")
    out = []
    for sl in reference.slices:
        nrm = float(np.linalg.norm(R[:, sl]))
        out.append(np.sum(W[..., sl] * R[:, sl], axis=(-2, -1)) / nrm if nrm > 0
                   else np.full(W.shape[:-2], np.nan))
    return np.stack(out, axis=-1)


def mode_projections(W, reference) -> np.ndarray:
    """u_αᵀ W v_α on the modes α of ``reference`` (a Stats, e.g. the full task): (..., r)."""
    U, _, V = task_modes(reference)
    return np.einsum("ia,...ij,ja->...a", U, np.asarray(W, dtype=float), V)


def half_times(strength_at, limit, t_max: float, xtol: float = 1e-12) -> np.ndarray:
    """First time each feature's strength reaches half of its limit, by bracketing.

    ``strength_at(t)`` returns the (F,) strengths at the scalar time t (a closed form),
    ``limit`` (F,) their t → ∞ values, ``t_max`` a time by which every feature that is learned
    has passed its half-way level. Requires each strength to cross ½·limit once (true for the
    deep network's sources, a non-negative sum of increasing a_α(t), and for the shallow
    network's, which relax exponentially). Returns (F,): NaN where the limit is 0 (a disabled
    source) or the level is not reached by ``t_max``; 0 where it is reached at t = 0. Accurate
    to ``xtol`` (absolute, time units) plus float64 rounding of the root (brentq).
    """
    limit = np.asarray(limit, dtype=float)
    f0 = np.asarray(strength_at(0.0), dtype=float)
    fm = np.asarray(strength_at(float(t_max)), dtype=float)
    out = np.full(limit.shape, np.nan)
    for i, L in enumerate(limit):
        if not np.isfinite(L) or L == 0:
            continue
        level = 0.5 * L
        g0, gm = np.sign(L) * (f0[i] - level), np.sign(L) * (fm[i] - level)
        if g0 >= 0:
            out[i] = 0.0
        elif gm >= 0:
            out[i] = brentq(lambda x: np.sign(L) * (strength_at(x)[i] - level), 0.0,
                            float(t_max), xtol=xtol, rtol=4 * np.finfo(float).eps)
    return out


@dataclass(frozen=True)
class SourceDynamics:
    """Closed-form learning of every source and mode by one network.

    ``time`` (T,); ``total_map`` (T, d_out, D); ``source_strength`` (T, M) (w_m on the full
    task, module docstring); ``source_limit`` (M,) their t → ∞ values; ``mode_strength``
    (T, r) u_αᵀ W v_α on the full task's modes with ``mode_limit`` (r,); ``half_time`` (M,)
    of each source (NaN for a disabled one); ``network`` "deep"/"shallow"; ``disabled`` the
    names of the disabled sources; ``lr`` the learning rate of the time unit (τ = 1/lr).
    """

    time: np.ndarray
    total_map: np.ndarray
    source_strength: np.ndarray
    source_limit: np.ndarray
    mode_strength: np.ndarray
    mode_limit: np.ndarray
    half_time: np.ndarray
    network: str
    disabled: tuple
    lr: float
    names: tuple = field(default=())


def _disabled_task(stats, disabled):
    from ..interventions import delete

    names = () if disabled is None else (disabled,) if isinstance(disabled, (str, int,
                                                                            np.integer)) \
        else tuple(disabled)
    task = stats
    for m in names:
        task = delete(task, m)
    return task, tuple(stats.names[stats.index(m)] for m in names)


def source_dynamics(stats, t, init: float, *, lr: float, network: str = "deep",
                    disabled=None, init_map=None) -> SourceDynamics:
    """Learning of every source of the whitened task ``stats`` by the ``network``
    ("deep": W²W¹ with aligned balanced initialization; "shallow": W), with the sources in
    ``disabled`` (a name, an index or a sequence of them; None: all on) deleted
    (:func:`dlnfusion.interventions.delete`) for the whole run.

    The deep network starts aligned and balanced on the modes of the task it trains on,
    W(0) = Σ_α a₀ ũ_α ṽ_αᵀ with a₀ = ``init`` (the only initialization on which the closed form is exact, so with
    and without the source the initial weights differ by O(a₀)). The shallow network starts
    from the same weights with and without the source, W(0) = Σ_α a₀ u_α v_αᵀ on the full
    task's modes (``init_map`` overrides it): its counterfactual is exact, and the disabled
    source's columns keep their initial value. Strengths are measured on the full task
    ``stats`` (module docstring). ``t``: record times in steps at learning rate ``lr``. Half-learning times are exact roots of
    the closed form
    (:func:`half_times`), not interpolated on ``t``.
    """
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {NETWORKS}, got {network!r}")
    _require(stats, "deep")        # the full task itself: whitened sources, every d_k ∈ {0, 1}
    task, off = _disabled_task(stats, disabled)
    a0, w0 = init, init_map
    t, tau = _times(t), _tau(lr)
    if network == "deep":
        U, s, _ = task_modes(task)
        a0v = _a0_per_mode(a0, s.size)
        fn = lambda x: deep_total_map(task, x, a0v, lr=lr)  # noqa: E731
        W_inf = np.asarray(task.sigma_yx, dtype=float)    # every mode with a₀ > 0 reaches s_α
        # The slowest mode passes s_α/2 at τ ln(s_α/a₀ − 1)/(2 s_α) (theory/sources.py).
        t_max = max(float(np.max(tau * np.log(np.maximum(s / a0v - 1, 2.0)) / (2 * s))) * 4,
                    float(t[-1])) if s.size else float(t[-1])
    else:
        # The same initial weights with and without the source: the full task's aligned map.
        W0 = aligned_initial_map(stats, a0) if w0 is None else w0
        fn = lambda x: shallow_total_map(task, x, W0, lr=lr)  # noqa: E731
        d, _ = _diag(task)
        W_inf = _shallow_target(task, d, np.broadcast_to(np.asarray(W0, dtype=float),
                                                          (task.output_dim, task.input_dim)))
        # Every enabled column relaxes at rate 1/τ (d_k = 1): e^{-40} leaves nothing to cross.
        t_max = max(40.0 * tau, float(t[-1]))
    W = fn(t)
    lim = source_strengths(W_inf, stats)
    strength_at = lambda x: source_strengths(fn(np.array([x]))[0], stats)  # noqa: E731
    half = half_times(strength_at, lim, t_max)
    half[[stats.index(m) for m in off]] = np.nan      # a disabled source is never learned
    return SourceDynamics(time=t, total_map=W, source_strength=source_strengths(W, stats),
                          source_limit=lim, mode_strength=mode_projections(W, stats),
                          mode_limit=mode_projections(W_inf, stats),
                          half_time=half,
                          network=network, disabled=off, lr=float(lr), names=tuple(stats.names))


#: The dimensions of :func:`source_predictions`' arrays (a Predict runner's ``dims``).
PREDICTION_DIMS = {"source_strength": ("time", "source"), "mode_strength": ("time", "mode"),
                   "source_limit": ("source",), "mode_limit": ("mode",),
                   "half_time": ("source",), "line": ("fine", "source"),
                   "singular_values": ("mode",)}


def source_predictions(stats, t, fine, init: float, *, lr: float, network: str = "deep",
                       disabled=None) -> dict:
    """:func:`source_dynamics` as arrays for a sweep: at the record times ``t`` its
    ``source_strength``, ``mode_strength``, ``source_limit``, ``mode_limit`` and
    ``half_time``; ``line``, the source strengths at the times ``fine`` (a smooth curve); and
    ``singular_values``, those of the task the network trains on (``stats`` with the sources
    in ``disabled`` deleted). Dimensions: :data:`PREDICTION_DIMS`."""
    dyn, line = (source_dynamics(stats, x, init, lr=lr, network=network, disabled=disabled)
                 for x in (t, fine))
    return {**{k: getattr(dyn, k) for k in PREDICTION_DIMS if hasattr(dyn, k)},
            "line": line.source_strength,
            "singular_values": task_modes(_disabled_task(stats, disabled)[0])[1]}


def aligned_params(spec: NetworkSpec, stats, a0, seeds: Sequence[int] = (0,)) -> Params:
    """Batched Params (leading axis: seeds) on which the closed forms are exact.

    ``spec``: ``NetworkSpec.fusion(2, 1, width=h, input_dims=stats.dims, output_dim)``
    (W = W² W¹, the first layer split by source, h ≥ rank Σ^{yx}) or ``NetworkSpec.fusion(1, 1,
    ...)`` (the shallow W). Deep: W¹ = R diag(√a₀) Vᵀ, W² = U diag(√a₀) Rᵀ with R (h × r)
    random orthonormal columns drawn per seed (balanced: W¹W¹ᵀ = W²ᵀW²; aligned: W = U diag(a₀)
    Vᵀ on the modes of ``stats``, the task trained on). Shallow: W = U diag(a₀) Vᵀ (the same
    initial total map).
    """
    if tuple(spec.input_dims) != tuple(stats.dims) or spec.output_dim != stats.output_dim:
        raise ValueError(f"spec {spec.input_dims} -> {spec.output_dim} does not match stats "
                         f"{stats.dims} -> {stats.output_dim}")
    U, s, V = task_modes(stats)
    a = _a0_per_mode(a0, s.size)
    cols = np.cumsum((0,) + tuple(stats.dims))
    runs = []
    if spec.depth == 1:
        W = (U * a) @ V.T
        runs = [[W[:, cols[m]:cols[m + 1]] for m in range(len(stats.dims))]
                for _ in np.atleast_1d(seeds)]
    elif spec.depth == 2 and spec.fusion_layer == 1:
        h = spec.post_dims[0]
        if h < s.size:
            raise ValueError(f"the hidden width {h} is below the rank {s.size} of Sigma_yx")
        q = np.sqrt(a)
        for seed in np.atleast_1d(seeds):
            rng = np.random.default_rng(int(seed))
            Q, Rr = np.linalg.qr(rng.standard_normal((h, s.size)))
            R = Q * np.sign(np.diag(Rr))
            W1, W2 = (R * q) @ V.T, (U * q) @ R.T
            runs.append([W1[:, cols[m]:cols[m + 1]] for m in range(len(stats.dims))] + [W2])
    else:
        raise ValueError("aligned_params builds NetworkSpec.fusion(2, 1, ...) (one hidden "
                         "layer) or NetworkSpec.fusion(1, 1, ...) (one layer)")
    return Params.from_matrices(spec, [np.stack([r[i] for r in runs])
                                       for i in range(len(runs[0]))])
