"""Theory of modality-balancing methods in a two-layer late-fusion network (scalar
modalities, scalar output; :func:`balancing_deep` for deep late fusion from balanced aligned
weights): joint training, OGM (gradient modulation without noise), OGM-GE
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

Leading order for InfoReg (:func:`inforeg_slowdown`). In the exponential phase of the
regulated mode (g ≈ s constant, balanced aligned weights of amplitude a, w = a²) a step is
a' = (1 + η(s − α)) a + ηα a_p within an epoch of E steps started at a_p, so an epoch multiplies
the amplitude by

    F = (s r^E − α)/(s − α),   r = 1 + η(s − α)      (α ≠ s),

against (1 + ηs)^E without the proximal term: the escape of the regulated modality is slower by
κ = ln F / (E ln(1 + ηs)) and its t_m, dominated by the escape, longer by about 1/κ.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..networks import NetworkSpec, Params
from ..precision import float64
from .common import Prediction
from .fisher import WINDOW_RULES, _toy_moments

__all__ = ["BalancedRun", "balancing_two_layer", "balancing_deep", "initial_gram",
           "inforeg_slowdown",
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
                               "noise's fluctuations decide the escape")
            else:
                lo, hi = int(np.floor(min(t_a, t_b))), int(np.ceil(max(t_a, t_b)))
                c_min = float(np.min(cs[b, lo:hi + 1]))
                if c_min < OGM_FROZEN:
                    valid = False
                    caveats.append(f"the leader's coefficient falls to {c_min:.1e} between t_A "
                                   "and t_B: the escape is set by the noise's fluctuations, "
                                   "not in mean field")
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
                   epoch: int = 10, beta: float = 0.9, K: float = 0.04, window: str = "paper",
                   average: int = 10, prefactors=None, alpha: float = 0.8,
                   continuous: bool = False, unimodal: float = 0.0) -> BalancedRun:
    """The methods of :func:`balancing_two_layer` on a deep late-fusion network (every branch
    ``depth`` = L layers, no shared layers, scalar modalities and output) from exactly
    balanced, aligned weights (``init_params(scheme="balanced", scale=u0)``: every layer of
    branch m of norm u0, or u0[m]; a sequence of such for a batch, a list returned).

    Reduced dynamics, exact for gradient descent (theory/balancing.py): every layer of branch
    m keeps one norm a_m, the map is w_m = sgn(Σ_yx,m) a_m^L, and a step is
    a' = a + η(c sgn(Σ_yx,m) d a^{L−1} − α(a − a_p)) with the drive d, OGM's scale c and
    InfoReg's α of the two-layer reduction: the methods scale or pull every layer of a branch
    alike, so balance and alignment are kept. Tr F_m = (E[e²]Σ_mm + 2g_m²) L a_m^{2(L−1)}.
    OGM-GE's noise breaks the alignment and is not reduced ("ogm_ge" is refused). A drive that
    turns against Σ_yx,m cannot be followed by aligned weights (a_m stays at 0): flagged."""
    lam = _check_options(method, window, unimodal,
                         methods=tuple(m for m in METHODS if m != "ogm_ge"))
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, got {depth!r}")
    S, s, syy = _toy_moments(stats)
    M = s.size
    L = int(depth)
    A0 = np.asarray(u0, float)
    batched = A0.ndim == 2
    if A0.ndim > 2 or A0.shape[-1:] not in ((), (M,)) or np.any(~np.isfinite(A0)) \
            or np.any(A0 <= 0):
        raise ValueError(f"u0 must be positive: a number or one per branch ({M},) for one run, "
                         f"(runs, {M}) for a batch; got {u0!r}")
    A0 = np.broadcast_to(A0, (A0.shape[0] if batched else 1, M))
    if np.any(s == 0):
        raise ValueError("balancing_deep needs Sigma_yx,m != 0 for every modality (the aligned "
                         "weights point along it)")
    sign = np.sign(s)
    w_star = np.linalg.pinv(S) @ s
    noise = max(syy - s @ w_star, 0.0)

    def observe(X):
        w = sign * X[:, 0] ** L
        dev = w - w_star
        g = -S @ dev
        ee = noise + dev @ S @ dev
        trace = (ee * jnp.diag(S) + 2.0 * g ** 2) * L * X[:, 0] ** (2 * (L - 1))
        scores = s * w - 0.5 * jnp.diag(S) * w ** 2
        return w, g, trace, scores

    def refresh(X):
        return jnp.stack([X[:, 0], X[:, 0]], -1)

    def advance(X, c, d, a):
        av, ap = X[:, 0], X[:, 1]
        new = av + lr * (c * sign * d * av ** (L - 1) - a * (av - ap))
        return jnp.stack([new, ap], -1)

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
    """κ = ln F/(E ln(1 + ηs)), F = (s r^E − α)/(s − α), r = 1 + η(s − α): the factor by which a
    proximal term α(θ − θ_prev) refreshed every E = ``epoch`` steps slows the exponential
    escape of a mode of drive s (module docstring). Leading order: g ≈ s (the mode far below
    its target) and balanced aligned weights; requires s, lr, alpha > 0 and α ≠ s."""
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
