"""Deep-network formulas against independent computations and against simulation."""
import jax
import mpmath as mp
import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq
from scipy.special import hyp2f1

import dlnfusion as dln
from dlnfusion import NetworkSpec, Stats, simulate, theory as th
from dlnfusion.compare import measure_unimodal_phase

mp.mp.dps = 30


def _mp_integral13(L, Lf, k):
    """Eq. (13) on [1, ∞) as printed, in 30-digit arithmetic."""
    f = lambda x: x ** (1 - L) * (1 + (k + (1 - k) * x ** (Lf - 2)) ** (mp.mpf(2) / (2 - Lf))) \
        ** (mp.mpf(Lf - L) / 2)  # noqa: E731
    return float(mp.quad(f, [1, 2, 10, mp.inf]))


@pytest.mark.parametrize("L, Lf, k", [(4, 3, 0.25), (4, 3, 0.9), (5, 3, 0.5), (6, 4, 0.1),
                                      (6, 5, 0.7), (8, 7, 0.3), (5, 4, 0.999)])
def test_fusion_integral_against_high_precision_quadrature(L, Lf, k):
    assert th.fusion_integral(L, Lf, k) == pytest.approx(_mp_integral13(L, Lf, k), rel=1e-9)


@pytest.mark.parametrize("L, k", [(3, 0.3), (4, 0.25), (6, 0.8)])
def test_fusion_integral_lf2_against_quadrature(L, k):
    f = lambda x: x ** -1 * (x ** 2 + x ** (2 * k)) ** (1 - mp.mpf(L) / 2)  # noqa: E731
    assert th.fusion_integral(L, 2, k) == pytest.approx(float(mp.quad(f, [1, 10, mp.inf])),
                                                         rel=1e-9)


@pytest.mark.parametrize("L", [3, 4, 5, 7])
def test_fusion_integral_limits(L):
    # L_f = L: the bracket has exponent 0, I = 1/(L-2).
    assert th.fusion_integral(L, L, 0.4) == pytest.approx(1 / (L - 2), rel=1e-12)
    for Lf in range(2, L + 1):
        # k = 1: the bracket is 2, I = 2^{(L_f−L)/2}/(L−2) (also for L_f = 2).
        assert th.fusion_integral(L, Lf, 1.0) == pytest.approx(2 ** ((Lf - L) / 2) / (L - 2),
                                                               rel=1e-10)
        # k -> 1 approaches it continuously (boundary layer handled).
        assert th.fusion_integral(L, Lf, 1 - 1e-9) == pytest.approx(
            th.fusion_integral(L, Lf, 1.0), rel=1e-4)
        # k = 0: ½∫₀¹ t^{L/2−2}(1+t)^{−q} dt = ₂F₁(q, a; a+1; −1)/(2a), a = L/2 − 1, with
        # q = (L − L_f)/2 (L_f > 2) or q = L/2 − 1 (L_f = 2).
        q = (L - Lf) / 2 if Lf > 2 else L / 2 - 1
        a = L / 2 - 1
        assert th.fusion_integral(L, Lf, 0.0) == pytest.approx(hyp2f1(q, a, a + 1, -1) / (2 * a),
                                                               rel=1e-10)


def test_unequal_integral_reduces_and_matches_quadrature():
    for La, Lc in ((3, 1), (4, 2), (5, 0)):
        assert th.deep.unequal_integral(La, La, Lc, 0.35, 0.1) == pytest.approx(
            th.fusion_integral(La + Lc, La, 0.35), rel=1e-10)
    La, Lb, Lc, k, u0 = 3, 4, 1, 0.4, 0.1
    c = (Lb - 2) / (La - 2) * k * u0 ** (Lb - La)
    f = lambda x: x ** (1 - La) * (x ** 2 + (c * (x ** (2 - La) - 1) + 1) ** (mp.mpf(2) / (2 - Lb))) \
        ** (-mp.mpf(Lc) / 2)  # noqa: E731
    assert th.deep.unequal_integral(La, Lb, Lc, k, u0) == pytest.approx(float(mp.quad(f, [1, mp.inf])),
                                                                   rel=1e-9)
    with pytest.raises(ValueError, match="escapes first"):
        th.deep.unequal_integral(4, 3, 1, 2.0, 0.1)


def test_integral_errors():
    with pytest.raises(ValueError, match="diverges"):
        th.fusion_integral(2, 2, 0.5)
    with pytest.raises(ValueError, match="L_f >= 2"):
        th.fusion_integral(4, 1, 0.5)
    with pytest.raises(ValueError, match="k"):
        th.fusion_integral(4, 3, 1.5)
    with pytest.raises(ValueError, match="fusion_layer"):
        th.fusion_integral(4, 5, 0.5)
    with pytest.raises(ValueError, match="> 2"):
        th.deep.unequal_integral(2, 4, 1, 0.5, 0.1)
    with pytest.raises(ValueError, match="u0"):
        th.deep.unequal_integral(3, 4, 1, 0.5, 1.5)


