"""Deep matrix completion: targets and masks (dlnfusion.data.completion), the batched simulator
(dlnfusion.training.completion.train_completion) against an independent implementation, the
phase switch, prefix sharing, compilation reuse, divergence, errors, and the figure module on
a tiny monkeypatched grid."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlnfusion.data.completion import (low_rank_target, mask_from_order, nested_masks,
                                       observed_mask, observed_order)
from dlnfusion.interventions import Deficit, Gate
from dlnfusion.training import completion as tc
from dlnfusion.training.completion import CompletionTask, default_scale, train_completion

N = 12   # small matrices keep every test fast; nothing below depends on n = 100

# float64 rounding: the records are products of at most 3 n×n matrices (n = 12) after at most
# 12 gradient steps whose updates are ~1e-2 of the weights; the two implementations differ only
# in the order of floating-point operations, so they agree to a few hundred ulps. 1e-11 leaves a
# margin of ~100 over that while still failing on any wrong factor, transposition or step.
RTOL_F64 = 1e-11


@pytest.fixture(scope="module")
def task():
    targets = np.stack([low_rank_target(0, N, 3, 12.0), low_rank_target(1, N, 2, 12.0),
                        low_rank_target(2, N, 4, 12.0)])
    masks = nested_masks(5, N, (40, 60, 90))
    return targets, masks


def _train(targets, masks, *, switch_step, target_before, mask_before, target_after=None,
           mask_after=None, **kw):
    """train_completion in the paper's terms: phase 1 (t < switch_step) on the "before" task,
    as a Deficit window [0, switch_step), phase 2 on the "after" task (default: the same)."""
    ta = target_before if target_after is None else target_after
    ma = mask_before if mask_after is None else mask_after
    window = Deficit(CompletionTask(target=target_before, mask=mask_before), start=0,
                     end=switch_step)
    return train_completion(targets, masks, target=ta, mask=ma, interventions=[window], **kw)


# ---------------------------------------------------------------------------------- data

@pytest.mark.parametrize("n, rank", [(100, 5), (100, 10), (30, 1), (20, 20)])
def test_target_rank_and_norm(n, rank):
    w = low_rank_target(3, n, rank)
    s = np.linalg.svd(w, compute_uv=False)
    # ‖W‖_F is set by the final rescaling: exact up to float64 rounding of a norm (~1e-15).
    assert np.linalg.norm(w) == pytest.approx(100.0, rel=1e-13)
    # Rank r: r singular values of order ‖W‖_F/√r, the rest at rounding level (σ₁·n·eps).
    assert s[rank - 1] > 1e-3 * s[0]
    if rank < n:
        assert s[rank] < 1e-12 * s[0]


def test_target_seeds():
    a, b = low_rank_target(7, 50, 5), low_rank_target(7, 50, 5)
    assert np.array_equal(a, b)
    # Other seed, other rank or other size: a different draw (not a copy or a truncation).
    for other in (low_rank_target(8, 50, 5), low_rank_target(7, 50, 6)):
        assert abs(np.sum(a * other)) < 0.5 * np.linalg.norm(a) * np.linalg.norm(other)
    assert low_rank_target(7, 50, 5, frobenius=3.0) == pytest.approx(a * 0.03, rel=1e-13)


def test_masks_nested_and_counted():
    n = 100
    masks = nested_masks(4, n, (1000, 1250, 1500, 2000))
    assert masks.dtype == bool and masks.shape == (4, n, n)
    assert masks.reshape(4, -1).sum(1).tolist() == [1000, 1250, 1500, 2000]
    for k in range(3):
        assert np.all(masks[k] <= masks[k + 1])          # nested: the first 1000 ⊂ 1250 ⊂ …
    order = observed_order(4, n)
    assert np.array_equal(np.sort(order), np.arange(n * n))
    # "The first k observed entries" are the first k of the order (row-major flat indices).
    assert np.array_equal(np.flatnonzero(masks[0]), np.sort(order[:1000]))
    assert np.array_equal(observed_mask(4, n, 1250), masks[1])
    assert np.array_equal(mask_from_order(order, 1500), masks[2])
    assert not np.array_equal(observed_mask(5, n, 1000), masks[0])


@pytest.mark.parametrize("call, match", [
    (lambda: low_rank_target(0, 10, 0), "rank"),
    (lambda: low_rank_target(0, 10, 11), "rank"),
    (lambda: low_rank_target(0, 10, 2.0), "rank"),
    (lambda: low_rank_target(-1, 10, 2), "seed"),
    (lambda: low_rank_target(0, 0, 1), "n"),
    (lambda: low_rank_target(0, 10, 2, frobenius=0.0), "frobenius"),
    (lambda: low_rank_target(0, 10, 2, frobenius=float("nan")), "frobenius"),
    (lambda: observed_mask(0, 10, 101), "count"),
    (lambda: observed_mask(0, 10, 0), "count"),
    (lambda: observed_mask(0, 10, True), "count"),
    (lambda: mask_from_order(np.arange(10), 3), "order"),
    (lambda: mask_from_order(np.zeros(9, int), 3), "order"),
    (lambda: nested_masks(0, 10, ()), "counts"),
])
def test_data_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------- reference implementation

def _product(Ws):
    P = Ws[0]
    for W in Ws[1:]:
        P = W @ P
    return P


def _loss(Ws, M, m):
    """The stated loss: ½·mean over the observed entries (m) of (P − M)²."""
    return 0.5 * jnp.sum(jnp.where(m, (_product(Ws) - M) ** 2, 0.0)) / jnp.sum(m)


_grad = jax.jit(jax.grad(_loss))


def _reference(targets, masks, depth, seed, switch, end, tb, mb, ta, ma, lr, std):
    """Independent gradient descent: jax.grad of the stated loss ½·mean over the observed
    entries, one step at a time in Python, from the documented initial weights
    (tested on their own in test_initial_weights). Returns the test error against targets[ta]
    at every step 0…end, the final product and the singular values at every step."""
    Ws = list(tc.initial_weights(seed, depth, N, std))
    errs, svs = [], []
    for t in range(end + 1):
        P = np.asarray(_product(Ws))
        errs.append(np.mean((P - targets[ta]) ** 2))
        svs.append(np.linalg.svd(P, compute_uv=False))
        if t == end:
            break
        M, m = (targets[tb], masks[mb]) if t < switch else (targets[ta], masks[ma])
        Ws = [W - lr * np.asarray(g) for W, g in zip(Ws, _grad(Ws, jnp.asarray(M), m))]
    return np.array(errs), P, np.array(svs)


# The shared path at every depth; the from-scratch path at D = 3 (at D = 1, 2 it is checked
# against the shared path by test_prefix_sharing_equals_scratch's construction at D = 3 and
# here at D = 3 directly: the code is the same for every depth but for the product).
@pytest.mark.parametrize("depth, share", [(1, True), (2, True), (3, True), (3, False)])
def test_against_reference(task, depth, share):
    targets, masks = task
    lr, std = 0.5, 0.3        # a large σ and η make every step move the weights visibly
    sched = dict(seeds=[4, 4, 9], switch_step=[3, 7, 0], steps=[9, 9, 6],
                 target_before=[0, 0, 2], mask_before=[0, 0, 1], target_after=[1, 1, 1],
                 mask_after=[2, 2, 2])
    r = _train(targets, masks, depth=depth, lr=lr, scale=std, record_every=1,
                         share_prefix=share, **sched)
    assert r.time.tolist() == list(range(10)) and list(r.status_names()) == ["max_steps"] * 3
    for b in range(3):
        args = [sched[k][b] for k in ("seeds", "switch_step", "steps", "target_before",
                                      "mask_before", "target_after", "mask_after")]
        errs, P, svs = _reference(targets, masks, depth, *args, lr, std)
        end = args[2]
        np.testing.assert_allclose(r.test_error[b, :end + 1], errs, rtol=RTOL_F64)
        np.testing.assert_allclose(r.singular_values[b, :end + 1], svs, rtol=RTOL_F64,
                                   atol=RTOL_F64 * svs.max())
        assert np.all(np.isnan(r.test_error[b, end + 1:]))      # nothing after the end step
        np.testing.assert_allclose(r.product[b], P, rtol=0, atol=RTOL_F64 * np.abs(P).max())
        assert r.test_error_final[b] == pytest.approx(errs[-1], rel=RTOL_F64)


def test_gradient_against_jax_grad():
    # The hand-written gradient of one run against jax.grad on random weights (D = 3).
    rng = np.random.default_rng(0)
    W = jnp.asarray(rng.standard_normal((3, N, N)))
    M = jnp.asarray(rng.standard_normal((N, N)))
    A = jnp.asarray((rng.random((N, N)) < 0.4) / 7.0)

    def loss(W):
        P = W[2] @ W[1] @ W[0]
        return 0.5 * jnp.sum(A * (P - M) ** 2)

    value, g = tc._loss_grads(W, M, A)
    assert float(value) == pytest.approx(float(loss(W)), rel=RTOL_F64)
    np.testing.assert_allclose(g, jax.grad(loss)(W), rtol=RTOL_F64, atol=1e-12)


def test_initial_weights():
    w = tc.initial_weights(3, 3, 100, 0.01)
    assert w.shape == (3, 100, 100) and w.dtype == np.float64
    assert np.array_equal(w, tc.initial_weights(3, 3, 100, 0.01))
    # s.d. of 3·10⁴ N(0, σ²) draws: relative sampling error 1/√(2·3·10⁴) = 0.4 %; 2 % is five
    # of them. Mean: σ/√(3·10⁴) = 0.006 σ per draw set; 0.03 σ is five.
    assert np.std(w) == pytest.approx(0.01, rel=0.02) and abs(np.mean(w)) < 3e-4
    # Layers and seeds are different draws (correlation of independent sets ~ 1/√10⁴ = 0.01).
    for a, b in ((w[0], w[1]), (w[0], tc.initial_weights(4, 1, 100, 0.01)[0])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.05
    # The first layers of a deeper network are those of a shallower one with the same seed.
    assert np.array_equal(tc.initial_weights(3, 1, 100, 0.01)[0], w[0])


def test_default_scale():
    # σ = (1e-3)^{1/D}/10: 1e-4, 3.162e-3, 1e-2.
    assert [default_scale(d) for d in (1, 2, 3)] == pytest.approx(
        [1e-4, 10 ** -1.5 / 10, 1e-2], rel=1e-12)


# ------------------------------------------------------------------------------ the switch

def test_switch_happens_at_the_switch_step(task):
    targets, masks = task
    # Two runs identical but for their switch step (4 and 5): their weights must coincide up to
    # t = 4 and differ from t = 5 on (step 4 used phase 2 in one, phase 1 in the other). The
    # recorded training loss is that of the phase the next step uses: at t = 4 the first run
    # reports the phase-2 loss, the second the phase-1 loss.
    r = _train(targets, masks, depth=2, seeds=1, switch_step=[4, 5], steps=8,
                         target_before=0, mask_before=0, target_after=1, mask_after=1, lr=0.5,
                         scale=0.3, record_every=1)
    sv = r.singular_values
    assert np.array_equal(sv[0, :5], sv[1, :5])
    assert np.all(np.abs(sv[0, 5:] - sv[1, 5:]).max(axis=1) > 1e-6 * sv[0, 5:].max(axis=1))
    assert np.array_equal(r.train_loss[0, :4], r.train_loss[1, :4])
    P4 = _reference(targets, masks, 2, 1, 4, 4, 0, 0, 1, 1, 0.5, 0.3)[1]
    phase2 = 0.5 * np.mean(((P4 - targets[1]) ** 2)[masks[1]])
    phase1 = 0.5 * np.mean(((P4 - targets[0]) ** 2)[masks[0]])
    assert r.train_loss[0, 4] == pytest.approx(phase2, rel=RTOL_F64)
    assert r.train_loss[1, 4] == pytest.approx(phase1, rel=RTOL_F64)


# ------------------------------------------------------------------------ prefix sharing

@pytest.mark.parametrize("depth", [3])
def test_prefix_sharing_equals_scratch(task, depth):
    targets, masks = task
    # Several groups (seed × phase-1 task), several switch steps per group, repeated runs and
    # T = 0 runs that the sharing attaches to another group: the numbers must be those of
    # running each run from scratch. The two paths batch the runs differently (other matmul
    # batch sizes), so agreement is to rounding, not bitwise.
    seeds = [0, 0, 0, 1, 1, 0, 0, 2]
    sw = [0, 4, 8, 4, 8, 4, 0, 6]
    end = [8, 10, 12, 12, 10, 10, 8, 12]
    kw = dict(depth=depth, seeds=seeds, switch_step=sw, steps=end,
              target_before=[0, 0, 0, 2, 2, 0, 1, 1], mask_before=[0, 0, 0, 1, 1, 0, 2, 1],
              target_after=1, mask_after=[2, 2, 2, 2, 2, 2, 2, 0], lr=0.4, scale=0.3,
              record_every=2, n_singular=4)
    a = _train(targets, masks, share_prefix=True, **kw)
    b = _train(targets, masks, share_prefix=False, **kw)
    # Runs 1 and 5 are the same run, and so are 0 and 6 (T = 0: the phase-1 task is unused).
    assert a.n_unique_runs == 6 and a.n_prefix_groups == 3
    assert a.simulated_steps < b.simulated_steps
    for name in ("test_error", "train_loss", "singular_values"):
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(np.isnan(x), np.isnan(y))
        np.testing.assert_allclose(x, y, rtol=RTOL_F64, atol=0)
    np.testing.assert_allclose(a.product, b.product, rtol=0,
                               atol=RTOL_F64 * np.abs(b.product).max())
    np.testing.assert_allclose(a.test_error_final, b.test_error_final, rtol=RTOL_F64)


def test_no_recompilation_for_new_values(task):
    targets, masks = task
    kw = dict(depth=2, steps=[12, 12, 12, 12], target_before=0, mask_before=0,
              target_after=1, mask_after=1, record_every=2, record_until=12)
    _train(targets, masks, seeds=[0, 0, 1, 1], switch_step=[2, 6, 4, 8], **kw)
    before = tc._simulate_shared._cache_size()
    # New seeds and new switch steps, the same grouping (2 groups × 2 switch steps): no trace.
    r = _train(targets, masks, seeds=[5, 5, 7, 7], switch_step=[4, 10, 0, 2], **kw)
    assert tc._simulate_shared._cache_size() == before
    assert list(r.status_names()) == ["max_steps"] * 4
    # A new learning rate is a value too.
    _train(targets, masks, seeds=[1, 1, 2, 2], switch_step=[0, 8, 2, 4], lr=0.3, **kw)
    assert tc._simulate_shared._cache_size() == before


# -------------------------------------------------------------------------------- divergence

def test_divergence_is_a_status(task):
    targets, masks = task
    # One learning rate for the batch; run 1 has a target 1e4 times larger, for which η = 0.5
    # is far beyond the stability limit (the curvature grows with the target's scale), so it
    # overflows within a few dozen steps; runs 0 and 2 must finish as if they were alone (the
    # independent reference runs them one at a time).
    big = np.concatenate([targets, 1e4 * targets[:1]])
    sched = dict(seeds=[0, 0, 3], switch_step=[100, 0, 50], target_before=[0, 3, 2],
                 target_after=[1, 3, 1])
    r = _train(big, masks, depth=2, lr=0.5, scale=0.3, record_every=10,
                         steps=200, mask_before=0, **sched)
    assert list(r.status_names()) == ["max_steps", "diverged", "max_steps"] and list(r.diverged) == [False, True, False]
    assert 0 < r.diverged_step[1] < 200 and r.diverged_step[0] == r.diverged_step[2] == -1
    assert np.isnan(r.test_error_final[1]) and np.all(np.isfinite(r.test_error_final[[0, 2]]))
    # Detected at the first record whose state is non-finite: NaN from there, finite before.
    k = r.diverged_step[1] // 10
    assert r.diverged_step[1] % 10 == 0
    assert np.all(np.isnan(r.test_error[1, k:])) and np.all(np.isfinite(r.test_error[1, :k]))
    for b in (0, 2):
        errs = _reference(big, masks, 2, sched["seeds"][b], sched["switch_step"][b], 200,
                          sched["target_before"][b], 0, sched["target_after"][b], 0, 0.5,
                          0.3)[0]
        # 200 steps instead of ≤ 12: rounding grows with the number of steps, hence 10×.
        np.testing.assert_allclose(r.test_error[b], errs[::10], rtol=10 * RTOL_F64)


# -------------------------------------------------------------------------------- precision

def test_float32_close_to_float64(task):
    targets, masks = task
    kw = dict(depth=3, seeds=[0, 1], switch_step=[20, 40], steps=60, target_before=0,
              mask_before=0, target_after=1, mask_after=1, lr=0.5, scale=0.3,
              record_every=20)
    a = _train(targets, masks, **kw)
    b = _train(targets, masks, dtype="float32", **kw)
    assert a.dtype == "float64" and b.dtype == "float32" and b.product.dtype == np.float32
    # Same initial weights (drawn in float64, rounded); 60 steps in float32 (unit roundoff
    # 6e-8) of a well-conditioned descent: measured ≤ 1.9e-7 relative (a few roundoffs, no
    # growth over the steps); tested at 1e-6.
    np.testing.assert_allclose(b.test_error, a.test_error, rtol=1e-6, atol=0)
    assert not np.array_equal(a.test_error, b.test_error)


# ------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("change, match", [
    (dict(depth=0), "depth"),
    (dict(lr=-0.1), "lr"),
    (dict(lr=float("inf")), "lr"),
    (dict(scale=0.0), "scale"),
    (dict(record_every=0), "record_every"),
    (dict(switch_step=3), "the Deficit's end must be a multiple of record_every"),
    (dict(steps=9), "steps must be a multiple"),
    (dict(switch_step=12), "the Deficit's end must not exceed steps"),
    (dict(switch_step=-2), "the Deficit's end must be >= 0"),
    (dict(switch_step=2.0), "the Deficit's end must be an integer"),
    (dict(seeds=[0, 1, 2], switch_step=[4, 4]), "one length"),
    (dict(seeds=1.5), "seeds must be an integer"),
    (dict(target_before=3), "the deficit target"),
    (dict(mask_before=3), "the deficit mask"),
    (dict(target_after=3), "target indexes"),
    (dict(mask_after=7), "mask indexes"),
    (dict(n_singular=13), "n_singular"),
    (dict(record_until=6), "record_until"),
    (dict(record_until=11), "record_until"),
    (dict(dtype="float16"), "dtype"),
])
def test_training_errors(task, change, match):
    targets, masks = task
    kw = dict(depth=2, seeds=[0, 1], switch_step=4, steps=8, target_before=0,
              mask_before=0, target_after=1, mask_after=1, record_every=2)
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        _train(targets, masks, **kw)


def test_no_window_trains_the_own_task_throughout(task):
    # Without interventions a run trains on its own task from step 0: the same numbers as a
    # Deficit window of length 0, and as the reference with the switch at 0.
    targets, masks = task
    kw = dict(depth=2, seeds=[3, 4], steps=6, lr=0.5, scale=0.3, record_every=1)
    a = train_completion(targets, masks, target=1, mask=[2, 0], **kw)
    b = train_completion(targets, masks, target=1, mask=[2, 0], interventions=[
        Deficit(CompletionTask(target=0), end=0)], **kw)
    assert np.array_equal(a.test_error, b.test_error) and np.all(a.deficit_end == 0)
    assert a.deficit_target.tolist() == [1, 1] and a.deficit_mask.tolist() == [2, 0]
    for r, mask in enumerate((2, 0)):
        errs = _reference(targets, masks, 2, [3, 4][r], 0, 6, 1, mask, 1, mask, 0.5, 0.3)[0]
        np.testing.assert_allclose(a.test_error[r], errs, rtol=RTOL_F64)


def test_deficit_task_defaults_to_the_own(task):
    # CompletionTask(target=k) keeps the run's own mask: only the target changes before T.
    targets, masks = task
    kw = dict(depth=1, seeds=0, steps=6, target=1, mask=2, lr=0.5, scale=0.3, record_every=1)
    r = train_completion(targets, masks, interventions=[
        Deficit(CompletionTask(target=0), start=0, end=3)], **kw)
    assert r.deficit_target.tolist() == [0] and r.deficit_mask.tolist() == [2]
    errs = _reference(targets, masks, 1, 0, 3, 6, 0, 2, 1, 2, 0.5, 0.3)[0]
    np.testing.assert_allclose(r.test_error[0], errs, rtol=RTOL_F64)


@pytest.mark.parametrize("windows, match", [
    (Deficit(CompletionTask(0, 0), end=2), "a list of windows"),
    ([Gate("A", 0, 2)], "a Gate acts on the groups of a fusion network"),
    ([Deficit(CompletionTask(0, 0), start=2, end=4)], "starts at step 0"),
    ([Deficit(CompletionTask(0, 0), end=2), Deficit(CompletionTask(1, 1), end=2)],
     "at most one window"),
    ([Deficit(np.zeros((N, N)), end=2)], "CompletionTask"),
    ([Deficit(CompletionTask(0, 0), end=None)], "needs an end step"),
])
def test_window_errors(task, windows, match):
    targets, masks = task
    with pytest.raises(ValueError, match=match):
        train_completion(targets, masks, depth=1, seeds=0, steps=4, target=1, mask=1,
                         record_every=2, interventions=windows)


def test_data_shape_errors(task):
    targets, masks = task
    kw = dict(depth=1, seeds=0, switch_step=0, steps=2, target_before=0, mask_before=0,
              record_every=1)
    with pytest.raises(ValueError, match="targets"):
        _train(targets[:, :, :5], masks, **kw)
    with pytest.raises(ValueError, match="masks"):
        _train(targets, np.zeros_like(masks), **kw)
    with pytest.raises(ValueError, match="masks"):
        _train(targets, masks[:, :6, :6], **kw)
    with pytest.raises(ValueError, match="targets"):
        _train(np.full_like(targets, np.nan), masks, **kw)


# ------------------------------------------------- the CompletionSeries runner and its summaries

_TABLE = [(1, 2, 60), (1, 5, 40), (2, 5, 60)]


def _series_sweep(runner):
    from dlnfusion.sweep import Sweep
    return Sweep({"series": [0, 1, 2], "deficit_end": [0, 6]}, runner,
                 {"depth": 2, "steps_after": 6, "lr": 0.3, "scale": 0.3, "record_every": 2,
                  "record_until": 12, "dtype": "float64"}, seeds=[0, 1])


def test_completion_series_draws_the_papers_tasks(tmp_path):
    """CompletionSeries equals Completion with the tasks written out: the final target of seed
    2000 + s on the curve's first `count` entries, and during the deficit experiment 1's
    rank-r target of seed 1000 + s (same entries) or experiment 2's final target on its first
    `deficit_count` entries."""
    from dlnfusion.sweep import Completion, CompletionSeries

    def final(seed):
        return low_rank_target(2000 + seed, N, 3, 12.0)

    def mask(series, seed):
        return observed_mask(seed, N, _TABLE[series][2])

    def deficit_target(series, seed):
        exp, rank, _ = _TABLE[series]
        return low_rank_target(1000 + seed, N, rank, 12.0) if exp == 1 else final(seed)

    def deficit_mask(series, seed):
        exp, _, count = _TABLE[series]
        return observed_mask(seed, N, count if exp == 1 else 30)

    got = _series_sweep(CompletionSeries(table=_TABLE, n=N, frobenius=12.0, final_rank=3,
                                         deficit_count=30)).run(tmp_path / "a", progress=False)
    want = _series_sweep(Completion(final, mask, deficit_target, deficit_mask)).run(
        tmp_path / "b", progress=False)
    for name in ("test_error", "train_loss", "singular_values", "test_error_final"):
        np.testing.assert_array_equal(got[name].values, want[name].values)
    # the deficit changes the result only where its task differs from the run's own
    assert not np.array_equal(got.test_error_final.sel(deficit_end=6).values,
                              got.test_error_final.sel(deficit_end=0).values)
    assert CompletionSeries.default_scale(3) == Completion.default_scale(3) == default_scale(3)


def test_completion_series_errors():
    from dlnfusion.sweep import CompletionSeries, Sweep

    with pytest.raises(ValueError, match="table"):
        CompletionSeries(table=[(3, 2, 60)], n=N)
    with pytest.raises(ValueError, match="series must index"):
        Sweep({"series": [0, 3]}, CompletionSeries(table=_TABLE, n=N), {"steps": 4}, seeds=[0])


def _fake_dataset():
    """A Dataset shaped as a CompletionSeries sweep's (3 curves, 2 switch steps, 2 seeds)."""
    import xarray as xr

    rng = np.random.default_rng(0)
    S, E, K, R = 3, 2, 2, 5
    dims = ("series", "deficit_end", "seed")
    return xr.Dataset(
        {"test_error_final": (dims, rng.uniform(0.1, 1, (S, E, K))),
         "train_loss_final": (dims, rng.uniform(0.1, 1, (S, E, K))),
         "status": (dims, np.full((S, E, K), "max_steps")),
         "test_error": (dims + ("time",), rng.uniform(0.1, 1, (S, E, K, R))),
         "train_loss": (dims + ("time",), rng.uniform(0.1, 1, (S, E, K, R))),
         "singular_values": (dims + ("time", "singular"), rng.uniform(0, 1, (S, E, K, R, 12)))},
        coords={"series": [0, 1, 2], "deficit_end": [0, 2], "seed": [4, 7],
                "time": [0, 1, 2, 3, 4], "singular": np.arange(12)})


