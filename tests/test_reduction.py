import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import NetworkSpec, Stats, init_batch, simulate, theory as th, train
from dlnfusion.compare import measure_unimodal_phase, predict_unimodal_phase


def _loss_and_grad(spec, stats, params):
    def loss(p):
        W = jnp.concatenate(dln.total_maps(spec, p), axis=1)
        return 0.5 * jnp.trace(stats.sigma_yy - 2 * W @ stats.sigma_yx.T + W @ stats.sigma @ W.T)
    return loss(params), jax.grad(loss)(params)


@pytest.mark.parametrize("L, Lf, dims", [(4, 1, (1, 1)), (4, 2, (1, 1)), (4, 3, (1, 1)),
                                         (4, 4, (1, 1)), (3, 2, (2, 1))])
def test_reduction_keeps_total_maps_and_initial_gradient(L, Lf, dims):
    spec = NetworkSpec.fusion(L, Lf, width=30, input_dims=dims)
    st = Stats.random(dim=sum(dims), seed=0, dims=dims)
    p = dln.init_params(spec, jax.random.PRNGKey(3), "frobenius", 0.5)
    rspec, rp = th.reduce_network(spec, p)
    assert all(w <= sum(dims) + 1 for c in rspec.branch_dims for w in c[1:])
    for a, b in zip(dln.total_maps(spec, p), dln.total_maps(rspec, rp)):
        assert np.allclose(a, b, rtol=1e-10, atol=1e-16)
    l_full, _ = _loss_and_grad(spec, st, p)
    l_red, _ = _loss_and_grad(rspec, st, rp)
    assert float(l_full) == pytest.approx(float(l_red), rel=1e-12)
    # One gradient step changes the total maps identically to first order in the learning
    # rate: the reduced gradient is the projected full gradient, and what differs (products
    # of two updates with the bulk in between) is O(η²).
    pb = jax.tree_util.tree_map(lambda a: a[None], p)
    rspec_b, rpb = th.reduce_network(spec, pb)
    diffs = []
    for lr in (0.01, 0.005):
        full = train(spec, st, pb, lr=lr, max_steps=1, stride=1, stop_loss=None)
        red = train(rspec_b, st, rpb, lr=lr, max_steps=1, stride=1, stop_loss=None)
        change = sum(np.sum(np.abs(np.asarray(f)[0] - np.asarray(m)))
                     for f, m in zip(full.final_maps, dln.total_maps(spec, p)))
        diff = sum(np.sum(np.abs(a - b)) for a, b in zip(full.final_maps, red.final_maps))
        assert diff <= 1e-3 * change
        diffs.append(diff)
    if diffs[1] > 1e-15:
        assert 3.0 < diffs[0] / diffs[1] < 5.0


def test_reduction_is_exact_for_two_layer_networks():
    st = Stats.scalar_toy(2.0, 1.0, -0.6)
    spec = NetworkSpec.fusion(2, 2, width=100)
    traj = simulate(spec, st, seeds=[0, 1], stop_loss=1e-6)
    pred, rt = predict_unimodal_phase(spec, st, traj.initial_params, 0.04, stop_loss=1e-6)
    m = measure_unimodal_phase(traj)
    assert np.allclose(pred.time_ratio, m.time_ratio, rtol=1e-8)
    assert rt.spec.branch_dims == ((1, 3, 1), (1, 3, 1))


def test_zero_padding_units_stay_zero():
    spec = NetworkSpec.fusion(4, 4, width=20)
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    p = init_batch(spec, [0], "frobenius", 0.1)
    rspec, rp = th.reduce_network(spec, p)
    # Late-fusion branches span 2 directions per hidden space; the third unit is padding.
    W2 = np.asarray(rp.branches[0][1][0])
    assert np.allclose(W2[2], 0) and np.allclose(W2[:, 2], 0)
    traj = train(rspec, st, rp, max_steps=500, stride=500, stop_loss=None)
    W2 = np.asarray(traj.final_params.branches[0][1][0])
    assert np.allclose(W2[2], 0) and np.allclose(W2[:, 2], 0)


@pytest.mark.parametrize("Lf, rho", [(1, -0.9), (2, -0.9), (2, 0.45), (3, -0.675), (3, 0.9),
                                     (4, 0.45)])
def test_prediction_matches_width_100_simulation(Lf, rho):
    """Figure 6 settings: random init u0 = 0.1, width 100, η = 0.04 (sign flip at ρ < −0.5)."""
    st = Stats.scalar_toy(2.0, 1.0, rho)
    spec = NetworkSpec.fusion(4, Lf, width=100)
    traj = simulate(spec, st, seeds=[0], scheme="frobenius", scale=0.1, max_steps=100_000)
    m = measure_unimodal_phase(traj)
    pred, _ = predict_unimodal_phase(spec, st, traj.initial_params, 0.04, max_steps=100_000)
    assert pred.time_ratio[0] == pytest.approx(m.time_ratio[0], rel=0.01)
    assert pred.t_a[0] == pytest.approx(m.t_a[0], rel=0.01)


def test_prediction_errors():
    spec = NetworkSpec.fusion(3, 2, width=10, activation="relu")
    p = init_batch(spec, [0], "normal", 0.1)
    with pytest.raises(ValueError, match="linear"):
        predict_unimodal_phase(spec, Stats.scalar_toy(), p, 0.04)
    lin = NetworkSpec.fusion(3, 2, width=10)
    p = init_batch(lin, [0, 1], "normal", 0.1)
    with pytest.raises(ValueError, match="2 runs"):
        predict_unimodal_phase(lin, [Stats.scalar_toy()] * 3, p, 0.04)
