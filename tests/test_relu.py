"""Two-layer ReLU fusion networks on a linear task: exact population training, and the
prediction that they learn at half the rate and end at twice the total weight."""
import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import NetworkSpec, Stats, simulate, theory as th
from dlnfusion.compare import measure_unimodal_phase

GRID = [(r, rho) for r in (1.5, 3.0) for rho in (-0.9, 0.0, 0.9)]


@pytest.fixture(scope="module")
def relu_runs():
    spec = NetworkSpec.fusion(2, 2, width=100, activation="relu")
    stats = [Stats.scalar_toy(r, 1.0, rho) for r, rho in GRID]
    traj = simulate(spec, stats, seeds=[0], scale=1e-9, lr=0.04, stop_loss=1e-8,
                    levels=(0.5, 1.0))
    return spec, stats, traj


def test_total_weight_ends_at_twice_the_linear_solution(relu_runs):
    """Paired units make the function linear, ½ V A x (theory/relu.py): V A → 2 W*. The runs
    stop at loss 1e-8, i.e. |W − W*| ~ 1e-4 relative (the loss is quadratic in it)."""
    _, stats, traj = relu_runs
    assert set(traj.status_names().ravel()) == {"converged"}
    for c, st in enumerate(stats):
        W = np.concatenate([m[c, 0] for m in traj.final_maps], axis=1)
        np.testing.assert_allclose(W, th.relu.RELU_WEIGHT_FACTOR * st.global_solution(), rtol=1e-3)


def test_relu_time_ratio_prediction(relu_runs):
    """theory.predict_times_relu from each run's weights: exact at ρ = 0 up to the crossing
    interpolation, and off by the nonlinearity of A's function while B grows elsewhere
    (measured max 1.05 % over Figure 3c's grid, 0.06 % median)."""
    spec, stats, traj = relu_runs
    m = measure_unimodal_phase(traj, level=1.0)
    lin = NetworkSpec.fusion(2, 2, width=100)
    for c, ((r, rho), st) in enumerate(zip(GRID, stats)):
        w0 = th.effective_init(lin, traj[c].initial_params, th.phase_directions(st))[0]
        pred = th.predict_times_relu(st, 0.04, w0)
        assert abs(pred.ratio / m.time_ratio[c, 0] - 1) < (1e-3 if rho == 0 else 0.012)
        # The first transition is the linear one at half the rate from half the mode value.
        assert pred.t_A == pytest.approx(m.t_A[c, 0], rel=1e-3)


def test_relu_learns_about_twice_slower(relu_runs):
    """The slow-down t_A(ReLU)/t_A(linear) at η = 0.04 from the same weights: roughly
    [ln(2/x0)/ln(1 + ηs/2)]/[ln(1/x0)/ln(1 + ηs)] (theory.relu), 1.9 to 2.05 on this grid
    rather than 2 (gradient descent rates, and the halved initial mode); predicted to the
    interpolation of the crossings (measured 4e-4)."""
    spec, stats, traj = relu_runs
    lin = NetworkSpec.fusion(2, 2, width=100)
    same_weights = traj.reshape(len(stats)).initial_params      # the ReLU runs' start
    ta_lin = measure_unimodal_phase(dln.train(lin, stats, same_weights, lr=0.04,
                                              stop_loss=1e-8)).t_A
    ta_relu = measure_unimodal_phase(traj, level=1.0).t_A[:, 0]
    for c, st in enumerate(stats):
        w0 = th.effective_init(lin, traj[c].initial_params, th.phase_directions(st))[0]
        factor = th.predict_times_relu(st, 0.04, w0).t_A / th.predict_times(st, 0.04, w0).t_A
        assert 1.85 < factor < 2.1
        assert ta_relu[c] / ta_lin[c] == pytest.approx(factor, rel=1e-3)


def test_population_relu_needs_two_layers_and_the_squared_loss():
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="two-layer ReLU"):
        simulate(NetworkSpec.fusion(3, 2, width=4, activation="relu"), st, steps=2)
    with pytest.raises(ValueError, match="two-layer ReLU"):
        simulate(NetworkSpec.fusion(2, 2, width=4, activation="tanh"), st, steps=2)
    with pytest.raises(ValueError, match="two-layer ReLU"):
        simulate(NetworkSpec.fusion(2, 2, width=4, activation="relu"), st, steps=2,
                 loss="logistic")


