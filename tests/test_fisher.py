"""The information amount Tr F_m (closed form, per-sample gradients, during training), its
mode-solution theory and the prime learning window."""
import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import reduced as rd
from dlnfusion import theory as th
from dlnfusion.rules import fisher_trace, prime_window
from dlnfusion.compare import fisher_observable, fisher_sample_observable, fisher_sampled
from dlnfusion.networks import FusionMLP


def _one(spec, seed=0, scale=0.5):
    p = dln.init_batch(spec, [seed], scale=scale)
    return dln.Params.from_matrices(spec, [W[0] for W in p.matrices()])


def _teacher_samples(stats, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, stats.input_dim)) @ np.linalg.cholesky(stats.sigma).T
    y = x @ stats.global_solution().T
    cols = np.cumsum((0,) + tuple(stats.dims))
    return tuple(x[:, a:b] for a, b in zip(cols[:-1], cols[1:])), y


@pytest.mark.parametrize("depth, fusion_layer", [(2, 2), (3, 2), (3, 1)])
def test_closed_form_against_per_sample_gradients(depth, fusion_layer):
    """Monte Carlo over 2e5 samples: every layer within 5 standard errors of the mean (the
    tolerance is the Monte Carlo error, estimated from the same samples)."""
    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.5)
    spec = dln.NetworkSpec.fusion(depth, fusion_layer, width=6)
    params = _one(spec)
    want = fisher_trace(spec, params, stats, by="layer")
    xs, y = _teacher_samples(stats, 200_000, seed=depth + fusion_layer)
    got, se = fisher_sampled(spec, params, xs, y, by="layer", stderr=True)
    assert np.all(np.abs(got - want) <= 5 * se), (got, want, se)
    # by branch: the sum of each branch's matrices
    br = fisher_trace(spec, params, stats)
    d = spec.branch_depths
    np.testing.assert_allclose(br, [want[:d[0]].sum(), want[d[0]:d[0] + d[1]].sum()], rtol=1e-12)


def test_batch_variant_against_sampled_batches():
    """The mean gradient of batches of 8: the closed form against 40,000 sampled batches."""
    stats = dln.Stats.scalar_toy(2.0, 1.0, -0.3)
    spec = dln.NetworkSpec.fusion(2, 2, width=4)
    params = _one(spec, seed=3)
    want = fisher_trace(spec, params, stats, batch_size=8)
    xs, y = _teacher_samples(stats, 320_000, seed=5)
    got, se = fisher_sampled(spec, params, xs, y, batch_size=8, stderr=True)
    assert np.all(np.abs(got - want) <= 5 * se), (got, want, se)
    # a batch's mean gradient has a smaller squared norm than a single sample's
    assert np.all(want < fisher_trace(spec, params, stats))


def test_vector_modalities_and_noise():
    """Vector modalities, two outputs and label noise (N ≠ 0): Monte Carlo on Stats.sample."""
    stats = dln.Stats.random(dim=4, seed=2)
    spec = dln.NetworkSpec.fusion(2, 2, width=5, input_dims=stats.dims,
                                  output_dim=stats.output_dim)
    params = _one(spec, seed=1, scale=0.3)
    ds = stats.sample(200_000, seed=7)
    got, se = fisher_sampled(spec, params, ds.xs, ds.y, stderr=True)
    want = fisher_trace(spec, params, stats)
    assert np.all(np.abs(got - want) <= 5 * se), (got, want, se)


def test_recorded_in_the_loop_equals_closed_form_on_the_weights():
    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.5)
    spec = dln.NetworkSpec.fusion(2, 2, width=10)
    p = dln.init_batch(spec, [0, 1], scale=1e-3)
    traj = dln.train(spec, stats, p, lr=0.04, steps=200, record_every=50, stop_loss=None,
                     observe={"fisher": fisher_observable(spec=spec)})
    F = traj.records["fisher"]
    assert F.shape == (2, traj.time.size, 2)
    np.testing.assert_allclose(F[:, -1], fisher_trace(spec, traj.final_params, stats),
                               rtol=1e-10)
    np.testing.assert_allclose(F[:, 0], fisher_trace(spec, traj.initial_params, stats),
                               rtol=1e-10)