def test_completion_entries_and_curves():
    from dlnfusion.compare import completion_curves, completion_entries

    ds = _fake_dataset()
    entries = completion_entries(ds, _TABLE, steps_scale=10, steps_after=2, deficit_count=30,
                                 depth=2)
    assert [(e["pretrain_rank"], e["n_observed"], e["switch_step"]) for e in entries] == [
        (2, 60, 0), (2, 60, 20), (5, 40, 0), (5, 40, 20), (5, 60, 0), (5, 60, 20)]
    e = entries[3]                                 # curve 1, deficit_end 2, last step 2 + 2
    errs = ds.test_error_final.values[1, 1]
    assert e["experiment"] == 1 and e["depth"] == 2 and e["seeds"] == [4, 7]
    assert e["test_error_final"] == errs.tolist() and e["status"] == ["max_steps"] * 2
    assert e["test_error_mean"] == pytest.approx((errs[0] + errs[1]) / 2, rel=1e-15)
    assert e["test_error_sd"] == pytest.approx(abs(errs[0] - errs[1]) / np.sqrt(2), rel=1e-12)
    assert e["singular_values_final_top10"] == ds.singular_values.values[1, 1, :, 4, :10].tolist()
    assert "n_observed_deficit" not in e and entries[4]["n_observed_deficit"] == 30
    one = completion_entries(ds.isel(seed=[0]), _TABLE, depth=2)
    assert one[0]["test_error_sd"] is None
    curves = completion_curves(ds, _TABLE, [(2, 5, 60)], steps_scale=10, depth=2)
    assert [(c["experiment"], c["switch_step"], c["seed"]) for c in curves] == [(2, 0, 4),
                                                                                (2, 20, 4)]
    assert curves[1]["test_error"] == ds.test_error.values[2, 1, 0].tolist()
    assert curves[1]["singular_values_top10"] == ds.singular_values.values[2, 1, 0, :, :10].T.tolist()


