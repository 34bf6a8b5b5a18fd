import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import dlnfusion as dln
from dlnfusion import NetworkSpec, Stats, theory as th


# ---------------------------------------------------------------- Saxe solutions
def test_logistic_weight_solves_its_ode():
    s, sigma2, w0, tau = 3.0, 2.0, 1e-4, 25.0
    sol = solve_ivp(lambda t, w: 2 * w * (s - sigma2 * w) / tau, (0, 200), [w0],
                    rtol=1e-12, atol=1e-16, dense_output=True)
    t = np.linspace(0, 200, 101)
    assert np.allclose(th.logistic_weight(t, s, sigma2, w0, tau), sol.sol(t)[0], rtol=1e-8)
    assert th.logistic_weight(0.0, s, sigma2, w0, tau) == pytest.approx(w0)
    assert th.logistic_weight(1e5, s, sigma2, w0, tau) == pytest.approx(s / sigma2)


def test_mode_strength_is_the_white_input_logistic():
    t = np.linspace(0, 80, 41)
    assert np.allclose(th.mode_strength(t, 1.7, 1e-6, 10.0),
                       th.logistic_weight(t, 1.7, 1.0, 1e-6, 10.0), rtol=1e-12)
    assert th.mode_strength(0.0, 1.7, 1e-6, 10.0) == pytest.approx(1e-6)


def test_saxe_errors():
    with pytest.raises(ValueError):
        th.logistic_weight(1.0, -1.0, 1.0, 1e-3, 1.0)
    with pytest.raises(ValueError):
        th.mode_strength(1.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="correlated"):
        th.saxe_late_fusion(Stats.scalar_toy(1.0, 1.0, 0.3), [0.0], [1e-3, 1e-3], 1.0)
    st = Stats.from_teacher(np.diag([1.0, 2.0, 1.0]), [1.0, 1.0, 1.0], dims=(2, 1))
    with pytest.raises(ValueError, match="white"):
        th.saxe_late_fusion(st, [0.0], [1e-3, 1e-3], 1.0)
    assert not th.white_uncorrelated(st).valid


def test_saxe_late_fusion_vector_modalities_direction():
    st = Stats.from_teacher(np.diag([4.0, 4.0, 1.0]), [1.0, -2.0, 1.0], dims=(2, 1))
    Wa, Wb = th.saxe_late_fusion(st, [0.0, 1e4], [1e-3, 1e-3], 25.0)
    assert np.allclose(Wa[-1], st.unimodal_solution(0))
    assert np.allclose(Wb[-1], st.unimodal_solution(1))


def test_effective_init_by_hand():
    spec = NetworkSpec.fusion(2, 2, width=3)
    W1a = jnp.array([[1.0], [2.0], [0.0]])
    W2a = jnp.array([[0.5, -1.0, 2.0]])
    p = dln.Params(((W1a, W2a), (W1a, -W2a)), ())
    w0 = th.effective_init(spec, p, [[1.0], [-1.0]])
    assert w0[0] == pytest.approx(0.25 * (1.5 ** 2 + 1.0 ** 2 + 2.0 ** 2))
    # Branch B: -W¹ + W²ᵀ = [-1 - 0.5, -2 + 1, 0 - 2].
    assert w0[1] == pytest.approx(0.25 * (1.5 ** 2 + 1.0 ** 2 + 2.0 ** 2))
    with pytest.raises(ValueError, match="unit vector"):
        th.effective_init(spec, p, [[2.0], [1.0]])
    with pytest.raises(ValueError, match="two-layer"):
        th.effective_init(NetworkSpec.fusion(3, 2, width=3), p, [[1.0], [1.0]])


def test_typical_effective_init_against_monte_carlo():
    spec = NetworkSpec.fusion(2, 2, width=100)
    p = dln.init_batch(spec, list(range(400)), "normal", 1e-3)
    w0 = th.effective_init(spec, p, [[1.0], [1.0]])
    assert np.exp(np.mean(np.log(w0))) == pytest.approx(th.typical_effective_init(1e-3, 100),
                                                        rel=0.02)
    with pytest.raises(ValueError):
        th.typical_effective_init(0.0, 100)
    with pytest.raises(ValueError):
        th.typical_effective_init(1e-3, 2.5)


