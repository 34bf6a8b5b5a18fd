"""Deep fusion networks at leading order in the initialization scale (paper Section 4, App. E).

Setting: two modalities, scalar output, total depth L, fusion layer L_f (or branch depths
L_A, L_B and L_c post-fusion layers), every pre-fusion matrix of Frobenius norm u0 and the
post-fusion ones √2·u0, weights balanced and rank-one (ansatz 43). The norms u_A, u_B of the
pre-fusion layers and u of the post-fusion layers then follow (eq. 44, τ = 1/η)

    τ du_A/dt = ‖s_A‖ u_A^{L_f−1} u^{L−L_f},   τ du_B/dt = ‖s_B‖ u_B^{L_f−1} u^{L−L_f},
    u² = u_A² + u_B²                                                    (eq. 41)

until the first transition, and the branches are related by eq. (45) (L_f ≠ 2) or eq. (55)
(L_f = 2). Everything below is derived in theory/deep.py; the corrections to the printed
formulas are listed in docs/corrections.md:

* eq. (12), (57), (59): when Σ_yxB is anti-parallel to s̃_B = Σ_yxB − Σ_yxAΣ_A^{-1}Σ_AB the
  mode of B that must grow in the second phase is the one along −Σ_yxB, which shrinks during
  the first phase: ‖s_A‖ − ‖s_B‖ becomes ‖s_A‖ + ‖s_B‖ (the 2-layer correction, unchanged by
  depth). This assumes the initialization has such a mode, as any random one does.
* eq. (57) (L_f = 2) divides by L_f − 2 = 0 and has the exponent 1 − L/2 on ‖Σ_yxAΣ_A^{-1}‖;
  the derivation gives no such factor and the exponent 1 − 2/L.
* eq. (49) writes u0^{2−L_f} for the u0^{2−L} of eq. (48) (no consequence for eq. 49's claim).

These are the paper's leading-order predictions. They assume aligned, balanced weights; with
the random initialization of the paper's Figure 6 (u0 = 0.1, width 100) the weights first
have to align, which :mod:`dlnfusion.reduced.network` accounts for.
"""
from __future__ import annotations

import numpy as np
from scipy import integrate, optimize

from .. import checks
from .common import Prediction
from .timescales import TimePrediction, _scale_tol, roles

__all__ = ["reduced_rhs", "branch_relation", "fusion_integral", "unequal_integral",
           "time_ratio_leading_order", "time_ratio_unequal", "deep_times", "pathway_time",
           "pathway_trajectory", "alignment_escape_time", "alignment_seeds",
           "random_init_times", "RANDOM_INIT_SMALL_B", "mode_potential", "mode_after"]


def _check_depths(depth, fusion_layer):
    if not isinstance(depth, (int, np.integer)) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, got {depth!r}")
    if not isinstance(fusion_layer, (int, np.integer)) or not 1 <= fusion_layer <= depth:
        raise ValueError(f"fusion_layer must be an integer in [1, depth], got {fusion_layer!r}")


def _check_k(k):
    if not (np.isfinite(k) and 0 <= k <= 1):
        raise ValueError(f"k = ||s_B||/||s_A|| must lie in [0, 1], got {k!r}")


def reduced_rhs(u_a, u_b, u, s_a: float, s_b: float, depth: int, fusion_layer: int):
    """Right-hand side of eq. (44) (times τ): (du_A, du_B, du)/dt for errors Σ_yx_m.

    ``s_a``, ``s_b`` are ‖Σ_yxA‖, ‖Σ_yxB‖; the first phase, before any modality is learned.
    """
    _check_depths(depth, fusion_layer)
    Lf, Lc = fusion_layer, depth - fusion_layer
    du_a = s_a * u_a ** (Lf - 1) * u ** Lc
    du_b = s_b * u_b ** (Lf - 1) * u ** Lc
    du = (s_a * u_a ** Lf + s_b * u_b ** Lf) * u ** (Lc - 1) if Lc > 0 else np.zeros_like(du_a)
    return du_a, du_b, du


def branch_relation(u_a, k: float, u0: float, fusion_layer: int):
    """u_B as a function of u_A during the first phase (eq. 45; eq. 55 for L_f = 2).

    L_f ≠ 2: u_B^{2−L_f} − u0^{2−L_f} = k (u_A^{2−L_f} − u0^{2−L_f});
    L_f = 2: ln(u_B/u0) = k ln(u_A/u0). (L_f = 1: u_B − u0 = k(u_A − u0).)
    """
    _check_k(k)
    u_a = np.asarray(u_a, dtype=float)
    if fusion_layer == 2:
        return u0 * (u_a / u0) ** k
    p = 2 - fusion_layer
    return (u0 ** p + k * (u_a ** p - u0 ** p)) ** (1.0 / p)


def _quad01(f, breaks=()):
    pts = [b for b in breaks if 0 < b < 1]
    val, err = integrate.quad(f, 0.0, 1.0, points=pts or None, limit=500, epsabs=0,
                              epsrel=1e-12)
    return val


