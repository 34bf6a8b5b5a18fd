"""Deep-network formulas against independent computations and against simulation."""
import mpmath as mp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
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
        assert th.unequal_integral(La, La, Lc, 0.35, 0.1) == pytest.approx(
            th.fusion_integral(La + Lc, La, 0.35), rel=1e-10)
    La, Lb, Lc, k, u0 = 3, 4, 1, 0.4, 0.1
    c = (Lb - 2) / (La - 2) * k * u0 ** (Lb - La)
    f = lambda x: x ** (1 - La) * (x ** 2 + (c * (x ** (2 - La) - 1) + 1) ** (mp.mpf(2) / (2 - Lb))) \
        ** (-mp.mpf(Lc) / 2)  # noqa: E731
    assert th.unequal_integral(La, Lb, Lc, k, u0) == pytest.approx(float(mp.quad(f, [1, mp.inf])),
                                                                   rel=1e-9)
    with pytest.raises(ValueError, match="escapes first"):
        th.unequal_integral(4, 3, 1, 2.0, 0.1)


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
        th.unequal_integral(2, 4, 1, 0.5, 0.1)
    with pytest.raises(ValueError, match="u0"):
        th.unequal_integral(3, 4, 1, 0.5, 1.5)


def test_reduced_dynamics_and_branch_relation_by_integration():
    s_a, s_b, u0 = 4.0, 1.0, 1e-2
    for L, Lf in ((4, 3), (5, 3), (4, 2), (4, 1)):
        def rhs(t, y):
            return np.array(th.reduced_rhs(y[0], y[1], y[2], s_a, s_b, L, Lf))
        sol = solve_ivp(rhs, (0, 1e9), [u0, u0, np.sqrt(2) * u0], rtol=1e-11, atol=1e-16,
                        events=lambda t, y: y[0] - 0.5, dense_output=True)
        ua, ub, u = sol.y[:, -1]
        assert ub == pytest.approx(float(th.branch_relation(ua, s_b / s_a, u0, Lf)), rel=1e-6)
        assert u ** 2 == pytest.approx(ua ** 2 + ub ** 2, rel=1e-6)  # eq. (41)


def test_leading_order_special_cases():
    st = Stats.scalar_toy(2.0, 1.0, 0.4)
    for L in (3, 4, 6):
        assert th.time_ratio_leading_order(st, L, L, 0.1).value == pytest.approx(
            th.time_ratio_gradient_flow(st).value)
    assert th.time_ratio_leading_order(st, 4, 1, 0.1).value == 1.0
    # eq. (59) with equal depths equals eq. (12) (different code path).
    for Lf, Lc in ((3, 1), (4, 2)):
        assert th.time_ratio_unequal(st, Lf, Lf, Lc, 0.05).value == pytest.approx(
            th.time_ratio_leading_order(st, Lf + Lc, Lf, 0.05).value, rel=1e-10)
    flip = Stats.scalar_toy(2.0, 1.0, -0.8)
    p = th.time_ratio_leading_order(flip, 4, 3, 0.1)
    assert "anti-parallel" in p.caveats[0]
    with pytest.raises(ValueError):
        th.time_ratio_leading_order(st, 4, 3, 1.2)
    with pytest.raises(ValueError):
        th.time_ratio_leading_order(st, 4, 0, 0.1)


@pytest.mark.parametrize("Lf", [3, 4])
def test_deep_times_leading_order_against_balanced_simulation(Lf):
    """Eq. (48), (54) hold for balanced, aligned, small weights (their assumptions)."""
    st = Stats.scalar_toy(2.0, 1.0, 0.3)
    spec = NetworkSpec.fusion(4, Lf, width=20)
    u0 = 0.03
    traj = simulate(spec, st, seeds=[0], scheme="balanced", scale=u0, method="gf", lr=1.0,
                    max_steps=1500, stride=0.05, stop_loss=1e-6)
    m = measure_unimodal_phase(traj)
    pred = th.deep_times(st, 4, Lf, u0, tau=1.0)
    # Leading order in u0: the corrections are higher powers of u0 = 0.03 (measured: 0.1 % on
    # t_A, < 1 % on the ratio; 0.6 % and 6 % at u0 = 0.1, benchmarks/accuracy_deep.py).
    assert m.t_a[0] == pytest.approx(pred["t_A"], rel=0.01)
    assert m.t_b[0] == pytest.approx(pred["t_B"], rel=0.02)
    ratio = th.time_ratio_leading_order(st, 4, Lf, u0).value
    assert m.time_ratio[0] == pytest.approx(ratio, rel=0.02)


