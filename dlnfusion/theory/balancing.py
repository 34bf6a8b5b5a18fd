"""Theory of modality-balancing methods in a two-layer late-fusion network (scalar
modalities, scalar output; :func:`balancing_deep` for deep late, intermediate and early
fusion from balanced aligned weights): joint training, OGM (gradient modulation without noise), OGM-GE
(its noise in mean field) and InfoReg, each optionally with added unimodal losses, trained by
gradient descent at population level (dlnfusion.transforms).

Exact reduced dynamics. Branch m has W_m^1 = u (h × 1) and W_m^2 = vᵀ (1 × h); InfoReg also
keeps the weights at the start of the epoch, u_p and v_p. A step of any of the three methods
is a linear map of the four vectors with scalar coefficients,

    u' = u + η (c g v − a (u − u_p)),   v' = v + η (c g u − a (v − v_p)),

g = s_m − Σ_n Σ_mn w_n the drive (w_n = u_n·v_n; with unimodal losses of weight λ,
g + λ(s_m − Σ_mm w_m), the gradient of λ·½E(y − w_m x_m)² added), c the OGM coefficient (1 otherwise) and a the
InfoReg proximal coefficient α when the branch is regulated (0 otherwise), so their Gram matrix
G = [u, v, u_p, v_p][u, v, u_p, v_p]ᵀ follows G' = T G Tᵀ exactly (theory/balancing.py). Every
quantity the methods use is a function of G: w = G_uv, ‖u‖² + ‖v‖² = G_uu + G_vv, the Fisher
trace Tr F_m = E[e² x_m²](G_uu + G_vv) (theory.fisher), the scores s_m = s_m w_m − ½Σ_mm w_m²
(transforms.branch_scores). :func:`balancing_two_layer` iterates this map from the Gram
matrices of the initial weights: it predicts the training actually run (up to float64
round-off) without simulating the width-h network.

OGM-GE in mean field. GE adds to u's gradient g v (h entries) Gaussian noise ξ of the same
tensor's standard deviation, E ξξᵀ = g²(|v|²/h − v̄²) I, independent of v's noise and zero-mean,
so the expected Gram matrix gains η²g²(|v|² − h v̄²) in G_uu and η²g²(|u|² − h ū²) in G_vv and
nothing else. With the entries' means neglected (h v̄² ≈ |v|²/h for weights that are not
aligned with the all-ones vector: a relative O(1/h)) the map becomes G' = T G Tᵀ + η²g²
diag(G_vv, G_uu, 0, 0) while the modulation is on, closed in G: the noise pumps energy into
both vectors at the rate of the drive.
The rest is a mean-field approximation: the coefficient and the drive are evaluated at the
mean weights. It fails where the leader's coefficient 1 − tanh(α s_A/s_B) collapses (ρ < 0 on
the toy, where B's score is near zero or negative until B moves): the escape is then set by
the noise's fluctuations of the scores, which the mean field drops, and
:func:`balancing_two_layer` flags the run (``valid`` False, the reason in ``caveats``; the edge
:data:`OGM_FROZEN` is measured, not derived).

OGM-GE exactly (:func:`ogm_ge_two_layer`). The noise is isotropic apart from the all-ones
direction e (the tensor's standard deviation subtracts its mean), so the law of the weights is
invariant under the rotations that fix e, and the Gram entries of u, v and e form a Markov
chain; its step is drawn exactly (Gram-Schmidt coordinates and a Wishart remainder), which
gives the law of t_A, t_B and of divergence at a cost independent of the width, ρ < 0
included.

Leading order for InfoReg (:func:`inforeg_slowdown`). In the exponential phase of the
regulated mode (g ≈ s constant, balanced aligned weights of amplitude a, w = a²) a step is
a' = (1 + η(s − α)) a + ηα a_p within an epoch of E steps started at a_p, so an epoch multiplies
the amplitude by

    F = (s r^E − α)/(s − α),   r = 1 + η(s − α)      (α ≠ s),

against (1 + ηs)^E without the proximal term: the escape of the regulated modality is slower by
κ = ln F / (E ln(1 + ηs)) and its t_m, dominated by the escape, longer by about 1/κ.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..networks import NetworkSpec, Params
from ..precision import float64
from .common import Prediction
from .fisher import WINDOW_RULES, _toy_moments

__all__ = ["BalancedRun", "NoisyRun", "balancing_two_layer", "balancing_deep", "initial_gram",
           "noise_gram", "ogm_ge_two_layer", "inforeg_slowdown",
           "score_gaps", "window_test", "ogm_coefficients", "METHODS"]

METHODS = ("joint", "ogm", "ogm_ge", "inforeg")


def score_gaps(scores):
    """Δ_m of Huang et al. eq. (10): the mean of s_m − s_n over the modalities n with
    s_n < s_m, 0 when there is none (traceable; the last axis is the modality)."""
    diff = scores[..., :, None] - scores[..., None, :]
    beats = diff > 0
    count = jnp.sum(beats, axis=-1)
    return jnp.where(count > 0, jnp.sum(jnp.where(beats, diff, 0.0), axis=-1)
                     / jnp.maximum(count, 1), 0.0)


def window_test(history, epoch, window: str, K: float, average: int):
    """InfoReg's window flags at the start of epoch ``epoch`` (traceable). ``history`` (H, M)
    holds the traces of the last finished epochs, newest last (Tr F^{t−1} last): "paper" and
    "outside" test (Tr F^{t−1} − Tr F^{t−2})/Tr F^{t−1} > K (eq. 11; "outside" is the
    complement), from epoch 2 on; "moving_average" the same on ``average``-epoch means, from
    epoch average + 1 on; "always" and "never" are constant."""
    M = history.shape[-1]
    if window == "always":
        return jnp.ones((M,), bool)
    if window == "never":
        return jnp.zeros((M,), bool)
    if window in ("paper", "outside"):
        new, old, ok = history[-1], history[-2], epoch >= 2
    else:
        new, old = jnp.mean(history[1:], axis=0), jnp.mean(history[:-1], axis=0)
        ok = epoch >= average + 1
    rate = (new - old) / jnp.where(new != 0, new, 1.0)
    return ok & ((rate <= K) if window == "outside" else (rate > K))


def ogm_coefficients(scores, alpha: float, continuous: bool = False):
    """OGM's gradient scale of two modalities (traceable, (2,)): 1 − tanh(α·ratio) for the one
    whose score is the larger, ratio = s_lead/s_other (``continuous``: 1 − tanh(α(ratio −
    1))), 1 for the other; a non-positive score never leads and counts as infinitely behind."""
    tiny = jnp.finfo(scores.dtype).tiny
    ratio = jnp.stack([scores[0] / jnp.maximum(scores[1], tiny),
                       scores[1] / jnp.maximum(scores[0], tiny)])
    ratio = jnp.where(scores > 0, ratio, 0.0)
    arg = alpha * (ratio - 1.0) if continuous else alpha * ratio
    return jnp.where(ratio > 1.0, 1.0 - jnp.tanh(arg), 1.0)


def initial_gram(spec: NetworkSpec, params: Params) -> np.ndarray:
    """(runs, M, 4, 4): the Gram matrix of [u, v, u_p = u, v_p = v] of every branch of a
    two-layer late-fusion network with scalar modalities and output (batched params)."""
    if not isinstance(spec, NetworkSpec) or spec.post_depth or spec.output_dim != 1 \
            or any(d != 2 for d in spec.branch_depths) or any(d != 1 for d in spec.input_dims):
        raise ValueError("initial_gram needs two-layer late fusion with scalar modalities and "
                         "a scalar output")
    out = []
    for layers in params.branches:
        u = np.asarray(layers[0])[..., :, 0]
        v = np.asarray(layers[1])[..., 0, :]
        X = np.stack([u, v, u, v], axis=-2)                  # (runs, 4, h)
        out.append(X @ np.swapaxes(X, -1, -2))
    return np.stack(out, axis=-3)


class BalancedRun(NamedTuple):
    """The reduced dynamics of :func:`balancing_two_layer`: ``time`` (T,) steps, ``w`` (T, M),
    ``trace`` (T, M) Tr F_m, ``coefficient`` (T, M) the OGM scale (1 otherwise), ``regulated``
    (T, M) InfoReg's flags, ``crossing`` (M,) the first step at which w_m reaches half of its
    global value (interpolated; NaN if never); ``t_a``, ``t_b`` and ``ratio`` = t_b/t_a as
    :func:`dlnfusion.compare.measure_unimodal_phase` defines them."""

    time: np.ndarray
    w: np.ndarray
    trace: np.ndarray
    coefficient: np.ndarray
    regulated: np.ndarray
    crossing: np.ndarray
    t_a: float
    t_b: float
    ratio: float
    valid: bool = True
    caveats: tuple = ()


#: Below this leader coefficient between t_A and t_B, OGM-GE's escape is set by the noise's
#: fluctuations, which the mean-field noise term omits, and its prediction is flagged. The
#: coefficient 1 − tanh(αr) ≈ 2e^{−2αr} responds to a relative change δ of the score ratio r
#: by a factor e^{2αrδ}, so the smaller it is, the more the noise's fluctuations of the scores
#: (δ of order width^{−1/2}) matter. The edge is empirical, not derived: on the toy at width 100
#: the mean field is within 4 % of the seed mean down to a minimum coefficient of 6e-3 (ρ =
#: −0.05) and 15 % off at 1.6e-3 (ρ = −0.1); at width 1600 and 6400 the latter is within 3 %.
OGM_FROZEN = 5e-3


def _check_options(method, window, unimodal, methods=METHODS):
    if method not in methods:
        raise ValueError(f"method must be one of {methods}, got {method!r}")
    windows = WINDOW_RULES + ("always", "outside", "never")
    if window not in windows:
        raise ValueError(f"window must be one of {windows}, got {window!r}")
    return _check_unimodal(unimodal)


def _check_unimodal(unimodal):
    lam = float(unimodal)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"unimodal must be a non-negative number, got {unimodal!r}")
    return lam


def _method_coefficients(method, n, scores, trace, history, epochs, *, epoch, beta, K, window,
                         average, pref, alpha, continuous):
    """One step's method state (traceable): the OGM scale c, InfoReg's proximal coefficient a
    and flags, whether θ_prev is refreshed at this step, and the updated trace history."""
    M = scores.shape[-1]
    c = jnp.ones(M)
    a = jnp.zeros(M)
    regulated = jnp.zeros(M, bool)
    start = jnp.asarray(False)
    if method in ("ogm", "ogm_ge"):
        c = ogm_coefficients(scores, alpha, continuous)
    if method == "inforeg":
        start = n % epoch == 0
        history = jnp.where(start, jnp.concatenate([history[1:], trace[None]]), history)
        epochs = epochs + start.astype(jnp.int32)
        gaps = score_gaps(scores)
        # the history holds the initial trace too: epoch t starts with t + 1 traces
        regulated = window_test(history, epochs - 1, window, K, average) & (gaps > 0)
        a = jnp.where(regulated, jnp.asarray(pref) * jnp.exp(beta * jnp.tanh(gaps)), 0.0)
    return c, a, regulated, start, history, epochs


def _reduced_runs(stats, steps, method, observe, advance, refresh, state0, opts):
    """Iterate a reduced model for ``steps`` steps from ``state0`` (runs, ...): ``observe``
    gives (w, g, trace, scores), ``advance(state, c, d, a)`` the next state, ``refresh`` the
    epoch start of InfoReg. Returns the BalancedRun of every run."""
    S, s, _ = _toy_moments(stats)
    M = s.size
    lam = opts.pop("unimodal")
    hist_len = opts["average"] + 1 if opts["window"] == "moving_average" else 2

    def step(carry, n):
        X, history, epochs = carry
        w, g, trace, scores = observe(X)
        c, a, regulated, start, history, epochs = _method_coefficients(
            method, n, scores, trace, history, epochs, **opts)
        X = jnp.where(start, refresh(X), X) if method == "inforeg" else X
        # the drive of branch m's gradient: the fused loss's g_m plus λ times its unimodal
        # loss's s_m − Σ_mm w_m
        d = g + lam * (s - jnp.diag(S) * w)
        return (advance(X, c, d, a), history, epochs), (w, trace, c, regulated)

    def one(X):
        init = (X, jnp.zeros((hist_len, M)), jnp.zeros((), jnp.int32))
        (X_end, _, _), (ws, traces, cs, regs) = jax.lax.scan(step, init, jnp.arange(steps))
        w_end, _, tr_end, _ = observe(X_end)
        return (jnp.concatenate([ws, w_end[None]]), jnp.concatenate([traces, tr_end[None]]),
                cs, regs)

    with float64():
        ws, traces, cs, regs = (np.asarray(v) for v in jax.jit(jax.vmap(one))(
            jnp.asarray(state0)))
    time = np.arange(steps + 1, dtype=float)
    w_star = np.linalg.pinv(S) @ s
    w_uni = s / np.diag(S)
    runs = []
    for b in range(ws.shape[0]):
        # a zero reference (Σ_yx_m = 0: nothing to learn) is never reached
        uni = np.array([_cross(time, ws[b, :, m] / w_uni[m]) if w_uni[m] != 0 else np.nan
                        for m in range(M)])
        glob = np.array([_cross(time, ws[b, :, m] / w_star[m]) if w_star[m] != 0 else np.nan
                         for m in range(M)])
        # compare.measure_unimodal_phase's definitions: the first modality is the one that
        # first reaches half of its unimodal solution, t_A that time; t_B the other's
        # half-global time
        if np.all(np.isnan(uni)) or M != 2:
            t_a = t_b = np.nan
        else:
            first = int(np.nanargmin(uni))
            t_a, t_b = uni[first], glob[1 - first]
        caveats, valid = [], True
        if method == "ogm_ge":
            caveats.append("mean-field noise: the coefficient and the drive taken at the mean "
                           "weights")
            if not np.isfinite(t_b):
                valid = False
                caveats.append(f"no transition within {steps} steps in mean field: the "
                               "noise's fluctuations decide the escape (ogm_ge_two_layer "
                               "gives the exact law)")
            else:
                lo, hi = int(np.floor(min(t_a, t_b))), int(np.ceil(max(t_a, t_b)))
                c_min = float(np.min(cs[b, lo:hi + 1]))
                if c_min < OGM_FROZEN:
                    valid = False
                    caveats.append(f"the leader's coefficient falls to {c_min:.1e} between t_A "
                                   "and t_B: the escape is set by the noise's fluctuations, "
                                   "not in mean field (ogm_ge_two_layer gives the exact law)")
        runs.append(BalancedRun(time, ws[b], traces[b], cs[b], regs[b], glob, float(t_a),
                                float(t_b), float(t_b / t_a), valid, tuple(caveats)))
    return runs


def balancing_two_layer(stats, lr: float, gram0, steps: int, method: str = "joint", *,
                        epoch: int = 10, beta: float = 0.9, K: float = 0.04,
                        window: str = "paper", average: int = 10, prefactors=None,
                        alpha: float = 0.8, continuous: bool = False,
                        unimodal: float = 0.0) -> BalancedRun:
    """Iterate the exact reduced dynamics (module docstring) from ``gram0`` (M, 4, 4) for one
    run, or (runs, M, 4, 4) for a batch (:func:`initial_gram`; a list of runs returned), for
    ``steps`` steps of gradient descent at ``lr``.

    ``method``: "joint", "ogm" (``alpha``, ``continuous``: transforms.ogm_ge without noise),
    "ogm_ge" (the same with the noise, in mean field: ``valid`` is False, with the reason in
    ``caveats``, where the noise's fluctuations decide the escape) or "inforeg" (``epoch``,
    ``beta``, ``K``, ``window``, ``average``, ``prefactors`` (a sequence, one per modality):
    transforms.inforeg). ``unimodal`` = λ ≥ 0 adds λ times every branch's unimodal loss
    ½E(y − ŷ_m)² to the objective (transforms.unimodal_losses; InfoReg* with "inforeg").
    Records every step.
    """
    lam = _check_options(method, window, unimodal)
    S, s, syy = _toy_moments(stats)
    M = s.size
    G0 = np.asarray(gram0, float)
    if G0.shape[-3:] != (M, 4, 4) or G0.ndim not in (3, 4):
        raise ValueError(f"gram0 must have shape ({M}, 4, 4) or (runs, {M}, 4, 4), got "
                         f"{G0.shape}")
    batched = G0.ndim == 4
    w_star = np.linalg.pinv(S) @ s
    noise = max(syy - s @ w_star, 0.0)

    def observe(G):
        w = G[:, 0, 1]
        dev = w - w_star
        g = -S @ dev
        ee = noise + dev @ S @ dev
        trace = (ee * jnp.diag(S) + 2.0 * g ** 2) * (G[:, 0, 0] + G[:, 1, 1])
        scores = s * w - 0.5 * jnp.diag(S) * w ** 2
        return w, g, trace, scores

    def refresh(G):
        """u_p ← u, v_p ← v (the epoch start of InfoReg)."""
        P = jnp.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0]])
        return jnp.einsum("ij,mjk,lk->mil", P, G, P)

    def advance(G, c, d, a):
        e = lr * a
        k = lr * c * d
        z = jnp.zeros(M)
        o = jnp.ones(M)
        T = jnp.stack([jnp.stack([1 - e, k, e, z], -1), jnp.stack([k, 1 - e, z, e], -1),
                       jnp.stack([z, z, o, z], -1), jnp.stack([z, z, z, o], -1)], -2)
        G_new = jnp.einsum("mij,mjk,mlk->mil", T, G, T)
        if method == "ogm_ge":
            # GE's noise in mean field: u gains η²d²|v|² of energy, v η²d²|u|² (the entries'
            # mean, a relative O(1/h), neglected); zero mean, so nothing else changes
            on = jnp.any(c < 1.0)
            add = jnp.where(on, lr ** 2 * d ** 2, 0.0)
            G_new = G_new.at[:, 0, 0].add(add * G[:, 1, 1]).at[:, 1, 1].add(add * G[:, 0, 0])
        return G_new

    pref = np.ones(M) if prefactors is None else np.asarray(prefactors, float)
    opts = dict(epoch=epoch, beta=beta, K=K, window=window, average=average, pref=pref,
                alpha=alpha, continuous=continuous, unimodal=lam)
    runs = _reduced_runs(stats, steps, method, observe, advance, refresh,
                         G0 if batched else G0[None], opts)
    return runs if batched else runs[0]


def balancing_deep(stats, depth: int, lr: float, u0, steps: int, method: str = "joint", *,
                   fusion_layer: int | None = None, epoch: int = 10, beta: float = 0.9,
                   K: float = 0.04, window: str = "paper", average: int = 10, prefactors=None,
                   alpha: float = 0.8, continuous: bool = False,
                   unimodal: float = 0.0) -> BalancedRun:
    """The methods of :func:`balancing_two_layer` on a deep fusion network (``depth`` = L
    layers, fusion at ``fusion_layer`` = L_f, default L: late fusion, 1: early fusion; every
    branch L_f layers, P = L − L_f shared layers; scalar modalities and output) from exactly
    balanced, aligned
    weights (``init_params(scheme="balanced", scale=u0)``: every layer of branch m of norm u0,
    or u0[m], every shared layer of norm X0 = √(Σ_m u0_m²); a sequence of such for a batch, a
    list returned).

    Reduced dynamics, exact for gradient descent (theory/balancing.py): every layer of branch
    m keeps one norm a_m, every shared layer one norm X (all branches feed the shared chain
    along one direction, so every gradient stays rank one along the layers' own directions),
    the map is w_m = sgn(Σ_yx,m) a_m^{L_f} X^P, and a step is

        a_m' = a_m + η(c_m sgn_m d_m a_m^{L_f−1} X^P − α_m(a_m − a_p,m)),
        X'   = X + η Σ_m sgn_m d_m a_m^{L_f} X^{P−1},

    with the drive d, OGM's scale c and InfoReg's α of the two-layer reduction: the methods
    act on the branches' parameters only (the shared layers follow the fused loss and any
    added unimodal losses, unmodulated), and scale or pull every layer of a branch alike, so
    balance and alignment are kept. Tr F_m = (E[e²]Σ_mm + 2g_m²) L_f a_m^{2(L_f−1)} X^{2P}.
    OGM-GE's noise breaks the alignment and is not reduced ("ogm_ge" is refused). A drive that
    turns against Σ_yx,m cannot be followed by aligned weights (a_m stays at 0): flagged."""
    lam = _check_options(method, window, unimodal,
                         methods=tuple(m for m in METHODS if m != "ogm_ge"))
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, got {depth!r}")
    Lf = depth if fusion_layer is None else fusion_layer
    if isinstance(Lf, bool) or not isinstance(Lf, (int, np.integer)) or not 1 <= Lf <= depth:
        raise ValueError(f"fusion_layer must be an integer with 1 <= fusion_layer <= depth = "
                         f"{depth}, got {fusion_layer!r}")
    S, s, syy = _toy_moments(stats)
    M = s.size
    L, P = int(Lf), int(depth) - int(Lf)
    A0 = np.asarray(u0, float)
    batched = A0.ndim == 2
    if A0.ndim > 2 or A0.shape[-1:] not in ((), (M,)) or np.any(~np.isfinite(A0)) \
            or np.any(A0 <= 0):
        raise ValueError(f"u0 must be positive: a number or one per branch ({M},) for one run, "
                         f"(runs, {M}) for a batch; got {u0!r}")
    A0 = np.broadcast_to(A0, (A0.shape[0] if batched else 1, M))
    # the shared chain's norm: √(Σ_m u0_m²) (balanced), one more row of the state
    A0 = np.concatenate([A0, np.sqrt(np.sum(A0 ** 2, axis=-1, keepdims=True))], axis=-1)
    if np.any(s == 0):
        raise ValueError("balancing_deep needs Sigma_yx,m != 0 for every modality (the aligned "
                         "weights point along it)")
    sign = np.sign(s)
    w_star = np.linalg.pinv(S) @ s
    noise = max(syy - s @ w_star, 0.0)

    def observe(X):
        av, Xs = X[:M, 0], X[M, 0]
        w = sign * av ** L * Xs ** P
        dev = w - w_star
        g = -S @ dev
        ee = noise + dev @ S @ dev
        trace = (ee * jnp.diag(S) + 2.0 * g ** 2) * L * av ** (2 * (L - 1)) * Xs ** (2 * P)
        scores = s * w - 0.5 * jnp.diag(S) * w ** 2
        return w, g, trace, scores

    def refresh(X):
        return jnp.stack([X[:, 0], X[:, 0]], -1)

    def advance(X, c, d, a):
        av, ap, Xs = X[:M, 0], X[:M, 1], X[M, 0]
        new = av + lr * (c * sign * d * av ** (L - 1) * Xs ** P - a * (av - ap))
        if P:
            Xs = Xs + lr * jnp.sum(sign * d * av ** L) * Xs ** (P - 1)
        return jnp.stack([jnp.append(new, Xs), jnp.append(ap, X[M, 1])], -1)

    pref = np.ones(M) if prefactors is None else np.asarray(prefactors, float)
    opts = dict(epoch=epoch, beta=beta, K=K, window=window, average=average, pref=pref,
                alpha=alpha, continuous=continuous, unimodal=lam)
    runs = _reduced_runs(stats, steps, method, observe, advance, refresh,
                         np.stack([A0, A0], -1), opts)
    wrong = [m for m in range(M) if sign[m] * w_star[m] < 0]
    if wrong:
        why = (f"the global solution gives {', '.join(str(stats.names[m]) for m in wrong)} the "
               "sign opposite to Sigma_yx: aligned weights cannot reverse it (the branch "
               "stalls at zero; random weights regrow it along the reversed mode)")
        runs = [r._replace(valid=False, caveats=r.caveats + (why,)) for r in runs]
    return runs if batched else runs[0]


def _cross(t, z, level=0.5):
    idx = int(np.argmax(z >= level))
    if not z[idx] >= level:
        return np.nan
    if idx == 0 or z[idx] == z[idx - 1]:
        return float(t[idx])
    f = (level - z[idx - 1]) / (z[idx] - z[idx - 1])
    return float(t[idx - 1] + f * (t[idx] - t[idx - 1]))


def inforeg_slowdown(s: float, lr: float, alpha: float, epoch: int) -> Prediction:
    """How much InfoReg's proximal term slows the escape of the regulated modality.

        κ = ln F / (E ln(1 + ηs)),   F = (s r^E − α)/(s − α),   r = 1 + η(s − α)   (α ≠ s)

    (derived in the module docstring, "Leading order for InfoReg", and in the repository's
    theory/balancing.py). Without the proximal term the regulated mode's amplitude grows by
    (1 + ηs) per step; with it, by F per epoch of E steps. κ < 1: the escape, and the
    modality's t_m that it dominates, take about 1/κ times longer (t_m ≈ t_m^joint/κ).

    Arguments (symbol: argument, units):

    * s: ``s``, the drive of the regulated modality's growing mode, g = s_m − Σ_n Σ_mn w_n,
      taken at its value far below the target, g ≈ s_m = Σ_yx,m (the scalar modality's
      input-output correlation). Units of Σ_yx: with τ = 1/η the mode grows at rate s per
      unit of τ.
    * η: ``lr``, the gradient-descent step (population level). Times are in steps.
    * α: ``alpha``, the coefficient of InfoReg's proximal term: the regulated branch's
      gradient gets α(θ_m − θ_m^prev) added, the gradient of (α/2)‖θ_m − θ_m^prev‖² (Huang,
      Wei, Yang & Hu, CVPR 2025, Algorithm 1), with α = c_m exp(β tanh Δ_m) (their eq. 16;
      β the ``beta`` and c_m the ``prefactors`` of :func:`dlnfusion.transforms.inforeg`,
      c_m = 1 in the paper; Δ_m the score gap of eq. 10). Same units as ``s`` (both multiply
      weights in a gradient): a step pulls the weights back by the fraction ηα of their
      change since θ_m^prev. During the escape the scores are still near zero, so Δ_m ≈ 0
      and α ≈ c_m (= 1 with the paper's prefactor: pass ``alpha=1`` to predict
      ``inforeg(spec, epoch=E)``).
    * E: ``epoch``, the steps between refreshes of θ_m^prev (the ``epoch`` of
      :func:`dlnfusion.transforms.inforeg`; at population level an epoch is that many
      steps), a positive integer.

    Returns a :class:`~.common.Prediction` of κ (dimensionless). Assumptions (leading order):
    the regulated mode far below its target (g ≈ s), balanced aligned weights, α constant
    during the escape and the modality regulated throughout it (inside InfoReg's window).
    ``valid`` is False (with the reason in ``caveats``) when 1 + η(s − α) ≤ 0 (the proximal
    step overshoots) or F ≤ 1 (the mode does not grow over an epoch); at α = s (where
    F = 1 + Eηs) it returns NaN, not valid. Raises ValueError unless ``s``, ``lr`` and
    ``alpha`` are positive and finite and ``epoch`` a positive integer."""
    for name, v in (("s", s), ("lr", lr), ("alpha", alpha)):
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 1:
        raise ValueError(f"epoch must be a positive integer, got {epoch!r}")
    if np.isclose(alpha, s):
        return Prediction(float("nan"), False, ("alpha equals the drive s: F = 1 + Eηs",))
    r = 1.0 + lr * (s - alpha)
    F = (s * r ** epoch - alpha) / (s - alpha)
    caveats = []
    if r <= 0:
        caveats.append("1 + lr (s − alpha) <= 0: the proximal step overshoots")
    if F <= 1:
        caveats.append("the regulated mode does not grow over an epoch")
    kappa = np.log(F) / (epoch * np.log1p(lr * s)) if F > 0 else float("nan")
    return Prediction(float(kappa), not caveats, tuple(caveats))


def noise_gram(spec: NetworkSpec, params: Params) -> np.ndarray:
    """(runs, M, 5): per branch of a two-layer late-fusion network with scalar modalities and
    output (batched params) the Gram entries (|u|², u·v, |v|², e·u, e·v) of its weight vectors
    u = W^1, v = W^2 and the unit all-ones direction e = 1/√h: the state of
    :func:`ogm_ge_two_layer`."""
    G = initial_gram(spec, params)
    out = []
    for layers in params.branches:
        u = np.asarray(layers[0])[..., :, 0]
        v = np.asarray(layers[1])[..., 0, :]
        h = u.shape[-1]
        out.append(np.stack([u.sum(-1), v.sum(-1)], -1) / np.sqrt(h))
    ev = np.stack(out, axis=-2)
    return np.concatenate([G[..., 0, 0, None], G[..., 0, 1, None], G[..., 1, 1, None], ev], -1)


class NoisyRun(NamedTuple):
    """The law of OGM-GE's training (:func:`ogm_ge_two_layer`) from one initialization,
    sampled over ``paths`` noise realizations: ``t_a``, ``t_b``, ``ratio`` (paths,) as
    :func:`dlnfusion.compare.measure_unimodal_phase` defines them (NaN where the transition is
    not reached within the steps); ``ratio_mean`` and ``ratio_sem`` their mean and its standard
    error over the paths that reach both transitions; ``time`` (T,), ``w_mean`` and ``w_sd``
    (T, M) the mean and standard deviation of the total weights over the paths every
    ``stride`` steps (over the paths that have not diverged); ``reached`` the fraction of paths
    with both transitions, ``diverged`` the fraction that diverged within the steps."""

    t_a: np.ndarray
    t_b: np.ndarray
    ratio: np.ndarray
    ratio_mean: float
    ratio_sem: float
    time: np.ndarray
    w_mean: np.ndarray
    w_sd: np.ndarray
    reached: float
    diverged: float
    valid: bool = True
    caveats: tuple = ()


def _first_crossing(prev, now, n, found, level=0.5):
    """Update the first crossing of ``level`` by a sequence (``prev`` at step n − 1, ``now`` at
    step n, linear interpolation between them, step 0 exactly; NaN until found)."""
    hit = jnp.isnan(found) & (now >= level)
    dz = now - prev
    frac = jnp.where((n > 0) & (dz != 0), (level - prev) / jnp.where(dz != 0, dz, 1.0), 1.0)
    t = jnp.where(n > 0, n - 1 + frac, 0.0)
    return jnp.where(hit, t, found)


def ogm_ge_two_layer(stats, lr: float, state0, width: int, steps: int, *, alpha: float = 0.8,
                     continuous: bool = False, unimodal: float = 0.0, paths: int = 256,
                     seed: int = 0, stride: int = 10, stop_loss: float | None = 1e-4,
                     diverge_loss: float = 1e12):
    """OGM-GE on a two-layer late-fusion network (width h, scalar modalities and output) at
    population level: the exact law of its noisy training, sampled on a reduced state.

    A step of branch m is u' = u + k v + ξ_u, v' = v + k u + ξ_v with k = η c d (c the OGM
    scale, d the drive) and ξ_u ~ N(0, σ_u² I_h), σ_u² = η² d² std(v)² = η² d²(|v|² − (e·v)²)/h
    (GE's noise: the gradient tensor's own standard deviation over its h entries; e = 1/√h the
    all-ones direction), ξ_v alike. The law of the weights is invariant under the rotations
    of R^h that fix e, so the Gram entries x = (|u|², u·v, |v|², e·u, e·v) of every branch form
    a Markov chain, and one step of it is drawn exactly from 13 numbers: in an orthonormal basis
    of span(e, p, q) (p = u + kv, q = v + ku; Gram-Schmidt from their Gram matrix) the first
    three coordinates of each noise vector are standard normals, and the squared norms and the
    inner product of their remaining h − 3 coordinates are a 2 × 2 Wishart matrix with h − 3
    degrees of freedom (Bartlett: χ²_{h−3}, χ²_{h−4} and a normal). Every quantity the method
    uses — w = u·v, the scores, the coefficients, the noise scales — is a function of x, so
    nothing is approximated; the cost is independent of h. (theory/balancing.py checks the
    step's moments against the h-dimensional step.)

    ``state0``: (M, 5) or (runs, M, 5) from :func:`noise_gram`; ``paths`` noise realizations
    per run (independent of the network's own noise: a prediction of the law, not of a
    realization). A path stops, as :func:`dlnfusion.train` stops a run, once its loss is below
    ``stop_loss`` (None: never), and is marked diverged (and frozen) once its loss exceeds
    ``diverge_loss`` or is not finite: GE's noise pumps energy into the directions orthogonal to
    the learned mode until the step is unstable, and the fraction of paths it takes is
    ``diverged``. Returns a :class:`NoisyRun` per run (a list for a batch)."""
    lam = _check_unimodal(unimodal)
    for name, v in (("width", width), ("paths", paths), ("steps", steps), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if width < 5:
        raise ValueError(f"width must be >= 5 (the Wishart step needs h − 4 > 0), got {width}")
    for name, v in (("lr", lr), ("diverge_loss", diverge_loss)):
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if stop_loss is not None and not stop_loss >= 0:
        raise ValueError(f"stop_loss must be a non-negative number or None, got {stop_loss!r}")
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a non-negative number, got {alpha!r}")
    S, s, syy = _toy_moments(stats)
    M = s.size
    if M != 2:
        raise ValueError(f"OGM-GE modulates two modalities; the statistics have {M}")
    X0 = np.asarray(state0, float)
    if X0.shape[-2:] != (M, 5) or X0.ndim not in (2, 3) or not np.all(np.isfinite(X0)):
        raise ValueError(f"state0 must be finite, of shape ({M}, 5) or (runs, {M}, 5) "
                         f"(noise_gram), got {X0.shape}")
    batched = X0.ndim == 3
    X0 = X0 if batched else X0[None]
    w_star = np.linalg.pinv(S) @ s
    diagS = np.diag(S)
    w_uni = np.where(diagS > 0, s / np.where(diagS > 0, diagS, 1.0), 0.0)
    ref = np.stack([w_uni, w_star])                            # (2 levels, M)
    consts = dict(S=S, s=s, w_star=w_star, ref=ref, noise=max(syy - s @ w_star, 0.0),
                  lr=float(lr), lam=lam, alpha=float(alpha),
                  stop=-np.inf if stop_loss is None else float(stop_loss),
                  diverge=float(diverge_loss))
    kernel = _ogm_ge_kernel(int(width), int(paths), int(steps), int(stride), bool(continuous))
    keys = jax.random.split(jax.random.PRNGKey(int(seed)), X0.shape[0])
    with float64():
        c = {k: jnp.asarray(v, jnp.float64) for k, v in consts.items()}
        found, wm, w2, bad = (np.asarray(v) for v in kernel(c, jnp.asarray(X0), keys))
    time = np.arange(wm.shape[1], dtype=float) * stride
    runs = []
    for r in range(X0.shape[0]):
        uni, glob = found[r, :, 0], found[r, :, 1]                # (P, M)
        none = np.all(np.isnan(uni), axis=-1)
        first = np.argmin(np.where(np.isnan(uni), np.inf, uni), axis=-1)
        idx = np.arange(paths)
        t_a = np.where(none, np.nan, uni[idx, first])
        t_b = np.where(none, np.nan, glob[idx, 1 - first])
        ratio = t_b / t_a
        ok = np.isfinite(ratio)
        reached = float(np.mean(ok))
        caveats, valid = [], True
        if reached < 1:
            caveats.append(f"{100 * (1 - reached):.3g} % of the paths do not reach both "
                           f"transitions within {steps} steps")
            valid = reached > 0.5
        mean = float(np.mean(ratio[ok])) if ok.any() else float("nan")
        sem = float(np.std(ratio[ok], ddof=1) / np.sqrt(ok.sum())) if ok.sum() > 1 \
            else float("nan")
        diverged = float(np.mean(bad[r]))
        if diverged > 0:
            caveats.append(f"{100 * diverged:.3g} % of the paths diverge within {steps} steps "
                           "(GE's noise inflates the weights' norms until the step is unstable)")
        sd = np.sqrt(np.maximum(w2[r] - wm[r] ** 2, 0.0))
        runs.append(NoisyRun(t_a, t_b, ratio, mean, sem, time, wm[r], sd, reached, diverged,
                             valid, tuple(caveats)))
    return runs if batched else runs[0]


def _ge_gram_step(X, k, su, sv, key, h):
    """One exact draw of the Gram entries x = (|u|², u·v, |v|², e·u, e·v) (last axis of ``X``)
    after u' = u + k v + su z, v' = v + k u + sv y with z, y independent standard normal vectors
    of R^h (traceable; k, su, sv broadcast against X[..., 0]). In an orthonormal basis of
    span(e, p, q), p = u + kv, q = v + ku, built by Gram-Schmidt from their Gram entries, the
    first three coordinates of z and y are standard normals, and the squared norms and inner
    product of the other h − 3 coordinates are a Wishart_2(h − 3, I) matrix, drawn by Bartlett
    (χ²_{h−3}, χ²_{h−4} and a normal)."""
    uu, uv, vv, eu, ev = (X[..., i] for i in range(5))
    pp = uu + 2 * k * uv + k ** 2 * vv
    qq = vv + 2 * k * uv + k ** 2 * uu
    pq = uv * (1 + k ** 2) + k * (uu + vv)
    ep, eq = eu + k * ev, ev + k * eu
    l22 = jnp.sqrt(jnp.maximum(pp - ep ** 2, 0.0))
    pos = l22 > 1e-300
    l32 = jnp.where(pos, (pq - ep * eq) / jnp.where(pos, l22, 1.0), 0.0)
    l33 = jnp.sqrt(jnp.maximum(qq - eq ** 2 - l32 ** 2, 0.0))
    k1, k2, k3 = jax.random.split(key, 3)
    zs = jax.random.normal(k1, X.shape[:-1] + (7,), X.dtype)
    a2 = jax.random.chisquare(k2, h - 3, X.shape[:-1], X.dtype)
    c2 = jax.random.chisquare(k3, h - 4, X.shape[:-1], X.dtype)
    z1, z2, z3, y1, y2, y3, b = (zs[..., i] for i in range(7))
    r11, r12, r22 = a2, jnp.sqrt(a2) * b, b ** 2 + c2
    pz, qz = ep * z1 + l22 * z2, eq * z1 + l32 * z2 + l33 * z3
    py, qy = ep * y1 + l22 * y2, eq * y1 + l32 * y2 + l33 * y3
    return jnp.stack([
        pp + 2 * su * pz + su ** 2 * (z1 ** 2 + z2 ** 2 + z3 ** 2 + r11),
        pq + sv * py + su * qz + su * sv * (z1 * y1 + z2 * y2 + z3 * y3 + r12),
        qq + 2 * sv * qy + sv ** 2 * (y1 ** 2 + y2 ** 2 + y3 ** 2 + r22),
        ep + su * z1, eq + sv * y1], -1)


_SEGMENT = 256


@functools.lru_cache(maxsize=16)
def _ogm_ge_kernel(h, paths, steps, stride, continuous):
    """The jitted sampler of :func:`ogm_ge_two_layer` for one shape: segments of up to
    _SEGMENT steps (each a scan) until every path has stopped or the budget is spent; the
    statistics enter as arrays, so one compilation serves every ρ of a sweep."""
    size = min(_SEGMENT, steps + 1)
    n_seg = -(-(steps + 1) // size)          # steps 0..steps: the last one only records
    n_rec = steps // stride + 1

    def one(c, x0, key):
        S, s, w_star, ref = c["S"], c["s"], c["w_star"], c["ref"]
        diagS = jnp.diag(S)
        M = s.shape[0]
        has_ref = ref != 0
        safe_ref = jnp.where(has_ref, ref, 1.0)

        def loss_of(w):
            dev = w - w_star
            return 0.5 * (c["noise"] + jnp.einsum("pm,mn,pn->p", dev, S, dev))

        def level(w):
            return jnp.where(has_ref, w[:, None, :] / safe_ref, -jnp.inf)   # (P, 2, M)

        def step(carry, n):
            X, key, prev, found, bad, done = carry                    # X (P, M, 5)
            uu, uv, vv, eu, ev = (X[..., i] for i in range(5))
            w = uv
            z = level(w)
            live = n <= steps                       # the last segment may run past the budget
            found = jnp.where(live, _first_crossing(prev, z, n, found), found)
            loss = loss_of(w)
            bad = bad | (live & (~jnp.isfinite(loss) | (loss > c["diverge"])))
            done = done | bad | (loss < c["stop"]) | (n >= steps)
            scores = s * w - 0.5 * diagS * w ** 2
            coef = jax.vmap(lambda sc: ogm_coefficients(sc, c["alpha"], continuous))(scores)
            d = -(w - w_star) @ S + c["lam"] * (s - diagS * w)
            on = jnp.any(coef < 1.0, axis=-1, keepdims=True)
            lr = c["lr"]
            k = lr * coef * d
            su = jnp.where(on, lr * jnp.abs(d) * jnp.sqrt(jnp.maximum(vv - ev ** 2, 0.0) / h),
                           0.0)
            sv = jnp.where(on, lr * jnp.abs(d) * jnp.sqrt(jnp.maximum(uu - eu ** 2, 0.0) / h),
                           0.0)
            key, sub = jax.random.split(key)
            new = _ge_gram_step(X, k, su, sv, sub, h)
            new = jnp.where(done[:, None, None], X, new)
            keep = ~bad[:, None]
            cnt = jnp.maximum(jnp.sum(keep), 1)
            moments = (jnp.sum(jnp.where(keep, w, 0.0), 0) / cnt,
                       jnp.sum(jnp.where(keep, w ** 2, 0.0), 0) / cnt)
            return (new, key, z, found, bad, done), moments

        def segment(state):
            i, carry, wm, w2 = state
            ns = i * size + jnp.arange(size)
            carry, (m1, m2) = jax.lax.scan(step, carry, ns)
            wm = jax.lax.dynamic_update_slice(wm, m1, (i * size, 0))
            w2 = jax.lax.dynamic_update_slice(w2, m2, (i * size, 0))
            return i + 1, carry, wm, w2

        def going(state):
            i, carry = state[0], state[1]
            return (i < n_seg) & ~jnp.all(carry[5])

        X = jnp.broadcast_to(x0, (paths,) + x0.shape)
        nan = jnp.full((paths, 2, M), jnp.nan)
        no = jnp.zeros((paths,), bool)
        buf = jnp.full((n_seg * size, M), jnp.nan)
        i, carry, wm, w2 = jax.lax.while_loop(
            going, segment, (0, (X, key, nan, nan, no, no), buf, buf))
        _, _, _, found, bad, _ = carry
        # every path stopped before the last segment: the records after it hold the frozen
        # state, that of the last step run
        n_end = i * size
        rows = jnp.arange(n_seg * size)[:, None]
        wm = jnp.where(rows >= n_end, wm[n_end - 1], wm)
        w2 = jnp.where(rows >= n_end, w2[n_end - 1], w2)
        return found, wm[::stride][:n_rec], w2[::stride][:n_rec], bad

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))
