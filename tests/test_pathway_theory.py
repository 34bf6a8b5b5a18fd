"""Multi-pathway deep linear networks (dlnfusion.theory.pathways and
dlnfusion.reduced.pathways, Kleinman et al. 2023).

(a) the reduced gradient-descent map against full-matrix gradient descent (jax.grad) on the
8-item hierarchical task; (b) the piecewise gradient-flow closed forms against the numerical
flow; (c) gradient descent → gradient flow at first order in η; (d) the small-initialization
split for D ≥ 3 against the reduced flow; the spec's critical-period setting; (e) the
conservation laws; (f) every error path.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlnfusion import reduced as rd
from dlnfusion import theory as th
from conftest import compilations

S_HIER = np.sqrt([15.0, 7.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0])


def _hierarchical_task():
    """X = I₈ and Y (8 × 15): 1 root feature, 2 halves, 4 quarters, 8 leaves."""
    Y = np.zeros((8, 15))
    for i in range(8):
        Y[i, 0] = 1.0
        Y[i, 1 + i // 4] = 1.0
        Y[i, 3 + i // 2] = 1.0
        Y[i, 7 + i] = 1.0
    return Y


def _svd():
    Y = _hierarchical_task()
    U, S, Vt = np.linalg.svd(Y.T, full_matrices=False)    # Σ_yx = YᵀX = Yᵀ (sum convention)
    return Y, U, S, Vt.T


def test_hierarchical_singular_values():
    _, U, S, V = _svd()
    # Exact values √15, √7, √3, √3, 1, 1, 1, 1 up to LAPACK rounding (~1e-15).
    np.testing.assert_allclose(S, S_HIER, rtol=1e-13)
    np.testing.assert_allclose(U.T @ U, np.eye(8), atol=1e-13)


# ------------------------------------------------------------------ (a) full-matrix GD
@pytest.fixture(scope="module")
def full_network():
    """Full-batch gradient descent of two pathways 8 → 20 → … → 15 (D matrices each), with
    jax.grad of ½‖Yᵀ − Ω_a − Ω_b‖²_F, one compiled loop per depth; gates and lesion
    projections are data."""
    Y, U, S, V = _svd()
    T = jnp.asarray(Y.T)
    cache = {}

    def loss(params):
        total = 0.0
        for ws in params:
            om = ws[0]
            for w in ws[1:]:
                om = w @ om
            total = total + om
        return 0.5 * jnp.sum((T - total) ** 2)

    grad = jax.grad(loss)

    def compiled(D, lr, steps):
        key = (D, lr, steps)
        if key not in cache:
            def run(params, windows, proj):
                def step(n, params):
                    g = grad(params)
                    new = []
                    for q in range(2):
                        frozen = (n >= windows[q, 0]) & (n < windows[q, 1])
                        ws = [jnp.where(frozen, w, w - lr * dw) for w, dw in zip(params[q], g[q])]
                        ws[0] = ws[0] @ proj[q]        # lesion: first layer ⟂ v_α
                        new.append(ws)
                    return new
                return jax.lax.fori_loop(0, steps, step, params)
            cache[key] = jax.jit(run)
        return cache[key]

    def simulate(D, p0, lr, steps, gate=None, lesion=None):
        rng = np.random.default_rng(D)
        params, proj = [], np.stack([np.eye(8)] * 2)
        if lesion is not None:
            v = V[:, lesion[1]]
            proj[lesion[0]] = np.eye(8) - np.outer(v, v)
        for q in range(2):
            Rs = [np.linalg.qr(rng.normal(size=(20, 8)))[0] for _ in range(D - 1)]
            bases = [V] + Rs + [U]
            ws = [bases[i + 1] @ np.diag(p0[q]) @ bases[i].T for i in range(D)]
            ws[0] = ws[0] @ proj[q]
            params.append([jnp.asarray(w) for w in ws])
        windows = np.zeros((2, 2))
        if gate is not None:
            windows[gate[0]] = gate[1:]
        out = compiled(D, lr, steps)(params, jnp.asarray(windows), jnp.asarray(proj))
        K, off = [], 0.0
        for ws in out:
            om = np.asarray(ws[0])
            for w in ws[1:]:
                om = np.asarray(w) @ om
            m = U.T @ om @ V
            K.append(np.diag(m))
            off = max(off, float(np.max(np.abs(m - np.diag(np.diag(m))))))
        return np.array(K), off

    return simulate


@pytest.mark.parametrize("D", [1, 2, 3, 4])
def test_gd_map_matches_full_matrix_gradient_descent(full_network, D):
    lr, steps = 0.01, 1000
    base = 0.01 ** (1.0 / D)
    ramp = np.arange(8) / 8.0
    p0 = np.array([base * (1 + 0.05 * ramp), base * (1.1 - 0.04 * ramp)])
    cases = [(None, None), ((1, 0, 150), None), ((1, 400, 550), (0, 0))]
    for gate, lesion in cases:
        K, off = full_network(D, p0, lr, steps, gate, lesion)
        lesions = [(lesion[0], lesion[1], 0, np.inf)] if lesion else []
        red = rd.reduced_pathways(S_HIER, p0, (D, D), lr, steps, gates=[gate] if gate else [],
                                  lesions=lesions).K[-1]
        live = red != 0
        # float64 rounding over 1000 steps in two orders of operations: measured ≤ 5e-14
        # relative (D = 1..4, with gate and lesion); 1e-12 leaves a factor 20.
        np.testing.assert_allclose(K[live], red[live], rtol=1e-12, atol=0)
        # The lesioned mode: exactly 0 in the reduced map, rounding (≤ 2e-17) in the network.
        assert np.all(np.abs(K[~live]) <= 1e-15)
        assert (~live).sum() == (1 if lesion else 0)
        # Alignment is kept: off-diagonal mode couplings at rounding level (measured ≤ 3e-14).
        assert off <= 1e-12


def test_gd_map_compiles_once_for_every_value():
    """The gradient-descent map is one compiled loop: new gates, initial strengths and learning
    rates of the same shapes compile nothing (its speed is measured by the benchmarks)."""
    p0 = 0.01 ** 0.5
    rd.reduced_pathways(S_HIER, p0, (2, 2), 0.01, 1000, gates=[(1, 0, 150)])
    before = compilations()
    for p, lr, gate in ((p0, 0.01, (1, 0, 150)), (p0, 0.01, (1, 20, 300)),
                        (2 * p0, 0.02, (0, 5, 50))):
        rd.reduced_pathways(S_HIER, p, (2, 2), lr, 1000, gates=[gate])
    assert compilations() == before


def test_gd_records_and_lesion_windows():
    r = rd.reduced_pathways([2.0, 1.0], 0.3, (2, 1), 0.05, 25, record_every=10,
                            lesions=[(0, 1, 5, 12), (1, 0, 3, 7)])
    np.testing.assert_array_equal(r.time, [0, 10, 20, 25])
    assert r.K.shape == r.p.shape == (4, 2, 2)
    full = rd.reduced_pathways([2.0, 1.0], 0.3, (2, 1), 0.05, 25,
                               lesions=[(0, 1, 5, 12), (1, 0, 3, 7)])
    np.testing.assert_array_equal(full.K[[0, 10, 20, 25]], r.K)
    # D = 2: p = 0 is a fixed point, the lesioned mode stays at zero after the window;
    # D = 1 recovers after its window.
    assert np.all(full.p[5:, 0, 1] == 0) and np.all(full.p[:5, 0, 1] > 0)
    assert np.all(full.p[3:7, 1, 0] == 0) and full.p[7, 1, 0] != 0 and full.p[2, 1, 0] != 0


# --------------------------------------------------------- (b) closed forms vs the flow
GATES = [(1, 50, 200), (0, 300, 420), (1, 600, 650)]
S4 = np.sqrt([15.0, 7.0, 3.0, 1.0])


@pytest.mark.parametrize("D", [1, 2, 3])
def test_closed_forms_match_numerical_flow_through_windows(D):
    lr = 0.01
    p0 = np.array([[0.22, 0.3, 0.15, 0.4], [0.3, 0.12, 0.25, 0.35]])
    if D == 1:
        p0 = p0 - 0.2        # K = p can be negative for D = 1
    times = np.arange(0, 801, 50.0)
    cf = th.pathways_closed_form(S4, p0, D, lr, times, gates=GATES)
    gf = rd.reduced_pathways(S4, p0, (D, D), lr, 800, gates=GATES, method="gf",
                             record_every=50)
    np.testing.assert_array_equal(gf.time, times)
    # LSODA at rtol 1e-12 against the closed forms (D = 3: quadratures at 1e-13): measured
    # ≤ 4e-11 relative; 1e-8 leaves the margin of the integrator's global error growth.
    # atol: D = 1 entries that cross zero (K = p < 0 at start).
    scale = np.max(np.abs(cf))
    np.testing.assert_allclose(cf, gf.K, rtol=1e-8, atol=1e-10 * scale)


def test_predicted_split_fields_and_permanent_gate():
    lr = 0.01
    for D in (1, 2, 3):
        p0 = 0.01 ** (1.0 / D)
        pr = th.predicted_split(S4, p0, D, lr, 0, 150, 1000)
        cf = th.pathways_closed_form(S4, p0, D, lr, [1000.0], gates=[(1, 0, 150)])[0]
        np.testing.assert_allclose([pr.K_a, pr.K_b], cf, rtol=1e-13)
        # the limit lies on the solution line and equals split_limit of the state at 1000
        np.testing.assert_allclose(pr.K_a_inf + pr.K_b_inf, S4, rtol=1e-13)
        lim = th.pathways.split_limit(pr.K_a, pr.K_b, S4, D)
        np.testing.assert_allclose(lim, [pr.K_a_inf, pr.K_b_inf], rtol=1e-9)
        # gating pathway a instead mirrors the result
        pa = th.predicted_split(S4, p0, D, lr, 0, 150, 1000, gated=0)
        np.testing.assert_allclose([pa.K_b, pa.K_a], [pr.K_a, pr.K_b], rtol=1e-13)
        # a permanent gate: the gated pathway keeps its K at the gate's start, the other
        # takes the rest
        perm = th.predicted_split(S4, p0, D, lr, 0, np.inf, 10)
        np.testing.assert_allclose(perm.K_b_inf, p0 ** D, rtol=1e-14)
        np.testing.assert_allclose(perm.K_a_inf, S4 - p0 ** D, rtol=1e-14)


# ------------------------------------------------------------------ (c) η → 0
@pytest.mark.parametrize("D", [1, 2, 3])
def test_gradient_descent_converges_to_flow_at_first_order(D):
    """At fixed ηt (windows fixed in ηt too) the GD map's error against the flow halves with η."""
    p0 = 0.05 if D == 1 else np.array([[0.3] * 8, [0.25] * 8])
    errs = []
    for lr in (0.02, 0.01, 0.005):
        n = int(round(6.0 / lr))
        gates = [(1, round(1.0 / lr), round(2.5 / lr)), (0, round(3.0 / lr), round(3.5 / lr))]
        every = int(round(0.5 / lr))
        gd = rd.reduced_pathways(S_HIER, p0, (D, D), lr, n, gates=gates, record_every=every)
        gf = rd.reduced_pathways(S_HIER, p0, (D, D), lr, n, gates=gates, method="gf",
                                 record_every=every)
        errs.append(np.max(np.abs(gd.K - gf.K) / np.abs(gf.K)))
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    # First order: ratio → 2. Measured 2.02, 2.01 (D = 1, 2) and 1.89, 1.94 (D = 3, whose sharp
    # escape has a larger O(η²) remainder); [1.8, 2.2] fails for order 0.5 or 2.
    assert all(1.8 <= r <= 2.2 for r in ratios), (errs, ratios)
    # and the error is small in absolute terms: measured 1.1e-2, 1.4e-2, 9.7e-2 at η = 0.02
    assert errs[0] < {1: 0.015, 2: 0.02, 3: 0.12}[D]