def fusion_integral(depth: int, fusion_layer: int, k: float) -> float:
    """I(L, L_f) of eq. (13) for 2 < L_f ≤ L, and I(L, 2) of eq. (58) for L_f = 2.

    Evaluated after the substitution y = 1/x, which maps [1, ∞) to (0, 1] with a bounded,
    smooth integrand (theory/deep.py):

        I(L, L_f) = ∫₀¹ y^{L−3} [1 + y² (k y^{L_f−2} + 1 − k)^{−2/(L_f−2)}]^{(L_f−L)/2} dy,
        I(L, 2)   = ∫₀¹ y^{L−3} (1 + y^{2(1−k)})^{1−L/2} dy.

    Requires L ≥ 3 (the integral diverges for L = 2) and 0 ≤ k ≤ 1. As k → 1 the integrand
    develops a layer at y ~ (1 − k)^{1/(L_f−2)}, passed to the quadrature as a break point.
    """
    _check_depths(depth, fusion_layer)
    _check_k(k)
    L, Lf = int(depth), int(fusion_layer)
    if L < 3:
        raise ValueError("I(L, L_f) diverges for L = 2 (the two-layer ratio is eq. 9)")
    if Lf < 2:
        raise ValueError("I(L, L_f) is defined for L_f >= 2 (early fusion has no unimodal phase)")
    if Lf == 2:
        return _quad01(lambda y: y ** (L - 3) * (1 + y ** (2 * (1 - k))) ** (1 - L / 2))
    q = Lf - 2

    def f(y):
        inner = k * y ** q + (1 - k)
        # y²·inner^{−2/q}; at y = 0 with k = 1 the limit is 1 (inner = y^q).
        z = y * y * inner ** (-2.0 / q) if inner > 0 else 1.0
        return y ** (L - 3) * (1 + z) ** ((Lf - L) / 2)

    br = (1 - k) ** (1.0 / q) if 0 < k < 1 else None
    return _quad01(f, breaks=(br,) if br else ())


def unequal_integral(depth_a: int, depth_b: int, post_depth: int, k: float, u0: float) -> float:
    """I(L_A, L_B, L_c) of eq. (60), for branch depths L_A, L_B > 2 and L_c post layers.

    A is the branch that escapes first; k = ‖s_B‖/‖s_A‖ may exceed 1 when B is shallower.
    With c = ((L_B − 2)/(L_A − 2)) k u0^{L_B−L_A} and y = 1/x:
    I = ∫₀¹ y^{L_A+L_c−3} [1 + y² (1 − c + c y^{L_A−2})^{−2/(L_B−2)}]^{−L_c/2} dy.
    Requires c < 1 (otherwise B grows without bound before A: B escapes first).
    """
    for name, v in (("depth_a", depth_a), ("depth_b", depth_b)):
        if not isinstance(v, (int, np.integer)) or v <= 2:
            raise ValueError(f"{name} must be an integer > 2 for eq. (60), got {v!r}")
    if not isinstance(post_depth, (int, np.integer)) or post_depth < 0:
        raise ValueError(f"post_depth must be a non-negative integer, got {post_depth!r}")
    if not (np.isfinite(k) and k >= 0):
        raise ValueError(f"k = ||s_B||/||s_A|| must be a non-negative number, got {k!r}")
    if not 0 < u0 < 1:
        raise ValueError(f"u0 must lie in (0, 1), got {u0!r}")
    La, Lb, Lc = int(depth_a), int(depth_b), int(post_depth)
    c = _escape_c(La, Lb, k, u0)
    if c >= 1:
        raise ValueError(f"c = {c:.3g} >= 1: modality B escapes first; swap the roles")

    def f(y):
        z = (1 - c + c * y ** (La - 2)) ** (-2.0 / (Lb - 2))
        return y ** (La + Lc - 3) * (1 + y * y * z) ** (-Lc / 2)

    return _quad01(f)


def _escape_c(La, Lb, k, u0):
    """c of eq. (60): B's pre-fusion norm at A's escape obeys (u_B/u0)^{2−L_B} → 1 − c."""
    return (Lb - 2) / (La - 2) * k * u0 ** (Lb - La)


def _flip_caveat(r):
    return () if r.chi == 1 else ("Sigma_yxB is anti-parallel to its effective value: the "
                                  "mode of B along -Sigma_yxB drives the second phase "
                                  "(corrected numerator). This assumes the initial weights "
                                  "contain that mode at scale u0, as random ones do; from "
                                  "exactly balanced, aligned weights B is never learned when "
                                  "L_f >= 3, and at L_f = 2 only after a delay seeded by "
                                  "round-off",)