def test_reduced_dynamics_and_branch_relation_by_integration():
    s_a, s_b, u0 = 4.0, 1.0, 1e-2
    for L, Lf in ((4, 3), (5, 3), (4, 2), (4, 1)):
        def rhs(t, y):
            return np.array(th.deep.reduced_rhs(y[0], y[1], y[2], s_a, s_b, L, Lf))
        sol = solve_ivp(rhs, (0, 1e9), [u0, u0, np.sqrt(2) * u0], rtol=1e-11, atol=1e-16,
                        events=lambda t, y: y[0] - 0.5, dense_output=True)
        ua, ub, u = sol.y[:, -1]
        assert ub == pytest.approx(float(th.deep.branch_relation(ua, s_b / s_a, u0, Lf)), rel=1e-6)
        assert u ** 2 == pytest.approx(ua ** 2 + ub ** 2, rel=1e-6)  # eq. (41)


def test_eq59_at_equal_depths_is_eq12():
    """Eq. (59) and eq. (12) are separate implementations (unequal_integral with its role
    choice by c < 1 and its own numerator, against fusion_integral); at L_A = L_B they must
    agree to quadrature precision (epsrel 1e-12). Eq. (12) itself is checked against
    simulation in test_deep_times_leading_order_against_balanced_simulation."""
    st = Stats.scalar_toy(2.0, 1.0, 0.4)
    for Lf, Lc in ((3, 1), (4, 2)):
        assert th.time_ratio_unequal(st, Lf, Lf, Lc, 0.05).value == pytest.approx(
            th.time_ratio_leading_order(st, Lf + Lc, Lf, 0.05).value, rel=1e-10)


def test_leading_order_caveats_and_errors():
    st = Stats.scalar_toy(2.0, 1.0, 0.4)
    assert th.time_ratio_leading_order(st, 4, 3, 0.1).caveats == ()
    flip = Stats.scalar_toy(2.0, 1.0, -0.8)
    p = th.time_ratio_leading_order(flip, 4, 3, 0.1)
    assert "anti-parallel" in p.caveats[0]
    with pytest.raises(ValueError, match="scale must lie in"):
        th.time_ratio_leading_order(st, 4, 3, 1.2)
    with pytest.raises(ValueError, match="fusion_layer must be an integer"):
        th.time_ratio_leading_order(st, 4, 0, 0.1)
    with pytest.raises(ValueError, match="depth must be an integer"):
        th.time_ratio_leading_order(st, 1, 1, 0.1)


# ------------------------------------------------------------------ balanced gradient flow
# The leading-order formulas assume balanced, rank-one, aligned weights of scale u0 and
# gradient flow. The runs below are exactly that (scheme="balanced", method="gf", lr = 1 so
# tau = 1, rtol 1e-10) at several u0, so that the order of the neglected terms can be read
# off the u0 dependence. Crossing times come from cubic interpolation of the recorded total
# maps (records every `stride` time units).

def _half_crossing(time, progress):
    """First time a recorded progress series reaches 1/2: cubic spline through the six records
    around the crossing, root by brentq. Its error is O(stride^4): at stride 0.1 the crossings
    below move by < 5e-5 when the stride is halved (by up to 1.5e-3 at stride 0.2); linear
    interpolation, which measure_unimodal_phase uses, errs by up to ~2e-3 at stride 0.1."""
    above = np.nonzero(progress >= 0.5)[0]
    assert above.size and above[0] >= 3, "no crossing inside the recorded window"
    i = above[0]
    spline = CubicSpline(time[i - 3:i + 3], progress[i - 3:i + 3])
    return brentq(lambda t: spline(t) - 0.5, time[i - 1], time[i], xtol=1e-12)


def _balanced_runs(L, Lf, runs, max_time, stride):
    """Gradient flow of NetworkSpec.fusion(L, Lf, width=3) from balanced aligned weights.

    ``runs`` lists (rho, u0, flip_b) for Stats.scalar_toy(2, 1, rho); with ``flip_b`` the last
    pre-fusion matrix of branch B changes sign: still exactly balanced and rank-one, but B's
    map starts along −Σ_yxB (the mode the corrected formulas need when Σ_yxB is anti-parallel
    to s̃_B). Returns the trajectory and, per run, (t_A, t_B): the half-crossings of A's
    progress to Σ_yxAΣ_A⁻¹ and of B's progress to its block of W* = Σ_yxΣ⁻¹.
    """
    spec = NetworkSpec.fusion(L, Lf, width=3)
    stats = [Stats.scalar_toy(2.0, 1.0, rho) for rho, _, _ in runs]
    parts = []
    for st, (_, u0, flip_b) in zip(stats, runs):
        p = dln.init_batch(spec, [0], "balanced", [[u0, u0]], stats=st)
        if flip_b:
            b = list(p.branches[1])
            b[-1] = -b[-1]
            p = p._replace(branches=(p.branches[0], tuple(b)))
        parts.append(p)
    params = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *parts)
    traj = dln.train(spec, stats, params, method="gf", lr=1.0, steps=max_time,
                     record_every=stride, stop_loss=1e-8, rtol=1e-10, atol=1e-30)
    times = []
    for b, st in enumerate(stats):
        ua, wb = st.unimodal_solution(0).item(), st.global_solution()[0, 1]
        times.append((_half_crossing(traj.time, traj.maps[0][b, :, 0, 0] / ua),
                      _half_crossing(traj.time, traj.maps[1][b, :, 0, 0] / wb)))
    return traj, np.array(times)