def test_switch_claims():
    from dlnfusion.compare import switch_claims

    def entry(exp, depth, rank, count, T, mean):
        return {"experiment": exp, "depth": depth, "pretrain_rank": rank, "n_observed": count,
                "switch_step": T, "test_error_mean": mean}

    entries = [entry(1, 2, 5, 60, 0, 0.5), entry(1, 2, 5, 60, 10, 0.7),
               entry(1, 2, 5, 60, 30, 2.0), entry(1, 2, 2, 60, 0, 0.5),
               entry(1, 2, 2, 60, 30, 0.5), entry(2, 3, 5, 40, 0, 0.25),
               entry(2, 3, 5, 40, 30, 1.0)]
    claims = switch_claims(entries, summarized=[(1, 5, 60), (2, 5, 40)])
    assert claims["experiment1"] == {"D=2/rank=5/count=60": {"T0": 0.5, "Tmax": 2.0, "ratio": 4.0},
                                     "D=2/rank=2/count=60": {"T0": 0.5, "Tmax": 0.5, "ratio": 1.0}}
    assert claims["experiment2"] == {"D=3/n=40": {"T0": 0.25, "Tmax": 1.0, "ratio": 4.0}}
    assert claims["summary"] == {"exp1 D=2": "r=5: 0.5 -> 2", "exp2 D=3": "n=40: 0.25 -> 1"}
    assert "T=0 -> at T=30" in claims["definition"]
    assert len(switch_claims(entries)["summary"]["exp1 D=2"].split(", ")) == 2