# ---------------------------------------- (d) small initialization and the spec setting
def _gf_limit(s, p0, D, lr, t0, T, t_esc_slowest):
    """The reduced flow (method "gf") run until every mode has escaped and settled: 2 t_esc of
    the slowest mode after the gate (doubling it changes K by < 2e-10 of s, measured)."""
    steps = int(np.ceil(t0 + T + 2 * t_esc_slowest))
    return rd.reduced_pathways(s, p0, (D, D), lr, steps, gates=[(1, t0, t0 + T)], method="gf",
                               record_every=steps).K[-1]


S3 = np.array([np.sqrt(15.0), np.sqrt(3.0), 1.0])


@pytest.mark.parametrize("D", [3, 4])
def test_small_init_split_against_reduced_flow(D):
    """small_init_split vs the reduced flow run to convergence, for gates that start in the
    linear phase (early, long early, mid) or after learning (late)."""
    lr = 0.01
    # max |error|/s over modes, pathways and the four gates; measured:
    #   D = 3: 2.9e-4 (K0 = 1e-3), 9.0e-6 (1e-4), 1.7e-7 (1e-5);
    #   D = 4: 1.3e-4, 2.1e-6, 2.4e-8.
    # The neglected terms vanish with u(t₀) = p^{2−D} → ∞: bounds 3× the measured values,
    # and a drop of ≥ 10× per decade of K0 (measured 32-86×) tests that scaling.
    bounds = {3: (9e-4, 3e-5, 5e-7), 4: (4e-4, 6e-6, 7e-8)}[D]
    errs = []
    for K0 in (1e-3, 1e-4, 1e-5):
        p0 = K0 ** (1.0 / D)
        t_esc = p0 ** (2 - D) / ((D - 2) * lr * S3)      # linear-phase escape time per mode
        worst = 0.0
        for t0, T in ((0.0, 0.5 * t_esc[0]), (0.0, 1.5 * t_esc[0]),
                      (0.3 * t_esc[-1], 0.4 * t_esc[-1]), (1.5 * t_esc[-1], 0.5 * t_esc[-1])):
            approx = np.array(th.pathways.small_init_split(S3, p0, D, lr, t0, T))
            ref = _gf_limit(S3, p0, D, lr, t0, T, t_esc[-1])
            worst = max(worst, float(np.max(np.abs(approx - ref) / S3)))
        errs.append(worst)
    assert all(e <= b for e, b in zip(errs, bounds)), errs
    assert errs[1] < errs[0] / 10 and errs[2] < errs[1] / 10, errs


