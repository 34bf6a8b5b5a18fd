import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import NetworkSpec, Stats, init_batch, simulate, train
from dlnfusion.training.kernel import gd_segment as _gd_segment

from conftest import rel


def _paper_update_numpy(params, stats, lr, Lf, L):
    """One gradient step written from the paper's eqs. (14a), (14b), (15), in numpy."""
    bA, bB = [np.array(W) for W in params.branches[0]], [np.array(W) for W in params.branches[1]]
    post = [np.array(W) for W in params.post]

    def chain(mats):  # ordered product, last matrix on the left
        out = None
        for W in mats:
            out = W if out is None else W @ out
        return out

    def prod_or_eye(mats, n):
        return np.eye(n) if not mats else chain(mats)

    WA = chain(bA + post)
    WB = chain(bB + post)
    S = stats.sigma
    eA = stats.sigma_yx_m(0) - WA @ S[:1, :1] - WB @ S[1:, :1]
    eB = stats.sigma_yx_m(1) - WA @ S[:1, 1:] - WB @ S[1:, 1:]
    newA, newB, newP = [], [], []
    for branch, e, new in ((bA, eA, newA), (bB, eB, newB)):
        for l in range(Lf):
            left = prod_or_eye(branch[l + 1:] + post, branch[l].shape[0])  # W^L...W^{l+1}
            right = prod_or_eye(branch[:l], branch[l].shape[1])
            new.append(branch[l] + lr * left.T @ e @ right.T)
    for j in range(L - Lf):
        left = prod_or_eye(post[j + 1:], post[j].shape[0])
        g = 0
        for branch, e in ((bA, eA), (bB, eB)):
            right = chain(branch + post[:j])
            g = g + left.T @ e @ right.T
        newP.append(post[j] + lr * g)
    return newA, newB, newP


@pytest.mark.parametrize("L, Lf", [(2, 2), (2, 1), (3, 2), (4, 3)])
def test_gd_matches_the_papers_update_rule(L, Lf):
    st = Stats.scalar_toy(1.7, 1.0, 0.3)
    spec = NetworkSpec.fusion(L, Lf, width=4)
    p0 = init_batch(spec, [0], "normal", 0.4)
    traj = train(spec, st, p0, lr=0.05, steps=3, stop_loss=None, record_every=1)
    p = jax.tree_util.tree_map(lambda a: a[0], p0)
    for _ in range(3):
        a, b, c = _paper_update_numpy(p, st, 0.05, Lf, L)
        p = dln.Params((tuple(a), tuple(b)), tuple(c))
    got = jax.tree_util.tree_map(lambda a: a[0], traj.final_params)
    for x, y in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(p)):
        assert np.allclose(x, y, rtol=1e-12, atol=1e-14)


def test_population_equals_full_batch_on_samples():
    sigma = np.array([[1.0, 0.3, 0.1, 0.0], [0.3, 1.2, 0.2, 0.1], [0.1, 0.2, 0.8, -0.2],
                      [0.0, 0.1, -0.2, 1.1]])
    st = Stats.from_teacher(sigma, [0.5, -1.0, 0.8, 0.3], dims=(2, 2), noise_var=0.2)
    ds = st.sample(64, seed=1, exact=True)
    spec = NetworkSpec.fusion(3, 2, width=5, input_dims=(2, 2))
    p0 = init_batch(spec, [7], "normal", 0.3)
    a = train(spec, st, p0, lr=0.05, steps=200, stop_loss=None, record_every=5)
    b = train(spec, ds, p0, lr=0.05, steps=200, stop_loss=None, record_every=5)
    assert a.status_names()[0] == "max_steps" and a.loss[0, -1] < 0.5 * a.loss[0, 0]
    assert rel(b.loss, a.loss) < 1e-9
    for x, y in zip(a.maps, b.maps):
        assert np.allclose(x, y, rtol=1e-9, atol=1e-13)