U0S = (1e-2, 1e-3, 1e-4)


def test_lf2_times_and_ratio_against_balanced_gradient_flow():
    """L_f = 2 < L = 3, χ = +1 (ρ = 0.3): eqs. (56a), (56b) and (57), corrected.

    Leading order: t_A = τ u0^{2−L} I(L, 2)/‖s_A‖ + O(1) and t_B − t_A = c1 ln(1/u0) + O(1)
    with c1 = τ(1 − χk)/(‖U_A‖^{1−2/L}‖s̃_B‖). Measured: t_A − t_A^pred = −0.177 at every u0
    (constant to 1e-4: the O(1) term, relative 0.96 u0); the slope of t_B − t_A against
    ln(1/u0) is c1(1 + 4.5e-4) between u0 = 1e-2 and 1e-3 and c1(1 − 1.1e-5) between 1e-3
    and 1e-4; the intercept c0 = t_B − t_A − c1 ln(1/u0) = −0.161, which eq. (57) drops, so
    its t_B/t_A − 1 is off by c0/(c1 ln(1/u0)) (−2.6 % at u0 = 1e-4).
    """
    L, rho = 3, 0.3
    st = Stats.scalar_toy(2.0, 1.0, rho)
    traj, t = _balanced_runs(L, 2, [(rho, u0, False) for u0 in U0S], 1900.0, 0.1)
    assert list(measure_unimodal_phase(traj).first) == [0, 0, 0]
    assert list(traj.status_names()) == ["converged"] * 3
    pred = [th.deep_times(st, L, 2, u0, lr=1.0) for u0 in U0S]
    t_a, gap = t[:, 0], t[:, 1] - t[:, 0]
    for u0, ta, p in zip(U0S, t_a, pred):
        # The neglected term is O(1) against u0^{2−L}: relative O(u0) (measured 0.96 u0).
        assert ta == pytest.approx(p.t_A, rel=2 * u0)
    # The O(1) term converges: a relative error δ of the prefactor I(L, 2)/‖s_A‖ would move
    # it by δ·(t_A(1e-4) − t_A(1e-3)) ≈ δ·1660 (measured change 5e-5).
    off = t_a - np.array([p.t_A for p in pred])
    assert abs(off[2] - off[1]) < 1e-3
    lg = np.log(1 / np.array(U0S))
    c1 = (pred[0].t_B - pred[0].t_A) / lg[0]
    slopes = np.diff(gap) / np.diff(lg)
    # O(u0) corrections to the intercept: the slope error falls ~40x per decade (measured
    # 4.5e-4, then 1.1e-5).
    assert slopes[0] == pytest.approx(c1, rel=2e-3)
    assert slopes[1] == pytest.approx(c1, rel=2e-4)
    # Eq. (57): its t_B/t_A − 1 is the leading-order (t_B − t_A)/t_A; the dropped intercept
    # makes a relative error c0/(c1 ln(1/u0)) (measured −0.19/ln(1/u0) to −0.23/ln(1/u0)),
    # shrinking with u0.
    rel_err = np.array([(tb / ta - 1) / (th.time_ratio_leading_order(st, L, 2, u0).value - 1)
                        - 1 for u0, (ta, tb) in zip(U0S, t)])
    assert np.all(np.abs(rel_err) < 0.5 / lg)
    assert abs(rel_err[2]) < abs(rel_err[1]) < abs(rel_err[0])