def test_small_init_split_outside_its_regime():
    """At the spec's initialization (K0 = 0.01, p0 = 0.01^{1/D} not small against s^{1/D}) a gate
    that starts during the escape of the s = 1 modes (t0 = 400) is mispredicted by ~10% of s
    (measured 12%, D = 3; 9.4%, D = 4), while the early gate stays accurate (measured ≤ 0.3%)."""
    lr = 0.01
    for D, bad in ((3, 0.12), (4, 0.094)):
        p0 = 0.01 ** (1.0 / D)
        mid = th.predicted_split(S_HIER, p0, D, lr, 400, 150, 1000)
        approx = np.array(th.pathways.small_init_split(S_HIER, p0, D, lr, 400, 150))
        err = np.max(np.abs(approx - [mid.K_a_inf, mid.K_b_inf]) / S_HIER)
        assert bad * 0.9 < err < bad * 1.1
        early = th.predicted_split(S_HIER, p0, D, lr, 0, 150, 1000)
        approx = np.array(th.pathways.small_init_split(S_HIER, p0, D, lr, 0, 150))
        assert np.max(np.abs(approx - [early.K_a_inf, early.K_b_inf]) / S_HIER) < 5e-3


@pytest.mark.parametrize("D, bound", [(1, 0.01), (2, 0.02), (3, 0.025), (4, 0.03)])
def test_predicted_split_against_gradient_descent_at_spec_settings(D, bound):
    """lr 0.01, 1000 steps, gate length 150 on pathway b, starts 0, 400, 750, K0 = 0.01.

    predicted_split is gradient flow; the GD map differs at O(ηs) (ηs ≤ 0.039 here), most in
    relative terms on the small K of the losing pathway. Max relative error over modes,
    pathways and starts, measured: 0.7% (D = 1), 1.3% (2), 1.7% (3), 1.9% (4); bounds ~1.5×
    that (acceptance floor 5%)."""
    lr, steps = 0.01, 1000
    p0 = 0.01 ** (1.0 / D)
    worst = 0.0
    for t0 in (0, 400, 750):
        pr = th.predicted_split(S_HIER, p0, D, lr, t0, 150, steps)
        gd = rd.reduced_pathways(S_HIER, p0, (D, D), lr, steps, gates=[(1, t0, t0 + 150)]).K[-1]
        worst = max(worst, float(np.max(np.abs(np.array([pr.K_a, pr.K_b]) - gd) / np.abs(gd))))
    assert worst <= bound, worst


