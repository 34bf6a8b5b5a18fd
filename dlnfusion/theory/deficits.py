"""How a temporary sensory deficit on the second-learned modality delays its learning.

Setting: Kleinman, Achille & Soatto (CVPR 2023, Sections 4.1-4.2) train a two-pathway network
with one source degraded -- blurred, or dissociated from the other -- for the first N epochs,
then normally. Here the network is a linear fusion network of Zhang, Latham & Saxe (ICML 2024;
depth L, fusion layer L_f) on two scalar modalities, trained by full-batch gradient descent
on the population loss; during steps 0 <= n < N the moments are those of the degraded data
(``window_stats``: :func:`dlnfusion.interventions.delete`, ``blur``, ``dissociate`` of B),
afterwards the normal ones (``stats``). The observable is t_B, the first step at which W_B^tot
reaches half of its global-solution value w_B*, counted from the start of training.

Notation (A = the modality learned first, B the degraded one, scalars)
-----------------------------------------------------------------------
    s_A, s_B = Σ_yxA, Σ_yxB;  Σ_AB;  σ_A², σ_B²           normal moments      (``stats``)
    U_A = s_A/σ_A²                                        A's unimodal plateau
    s̃_B = s_B − U_A Σ_AB,  σ̃_B² = σ_B² − Σ_AB²/σ_A²     B's drive and curvature once A
    w_B* = s̃_B/σ̃_B²                                      sits on U_A; B's final value
    primes (s_A', U_A', s̃_B', σ̃_B'², p_B' = s̃_B'/σ̃_B'²)   the same for ``window_stats``
    η = ``lr``; times in steps (one step = one unit of time, τ = 1/η as in the paper)
    t_A⁰, t_B⁰ = ``t_a0``, ``t_b0``: the half-way times of the same runs without deficit
    N = ``lengths``: the window [0, N)

What each deficit does to the drives (derived in theory/deficits.py). Deletion: every B
moment is zero, so every parameter of B's branch has zero gradient -- exactly, in any
architecture (the shared layers still learn A). Blur x̃_B = c x_B + σ_n ξ: B's drive is
multiplied by c in both phases (c s_B before A is learned, c s̃_B after), B's curvature becomes
c²σ̃_B² + σ_n²; A's moments are unchanged. Dissociation: Σ_yx halves and Σ_AB = 0; at small
weights every gradient halves, so the whole network runs at half speed (time dilation), A's
window plateau is U_A/2 -- exactly the level that defines t_A -- and B's is s_B/(2σ_B²).

Rates. A mode driven by error ε grows by a factor (1 + ηε) per step in a two-layer branch
(exactly, for the growing mode), i.e. at r(ε) = ln(1 + ηε)/η per step; in deeper chains the
growth per step is small and gradient descent follows the flow, r(ε) = ε (:func:`growth_rate`).

Late fusion (L_f = L): the time-shift theorem
---------------------------------------------
With scalar modalities the loss depends on B's branch only through W_B^tot, so its gradient
flow is dθ_B/dt = η ε_B(t) ∇_θ W_B^tot with the scalar error ε_B = s_B − Σ_AB W_A − σ_B² W_B:
B's state is a function of its accumulated drive Λ = ∫ε_B alone. While B is small,
ε_B = s_B before A's transition and s̃_B after; the deficit run lags the normal one by the
drive it missed, and since both then follow the same autonomous flow,

    t_B(N) = t_B⁰ + [Λ(N) − Λ'(N) − K] / r(s̃_B),                                     (D1)
    Λ(N) = r(s_B) min(N, t_A⁰) + r(s̃_B)(N − t_A⁰)₊    (sharp switch of W_A at t_A⁰),

Λ'(N) the same with the window's rates (0 for deletion; r(c s_B), r(c s̃_B) for blur;
r(s_B/2) for dissociation) and A's window escape time t_A' (below). Closed forms: deletion
Δ = N s_B/s̃_B for N < t_A⁰ and N + (s_B/s̃_B − 1) t_A⁰ after (flow rates); blur (1 − c)Δ;
dissociation N/2 while N < 2t_A⁰. K is B's extra drive while A relaxes from a window plateau
U_A' ≠ U_A to U_A after the window: K = Σ_AB U_A r'(s̃_B) ∫(1 − x_A)dt, with
∫(1 − x)dt = ln(1/x₀)/(2ηs_A) (L = 2, logistic relaxation) or
(x₀^{2/L−1} − 1)/((L − 2) η U_A^{1−2/L} s_A) (deep pathway). For two layers the crossing can
happen inside the window or right after it (B near its window plateau); both follow from the
logistic in logit units, logit(W_B/w_B*) = −2ηQ⁰ + 2ηΛ, where Q⁰ = Λ(t_B⁰) (linear drive) is the
progress the baseline needed (this is the only place the baseline's t_B⁰ enters):
inside the window B heads for p_B' and crosses w_B*/2 when
2ηΛ'(t) = 2ηQ⁰ + logit(w_B*/(2p_B')) + ln(p_B'/w_B*).

Early and intermediate fusion (L_f < L)
---------------------------------------
A's escape. For L_f <= 2, B's branch grows together with the shared layers in the first
phase (eqs. 45, 55 of Zhang et al.: u_B = u0 (u_A/u0)^k for L_f = 2, u_B − u0 = k(u_A − u0) for
L_f = 1), so the shared layers' clock runs at the drive ‖(s_A, s_B)‖ of the early-fusion
pathway; in the window at ‖(s_A', s_B')‖: κ_A = r(‖d'‖)/r(‖d‖). For L_f >= 3, u_B stays O(u0)
(eq. 45), B does not feed the shared layers, κ_A = r(s_A')/r(s_A). A escapes at

    t_A' = t_A⁰/κ_A  if κ_A N >= t_A⁰ (inside the window),  else  t_A⁰ + (1 − κ_A) N.    (D2)

(The shared-clock ratio is leading order: for random initializations the measured slowdown
of A at L_f = 1 is up to ~2x larger, at L_f = 2 about equal; a few % of t_B at most.)

B's clock, L_f >= 2. B's pre-fusion chain is driven through the post-fusion product P(t)
(the backward covector it sees): its growing mode grows at ε_B ‖P(t)‖ (L_f = 2: x = W_B¹,
y = W_B²ᵀ q obey ẋ = ε‖P‖y, ẏ = ε‖P‖x; L_f >= 3 the same with the input-layer norm as a
constant factor). With ‖P‖ = p₀ (its initial value, ``post_norm0``) before A's transition and
p* = U_A^{(L−L_f)/L} (balanced plateau) after, the accounting of (D1) holds with rates
r(s_B)p₀ and r(s̃_B)p* (window: r(s_B')p₀, r(s̃_B')U_A'^{(L−L_f)/L}). A crossing inside the
window uses the two-layer logistic's level correction at L_f = 2 (W_B grows as e^{2ηΛ} there
too); at L_f >= 3 it is flagged as not modeled. Closed forms: deletion before A's transition
delays B by (s_B/s̃_B)(p₀/p*)N, after it t_B = N + Q⁰/(r(s̃_B)p*) (B restarts from its initial
weights with A on its plateau).

L_f = 1. B's first-layer column b gets db/dt = η ε_B Pᵀ: once the shared layers sit at A's
plateau (‖P‖² = q = U_A^{2(L−1)/L}) W_B relaxes linearly toward its plateau,
W_B(n) = p_B(1 − (1 − ηqσ̃_B²)ⁿ), half-way after T_½ = ln 2 / (−ln(1 − ηqσ̃_B²)) steps. The
baseline fixes when this relaxation starts, t_sw = t_B⁰ − T_½; the deficit run starts it at
t_sw + (t_A' − t_A⁰) toward the window plateau (deletion: never), and continues toward w_B*
after the window.

Assumptions: small initialization (B small while it has not crossed), A learned first and
not overtaken, scalar modalities and output, η|s| < 1, a sharp switch of A's transition, the
adiabatic A of the second phase. The function flags the points where they are strained
(knife-edges, crossings inside the window in deep networks, the shared-clock estimate).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .timescales import TimePrediction, _json_float, roles

__all__ = ["DeficitDrives", "deficit_drives", "growth_rate", "DeficitTimes", "deficit_times",
           "initial_post_norm", "projection_blur"]

#: Relative tolerance under which a window plateau counts as equal to a half-way level (the
#: knife-edges of dissociation are exact identities of the moments, met to float64 rounding).
_LEVEL_RTOL = 1e-9
#: Moments below this (relative to the largest normal moment) count as deleted.
_ZERO_RTOL = 1e-14


def growth_rate(eps, lr: float, depth: int):
    """Per-step growth rate r(ε) of a mode driven by the error correlation ε.

    Two-layer branch (``depth`` 2): the growing mode is multiplied by exactly (1 + ηε) per
    gradient-descent step, r(ε) = ln(1 + ηε)/η. Deeper chains grow by a small fraction per
    step and follow the flow, r(ε) = ε. Units: per step, ε in the units of Σ_yx.
    """
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, got {depth!r}")
    eps = np.asarray(eps, dtype=float)
    if depth > 2:
        return eps
    if np.any(1 + lr * eps <= 0):
        raise ValueError("growth_rate: 1 + lr*eps must be positive (the mode flips sign)")
    return np.log1p(lr * eps) / lr


@dataclass(frozen=True)
class DeficitDrives:
    """The moments that drive the two phases, normally (plain names) and in the window
    (``w_``). ``first``/``second`` are the modality indices of A and B."""

    first: int
    second: int
    s_a: float
    s_b: float
    cross: float
    var_a: float
    var_b: float
    w_s_a: float
    w_s_b: float
    w_cross: float
    w_var_a: float
    w_var_b: float
    final_b: float
    deleted: bool

    @property
    def plateau_a(self) -> float:                     # U_A
        return self.s_a / self.var_a

    @property
    def s_b_tilde(self) -> float:                     # s̃_B
        return self.s_b - self.plateau_a * self.cross

    @property
    def var_b_tilde(self) -> float:                   # σ̃_B²
        return self.var_b - self.cross ** 2 / self.var_a

    @property
    def w_plateau_a(self) -> float:                   # U_A'
        return self.w_s_a / self.w_var_a

    @property
    def w_s_b_tilde(self) -> float:                   # s̃_B'
        return self.w_s_b - self.w_plateau_a * self.w_cross

    @property
    def w_var_b_tilde(self) -> float:                 # σ̃_B'²
        return self.w_var_b - self.w_cross ** 2 / self.w_var_a

    @property
    def w_plateau_b(self) -> float:
        """B's window plateau p_B' = s̃_B'/σ̃_B'² with A on its window plateau (0: deleted)."""
        return 0.0 if self.deleted else self.w_s_b_tilde / self.w_var_b_tilde

    @property
    def drive_ratio(self) -> float:
        """‖(s_A', s_B')‖/‖(s_A, s_B)‖: the shared layers' drive in the window."""
        return float(np.hypot(self.w_s_a, self.w_s_b) / np.hypot(self.s_a, self.s_b))


