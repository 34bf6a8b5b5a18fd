"""Sensory deficits in mini-batch training: batch transforms, Deficit windows in fit, the
cross-source reconstruction objective, deficit sweeps and the two figures (reduced grids)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optax

from dlnfusion import CrossReconstruction, Deficit, FusionMLP, Gate, Lesion, fit
from dlnfusion.networks import branch_parameters
from dlnfusion.training import sgd
from dlnfusion.compare import deficit_sweep, layer_activity, rsv_sampled
from dlnfusion.data import FusionTask, digit_halves, load_digits, split_views, train_test_split
from dlnfusion.interventions import ImageBlur, ViewDissociation
from dlnfusion.simulations import kleinman2023_deficits_relu as relu_fig
from dlnfusion.simulations import kleinman2023_reconstruction as rec_fig
from dlnfusion.stats import Dataset


@pytest.fixture(scope="module")
def task():
    """Digit halves, cut to 240 training and 120 test images so that training is quick."""
    full = digit_halves()
    return FusionTask(tuple(x[:240] for x in full.train_x), full.train_y[:240],
                      tuple(x[:120] for x in full.test_x), full.test_y[:120], n_classes=10,
                      names=full.names)


def _small(n_pre=1, width=16):
    return FusionMLP((32, 32), depth=n_pre + 3, fusion_layer=n_pre + 1, width=width)


def _kw(**extra):
    return dict(batch_size=60, lr=0.05, momentum=0.9, **extra)


# ---------------------------------------------------------------------- data
def test_split_views_are_the_standardized_halves():
    train, test = train_test_split(load_digits(), 0.25, 0)
    t = split_views(train, test)
    z = (test.images - train.images.mean()) / train.images.std()
    np.testing.assert_allclose(np.concatenate(t.test_x, axis=2), z, rtol=0, atol=1e-6)
    assert t.input_shapes == ((8, 4), (8, 4)) and t.n_train == 1347 and t.n_test == 450
    np.testing.assert_array_equal(t.test_y, test.labels)
    assert t.corrupt is None and t.n_classes == 10


def test_split_views_errors():
    d = load_digits()
    odd = type(d)(d.images[:20, :, :7], d.labels[:20])
    with pytest.raises(ValueError, match="even image width"):
        split_views(odd, odd)
    with pytest.raises(ValueError, match="one image size"):
        split_views(d.subset(np.arange(10)), odd)


# ---------------------------------------------------------------------- transforms
def test_image_blur_is_the_block_mean():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 8, 4)).astype(np.float32)
    out = np.asarray(ImageBlur("B", 4).blur(jnp.asarray(x)))
    # independent computation: loops over the 4×4 blocks
    want = np.empty_like(x)
    for i in range(0, 8, 4):
        for j in range(0, 4, 4):
            want[:, i:i + 4, j:j + 4] = x[:, i:i + 4, j:j + 4].mean(axis=(1, 2))[:, None, None]
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-6)
    # a projection: blurring twice changes nothing (float32 rounding)
    twice = np.asarray(ImageBlur("B", 4).blur(jnp.asarray(out)))
    np.testing.assert_allclose(twice, out, rtol=0, atol=1e-6)
    xs, y = ImageBlur("B", 2)(None, (jnp.asarray(x), jnp.asarray(x)), jnp.arange(3), None, None,
                              ("A", "B"))
    np.testing.assert_array_equal(np.asarray(xs[0]), x)          # view A untouched
    assert ImageBlur("B", 1).blur(jnp.asarray(x)).shape == x.shape


def test_image_blur_errors(task):
    with pytest.raises(ValueError, match="factor must be a positive integer"):
        ImageBlur("B", 0)
    with pytest.raises(ValueError, match="must divide"):
        ImageBlur("B", 3).check(task)
    with pytest.raises(ValueError, match="modality must be one of"):
        ImageBlur("C", 2).check(task)
    flat = FusionTask(tuple(x.reshape(x.shape[0], -1) for x in task.train_x), task.train_y,
                      tuple(x.reshape(x.shape[0], -1) for x in task.test_x), task.test_y,
                      n_classes=10)
    with pytest.raises(ValueError, match="needs images"):
        ImageBlur("B", 2).check(flat)


def test_view_dissociation_draws_views_and_labels():
    P, n = 500, 4000
    pool_y = jnp.asarray(np.arange(P) % 10)
    pool_x = (jnp.zeros((P, 2)), jnp.asarray(np.repeat(np.arange(P)[:, None], 2, 1), jnp.float32))
    idx = np.arange(n) % P
    xs = (jnp.asarray(np.repeat(idx[:, None], 2, 1), jnp.float32), pool_x[1][idx])
    y = pool_y[idx]
    (xa, xb), lab = ViewDissociation()(jax.random.PRNGKey(3), xs, y, pool_x, pool_y,
                                       ("A", "B"))
    xa, xb, lab = np.asarray(xa), np.asarray(xb), np.asarray(lab)
    np.testing.assert_array_equal(xa, np.asarray(xs[0]))        # view A is the batch's own
    j = xb[:, 0].astype(int)                                     # which pool sample B shows
    np.testing.assert_array_equal(xb[:, 1], j)
    from_a, from_b = lab == np.asarray(y), lab == np.asarray(pool_y)[j]
    assert np.all(from_a | from_b)
    # B's sample is independent of the batch: it equals the batch's own about 1/P of the time
    assert np.mean(j == idx) < 5.0 / P
    # the label comes from A's sample with probability ½ (only the cases where the two labels
    # differ tell which); tolerance 4 standard deviations of a binomial proportion
    differ = np.asarray(y) != np.asarray(pool_y)[j]
    frac = np.mean(from_a[differ])
    assert abs(frac - 0.5) < 4 * np.sqrt(0.25 / differ.sum())


def test_view_dissociation_errors():
    one = FusionTask((np.zeros((4, 2)),), np.arange(4) % 2, (np.zeros((2, 2)),),
                     np.arange(2) % 2, n_classes=2, names=("A",))
    with pytest.raises(ValueError, match="at least two views"):
        ViewDissociation().check(one)
    reg = FusionTask((np.zeros((4, 2)), np.zeros((4, 2))), np.zeros((4, 1)),
                     (np.zeros((2, 2)), np.zeros((2, 2))), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="classification task"):
        ViewDissociation().check(reg)


# ---------------------------------------------------------------------- windows in fit
def _blurred(task, factor):
    b = ImageBlur("B", factor)
    bl = lambda x: np.asarray(b.blur(jnp.asarray(x)))  # noqa: E731
    return FusionTask((task.train_x[0], bl(task.train_x[1])), task.train_y, task.test_x,
                      task.test_y, n_classes=10, names=task.names)


def test_fit_deficit_windows_per_seed(task):
    """Seeds (0, 0, 0) with windows [0, 0), [0, E) and [0, E) on pre-blurred data: the empty
    window is normal training, the full window is training on blurred images (computed
    independently: the data blurred before fit), bit for bit the same batches."""
    model, E = _small(), 4
    h = fit(model, task, (0, 0), epochs=E, interventions=[Deficit(ImageBlur("B", 2), 0,
                                                                   [0, E])], **_kw())
    plain = fit(model, task, (0,), epochs=E, **_kw())
    pre = fit(model, _blurred(task, 2), (0,), epochs=E, **_kw())
    for a, b in ((h.train_loss[0], plain.train_loss[0]), (h.train_loss[1, 1:], pre.train_loss[0, 1:])):
        np.testing.assert_allclose(a, b, rtol=2e-6)
    np.testing.assert_allclose(h.test_acc[1], pre.test_acc[0], atol=1e-6)
    assert not np.allclose(h.train_loss[0, 1:], h.train_loss[1, 1:])


def test_fit_deficit_window_switches_at_its_end(task):
    """A window [0, 2) of 4 epochs: the first two epochs are those of blurred training, the
    last two differ from both uninterrupted runs, and the batches seeds can be chunked."""
    model = _small()
    h = fit(model, task, (0,), epochs=4, chunk_epochs=1,
            interventions=[Deficit(ImageBlur("B", 2), 0, 2)], **_kw())
    pre = fit(model, _blurred(task, 2), (0,), epochs=4, **_kw())
    plain = fit(model, task, (0,), epochs=4, **_kw())
    np.testing.assert_allclose(h.train_loss[0, 1:3], pre.train_loss[0, 1:3], rtol=2e-6)
    assert not np.allclose(h.train_loss[0, 3:], pre.train_loss[0, 3:], rtol=1e-4)
    assert not np.allclose(h.train_loss[0, 3:], plain.train_loss[0, 3:], rtol=1e-4)
    sequential = fit(model, task, (0, 1), epochs=4, batch_seeds=False,
                     interventions=[Deficit(ImageBlur("B", 2), 0, [2, 0])], **_kw())
    np.testing.assert_allclose(sequential.train_loss[0], h.train_loss[0], rtol=2e-6)
    one = fit(model, task, (1,), epochs=4, **_kw())
    np.testing.assert_allclose(sequential.train_loss[1], one.train_loss[0], rtol=2e-6)


def _frozen_by_optax(model, task, group):
    """An independent freeze: optax.multi_transform with set_to_zero for the parameters of
    ``group``: branch m by index (its layers and its block of the fusion layer), or "post"
    (the fusion bias and the layers after fusion)."""
    params = model.init(jax.random.PRNGKey(0))
    label = lambda tree, name: jax.tree_util.tree_map(lambda _: name, tree)  # noqa: E731
    labels = label(params, "train")
    if group == "post":
        labels["fused_b"], labels["post"] = "frozen", label(params["post"], "frozen")
    else:
        for key in ("branches", "fused"):
            labels[key] = tuple(label(b, "frozen" if m == group else "train")
                                for m, b in enumerate(params[key]))
    steps = -(-task.n_train // 60)
    return optax.multi_transform({"train": sgd(0.05, momentum=0.9, steps_per_epoch=steps),
                                  "frozen": optax.set_to_zero()}, labels)


@pytest.mark.parametrize("group, index", [("B", 1), ("post", "post")])
def test_fit_gate_freezes_a_group(task, group, index):
    """A Gate over all epochs is training with the group's updates set to zero (optax's
    multi_transform, an independent implementation); its parameters stay at their initial
    values; an empty window (per-seed end 0) is plain training."""
    model, E = _small(), 3
    h = fit(model, task, (0, 0), epochs=E, interventions=[Gate(group, 0, [E, 0])], **_kw())
    ref = fit(model, task, (0,), epochs=E, batch_size=60,
              optimizer=_frozen_by_optax(model, task, index))
    plain = fit(model, task, (0,), epochs=E, **_kw())
    np.testing.assert_allclose(h.train_loss[0], ref.train_loss[0], rtol=2e-6)
    np.testing.assert_allclose(h.test_acc[0], ref.test_acc[0], atol=1e-6)
    np.testing.assert_allclose(h.train_loss[1], plain.train_loss[0], rtol=2e-6)
    init = model.init(jax.random.fold_in(jax.random.PRNGKey(0), 0))
    final = jax.tree_util.tree_map(lambda a: a[0], h.params)
    if group == "post":
        pairs = [(final["post"], init["post"]), (final["fused_b"], init["fused_b"])]
        moved = final["branches"][1], init["branches"][1]
    else:
        pairs = [(branch_parameters(model, final)[1], branch_parameters(model, init)[1])]
        moved = final["post"], init["post"]
    for a, b in pairs:
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
            np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(moved[0]),
                                                         jax.tree_util.tree_leaves(moved[1])))


def test_fit_window_errors(task):
    model = _small()
    for windows, match in (
            (Deficit(ImageBlur(), 0, 1), "list of Deficit and Gate"),
            ([Lesion("A", unit=0)], "fit takes Deficit and Gate windows"),
            ([Gate("C", 0, 1)], "group must be one of"),
            ([Deficit("blur", 0, 1)], "batch transform"),
            ([Deficit(ImageBlur("B", 2), 0, 1.5)], "whole number of epochs"),
            ([Deficit(ImageBlur("B", 2), 2, 1)], "start must not exceed end"),
            ([Deficit(ImageBlur("B", 2), 0, [1, 2, 3])], "one value per run"),
            ([Deficit(ImageBlur("B", 2), 0, 2), Deficit(ViewDissociation(), 1, 3)], "overlap"),
            ([Deficit(ImageBlur("B", 3), 0, 1)], "must divide")):
        with pytest.raises(ValueError, match=match):
            fit(model, task, (0, 1), epochs=2, interventions=windows, **_kw())


# ---------------------------------------------------------------------- reconstruction
def test_cross_reconstruction_loss_and_pairing(task):
    base = _small(n_pre=1, width=8)
    rec = CrossReconstruction(base, 0.7)
    p = rec.init(jax.random.PRNGKey(0))
    # the network starts where the base network starts from the same key
    q = base.init(jax.random.PRNGKey(0))
    for a, b in zip(jax.tree_util.tree_leaves(p["net"]), jax.tree_util.tree_leaves(q)):
        np.testing.assert_array_equal(a, b)
    xs = tuple(jnp.asarray(x[:5]) for x in task.train_x)
    # numpy: pre-fusion representation relu(W x + b), linear decoders, MSE per pixel
    (W_a, b_a), = p["net"]["branches"][0]
    (W_b, b_b), = p["net"]["branches"][1]
    xa, xb = (np.asarray(x).reshape(5, -1) for x in xs)
    ha, hb = np.maximum(xa @ np.asarray(W_a).T + b_a, 0), np.maximum(xb @ np.asarray(W_b).T + b_b, 0)
    (Dab, cab), (Dba, cba) = p["decoders"]
    want = np.mean((ha @ np.asarray(Dab).T + cab - xb) ** 2, 1) + \
        np.mean((hb @ np.asarray(Dba).T + cba - xa) ** 2, 1)
    np.testing.assert_allclose(np.asarray(rec.auxiliary_loss(p, xs)), 0.7 * want, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(rec.apply(p, xs)), np.asarray(base.apply(q, xs)))
    assert rec.pairs() == ((0, 1), (1, 0))


def test_reconstruction_weight_zero_is_plain_training(task):
    base = _small(n_pre=1)
    h0 = fit(CrossReconstruction(base, 0.0), task, (0,), epochs=3, **_kw())
    h = fit(base, task, (0,), epochs=3, **_kw())
    np.testing.assert_allclose(h0.train_loss, h.train_loss, rtol=2e-6)
    h1 = fit(CrossReconstruction(base, 1.0), task, (0,), epochs=3, **_kw())
    # the recorded loss includes the reconstruction term: larger than the task loss alone
    assert np.all(h1.train_loss[0] > h.train_loss[0])
    # the reconstruction error falls during training (decoders and encoders learn)
    rec = CrossReconstruction(base, 1.0)
    xs = tuple(jnp.asarray(x[:100]) for x in task.test_x)
    p0 = rec.init(jax.random.fold_in(jax.random.PRNGKey(0), 0))
    p3 = jax.tree_util.tree_map(lambda a: a[0], h1.params)
    assert float(jnp.mean(rec.reconstruction_error(p3, xs))) < \
        0.9 * float(jnp.mean(rec.reconstruction_error(p0, xs)))


def test_cross_reconstruction_errors():
    with pytest.raises(ValueError, match="fusion_layer >= 2"):
        CrossReconstruction(FusionMLP((4, 4), depth=2, fusion_layer=1, width=4))
    with pytest.raises(ValueError, match="weight must be finite and >= 0"):
        CrossReconstruction(_small(), -1.0)
    with pytest.raises(ValueError, match="base must be a FusionMLP"):
        CrossReconstruction("net")


def test_layer_activity_of_a_reconstruction_model(task):
    rec = CrossReconstruction(_small(n_pre=1, width=8), 1.0)
    p = rec.init(jax.random.PRNGKey(1))
    xs = tuple(jnp.asarray(x[:7].reshape(7, -1)) for x in task.test_x)
    for layer in (1, 2, 3):
        np.testing.assert_array_equal(np.asarray(layer_activity(rec, p, layer)(xs)),
                                      np.asarray(layer_activity(rec.base, p["net"], layer)(xs)))


# ---------------------------------------------------------------------- sweeps
def test_deficit_sweep_measures(task):
    model = _small(n_pre=1)
    sw = deficit_sweep(model, task, [ImageBlur("B", 4), ViewDissociation()], (0, 2), (0, 1),
                       budget=2, layers=(3, 2), n_rsv=16, **_kw())
    assert sw.test_acc.shape == (2, 2, 2) and sw.unimodal_acc.shape == (2, 2, 2, 2)
    assert sw.layers == (3, 2) and sw.rsv[3].shape == (2, 2, 2, 16)
    # N = 0 is plain training of the same seeds for the budget, for either deficit
    plain = fit(model, task, (0, 1), epochs=2, **_kw())
    for k in range(2):
        np.testing.assert_allclose(sw.test_acc[k, 0], plain.test_acc[:, -1], atol=1e-6)
    # the blur arm of N = 2 is a fit with its window alone
    one = fit(model, task, (0, 1), epochs=4, interventions=[Deficit(ImageBlur("B", 4), 0, 2)],
              **_kw())
    np.testing.assert_allclose(sw.test_acc[0, 1], one.test_acc[:, -1], atol=1e-6)
    assert not np.allclose(sw.curves[1][1], sw.curves[1][0])
    # the measures from the RSV array, recomputed here
    r = sw.rsv[3][0]
    live = ~np.isnan(r)
    np.testing.assert_allclose(sw.polarized[3][0],
                               np.sum(live & (np.abs(np.nan_to_num(r)) > 0.9), -1) /
                               np.maximum(live.sum(-1), 1))
    np.testing.assert_allclose(sw.dead[3][0], 1 - live.mean(-1))
    # and the RSV is rsv_sampled's on the test views with the final weights
    p = jax.tree_util.tree_map(lambda a: a[1], plain.params)
    views = Dataset(tuple(x.reshape(x.shape[0], -1).astype(float) for x in task.test_x),
                    np.zeros((task.n_test, 1)), task.names)
    want = rsv_sampled(layer_activity(model, p, 3), views, 16, 16, seed=1).rsv
    np.testing.assert_allclose(r[0, 1], want, atol=1e-5, equal_nan=True)
    assert sw.epochs[1][-1] == 4 and sw.curves[1].shape == (2, 2, sw.epochs[1].size)


def test_deficit_sweep_errors(task):
    model = _small()
    for kw, match in ((dict(lengths=()), "at least one"), (dict(budget=-1), "budget"),
                      (dict(layers=5), "non-empty list"), (dict(layers=(9,)), "in 1..4"),
                      (dict(threshold=1.0), "threshold"),
                      (dict(lengths=(-2,)), "non-negative")):
        args = dict(lengths=(0,), budget=1)
        args.update(kw)
        with pytest.raises(ValueError, match=match):
            deficit_sweep(model, task, ImageBlur("B", 4), args.pop("lengths"), (0,), **args,
                          **_kw())
    with pytest.raises(ValueError, match="at least one batch transform"):
        deficit_sweep(model, task, [], (0,), (0,), budget=1, **_kw())


# ---------------------------------------------------------------------- figures
@pytest.fixture()
def tiny_figures(monkeypatch, task):
    monkeypatch.setattr(relu_fig, "digit_halves", lambda mnist=None: task)
    monkeypatch.setattr(rec_fig, "digit_halves", lambda mnist=None: task)
    monkeypatch.setattr(relu_fig, "WIDTH", 16)
    monkeypatch.setattr(relu_fig, "N_RSV", 16)
    monkeypatch.setattr(relu_fig, "N_PRE", 1)           # one network per condition: one
    monkeypatch.setattr(relu_fig, "QUICK", dict(seeds=2, lengths=(0, 3), budget=2,  # compile
                                                depths=(1,), depth_lengths=(0, 3)))
    monkeypatch.setattr(relu_fig, "QUICK_CONDITIONS", {"noise": dict(noise=0.5)})
    monkeypatch.setattr(rec_fig, "QUICK", dict(seeds=2, lengths=(0, 3), budget=2))
    monkeypatch.setattr(rec_fig, "LINEAR_QUICK", dict(seeds=1, lengths=(0, 20),
                                                      networks=((2, 2),)))
    monkeypatch.setattr(rec_fig.lin, "BUDGET", {**rec_fig.lin.BUDGET, (2, 2): 700})


def _load(tmp_path, fig_id):
    for ext in ("png", "pdf"):
        assert (tmp_path / f"{fig_id}.{ext}").stat().st_size > 5000
    return json.loads((tmp_path / f"{fig_id}.json").read_text())


def test_deficits_relu_figure(tmp_path, tiny_figures):
    relu_fig.run(tmp_path, quick=True)
    d = _load(tmp_path, relu_fig.ID)
    pts = [p for p in d["points"] if p["condition"] == "default"]
    assert {(p["deficit"], p["n_pre"], p["N"]) for p in pts} == {
        (k, 1, N) for k in relu_fig.DEFICITS for N in (0, 3)}
    cond = [p for p in d["points"] if p["condition"] == "noise"]
    assert {(p["deficit"], p["n_pre"], p["N"]) for p in cond} == {
        (k, 1, N) for k in relu_fig.DEFICITS for N in (0, 3)}
    # pixel noise changes the training: other final weights (here: RSV) than the default's
    zero_noise = next(p for p in cond if p["N"] == 0)
    assert zero_noise["mean_rsv"] != next(p for p in pts if p["N"] == 0)["mean_rsv"]
    assert set(d["claims_by_condition"]) == {"default", "noise"}
    # at N = 0 every deficit's runs are the same runs (trained in one batch): equal results
    for n in (1,):
        zero = [p for p in pts if p["N"] == 0 and p["n_pre"] == n]
        assert len(zero) == 2 and zero[0]["test_acc"] == zero[1]["test_acc"]
        assert zero[0]["rsv_histogram"] == zero[1]["rsv_histogram"]
    for p in pts:
        assert len(p["test_acc"]) == 2 and abs(sum(p["rsv_histogram"]) - 1) < 1e-9
        assert p["rsv_layer"] == p["n_pre"] + 2 and p["fusion_layer"]["layer"] == p["n_pre"] + 1
    for k in relu_fig.DEFICITS:
        claim = d["claims"][f"{k}: deeper pre-fusion stacks suffer more"]
        # one pre-fusion depth here, so the deepest-minus-shallowest difference is an entry
        # minus itself; the entry itself is checked instead: the paired accuracy drop
        # (N = 0 minus N = 3, per seed) recomputed with numpy from the records' accuracies,
        # to float64 rounding of a mean of two differences of multiples of 1/120
        assert set(claim["by_n_pre"]) == {"1"}
        acc = {N: np.asarray(next(p for p in pts if p["deficit"] == k and p["N"] == N)
                             ["test_acc"], float) for N in (0, 3)}
        drop = acc[0] - acc[3]
        got = claim["by_n_pre"]["1"]
        assert got["accuracy_drop"] == pytest.approx(np.mean(drop), rel=0, abs=1e-15)
        assert got["accuracy_drop_se"] == pytest.approx(
            np.std(drop, ddof=1) / np.sqrt(drop.size), rel=0, abs=1e-15)
    from dlnfusion import cli
    assert cli.FIGURES[relu_fig.ID] == "dlnfusion.simulations.kleinman2023_deficits_relu"


def test_reconstruction_figure(tmp_path, tiny_figures):
    rec_fig.run(tmp_path, quick=True)
    d = _load(tmp_path, rec_fig.ID)
    pts = d["points"]
    assert {(p["deficit"], p["reconstruction_weight"], p["N"]) for p in pts} == {
        (k, w, N) for k in relu_fig.DEFICITS for w in (0.0, rec_fig.WEIGHT) for N in (0, 3)}
    for k in relu_fig.DEFICITS:
        a = d["answers"][k]
        assert set(a) >= {"test_acc", "polarized", "removes_polarization", "N"}
    lin = d["linear"]["points"]
    assert {(p["deficit"], p["rho"], p["N"], p["reconstruction_weight"]) for p in lin} == {
        (k, r, N, w) for k in rec_fig.lin.DEFICITS for r in rec_fig.lin.RHOS for N in (0, 20)
        for w in (0.0, rec_fig.WEIGHT)}
    # the deficit arms share their undisturbed runs (N = 0) per weight
    zero = [p for p in lin if p["N"] == 0 and p["rho"] == 0.5]
    assert len({tuple(p["t_B_sim"]) for p in zero if p["reconstruction_weight"] == 0}) == 1
    from dlnfusion import cli
    assert cli.FIGURES[rec_fig.ID] == "dlnfusion.simulations.kleinman2023_reconstruction"