def time_ratio_leading_order(stats, depth: int, fusion_layer: int, scale: float) -> Prediction:
    """Leading-order t_B/t_A of a deep fusion network (eqs. 9, 12, 57; corrected).

    * L_f = 1 (early fusion): both modalities are learned in one transition, ratio 1.
    * L_f = L: eq. (9) (the two-layer ratio; independent of depth and u0).
    * 2 < L_f < L: 1 + (‖s_A‖ − χ‖s_B‖) u0^{L−L_f} / ((L_f−2) ‖U_A‖^{1−L_f/L} ‖s̃_B‖ I(L, L_f)).
    * L_f = 2 < L: 1 + (‖s_A‖ − χ‖s_B‖) u0^{L−2} ln(1/u0) / (‖U_A‖^{1−2/L} ‖s̃_B‖ I(L, 2)).

    χ = −1 when Σ_yxB and s̃_B are anti-parallel (see module docstring), U_A = Σ_yxAΣ_A^{-1},
    u0 the Frobenius norm of the pre-fusion matrices at initialization.
    """
    u0 = scale
    _check_depths(depth, fusion_layer)
    if not 0 < u0 < 1:
        raise ValueError(f"scale must lie in (0, 1) for the small-initialization expansion, got {u0!r}")
    from .timescales import time_ratio_gradient_flow

    L, Lf = int(depth), int(fusion_layer)
    if Lf == 1:
        return Prediction(1.0, True, ("early fusion: both modalities are learned in one "
                                      "transition",))
    base = time_ratio_gradient_flow(stats)
    if Lf == L or not np.isfinite(base.value) or base.value == 1.0:
        return base
    r = roles(stats)
    na, nb, nbt = (float(np.linalg.norm(v)) for v in (r.s_a, r.s_b, r.s_b_tilde))
    ua = float(np.linalg.norm(r.plateau))
    k = nb / na
    num = (na - r.chi * nb)
    I = fusion_integral(L, Lf, k)
    if Lf == 2:
        val = 1 + num * u0 ** (L - 2) * np.log(1 / u0) / (ua ** (1 - 2 / L) * nbt * I)
    else:
        val = 1 + num * u0 ** (L - Lf) / ((Lf - 2) * ua ** (1 - Lf / L) * nbt * I)
    return Prediction(float(val), True, _flip_caveat(r))


def time_ratio_unequal(stats, depth_a: int, depth_b: int, post_depth: int, scale: float) -> Prediction:
    """Leading-order t_B/t_A with branch depths L_A ≠ L_B (eq. 59, sign-corrected).

    Depths are given in the modality order of ``stats``. The modality that escapes first is
    not always the one with the larger ‖Σ_yx‖: a shallower branch can win. Of the two role
    assignments exactly one has c < 1 in eq. (60) (their c's multiply to 1); it is used, with
    A := the modality that escapes first, k = ‖s_B‖/‖s_A‖ (possibly > 1) and

        1 + [u0^{L_c+L_A−L_B}‖s_A‖/(L_B−2) − χ u0^{L_c}‖s_B‖/(L_A−2)] /
            (‖U_A‖^{L_c/(L_A+L_c)} ‖s̃_B‖ I(L_A, L_B, L_c)).

    Requires L_A, L_B > 2 and balanced, aligned small initial weights (scale u0).
    """
    u0 = scale
    if not 0 < u0 < 1:
        raise ValueError(f"scale must lie in (0, 1), got {u0!r}")
    depths = (int(depth_a), int(depth_b))
    norms = [float(np.linalg.norm(stats.sigma_yx_m(m))) for m in range(2)]
    first = None
    for f in (0, 1):
        if norms[f] > 0 and _escape_c(depths[f], depths[1 - f], norms[1 - f] / norms[f], u0) < 1:
            first = f
    if first is None:
        return Prediction(1.0, False, ("both branches escape together (c = 1)",))
    r = roles(stats, first=first)
    La, Lb, Lc = depths[r.first], depths[r.second], int(post_depth)
    na, nb, nbt = (float(np.linalg.norm(v)) for v in (r.s_a, r.s_b, r.s_b_tilde))
    if nbt <= _scale_tol(stats):
        return Prediction(float("inf"), True, ("collinear modalities: B is never learned",))
    ua = float(np.linalg.norm(r.plateau))
    I = unequal_integral(La, Lb, Lc, nb / na, u0)
    num = u0 ** (Lc + La - Lb) * na / (Lb - 2) - r.chi * u0 ** Lc * nb / (La - 2)
    val = 1 + num / (ua ** (Lc / (La + Lc)) * nbt * I)
    caveats = _flip_caveat(r)
    if r.first != roles(stats).first:
        caveats += (f"modality {stats.names[r.first]} escapes first although its "
                    "||Sigma_yx|| is smaller: its branch is shallower",)
    return Prediction(float(val), True, caveats)