def _scalar_block(st, m, n=None):
    return float(np.asarray(st.block(m, m if n is None else n)).ravel()[0])


def deficit_drives(stats, window_stats) -> DeficitDrives:
    """Collect the normal and window moments of two scalar modalities (A learned first).

    ``window_stats`` are the moments in force during the deficit, e.g. ``blur(stats, "B",
    ...)``; A must keep its input moments (Σ_A' = Σ_A: true of deletion, blur and dissociation
    of B) and the deficit must act on the second-learned modality.
    """
    for name, st in (("stats", stats), ("window_stats", window_stats)):
        if getattr(st, "n_modalities", None) != 2 or tuple(st.dims) != (1, 1) \
                or st.output_dim != 1:
            raise ValueError(f"{name} must hold two scalar modalities and a scalar output")
    r = roles(stats)
    if r.tie:
        raise ValueError("the modalities tie (no unimodal phase): no second-learned modality")
    a, b = r.first, r.second
    if not np.isclose(_scalar_block(window_stats, a), _scalar_block(stats, a), rtol=1e-12,
                      atol=0):
        raise ValueError("the deficit changes the input variance of the first-learned modality "
                         f"{stats.names[a]!r}; the delay theory covers deficits on the second")
    scale = max(np.max(np.abs(stats.sigma)), np.max(np.abs(stats.sigma_yx)))
    w_s_b = float(np.asarray(window_stats.sigma_yx_m(b)).ravel()[0])
    w_var_b = _scalar_block(window_stats, b)
    w_cross = _scalar_block(window_stats, a, b)
    deleted = max(abs(w_s_b), abs(w_var_b), abs(w_cross)) <= _ZERO_RTOL * scale
    final_b = float(np.asarray(r.final_b).ravel()[0])
    if final_b <= 0:
        raise ValueError("B's global-solution weight must be positive for its half-way time")
    return DeficitDrives(
        first=a, second=b,
        s_a=float(np.asarray(r.s_a).ravel()[0]), s_b=float(np.asarray(r.s_b).ravel()[0]),
        cross=_scalar_block(stats, a, b), var_a=_scalar_block(stats, a),
        var_b=_scalar_block(stats, b),
        w_s_a=float(np.asarray(window_stats.sigma_yx_m(a)).ravel()[0]), w_s_b=w_s_b,
        w_cross=w_cross, w_var_a=_scalar_block(window_stats, a), w_var_b=w_var_b,
        final_b=final_b, deleted=bool(deleted))