def test_runs_do_not_depend_on_their_batch(late2):
    configs = [Stats.scalar_toy(3.0, 1.0, -0.9), Stats.scalar_toy(1.5, 1.0, 0.0),
               Stats.scalar_toy(2.0, 1.0, 0.675)]
    together = simulate(late2, configs, seeds=[0, 1], steps=6000)
    alone = simulate(late2, configs[1], seeds=[1], steps=6000)
    # Equal up to float64 rounding: XLA may order a reduction differently for another batch
    # size (the benchmark measures 1e-11 at most; often the results are bitwise identical).
    for ref in ("unimodal", "global"):
        assert np.allclose(together.crossings[ref][1, 1], alone.crossings[ref][0], rtol=1e-10)
    assert np.allclose(together.loss[1, 1], alone.loss[0], rtol=1e-10, equal_nan=True)
    assert together.stop_time[1, 1] == alone.stop_time[0]
    # The other runs stopped at different times (one of them much later).
    assert len(set(together.stop_time.ravel())) > 2
    # Records after a run stops are not simulated.
    stop = int(together.stop_time[1, 1])
    assert np.all(np.isnan(together.loss[1, 1, stop // 10 + 1:]))


def test_divergence_is_reported_not_raised(late2, toy):
    p0 = init_batch(late2, [0, 1], "normal", 0.1)
    traj = train(late2, toy, p0, lr=np.array([0.04, 3.0]), steps=3000)
    assert list(traj.status_names()) == ["converged", "diverged"]
    assert np.isfinite(traj.final_loss[0])


def test_status_max_steps_and_no_stop(late2, toy):
    p0 = init_batch(late2, [0], "normal", 1e-9)
    traj = train(late2, toy, p0, steps=50, record_every=10)
    assert traj.status_names()[0] == "max_steps" and traj.stop_time[0] == 50
    assert np.all(np.isfinite(traj.loss[0]))
    full = train(late2, toy, init_batch(late2, [0], "normal", 0.3), steps=400,
                 stop_loss=None)
    assert full.stop_time[0] == 400 and full.status_names()[0] == "max_steps"


def test_crossings_match_a_stride_one_record(late2):
    st = Stats.scalar_toy(2.0, 1.0, 0.45)
    traj = simulate(late2, st, seeds=[3], record_every=1, steps=2000)
    W = traj.maps[0][0, :, 0, 0]
    U = st.unimodal_solution(0).item()
    x = W / U
    i = int(np.argmax(x >= 0.5))
    t = i - 1 + (0.5 - x[i - 1]) / (x[i] - x[i - 1])
    assert traj.crossing("A", "unimodal")[0] == pytest.approx(t, abs=1e-9)
    assert traj.crossing("A", "unimodal", 0.5)[0] < traj.crossing("B", "global")[0]


def test_no_recompilation_for_new_values(late2):
    stats = [Stats.scalar_toy(2.0, 1.0, 0.3), Stats.scalar_toy(1.3, 1.0, -0.2)]
    simulate(late2, stats, seeds=[0], steps=300)
    before = _gd_segment._cache_size()
    simulate(late2, [Stats.scalar_toy(2.5, 1.0, 0.1), Stats.scalar_toy(1.1, 1.0, 0.6)],
             seeds=[5], steps=300, lr=0.02, stop_loss=1e-3, scale=1e-6)
    assert _gd_segment._cache_size() == before


def test_eval_loss_is_generalization_error():
    st = Stats.random(dim=4, seed=0, noise_var=0.25)
    ds = st.sample(30, seed=0)
    spec = NetworkSpec.fusion(2, 2, width=8, input_dims=(2, 2))
    traj = simulate(spec, ds, seeds=[0], scale=0.01, eval_stats=st, steps=300,
                    stop_loss=None)
    W = np.concatenate([m[0, -1, 0] for m in traj.maps])
    assert traj.eval_loss[0, -1] == pytest.approx(st.loss(W), rel=1e-10)


def test_logistic_loss_and_relu_run_on_samples():
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    ds = st.sample(256, seed=0)
    lin = NetworkSpec.fusion(2, 2, width=16)
    t1 = simulate(lin, ds, seeds=[0], scale=1e-3, loss="logistic", steps=500,
                  stop_loss=None)
    assert np.all(np.diff(t1.loss[0]) <= 1e-12)  # full-batch GD on a smooth loss, small step
    assert t1.loss[0, 0] == pytest.approx(np.log(2), rel=1e-5)
    relu = NetworkSpec.fusion(2, 2, width=16, activation="relu")
    t2 = simulate(relu, ds, seeds=[0], scale=0.1, steps=3000)
    assert t2.final_loss[0] < 0.05 * t2.loss[0, 0]


def test_gradient_flow_matches_saxe_for_balanced_aligned_weights(late2):
    """Uncorrelated white modalities: the exact logistic of eq. (21), to 1e-6 relative."""
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    p0 = init_batch(late2, [0], "balanced", 1e-3, stats=st)
    traj = train(late2, st, p0, method="gf", steps=600, record_every=2, stop_loss=None,
                 rtol=1e-11, atol=1e-30)
    w0 = [float(np.asarray(m[0, 0, 0, 0])) for m in traj.maps]
    exact = dln.theory.saxe_late_fusion(st, traj.time, w0, lr=0.04)
    for m in range(2):
        sim = traj.maps[m][0, :, 0, 0]
        assert rel(sim, exact[m][:, 0, 0]) < 1e-6


def test_gradient_flow_matches_saxe_from_small_random_weights(late2):
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    traj = simulate(late2, st, seeds=[0, 1], method="gf", steps=1500, record_every=2,
                    stop_loss=None)
    w0 = dln.theory.effective_init(late2, traj.initial_params, [[1.0], [1.0]])
    for b in range(2):
        exact = dln.theory.saxe_late_fusion(st, traj.time, w0[b], lr=0.04)
        for m in range(2):
            plateau = st.unimodal_solution(m).item()
            dev = np.max(np.abs(traj.maps[m][b, :, 0, 0] - exact[m][:, 0, 0])) / plateau
            assert dev < 0.02


def test_gradient_descent_converges_to_gradient_flow_at_first_order(late2):
    """Explicit Euler: the error at a fixed time scales like the learning rate."""
    st = Stats.scalar_toy(1.5, 1.0, 0.4)
    p0 = init_batch(late2, [0], "normal", 1e-3)
    T = 4.0  # in units of τ: fixed physical time
    ref = train(late2, st, p0, lr=1.0, method="gf", steps=int(T), record_every=1,
                stop_loss=None, rtol=1e-12, atol=1e-30)
    target = ref.final_maps[0][0, 0, 0]
    errs, etas = [], [0.02, 0.01, 0.005]
    for eta in etas:
        n = int(round(T / eta))
        gd = train(late2, st, p0, lr=eta, steps=n, record_every=n, stop_loss=None)
        errs.append(abs(gd.final_maps[0][0, 0, 0] - target))
    slope = np.polyfit(np.log(etas), np.log(errs), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.1)


def test_train_errors(late2, toy):
    p0 = init_batch(late2, [0], "normal", 1e-3)
    with pytest.raises(ValueError, match="method"):
        train(late2, toy, p0, method="rk4")
    with pytest.raises(ValueError, match="loss"):
        train(late2, toy, p0, loss="hinge")
    with pytest.raises(ValueError, match="lr"):
        train(late2, toy, p0, lr=-0.1)
    with pytest.raises(ValueError, match="steps must be a non-negative integer"):
        train(late2, toy, p0, steps=-1)
    with pytest.raises(ValueError, match="record_every must be a positive integer"):
        train(late2, toy, p0, record_every=0)
    with pytest.raises(ValueError, match="scalar output"):
        two_out = NetworkSpec.fusion(2, 2, width=100, output_dim=2)
        train(two_out, Stats.from_teacher(np.eye(2), np.eye(2), (1, 1)),
              init_batch(two_out, [0]), loss="logistic")
    with pytest.raises(ValueError, match="dims"):
        train(late2, Stats.random(dim=4, seed=0), p0)
    with pytest.raises(ValueError, match="entries"):
        train(late2, [toy, toy], p0)
    with pytest.raises(ValueError, match="mix"):
        train(late2, [toy, toy.sample(10)], init_batch(late2, [0, 1]))
    tanh = NetworkSpec.fusion(2, 2, width=100, activation="tanh")
    with pytest.raises(ValueError, match="linear network"):
        train(tanh, toy, p0)
    deep_relu = NetworkSpec.fusion(3, 1, width=100, activation="relu")
    with pytest.raises(ValueError, match="two-layer"):
        train(deep_relu, toy, init_batch(deep_relu, [0]))
    with pytest.raises(ValueError, match="shape"):
        train(NetworkSpec.fusion(2, 2, width=5), toy, p0)
    with pytest.raises(ValueError, match="Params"):
        train(late2, toy, {"w": 1})
    with pytest.raises(ValueError, match="levels"):
        train(late2, toy, p0, levels=())
    with pytest.raises(ValueError, match="seeds"):
        init_batch(late2, [])
    with pytest.raises(ValueError, match="scale"):
        init_batch(late2, [0, 1], scale=[1.0, -1.0])
    with pytest.raises(ValueError, match="data"):
        simulate(late2, [])


def test_trajectory_helpers(late2):
    stats = [Stats.scalar_toy(2.0, 1.0, r) for r in (0.0, 0.5, -0.5)]
    traj = simulate(late2, stats, seeds=[0, 1], steps=2000)
    assert traj.batch_shape == (3, 2)
    flat = traj.reshape(6)
    assert flat.batch_shape == (6,)
    assert np.array_equal(flat.crossing("A")[2:4], traj.crossing("A")[1])
    sub = traj[1]
    assert sub.batch_shape == (2,) and sub.maps[0].shape[1:] == traj.maps[0].shape[2:]
    assert traj[:, 0].batch_shape == (3,)
    assert set(traj.status_names().ravel()) == {"converged"}
    with pytest.raises(ValueError, match="reshape"):
        traj.reshape(4)
    with pytest.raises(ValueError, match="level"):
        traj.crossing("A", level=0.3)
    with pytest.raises(ValueError, match="reference"):
        traj.crossing("A", reference="final")
    with pytest.raises(IndexError):
        traj[0, 0, 0]


# ---------------------------------------------------------------- optimizers and observables
def _equal_trajectories(a, b):
    """Bit-for-bit equality of every array of two trajectories."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)


def test_optax_sgd_equals_the_hand_written_update_bit_for_bit(late2):
    optax = pytest.importorskip("optax")
    stats = [Stats.scalar_toy(2.0, 1.0, 0.3), Stats.scalar_toy(1.5, 1.0, -0.6)]
    p0 = init_batch(late2, [0, 1], "normal", 1e-6)
    kw = dict(lr=[0.04, 0.03], steps=3000, record_every=7)
    _equal_trajectories(train(late2, stats, p0, **kw),
                        train(late2, stats, p0, optimizer=optax.sgd, **kw))
    relu = NetworkSpec.fusion(3, 2, width=8, activation="relu")
    ds = Stats.scalar_toy(2.0, 1.0, 0.3).sample(64, seed=0)
    p1 = init_batch(relu, [0], "normal", 0.3)
    kw = dict(lr=0.05, steps=400, record_every=10, stop_loss=None)
    _equal_trajectories(train(relu, ds, p1, **kw), train(relu, ds, p1, optimizer=optax.sgd, **kw))
    # a ready transformation carries its own learning rate (the one optimizer convention of
    # train and fit: a transformation, or a function of lr returning one)
    _equal_trajectories(train(relu, ds, p1, **kw),
                        train(relu, ds, p1, optimizer=optax.sgd(0.05), **kw))


def test_param_labels_gate_a_branch_through_optax(late2):
    optax = pytest.importorskip("optax")
    labels = dln.param_labels(late2)
    assert labels.branches == (("A", "A"), ("B", "B")) and labels.post == ()
    assert dln.param_labels(NetworkSpec.fusion(3, 2, width=4), by="layer").post == ("W^3",)

    def frozen_b(lr):
        return optax.multi_transform({"A": optax.sgd(lr), "B": optax.set_to_zero()}, labels)
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    p0 = init_batch(late2, [0], "normal", 1e-3)
    traj = train(late2, st, p0, optimizer=frozen_b, steps=2000, stop_loss=None)
    for W0, W1 in zip(p0.branches[1], traj.final_params.branches[1]):
        assert np.array_equal(W0, W1)
    # A alone reaches its unimodal solution (B frozen at its tiny initial weights).
    assert traj.final_maps[0][0].item() == pytest.approx(st.unimodal_solution(0).item(),
                                                         rel=1e-6)
    with pytest.raises(ValueError, match="by must be"):
        dln.param_labels(late2, by="depth")


def _first_layer_alignment(snap):
    """‖W_A^1 v‖/‖W_A^1‖_F, v = Σ_yxA/‖Σ_yxA‖: the share of the first layer along the data."""
    W1 = snap.params.branches[0][0]
    s = snap.moments.sigma_yx[0, :W1.shape[1]]
    return jnp.linalg.norm(W1 @ (s / jnp.linalg.norm(s))) / jnp.linalg.norm(W1)


def test_user_observable_is_recorded_without_editing_the_library():
    st = Stats.random(dim=4, seed=1)
    spec = NetworkSpec.fusion(2, 2, width=6, input_dims=(2, 2))
    p0 = init_batch(spec, [0, 1], "normal", 0.1)
    traj = train(spec, st, p0, steps=300, record_every=30, stop_loss=None,
                 observe={"align": _first_layer_alignment, "norms": None})
    assert "norms" not in traj.records and traj.records["align"].shape == (2, 11)
    # Independent evaluation in numpy on the final weights (the last record is at step 300,
    # where the run stopped without a further update).
    v = st.sigma_yx_m(0).ravel() / np.linalg.norm(st.sigma_yx_m(0))
    for b in range(2):
        W1 = np.asarray(traj.final_params.branches[0][0][b])
        assert traj.records["align"][b, -1] == pytest.approx(
            np.linalg.norm(W1 @ v) / np.linalg.norm(W1), rel=1e-12)
    # Training aligns the first layer with the data: the share grows from its random start.
    assert np.all(traj.records["align"][:, -1] > traj.records["align"][:, 0])
    with pytest.raises(ValueError, match="observe"):
        train(spec, st, p0, observe={"bad": 3})


def _loss_below(snap, data):
    return jnp.stack([data[0] - snap.loss])


def test_crossing_observable_with_data_does_not_recompile(late2):
    from dlnfusion.training import Crossing, Record
    st = Stats.scalar_toy(2.0, 1.0, 0.0)
    p0 = init_batch(late2, [0], "normal", 1e-6)
    kw = dict(steps=1500, record_every=10, stop_loss=None)
    a = train(late2, st, p0, observe={"hit": Crossing(_loss_below, (0.0,), jnp.array([1.0]))},
              **kw)
    before = _gd_segment._cache_size()
    b = train(late2, st, p0, observe={"hit": Crossing(_loss_below, (0.0,), jnp.array([0.5]))},
              **kw)
    assert _gd_segment._cache_size() == before
    # First step at which the loss is below 1.0 and 0.5, from the stride-10 record (linear
    # interpolation of the loss between steps bounds it within one record interval).
    for traj, level in ((a, 1.0), (b, 0.5)):
        t = traj.crossings["hit"][0, 0, 0]
        i = int(np.argmax(traj.loss[0] < level))
        assert traj.time[i - 1] < t <= traj.time[i]
    c = train(late2, st, p0, observe={"scaled": Record(lambda s, d: d * s.loss, 2.0)}, **kw)
    np.testing.assert_array_equal(c.records["scaled"], 2.0 * c.loss)


def test_trajectory_is_a_pytree(late2, toy):
    traj = simulate(late2, toy, seeds=[0, 1], steps=300)
    leaves, tree = jax.tree_util.tree_flatten(traj)
    back = jax.tree_util.tree_unflatten(tree, leaves)
    assert back.spec == traj.spec and np.array_equal(back.loss, traj.loss, equal_nan=True)
    doubled = jax.tree_util.tree_map(lambda a: a, traj)
    _equal_trajectories(doubled, traj)


def test_compaction_gives_the_uncompacted_numbers():
    """16 runs that stop at very different times: in segments of 64 steps the finished runs are
    dropped (the batch shrinks to 8, 4, ...); in one segment nothing is dropped."""
    spec = NetworkSpec.fusion(2, 2, width=10)
    stats = [Stats.scalar_toy(r, 1.0, rho) for r in (1.5, 3.0) for rho in np.linspace(-0.8, 0.8, 8)]
    p0 = init_batch(spec, list(range(16)), "normal", 1e-4)
    kw = dict(lr=0.04, steps=6000, record_every=5, stop_loss=1e-6)
    short = train(spec, stats, p0, segment=64, **kw)
    whole = train(spec, stats, p0, segment=10_000, **kw)
    assert len(set(short.stop_time)) > 8          # the runs stop at many different times
    # Equal up to float64 rounding: a smaller batch may let XLA order reductions differently.
    for x, y in zip(jax.tree_util.tree_leaves(short), jax.tree_util.tree_leaves(whole)):
        np.testing.assert_allclose(np.asarray(x, float), np.asarray(y, float), rtol=1e-12,
                                   atol=1e-300, equal_nan=True)
    np.testing.assert_array_equal(short.stop_time, whole.stop_time)