def test_unequal_depths_against_balanced_simulation():
    """Eq. (59) (roles chosen by which branch escapes first) within 10 % at u0 = 0.05."""
    st = Stats.scalar_toy(2.0, 1.0, 0.3)
    for depths, post in (((3, 4), 1), ((4, 3), 1), ((3, 4), 0)):
        spec = NetworkSpec.unequal(depths, post_depth=post, width=20)
        traj = simulate(spec, st, seeds=[0], scheme="balanced", scale=0.05, max_steps=100_000)
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
    t = th.pathway_time(0.5, 2, s, sigma2, 1e-6, tau)
    x = lambda w: np.log(w / (w_star - w))  # noqa: E731
    assert t == pytest.approx(tau / (2 * s) * (x(0.5) - x(1e-6)), rel=1e-12)
    # L >= 3: the power series of ∫ z^{2/L−2}/(1−z) dz (independent of the logit quadrature).
    for L in (3, 4, 6):
        a = 2 / L - 1
        F = lambda z: sum(z ** (n + a) / (n + a) for n in range(4000))  # noqa: E731
        z0, z1 = 1e-3, 0.6
        expected = tau / (L * s * w_star ** (1 - 2 / L)) * (F(z1) - F(z0))
        got = th.pathway_time(z1 * w_star, L, s, sigma2, z0 * w_star, tau)
        assert got == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError):
        th.pathway_time(3.0, 3, s, sigma2, 1e-3, tau)
    with pytest.raises(ValueError):
        th.pathway_time(0.5, 1, s, sigma2, 1e-3, tau)


@pytest.mark.parametrize("L", [3, 4])
def test_pathway_trajectory_against_gradient_flow(L):
    """Deep late fusion, uncorrelated white modalities, balanced aligned weights: each branch
    is one balanced pathway, so its total weight follows the exact pathway solution."""
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    spec = NetworkSpec.fusion(L, L, width=6)
    traj = simulate(spec, st, seeds=[0], scheme="balanced", scale=0.2, method="gf", lr=1.0,
                    max_steps=150, stride=1, stop_loss=None, rtol=1e-11, atol=1e-30)
    for m, (s, sigma2) in enumerate(((4.0, 4.0), (1.0, 1.0))):
        w0 = 0.2 ** L
        sim = traj.maps[m][0, :, 0, 0]
        exact = th.pathway_trajectory(traj.time, L, s, sigma2, w0, tau=1.0)
        assert np.max(np.abs(sim - exact)) < 1e-6 * (s / sigma2)


def test_exactly_aligned_weights_never_learn_a_flipped_modality():
    """Σ_yxB < 0 < Σ̃_yxB: the mode along −Σ_yxB is what B needs in its second phase. Exactly
    balanced, aligned weights have none, and for L_f >= 3 B stays on the saddle M_A."""
    st = Stats.scalar_toy(2.0, 1.0, -0.9)
    spec = NetworkSpec.fusion(4, 3, width=10)
    traj = simulate(spec, st, seeds=[0], scheme="balanced", scale=0.1, max_steps=30_000)
    assert traj.status_names()[0] == "max_steps"
    assert abs(traj.final_maps[1][0].item()) < 1e-6
    assert traj.final_loss[0] == pytest.approx(th.saddle_loss(st, 0), rel=1e-4)
    assert "never learned" in th.time_ratio_leading_order(st, 4, 3, 0.1).caveats[0]
