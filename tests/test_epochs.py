"""Mini-batch training: optax updates against hand-written ones, chunking, divergence, records,
errors, and the accuracy time ratio."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlnfusion import FusionMLP, FusionTask, fit
from dlnfusion.compare import measure_accuracy_times
from dlnfusion.training import History, sgd

# float32 training: each step's gradient agrees with an independent evaluation to ~1e-7
# relative (summation order); over a few steps the parameters agree to ~1e-6.
F32_RTOL = 2e-5


def _task(n=48, classes=3, seed=0, regression=False):
    rng = np.random.default_rng(seed)
    xa, xb = rng.normal(size=(n, 4)), rng.normal(size=(n, 3))
    if regression:
        y = (xa[:, :1] + xb[:, :1]) * 3
        ty = y[:16]
        return FusionTask((xa, xb), y, (xa[:16], xb[:16]), ty, n_classes=0)
    y = (np.argmax(xa[:, :classes] + xb[:, :classes], 1)).astype(int)
    return FusionTask((xa, xb), y, (xa[:16], xb[:16]), y[:16], n_classes=classes)


NET = FusionMLP((4, 3), depth=3, fusion_layer=2, width=8, n_out=3)


def _ce(params, task):
    out = NET.apply(params, tuple(jnp.asarray(x) for x in task.train_x))
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, task.train_y))


def _init(seed):
    return NET.init(jax.random.fold_in(jax.random.PRNGKey(seed), 0))


def _np_loss(params, task):
    """NET's mean cross-entropy on the training set in float64 numpy (ReLU branches, fusion
    layer, ReLU before each later layer; log-softmax by the shifted log-sum-exp): shares no
    code with NET.apply, optax or the trainer's loss."""
    P = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    z = P["fused_b"]
    for x, layers, Wf in zip(task.train_x, P["branches"], P["fused"]):
        h = np.asarray(x, np.float64)
        for W, b in layers:
            h = np.maximum(h @ W.T + b, 0.0)
        z = z + h @ Wf.T
    for W, b in P["post"]:
        z = np.maximum(z, 0.0) @ W.T + b
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    y = np.asarray(task.train_y)
    return -np.mean(logp[np.arange(y.size), y])


def _close(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=F32_RTOL, atol=1e-6)


def test_full_batch_sgd_is_plain_gradient_descent():
    task = _task()
    h = fit(NET, task, seeds=[3], epochs=6, batch_size=task.n_train, lr=0.3)
    p = _init(3)
    before = []                      # the parameters before each of the six steps
    for _ in range(6):
        before.append(p)
        g = jax.grad(_ce)(p, task)
        p = jax.tree_util.tree_map(lambda w, d: w - 0.3 * d, p, g)
    _close(jax.tree_util.tree_map(lambda a: a[0], h.params), p)
    # epoch 0 records the initial loss; epoch e ≥ 1 the full-batch loss before its step, i.e.
    # after e − 1 steps (recomputed in float64 numpy). The trainer runs in float32 (eps
    # 1.2e-7): its loss and five steps' parameter drift, measured ≤ 1.6e-7 relative; tested
    # at 1e-6
    want = [_np_loss(before[0], task)] + [_np_loss(q, task) for q in before]
    assert h.train_loss.shape == (1, 7)
    np.testing.assert_allclose(h.train_loss[0], want, rtol=1e-6, atol=0)


def test_momentum_weight_decay_and_epoch_decay():
    """PyTorch semantics: g ← ∇L + λp; v ← μv + g; p ← p − η_e v with η_e = η·γ^e."""
    task = _task(seed=1)
    lr, mu, wd, gamma = 0.2, 0.9, 0.01, 0.8
    h = fit(NET, task, seeds=[0], epochs=5, batch_size=task.n_train, lr=lr, momentum=mu,
            weight_decay=wd, lr_decay=gamma)
    p = _init(0)
    v = jax.tree_util.tree_map(jnp.zeros_like, p)
    for e in range(5):
        g = jax.tree_util.tree_map(lambda d, w: d + wd * w, jax.grad(_ce)(p, task), p)
        v = jax.tree_util.tree_map(lambda a, b: mu * a + b, v, g)
        p = jax.tree_util.tree_map(lambda w, d: w - lr * gamma ** e * d, p, v)
    _close(jax.tree_util.tree_map(lambda a: a[0], h.params), p)