@pytest.mark.parametrize("D", [2, 3, 4])
def test_early_gate_is_permanent_late_gate_is_not(D):
    lr = 0.01
    p0 = 0.01 ** (1.0 / D)
    early = rd.reduced_pathways(S_HIER, p0, (D, D), lr, 5000, gates=[(1, 0, 150)],
                                record_every=1000).K
    late = rd.reduced_pathways(S_HIER, p0, (D, D), lr, 5000, gates=[(1, 750, 900)],
                               record_every=1000).K
    # early: the gated pathway holds ≤ 7% of every mode (measured ≤ 6.6%; 0.26% of the top
    # mode), and 4000 more steps change it by < 1e-3 relative (measured ≤ 1e-4): permanent.
    assert np.all(early[1, 1] / S_HIER < 0.07) and early[1, 1, 0] / S_HIER[0] < 0.005
    np.testing.assert_allclose(early[-1], early[1], rtol=1e-3)
    # the prediction says the same for all time
    pr = th.predicted_split(S_HIER, p0, D, lr, 0, 150, 1000)
    assert np.all(pr.K_b_inf / S_HIER < 0.07)
    # late: the split stays at one half (measured |K_b/s − 1/2| ≤ 1e-4)
    np.testing.assert_allclose(late[1, 1] / S_HIER, 0.5, atol=1e-3)