def deep_times(stats, depth: int, fusion_layer: int, scale: float, *,
               lr: float) -> TimePrediction:
    """t_A (eq. 48; eq. 56a for L_f = 2) and t_B (eq. 54; eq. 56b), leading order in u0.

    For 2 < L_f ≤ L: t_A = τ u0^{2−L} I(L, L_f)/‖s_A‖ and
    t_B − t_A = τ (1 − χk) u0^{2−L_f} / ((L_f − 2) ‖U_A‖^{1−L_f/L} ‖s̃_B‖).
    For L_f = 2 < L: t_A = τ u0^{2−L} I(L, 2)/‖s_A‖ and
    t_B − t_A = τ (1 − χk) ln(1/u0) / (‖U_A‖^{1−2/L} ‖s̃_B‖).

    t_A assumes B's growing mode (along Σ_yxB) is present at scale u0, as in a random or an
    aligned initialization; a B that starts purely along −Σ_yxB slows A's escape differently
    (I(L, 2) with k replaced by −k: 2.6 % at ρ = −0.7, L = 3; tests/test_deep_theory.py).

    Returns a :class:`~.timescales.TimePrediction`: ``t_A``, ``t_B`` (floats, steps at
    learning rate ``lr``, τ = 1/η), ``first``/``second`` the names of the first- and
    second-learned modality, ``ratio`` t_B/t_A, ``valid`` True and ``caveats`` the note on the
    reversed drive when Σ_yxB is anti-parallel to s̃_B.
    """
    u0 = scale
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    tau = 1.0 / lr
    _check_depths(depth, fusion_layer)
    L, Lf = int(depth), int(fusion_layer)
    if L < 3 or Lf < 2:
        raise ValueError("deep_times covers L >= 3 and L_f >= 2 (use times_leading_order for "
                         "two layers)")
    if not 0 < u0 < 1 or not tau > 0:
        raise ValueError(f"deep_times needs 0 < scale < 1, got {u0!r}")
    r = roles(stats)
    na, nb, nbt = (float(np.linalg.norm(v)) for v in (r.s_a, r.s_b, r.s_b_tilde))
    ua = float(np.linalg.norm(r.plateau))
    k = nb / na
    t_a = tau * u0 ** (2 - L) * fusion_integral(L, Lf, k) / na
    if Lf == 2:
        gap = tau * (1 - r.chi * k) * np.log(1 / u0) / (ua ** (1 - 2 / L) * nbt)
    else:
        gap = tau * (1 - r.chi * k) * u0 ** (2 - Lf) / ((Lf - 2) * ua ** (1 - Lf / L) * nbt)
    return TimePrediction(float(t_a), float(t_a + gap), stats.names[r.first],
                          stats.names[r.second], True, _flip_caveat(r))


# ---------------------------------------------------------------------- one deep pathway
def _logit(z):
    return np.log(z) - np.log1p(-z)


def pathway_time(w, depth: int, s: float, sigma2: float, w0: float, tau: float) -> float:
    """Time for a balanced single pathway of depth L to grow from w0 to w (0 < w0 <= w < w*).

    With every layer of norm a and w = a^L along Σ_yx (white input σ², s = ‖Σ_yx‖), gradient
    flow gives τ dw/dt = L w^{2−2/L}(s − σ² w) (theory/deep.py). With z = w/w*, w* = s/σ²:

        t = τ/(L s w*^{1−2/L}) ∫_{z0}^{z} z'^{2/L−2}/(1 − z') dz'
          = τ/(L s w*^{1−2/L}) ∫_{ζ0}^{ζ} (1 + e^{−ζ'})^{1−2/L} dζ',   ζ = ln(z/(1 − z)),

    the second form (logit variable) having a smooth integrand on the whole line; for L = 2 it
    is ζ − ζ0, the logistic of eq. (21).
    """
    if not isinstance(depth, (int, np.integer)) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, got {depth!r}")
    if s <= 0 or sigma2 <= 0 or tau <= 0:
        raise ValueError("pathway_time needs s > 0, sigma2 > 0, tau > 0")
    w_star = s / sigma2
    z, z0 = w / w_star, w0 / w_star
    if not 0 < z0 <= z < 1:
        raise ValueError(f"need 0 < w0 <= w < w* = {w_star:.4g}, got w0={w0}, w={w}")
    L = int(depth)
    pref = tau / (L * s * w_star ** (1 - 2 / L))
    lo, hi = _logit(z0), _logit(z)
    if L == 2:
        return float(pref * (hi - lo))
    c = 1 - 2 / L
    f = lambda x: np.exp(c * np.logaddexp(0.0, -x))  # noqa: E731  (1 + e^{-x})^c, stable
    # Split at 0: left of it the integrand is ~e^{-c x}, right of it ~1.
    pts = sorted({lo, min(max(0.0, lo), hi), hi})
    val = sum(integrate.quad(f, a, b, limit=500, epsabs=0, epsrel=1e-12)[0]
              for a, b in zip(pts[:-1], pts[1:]))
    return float(pref * val)


def pathway_trajectory(t, depth: int, s: float, sigma2: float, w0: float, tau: float):
    """w(t) of a balanced single pathway of depth L (inverse of :func:`pathway_time`).

    The deep analogue of Saxe et al.'s sigmoid: for L = 2 the logistic of eq. (21); for L ≥ 3
    a finite-time-blow-up-like escape followed by saturation at w* = s/σ².
    """
    t = np.atleast_1d(np.asarray(t, dtype=float))
    w_star = s / sigma2
    out = np.empty_like(t)
    for i, ti in enumerate(t):
        if ti <= 0:
            out[i] = w0
            continue
        g = lambda w: pathway_time(w, depth, s, sigma2, w0, tau) - ti  # noqa: E731
        hi = w_star * (1 - 1e-12)
        if g(hi) <= 0:
            out[i] = hi
            continue
        out[i] = optimize.brentq(g, w0, hi, xtol=1e-15 * w_star, rtol=1e-13)
    return out