def projection_blur(fraction: float, sigma_b: float = 1.0) -> tuple:
    """(attenuation, noise_std) of the scalar model of a linear low-pass filter.

    A blur is a projection P onto a band of the source; for an isotropic source the best
    linear read-out of the feature z = uᵀx from Px is x̃ = uᵀPx, with Var x̃ = Cov(x̃, z) =
    fσ², f = ‖Pu‖² the fraction of the feature's energy in the band. As a scalar copy of z this
    is x̃ = f z + σ_n ξ with σ_n² = f(1 − f)σ² (theory/deficits.py). ``fraction`` = f in (0, 1],
    ``sigma_b`` the source's standard deviation. The blurred source has variance fσ² and, with
    no cross-correlation, the same regression weight as the original.
    """
    f = float(fraction)
    if not (np.isfinite(f) and 0 < f <= 1):
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    if not (np.isfinite(sigma_b) and sigma_b > 0):
        raise ValueError(f"sigma_b must be positive and finite, got {sigma_b!r}")
    return f, float(sigma_b * np.sqrt(f * (1 - f)))


def initial_post_norm(spec, params) -> np.ndarray:
    """‖W^L ⋯ W^{L_f+1}‖ of every run at initialization (p₀ of the module docstring).

    The Frobenius norm of the post-fusion product, the backward covector that B's pre-fusion
    chain sees before A's transition. ``params`` may carry leading batch axes; a late-fusion
    network (no post-fusion layers) has the identity there, norm 1.
    """
    post = params.post
    if not post:
        return np.ones(np.shape(params.branches[0][0])[:-2])
    P = np.asarray(post[-1])
    for W in reversed(post[:-1]):
        P = P @ np.asarray(W)
    return np.sqrt(np.sum(P ** 2, axis=(-2, -1)))