# ---------------------------------------------------------------- landscape
def _grad_at_total_map(stats, W):
    """Gradient of the population loss at late-fusion weights realizing the total map W."""
    spec = NetworkSpec.fusion(2, 2, width=3)
    # Scalar modalities: W_m^1 = sqrt|w| r, W_m^2 = sign(w) sqrt|w| rᵀ gives W_m^tot = w.
    r = jnp.array([1.0, 0.0, 0.0])
    branches = tuple((np.sqrt(abs(m.item())) * r[:, None],
                      np.sign(m.item()) * np.sqrt(abs(m.item())) * r[None, :])
                     for m in stats.split(W))
    params = dln.Params(branches, ())

    def loss(p):
        Wt = jnp.concatenate(dln.total_maps(spec, p), axis=1)
        return 0.5 * jnp.trace(stats.sigma_yy - 2 * Wt @ stats.sigma_yx.T
                               + Wt @ stats.sigma @ Wt.T)

    g = jax.grad(loss)(params)
    return max(float(jnp.max(jnp.abs(x))) for x in jax.tree_util.tree_leaves(g))


def test_fixed_points_have_zero_gradient():
    st = Stats.scalar_toy(2.0, 1.0, 0.6)
    fps = th.fixed_points(st, fusion_layer=2)
    assert set(fps) == {"M_0", "M_*", "M_A", "M_B"}
    for name in ("M_*", "M_A", "M_B"):
        assert _grad_at_total_map(st, fps[name].total_map) < 1e-12
        assert fps[name].loss == pytest.approx(st.loss(fps[name].total_map), abs=1e-12)
    assert fps["M_0"].loss == pytest.approx(st.loss(np.zeros((1, 2))))
    assert fps["M_*"].stable and not fps["M_A"].stable
    assert set(th.fixed_points(st, fusion_layer=1)) == {"M_0", "M_*"}
    assert fps["M_A"].to_dict()["name"] == "M_A"
    with pytest.raises(ValueError):
        th.fixed_points(st, fusion_layer=0)


def test_superficial_preference_examples_of_figure_4():
    # Paper, Appendix J: Figure 4a (Σ = diag(9, 1), y = x_A + 4x_B) is superficial, Figure 4b
    # (Σ = diag(16, 1), y = x_A + 3x_B) is not; A is learned first in both.
    a = th.superficial_preference(Stats.from_teacher(np.diag([9.0, 1.0]), [1.0, 4.0], (1, 1)))
    b = th.superficial_preference(Stats.from_teacher(np.diag([16.0, 1.0]), [1.0, 3.0], (1, 1)))
    assert a["first"] == "A" and a["larger_contribution"] == "B" and a["superficial"]
    assert b["first"] == "A" and b["larger_contribution"] == "A" and not b["superficial"]
    assert a["plateau_loss"]["A"] > a["plateau_loss"]["B"]


def test_preference_regions_agree_with_eq10():
    rng = np.random.default_rng(0)
    for _ in range(200):
        r, q = rng.uniform(0.1, 3), rng.uniform(0.1, 5)  # σ_B/σ_A, w_A/w_B
        st = Stats.from_teacher(np.diag([1.0, r * r]), [q, 1.0], (1, 1))
        pref = th.superficial_preference(st)
        region = int(th.preference_regions(r, q))
        assert (region in (2, 3)) == pref["superficial"]
        assert (region in (1, 3)) == (pref["first"] == "A")
    with pytest.raises(ValueError):
        th.preference_regions(-1.0, 1.0)