def _check_random_args(width, level, **positive):
    """The arguments shared by the random-initialization closed forms."""
    for name, v in positive.items():
        checks.positive(name, v)
    checks.integer("width", width, 2)
    checks.level(level)


def _aligning_chain_time(s, sigma2, m0, a2, b2, level, tau):
    """τ∫ dm/((s − σ² g m²) g m) from m0 to g m² = level·s/σ², g = x1 x4 with the invariants
    x1² − m² = a² − m0², x4² − m² = b² − m0²."""
    c1, c4 = a2 - m0 * m0, b2 - m0 * m0
    g = lambda m: np.sqrt((m * m + c1) * (m * m + c4))  # noqa: E731
    target = level * s / sigma2
    hi = optimize.brentq(lambda m: g(m) * m * m - target, 0.0, 1.0 + np.sqrt(target))
    if not m0 < hi:
        return 0.0
    f = lambda lm: 1.0 / ((s - sigma2 * g(np.exp(lm)) * np.exp(2 * lm))  # noqa: E731
                          * g(np.exp(lm)))
    return float(tau * integrate.quad(f, np.log(m0), np.log(hi), limit=200, epsrel=1e-11)[0])


def alignment_escape_time(s: float, sigma2: float, u0: float, width: int, tau: float,
                          level: float = 0.5, *, weights=None, nodes: int = 6) -> float:
    """First transition of a four-layer late-fusion branch from random weights (the
    ``"frobenius"`` scheme of Figure 6: entries N(0, u0²/entries)): the time at which the
    branch's map reaches ``level`` of its plateau s/σ² (s = Σ_yx,m > 0, σ² = Σ_mm; the other
    branch still small), gradient flow, τ = 1/η.

    Alignment model (theory/deep.py, derive_alignment_escape): with W1 = a â and W4 = b b̂ᵀ,
    while the middle layers are small, p = W2 â and q = W3ᵀ b̂ obey τṗ = s a b q, τq̇ = s a b p,
    so the mode (p + q)/2 grows as e^{s a b t/τ} from m0 = ‖p + q‖/2 ≈ u0/√(2·width) (the
    random weights have no head start along it), while the outer layers keep the gradient-flow
    invariants x1² − m² = a² − m0², x4² − m² = b² − m0². With the middle pair at norm m the
    branch's map is x1 x4 m² and τṁ = (s − σ² x1 x4 m²) x1 x4 m, so

        t = τ ∫_{m0}^{m*} dm / ((s − σ² g m²) g m),   g = x1 x4.

    ``weights`` = (m0, a, b) of one run (from its initial weights) gives that run's time; by
    default the time is averaged over the initialization's laws (a², b² ~ u0²χ²_n/n,
    m0² ~ u0²χ²_n/(2n²), n = ``width``) by a ``nodes``-point quantile rule in each. The
    balanced aligned network starts at w0 = u0⁴ instead (:func:`pathway_time`); the ratio of
    the two times is the alignment delay (5.4 at width 100, Figure 6's setting); it grows as
    ln(width) because the exponential phase climbs from m0 ∝ u0/√width to u0. Only the first
    transition of four-layer late fusion is derived."""
    _check_random_args(width, level, s=s, sigma2=sigma2, u0=u0, tau=tau)
    if weights is not None:
        m0, a, b = (float(v) for v in weights)
        if min(m0, a, b) <= 0 or m0 >= min(a, b):
            raise ValueError(f"weights (m0, a, b) must be positive with m0 < a, b, got "
                             f"{weights!r}")
        return _aligning_chain_time(s, sigma2, m0, a * a, b * b, level, tau)
    from scipy import stats as sps

    n = int(width)
    q = sps.chi2.ppf((np.arange(nodes) + 0.5) / nodes, n) / n        # χ²_n/n at mid-quantiles
    out = [_aligning_chain_time(s, sigma2, u0 * np.sqrt(qm / (2 * n)), u0 * u0 * qa,
                                u0 * u0 * qb, level, tau)
           for qm in q for qa in q for qb in q]
    return float(np.mean(out))