@dataclass(frozen=True)
class DeficitTimes(TimePrediction):
    """Predicted half-way times of the deficit runs, in steps, with the regime of each point and
    its caveats: a :class:`~.timescales.TimePrediction` whose fields are arrays of the broadcast
    shape of the inputs (0-d for scalar inputs).

    ``t_A``, ``t_B`` are the times of ``names[0]`` (A, the modality learned first without the
    deficit) and ``names[1]`` (B, the degraded one); ``first``/``second`` name, per point, the
    one that reaches half-way first and last (A where the times tie or are NaN); ``ratio`` is
    t_B/t_A. ``delay`` is t_B − t_B⁰, ``regime`` the model used (str per point), ``valid`` a
    bool per point (no caveat that invalidates the formula) and ``caveats`` a tuple of str per
    point (an object array, unlike the batch summary of :func:`~.timescales.predict_times`).
    """

    delay: np.ndarray = field(kw_only=True)           # t_b − t_B⁰
    regime: np.ndarray = field(kw_only=True)          # str per point

    def to_dict(self) -> dict:
        """The keys of :meth:`TimePrediction.to_dict` (``caveats`` nested per point), with
        ``delay``, ``regime`` and ``names``."""
        def per_point(c):
            if isinstance(c, np.ndarray):
                return [per_point(x) for x in c] if c.ndim else per_point(c.item())
            return list(c)

        out = super().to_dict()
        out.update(caveats=per_point(self.caveats), delay=_json_float(self.delay),
                   regime=np.asarray(self.regime).tolist(), names=list(self.names))
        return out


