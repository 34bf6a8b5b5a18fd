"""Exact reduced simulators of the modality-balancing methods in fusion networks with scalar
modalities and a scalar output: joint training, OGM (gradient modulation without noise),
OGM-GE (its noise, in mean field or by its exact law) and InfoReg, each optionally with added
unimodal losses, trained by gradient descent at population level as
:mod:`dlnfusion.transforms` trains the network. The methods' rules (OGM's coefficient,
InfoReg's window and prefactor) are those of :mod:`dlnfusion.rules`, the ones the transforms
apply; the initial states come from :func:`dlnfusion.theory.initial_gram` and
:func:`dlnfusion.theory.noise_gram`.

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

Results. :func:`balancing_two_layer` and :func:`balancing_deep` return one
:class:`BalancedRun` for one run or for a batch (its fields carry the batch in front, ``valid``
and ``caveats`` one entry per run); :func:`ogm_ge_two_layer` one :class:`NoisyRun` whose
``status`` holds one code per noise path.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .. import checks
from ..precision import float64
from ..results import Run, Status, crossing_update, first_crossing
from ..rules import WINDOWS, inforeg_regulation, ogm_coefficients, push_trace, score_gaps
from ..theory.fisher import _toy_moments
from ..transforms.balancing import _inforeg_options

__all__ = ["BalancedRun", "NoisyRun", "balancing_two_layer", "balancing_deep",
           "ogm_ge_two_layer", "METHODS", "OGM_FROZEN"]

METHODS = ("joint", "ogm", "ogm_ge", "inforeg")


@dataclass(frozen=True, eq=False)
class BalancedRun(Run):
    """The reduced dynamics of :func:`balancing_two_layer` or :func:`balancing_deep`, for one run
    (batch shape ()) or a batch of runs (batch shape (runs,)); ``*b`` below is the batch shape.

    ``time`` (T,) the recorded steps 0 … steps; ``w`` (*b, T, M) the total weight of every
    branch; ``trace`` (*b, T, M) Tr F_m; ``coefficient`` (*b, T − 1, M) the OGM scale applied at
    every step (1 otherwise); ``regulated`` (*b, T − 1, M) InfoReg's flags at every step;
    ``crossing`` (*b, M) the first step at which w_m reaches half of its global value
    (interpolated, :func:`dlnfusion.results.first_crossing`; NaN if never); ``t_A``, ``t_B`` and
    ``ratio`` = t_b/t_a (*b,) as :func:`dlnfusion.compare.measure_unimodal_phase` defines them;
    ``valid`` (*b,) whether the run's assumptions hold and ``caveats`` (*b,) an object array
    holding, per run, the tuple of the reasons in words (a single run holds the bool and the
    tuple themselves); ``status`` (*b,) int8 :class:`~dlnfusion.results.Status` codes: DIVERGED
    where a record is not finite (the map is not frozen: later records are inf or nan),
    MAX_STEPS otherwise (the reduced map runs every step).
    """

    time: np.ndarray
    w: np.ndarray
    trace: np.ndarray
    coefficient: np.ndarray
    regulated: np.ndarray
    crossing: np.ndarray
    t_A: np.ndarray
    t_B: np.ndarray
    ratio: np.ndarray
    valid: np.ndarray
    caveats: np.ndarray
    status: np.ndarray


def _object_array(items) -> np.ndarray:
    """A 1-D object array whose entries are the given tuples (numpy would otherwise make a 2-D
    array of tuples of equal length)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = tuple(item)
    return out


def _finite_status(*records) -> np.ndarray:
    """(runs,) int8: DIVERGED where a record of the run (leading axis) is not finite,
    MAX_STEPS otherwise."""
    ok = np.all([np.all(np.isfinite(r.reshape(r.shape[0], -1)), axis=-1) for r in records],
                axis=0)
    return np.where(ok, Status.MAX_STEPS, Status.DIVERGED).astype(np.int8)


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
        raise ValueError(f"balancing must be one of {methods}, got {method!r}")
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    return _check_unimodal(unimodal)