def test_lf2_sign_flip_against_balanced_gradient_flow():
    """L_f = 2 < L = 3, χ = −1 (ρ = −0.7: Σ_yxB = −0.4, s̃_B = 0.51, k = 0.154).

    * Exactly aligned weights: phase 1 is as for χ = +1 (B's map grows along Σ_yxB) and t_A
      follows eq. (56a) (measured t_A − t_A^pred = −0.3775 at every u0, to 2e-4). B then has
      no mode along −Σ_yxB but round-off. Unlike L_f ≥ 3 (B is never learned,
      test_exactly_aligned_weights_never_learn_a_flipped_modality), that mode is linearly
      unstable at L_f = 2, so B is learned, but ≈ ln(1/ε_float64)/R after t_A (measured
      92.7, 93.9, 97.8 with R = ‖U_A‖^{1/3}‖s̃_B‖ = 0.442, i.e. R·gap = 41-43) instead of
      eq. (56b)'s 12.0, 18.0, 24.1.
    * B's fusion-layer matrix negated (still balanced; B's map starts along −Σ_yxB): the mode
      the corrected eq. (56b) needs. It shrinks by u0^k in phase 1, and the slope of t_B − t_A
      against ln(1/u0) is (1 + k)/R (measured relative deviations −3e-6, 5e-6). Its phase 1
      has u_B = u0(u_A/u0)^{−k} instead of eq. (55): t_A follows I(L, 2) with k → −k
      (mpmath quadrature here; measured offset −0.3775 again, relative 1.1 u0).
    * Eq. (57) corrected presumes both modes, as random weights have: phase 1 of the aligned
      run, phase 2 of the flipped one. Gap(flipped)/t_A(aligned) against its t_B/t_A − 1,
      within the dropped intercept c0/(c1 ln(1/u0)) (measured −0.17/ln(1/u0) to
      −0.21/ln(1/u0)).
    """
    L, rho = 3, -0.7
    st = Stats.scalar_toy(2.0, 1.0, rho)
    r = th.roles(st)
    assert r.chi == -1
    na, nb = abs(r.s_a.item()), abs(r.s_b.item())
    k = nb / na
    R = abs(r.plateau.item()) ** (1 - 2 / L) * abs(r.s_b_tilde.item())
    runs = [(rho, u0, False) for u0 in U0S] + [(rho, u0, True) for u0 in U0S]
    traj, t = _balanced_runs(L, 2, runs, 3500.0, 0.1)
    assert list(measure_unimodal_phase(traj).first) == [0] * 6
    assert list(traj.status_names()) == ["converged"] * 6
    pred = [th.deep_times(st, L, 2, u0, lr=1.0) for u0 in U0S]
    lg = np.log(1 / np.array(U0S))
    c1 = (pred[0].t_B - pred[0].t_A) / lg[0]
    assert c1 == pytest.approx((1 + k) / R, rel=1e-12)  # the corrected (1 + k) numerator
    aligned, flipped = t[:3], t[3:]
    # Aligned: t_A to relative O(u0) (measured 1.1 u0), the O(1) term converges.
    for u0, ta, p in zip(U0S, aligned[:, 0], pred):
        assert ta == pytest.approx(p.t_A, rel=2 * u0)
    off = aligned[:, 0] - np.array([p.t_A for p in pred])
    assert abs(off[2] - off[1]) < 1e-3
    # Aligned: B is learned from round-off only, far later than the leading order.
    gap_aligned = aligned[:, 1] - aligned[:, 0]
    assert np.all(gap_aligned > 3 * c1 * lg)
    # Flipped: the gap's slope is the corrected coefficient (1 + k)/R.
    gap = flipped[:, 1] - flipped[:, 0]
    assert np.diff(gap) / np.diff(lg) == pytest.approx([c1, c1], rel=1e-4)
    # Flipped: phase 1 with the shrinking mode, u² = u_A² + u0²(u_A/u0)^{−2k}.
    J = float(mp.quad(lambda x: x ** -1 * (x ** 2 + x ** (-2 * k)) ** (1 - mp.mpf(L) / 2),
                      [1, 10, mp.inf]))
    for u0, ta in zip(U0S, flipped[:, 0]):
        assert ta == pytest.approx(u0 ** (2 - L) * J / na, rel=2 * u0)
    # Eq. (57) with both modes.
    rel_err = np.array([(g / ta) / (th.time_ratio_leading_order(st, L, 2, u0).value - 1) - 1
                        for u0, g, ta in zip(U0S, gap, aligned[:, 0])])
    assert np.all(np.abs(rel_err) < 0.5 / lg)


def test_late_fusion_ratio_against_balanced_gradient_flow():
    """L_f = L = 3: time_ratio_leading_order is eq. (9) corrected, independent of depth and
    u0; deep_times gives t_A = τ u0^{−1}/‖s_A‖ (I(3, 3) = 1) and t_B − t_A =
    τ(1 − χk)/(u0‖s̃_B‖). χ = +1 (ρ = 0.3, aligned) and χ = −1 (ρ = −0.7, B's last matrix
    negated so that B's map starts along −Σ_yxB; late-fusion branches do not interact in
    phase 1, so t_A is unchanged). Neglected terms: O(1) times against u0^{−1}, relative O(u0);
    measured errors of t_A and t_B −0.81 u0 to −0.98 u0, of the ratio −0.016 u0 (χ = +1) and
    0.083 u0 (χ = −1)."""
    L = 3
    runs = [(0.3, 1e-2, False), (0.3, 1e-3, False), (-0.7, 1e-2, True), (-0.7, 1e-3, True)]
    traj, t = _balanced_runs(L, L, runs, 2950.0, 0.1)
    assert list(traj.status_names()) == ["converged"] * 4
    for (rho, u0, _), (ta, tb) in zip(runs, t):
        st = Stats.scalar_toy(2.0, 1.0, rho)
        pred = th.deep_times(st, L, L, u0, lr=1.0)
        assert ta == pytest.approx(pred.t_A, rel=2 * u0)
        assert tb == pytest.approx(pred.t_B, rel=2 * u0)
        assert tb / ta == pytest.approx(th.time_ratio_leading_order(st, L, L, u0).value,
                                        rel=u0)