def test_sample_observable_records_the_sampled_trace():
    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.0)
    spec = dln.NetworkSpec.fusion(2, 2, width=4, activation="relu")
    ds = stats.sample(512, seed=0)
    p = dln.init_batch(spec, [0], scale=0.3)
    traj = dln.train(spec, ds, p, lr=0.02, steps=20, record_every=10, stop_loss=None,
                     observe={"fisher": fisher_sample_observable(spec, ds.xs, ds.y)})
    final = dln.Params.from_matrices(spec, [W[0] for W in traj.final_params.matrices()])
    np.testing.assert_allclose(traj.records["fisher"][0, -1],
                               fisher_sampled(spec, final, ds.xs, ds.y), rtol=1e-9)


def test_classifier_branches_include_their_fusion_block():
    """FusionMLP: branch m = its layers and its block of the fusion layer; by layer every leaf.
    The per-sample value equals the mean of single-sample squared gradient norms."""
    import jax

    model = FusionMLP(input_dims=(3, 2), depth=3, fusion_layer=2, width=4, n_out=3)
    params = model.init(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    xs = (rng.normal(size=(6, 3)), rng.normal(size=(6, 2)))
    y = rng.integers(0, 3, size=6)
    got = fisher_sampled(model, params, xs, y)
    want = np.zeros(2)
    for i in range(6):
        def loss(p):
            logits = model.apply(p, (xs[0][i:i + 1], xs[1][i:i + 1]))
            return -jax.nn.log_softmax(logits)[0, y[i]]
        g = jax.grad(loss)(params)
        for m in range(2):
            want[m] += sum(float(np.sum(np.asarray(a) ** 2)) for a in
                           jax.tree_util.tree_leaves((g["branches"][m], g["fused"][m]))) / 6
    np.testing.assert_allclose(got, want, rtol=1e-6)
    layers = fisher_sampled(model, params, xs, y, by="layer")
    assert layers.size == len(jax.tree_util.tree_leaves(params))


@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_mode_solution_against_training(rho):
    """Two-layer late fusion from random weights (exact (w, p) map) and four-layer balanced
    chains: theory against the network to float64 round-off wherever the trace is above
    1e-12 of its maximum."""
    stats = dln.Stats.scalar_toy(2.0, 1.0, rho)
    for depth, steps in ((2, 700), (4, 1200)):
        spec = dln.NetworkSpec.fusion(depth, depth, width=30)
        if depth == 2:
            p = dln.init_batch(spec, [0], scale=1e-6)
            mats = [np.asarray(W)[0] for W in p.matrices()]
            w0 = np.array([(mats[1] @ mats[0]).item(), (mats[3] @ mats[2]).item()])
            p0 = np.array([np.sum(mats[0] ** 2) + np.sum(mats[1] ** 2),
                           np.sum(mats[2] ** 2) + np.sum(mats[3] ** 2)])
            theory = rd.fisher_late_fusion(stats, 2, 0.04, w0, steps, init_norms=p0, record_every=10)
        else:
            p = th.fisher.balanced_chain_params(spec, [1e-4, 1e-4], seeds=[0])
            theory = rd.fisher_late_fusion(stats, 4, 0.04, [1e-4, 1e-4], steps, record_every=10)
        traj = dln.train(spec, stats, p, lr=0.04, steps=steps, record_every=10, stop_loss=None,
                         observe={"fisher": fisher_observable()})
        F = traj.records["fisher"][0]
        big = F > 1e-12 * F.max(axis=0)
        # float64 round-off accumulated over ~1000 steps of a map with growth factors ~1.3
        np.testing.assert_allclose(theory.trace[big], F[big], rtol=1e-8)
        assert np.all(theory.time == traj.time)


def test_information_rises_then_falls_and_peaks_near_t_m():
    """The paper's 'rises then falls in an early window', in the two-layer network: Tr F_A
    peaks within an epoch of t_A, and the window of eq. (11) ends there."""
    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.0)
    res = rd.fisher_late_fusion(stats, 2, 0.04, [1e-17, 1e-17], 800)
    t_A = res.time[np.argmax(res.w[:, 0] >= 0.5)]
    peak = res.time[np.argmax(res.trace[:, 0])]
    assert abs(peak - t_A) <= 10
    win = prime_window(res.trace[::10, 0], K=0.04)
    last = np.flatnonzero(win)[-1] * 10
    assert abs(last - t_A) <= 20 and not win[-1]


def test_prime_window_rules():
    F = np.array([1.0, 2.0, 4.0, 4.1, 4.1, 3.0, 2.0])
    # paper: epoch t tests (F[t-1] − F[t-2]) / F[t-1] > K
    np.testing.assert_array_equal(prime_window(F, K=0.04),
                                  [False, False, True, True, False, False, False])
    ma = prime_window(np.arange(1.0, 30.0), K=0.05, rule="moving_average", average=3)
    assert not ma[:4].any() and ma[4] and not ma[-1]
    # a batch of series: the last axis is time
    assert prime_window(np.stack([F, F]), K=0.04).shape == (2, F.size)


