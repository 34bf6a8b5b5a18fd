"""Duration of the unimodal phase in two-layer late-fusion networks.

Notation (Zhang et al. 2024, Section 3.2 and Appendix D.3): modality A is learned first,
s_A = Σ_yxA, s_B = Σ_yxB (rows), U_A = s_A Σ_A^{-1} the unimodal plateau, s̃_B = s_B − U_A Σ_AB
the error correlation that drives B once A sits on its plateau (eq. 31), Σ̃_B = Σ_B −
Σ_BA Σ_A^{-1} Σ_AB (a Schur complement), k = ‖s_B‖/‖s_A‖, τ = 1/η.

Leading order in the initialization scale u0 (gradient flow)
------------------------------------------------------------
    t_A = τ ln(1/u0) / ‖s_A‖                                             (eq. 8a)
    t_B = t_A + τ ln(1/u0) (1 − χ k) / ‖s̃_B‖                            (eq. 8b, corrected)
    t_B/t_A = 1 + (‖s_A‖ − χ‖s_B‖) / ‖s̃_B‖                              (eq. 9, corrected)

χ = +1 unless s_B and s̃_B are anti-parallel, in which case χ = −1. Derivation (theory/
timescales.py): during 0 < t < t_A, B's growing mode is the one aligned with s_B and grows by
u0^{−k}, while the mode aligned with −s_B decays by u0^{k}. After t_A, B is driven along s̃_B.
If s̃_B has a positive component along s_B, the grown mode carries over and B needs a further
factor u0^{−(1−k)}; if s̃_B points against s_B (for scalar modalities: Σ_yxB < 0 < Σ̃_yxB,
e.g. ρ < −σ_B/σ_A in the toy), the mode that must now grow is the one that decayed, and B
needs u0^{−(1+k)}. The paper's eq. (9) has ‖s_A‖ − ‖s_B‖ in every case and therefore
underestimates the ratio when Σ_yxB < 0 (by a factor up to 2 on Figure 3c's grid). For the
scalar toy the corrected ratio is 1 + (σ_A² − σ_B²)/(σ_B²(1 − ρ²)) for every ρ — the formula
of Appendix J and of the paper's plotted theory line, which is therefore right where eq. (9)
is not.

Finite initialization and finite learning rate
----------------------------------------------
:func:`predict_times` keeps what the leading order drops, for scalar modalities: the actual
initial value of each growing mode (from the weights, :func:`~.saxe.effective_init`), the
logistic saturation of each transition, and the discrete-time growth factors of gradient
descent. A mode driven by error correlation e grows by (1 + ηe) per step (exactly, in the
linear phase), i.e. at rate ln(1 + ηe)/η instead of e; with η = 0.04 and e = 9 this is 15%
slower, which is why the gradient-flow ratio overestimates gradient descent on Figure 3c.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .common import Prediction

__all__ = ["Roles", "roles", "learning_order", "time_ratio_eq9", "time_ratio_gradient_flow",
           "times_leading_order", "log_init_sensitivity", "time_ratio_gradient_descent",
           "time_ratio_from_drives", "turned_mode_power", "time_ratio_crossover",
           "SHARP_TURN_ALIGN",
           "misattribution", "predict_times",
           "Times", "TimePrediction", "phase_directions", "logistic_map_crossing",
           "two_phase_assumptions", "PHASE_SEPARATION", "leading_order_ratios",
           "typical_run_ratios"]

# Relative tolerance under which two speeds ‖Σ_yx_m‖ count as a tie.
_TIE_RTOL = 1e-9
# Below this value of 1 + cos θ (θ the angle between s_B and s̃_B) the leading-order result is
# flagged as sensitive to the initialization (the crossover between χ = +1 and χ = −1).
_ANTIPARALLEL_WARN = 1e-2


@dataclass(frozen=True)
class Roles:
    """The quantities of the two-phase analysis, with A the first-learned modality."""

    first: int
    second: int
    tie: bool
    s_a: np.ndarray
    s_b: np.ndarray
    s_b_tilde: np.ndarray
    sigma_a: np.ndarray
    sigma_b_tilde: np.ndarray
    plateau: np.ndarray      # U_A = s_A Σ_A^{-1}
    final_a: np.ndarray      # global solution, block A
    final_b: np.ndarray      # global solution, block B
    cos_theta: float         # cosine between s_B and s̃_B (nan if either vanishes)
    names: tuple = field(default=())

    @property
    def k(self) -> float:
        return float(np.linalg.norm(self.s_b) / np.linalg.norm(self.s_a))

    @property
    def chi(self) -> int:
        """+1, or −1 when s_B and s̃_B are anti-parallel (see module docstring)."""
        return -1 if (np.isfinite(self.cos_theta) and self.cos_theta <= -1 + 1e-12) else 1


def _check_two(stats):
    if stats.n_modalities != 2:
        raise ValueError(f"the two-phase theory needs exactly two modalities, got {stats.n_modalities}")


def learning_order(stats) -> tuple:
    """(first, second, tie): modality indices ordered by ‖Σ_yx_m‖ (eq. 28)."""
    _check_two(stats)
    sp = [np.linalg.norm(stats.sigma_yx_m(m)) for m in range(2)]
    tie = bool(np.isclose(sp[0], sp[1], rtol=_TIE_RTOL, atol=0))
    first = 0 if sp[0] >= sp[1] else 1
    return first, 1 - first, tie


def roles(stats, first=None) -> Roles:
    """Assemble :class:`Roles`; ``first`` overrides the learning order (name or index)."""
    f, s, tie = learning_order(stats)
    if first is not None:
        f = stats.index(first)
        s = 1 - f
    s_a, s_b = stats.sigma_yx_m(f), stats.sigma_yx_m(s)
    sig_a = stats.sigma_m(f)
    sig_ab = stats.block(f, s)
    plateau = stats.unimodal_solution(f)
    s_bt = s_b - plateau @ sig_ab
    sig_bt = stats.sigma_m(s) - sig_ab.T @ np.linalg.solve(sig_a, sig_ab)
    nb, nbt = np.linalg.norm(s_b), np.linalg.norm(s_bt)
    cos = float(np.sum(s_b * s_bt) / (nb * nbt)) if nb > 0 and nbt > 0 else float("nan")
    W = stats.global_solution()
    return Roles(f, s, tie, s_a, s_b, s_bt, sig_a, sig_bt, plateau, W[:, stats.slices[f]],
                 W[:, stats.slices[s]], cos, stats.names)


def _scale_tol(stats) -> float:
    return 1e-10 * max(np.max(np.abs(stats.sigma_yx)), 1e-300)


def time_ratio_eq9(stats) -> Prediction:
    """The paper's eq. (9) as printed: 1 + (‖s_A‖ − ‖s_B‖)/‖s_B − s_A Σ_A^{-1} Σ_AB‖.

    Kept for comparison; it is wrong when s_B and s̃_B are anti-parallel
    (see :func:`time_ratio_gradient_flow`).
    """
    r = roles(stats)
    den = np.linalg.norm(r.s_b_tilde)
    if den <= _scale_tol(stats):
        return Prediction(float("inf"), False, ("collinear: modality B is never learned",))
    val = 1 + (np.linalg.norm(r.s_a) - np.linalg.norm(r.s_b)) / den
    return Prediction(float(val), r.chi == 1,
                      () if r.chi == 1 else ("Sigma_yxB is anti-parallel to its effective value; "
                                            "eq. (9) misses the sign flip",))


def time_ratio_gradient_flow(stats) -> Prediction:
    """Leading-order gradient-flow time ratio t_B/t_A, eq. (9) corrected for the sign flip.

    1 + (‖s_A‖ − χ‖s_B‖)/‖s̃_B‖ with χ = −1 when s_B and s̃_B are anti-parallel, else +1.
    Independent of τ and of u0 (for two-layer networks). Caveats: a tie ‖s_A‖ = ‖s_B‖ (no
    unimodal phase, the ratio is 1); collinear modalities (s̃_B = 0: B is never learned, the
    ratio is inf, Figure 8); a zero target for B (t_B undefined); s_B nearly anti-parallel to
    s̃_B (the leading order converges slowly in u0).
    """
    r = roles(stats)
    caveats = []
    if r.tie:
        return Prediction(1.0, True, ("tie: both modalities are learned together, no unimodal "
                                      "phase",))
    if np.linalg.norm(r.final_b) <= _scale_tol(stats):
        return Prediction(float("nan"), False, ("the global solution gives B zero weight; t_B "
                                                "(half of the final value) is undefined",))
    if np.linalg.norm(r.s_b_tilde) <= _scale_tol(stats):
        return Prediction(float("inf"), True, ("collinear modalities: Sigma_yxB is fully explained "
                                               "by modality A, B is never learned",))
    if np.isfinite(r.cos_theta) and r.chi == 1 and 1 + r.cos_theta < _ANTIPARALLEL_WARN:
        caveats.append("Sigma_yxB is nearly anti-parallel to its effective value: the leading "
                       "order is approached slowly as u0 -> 0")
    val = 1 + (np.linalg.norm(r.s_a) - r.chi * np.linalg.norm(r.s_b)) / np.linalg.norm(r.s_b_tilde)
    return Prediction(float(val), not caveats, tuple(caveats))


def times_leading_order(stats, scale: float, *, lr: float) -> TimePrediction:
    """t_A and t_B at leading order in the initial scale u0 (eqs. 8a, 8b corrected), in steps
    at learning rate ``lr`` (gradient flow with τ = 1/η).

    ``scale`` = u0 is the norm of the first-layer weights at initialization (‖W_m¹‖_F ≈
    std·√(h d_m) for i.i.d. N(0, std²) entries). Returns a :class:`TimePrediction`: ``t_A``,
    ``t_B`` (floats, steps), ``first``/``second`` the names of the first- and second-learned
    modality, ``ratio`` t_B/t_A, and ``valid``/``caveats`` those of
    :func:`time_ratio_gradient_flow` (t_A itself is always valid; t_B is inf for collinear
    modalities, NaN where B's final weight is zero).
    """
    u0 = scale
    if not (0 < u0 < 1):
        raise ValueError(f"scale must lie in (0, 1) for the small-initialization expansion, got "
                         f"{u0!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    tau = 1.0 / lr
    r = roles(stats)
    lnu = np.log(1.0 / u0)
    t_a = tau * lnu / np.linalg.norm(r.s_a)
    ratio = time_ratio_gradient_flow(stats)
    return TimePrediction(float(t_a), float(t_a * ratio.value), stats.names[r.first],
                          stats.names[r.second], ratio.valid, ratio.caveats)


def log_init_sensitivity(stats, lr: float, method: str = "gd") -> dict:
    """How t_A and the unimodal phase t_B − t_A grow with ln(1/u0), in steps.

    d t_A / d ln(1/u0) and d(t_B − t_A) / d ln(1/u0) for a two-layer late-fusion network.
    Gradient flow (τ = 1/η): τ/‖s_A‖ and τ(1 − χk)/‖s̃_B‖ — eq. (8) with the sign correction.
    Gradient descent replaces each rate λ by ln(1 + ηλ) per step:
    1/ln(1 + η‖s_A‖) and [1 − ln(1 + ηχ‖s_B‖)/ln(1 + η‖s_A‖)] / ln(1 + η‖s̃_B‖).
    (u0 is the common scale of the initial weights; every growing mode starts ∝ u0².)
    """
    if method not in ("gd", "gf"):
        raise ValueError(f"method must be 'gd' or 'gf', got {method!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    r = roles(stats)
    na, nb, nbt = (float(np.linalg.norm(v)) for v in (r.s_a, r.s_b, r.s_b_tilde))
    if r.tie or nbt <= _scale_tol(stats):
        raise ValueError("no unimodal phase to measure (tie or collinear modalities)")
    if method == "gf":
        return {"t_A": 1 / (lr * na), "t_B - t_A": (1 - r.chi * nb / na) / (lr * nbt)}
    ga, gb, gbt = np.log1p(lr * na), np.log1p(lr * r.chi * nb), np.log1p(lr * nbt)
    return {"t_A": 1 / ga, "t_B - t_A": (1 - gb / ga) / gbt}


def time_ratio_gradient_descent(stats, lr: float) -> Prediction:
    """Leading-order t_B/t_A for gradient descent with step η: eq. (9) with every growth rate
    λ replaced by ln(1 + ηλ) per step (theory/timescales.py):

        1 + [1 − ln(1 + ηχ‖s_B‖)/ln(1 + η‖s_A‖)] · ln(1 + η‖s_A‖)/ln(1 + η‖s̃_B‖).

    Tends to :func:`time_ratio_gradient_flow` as η → 0. Same caveats.
    """
    gf = time_ratio_gradient_flow(stats)
    if not np.isfinite(gf.value) or gf.value == 1.0:
        return gf
    sens = log_init_sensitivity(stats, lr, "gd")
    caveats = gf.caveats
    r = roles(stats)
    if lr * np.linalg.norm(r.s_a) >= 1:
        caveats += ("lr*||Sigma_yxA|| >= 1: the growth is not monotonic",)
    return Prediction(float(1 + sens["t_B - t_A"] / sens["t_A"]),
                      bool(gf.valid and lr * np.linalg.norm(r.s_a) < 1), caveats)


#: Below this cosine between the first modality's drive Σ_yxA and its plateau U_A = Σ_yxAΣ_A⁻¹,
#: time_ratio_crossover flags its sharp-turn assumption as failing. The first transition then
#: rotates A through the small eigendirections of Σ_A and is slow, B's drive turns gradually
#: and keeps more of the grown mode than a sharp turn does. The edge is measured, not derived:
#: on the random sweep (10-dimensional modalities, 75 covariances) the closed form is within
#: 6.6 % (median) of the simulation where the cosine is ≥ 0.7 (12 covariances; eq. 9 with GD
#: rates 14.5 %) and 16 % where it is below (eq. 9: 12 %).
SHARP_TURN_ALIGN = 0.7


def turned_mode_power(cos_theta, grown, decayed=None):
    """Initial power of the mode that must grow after a branch's drive turns by θ, in units of
    the initial power of one mode (theory/timescales.py, derive_turned_mode_power).

    Linear regime of a two-layer branch (hidden unit h: output weight v_h, input weights W_h),
    each unit's mode along a unit direction d being a_d = (v_h + d·W_h)/√2. Driven along ŝ, the
    mode along ŝ has been multiplied by ``grown`` (e^{‖s‖t/τ}, or (1 + η‖s‖)^t) and the one along
    −ŝ by ``decayed`` (default 1/grown; gradient descent: (1 − η‖s‖)^t), the in-plane weight
    orthogonal to ŝ is untouched. The drive turning to ŝ' (cos θ = ŝ·ŝ') makes the growing mode

        a' = (1 + cos θ)/2 · a₊ + (1 − cos θ)/2 · a₋ + sin θ · w⊥/√2,

    and with independent, equal-variance initial entries (i.i.d. weights) its power is

        P = ((1 + cos θ)/2)² grown² + ((1 − cos θ)/2)² decayed² + sin²θ / 2.

    The three terms are the carried-over grown mode (eq. 9), the decayed anti-parallel mode
    (the sign-flip form, χ = −1) and the untouched orthogonal weight; P crosses over from the
    first to the last two as 1 + cos θ falls below ~4/grown². Assumes a sharp turn (the first
    modality learned instantly) and weights still in the linear regime."""
    c = np.asarray(cos_theta, float)
    if np.any(~np.isfinite(c)) or np.any(np.abs(c) > 1 + 1e-12):
        raise ValueError(f"cos_theta must lie in [-1, 1], got {cos_theta!r}")
    c = np.clip(c, -1.0, 1.0)
    g = np.asarray(grown, float)
    if np.any(~np.isfinite(g)) or np.any(g <= 0):
        raise ValueError(f"grown must be a positive finite factor, got {grown!r}")
    d = 1.0 / g if decayed is None else np.asarray(decayed, float)
    if np.any(~np.isfinite(d)):
        raise ValueError(f"decayed must be a finite factor, got {decayed!r}")
    return ((1 + c) / 2) ** 2 * g ** 2 + ((1 - c) / 2) ** 2 * d ** 2 + (1 - c * c) / 2


def time_ratio_crossover(stats, u0: float, lr: float | None = None) -> Prediction:
    """t_B/t_A of two-layer late fusion with the angle θ between s_B and s̃_B kept at finite u0:
    the leading order (eqs. 8–9) with B's second-phase starting amplitude u0·√P from
    :func:`turned_mode_power`, instead of the two limits χ = ±1:

        t_B/t_A = 1 + (r_A/r̃_B) · (1 − ln P / (2ℓ)),    ℓ = ln(1/u0),

    r the growth rates (‖s‖ in gradient flow, ``lr`` None; ln(1 + η‖s‖) per step for gradient
    descent), P with grown = e^{r_B t_A} = u0^{−r_B/r_A} and decayed = u0^{r_B/r_A} (gradient
    flow), or (1 + η‖s_B‖)^{t_A} and |1 − η‖s_B‖|^{t_A} with t_A = ℓ/ln(1 + η‖s_A‖) (gradient
    descent).
    u0 is the initial amplitude of one mode, √(width)·(entry std) for i.i.d. weights. For
    cos θ > −1 it tends to :func:`time_ratio_gradient_flow` as u0 → 0 (the correction
    −ln((1 + cos θ)/2)/ℓ), at cos θ = −1 it is the sign-flip form; between, it shows the
    crossover the leading order flags as slowly converging. Assumptions: every mode starts at
    u0, the first modality is learned at t_A instantly (a sharp turn of B's drive), B is still
    linear then. Where the first modality's plateau U_A is far from its drive's direction
    (cosine below :data:`SHARP_TURN_ALIGN`) its transition is slow and the prediction is
    flagged (``valid`` False, the reason in ``caveats``)."""
    if isinstance(u0, bool) or not isinstance(u0, (int, float, np.floating)) or not 0 < u0 < 1:
        raise ValueError(f"u0 (the initial mode amplitude) must lie in (0, 1), got {u0!r}")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating))
                           or not (np.isfinite(lr) and lr > 0)):
        raise ValueError(f"lr must be a positive finite number or None, got {lr!r}")
    gf = time_ratio_gradient_flow(stats)
    if not np.isfinite(gf.value) or gf.value == 1.0:
        return gf
    r = roles(stats)
    na, nb, nbt = (float(np.linalg.norm(v)) for v in (r.s_a, r.s_b, r.s_b_tilde))
    ell = np.log(1 / u0)
    caveats = [c for c in gf.caveats if "anti-parallel" not in c]
    if lr is None:
        ra, rbt = na, nbt
        t_a = ell / na
        grown, decayed = np.exp(nb * t_a), np.exp(-nb * t_a)
    else:
        if lr * na >= 1:
            caveats.append("lr*||Sigma_yxA|| >= 1: the growth is not monotonic")
        ra, rbt = np.log1p(lr * na), np.log1p(lr * nbt)
        t_a = ell / ra
        grown, decayed = (1 + lr * nb) ** t_a, abs(1 - lr * nb) ** t_a
    ua, sa = np.ravel(r.plateau), np.ravel(r.s_a)
    align = float(ua @ sa / (np.linalg.norm(ua) * np.linalg.norm(sa)))
    if align < SHARP_TURN_ALIGN:
        caveats.append(f"the first modality's plateau is at cosine {align:.2f} to its drive "
                       f"Sigma_yxA (< {SHARP_TURN_ALIGN}): its transition is slow, B's drive "
                       "turns gradually and the sharp-turn power overstates the delay")
    c = float(np.clip(r.cos_theta, -1, 1)) if np.isfinite(r.cos_theta) else 1.0
    P = float(turned_mode_power(c, grown, decayed))
    val = 1 + (ra / rbt) * (1 - np.log(P) / (2 * ell))
    return Prediction(float(val), not caveats, tuple(caveats))


def _squared_vec(w, sigma, w_star, l_star, sigma_yx, sigma_yy):
    from ..losses import squared_moments
    return squared_moments(w[None, :], sigma, w_star, l_star)


def _logistic_vec(w, sigma, w_star, l_star, sigma_yx, sigma_yy):
    from ..losses import gaussian_logistic
    return gaussian_logistic(w[None, :], sigma, sigma_yx, sigma_yy)


def _jitted():
    import jax
    fns = {"squared": _squared_vec, "logistic": _logistic_vec}
    return ({k: jax.jit(f) for k, f in fns.items()},
            {k: jax.jit(jax.grad(f)) for k, f in fns.items()})


_LOSSES, _GRADS = _jitted()


def time_ratio_from_drives(stats, loss: str = "squared", lr: float | None = None) -> Prediction:
    """Leading-order t_B/t_A of two-layer late fusion for a loss of the total maps.

    The two-phase argument of eq. (9) only uses the drive g_m(W) = −∂L/∂W_m^tot on each
    modality: at W = 0 (phase 1, rates ‖g_A(0)‖ and ‖g_B(0)‖) and at A's unimodal optimum
    W_A° = argmin L([W_A, 0]) (phase 2, rate ‖g̃_B‖ = ‖g_B([W_A°, 0])‖):

        t_B/t_A = 1 + (‖g_A(0)‖ − χ‖g_B(0)‖)/‖g̃_B‖

    (χ = −1 when g_B(0) and g̃_B are anti-parallel), or with gradient-descent rates
    ln(1 + η·rate) when ``lr`` is given. For the squared loss g(0) = Σ_yx, W_A° = Σ_yxAΣ_A⁻¹
    and g̃_B = s̃_B: eq. (9) exactly. For the logistic loss (Gaussian data) g(0) = Σ_yx/2
    (paper eqs. 35–37) and W_A° is the unimodal logistic optimum. Assumes A is learned first
    and sits at W_A° while B grows — with the logistic loss A approaches W_A° only slowly
    (logarithmically) when it is large, which makes B's effective drive larger and this
    prediction an overestimate (Figure 9).
    """
    if loss not in ("squared", "logistic"):
        raise ValueError(f"loss must be 'squared' or 'logistic', got {loss!r}")
    _check_two(stats)
    if stats.output_dim != 1:
        raise ValueError("time_ratio_from_drives needs a scalar output")
    from scipy.optimize import minimize

    from ..precision import float64

    moments = (stats.sigma, stats.global_solution(), np.asarray(max(stats.min_loss(), 0.0)),
               stats.sigma_yx, stats.sigma_yy)

    def L(w):
        with float64():
            return float(_LOSSES[loss](np.asarray(w, float), *moments))

    def grad(w):
        with float64():
            return np.asarray(_GRADS[loss](np.asarray(w, float), *moments))
    D = stats.input_dim
    g0 = -grad(np.zeros(D))
    sl = stats.slices
    norms = [np.linalg.norm(g0[s]) for s in sl]
    first = int(np.argmax(norms))
    second = 1 - first
    if np.isclose(norms[0], norms[1], rtol=_TIE_RTOL):
        return Prediction(1.0, True, ("tie: no unimodal phase",))

    def restricted(wa):
        w = np.zeros(D)
        w[sl[first]] = wa
        return w

    res = minimize(lambda wa: L(restricted(wa)), x0=np.zeros(stats.dims[first]),
                   jac=lambda wa: grad(restricted(wa))[sl[first]], method="BFGS",
                   options={"gtol": 1e-12})
    g_plateau = -grad(restricted(res.x))[sl[second]]
    nbt = float(np.linalg.norm(g_plateau))
    if nbt <= _scale_tol(stats):
        return Prediction(float("inf"), True, ("no drive on B at A's optimum: B is never learned",))
    gb0 = g0[sl[second]]
    cos = float(gb0 @ g_plateau / (np.linalg.norm(gb0) * nbt)) if norms[second] > 0 else 1.0
    chi = -1 if cos <= -1 + 1e-12 else 1
    na, nb = norms[first], norms[second]
    caveats = () if loss == "squared" else (
        "logistic loss: assumes A sits at its unimodal optimum while B grows",)
    if lr is None:
        return Prediction(float(1 + (na - chi * nb) / nbt), True, caveats)
    ga, gb, gbt = np.log1p(lr * na), np.log1p(lr * chi * nb), np.log1p(lr * nbt)
    return Prediction(float(1 + (1 - gb / ga) * ga / gbt), True, caveats)


def misattribution(stats) -> Prediction:
    """Mis-attribution of the unimodal phase (Section 3.3, Figure 3d).

    (U_A − W*_A)·W*_A / ‖W*_A‖²: how far the first modality's plateau overshoots (> 0) or
    undershoots (< 0) its final value, relative to it. For the scalar toy with y = x_A + x_B
    this is ρσ_B/σ_A (Appendix J), for every ρ. Undefined when W*_A = 0.
    """
    r = roles(stats)
    nrm = float(np.sum(r.final_a ** 2))
    if nrm <= _scale_tol(stats) ** 2:
        return Prediction(float("nan"), False, ("the first modality's final weight is zero",))
    caveats = ("tie: there is no unimodal phase, mis-attribution is not observed",) if r.tie else ()
    val = float(np.sum((r.plateau - r.final_a) * r.final_a) / nrm)
    return Prediction(val, not r.tie, caveats)


def phase_directions(stats) -> tuple:
    """Unit directions of the error that drives each modality's transition.

    The first modality is driven along s_A, the second (after t_A) along s̃_B. For scalar
    modalities these are signs ±1. Returned in modality order (index 0 first), as needed by
    :func:`~.saxe.effective_init`.
    """
    r = roles(stats)
    out = [None, None]
    na, nbt = np.linalg.norm(r.s_a), np.linalg.norm(r.s_b_tilde)
    if na == 0 or nbt == 0:
        raise ValueError("a driving error correlation vanishes; no growing mode is defined")
    out[r.first] = (r.s_a / na).reshape(-1)
    out[r.second] = (r.s_b_tilde / nbt).reshape(-1)
    return tuple(out)


def logistic_map_crossing(x0: float, g: float, level: float = 0.5, max_iter: int = 10 ** 7):
    """First (linearly interpolated) step at which x_{n+1} = x_n (1 + g(1 − x_n))² reaches
    ``level`` from x_0.

    This is gradient descent on one balanced two-layer mode in progress units x = w/w*, with
    g = η s (theory/timescales.py derives it); it is the discrete-time counterpart of the
    logistic of eq. (21). Requires 0 < x_0 < level < 1 and 0 < g < 1 (for g ≥ 1 the fixed point
    x = 1 is no longer approached monotonically).
    """
    if not (0 < x0 < level < 1):
        raise ValueError(f"need 0 < x0 < level < 1, got x0={x0}, level={level}")
    if not (0 < g < 1):
        raise ValueError(f"the logistic map needs 0 < g = lr*s < 1, got {g}")
    x, n = x0, 0.0
    it = 0
    while x < level:
        xn = x * (1 + g * (1 - x)) ** 2
        if xn >= level:
            return n + (level - x) / (xn - x)
        x, n = xn, n + 1
        it += 1
        if it > max_iter:
            raise RuntimeError("logistic map did not reach the level")
    return n


def _json_float(v):
    """A float, or a nested list of them, for JSON (a non-finite value as its string)."""
    if np.ndim(v):
        return [_json_float(x) for x in np.asarray(v)]
    return float(v) if np.isfinite(v) else str(float(v))


class Times:
    """The family of predicted learning times: every member says the same things in the same
    words.

    * ``names``: the modalities, by name;
    * ``times``: their predicted times, in steps;
    * ``valid``: whether the assumptions behind the times hold (per run for a batch);
    * ``caveats``: which assumptions are strained or fail, in words;
    * ``to_dict()``: all of it as a JSON-ready dict.

    :class:`TimePrediction` holds two modalities (``times`` = (t_A, t_B), the times of
    ``names[0]`` and ``names[1]``), and :class:`~.deficits.DeficitTimes` is one;
    :class:`~.sequence.LearningSequence` holds M modalities (``times[k]`` the time of
    ``order[k]``, ``names`` in modality order).
    """

    __slots__ = ()

    def to_dict(self) -> dict:
        raise NotImplementedError


@dataclass(frozen=True)
class TimePrediction(Times):
    """t_A, t_B (in steps) and their ratio, with the first modality and caveats.

    For one run the times are floats and ``valid`` a bool. For a batch (``w0`` of shape
    (*batch, 2) in :func:`predict_times`) ``t_A``, ``t_B``, ``ratio`` and ``valid`` are arrays
    of the batch shape (one entry per run), and ``caveats`` lists every distinct caveat once,
    with the number of runs it concerns.

    ``names`` are the modalities whose times ``t_A`` and ``t_B`` are, in that order
    (``times`` = (t_A, t_B)); by default (``first``, ``second``). Given ``names`` without
    ``first`` and ``second``, these name, per entry, the modality with the smaller and the
    larger time (the order of ``names`` where the times tie or are NaN): strings for one run,
    arrays of names for a batch.
    """

    t_A: float
    t_B: float
    first: str | None = None
    second: str | None = None
    valid: bool = True
    caveats: tuple = field(default=())
    names: tuple = field(default=())

    def __post_init__(self):
        names = tuple(self.names)
        if self.first is None or self.second is None:
            if self.first is not None or self.second is not None or len(names) != 2:
                raise ValueError("TimePrediction needs first and second, or the two names of "
                                 "the modalities of t_A and t_B")
            later = np.asarray(self.t_B) < np.asarray(self.t_A)     # NaN: the names' order
            first, second = np.where(later, names[1], names[0]), np.where(later, names[0],
                                                                           names[1])
            if first.ndim == 0:
                first, second = first.item(), second.item()
            object.__setattr__(self, "first", first)
            object.__setattr__(self, "second", second)
        elif not names:
            names = (self.first, self.second)
        object.__setattr__(self, "names", names)

    @property
    def ratio(self):
        return self.t_B / self.t_A

    @property
    def times(self) -> tuple:
        """(t_A, t_B), the times of ``names[0]`` and ``names[1]``, in steps."""
        return (self.t_A, self.t_B)

    def to_dict(self) -> dict:
        def name(v):
            return v.tolist() if isinstance(v, np.ndarray) else v

        valid = np.asarray(self.valid).tolist()
        return {"t_A": _json_float(self.t_A), "t_B": _json_float(self.t_B),
                "ratio": _json_float(self.ratio), "first": name(self.first),
                "second": name(self.second), "valid": valid, "caveats": list(self.caveats)}


def _logistic_crossings(x0: np.ndarray, g: float, level: float = 0.5,
                        max_iter: int = 10 ** 7) -> np.ndarray:
    """:func:`logistic_map_crossing` of every entry of the 1-d array ``x0`` (NaN where an entry
    is already at the level). One scalar loop per entry: a run needs thousands of iterations of
    a few flops each, where numpy's per-call overhead over a handful of runs costs more than
    the loop itself (measured: 6.4 s against a fraction of a second in Figure 3c's quick
    mode)."""
    return np.array([logistic_map_crossing(float(v), g, level, max_iter) if v < level
                     else np.nan for v in np.asarray(x0, dtype=float)])


def predict_times(stats, lr: float, init, method: str = "gd") -> TimePrediction:
    """t_A, t_B for the training actually run: finite initialization, finite learning rate.

    Two-layer late fusion, two scalar modalities, scalar output. ``init`` gives the initial value
    of each modality's growing mode, in modality order, as returned by
    :func:`~.saxe.effective_init` with :func:`phase_directions` (or
    :func:`~.saxe.typical_effective_init` for a theory curve): shape (2,) for one run, or
    (*batch, 2) for a batch of runs (``effective_init`` of batched weights gives (runs, 2)),
    the modalities on the last axis. ``method`` "gd" predicts gradient descent with step
    η = ``lr``; "gf" gradient flow with τ = 1/η. Times are in steps (t = n).

    Returns one :class:`TimePrediction`: floats for one run; for a batch, ``t_A``, ``t_B``,
    ``ratio`` and ``valid`` are arrays of the batch shape, entry i the prediction for
    ``init[i]`` (a run outside the assumptions is NaN there and not valid), and ``caveats``
    names each distinct caveat once with the number of runs it concerns.

    Model (derived in theory/timescales.py):

    1. A grows alone; in progress units x = W_A^tot/U_A it follows the logistic map
       x' = x(1 + g_A(1 − x))², g_A = η|s_A| (gradient flow: the logistic of eq. 21), from
       x₀ = w0_A/|U_A|. t_A is its crossing of ½.
    2. B's growing mode, driven by e_B = s_B − Σ_BA W_A^tot(t), is multiplied per step by
       1 + η ξ e_B (ξ = sign s̃_B); while W_A rises this interpolates between the two phases'
       rates. The sum of the logarithms is accumulated along A's trajectory (in gradient flow
       it equals the sharp switch at t_A exactly, up to O(x₀)).
    3. After A's transition, A follows its conditional optimum (it is faster), B sees
       e_B = s̃_B − Σ̃_B W_B^tot and follows the logistic map with g̃ = η|s̃_B| toward its final
       value; t_B is the crossing of ½.

    Caveats are returned for ties, collinear modalities, an initialization that is not small
    and learning rates for which the maps do not converge monotonically (η|s| ≥ 1).
    """
    if method not in ("gd", "gf"):
        raise ValueError(f"method must be 'gd' or 'gf', got {method!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    _check_two(stats)
    if stats.dims != (1, 1) or stats.output_dim != 1:
        raise ValueError("predict_times is derived for two scalar modalities and a scalar "
                         "output; use time_ratio_gradient_flow for vector modalities")
    init = np.asarray(init, dtype=float)
    if init.ndim == 0 or init.shape[-1] != 2:
        raise ValueError("init must hold the two modalities' initial mode values on its last "
                         "axis: shape (2,) for one run or (*batch, 2) for a batch (as "
                         f"effective_init returns); got shape {init.shape}")
    bad = ~np.isfinite(init) | (init <= 0)
    if np.any(bad):
        raise ValueError("init must hold positive, finite initial mode values; got "
                         f"{init[bad].ravel()[:4].tolist()} among them")
    batch = init.shape[:-1]
    flat = init.reshape(-1, 2)
    nrun = flat.shape[0]
    r = roles(stats)
    na, nb = stats.names[r.first], stats.names[r.second]

    def result(t_a, t_b, valid, reasons):
        """Assemble the prediction: ``reasons`` maps each caveat to its runs (bool mask)."""
        t_a = np.broadcast_to(np.asarray(t_a, float), (nrun,)).reshape(batch)
        t_b = np.broadcast_to(np.asarray(t_b, float), (nrun,)).reshape(batch)
        valid = np.broadcast_to(np.asarray(valid, bool), (nrun,)).reshape(batch)
        caveats = []
        for text, mask in reasons:
            k = int(np.count_nonzero(np.broadcast_to(mask, (nrun,))))
            if k:
                caveats.append(text if not batch else f"{text} ({k} of {nrun} runs)")
        if not batch:
            return TimePrediction(float(t_a), float(t_b), na, nb, bool(valid), tuple(caveats))
        return TimePrediction(t_a.copy(), t_b.copy(), na, nb, valid.copy(), tuple(caveats))

    nan = np.full(nrun, np.nan)
    if r.tie:
        return result(nan, nan, False,
                      [("tie: both modalities are learned together, no unimodal phase", True)])
    s_a = float(r.s_a.ravel()[0])
    s_b = float(r.s_b.ravel()[0])
    s_bt = float(r.s_b_tilde.ravel()[0])
    sig_a = float(r.sigma_a.ravel()[0])
    sig_bt = float(r.sigma_b_tilde.ravel()[0])
    if abs(s_bt) <= _scale_tol(stats):
        return result(nan, np.inf, True, [("collinear modalities: B is never learned", True)])
    plateau_a = abs(s_a) / sig_a           # |U_A|
    final_b = abs(s_bt) / sig_bt           # |W*_B|
    xi = np.sign(s_bt)
    cross_ab = float(stats.block(r.second, r.first).ravel()[0])  # Σ_BA
    eta = float(lr)
    x0 = flat[:, r.first] / plateau_a
    lnb0 = np.log(flat[:, r.second])
    # A run whose mode starts beyond half its plateau has no unimodal phase to predict.
    big = (x0 >= 0.5) | (flat[:, r.second] / final_b >= 0.5)
    ok = ~big
    not_small = ("initialization is not small: a mode starts beyond half its plateau", big)
    t_a, t_b = nan.copy(), nan.copy()

    if method == "gf":
        g_a = eta * abs(s_a)
        t_a[ok] = np.log(1.0 / x0[ok] - 1.0) / (2 * g_a)
        # ln w_B,lin(t) = ln w0_B + 2η[ξ s_B t_A + |s̃_B| (t − t_A)]; t_B where it equals ln|W*_B|.
        t_b[ok] = t_a[ok] + (np.log(final_b) - lnb0[ok] - 2 * eta * xi * s_b * t_a[ok]) / (
            2 * eta * abs(s_bt))
        return result(t_a, t_b, ok, [not_small])

    g_a, g_bt = eta * abs(s_a), eta * abs(s_bt)
    for label, g in (("lr*|Sigma_yxA|", g_a), ("lr*|Sigma~_yxB|", g_bt)):
        if g >= 1:
            return result(nan, nan, False,
                          [not_small, (f"{label} = {g:.3g} >= 1: gradient descent does not "
                                       "approach the plateau monotonically", ok)])
    oscillates = eta * abs(s_b) >= 1
    t_a[ok] = _logistic_crossings(x0[ok], g_a)
    # Accumulate B's log-growth along A's logistic-map trajectory until A has saturated, run by
    # run: a scalar loop of a few flops per step (numpy's per-call overhead on a batch of a
    # few runs would cost more than the arithmetic, as in _logistic_crossings).
    lnb, n = lnb0[ok].copy(), np.zeros(int(np.count_nonzero(ok)), dtype=np.int64)
    for i, x in enumerate(x0[ok]):
        acc, k = lnb[i], 0
        while x < 1 - 1e-13 and k < 10 ** 7:
            e_b = s_b - cross_ab * np.sign(s_a) * plateau_a * x     # Σ_BA W_A^tot
            acc += 2 * np.log(abs(1 + eta * xi * e_b))
            x = x * (1 + g_a * (1 - x)) ** 2
            k += 1
        lnb[i], n[i] = acc, k
    y = np.exp(lnb) / final_b
    overlap = np.zeros(nrun, bool)
    overlap[ok] = y >= 0.5
    sep = y < 0.5
    tb_ok = np.full(y.shape, np.nan)
    tb_ok[sep] = n[sep] + _logistic_crossings(y[sep], g_bt)
    t_b[ok] = tb_ok
    valid = ok & ~overlap & ~oscillates
    return result(t_a, t_b, valid, [
        ("lr*|Sigma_yxB| >= 1: B oscillates in the first phase", oscillates & ok),
        ("B reaches half its final value before A saturates; the two phases overlap", overlap),
        not_small])


#: :func:`two_phase_assumptions`: the second modality may have grown to at most this fraction of
#: its unimodal plateau when the first is learned, for the two transitions to count as separate.
PHASE_SEPARATION = 0.1


def two_phase_assumptions(stats, init_std: float, width: int, lr: float, steps: int,
                          stop_loss: float, separation: float = PHASE_SEPARATION) -> list:
    """Reasons, from the theory alone (before any simulation), why two-layer late fusion on
    ``stats`` lies outside the two-phase analysis when trained by gradient descent at learning
    rate ``lr`` from i.i.d. N(0, ``init_std``²) weights of hidden ``width``, with a budget of
    ``steps`` and the stopping loss ``stop_loss`` (an empty list: inside).

    * stability: gradient descent from small weights ends at the balanced minimum, where it is
      linearly stable only if η λ_max < 2 (:func:`~.landscape.minimum_curvature`); otherwise it
      diverges or leaves the balanced regime the theory describes;
    * separated phases: in the first phase each modality's growing mode starts at the typical
      value w0 (:func:`~.saxe.typical_effective_init`) and is multiplied by (1 + η‖Σ_yx_m‖)²
      per step; at the time the first modality reaches half its plateau, the second must still
      be below ``separation`` of its own, or the two transitions overlap (a near tie);
    * budget: the predicted t_B (leading order with gradient-descent rates,
      :func:`time_ratio_gradient_descent`) plus the final approach along the flattest direction
      of the minimum, down to the stopping loss, must fit in ``steps``;
    * the caveats of the leading-order formula itself (:func:`time_ratio_gradient_flow`:
      collinear, near anti-parallel, ...).
    """
    from .landscape import minimum_curvature, saddle_loss
    from .saxe import typical_effective_init

    reasons = []
    r = roles(stats)
    curv = minimum_curvature(stats)
    if not curv.stable(lr):
        reasons.append(f"unstable at the minimum: lr*lambda_max = {lr * curv.lambda_max:.3g} >= 2")
    w0 = typical_effective_init(init_std, width)
    half = []
    for m in (r.first, r.second):
        plateau = np.linalg.norm(stats.unimodal_solution(m))
        rate = np.log1p(lr * np.linalg.norm(stats.sigma_yx_m(m)))
        half.append((np.log(plateau / w0) / (2 * rate), plateau, rate))
    t_a = half[0][0]
    x_b = w0 / half[1][1] * np.exp(2 * half[1][2] * t_a)
    if x_b > separation:
        reasons.append(f"phases overlap: the second modality is at {x_b:.2g} of its plateau when "
                       f"the first is learned (k = {r.k:.3f}, near tie)")
    ratio = time_ratio_gradient_descent(stats, lr)
    if np.isfinite(ratio.value):
        excess = saddle_loss(stats, r.first) - max(stats.min_loss(), 0.0)
        t_end = t_a * ratio.value + curv.steps_to_shrink(lr, max(excess / stop_loss, 1.0))
        if t_end > steps:
            reasons.append(f"predicted to need {t_end:.0f} steps, more than the budget "
                           f"{steps}")
    reasons += list(time_ratio_gradient_flow(stats).caveats)
    return reasons


def leading_order_ratios(stats, init_std: float, width: int, lr: float, steps: int,
                         stop_loss: float) -> dict:
    """The leading-order time ratios of two-layer late fusion on ``stats`` (modalities of any
    dimension), trained by gradient descent at ``lr`` from i.i.d. N(0, ``init_std``²) weights
    of hidden ``width``, and whether the case lies inside their analysis.

    Returns ``k`` and ``cos_theta`` (:func:`roles`), ``first`` (the first-learned modality's
    name), ``gradient_flow`` (:func:`time_ratio_gradient_flow`) and ``gradient_descent``
    (:func:`time_ratio_gradient_descent`) as numbers, ``crossover``
    (:func:`time_ratio_crossover` at u0 = √width·init_std, a :class:`Prediction`) and
    ``flags`` (:func:`two_phase_assumptions` with the budget ``steps`` and ``stop_loss``;
    empty: inside).
    """
    r = roles(stats)
    return {"k": r.k, "cos_theta": r.cos_theta, "first": stats.names[r.first],
            "gradient_flow": time_ratio_gradient_flow(stats).value,
            "gradient_descent": time_ratio_gradient_descent(stats, lr).value,
            "crossover": time_ratio_crossover(stats, init_std * np.sqrt(width), lr),
            "flags": two_phase_assumptions(stats, init_std, width, lr, steps, stop_loss)}


def typical_run_ratios(stats, init_std: float, width: int, lr: float) -> dict:
    """The time ratios and the mis-attribution of a typical run of two-layer late fusion on
    ``stats`` (scalar modalities): both growing modes start at
    :func:`~.saxe.typical_effective_init` (``init_std``, ``width``), gradient descent at ``lr``.

    Returns ``tie`` and ``first`` (:func:`roles`: whether the two are learned together, the
    first-learned modality's name), ``finite_lr`` (:func:`predict_times`, the linear network)
    and ``relu`` (:func:`~.relu.predict_times_relu`, its ReLU twin), both 1 for a tie,
    ``gradient_flow`` (:func:`time_ratio_gradient_flow`), ``eq9`` (:func:`time_ratio_eq9`,
    as printed) and ``misattribution`` (:func:`misattribution`), all as numbers.
    """
    from .relu import predict_times_relu
    from .saxe import typical_effective_init

    w0 = typical_effective_init(init_std, width)
    r = roles(stats)
    return {"tie": bool(r.tie), "first": stats.names[r.first],
            "finite_lr": 1.0 if r.tie else predict_times(stats, lr, [w0, w0]).ratio,
            "relu": 1.0 if r.tie else predict_times_relu(stats, lr, [w0, w0]).ratio,
            "gradient_flow": time_ratio_gradient_flow(stats).value,
            "eq9": time_ratio_eq9(stats).value, "misattribution": misattribution(stats).value}