def test_early_fusion_ratio_tends_to_one():
    """L_f = 1, L = 3: one transition for both modalities, t_B/t_A → 1 (the value
    time_ratio_leading_order returns). Eq. (44) at L_f = 1, τu̇_m = ‖s_m‖u^{L−1}, gives
    u_m = u0 + ‖s_m‖z with ż = u^{L−1}: t_A = u0^{2−L} T + O(1) with
    T = ∫₀^∞ ((1 + ‖s_A‖ζ)² + (1 + ‖s_B‖ζ)²)^{(1−L)/2} dζ (measured relative error −1.08 u0),
    while t_B − t_A stays O(1) (measured 0.2249, 0.2315, 0.2315 at u0 = 1e-2, 1e-3, 1e-4).
    Hence t_B/t_A − 1 = O(u0^{L−2}): (t_B/t_A − 1)/u0 = 1.513, 1.543, 1.541."""
    L, rho = 3, 0.3
    st = Stats.scalar_toy(2.0, 1.0, rho)
    r = th.roles(st)
    na, nb = abs(r.s_a.item()), abs(r.s_b.item())
    T = quad(lambda z: ((1 + na * z) ** 2 + (1 + nb * z) ** 2) ** ((1 - L) / 2), 0, np.inf,
             epsabs=0, epsrel=1e-12)[0]
    traj, t = _balanced_runs(L, 1, [(rho, u0, False) for u0 in U0S], 1510.0, 0.1)
    assert list(traj.status_names()) == ["converged"] * 3
    assert th.time_ratio_leading_order(st, L, 1, 1e-3).value == 1.0
    for u0, ta in zip(U0S, t[:, 0]):
        assert ta == pytest.approx(T / u0, rel=2 * u0)
    gap = t[:, 1] - t[:, 0]
    assert np.all(np.abs(gap) < 1.0)
    # Bounded and converging (O(u0) corrections); a gap growing like t_A would change by
    # ~1350·(t_B/t_A − 1) between the last two u0.
    assert abs(gap[2] - gap[1]) < 0.01
    excess = (t[:, 1] / t[:, 0] - 1) / np.array(U0S)
    assert excess[2] == pytest.approx(excess[1], rel=0.02)


@pytest.mark.parametrize("rho", [0.3, -0.7])
@pytest.mark.parametrize("L, Lf", [(3, 2), (4, 3), (4, 4)])
def test_deep_times_is_a_time_prediction(L, Lf, rho):
    """deep_times returns a TimePrediction holding eqs. (48), (54) and (56), written out here
    for the scalar toy (σ_A = 2, σ_B = 1): ‖s_A‖ = 4 + 2ρ, ‖s_B‖ = |1 + 2ρ|, ‖U_A‖ = ‖s_A‖/4,
    ‖s̃_B‖ = 1 − ρ², χ = −1 where Σ_yxB < 0 (ρ = −0.7, with its caveat)."""
    st = Stats.scalar_toy(2.0, 1.0, rho)
    u0, lr = 0.05, 0.5
    p = th.deep_times(st, L, Lf, u0, lr=lr)
    assert isinstance(p, th.TimePrediction) and isinstance(p, th.Times)
    na, nb, nbt = 4 + 2 * rho, abs(1 + 2 * rho), 1 - rho ** 2
    chi = -1 if 1 + 2 * rho < 0 else 1
    k, ua = nb / na, na / 4
    t_a = u0 ** (2 - L) * th.fusion_integral(L, Lf, k) / (lr * na)
    if Lf == 2:
        gap = (1 - chi * k) * np.log(1 / u0) / (lr * ua ** (1 - 2 / L) * nbt)
    else:
        gap = (1 - chi * k) * u0 ** (2 - Lf) / (lr * (Lf - 2) * ua ** (1 - Lf / L) * nbt)
    assert p.t_A == pytest.approx(t_a, rel=1e-12)
    assert p.t_B == pytest.approx(t_a + gap, rel=1e-12)
    assert p.ratio == pytest.approx(th.time_ratio_leading_order(st, L, Lf, u0).value, rel=1e-12)
    assert (p.first, p.second) == ("A", "B") and p.t_A < p.t_B and p.valid
    assert bool(p.caveats) == (chi == -1)
    assert set(p.to_dict()) == {"t_A", "t_B", "ratio", "first", "second", "valid", "caveats"}