def test_custom_optimizer_and_factory():
    task = _task()
    opt = optax.sgd(0.1)  # one object: the second fit reuses the first one's compiled loop
    a = fit(NET, task, seeds=[0, 1], epochs=3, batch_size=16, optimizer=opt)
    b = fit(NET, task, seeds=[0, 1], epochs=3, batch_size=16, optimizer=lambda lr: opt)
    c = fit(NET, task, seeds=[0, 1], epochs=3, batch_size=16, lr=0.1)
    for x, y in ((a, b), (a, c)):
        _close(x.params, y.params)
    # Adam, full batch: its first step from zero moments is −η·g/(|g| + ε) per entry (the bias
    # corrections cancel), so the loss before the second step is computable by hand
    adam = fit(NET, task, seeds=[0], epochs=2, batch_size=task.n_train,
               optimizer=optax.adam(1e-2))
    p0 = _init(0)
    g = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), jax.grad(_ce)(p0, task))
    p1 = jax.tree_util.tree_map(lambda w, d: np.asarray(w, np.float64) - 1e-2 * d / (
        np.abs(d) + 1e-8), p0, g)
    # float32 training (eps 1.2e-7) against float64 numpy: measured ≤ 2.0e-8 relative;
    # tested at 5e-7, four float32 eps (a float32 loss cannot promise less than ~eps/2)
    np.testing.assert_allclose(adam.train_loss[0], [_np_loss(p0, task), _np_loss(p0, task),
                                                    _np_loss(p1, task)], rtol=5e-7, atol=0)


def test_chunks_seeds_and_records():
    task = _task(n=50)
    whole = fit(NET, task, seeds=[0, 1, 2], epochs=6, batch_size=16, lr=0.2, record_every=2)
    seen = []
    parts = fit(NET, task, seeds=[0, 1, 2], epochs=6, batch_size=16, lr=0.2, record_every=2,
                chunk_epochs=2, progress=lambda done, h: seen.append((done, h.epoch[-1])))
    assert seen == [(2, 2), (4, 4), (6, 6)]
    early = fit(NET, task, seeds=[0, 1, 2], epochs=6, batch_size=16, lr=0.2, record_every=2,
                chunk_epochs=2, stop=lambda h: h.epoch[-1] >= 4)
    np.testing.assert_array_equal(early.epoch, [0, 2, 4])
    np.testing.assert_array_equal(early.test_acc, parts.test_acc[:, :3])
    np.testing.assert_array_equal(whole.epoch, [0, 2, 4, 6])
    np.testing.assert_allclose(whole.train_loss, parts.train_loss, rtol=1e-6)
    np.testing.assert_array_equal(whole.test_acc, parts.test_acc)
    assert whole.unimodal_acc.shape == (3, 2, 4)
    serial = fit(NET, task, seeds=[0, 1, 2], epochs=6, batch_size=16, lr=0.2, record_every=2,
                 batch_seeds=False)
    np.testing.assert_allclose(serial.train_loss, whole.train_loss, rtol=1e-6)
    _close(serial.params, whole.params)
    # seeds are independent: seed 1 alone equals seed 1 in the batch
    one = fit(NET, task, seeds=[1], epochs=6, batch_size=16, lr=0.2, record_every=2)
    np.testing.assert_allclose(one.train_loss[0], whole.train_loss[1], rtol=1e-6)
    assert np.all(whole.status_names() == "max_steps")
    # the first record is each seed's initial loss on the whole training set
    init = [_np_loss(_init(s), task) for s in (0, 1, 2)]
    # float32 loss (eps 1.2e-7) against float64 numpy: measured ≤ 5.3e-8; tested at 5e-7
    np.testing.assert_allclose(whole.train_loss[:, 0], init, rtol=5e-7, atol=0)
    # a shorter last batch (50 = 3·16 + 2) is a mean over its real samples only and the epoch
    # loss the sample-weighted mean of batch losses: with the parameters held fixed (zero
    # learning rate) every epoch's record is the full-set loss whatever the batch order
    # (an unweighted mean of the four batch means, or padding counted, would differ).
    # float32 batch sums (eps 1.2e-7) against float64 numpy: measured ≤ 1.0e-7 relative;
    # tested at 5e-7
    still = fit(NET, task, seeds=[0, 1, 2], epochs=2, batch_size=16, optimizer=optax.sgd(0.0))
    np.testing.assert_allclose(still.train_loss, np.repeat(np.asarray(init)[:, None], 3, 1),
                               rtol=5e-7, atol=0)


def test_unimodal_accuracy_uses_blank_input():
    task = _task()
    h = fit(NET, task, seeds=[0], epochs=1, batch_size=48, lr=0.1)
    p = jax.tree_util.tree_map(lambda a: a[0], h.params)
    xa, xb = (jnp.asarray(x) for x in task.test_x)
    acc_a = np.mean(np.argmax(np.asarray(NET.apply(p, (xa, jnp.zeros_like(xb)))), 1)
                    == task.test_y)
    acc = np.mean(np.argmax(np.asarray(NET.apply(p, (xa, xb))), 1) == task.test_y)
    assert h.unimodal_acc[0, 0, -1] == pytest.approx(acc_a)
    assert h.test_acc[0, -1] == pytest.approx(acc)
    # evaluated in slices of 5 (16 = 3·5 + 1, the last slice padded and masked): the same
    sliced = fit(NET, task, seeds=[0], epochs=1, batch_size=48, lr=0.1, eval_batch=5)
    np.testing.assert_array_equal(sliced.test_acc, h.test_acc)
    np.testing.assert_array_equal(sliced.unimodal_acc, h.unimodal_acc)
    np.testing.assert_allclose(sliced.train_loss, h.train_loss, rtol=F32_RTOL)