def _progress(t, r1, t_switch, r2):
    """∫₀ᵗ of a rate r1 before t_switch and r2 after."""
    return r1 * np.minimum(t, t_switch) + r2 * np.maximum(t - t_switch, 0.0)


def _advance(t0, q, r1, t_switch, r2):
    """The time at which the progress q >= 0, accumulated from t0 at rate r1 until t_switch
    and r2 after, is complete (r2 > 0)."""
    q = np.maximum(q, 0.0)
    span = np.maximum(t_switch - t0, 0.0)
    q1 = r1 * span
    with np.errstate(divide="ignore", invalid="ignore"):
        early = t0 + np.where(r1 > 0, q / np.where(r1 > 0, r1, 1.0), 0.0)
    late = np.maximum(t0, t_switch) + (q - q1) / r2
    return np.where(q <= q1, early, late)


def _logit(x):
    return np.log(x) - np.log1p(-x)


def _check_inputs(lengths, t_a0, t_b0, post_norm0):
    arrs = [np.asarray(v, dtype=float) for v in (lengths, t_a0, t_b0, post_norm0)]
    try:
        arrs = np.broadcast_arrays(*arrs)
    except ValueError as exc:
        raise ValueError("lengths, t_a0, t_b0 and post_norm0 must broadcast together") from exc
    N, ta, tb, p0 = (a.astype(float) for a in arrs)
    if np.any(~np.isfinite(N)) or np.any(N < 0):
        raise ValueError("lengths must be finite and >= 0")
    if np.any(~np.isfinite(ta)) or np.any(ta <= 0) or np.any(~np.isfinite(tb)) \
            or np.any(tb < ta):
        raise ValueError("the baseline times need 0 < t_a0 <= t_b0 (finite): A first")
    return N, ta, tb, p0