# ------------------------------------------------------------ (e) conservation laws
@pytest.mark.parametrize("D", [1, 2, 3, 4])
def test_conservation_laws_of_the_flow(D):
    lr = 0.01
    p0 = np.array([[0.3, 0.5, 0.2, 0.6], [0.45, 0.25, 0.4, 0.3]])
    gates = [(1, 100, 180)]
    r = rd.reduced_pathways(S4, p0, (D, D), lr, 400, gates=gates, method="gf", record_every=20)
    if D == 1:
        q = r.K[:, 0] - r.K[:, 1]
    elif D == 2:
        q = r.K[:, 0] / r.K[:, 1]
    else:
        q = r.p[:, 0] ** (2 - D) - r.p[:, 1] ** (2 - D)
    before, after = r.time <= 100, r.time >= 180
    # LSODA at rtol 1e-12: drift measured ≤ 4e-12 of the quantity's scale; 1e-9 leaves margin
    scale = np.max(np.abs(q))
    np.testing.assert_allclose(q[before], np.broadcast_to(q[0], q[before].shape),
                               atol=1e-9 * scale, rtol=0)
    np.testing.assert_allclose(q[after], np.broadcast_to(q[after][0], q[after].shape),
                               atol=1e-9 * scale, rtol=0)
    # ... and the gate does change it for the modes still learning at t = 100 (else the test
    # above could not tell a conserved quantity from a constant one)
    assert np.max(np.abs(q[after][0] - q[0])) > 1e-2 * scale