def _check_run(M, lr, steps, epoch, beta, K, window, average, prefactors, alpha):
    """The training and method arguments of the reduced runs, refused as the transforms that
    the runs reduce (:func:`dlnfusion.transforms.inforeg`, :func:`~dlnfusion.transforms.ogm_ge`)
    refuse them: lr positive, steps a positive integer, epoch a positive integer, beta ≥ 0,
    K in (0, 1), average a positive integer, alpha ≥ 0, prefactors non-negative (one per
    branch). Only checks: the values are used as given."""
    checks.learning_rate(lr)
    checks.positive_int("steps", steps)
    checks.positive_int("epoch", epoch)
    _inforeg_options((), beta, K, window, average, None)
    checks.nonnegative("alpha", alpha)
    if prefactors is not None:
        pref = np.asarray(prefactors, float)
        if pref.shape not in ((), (M,)) or not np.all(np.isfinite(pref)) or np.any(pref < 0):
            raise ValueError(f"prefactors must be non-negative finite numbers, one per branch "
                             f"({M}), got {prefactors!r}")


#: Tolerance of the Gram-matrix check, relative to the largest entry: √ε of float64. Round-off
#: of a Gram matrix of float64 weight vectors, and of its eigenvalues, is a few ε (measured
#: ≲ 5e-16 relative for initial_gram at width 5 to 2000), far below; an asymmetry or a negative
#: eigenvalue above it is not round-off.
_GRAM_RTOL = float(np.sqrt(np.finfo(np.float64).eps))


def _check_gram(G):
    """Refuse Gram matrices (…, 4, 4) that are not finite, symmetric and positive
    semi-definite (to :data:`_GRAM_RTOL` of their largest entry)."""
    if not np.all(np.isfinite(G)):
        raise ValueError("init must be finite (the Gram matrices of initial_gram)")
    scale = np.max(np.abs(G), axis=(-2, -1), keepdims=True)
    if np.any(np.abs(G - np.swapaxes(G, -1, -2)) > _GRAM_RTOL * scale):
        raise ValueError("init must hold symmetric Gram matrices (initial_gram)")
    low = np.linalg.eigvalsh(G)[..., :1, None]
    if np.any(low < -_GRAM_RTOL * scale):
        raise ValueError("init must hold positive semi-definite Gram matrices (initial_gram), "
                         f"got an eigenvalue {float(np.min(low)):.3g}")


def _check_unimodal(unimodal):
    return checks.nonnegative("unimodal", unimodal)


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
        history, epochs = push_trace(history, epochs, trace, start)
        gaps = score_gaps(scores)
        # the history holds the initial trace too: epoch t starts with t + 1 traces
        regulated, a = inforeg_regulation(history, epochs - 1, gaps, window=window, K=K,
                                          average=average, beta=beta, prefactors=pref)
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

    def crossings(ref):
        # a zero reference (Σ_yx_m = 0: nothing to learn) is never reached
        with np.errstate(divide="ignore", invalid="ignore"):
            series = ws / np.where(ref != 0, ref, 1.0)
        return np.where(ref != 0, first_crossing(series, time, 0.5, axis=-2), np.nan)

    uni, glob = crossings(w_uni), crossings(w_star)                 # (runs, M)
    # compare.measure_unimodal_phase's definitions: the first modality is the one that first
    # reaches half of its unimodal solution, t_A that time; t_B the other's half-global time
    none = np.all(np.isnan(uni), axis=-1) | (M != 2)
    first = np.argmin(np.where(np.isnan(uni), np.inf, uni), axis=-1)
    rows = np.arange(ws.shape[0])
    t_a = np.where(none, np.nan, uni[rows, first])
    t_b = np.where(none, np.nan, glob[rows, (1 - first) % M])
    valid = np.ones(ws.shape[0], bool)
    caveats = []
    for b in rows:
        notes = []
        if method == "ogm_ge":
            notes.append("mean-field noise: the coefficient and the drive taken at the mean "
                         "weights")
            if not np.isfinite(t_b[b]):
                valid[b] = False
                notes.append(f"no transition within {steps} steps in mean field: the "
                             "noise's fluctuations decide the escape (ogm_ge_two_layer "
                             "gives the exact law)")
            else:
                lo = int(np.floor(min(t_a[b], t_b[b])))
                hi = int(np.ceil(max(t_a[b], t_b[b])))
                c_min = float(np.min(cs[b, lo:hi + 1]))
                if c_min < OGM_FROZEN:
                    valid[b] = False
                    notes.append(f"the leader's coefficient falls to {c_min:.1e} between t_A "
                                 "and t_B: the escape is set by the noise's fluctuations, "
                                 "not in mean field (ogm_ge_two_layer gives the exact law)")
        caveats.append(notes)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = t_b / t_a
    return BalancedRun(time, ws, traces, cs, regs, glob, t_a, t_b, ratio, valid,
                       _object_array(caveats), _finite_status(ws, traces))