def test_bad_input_errors():
    stats = dln.Stats.scalar_toy()
    spec = dln.NetworkSpec.fusion(2, 2, width=3)
    params = _one(spec)
    with pytest.raises(ValueError, match="K .*must lie in \\(0, 1\\)"):
        prime_window([1.0, 2.0, 3.0], K=1.5)
    with pytest.raises(ValueError, match="K .*must lie in \\(0, 1\\)"):
        prime_window([1.0, 2.0, 3.0], K=0.0)
    with pytest.raises(ValueError, match="rule must be one of"):
        prime_window([1.0, 2.0, 3.0], rule="ema")
    with pytest.raises(ValueError, match="by must be one of"):
        fisher_trace(spec, params, stats, by="modality")
    with pytest.raises(ValueError, match="batch_size must be None"):
        fisher_trace(spec, params, stats, batch_size=0)
    with pytest.raises(ValueError, match="linear network"):
        fisher_trace(dln.NetworkSpec.fusion(2, 2, width=3, activation="relu"), params, stats)
    with pytest.raises(ValueError, match="stats have input dims"):
        fisher_trace(spec, params, dln.Stats.random(dim=4, seed=0))
    with pytest.raises(ValueError, match="batch_size .* larger than"):
        fisher_sampled(spec, params, (np.ones((4, 1)), np.ones((4, 1))), np.ones((4, 1)),
                       batch_size=8)
    with pytest.raises(ValueError, match="xs\\[1\\] has 3 samples"):
        fisher_sampled(spec, params, (np.ones((4, 1)), np.ones((3, 1))), np.ones((4, 1)))
    with pytest.raises(ValueError, match="model must be a NetworkSpec or a classifier"):
        fisher_sampled(object(), params, (np.ones((4, 1)),), np.ones(4))
    with pytest.raises(ValueError, match="linear networks only"):
        fisher_observable(spec=dln.NetworkSpec.fusion(2, 2, width=3, activation="relu"))
    with pytest.raises(ValueError, match="depth must be an integer >= 2"):
        rd.fisher_late_fusion(stats, 1, 0.04, [1e-3, 1e-3], 10)
    with pytest.raises(ValueError, match="init must be finite"):
        rd.fisher_late_fusion(stats, 3, 0.04, [-1e-3, 1e-3], 10)
    with pytest.raises(ValueError, match="init_norms must be at least"):
        rd.fisher_late_fusion(stats, 2, 0.04, [1e-3, 1e-3], 10, init_norms=[1e-4, 1e-4])
    with pytest.raises(ValueError, match="scalar modalities"):
        rd.fisher_late_fusion(dln.Stats.random(dim=4, seed=0), 2, 0.04, [1e-3, 1e-3], 10)
    with pytest.raises(ValueError, match="late fusion"):
        th.fisher.balanced_chain_params(dln.NetworkSpec.fusion(3, 2, width=3), [1e-2, 1e-2])
    with pytest.raises(ValueError, match="w0 must be positive"):
        th.fisher.balanced_chain_params(dln.NetworkSpec.fusion(3, 3, width=3), [0.0, 1e-2])


def test_figure_quick(tmp_path, monkeypatch):
    import json

    from dlnfusion.simulations import huang2025_fisher as fig

    monkeypatch.setattr(fig, "QUICK_MC_SAMPLES", 20_000)
    res = fig.run(tmp_path, quick=True)
    data = json.loads(open(res["json"]).read())
    s = data["summary"]
    assert s["windows_agree"]
    assert s["max_rel_error_theory"] < 1e-8           # float64 round-off (see above)
    # Monte Carlo at 2e4 samples: within 5 of its own standard errors everywhere
    assert s["max_z_monte_carlo"] < 5
    for name in fig.NETWORKS:
        r = data["networks"][name]
        np.testing.assert_allclose(r["t_sim"], r["t_theory"], rtol=1e-6)
        # A's window ends at t_A (the peak of Tr F_A): its last epoch e tests the growth up
        # to record e − 1, at step (e − 1)·EPOCH; within one epoch of t_A
        t_A = s[name]["t_A_theory"]
        last = s[name]["window_A_epochs"][-1][-1]
        assert abs((last - 1) * fig.EPOCH - t_A) <= fig.EPOCH
    assert all(p.endswith((".png", ".pdf")) for p in res["figures"])