def test_random_init_times_is_a_time_prediction():
    """random_init_times returns a TimePrediction whose first modality has the smaller time."""
    p = th.random_init_times(Stats.scalar_toy(2.0, 1.0, 0.3), 4, 4, 0.1, 100, 0.04, nodes=1)
    assert isinstance(p, th.TimePrediction) and p.valid
    assert (p.first, p.second) == ("A", "B") and 0 < p.t_A < p.t_B
    assert p.ratio == p.t_B / p.t_A and p.times == (p.t_A, p.t_B)


@pytest.mark.parametrize("Lf", [3, 4])
def test_deep_times_leading_order_against_balanced_simulation(Lf):
    """Eq. (48), (54) hold for balanced, aligned, small weights (their assumptions)."""
    st = Stats.scalar_toy(2.0, 1.0, 0.3)
    spec = NetworkSpec.fusion(4, Lf, width=20)
    u0 = 0.03
    traj = simulate(spec, st, seeds=[0], scheme="balanced", scale=u0, method="gf", lr=1.0,
                    steps=1500, record_every=0.05, stop_loss=1e-6)
    m = measure_unimodal_phase(traj)
    pred = th.deep_times(st, 4, Lf, u0, lr=1.0)
    # Leading order in u0: the corrections are higher powers of u0 = 0.03 (measured: 0.1 % on
    # t_A, < 1 % on the ratio; 0.6 % and 6 % at u0 = 0.1, benchmarks/accuracy_deep.py).
    assert m.t_A[0] == pytest.approx(pred.t_A, rel=0.01)
    assert m.t_B[0] == pytest.approx(pred.t_B, rel=0.02)
    ratio = th.time_ratio_leading_order(st, 4, Lf, u0).value
    assert m.time_ratio[0] == pytest.approx(ratio, rel=0.02)


def test_unequal_depths_against_balanced_simulation():
    """Eq. (59) (roles chosen by which branch escapes first) within 10 % at u0 = 0.05."""
    st = Stats.scalar_toy(2.0, 1.0, 0.3)
    for depths, post in (((3, 4), 1), ((4, 3), 1), ((3, 4), 0)):
        spec = NetworkSpec.unequal(depths, post_depth=post, width=20)
        traj = simulate(spec, st, seeds=[0], scheme="balanced", scale=0.05, steps=100_000)
        m = measure_unimodal_phase(traj)
        pred = th.time_ratio_unequal(st, *depths, post, 0.05)
        assert m.time_ratio[0] == pytest.approx(pred.value, rel=0.1)
        shallow_first = depths[1] < depths[0]
        assert (m.first[0] == 1) == shallow_first
        assert any("shallower" in c for c in pred.caveats) == shallow_first


def test_pathway_time_against_series_and_logistic():
    s, sigma2, tau = 3.0, 1.5, 25.0
    w_star = s / sigma2
    # L = 2 is the logistic.
    t = th.deep.pathway_time(0.5, 2, s, sigma2, 1e-6, tau)
    x = lambda w: np.log(w / (w_star - w))  # noqa: E731
    assert t == pytest.approx(tau / (2 * s) * (x(0.5) - x(1e-6)), rel=1e-12)
    # L >= 3: the power series of ∫ z^{2/L−2}/(1−z) dz (independent of the logit quadrature).
    for L in (3, 4, 6):
        a = 2 / L - 1
        F = lambda z: sum(z ** (n + a) / (n + a) for n in range(4000))  # noqa: E731
        z0, z1 = 1e-3, 0.6
        expected = tau / (L * s * w_star ** (1 - 2 / L)) * (F(z1) - F(z0))
        got = th.deep.pathway_time(z1 * w_star, L, s, sigma2, z0 * w_star, tau)
        assert got == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match=r"need 0 < w0 <= w < w\*"):
        th.deep.pathway_time(3.0, 3, s, sigma2, 1e-3, tau)
    with pytest.raises(ValueError, match="depth must be an integer >= 2"):
        th.deep.pathway_time(0.5, 1, s, sigma2, 1e-3, tau)


@pytest.mark.parametrize("L", [3, 4])
def test_pathway_trajectory_against_gradient_flow(L):
    """Deep late fusion, uncorrelated white modalities, balanced aligned weights: each branch
    is one balanced pathway, so its total weight follows the exact pathway solution."""
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    spec = NetworkSpec.fusion(L, L, width=6)
    traj = simulate(spec, st, seeds=[0], scheme="balanced", scale=0.2, method="gf", lr=1.0,
                    steps=150, record_every=1, stop_loss=None, rtol=1e-11, atol=1e-30)
    for m, (s, sigma2) in enumerate(((4.0, 4.0), (1.0, 1.0))):
        w0 = 0.2 ** L
        sim = traj.maps[m][0, :, 0, 0]
        exact = th.deep.pathway_trajectory(traj.time, L, s, sigma2, w0, tau=1.0)
        assert np.max(np.abs(sim - exact)) < 1e-6 * (s / sigma2)