def test_pathway_flow_and_portrait():
    Ka, Kb = np.meshgrid(np.linspace(0, 10, 11), np.linspace(0, 10, 11))
    for D in (1, 2, 3, 4):
        fa, fb = th.pathways.pathway_flow(Ka, Kb, 10.0, D)
        on_line = np.isclose(Ka + Kb, 10.0)
        assert np.all(fa[on_line] == 0) and np.all(fb[on_line] == 0)
        assert np.all(fa[~on_line] * (10.0 - Ka - Kb)[~on_line] >= 0)   # towards the line
        ga, gb = th.pathways.pathway_flow(Ka, Kb, 10.0, D, gated=0)
        assert np.all(ga == 0) and np.array_equal(gb, fb)
    fa, fb = th.pathways.pathway_flow(1.0, 2.0, 10.0, (2, 3))
    assert fa == pytest.approx(2 * 1.0 * 7.0) and fb == pytest.approx(3 * 2.0 ** (4 / 3) * 7.0)
    for D in (2, 3, 4):
        pt = rd.pathway_portrait(D)
        np.testing.assert_allclose(pt.line.sum(axis=1), 10.0)
        # early deficit: winner-take-all; late: the diagonal (measured K_b < 1e-4 of s and
        # |K_a − K_b| < 1e-4 of s)
        assert pt.K_early[-1, 1] < 1e-3 * pt.s and pt.K_early[-1, 0] > 0.999 * pt.s
        assert abs(pt.K_late[-1, 0] - pt.K_late[-1, 1]) < 1e-3 * pt.s
        np.testing.assert_allclose(pt.K_late[-1].sum(), pt.s, rtol=1e-8)
        assert pt.early_gate == (0.0, pt.t_half) and pt.late_gate[0] == 2 * pt.t_half