# ------------------------------------------------------------------------- the figure module

def test_figure_module_tiny(tmp_path, monkeypatch):
    from dlnfusion.simulations import kleinman2023l_completion as fig

    # A tiny grid: n = 12, short budgets; the point is the pipeline and the JSON schema.
    monkeypatch.setattr(fig, "QUICK", fig.Config(
        n=12, frobenius=12.0, depths=(2,), seeds=(0, 1), ranks=(2, 5), counts=(40, 60),
        switch_steps=(0, 20, 40), steps_after=40, deficit_count=40, exp2_counts=(50, 60),
        record_every=10, lr=0.2, steps_scale=1, default_rank=5, default_count=60,
        sv_run=dict(depth=2, rank=5, switch_step=20), dtype="float64"))
    result = fig.run(tmp_path, quick=True)
    for ext in ("png", "pdf"):
        assert (tmp_path / f"{fig.ID}.{ext}").stat().st_size > 5000
    assert result["json"].endswith(f"{fig.ID}.json")
    d = json.loads((tmp_path / f"{fig.ID}.json").read_text())
    assert d["figure"] == "kleinman2023l-completion"
    runs = d["runs"]
    keys = {"experiment", "depth", "pretrain_rank", "n_observed", "switch_step",
            "test_error_final"}
    assert all(keys <= set(r) for r in runs)
    exp1 = [r for r in runs if r["experiment"] == 1]
    exp2 = [r for r in runs if r["experiment"] == 2]
    # Experiment 1: the rank sweep at the default count and the count sweep at the default
    # rank (their shared point once), every switch step, every depth; experiment 2: every n.
    combos = {(r["pretrain_rank"], r["n_observed"]) for r in exp1}
    assert combos == {(2, 60), (5, 60), (5, 40)}
    assert len(exp1) == 3 * 3 and len(exp2) == 2 * 3
    for r in runs:
        assert len(r["test_error_final"]) == 2 and r["depth"] == 2
        assert all(np.isfinite(r["test_error_final"])) and r["status"] == ["max_steps", "max_steps"]
    assert {r["n_observed"] for r in exp2} == {50, 60}
    assert all(r["n_observed_deficit"] == 40 for r in exp2)
    curves = d["curves"]
    assert curves and all(len(c["test_error"]) == len(d["curves_time"]) for c in curves)
    assert all(len(c["singular_values_top10"]) == 10 for c in curves)
    sv = d["singular_values_run"]
    assert len(sv["time"]) == len(sv["singular_values"][0]) and sv["depth"] == 2