def test_exactly_aligned_weights_never_learn_a_flipped_modality():
    """Σ_yxB < 0 < Σ̃_yxB: the mode along −Σ_yxB is what B needs in its second phase. Exactly
    balanced, aligned weights have none, and for L_f >= 3 B stays on the saddle M_A."""
    st = Stats.scalar_toy(2.0, 1.0, -0.9)
    spec = NetworkSpec.fusion(4, 3, width=10)
    traj = simulate(spec, st, seeds=[0], scheme="balanced", scale=0.1, steps=30_000)
    assert traj.status_names()[0] == "max_steps"
    assert abs(traj.final_maps[1][0].item()) < 1e-6
    assert traj.final_loss[0] == pytest.approx(th.landscape.saddle_loss(st, 0), rel=1e-4)
    assert "never learned" in th.time_ratio_leading_order(st, 4, 3, 0.1).caveats[0]


def test_alignment_escape_time_predicts_each_random_run():
    """Figure 6's four-layer late fusion from random weights (u0 = 0.1, width 100): each run's
    first transition from its own (m0, a, b) against the network, within 1 % (measured max
    0.5 %: gradient descent at η = 0.04 against the flow, 0.25 %, and the middle layers' random
    bulk); the aligned leading order is 5× too early, the averaged closed form sits inside the
    seeds' spread."""
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    spec = NetworkSpec.fusion(4, 4, width=100)
    traj = simulate(spec, st, seeds=list(range(6)), scheme="frobenius", scale=0.1, lr=0.04,
                    steps=2600, record_every=5)
    t_a = measure_unimodal_phase(traj).t_A.ravel()
    W1, W2, W3, W4 = (np.asarray(W) for W in traj.initial_params.branches[0])
    for k, t in enumerate(t_a):
        w1, w4 = W1[k][:, 0], W4[k][0]
        a_hat, b_hat = w1 / np.linalg.norm(w1), w4 / np.linalg.norm(w4)
        m0 = np.linalg.norm(W2[k] @ a_hat + W3[k].T @ b_hat) / 2
        pred = th.deep.alignment_escape_time(4.0, 4.0, 0.1, 100, 25.0,
                                        weights=(m0, np.linalg.norm(w1), np.linalg.norm(w4)))
        assert abs(pred / t - 1) < 0.01
    aligned = th.deep.pathway_time(0.5, 4, 4.0, 4.0, 0.1 ** 4, 25.0)
    assert np.mean(t_a) / aligned > 4.5
    typical = th.deep.alignment_escape_time(4.0, 4.0, 0.1, 100, 25.0)
    assert abs(typical / np.mean(t_a) - 1) < 3 * np.std(t_a) / np.sqrt(t_a.size) / np.mean(t_a)
    with pytest.raises(ValueError, match="width must be an integer >= 2"):
        th.deep.alignment_escape_time(4.0, 4.0, 0.1, 1.5, 25.0)
    with pytest.raises(ValueError, match="u0 must be a positive finite number"):
        th.deep.alignment_escape_time(4.0, 4.0, -0.1, 100, 25.0)
    with pytest.raises(ValueError, match="level must lie in \\(0, 1\\)"):
        th.deep.alignment_escape_time(4.0, 4.0, 0.1, 100, 25.0, level=1.0)
    with pytest.raises(ValueError, match="m0 < a, b"):
        th.deep.alignment_escape_time(4.0, 4.0, 0.1, 100, 25.0, weights=(0.2, 0.1, 0.1))


@pytest.mark.parametrize("Lf, tol_a, tol_b", [(2, 0.035, 0.035), (3, 5e-3, 0.01), (4, 5e-3, 0.01)])
def test_random_init_times_predicts_each_random_run(Lf, tol_a, tol_b):
    """Both transitions of Figure 6's four-layer networks from random weights (u0 = 0.1, width
    100, η = 0.04, ρ = 0, σ_A/σ_B = 2): each run's t_A and t_B from its initial norms
    against the network. Measured: L_f = 3, 4: t_A within 0.2 %, t_B within 0.4 % (the
    recording stride is 0.2 %); L_f = 2: t_A 1.3–2.1 % and t_B 1.7–2.5 % late, because the
    closed form leaves out B's feed into the shared mode during A's escape (an O(k²) speed-up
    of A, k = 1/4 here)."""
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    spec = NetworkSpec.fusion(4, Lf, width=100)
    traj = simulate(spec, st, seeds=[0, 1, 2], scheme="frobenius", scale=0.1, lr=0.04,
                    steps={2: 1600, 3: 2600, 4: 8000}[Lf], record_every=4)
    meas = measure_unimodal_phase(traj)
    seeds = th.alignment_seeds(spec, traj.initial_params).reshape(-1, 2, 4)
    assert seeds.shape == (3, 2, 4)
    for k in range(3):
        pred = th.random_init_times(st, 4, Lf, 0.1, 100, 0.04, weights=seeds[k])
        assert pred.first == "A" and pred.valid
        assert abs(pred.t_A / meas.t_A.ravel()[k] - 1) < tol_a
        assert abs(pred.t_B / meas.t_B.ravel()[k] - 1) < tol_b