def balancing_two_layer(stats, lr: float, init, steps: int, balancing: str = "joint", *,
                        epoch: int = 10, beta: float = 0.9, K: float = 0.04,
                        window: str = "paper", average: int = 10, prefactors=None,
                        alpha: float = 0.8, continuous: bool = False,
                        unimodal: float = 0.0) -> BalancedRun:
    """Iterate the exact reduced dynamics (module docstring) from ``init`` (M, 4, 4) for one
    run, or (runs, M, 4, 4) for a batch (:func:`dlnfusion.theory.initial_gram`), for ``steps``
    steps of gradient descent at ``lr``. Returns one :class:`BalancedRun`, batched for a batch.

    ``balancing``: "joint", "ogm" (``alpha``, ``continuous``: transforms.ogm_ge without noise),
    "ogm_ge" (the same with the noise, in mean field: ``valid`` is False, with the reason in
    ``caveats``, where the noise's fluctuations decide the escape) or "inforeg" (``epoch``,
    ``beta``, ``K``, ``window``, ``average``, ``prefactors`` (a sequence, one per modality):
    transforms.inforeg). The rules are those of :mod:`dlnfusion.rules`. ``unimodal`` = λ ≥ 0 adds λ times every branch's unimodal loss
    ½E(y − ŷ_m)² to the objective (transforms.unimodal_losses; InfoReg* with "inforeg").
    Records every step.

    Raises ValueError unless ``lr`` is positive and finite, ``steps`` a positive integer,
    ``init`` finite, symmetric and positive semi-definite (a Gram matrix), and the methods'
    options those the transforms accept (whichever method runs): ``epoch`` and ``average``
    positive integers, ``beta`` ≥ 0, ``K`` in (0, 1), ``alpha`` ≥ 0, ``prefactors``
    non-negative.
    """
    method = balancing
    gram0 = init
    lam = _check_options(method, window, unimodal)
    S, s, syy = _toy_moments(stats)
    M = s.size
    _check_run(M, lr, steps, epoch, beta, K, window, average, prefactors, alpha)
    G0 = np.asarray(gram0, float)
    if G0.shape[-3:] != (M, 4, 4) or G0.ndim not in (3, 4):
        raise ValueError(f"init must have shape ({M}, 4, 4) or (runs, {M}, 4, 4), got "
                         f"{G0.shape}")
    _check_gram(G0)
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
    run = _reduced_runs(stats, steps, method, observe, advance, refresh,
                        G0 if batched else G0[None], opts)
    return run if batched else run[0]