def test_figure_module_resumes_after_an_interruption(tmp_path, monkeypatch):
    """Interrupted in its second sweep, the figure keeps what it finished; the same command
    completes it, training only the sweeps not saved, with the numbers of an uninterrupted
    run."""
    import dlnfusion
    from dlnfusion.simulations import kleinman2023l_completion as fig

    # One sweep (one call of train_completion) per depth: interrupted in the second.
    monkeypatch.setattr(fig, "QUICK", fig.Config(
        n=12, frobenius=12.0, depths=(1, 2), seeds=(0, 1), ranks=(2, 5), counts=(40, 60),
        switch_steps=(0, 20), steps_after=20, deficit_count=40, exp2_counts=(60,),
        record_every=10, lr=0.2, steps_scale=1, default_rank=5, default_count=60,
        sv_run=dict(depth=2, rank=5, switch_step=20), dtype="float64"))
    original, calls = tc.train_completion, []

    def counted(*a, **kw):
        calls.append(1)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return original(*a, **kw)

    monkeypatch.setattr(tc, "train_completion", counted)
    interrupt_at = None
    fig.run(tmp_path / "whole", quick=True)
    total, calls[:] = len(calls), []
    interrupt_at = 2
    with pytest.raises(dlnfusion.sweep.SweepInterrupted):
        fig.run(tmp_path / "cut", quick=True)
    calls[:], interrupt_at = [], None
    fig.run(tmp_path / "cut", quick=True)
    assert len(calls) == total - 1            # the sweep saved before the interruption
    whole, cut = (json.loads((tmp_path / d / f"{fig.ID}.json").read_text())
                  for d in ("whole", "cut"))
    assert whole["runs"] == cut["runs"] and whole["curves"] == cut["curves"]