# ------------------------------------------- both transitions of Figure 6 from random weights
def alignment_seeds(spec, params) -> np.ndarray:
    """The numbers per modality that the random-initialization closed forms need.

    For a four-layer fusion network with scalar modalities and a scalar output, the pathway of
    modality m is W4 W3 W2 W1 (its branch's layers, then the post-fusion ones). Returns, for
    each run and modality, (m0₊, m0₋, a, b): a = ‖W1‖, b = ‖W4‖ and m0± = ‖W2 â ± W3ᵀ b̂‖/2
    (â, b̂ the directions of W1 and W4ᵀ), the seeds of the middle pair's mode that grows under
    a positive and under a negative drive. Shape ``batch + (M, 4)`` for ``params`` with
    leading batch axes."""
    if spec.depth != 4 or spec.output_dim != 1 or any(d != 1 for d in spec.input_dims):
        raise ValueError("alignment_seeds needs a four-layer network with scalar modalities "
                         "and a scalar output")
    out = []
    for m in range(spec.n_modalities):
        W1, W2, W3, W4 = (np.asarray(W, dtype=float) for W in
                          tuple(params.branches[m]) + tuple(params.post))
        a = np.linalg.norm(W1[..., 0], axis=-1)
        b = np.linalg.norm(W4[..., 0, :], axis=-1)
        ah, bh = W1[..., 0] / a[..., None], W4[..., 0, :] / b[..., None]
        p = np.einsum("...ij,...j->...i", W2, ah)
        q = np.einsum("...ji,...j->...i", W3, bh)
        out.append(np.stack([np.linalg.norm(p + q, axis=-1) / 2,
                             np.linalg.norm(p - q, axis=-1) / 2, a, b], axis=-1))
    return np.stack(out, axis=-2)


def mode_potential(m, c1, c4=None):
    """Φ(m) = ∫^m dm'/(m' x1 x4) with x_i = √(m'² + c_i) (one outer factor when c4 is None),
    the potential in which a middle-pair mode grows linearly under any drive history:
    τṁ = e(t) x1 x4 m gives dΦ = e(t) dt/τ (theory/deep.py, derive_random_init_times).
    Φ < 0 and Φ → 0 as m → ∞: a mode whose potential reaches 0 has escaped."""
    m = np.asarray(m, dtype=float)
    if c4 is None:
        r = np.sqrt(c1)
        return -np.arcsinh(r / m) / r
    c, b, u = c1 * c4, c1 + c4, m * m
    r = np.sqrt(c)
    inf = (np.sqrt(c1) + np.sqrt(c4)) ** 2          # the bracket's limit as m → ∞
    return -np.log((2 * c + b * u + 2 * r * np.sqrt((u + c1) * (u + c4))) / (u * inf)) / (2 * r)


def mode_after(m0, dphi, c1, c4=None):
    """The mode reached from m0 after the potential has moved by ``dphi`` (the inverse of
    :func:`mode_potential`); inf if the mode has escaped (Φ ≥ 0)."""
    phi = float(mode_potential(m0, c1, c4)) + float(dphi)
    if phi >= 0:
        return float("inf")
    if c4 is None:
        r = np.sqrt(c1)
        return float(r / np.sinh(-r * phi))
    c, b = c1 * c4, c1 + c4
    y = np.exp(-2 * np.sqrt(c) * phi) * (np.sqrt(c1) + np.sqrt(c4)) ** 2
    return float(np.sqrt(4 * c * y / ((y - b) ** 2 - 4 * c)))


def _chain_time(s, sig2, start, end, rate, tau, log=True):
    """τ∫ dm/((s − σ² w) r(m)) from start to end, r(m) = w/m the growth factor of the chain's
    map w (τṁ = (s − σ²w) w/m); in ln m when ``log`` (the middle pair's mode, m > 0)."""
    if not end > start:
        return 0.0
    if log:
        f = lambda lm: np.exp(lm) / ((s - sig2 * rate(np.exp(lm)) * np.exp(lm))  # noqa: E731
                                     * rate(np.exp(lm)))
        return float(tau * integrate.quad(f, np.log(start), np.log(end), limit=400,
                                          epsrel=1e-11)[0])
    f = lambda p: 1.0 / ((s - sig2 * rate(p) * p) * rate(p))  # noqa: E731
    return float(tau * integrate.quad(f, start, end, limit=400, epsrel=1e-11)[0])


def _level_point(w, target, lo, hi):
    """The m in (lo, hi) at which the increasing map w(m) reaches target."""
    while w(hi) < target:
        hi *= 2
    return float(optimize.brentq(lambda m: w(m) - target, lo, hi, xtol=1e-15, rtol=1e-13))