def deficit_times(stats, window_stats, lengths, *, depth: int, fusion_layer: int, lr: float,
                  t_a0, t_b0, post_norm0=1.0) -> DeficitTimes:
    """Leading-order t_A and t_B after a deficit window [0, N) on the second modality.

    Parameters (module docstring for the symbols): ``stats`` the normal moments, ``window_stats``
    those of the deficit (:func:`dlnfusion.interventions.delete`/``blur``/``dissociate`` of B),
    ``lengths`` N (steps), ``depth`` L, ``fusion_layer`` L_f, ``lr`` η, ``t_a0``/``t_b0`` the
    no-deficit half-way times t_A⁰, t_B⁰ of the same runs from a theory (e.g.
    :func:`dlnfusion.compare.predict_unimodal_phase` without interventions, or
    :func:`~dlnfusion.theory.predict_times`), ``post_norm0`` p₀ = :func:`initial_post_norm`
    (used for 2 <= L_f < L). Arrays broadcast together (e.g. lengths (K, 1) against seeds (S,)).

    Returns a :class:`DeficitTimes` (a :class:`~.timescales.TimePrediction` of arrays of the
    broadcast shape, with ``delay`` and ``regime``); equations (D1), (D2) and the L_f = 1
    relaxation of the module docstring. Times in steps from the start of training. ``regime``
    names the model used per point ("late/time-shift", "intermediate/B-clock",
    "early/relaxation", with "/inside-window" when B crosses during the deficit); ``caveats``
    the strained assumptions; ``valid`` is False where a needed piece is not modeled.
    """
    L, Lf = depth, fusion_layer
    for name, v, lo in (("depth", L, 2), ("fusion_layer", Lf, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if Lf > L:
        raise ValueError(f"fusion_layer must lie in [1, depth], got {Lf} > {L}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    d = deficit_drives(stats, window_stats)
    N, ta0, tb0, p0 = _check_inputs(lengths, t_a0, t_b0, post_norm0)
    if 2 <= Lf < L and np.any(~np.isfinite(p0) | (p0 <= 0)):
        raise ValueError("post_norm0 must be positive (initial_post_norm) for 2 <= L_f < L")
    eta = float(lr)
    r = lambda e: float(growth_rate(e, eta, L))  # noqa: E731
    wstar = d.final_b
    UA, UAw = d.plateau_a, d.w_plateau_a
    pB = d.w_plateau_b
    shape = N.shape
    regime = np.full(shape, "", dtype=object)
    cav = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        cav[idx] = []

    def note(mask, text):
        for idx in zip(*np.nonzero(np.broadcast_to(mask, shape))):
            if text not in cav[idx]:
                cav[idx].append(text)

    # ---- A's escape (D2)
    shared = Lf < L and Lf <= 2
    if shared:
        kA = float(growth_rate(np.hypot(d.w_s_a, d.w_s_b), eta, L)
                   / growth_rate(np.hypot(d.s_a, d.s_b), eta, L))
    else:
        kA = r(d.w_s_a) / r(d.s_a)
    a_in = kA * N >= ta0
    tAd = np.where(a_in, ta0 / kA, ta0 + (1 - kA) * N)
    knife_a = abs(UAw - 0.5 * UA) <= _LEVEL_RTOL * UA
    t_a = np.where(a_in & knife_a, np.maximum(N, tAd), tAd)
    note(a_in & knife_a & (N > 0), "A's window plateau U_A' equals the t_A level U_A/2 "
         "(dissociation): A reaches it only asymptotically; t_A is the window's end, up to "
         "rounding (knife-edge)")
    # a window that scales both drives alike (dissociation) dilates the shared clock exactly at
    # leading order; one that turns the drive (deletion, blur of B) is the estimate
    turns = abs(d.w_s_a * d.s_b - d.w_s_b * d.s_a) > 1e-12 * np.hypot(d.s_a, d.s_b) ** 2
    if shared and turns:
        note(N > 0, "A's slowdown estimated from the shared-layer clock ratio |d'|/|d| "
             "(leading order; from random initializations the measured slowdown is up to ~2x "
             "larger for windows that end early in the first phase)")
    knife_b = (not d.deleted) and abs(pB - 0.5 * wstar) <= _LEVEL_RTOL * wstar
    yc = 0.5 * wstar / pB if pB > 0 else np.inf
    level_shift = (_logit(yc) + np.log(pB / wstar)) if (pB > 0 and yc < 1) else np.nan

    if Lf == 1:
        t_b = _early(d, N, ta0, tb0, tAd, eta, L, note, regime, knife_b)
    else:
        g_n1 = r(d.s_b) * (1.0 if Lf == L else p0)
        pstar = 1.0 if Lf == L else UA ** ((L - Lf) / L)
        pstar_w = 1.0 if Lf == L else UAw ** ((L - Lf) / L)
        g_n2 = r(d.s_b_tilde) * pstar
        Q0 = g_n1 * ta0 + g_n2 * (tb0 - ta0)
        if d.deleted:
            g_w1 = g_w2 = np.zeros(shape)
        else:
            g_w1 = r(d.w_s_b) * (1.0 if Lf == L else p0) * np.ones(shape)
            g_w2 = r(d.w_s_b_tilde) * pstar_w * np.ones(shape)
        Qw = _progress(N, g_w1, tAd, g_w2)
        # crossing inside the window (logistic identification; the level correction is
        # derived for two-layer modes and the L_f = 2 chain, whose W_B grows as e^{2ηΛ})
        exact_level = L == 2 or Lf == 2
        if pB > 0 and yc < 1:
            Qc = Q0 + (level_shift / (2 * eta) if exact_level else 0.0)
            inside = Qw >= Qc
            t_in = _advance(np.zeros(shape), Qc, g_w1, tAd, g_w2)
        else:
            inside = np.zeros(shape, bool)
            t_in = np.full(shape, np.nan)
        if not exact_level:
            note(inside, "B crosses inside the window of a deep chain: the saturation of the "
                 "crossing level is not modeled")
        elif Lf < L:
            note(inside, "B crosses inside the window of an intermediate-fusion chain: the "
                 "crossing level is placed with the logistic of two-layer modes (leading order)")
        # progress still needed after the window
        if L == 2 and pB > 0:
            with np.errstate(over="ignore"):
                z = -2 * eta * Q0 + np.log(wstar / pB) + 2 * eta * Qw
                yN = 1.0 / (1.0 + np.exp(-z))
            xN = np.minimum(pB * yN / wstar, 1 - 1e-16)
            need = np.where(xN < 0.5, -_logit(np.clip(xN, 1e-300, 0.5)) / (2 * eta), 0.0)
        else:
            need = Q0 - Qw
        if L > 2 and pB > 0 and yc >= 1:
            note(Qw >= Q0, "B reaches its window plateau inside the window of a deep chain "
                 "(not modeled: the crossing is taken at the window's end)")
        # A's relaxation from U_A' to U_A after the window (bonus drive on B)
        K = np.zeros(shape)
        xA = UAw / UA
        if abs(xA - 1) > 1e-12 and d.cross != 0:
            if L == 2:
                T_rel = np.log(1 / xA) / (2 * eta * d.s_a)
                dr = 1 / (1 + eta * d.s_b_tilde)
            else:
                T_rel = (xA ** (2 / L - 1) - 1) / ((L - 2) * eta * UA ** (1 - 2 / L) * d.s_a)
                dr = 1.0
            K = np.where(a_in & (N > 0), d.cross * UA * T_rel * dr * (1.0 if Lf == L else pstar),
                         0.0)
        t_post = _advance(N, need - K, g_n1 * np.ones(shape), tAd, g_n2)
        if knife_b:
            note(~inside & (Qw >= Q0) & (N > 0), "B's window plateau equals the t_B level "
                 "w_B*/2 (dissociation): B sits just below it at the window's end; the "
                 "measured crossing is the window's end, up to rounding (knife-edge)")
        t_b = np.where(inside, t_in, t_post)
        regime[...] = "late/time-shift" if Lf == L else "intermediate/B-clock"
        regime[inside] = regime[inside] + "/inside-window"
    delay = t_b - tb0
    caveats = np.empty(shape, dtype=object)
    valid = np.ones(shape, bool)
    for idx in np.ndindex(shape):
        caveats[idx] = tuple(cav[idx])
        valid[idx] = not any("not modeled" in c for c in cav[idx])
    note_names = (stats.names[d.first], stats.names[d.second])
    return DeficitTimes(t_a, t_b, valid=valid, caveats=caveats, names=note_names, delay=delay,
                        regime=regime)


def _early(d, N, ta0, tb0, tAd, eta, L, note, regime, knife_b):
    """L_f = 1: B's total map relaxes linearly once the shared layers carry A (module
    docstring); returns t_B."""
    wstar = d.final_b
    q = d.plateau_a ** (2 * (L - 1) / L)
    qw = d.w_plateau_a ** (2 * (L - 1) / L)
    a = eta * q * d.var_b_tilde
    if not 0 < a < 1:
        raise ValueError("eta*q*var_b_tilde must lie in (0, 1) for the linear relaxation")
    lam = -np.log1p(-a)
    T_half = np.log(2) / lam
    t_sw = tb0 - T_half
    t_swd = t_sw + (tAd - ta0)
    pB = d.w_plateau_b
    if d.deleted or pB <= 0:
        WB_N = np.zeros(N.shape)
        inside = np.zeros(N.shape, bool)
        t_in = np.full(N.shape, np.nan)
    else:
        aw = eta * qw * d.w_var_b_tilde
        if not 0 < aw < 1:
            raise ValueError("eta*q'*var_b_tilde' must lie in (0, 1) in the window")
        lam_w = -np.log1p(-aw)
        WB_N = np.where(N > t_swd, pB * (1 - np.exp(-lam_w * np.maximum(N - t_swd, 0))), 0.0)
        if pB > 0.5 * wstar and not knife_b:
            t_in = t_swd + np.log(1 - 0.5 * wstar / pB) / (-lam_w)
            inside = t_in < N
        else:
            inside = np.zeros(N.shape, bool)
            t_in = np.full(N.shape, np.nan)
    start = np.maximum(N, t_swd)
    rest = np.clip((wstar - WB_N) / (0.5 * wstar), 1.0, None)
    t_post = start + np.log(rest) / lam
    if knife_b:
        note(~inside & (WB_N > 0.25 * wstar) & (N > 0), "B's window plateau equals the t_B "
             "level w_B*/2 (dissociation): B sits just below it at the window's end; the "
             "measured crossing is the window's end, up to rounding (knife-edge)")
    regime[...] = "early/relaxation"
    regime[inside] = "early/relaxation/inside-window"
    return np.where(inside, t_in, t_post)