# ---------------------------------------------------------------- time ratio
@pytest.mark.parametrize("ratio", [1.5, 2.0, 3.0])
@pytest.mark.parametrize("rho", np.linspace(-0.9, 0.9, 9))
def test_gradient_flow_ratio_reduces_to_appendix_j(ratio, rho):
    # Appendix J (paper's number): t_B/t_A = 1 + (σ_A²/σ_B² − 1)/(1 − ρ²) for y = x_A + x_B.
    st = Stats.scalar_toy(ratio, 1.0, rho)
    expected = 1 + (ratio ** 2 - 1) / (1 - rho ** 2)
    assert th.time_ratio_gradient_flow(st).value == pytest.approx(expected, rel=1e-12)
    assert th.misattribution(st).value == pytest.approx(rho / ratio, abs=1e-12)
    eq9 = th.time_ratio_eq9(st)
    anti = 1 + rho * ratio < 0  # Σ_yxB < 0
    assert eq9.valid == (not anti)
    assert (abs(eq9.value - expected) > 1e-9) == anti


def test_time_ratio_edge_cases():
    tie = Stats.scalar_toy(1.0, 1.0, 0.3)
    assert th.time_ratio_gradient_flow(tie).value == 1.0
    assert th.learning_order(tie)[2]
    collinear = Stats.from_teacher([[4.0, 2.0], [2.0, 1.0]], [1.0, 1.0], (1, 1),
                                   allow_singular=True)
    assert th.time_ratio_gradient_flow(collinear).value == np.inf
    assert th.time_ratio_eq9(collinear).value == np.inf
    p = th.predict_times(collinear, 0.04, [1e-17, 1e-17])
    assert p.t_b == np.inf
    zero_b = Stats.from_teacher(np.eye(2), [1.0, 0.0], (1, 1))
    r = th.time_ratio_gradient_flow(zero_b)
    assert np.isnan(r.value) and not r.valid
    with pytest.raises(ValueError, match="two modalities"):
        th.time_ratio_gradient_flow(Stats.random(dim=3, seed=0, dims=(1, 1, 1)))


def test_vector_modalities_leading_order():
    st = Stats.random(dim=6, seed=4)
    r = th.roles(st)
    val = th.time_ratio_gradient_flow(st).value
    expected = 1 + (np.linalg.norm(r.s_a) - np.linalg.norm(r.s_b)) / np.linalg.norm(r.s_b_tilde)
    assert val == pytest.approx(expected)
    d = th.phase_directions(st)
    assert np.isclose(np.linalg.norm(d[0]), 1) and np.isclose(np.linalg.norm(d[1]), 1)
    with pytest.raises(ValueError, match="scalar"):
        th.predict_times(st, 0.04, [1e-6, 1e-6])


def test_times_leading_order():
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    out = th.times_leading_order(st, u0=1e-8, tau=25.0)
    assert out["t_A"].value == pytest.approx(25 * np.log(1e8) / 4)
    assert out["t_B"].value / out["t_A"].value == pytest.approx(4.0)
    assert out["first"] == "A"
    with pytest.raises(ValueError):
        th.times_leading_order(st, u0=2.0, tau=25.0)
    with pytest.raises(ValueError):
        th.times_leading_order(st, u0=0.1, tau=0.0)


def test_logistic_map_crossing():
    # g -> 0: the map becomes the logistic ODE with rate 2g per step, crossing at
    # ln(1/x0 - 1)/(2g) (an independent closed form).
    g, x0 = 1e-4, 1e-6
    n = th.logistic_map_crossing(x0, g)
    assert n == pytest.approx(np.log(1 / x0 - 1) / (2 * g), rel=1e-3)
    # Direct iteration.
    x, k = 1e-3, 0
    while x * (1 + 0.3 * (1 - x)) ** 2 < 0.5:
        x, k = x * (1 + 0.3 * (1 - x)) ** 2, k + 1
    xn = x * (1 + 0.3 * (1 - x)) ** 2
    assert th.logistic_map_crossing(1e-3, 0.3) == pytest.approx(k + (0.5 - x) / (xn - x))
    with pytest.raises(ValueError):
        th.logistic_map_crossing(0.7, 0.1)
    with pytest.raises(ValueError):
        th.logistic_map_crossing(1e-3, 1.5)