def test_alignment_seeds_are_the_pathways_norms():
    """alignment_seeds against the definition written out for one run of L_f = 2 (B's pathway
    runs through the shared W3, W4)."""
    spec = NetworkSpec.fusion(4, 2, width=6)
    params = dln.init_params(spec, jax.random.PRNGKey(3), scheme="frobenius", scale=0.1)
    got = th.alignment_seeds(spec, params)
    W3, W4 = (np.asarray(W) for W in params.post)
    for m in range(2):
        W1, W2 = (np.asarray(W) for W in params.branches[m])
        a, b = np.linalg.norm(W1), np.linalg.norm(W4)
        p, q = W2 @ (W1[:, 0] / a), W3.T @ (W4[0] / b)
        np.testing.assert_allclose(got[m], [np.linalg.norm(p + q) / 2, np.linalg.norm(p - q) / 2,
                                            a, b], rtol=1e-6)  # float32 weights
    with pytest.raises(ValueError, match="four-layer network with scalar modalities"):
        th.alignment_seeds(NetworkSpec.fusion(3, 2, width=6), params)


def test_random_init_times_law_average_and_errors():
    """The law average (3 quantile nodes per random number) against a Monte Carlo average of
    per-run predictions over 300 draws of the initial weights' norms (Monte Carlo error of the
    mean ~0.5 % for the ratio's spread of ~9 %; tested at 2 %), the flags and the errors."""
    st = Stats.scalar_toy(2.0, 1.0, -0.3)
    rng = np.random.default_rng(1)
    n, u0 = 100, 0.1
    for Lf in (3, 4):
        spec = NetworkSpec.fusion(4, Lf, width=n)
        draws = []
        for s in range(300):
            p = dln.init_params(spec, jax.random.PRNGKey(int(rng.integers(1 << 30))),
                                scheme="frobenius", scale=u0)
            w = th.alignment_seeds(spec, jax.tree_util.tree_map(
                lambda a: np.asarray(a, dtype=np.float64), p))
            draws.append(th.random_init_times(st, 4, Lf, u0, n, 0.04, weights=w).ratio)
        avg = th.random_init_times(st, 4, Lf, u0, n, 0.04)
        assert abs(avg.ratio / np.mean(draws) - 1) < 0.02
    flagged = th.random_init_times(Stats.scalar_toy(1.2, 1.0, 0.0), 4, 2, u0, n, 0.04)
    assert not flagged.valid and "no longer linear" in flagged.caveats[0]
    collinear = Stats(np.array([[4.0, 2.0], [2.0, 1.0]]), np.array([[6.0, 3.0]]), 9.0, (1, 1),
                      allow_singular=True)             # x_B = x_A / 2
    never = th.random_init_times(collinear, 4, 3, u0, n, 0.04)
    assert never.t_B == np.inf and "never learned" in never.caveats[0]
    with pytest.raises(ValueError, match="covers depth 4"):
        th.random_init_times(st, 3, 2, u0, n, 0.04)
    with pytest.raises(ValueError, match="fusion_layer must be 2, 3 or 4"):
        th.random_init_times(st, 4, 1, u0, n, 0.04)
    with pytest.raises(ValueError, match="two scalar modalities"):
        th.random_init_times(Stats(np.eye(3), np.ones((1, 3)), 3.0, (1, 2)), 4, 3, u0, n, 0.04)
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        th.random_init_times(st, 4, 3, 0.0, n, 0.04)
    with pytest.raises(ValueError, match="width must be an integer >= 2"):
        th.random_init_times(st, 4, 3, u0, True, 0.04)
    with pytest.raises(ValueError, match="nodes must be a positive integer"):
        th.random_init_times(st, 4, 3, u0, n, 0.04, nodes=0)
    with pytest.raises(ValueError, match="shape \\(2, 4\\)"):
        th.random_init_times(st, 4, 3, u0, n, 0.04, weights=[0.01, 0.01, 0.1, 0.1])
    with pytest.raises(ValueError, match="m0 must be smaller"):
        th.random_init_times(st, 4, 3, u0, n, 0.04, weights=[[0.2, 0.01, 0.1, 0.1]] * 2)
