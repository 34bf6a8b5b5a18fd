import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import NetworkSpec, Stats, init_batch, reduced as rd, simulate, train
from dlnfusion.compare import measure_unimodal_phase, predict_unimodal_phase


def _loss_and_grad(spec, stats, params):
    def loss(p):
        W = jnp.concatenate(dln.total_maps(spec, p), axis=1)
        return 0.5 * jnp.trace(stats.sigma_yy - 2 * W @ stats.sigma_yx.T + W @ stats.sigma @ W.T)
    return loss(params), jax.grad(loss)(params)


@pytest.mark.parametrize("L, Lf, dims", [(4, 1, (1, 1)), (4, 2, (1, 1)), (4, 3, (1, 1)),
                                         (4, 4, (1, 1)), (3, 2, (2, 1)), (5, 3, (1, 1))])
def test_reduction_keeps_total_maps_and_initial_gradient(L, Lf, dims):
    spec = NetworkSpec.fusion(L, Lf, width=30, input_dims=dims)
    st = Stats.random(dim=sum(dims), seed=0, dims=dims)
    p = dln.init_params(spec, jax.random.PRNGKey(3), "frobenius", 0.5)
    rspec, rp = rd.reduce_network(spec, p)
    assert all(w <= sum(dims) + 1 for c in rspec.branch_dims for w in c[1:])
    for a, b in zip(dln.total_maps(spec, p), dln.total_maps(rspec, rp)):
        assert np.allclose(a, b, rtol=1e-10, atol=1e-16)
    l_full, _ = _loss_and_grad(spec, st, p)
    l_red, _ = _loss_and_grad(rspec, st, rp)
    assert float(l_full) == pytest.approx(float(l_red), rel=1e-12)
    # One gradient step: the new total map is the product of the W_l − ηG_l. Every update
    # G_l = Σ b fᵀ has its vectors in the signal subspaces, and a bilinear form aᵀ W b with a,
    # b in the subspaces is kept by the projection; aᵀ W W' b is not. So a term of the
    # expanded product differs between the full and the reduced network only when two updates
    # are separated by two or more un-updated hidden matrices:
    #   L = 3: no such term, the one-step maps agree to round-off at every η;
    #   L = 4: only G_4 W_3 W_2 G_1: the difference D(η) is exactly c2 η²;
    #   L = 5: terms with two and three updates: D(η) = c2 η² + c3 η³ exactly.
    # Learning rates 0.32, 0.16, 0.08 at init scale 0.5 put |D| at 1e-11..1e-8, far above the
    # float64 round-off of the maps (~1e-18).
    lrs = np.array([0.32, 0.16, 0.08])  # one run per learning rate, same weights
    pb = jax.tree_util.tree_map(lambda a: np.repeat(np.asarray(a)[None], lrs.size, 0), p)
    rspec_b, rpb = rd.reduce_network(spec, pb)
    full = train(spec, st, pb, lr=lrs, steps=1, record_every=1, stop_loss=None)
    red = train(rspec_b, st, rpb, lr=lrs, steps=1, record_every=1, stop_loss=None)
    maps0 = dln.total_maps(spec, p)
    D, scale = [], []
    for i in range(lrs.size):
        change = sum(np.sum(np.abs(f[i] - np.asarray(m))) for f, m in zip(full.final_maps, maps0))
        d = np.concatenate([np.ravel(a[i] - b[i]) for a, b in zip(full.final_maps,
                                                                   red.final_maps)])
        assert np.sum(np.abs(d)) <= 1e-3 * change  # first order in η agrees
        D.append(d)
        scale.append(np.linalg.norm(np.concatenate([np.ravel(f[i]) for f in full.final_maps])))
    nrm = np.linalg.norm
    eps = np.finfo(float).eps
    if L == 3:
        # Measured |D| ≤ 8e-18 against |W_tot| ≈ 6e-3, i.e. a few ulps.
        assert all(nrm(d) <= 100 * eps * s for d, s in zip(D, scale))
        return
    e1, e2 = D[0] - 4 * D[1], D[1] - 4 * D[2]
    if L == 4:
        # D(η) = 4 D(η/2) up to round-off (measured |e1|/|D| ≤ 2.3e-9).
        assert nrm(e1) <= 1e-7 * nrm(D[0])
    else:
        # The η³ term makes D(η)/D(η/2) = 4(1 + O(η)): measured |e1|/|D| = 2.7e-5 at η = 0.32,
        # and, with no η⁴ term, e1 = c3η³/2 = 8 e2 up to the round-off of e2 (measured 7e-4).
        assert nrm(e1) <= 1e-3 * nrm(D[0])
        assert nrm(e1 - 8 * e2) <= 0.01 * nrm(e1)


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
    rspec, rp = rd.reduce_network(spec, p)
    # Late-fusion branches span 2 directions per hidden space; the third unit is padding.
    W2 = np.asarray(rp.branches[0][1][0])
    assert np.allclose(W2[2], 0) and np.allclose(W2[:, 2], 0)
    traj = train(rspec, st, rp, steps=500, record_every=500, stop_loss=None)
    W2 = np.asarray(traj.final_params.branches[0][1][0])
    assert np.allclose(W2[2], 0) and np.allclose(W2[:, 2], 0)


@pytest.mark.parametrize("Lf, rho", [(1, -0.9), (2, -0.9), (2, 0.45), (3, -0.675), (3, 0.9),
                                     (4, 0.45)])
def test_prediction_matches_width_100_simulation(Lf, rho):
    """Figure 6 settings: random init u0 = 0.1, width 100, η = 0.04 (sign flip at ρ < −0.5)."""
    st = Stats.scalar_toy(2.0, 1.0, rho)
    spec = NetworkSpec.fusion(4, Lf, width=100)
    traj = simulate(spec, st, seeds=[0], scheme="frobenius", scale=0.1, steps=100_000)
    m = measure_unimodal_phase(traj)
    pred, _ = predict_unimodal_phase(spec, st, traj.initial_params, 0.04, steps=100_000)
    assert pred.time_ratio[0] == pytest.approx(m.time_ratio[0], rel=0.01)
    assert pred.t_A[0] == pytest.approx(m.t_A[0], rel=0.01)


def test_prediction_errors():
    spec = NetworkSpec.fusion(3, 2, width=10, activation="relu")
    p = init_batch(spec, [0], "normal", 0.1)
    with pytest.raises(ValueError, match="linear"):
        predict_unimodal_phase(spec, Stats.scalar_toy(), p, 0.04)
    lin = NetworkSpec.fusion(3, 2, width=10)
    p = init_batch(lin, [0, 1], "normal", 0.1)
    with pytest.raises(ValueError, match="2 runs"):
        predict_unimodal_phase(lin, [Stats.scalar_toy()] * 3, p, 0.04)