def _two_phase_run(q, fusion_layer, seeds, level, tau):
    """t_A, t_B and B's share of its target at t_A for one run (seeds per modality)."""
    (m0, a, b), (m0b, ab, bb) = seeds
    sA, s2A, sAB, sB, st, s2t = q
    c1, c4 = a * a - m0 * m0, b * b - m0 * m0
    x1 = lambda m: np.sqrt(m * m + c1)  # noqa: E731
    x4 = lambda m: np.sqrt(m * m + c4)  # noqa: E731
    rate_a = lambda m: x1(m) * x4(m) * m  # noqa: E731   w_A / m
    wA = lambda m: rate_a(m) * m  # noqa: E731
    w_star = sA / s2A
    m_half = _level_point(wA, level * w_star, m0, 1.0)
    m_star = _level_point(wA, w_star * (1 - 1e-12), m0, 1.0)
    t_a = _chain_time(sA, s2A, m0, m_half, rate_a, tau)
    # B's growth while A is learned: dΦ_B = s_B(t) g dt/τ with Φ_B B's mode potential and g
    # the gain that does not depend on B (1, x4(t), x4(t) m_A(t)), dt/τ = dm/((s_A − σ_A² w_A)
    # w_A/m) in A's variable; after t_A, the part of A's approach in which B's drive still
    # exceeds s̃_B.
    gain = {4: lambda m: 1.0, 3: lambda m: x4(m), 2: lambda m: x4(m) * m}[fusion_layer]
    dE = lambda m, ref: ((sB - sAB * wA(m)) - ref) * gain(m) / ((sA - s2A * wA(m)) * rate_a(m))
    E = (integrate.quad(lambda lm: dE(np.exp(lm), 0.0) * np.exp(lm), np.log(m0),
                        np.log(m_half), limit=400, epsrel=1e-10)[0]
         + integrate.quad(lambda lm: dE(np.exp(lm), st) * np.exp(lm), np.log(m_half),
                          np.log(m_star), limit=400, epsrel=1e-10)[0])
    target = level * st / s2t
    if fusion_layer == 2:          # B's pathway: a_B and W2_B along the shared mode, gain G
        G, cc = x4(m_star) * m_star, ab * ab
        p_s = ab * np.sinh(E)
        rate_b = lambda p: G * np.sqrt(p * p + cc)  # noqa: E731
        start, log = p_s, False
    else:                          # B's middle pair, with its own invariants
        cb1 = ab * ab - m0b * m0b
        cb4 = bb * bb - m0b * m0b if fusion_layer == 4 else None
        start, log = mode_after(m0b, E, cb1, cb4), True
        if fusion_layer == 3:
            G = x4(m_star)
            rate_b = lambda m: G * np.sqrt(m * m + cb1) * m  # noqa: E731
        else:
            rate_b = lambda m: np.sqrt((m * m + cb1) * (m * m + cb4)) * m  # noqa: E731
        if not np.isfinite(start):
            return t_a, t_a, np.inf
    wB = lambda m: rate_b(m) * m  # noqa: E731
    end = _level_point(wB, target, start if log else min(start, 0.0), 1.0)
    gap = _chain_time(st, s2t, start, end, rate_b, tau, log=log)
    return t_a, t_a + gap, float(wB(start) / (st / s2t))


RANDOM_INIT_SMALL_B = 0.1