def test_divergence_is_reported_not_raised():
    task = _task(regression=True)
    net = FusionMLP((4, 3), depth=3, fusion_layer=2, width=8, n_out=1)
    h = fit(net, task, seeds=[0, 1], epochs=30, batch_size=48, lr=50.0, loss="squared")
    assert list(h.status_names()) == ["diverged", "diverged"] and h.diverged.all()
    assert np.isnan(h.train_loss[:, -1]).all()
    for leaf in jax.tree_util.tree_leaves(h.params):
        assert np.all(np.isfinite(leaf))  # frozen at the last finite step
    ok = fit(net, task, seeds=[0], epochs=5, batch_size=48, lr=1e-3, loss="squared")
    assert list(ok.status_names()) == ["max_steps"] and np.isnan(ok.test_acc).all()


def test_fit_errors():
    task = _task()
    with pytest.raises(ValueError, match="batch_size must be at most the number of training "
                                         "samples \\(48\\)"):
        fit(NET, task, epochs=1, batch_size=49)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr must be finite"):
            fit(NET, task, epochs=1, batch_size=8, lr=bad)
    with pytest.raises(ValueError, match="lr must be positive"):
        fit(NET, task, epochs=1, batch_size=8, lr=-1.0)
    with pytest.raises(ValueError, match="epochs"):
        fit(NET, task, epochs=0)
    with pytest.raises(ValueError, match="loss must be one of"):
        fit(NET, task, epochs=1, batch_size=8, loss="hinge")
    with pytest.raises(ValueError, match="real-valued targets"):
        fit(NET, task, epochs=1, batch_size=8, loss="squared")
    with pytest.raises(ValueError, match="classification task"):
        fit(NET, _task(regression=True), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="multiple of record_every"):
        fit(NET, task, epochs=5, batch_size=8, record_every=2)
    with pytest.raises(ValueError, match="momentum"):
        fit(NET, task, epochs=1, batch_size=8, momentum=1.0)
    with pytest.raises(ValueError, match="lr_decay"):
        fit(NET, task, epochs=1, batch_size=8, lr_decay=0.0)
    with pytest.raises(ValueError, match="optimizer"):
        fit(NET, task, epochs=1, batch_size=8, optimizer="sgd")
    with pytest.raises(ValueError, match="task must be a FusionTask"):
        fit(NET, None, epochs=1)
    with pytest.raises(ValueError, match="inputs of dimensions"):
        fit(FusionMLP((5, 3), depth=3, fusion_layer=2, width=8, n_out=3), task, epochs=1,
            batch_size=8)
    with pytest.raises(ValueError, match="seeds"):
        fit(NET, task, seeds=[], epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="weight_decay"):
        sgd(0.1, weight_decay=-1.0)


def _history(curves):
    uni = np.asarray(curves, float)  # (S, M, T)
    S, M, T = uni.shape
    return History(np.arange(T) * 10, np.arange(T), np.zeros((S, T)), np.zeros((S, T)), uni,
                   np.zeros(S, np.int8), None, np.arange(S), ("A", "B"))


def test_accuracy_time_ratio():
    # A: 0.1, 0.3, 0.7 -> crosses 0.5 at 1.5; B: 0.1, 0.2, 0.4, 0.6 -> at 2.5
    h = _history([[[0.1, 0.3, 0.7, 0.9], [0.1, 0.2, 0.4, 0.6]],
                  [[0.1, 0.1, 0.2, 0.3], [0.2, 0.6, 0.8, 0.9]],
                  [[0.1, 0.1, 0.2, 0.3], [0.2, 0.2, 0.3, 0.4]]])
    t = measure_accuracy_times(h)
    np.testing.assert_allclose(t.times[0], [1.5, 2.5])
    np.testing.assert_allclose(t.ratio[0], 2.5 / 1.5)
    assert list(t.first) == [0, 1, -1] and t.first_names() == ["A", "B", "none"]
    assert np.isnan(t.ratio[1]) and np.isnan(t.ratio[2])  # one or both never reach 50%
    np.testing.assert_allclose(t.times[1], [np.nan, 0.75])
    with pytest.raises(ValueError, match="level"):
        measure_accuracy_times(h, level=1.5)