def balancing_deep(stats, depth: int, lr: float, scale, steps: int, balancing: str = "joint", *,
                   fusion_layer: int | None = None, epoch: int = 10, beta: float = 0.9,
                   K: float = 0.04, window: str = "paper", average: int = 10, prefactors=None,
                   alpha: float = 0.8, continuous: bool = False,
                   unimodal: float = 0.0) -> BalancedRun:
    """The methods of :func:`balancing_two_layer` on a deep fusion network (``depth`` = L
    layers, fusion at ``fusion_layer`` = L_f, default L: late fusion, 1: early fusion; every
    branch L_f layers, P = L − L_f shared layers; scalar modalities and output) from exactly
    balanced, aligned
    weights (``init_params(scheme="balanced", scale=u0)``: every layer of branch m of norm u0,
    or u0[m], every shared layer of norm X0 = √(Σ_m u0_m²); (runs, M) for a batch). Returns one
    :class:`BalancedRun`, batched for a batch.

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
    turns against Σ_yx,m cannot be followed by aligned weights (a_m stays at 0): flagged.
    Arguments are refused as by :func:`balancing_two_layer` (``scale`` positive and finite)."""
    method = balancing
    u0 = scale
    lam = _check_options(method, window, unimodal,
                         methods=tuple(m for m in METHODS if m != "ogm_ge"))
    depth = checks.integer("depth", depth, 2)
    Lf = depth if fusion_layer is None else checks.positive_int("fusion_layer", fusion_layer)
    if Lf > depth:
        raise ValueError(f"fusion_layer must be an integer with 1 <= fusion_layer <= depth = "
                         f"{depth}, got {fusion_layer!r}")
    S, s, syy = _toy_moments(stats)
    M = s.size
    _check_run(M, lr, steps, epoch, beta, K, window, average, prefactors, alpha)
    L, P = int(Lf), int(depth) - int(Lf)
    A0 = np.asarray(u0, float)
    batched = A0.ndim == 2
    if A0.ndim > 2 or A0.shape[-1:] not in ((), (M,)) or np.any(~np.isfinite(A0)) \
            or np.any(A0 <= 0):
        raise ValueError(f"scale must be positive: a number or one per branch ({M},) for one run, "
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
    run = _reduced_runs(stats, steps, method, observe, advance, refresh,
                        np.stack([A0, A0], -1), opts)
    wrong = [m for m in range(M) if sign[m] * w_star[m] < 0]
    if wrong:
        why = (f"the global solution gives {', '.join(str(stats.names[m]) for m in wrong)} the "
               "sign opposite to Sigma_yx: aligned weights cannot reverse it (the branch "
               "stalls at zero; random weights regrow it along the reversed mode)")
        run = run.replace(valid=np.zeros_like(run.valid),
                          caveats=_object_array([c + (why,) for c in run.caveats]))
    return run if batched else run[0]


@dataclass(frozen=True, eq=False)
class NoisyRun(Run):
    """The law of OGM-GE's training (:func:`ogm_ge_two_layer`) from one initialization (batch
    shape ()) or a batch of them (batch shape (runs,)), sampled over ``paths`` noise
    realizations; ``*b`` below is the batch shape.

    ``t_A``, ``t_B``, ``ratio`` (*b, paths) as :func:`dlnfusion.compare.measure_unimodal_phase`
    defines them (NaN where the transition is not reached within the steps); ``ratio_mean`` and
    ``ratio_sem`` (*b,) their mean and its standard error over the paths that reach both
    transitions; ``time`` (T,), ``w_mean`` and ``w_sd`` (*b, T, M) the mean and standard
    deviation of the total weights over the paths every ``record_every`` steps (over the paths that
    have not diverged); ``valid`` (*b,) and ``caveats`` (*b,) as in :class:`BalancedRun`;
    ``status`` (*b, paths) int8 :class:`~dlnfusion.results.Status` codes, one per path
    (CONVERGED: stopped at ``stop_loss``; DIVERGED: frozen at its last finite state;
    MAX_STEPS). The batch shape is that of ``status`` without its last (path) axis, so
    ``diverged`` is per path; ``diverged_fraction`` and ``reached`` (*b,) are the fractions of
    paths that diverged and that reach both transitions."""

    t_A: np.ndarray
    t_B: np.ndarray
    ratio: np.ndarray
    ratio_mean: np.ndarray
    ratio_sem: np.ndarray
    time: np.ndarray
    w_mean: np.ndarray
    w_sd: np.ndarray
    valid: np.ndarray
    caveats: np.ndarray
    status: np.ndarray

    @property
    def batch_shape(self) -> tuple:
        return tuple(np.shape(self.status))[:-1]

    @property
    def paths(self) -> int:
        return int(np.shape(self.status)[-1])

    @property
    def diverged_fraction(self) -> np.ndarray:
        """(*b,) the fraction of the paths that diverged within the steps."""
        return np.mean(self.diverged, axis=-1)

    @property
    def reached(self) -> np.ndarray:
        """(*b,) the fraction of the paths that reach both transitions within the steps."""
        return np.mean(np.isfinite(self.ratio), axis=-1)


def ogm_ge_two_layer(stats, lr: float, init, width: int, steps: int, *, alpha: float = 0.8,
                     continuous: bool = False, unimodal: float = 0.0, paths: int = 256,
                     seed: int = 0, record_every: int = 10, stop_loss: float | None = 1e-4,
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

    ``init``: (M, 5) or (runs, M, 5) from :func:`dlnfusion.theory.noise_gram`; ``paths``
    noise realizations per run (independent of the network's own noise: a prediction of the
    law, not of a realization). A path stops, as :func:`dlnfusion.train` stops a run, once its
    loss is below ``stop_loss`` (None: never; status CONVERGED), and is marked diverged (and
    frozen; status DIVERGED) once its loss exceeds ``diverge_loss`` or is not finite: GE's
    noise pumps energy into the directions orthogonal to the learned mode until the step is
    unstable, and the fraction of paths it takes is ``diverged_fraction``. Returns one
    :class:`NoisyRun`, batched for a batch of initial states."""
    state0 = init
    lam = _check_unimodal(unimodal)
    width, paths, steps, record_every = (checks.positive_int(name, v) for name, v in (
        ("width", width), ("paths", paths), ("steps", steps), ("record_every", record_every)))
    if width < 5:
        raise ValueError(f"width must be >= 5 (the Wishart step needs h − 4 > 0), got {width}")
    lr = checks.learning_rate(lr)
    diverge_loss = checks.positive("diverge_loss", diverge_loss)
    if stop_loss is not None:
        stop_loss = checks.nonnegative("stop_loss", stop_loss)
    alpha = checks.nonnegative("alpha", alpha)
    S, s, syy = _toy_moments(stats)
    M = s.size
    if M != 2:
        raise ValueError(f"OGM-GE modulates two modalities; the statistics have {M}")
    X0 = np.asarray(state0, float)
    if X0.shape[-2:] != (M, 5) or X0.ndim not in (2, 3) or not np.all(np.isfinite(X0)):
        raise ValueError(f"init must be finite, of shape ({M}, 5) or (runs, {M}, 5) "
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
    kernel = _ogm_ge_kernel(int(width), int(paths), int(steps), int(record_every), bool(continuous))
    keys = jax.random.split(jax.random.PRNGKey(int(seed)), X0.shape[0])
    with float64():
        c = {k: jnp.asarray(v, jnp.float64) for k, v in consts.items()}
        found, wm, w2, bad, conv = (np.asarray(v)
                                    for v in kernel(c, jnp.asarray(X0), keys))
    time = np.arange(wm.shape[1], dtype=float) * record_every
    status = np.where(bad, Status.DIVERGED,
                      np.where(conv, Status.CONVERGED, Status.MAX_STEPS)).astype(np.int8)
    rows = {k: [] for k in ("t_a", "t_b", "ratio", "mean", "sem", "sd", "valid", "caveats")}
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
        for k, v in (("t_a", t_a), ("t_b", t_b), ("ratio", ratio), ("mean", mean), ("sem", sem),
                     ("sd", np.sqrt(np.maximum(w2[r] - wm[r] ** 2, 0.0))), ("valid", valid),
                     ("caveats", caveats)):
            rows[k].append(v)
    run = NoisyRun(np.stack(rows["t_a"]), np.stack(rows["t_b"]), np.stack(rows["ratio"]),
                   np.array(rows["mean"]), np.array(rows["sem"]), time, wm,
                   np.stack(rows["sd"]), np.array(rows["valid"], bool),
                   _object_array(rows["caveats"]), status)
    return run if batched else run[0]


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
def _ogm_ge_kernel(h, paths, steps, record_every, continuous):
    """The jitted sampler of :func:`ogm_ge_two_layer` for one shape: segments of up to
    _SEGMENT steps (each a scan) until every path has stopped or the budget is spent; the
    statistics enter as arrays, so one compilation serves every ρ of a sweep."""
    size = min(_SEGMENT, steps + 1)
    n_seg = -(-(steps + 1) // size)          # steps 0..steps: the last one only records
    n_rec = steps // record_every + 1

    def one(c, x0, key):
        S, s, w_star, ref = c["S"], c["s"], c["w_star"], c["ref"]
        diagS = jnp.diag(S)
        M = s.shape[0]
        has_ref = ref != 0
        safe_ref = jnp.where(has_ref, ref, 1.0)
        half = jnp.asarray([0.5], x0.dtype)

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
            # the first crossing of half of each reference (the unimodal and the global
            # solution) by each path's w_m, interpolated between steps n − 1 and n
            found = crossing_update(found.reshape(-1, 1), prev.reshape(-1), z.reshape(-1),
                                    n - 1, n, half, live).reshape(found.shape)
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
        X_end, _, _, found, bad, _ = carry
        converged = ~bad & (loss_of(X_end[..., 1]) < c["stop"])
        # every path stopped before the last segment: the records after it hold the frozen
        # state, that of the last step run
        n_end = i * size
        rows = jnp.arange(n_seg * size)[:, None]
        wm = jnp.where(rows >= n_end, wm[n_end - 1], wm)
        w2 = jnp.where(rows >= n_end, w2[n_end - 1], w2)
        return found, wm[::record_every][:n_rec], w2[::record_every][:n_rec], bad, converged

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))