def test_early_fusion_relu_population_matches_samples():
    """The kernel objective (early fusion, vector inputs) trains like full-batch gradient
    descent on a large sample: the two losses differ by the sampling error of the moments
    (O(1/√P), ~0.3 % at P = 200,000) and the trajectories stay within it."""
    st = Stats.from_teacher(np.diag([1.0, 2.0, 0.5]), [1.0, -0.5, 2.0], dims=(2, 1))
    spec = NetworkSpec.fusion(2, 1, width=8, input_dims=(2, 1), activation="relu")
    p0 = dln.init_batch(spec, [0], "normal", 0.3)
    kw = dict(lr=0.05, steps=300, record_every=30, stop_loss=None)
    pop = dln.train(spec, st, p0, **kw)
    smp = dln.train(spec, st.sample(200_000, seed=2), p0, **kw)
    assert pop.loss[0, -1] < 0.2 * pop.loss[0, 0]
    # Absolute: the moments' sampling error scales with the loss's own size at the start
    # (measured max difference 1.4e-3 against an initial loss of 1.9).
    np.testing.assert_allclose(pop.loss[0], smp.loss[0], rtol=0, atol=2e-3 * pop.loss[0, 0])


def test_early_fusion_relu_times_predicted():
    """theory.predict_times_early (linear) and predict_times_early_relu (the linear network at
    η/2 from w0/2) against population runs from the same weights, with A or B first and
    correlated modalities. Linear: the balanced rank-one model neglects only the O(w0) parts
    of the weights (measured 1e-11). ReLU: the neglected imbalance of positive and negative
    units delays the half-way point by ln[(P + N)/(2√(PN))]/(2 ln(1 + ηs/2)) steps
    (theory.relu; measured ≤ 1.8e-3). The final total weights are 2W* (stop at loss 1e-8:
    |W − W*| ≤ √(2e-8/λ_min(Σ)) ≈ 2e-4 relative)."""
    grid = [Stats.scalar_toy(1.5, 1.0, 0.5), Stats.scalar_toy(1.0, 2.0, 0.0)]
    relu = NetworkSpec.fusion(2, 1, width=100, activation="relu")
    lin = NetworkSpec.fusion(2, 1, width=100)
    traj = simulate(relu, grid, seeds=[0], scale=1e-9, lr=0.04, stop_loss=1e-8,
                    levels=(0.5, 1.0))
    traj_lin = dln.train(lin, grid, traj.reshape(len(grid)).initial_params, lr=0.04,
                         stop_loss=1e-8)
    assert set(traj.status_names().ravel()) | set(traj_lin.status_names()) == {"converged"}
    for c, st in enumerate(grid):
        w0 = th.effective_init_early(lin, traj[c].initial_params, st)[0]
        cases = ((th.predict_times_early(st, 0.04, w0), traj_lin[c], 0.5, 1e-8),
                 (th.relu.predict_times_early_relu(st, 0.04, w0), traj[c, 0], 1.0, 5e-3))
        for pred, tr, level, rtol in cases:
            assert pred.valid
            by_name = {pred.first: pred.t_A, pred.second: pred.t_B}
            for m, n in enumerate(st.names):
                assert by_name[n] == pytest.approx(float(tr.crossing(m, "global", level)), rel=rtol)
        W = np.concatenate([m[c, 0] for m in traj.final_maps], axis=1)
        np.testing.assert_allclose(W, th.relu.RELU_WEIGHT_FACTOR * st.global_solution(), rtol=1e-3)
    # B is learned first where σ_B > σ_A.
    assert th.predict_times_early(grid[1], 0.04, 5e-17).first == "B"


@pytest.mark.parametrize("fusion_layer", [1, 2])
def test_relu_and_linear_times_composes_the_closed_forms(fusion_layer):
    """theory.relu.relu_and_linear_times: late fusion predict_times and predict_times_relu from
    effective_init, early fusion predict_times_early and predict_times_early_relu from
    effective_init_early, of the same initial weights."""
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    spec = NetworkSpec.fusion(2, fusion_layer, width=30)
    params = dln.init_batch(spec, [3], "normal", 1e-9)
    got = th.relu.relu_and_linear_times(st, 0.04, spec, params)
    if fusion_layer == 2:
        w0 = th.effective_init(spec, params, th.phase_directions(st))[0]
        want = (th.predict_times(st, 0.04, w0), th.predict_times_relu(st, 0.04, w0))
    else:
        w0 = th.effective_init_early(spec, params, st)[0]
        want = (th.predict_times_early(st, 0.04, w0), th.relu.predict_times_early_relu(st, 0.04, w0))
    np.testing.assert_array_equal(got["w0"], np.atleast_1d(w0))
    for pred, ref in zip((got["linear"], got["relu"]), want):
        assert (pred.t_A, pred.t_B, pred.first, pred.valid) == (ref.t_A, ref.t_B, ref.first,
                                                                 ref.valid)
    # The ReLU network: the linear one at half the rate from half the mode, about 2x slower.
    assert 1.9 < got["relu"].t_A / got["linear"].t_A < 2.1
    with pytest.raises(ValueError, match="two-layer"):
        th.relu.relu_and_linear_times(st, 0.04, NetworkSpec.fusion(3, 2, width=4), params)