def test_predict_times_caveats():
    st = Stats.scalar_toy(3.0, 1.0, 0.0)
    assert not th.predict_times(st, 0.2, [1e-17, 1e-17]).valid  # lr*s_A = 1.8
    big = th.predict_times(st, 0.04, [0.9, 1e-17])
    assert not big.valid and "not small" in big.caveats[0]
    tie = th.predict_times(Stats.scalar_toy(1.0, 1.0, 0.0), 0.04, [1e-17, 1e-17])
    assert not tie.valid and np.isnan(tie.ratio)
    with pytest.raises(ValueError):
        th.predict_times(st, 0.04, [1e-17])
    with pytest.raises(ValueError):
        th.predict_times(st, 0.04, [1e-17, 1e-17], method="rk4")
    with pytest.raises(ValueError):
        th.predict_times(st, -1.0, [1e-17, 1e-17])
    d = th.predict_times(st, 0.04, [1e-17, 1e-17]).to_dict()
    assert d["first"] == "A" and d["ratio"] > 1


def test_predict_times_gradient_flow_limit_of_gradient_descent():
    # As η -> 0 the gradient-descent prediction (in units of τ) tends to the flow prediction.
    st = Stats.scalar_toy(2.0, 1.0, -0.6)
    gf = th.predict_times(st, 1.0, [1e-10, 1e-10], method="gf")
    prev = None
    for eta in (0.04, 0.01, 0.0025):
        gd = th.predict_times(st, eta, [1e-10, 1e-10])
        err = abs(gd.ratio - gf.ratio)
        if prev is not None:
            assert err < 0.4 * prev  # first order: error quarters... at least shrinks ~ η
        prev = err
    assert prev / gf.ratio < 0.01


def test_log_init_sensitivity():
    st = Stats.scalar_toy(2.0, 1.0, -0.7)  # Σ_yxB < 0: χ = −1
    r = th.roles(st)
    assert r.chi == -1
    gf = th.log_init_sensitivity(st, 0.04, "gf")
    na, nb, nbt = (np.linalg.norm(v) for v in (r.s_a, r.s_b, r.s_b_tilde))
    assert gf["t_A"] == pytest.approx(25 / na)
    assert gf["t_B - t_A"] == pytest.approx(25 * (1 + nb / na) / nbt)
    gd = th.log_init_sensitivity(st, 0.04)
    assert gd["t_A"] == pytest.approx(1 / np.log1p(0.04 * na))
    for bad in (dict(lr=0.0), dict(lr=0.04, method="x")):
        with pytest.raises(ValueError):
            th.log_init_sensitivity(st, **bad)
    with pytest.raises(ValueError, match="no unimodal phase"):
        th.log_init_sensitivity(Stats.scalar_toy(1.0, 1.0, 0.2), 0.04)


def test_degenerate_targets():
    # A learned first (‖Σ_yxA‖ = 2.7 > 1) although its final weight is zero: mis-attribution
    # relative to a zero final value is undefined.
    st = Stats.scalar_toy(3.0, 1.0, 0.9, w_a=0.0, w_b=1.0)
    assert th.learning_order(st)[0] == 0
    mis = th.misattribution(st)
    assert np.isnan(mis.value) and not mis.valid
    with pytest.raises(ValueError, match="vanishes"):
        th.phase_directions(Stats.from_teacher(np.eye(2), [0.0, 0.0], (1, 1)))


def test_overlapping_phases_are_flagged():
    st = Stats.scalar_toy(1.05, 1.0, 0.0)
    p = th.predict_times(st, 0.04, [1e-3, 1e-3])
    assert not p.valid and any("overlap" in c for c in p.caveats)


def test_prediction_value():
    p = th.Prediction(float("inf"), True, ("never",))
    assert float(p) == np.inf
    assert p.to_dict() == {"value": "inf", "valid": True, "caveats": ["never"]}
    assert th.Prediction(2.5).to_dict()["value"] == 2.5