# ------------------------------------------------------------------ (f) error paths
def test_errors():
    s = S4
    with pytest.raises(ValueError, match=r"depths\[1\] must be a positive integer"):
        rd.reduced_pathways(s, 0.1, (2, 0), 0.01, 10)
    with pytest.raises(ValueError, match=r"depths\[0\] must be a positive integer"):
        rd.reduced_pathways(s, 0.1, (1.5, 2), 0.01, 10)
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        th.pathways_closed_form(s, 0.1, 0, 0.01, [1.0])
    with pytest.raises(ValueError, match="lr must be a non-negative"):
        rd.reduced_pathways(s, 0.1, (2, 2), -0.01, 10)
    with pytest.raises(ValueError, match="lr must be a non-negative"):
        th.predicted_split(s, 0.1, 2, -1.0, 0, 10, 100)
    with pytest.raises(ValueError, match=r"gates\[0\]: window start 10.0 > end 5.0"):
        rd.reduced_pathways(s, 0.1, (2, 2), 0.01, 10, gates=[(0, 10, 5)])
    with pytest.raises(ValueError, match=r"lesions\[1\]: window start 8.0 > end 3.0"):
        rd.reduced_pathways(s, 0.1, (2, 2), 0.01, 10, lesions=[(0, 0, 0, 1), (1, 1, 8, 3)])
    with pytest.raises(ValueError, match=r"lesions\[0\]: lesion mode index 4 beyond the 4 modes"):
        rd.reduced_pathways(s, 0.1, (2, 2), 0.01, 10, lesions=[(0, 4, 0, np.inf)])
    with pytest.raises(ValueError, match=r"gates\[0\]: pathway index 2 out of range for 2"):
        rd.reduced_pathways(s, 0.1, (2, 2), 0.01, 10, gates=[(2, 0, 5)])
    with pytest.raises(ValueError, match=r"lesions\[0\]: pathway index -1 out of range"):
        rd.reduced_pathways(s, 0.1, (2, 2), 0.01, 10, lesions=[(-1, 0, 0, 5)])
    with pytest.raises(ValueError, match=r"gates\[0\]: pathway index 3 out of range"):
        th.pathways_closed_form(s, 0.1, 2, 0.01, [5.0], gates=[(3, 0, 5)])
    with pytest.raises(ValueError, match="gated: pathway index 2 out of range"):
        th.predicted_split(s, 0.1, 2, 0.01, 0, 10, 100, gated=2)
    with pytest.raises(ValueError, match="gated: pathway index 5 out of range"):
        th.pathways.pathway_flow(1.0, 1.0, 2.0, 2, gated=5)
    with pytest.raises(ValueError, match="gate_length must be >= 0"):
        th.predicted_split(s, 0.1, 2, 0.01, 10, -5, 100)
    with pytest.raises(ValueError, match="gate_start must be finite and >= 0"):
        th.pathways.small_init_split(s, 0.1, 3, 0.01, -1, 5)
    with pytest.raises(ValueError, match=r"gates\[0\]: window start must be finite and >= 0"):
        rd.reduced_pathways(s, 0.1, (2, 2), 0.01, 10, gates=[(0, -1, 5)])
    with pytest.raises(ValueError, match="method must be 'gd' or 'gf'"):
        rd.reduced_pathways(s, 0.1, (2, 2), 0.01, 10, method="rk4")
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        rd.reduced_pathways(s, 0.1, (2, 2), 0.01, -3)
    with pytest.raises(ValueError, match="record_every must be a positive integer"):
        rd.reduced_pathways(s, 0.1, (2, 2), 0.01, 10, record_every=0)
    with pytest.raises(ValueError, match=r"init \(p0\) must be a scalar, a \(2,\) array"):
        rd.reduced_pathways(s, np.ones(3), (2, 2), 0.01, 10)
    with pytest.raises(ValueError, match=r"init \(p0\) must be positive for this closed form"):
        th.pathways_closed_form(s, -0.1, 3, 0.01, [1.0])
    with pytest.raises(ValueError, match="s must hold finite non-negative"):
        rd.reduced_pathways([1.0, -2.0], 0.1, (2, 2), 0.01, 10)
    with pytest.raises(ValueError, match="times must be finite and >= 0"):
        th.pathways_closed_form(s, 0.1, 2, 0.01, [-1.0])
    with pytest.raises(ValueError, match="K_a must be >= 0 for depth >= 2"):
        th.pathways.pathway_flow(-1.0, 1.0, 2.0, 2)
    with pytest.raises(ValueError, match="K_a and K_b must be >= 0 for depth >= 2"):
        th.pathways.split_limit(-1.0, 1.0, [2.0], 2)
    with pytest.raises(ValueError, match="K_a and K_b must be > 0 for depth >= 3"):
        th.pathways.split_limit(0.0, 1.0, [2.0], 3)
    with pytest.raises(ValueError, match="depth must be >= 3 for the small-initialization"):
        th.pathways.small_init_split(s, 0.1, 2, 0.01, 0, 10)
    with pytest.raises(ValueError, match="depth must be an integer or a pair"):
        th.pathways.pathway_flow(1.0, 1.0, 2.0, (2, 3, 4))
    with pytest.raises(ValueError, match="p0 is too large"):
        rd.pathway_portrait(2, s=1.0, init=0.9)