def random_init_times(stats, depth: int, fusion_layer: int, scale: float, width: int, lr: float,
                      *, weights=None, nodes: int = 3, level: float = 0.5) -> TimePrediction:
    """t_A and t_B of a four-layer fusion network trained from random weights (the
    ``"frobenius"`` initialization of the paper's Figure 6), in closed form: one-variable
    quadratures, no integration of the network or of a reduced system.

    Two scalar modalities, scalar output, depth 4, fusion layer 2, 3 or 4 (late), gradient
    descent with step ``lr`` treated as gradient flow with τ = 1/lr. The model (theory/deep.py,
    derive_random_init_times):

    * **First transition.** A's pathway W4W3W2W1 aligns: its middle pair's mode grows from its
      random seed m0 while the outer layers keep the invariants (:func:`alignment_escape_time`).
    * **B during the first phase.** B's growing mode is driven by s_B(t) = Σ_yxB − Σ_AB w_A(t)
      through the gain that A's growth opens. Its mode potential (:func:`mode_potential`, with
      B's own outer layers and invariants) moves by ∫ s_B(t) g dt/τ, with g = 1 in late
      fusion and g = ‖W4‖(t) at L_f = 3 (the shared last layer). At L_f = 2,
      asinh(p_B/a_B) = ∫ s_B ‖W4‖ m_A dt/τ for B's second layer along the shared mode (its
      own seed, of order u0/width, neglected). The integral runs over A's escape in
      A's own variable, and over A's approach to its plateau for the part of s_B(t) above
      s̃_B. A mode of the sign opposite to s̃_B's enters as a negative exponent.
    * **Second transition.** On A's plateau B sees the drive s̃_B − σ̃_B² w_B (σ̃_B² the
      Schur complement) and escapes from that amplitude, with its invariants and the gain of
      A's learned shared layers.

    ``weights``: the (m0₊, m0₋, a, b) of each modality's pathway in one run, from
    :func:`alignment_seeds`; the prediction is then that run's (each pathway escapes through
    the mode of its drive's sign: A's s_A, B's s̃_B). Without it the times are
    averaged over the initialization's laws (χ² norms: a², b² ~ u0²χ²_n/n times 2 for
    post-fusion layers, m0² the same over 4n), with ``nodes`` mid-quantile nodes per random
    number. At L_f = 2, B's second layer also feeds the shared mode while A escapes, which
    speeds A by O(k²) (k = s_B/s_A): up to 8 % on t_A at k = 0.5, less on the ratio, which
    moves with it (theory/deep.py, check_random_init_times). ``valid`` is False when B's map
    at t_A already exceeds
    ``RANDOM_INIT_SMALL_B`` of its target (B is no longer linear when A is learned; the
    prediction of t_B is then a few per cent late) or when B is never learned.

    Returns a :class:`~.timescales.TimePrediction`: ``t_A``, ``t_B`` (floats, steps),
    ``first``/``second`` the names of the first- and second-learned modality, ``ratio``,
    ``valid`` and ``caveats`` (t_B inf for collinear modalities)."""
    u0 = scale
    _check_depths(depth, fusion_layer)
    if int(depth) != 4:
        raise ValueError(f"random_init_times covers depth 4 (a middle pair of hidden "
                         f"matrices in every pathway), got depth {depth!r}")
    if int(fusion_layer) == 1:
        raise ValueError("fusion_layer must be 2, 3 or 4: early fusion (1) has no unimodal "
                         "phase")
    if stats.n_modalities != 2 or stats.output_dim != 1 or any(d != 1 for d in stats.dims):
        raise ValueError("random_init_times needs two scalar modalities and a scalar output")
    _check_random_args(width, level, scale=u0, lr=lr)
    if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or nodes < 1:
        raise ValueError(f"nodes must be a positive integer, got {nodes!r}")
    r = roles(stats)
    A, B, Lf, tau = r.first, r.second, int(fusion_layer), 1.0 / float(lr)
    names = (stats.names[A], stats.names[B])
    sA, sB, st = (float(np.ravel(v)[0]) for v in (r.s_a, r.s_b, r.s_b_tilde))
    s2A, s2t = float(np.ravel(r.sigma_a)[0]), float(np.ravel(r.sigma_b_tilde)[0])
    sAB = float(np.ravel(stats.block(A, B))[0])
    if sA == 0:
        raise ValueError("Sigma_yx vanishes: no modality is learned")
    gA = np.sign(sA)                   # flip x_A (and Σ_AB) so that s_A > 0
    sA, sAB = abs(sA), gA * sAB
    if abs(st) <= _scale_tol(stats):
        t_a = [_aligning_chain_time(sA, s2A, m0, a * a, b * b, level, tau)
               for m0, a, b in _seed_nodes(weights, A, B, Lf, u0, width, nodes, gA, 1)[0]]
        return TimePrediction(float(np.mean(t_a)), float("inf"), *names, True,
                              ("collinear modalities: B is never learned",))
    gB = np.sign(st)                   # flip x_B so that s̃_B > 0
    q = (sA, s2A, gB * sAB, gB * sB, abs(st), s2t)
    runs = [_two_phase_run(q, Lf, s, level, tau)
            for s in _seed_nodes(weights, A, B, Lf, u0, width, nodes, gA, gB)[1]]
    t_a, t_b, share = (np.array(v) for v in zip(*runs))
    caveats = ()
    if np.max(share) > RANDOM_INIT_SMALL_B:
        caveats = (f"B's map is already {np.max(share):.0%} of its target when A is learned: "
                   "its growth is no longer linear there and t_B comes out late",)
    return TimePrediction(float(np.mean(t_a)), float(np.mean(t_b)), *names, not caveats,
                          caveats)


def _check_seeds(weights, M):
    w = np.asarray(weights, dtype=float)
    if w.shape != (M, 4) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"weights must be the positive (m0+, m0-, a, b) of each modality's "
                         f"pathway, shape ({M}, 4) (alignment_seeds), got {weights!r}")
    if np.any(w[:, :2].max(axis=1) >= w[:, 2:].min(axis=1)):
        raise ValueError("weights: each m0 must be smaller than its pathway's a and b")
    return w


def _seed_nodes(weights, A, B, Lf, u0, width, nodes, gA, gB):
    """(A's seeds, pairs of A's and B's seeds) as (m0, a, b): one run's (the mode of sign gA,
    gB), or nodes of the initialization's laws (B's unused numbers NaN)."""
    if weights is not None:
        w = _check_seeds(weights, 2)
        pick = lambda row, g: (row[0] if g > 0 else row[1], row[2], row[3])  # noqa: E731
        pair = (pick(w[A], gA), pick(w[B], gB))
        return [pair[0]], [pair]
    from scipy import stats as sps

    n = int(width)
    z = np.sqrt(sps.chi2.ppf((np.arange(nodes) + 0.5) / nodes, n) / n)  # √(χ²_n/n) nodes
    post = np.sqrt(2.0)
    fb = post if Lf < 4 else 1.0                      # A's last layer: post-fusion below 4
    fm = np.sqrt((1 + (2.0 if Lf == 2 else 1.0)) / (4 * n))   # W3 post-fusion at L_f = 2
    a_nodes = [(u0 * fm * zm, u0 * za, u0 * fb * zb) for zm in z for za in z for zb in z]
    if Lf == 4:
        b_nodes = [(u0 * np.sqrt(2 / (4 * n)) * zm, u0 * za, u0 * zb)
                   for zm in z for za in z for zb in z]
    elif Lf == 3:
        b_nodes = [(u0 * np.sqrt(2 / (4 * n)) * zm, u0 * za, np.nan) for zm in z for za in z]
    else:
        b_nodes = [(np.nan, u0 * za, np.nan) for za in z]
    pairs = [(sa, sb) for sa in a_nodes for sb in b_nodes]
    return a_nodes, pairs
