import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion.compare import measure_unimodal_phase
from dlnfusion.sweep import Sweep, Train, load

JOB = Path(__file__).parent / "helpers" / "sweep_job.py"


def _job(mode, out, *extra, env=None):
    return subprocess.run([sys.executable, str(JOB), mode, str(out), *map(str, extra)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    r = _job("one", out)
    assert r.returncode == 0, r.stderr
    return load(out / "sweep.nc")


def _assert_same(a, b, rtol=1e-10):
    assert set(a.data_vars) == set(b.data_vars)
    for k in a.data_vars:
        x, y = a[k].values, b[k].values
        if x.dtype.kind == "f":
            np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-300, equal_nan=True)
        else:
            assert np.array_equal(x, y), k


def test_labels_and_values_match_a_direct_simulation(reference):
    ds = reference
    assert ds.time_ratio.dims == ("fusion_layer", "rho", "seed")
    assert list(ds.fusion_layer.values) == [1, 2] and ds.rho.values.tolist() == [-0.6, 0.0, 0.6]
    assert ds.loss.dims == ("fusion_layer", "rho", "seed", "time")
    assert ds.map_A.dims[-2:] == ("out", "in_A")
    assert set(np.unique(ds.status.values)) == {"converged"}
    # One grid point, recomputed directly.
    spec = dln.NetworkSpec.fusion(2, 2, width=20)
    st = dln.Stats.scalar_toy(2.0, 1.0, 0.6)
    traj = dln.simulate(spec, st, seeds=[0, 1], scale=1e-6, steps=4000, record_every=20)
    m = measure_unimodal_phase(traj)
    np.testing.assert_allclose(ds.time_ratio.sel(fusion_layer=2, rho=0.6).values, m.time_ratio,
                               rtol=1e-10)
    assert ds.time_ratio_gradient_flow.sel(fusion_layer=2, rho=0.6).item() == pytest.approx(
        dln.theory.time_ratio_gradient_flow(st).value)
    assert ds.time_ratio_leading_order.sel(fusion_layer=1).values.tolist() == [1.0] * 3


def test_theory_columns_belong_to_the_swept_network(reference):
    """Early fusion (L_f = 1) gets its own ratio, 1 at leading order, with the caveat that the
    limit is approached as 1/ln(1/u0) (simulated here at u0 = 4.5e-6: 1.07–1.30, above 1 as
    the caveat says), and no plateau columns, with the reason; late fusion gets eq. (9) and
    the saddle's values, valid; the validity and caveats travel with every column."""
    ds = reference
    early, late = ds.sel(fusion_layer=1), ds.sel(fusion_layer=2)
    assert early.time_ratio_gradient_flow.values.tolist() == [1.0] * 3
    assert bool(early.time_ratio_gradient_flow_valid.all())
    assert np.all(early.time_ratio.values > 1.0)
    assert all("1/ln(1/u0)" in c for c in early.time_ratio_gradient_flow_caveats.values)
    for k in ("misattribution_theory", "plateau_loss_theory"):
        assert np.all(np.isnan(early[k].values)) and not early[k + "_valid"].any()
        assert all("early fusion has no unimodal plateau" in c
                   for c in early[k + "_caveats"].values)
        assert np.all(np.isfinite(late[k].values)) and bool(late[k + "_valid"].all())
    st = dln.Stats.scalar_toy(2.0, 1.0, -0.6)
    assert late.misattribution_theory.sel(rho=-0.6).item() == pytest.approx(
        dln.theory.misattribution(st).value)
    assert late.time_ratio_gradient_flow_caveats.sel(rho=0.0).item() == ""


def test_sharded_over_four_host_devices(reference, tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    r = _job("shard4", tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    _assert_same(reference, load(tmp_path / "sweep.nc"))


def test_two_processes_under_jax_distributed(reference, tmp_path):
    # The coordinator's port is picked free here and bound by process 0 only later; another
    # program may take it in between. Such a lost race shows as a failed start, so it is
    # retried with a new port (at most three attempts); every attempt writes its own folder.
    for attempt in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        out = tmp_path / f"attempt{attempt}"
        procs = [subprocess.Popen([sys.executable, str(JOB), f"proc{i}", str(out), str(port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        if all(p.returncode == 0 for p in procs):
            break
    assert all(p.returncode == 0 for p in procs), outs
    assert "process 1/2" in outs[1][1] and "process 0/2" in outs[0][1]
    _assert_same(reference, load(out / "sweep.nc"))


def test_killed_sweep_resumes(reference, tmp_path):
    r = _job("killed", tmp_path)
    assert r.returncode == -signal.SIGKILL
    done = sorted(p.name for p in (tmp_path / "chunks").glob("*.npz"))
    assert len(done) == 2 and not (tmp_path / "sweep.nc").exists()
    r = _job("chunks", tmp_path)
    assert r.returncode == 0, r.stderr
    for name in done:
        assert f"chunk {name[:-4]} already finished: skipped" in r.stderr
    assert r.stderr.count("done in") == 2   # only the two missing chunks were computed
    _assert_same(reference, load(tmp_path / "sweep.nc"))


def test_in_process_sweep_with_predictions_and_divergence(tmp_path):
    sw = Sweep(grid={"lr": [0.04, 5.0]},
               runner=Train(stats=lambda: dln.Stats.scalar_toy(1.5, 1.0, 0.3),
                            network=lambda: dln.NetworkSpec.fusion(3, 2, width=10),
                            predict=True, record=False),
               fixed={"scale": 0.1, "scheme": "frobenius", "steps": 3000, "record_every": 50},
               seeds=[0])
    ds = sw.run(tmp_path, progress=False)
    assert ds.status.values.ravel().tolist() == ["converged", "diverged"]
    assert "loss" not in ds and "time_ratio_predicted" in ds
    assert ds.time_ratio_predicted.sel(lr=0.04).item() == pytest.approx(
        ds.time_ratio.sel(lr=0.04).item(), rel=0.02)
    # Intermediate fusion from random weights: the aligned leading order is kept but flagged.
    assert np.all(np.isfinite(ds.time_ratio_leading_order.values))
    assert not ds.time_ratio_leading_order_valid.any()
    assert all("theory.random_init_times" in c
               for c in ds.time_ratio_leading_order_caveats.values)
    # The same directory with another definition is refused.
    other = Sweep(grid={"lr": [0.04]},
                  runner=Train(stats=lambda: dln.Stats.scalar_toy(1.5, 1.0, 0.3),
                               network=lambda: dln.NetworkSpec.fusion(3, 2, width=10)),
                  seeds=[0])
    with pytest.raises(ValueError, match="different sweep"):
        other.run(tmp_path, progress=False)


def test_sweep_errors(tmp_path):
    stats = lambda rho: dln.Stats.scalar_toy(2.0, 1.0, rho)  # noqa: E731
    net = lambda: dln.NetworkSpec.fusion(2, 2, width=4)  # noqa: E731
    run = Train(stats, net)
    with pytest.raises(ValueError, match="neither"):
        Sweep(grid={"rho": [0.1], "colour": [1]}, runner=run)
    with pytest.raises(ValueError, match="both swept and fixed"):
        Sweep(grid={"rho": [0.1]}, runner=run, fixed={"rho": 0.2})
    with pytest.raises(ValueError, match="record_every"):
        Sweep(grid={"rho": [0.1], "record_every": [10, 20]}, runner=run)
    with pytest.raises(ValueError, match="repeated"):
        Sweep(grid={"rho": [0.1, 0.1]}, runner=run)
    with pytest.raises(ValueError, match="at least one"):
        Sweep(grid={}, runner=run)
    with pytest.raises(ValueError, match="seeds"):
        Sweep(grid={"rho": [0.1]}, runner=run, seeds=[1, 1])
    with pytest.raises(ValueError, match="seeds"):
        Sweep(grid={"rho": [0.1]}, runner=run, seeds=[1.5])
    with pytest.raises(ValueError, match="runner must be a dlnfusion.sweep.Runner"):
        Sweep(grid={"rho": [0.1]}, runner=stats)
    bad = Sweep(grid={"rho": [0.1]}, runner=Train(stats, lambda: "net"))
    with pytest.raises(ValueError, match="NetworkSpec"):
        bad.run(tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="DLNFUSION"):
        dln.sweep.init_distributed()


# ---------------------------------------------------------------- interruption and resume
def _small_sweep():
    """Six runs (three grid points, two seeds) of a two-layer network: fast to compile."""
    return Sweep(grid={"rho": [-0.5, 0.0, 0.5]},
                 runner=Train(stats=lambda rho: dln.Stats.scalar_toy(2.0, 1.0, rho),
                              network=lambda: dln.NetworkSpec.fusion(2, 2, width=4)),
                 fixed={"scale": 1e-3, "steps": 600, "record_every": 20}, seeds=[0, 1])


class _Training:
    """Stands in for the sweep's batched training call: counts the chunks trained (and their
    sizes) and raises KeyboardInterrupt, as Ctrl-C inside the jitted loop would, on call
    ``interrupt_at``."""

    def __init__(self, train, interrupt_at=None):
        self.train, self.interrupt_at, self.sizes = train, interrupt_at, []

    def __call__(self, spec, data, params, **kw):
        if len(self.sizes) + 1 == self.interrupt_at:
            raise KeyboardInterrupt
        self.sizes.append(len(data))
        return self.train(spec, data, params, **kw)


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    return _small_sweep().run(out, chunk_size=6, progress=False), out


def _interrupted(monkeypatch, out, chunk_size, interrupt_at):
    """Run the small sweep in chunks of ``chunk_size`` and interrupt it at that chunk."""
    import dlnfusion.sweep.runners.networks as sweep_module

    training = _Training(sweep_module.train, interrupt_at)
    monkeypatch.setattr(sweep_module, "train", training)
    with pytest.raises(dln.sweep.SweepInterrupted) as info:
        _small_sweep().run(out, chunk_size=chunk_size, progress=False)
    return training, info.value


def test_load_takes_the_run_folder(small_reference, tmp_path):
    ds, out = small_reference
    _assert_same(ds, load(out))                  # the folder given to Sweep.run
    _assert_same(ds, load(out / "sweep.nc"))     # and, as before, the file in it
    _assert_same(ds, load(str(out)))
    with pytest.raises(FileNotFoundError, match="holds no sweep result: load takes the folder"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no sweep result at"):
        load(tmp_path / "nowhere")


def test_interrupted_sweep_keeps_its_chunks_and_resumes(small_reference, tmp_path, monkeypatch):
    """Ctrl-C during the third of three chunks: the two finished chunks stay saved, a short
    SweepInterrupted (a KeyboardInterrupt, no traceback chained through the training) says
    how many and how to resume, and the same call then computes only the missing chunk."""
    import dlnfusion.sweep.runners.networks as sweep_module

    ref, _ = small_reference
    out = tmp_path / "cut"
    training, err = _interrupted(monkeypatch, out, chunk_size=2, interrupt_at=3)
    assert isinstance(err, KeyboardInterrupt) and err.__suppress_context__
    assert training.sizes == [2, 2]
    assert (err.saved, err.total, err.folder) == (2, 3, out)
    msg = str(err)
    assert "2 of 3 chunks (4 of 6 runs) are saved" in msg
    assert f"run the same sweep on the same folder again (Sweep.run({str(out)!r}" in msg
    assert len(list((out / "chunks").glob("*.npz"))) == 2
    assert not (out / "sweep.nc").exists()
    with pytest.raises(FileNotFoundError, match="unfinished sweep .4 runs saved"):
        load(out)
    resumed = _Training(training.train)
    monkeypatch.setattr(sweep_module, "train", resumed)
    ds = _small_sweep().run(out, chunk_size=2, progress=False)
    assert resumed.sizes == [2]                  # only the interrupted chunk
    _assert_same(ref, ds)


def test_resume_with_another_chunk_size(small_reference, tmp_path, monkeypatch, capsys):
    """Chunks saved with chunk_size=2 are matched run by run when the sweep resumes with 4,
    then with 3: only the runs no saved chunk holds are trained, and the Dataset is the one
    of an uninterrupted sweep."""
    import dlnfusion.sweep.runners.networks as sweep_module

    ref, _ = small_reference
    out = tmp_path / "rechunked"
    training, err = _interrupted(monkeypatch, out, chunk_size=2, interrupt_at=2)
    assert "1 of 3 chunks (2 of 6 runs)" in str(err)
    resumed = _Training(training.train)
    monkeypatch.setattr(sweep_module, "train", resumed)
    ds = _small_sweep().run(out, chunk_size=4, progress=False)
    assert resumed.sizes == [2, 2]   # runs 2–3 of the first chunk of 4, then runs 4–5
    _assert_same(ref, ds)
    again = _Training(training.train)
    monkeypatch.setattr(sweep_module, "train", again)
    capsys.readouterr()
    _assert_same(ref, _small_sweep().run(out, chunk_size=3))
    assert again.sizes == []
    assert capsys.readouterr().err.count("already finished: skipped") == 2


# ---------------------------------------------------------------- other runners
def test_theory_only_sweep(tmp_path):
    """Predict: a sweep of closed forms, no training. Each run is the theory function's result
    at its grid point (recomputed here directly), labeled; the caveats travel as strings."""
    from dlnfusion.sweep import Predict

    def ratio(rho, sigma_a):
        return dln.theory.time_ratio_gradient_flow(dln.Stats.scalar_toy(sigma_a, 1.0, rho))

    sw = Sweep(grid={"rho": [-0.5, 0.0, 0.5], "sigma_a": [1.5, 2.0]}, runner=Predict(ratio))
    ds = sw.run(tmp_path, progress=False)
    assert ds.value.dims == ("rho", "sigma_a", "seed") and ds.valid.dtype == bool
    for rho in (-0.5, 0.0, 0.5):
        for sa in (1.5, 2.0):
            want = ratio(rho, sa)
            assert ds.value.sel(rho=rho, sigma_a=sa).item() == want.value
            assert ds.caveats.sel(rho=rho, sigma_a=sa).item() == "\n".join(want.caveats)
    # A TimePrediction: its fields and its ratio, one variable each.
    times = Sweep(grid={"scale": [1e-3, 1e-6]}, runner=Predict(
        lambda scale: dln.theory.times_leading_order(dln.Stats.scalar_toy(2.0, 1.0, 0.3), scale,
                                                     lr=0.04)))
    tds = times.run(tmp_path / "times", progress=False)
    want = dln.theory.times_leading_order(dln.Stats.scalar_toy(2.0, 1.0, 0.3), 1e-6, lr=0.04)
    assert tds.t_B.sel(scale=1e-6).item() == want.t_B and tds.ratio.sel(scale=1e-6).item() == \
        want.ratio
    assert tds.first.values.ravel().tolist() == [want.first] * 2
    with pytest.raises(ValueError, match="neither"):
        Sweep(grid={"colour": [1]}, runner=Predict(ratio))


def test_fit_sweep_is_fit(tmp_path):
    """Fit: a sweep over the learning rate of a small classifier on the digit halves; each
    grid point's records are those of fit called directly with the same seeds."""
    from dlnfusion.sweep import Fit

    full = dln.data.digit_halves()
    task = dln.FusionTask(tuple(x[:120] for x in full.train_x), full.train_y[:120],
                          tuple(x[:60] for x in full.test_x), full.test_y[:60], n_classes=10,
                          names=full.names)
    model = dln.FusionMLP((32, 32), depth=3, fusion_layer=2, width=8)
    sw = Sweep(grid={"lr": [0.05, 0.1]}, runner=Fit(model=lambda: model, task=lambda: task),
               fixed={"epochs": 2, "batch_size": 40}, seeds=[0, 3])
    ds = sw.run(tmp_path, progress=False)
    assert ds.test_acc.dims == ("lr", "seed", "epoch")
    assert ds.unimodal_acc.dims == ("lr", "seed", "modality", "epoch")
    assert ds.modality.values.tolist() == list(task.names) and ds.epoch.values.tolist() == [0, 1, 2]
    h = dln.fit(model, task, [0, 3], epochs=2, batch_size=40, lr=0.1)
    np.testing.assert_array_equal(ds.train_loss.sel(lr=0.1).values, h.train_loss)
    np.testing.assert_array_equal(ds.unimodal_acc.sel(lr=0.1).values, h.unimodal_acc)
    assert ds.status.values.ravel().tolist() == ["max_steps"] * 4
    assert not np.array_equal(ds.train_loss.sel(lr=0.05).values, h.train_loss)


def _completion_sweep():
    from dlnfusion.data.completion import low_rank_target, nested_masks
    from dlnfusion.sweep import Completion

    n = 8
    return Sweep(grid={"rank": [1, 3], "deficit_end": [0, 6]},
                 runner=Completion(target=lambda seed: low_rank_target(50 + seed, n, 2, 8.0),
                                   mask=lambda seed: nested_masks(seed, n, (40,))[0],
                                   deficit_target=lambda rank, seed: low_rank_target(
                                       seed, n, rank, 8.0)),
                 fixed={"depth": 2, "steps": 12, "lr": 0.3, "scale": 0.3, "record_every": 2,
                        "record_until": 18}, seeds=[0, 1])


def test_completion_sweep_is_train_completion(tmp_path):
    """Completion: each run's records are those of train_completion called directly on its
    own task with its deficit window."""
    from dlnfusion.data.completion import low_rank_target, nested_masks
    from dlnfusion.interventions import Deficit
    from dlnfusion.training import CompletionTask, train_completion

    ds = _completion_sweep().run(tmp_path, progress=False)
    assert ds.test_error.dims == ("rank", "deficit_end", "seed", "time")
    assert ds.singular_values.dims[-2:] == ("time", "singular")
    for seed in (0, 1):
        targets = np.stack([low_rank_target(50 + seed, 8, 2, 8.0), low_rank_target(seed, 8, 3, 8.0)])
        r = train_completion(targets, nested_masks(seed, 8, (40,)), depth=2, seeds=seed,
                             steps=18, target=0, mask=0, lr=0.3, scale=0.3, record_every=2,
                             interventions=[Deficit(CompletionTask(target=1), end=6)])
        got = ds.test_error.sel(rank=3, deficit_end=6, seed=seed).values
        np.testing.assert_allclose(got[:7], r.test_error[0, :7], rtol=1e-12)
    assert ds.status.values.ravel().tolist() == ["max_steps"] * 8


def test_interrupted_completion_sweep_resumes(tmp_path, monkeypatch):
    """A sweep of another runner resumes alike: interrupted at its second chunk, re-run with
    the same folder, it computes only what is missing and ends with the uninterrupted
    Dataset."""
    import dlnfusion.training.completion as tc

    ref = _completion_sweep().run(tmp_path / "ref", chunk_size=4, progress=False)
    calls, original = [], tc.train_completion

    def flaky(*a, **kw):
        if len(calls) == 1:
            raise KeyboardInterrupt
        calls.append(1)
        return original(*a, **kw)

    monkeypatch.setattr(tc, "train_completion", flaky)
    with pytest.raises(dln.sweep.SweepInterrupted, match="1 of 2 chunks"):
        _completion_sweep().run(tmp_path / "cut", chunk_size=4, progress=False)
    monkeypatch.setattr(tc, "train_completion", original)
    _assert_same(ref, _completion_sweep().run(tmp_path / "cut", chunk_size=3, progress=False),
                 rtol=0)


def test_reduced_sweep_is_the_prediction_of_train(tmp_path):
    """Reduced: the reduced dynamics of the runs Train would simulate, without training them;
    its times are Train(predict=True)'s predicted times (same initial weights), computed
    without the networks."""
    from dlnfusion.sweep import Reduced

    stats = lambda rho: dln.Stats.scalar_toy(2.0, 1.0, rho)  # noqa: E731
    net = lambda: dln.NetworkSpec.fusion(3, 2, width=10)  # noqa: E731
    fixed = {"scale": 0.1, "scheme": "frobenius", "steps": 3000, "record_every": 50}
    red = Sweep(grid={"rho": [-0.3, 0.4]}, runner=Reduced(stats, net), fixed=fixed,
                seeds=[0, 1]).run(tmp_path / "r", progress=False)
    sim = Sweep(grid={"rho": [-0.3, 0.4]}, runner=Train(stats, net, predict=True, record=False),
                fixed=fixed, seeds=[0, 1]).run(tmp_path / "s", progress=False)
    for k in ("t_A", "t_B", "time_ratio"):
        np.testing.assert_allclose(red[k].values, sim[f"{k}_predicted"].values, rtol=1e-12)
    assert "time_ratio_gradient_flow" in red and red.first.values.ravel().tolist() == ["A"] * 4
    with pytest.raises(ValueError, match="Reduced predicts linear networks"):
        Sweep(grid={"rho": [0.1]}, runner=Reduced(
            stats, lambda: dln.NetworkSpec.fusion(3, 2, width=10, activation="relu"))).run(
            tmp_path / "x", progress=False)


def test_balancing_sweeps_are_their_direct_calls(tmp_path):
    """Balance, ReducedBalance and OGMLaw: a sweep over ρ and the method gives labeled
    Datasets whose runs are dlnfusion.train with the method's optimizer, balancing_two_layer
    and ogm_ge_two_layer called directly on the same initial weights."""
    import optax

    from dlnfusion import reduced as rd
    from dlnfusion import theory as th
    from dlnfusion.sweep import Balance, Balancing, OGMLaw, ReducedBalance

    stats = lambda rho: dln.Stats.scalar_toy(2.0, 1.0, rho)  # noqa: E731
    net = lambda: dln.NetworkSpec.fusion(2, 2, width=10)  # noqa: E731
    methods = {"joint": Balancing(), "inforeg": Balancing("inforeg", epoch=5),
               "ogm_ge": Balancing("ogm_ge", alpha=0.5)}
    grid = {"rho": [0.0, 0.5], "balancing": ["joint", "inforeg"]}
    fixed = {"scale": 1e-3, "steps": 400, "record_every": 10}
    sim = Sweep(grid, Balance(stats, net, methods=methods), fixed, [0, 1]).run(
        tmp_path / "s", progress=False)
    red = Sweep(grid, ReducedBalance(stats, net, methods=methods, record=True), fixed,
                [0, 1]).run(tmp_path / "r", progress=False)
    law = Sweep({"rho": [0.5]}, OGMLaw(stats, net, noise_seed=lambda rho: 7, methods=methods),
                {**fixed, "balancing": "ogm_ge", "paths": 8}, [0, 1]).run(
        tmp_path / "l", progress=False)
    assert sim.loss.dims == ("rho", "balancing", "seed", "time")
    assert red.w.dims == ("rho", "balancing", "seed", "step", "modality")
    spec, params = net(), dln.init_batch(net(), [0, 1], scale=1e-3)
    tr = dln.train(spec, stats(0.5), params, steps=400, record_every=10,
                   optimizer=lambda lr: optax.chain(dln.transforms.inforeg(spec, epoch=5),
                                                    optax.sgd(lr)))
    got = sim.sel(rho=0.5, balancing="inforeg")
    np.testing.assert_array_equal(got.loss.values, tr.loss)
    np.testing.assert_array_equal(got.final_map_A.values, np.asarray(tr.final_maps[0]))
    want = rd.balancing_two_layer(stats(0.5), 0.04, th.initial_gram(spec, params), 400,
                                  balancing="inforeg", epoch=5)
    np.testing.assert_array_equal(red.w.sel(rho=0.5, balancing="inforeg").values, want.w)
    np.testing.assert_array_equal(red.t_A.sel(rho=0.5, balancing="inforeg").values, want.t_A)
    noisy = rd.ogm_ge_two_layer(stats(0.5), 0.04, th.noise_gram(spec, params), 10, 400,
                                alpha=0.5, paths=8, seed=7, record_every=10)
    np.testing.assert_array_equal(law.time_ratio.sel(rho=0.5).values, noisy.ratio_mean)
    with pytest.raises(ValueError, match="not among the runner's methods"):
        Sweep({"balancing": ["ogm"]}, Balance(stats, net, methods=methods), {"rho": 0.0})
    with pytest.raises(ValueError, match="method must be one of"):
        Balancing("greedy")


def test_balance_fit_sweep_is_fit(tmp_path):
    """BalanceFit: each method's runs are fit called directly with the method's mini-batch
    transformations chained before weight decay and SGD with momentum, decayed at an epoch."""
    import optax

    from dlnfusion.sweep import BalanceFit, Balancing

    full = dln.data.digit_halves()
    task = dln.FusionTask(tuple(x[:120] for x in full.train_x), full.train_y[:120],
                          tuple(x[:60] for x in full.test_x), full.test_y[:60], n_classes=10,
                          names=full.names)
    model = dln.FusionMLP((32, 32), depth=3, fusion_layer=3, width=8)
    methods = {"joint": Balancing(), "inforeg": Balancing("inforeg", window="always")}
    ds = Sweep({"balancing": ["joint", "inforeg"]},
               BalanceFit(lambda: model, lambda: task, methods),
               {"epochs": 2, "batch_size": 40, "lr": 0.05, "momentum": 0.9,
                "weight_decay": 1e-4, "decay_at": 1}, seeds=[0, 3]).run(tmp_path, progress=False)
    assert ds.unimodal_acc.dims == ("balancing", "seed", "modality", "epoch")

    def opt(lr):
        sched = optax.piecewise_constant_schedule(lr, {3: 0.1})
        return optax.chain(dln.transforms.inforeg_batches(model, window="always"),
                           optax.chain(optax.add_decayed_weights(1e-4),
                                       optax.sgd(sched, momentum=0.9)))
    h = dln.fit(model, task, [0, 3], epochs=2, batch_size=40, lr=0.05, optimizer=opt)
    np.testing.assert_array_equal(ds.train_loss.sel(balancing="inforeg").values, h.train_loss)
    np.testing.assert_array_equal(ds.test_acc.sel(balancing="inforeg").values, h.test_acc)


def test_fisher_trace_sweep_is_train_and_its_reduction(tmp_path):
    """FisherTrace: the recorded traces are train's fisher_observable, the theory is
    fisher_late_fusion from the initial weights, the windows prime_window's."""
    from dlnfusion import reduced as rd
    from dlnfusion.compare import fisher_observable
    from dlnfusion.rules import prime_window
    from dlnfusion.sweep import FisherTrace

    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.0)
    net = lambda: dln.NetworkSpec.fusion(2, 2, width=10)  # noqa: E731
    ds = Sweep({"lr": [0.04]}, FisherTrace(lambda: stats, net),
               {"scale": 1e-3, "steps": 300, "mc_samples": 2000, "mc_stride": 100},
               seeds=[0, 1]).run(tmp_path, progress=False)
    assert ds.trace.dims == ("lr", "seed", "time", "modality")
    params = dln.init_batch(net(), [0, 1], scale=1e-3)
    tr = dln.train(net(), stats, params, steps=300, record_every=10, stop_loss=None,
                   observe={"fisher": fisher_observable(spec=net())})
    F = np.asarray(tr.records["fisher"])
    np.testing.assert_array_equal(ds.trace.isel(lr=0).values, F)
    u, v = np.asarray(params.branches[0][0])[1, :, 0], np.asarray(params.branches[0][1])[1, 0]
    w = [u @ v, np.asarray(params.branches[1][0])[1, :, 0] @ np.asarray(params.branches[1][1])[1, 0]]
    norms = [np.sum(u ** 2) + np.sum(v ** 2),
             sum(np.sum(np.asarray(W)[1] ** 2) for W in params.branches[1])]
    r = rd.fisher_late_fusion(stats, 2, 0.04, w, 300, init_norms=norms)
    np.testing.assert_allclose(ds.trace_fine.isel(lr=0, seed=1).values, r.trace, rtol=1e-12)
    np.testing.assert_array_equal(ds.window_paper.isel(lr=0, seed=0).values,
                                  prime_window(F[0].T, K=0.04))
    assert ds.check.values.tolist() == [0.0, 100.0, 200.0, 300.0]
    assert np.all(np.isnan(ds.mc_z.isel(lr=0, seed=1).values))
    assert np.all(ds.mc_z.isel(lr=0, seed=0).values < 5)     # per-sample gradients agree


def _pathway_windows(gate_end, lesion=False):
    """Pathway b gated during [0, gate_end); with ``lesion``, a's largest mode lesioned."""
    from dlnfusion import Gate, Lesion
    out = [Gate("b", start=0.0, end=float(gate_end))]
    return out + ([Lesion("a", mode=0, start=0, end=None)] if lesion else [])


def test_pathway_sweeps_are_their_direct_calls(tmp_path):
    """Pathways: the runs of a group are one train call from init_pathways (seeds draw the
    jitter), their windows stacked; ReducedPathways: reduced_pathways of each run."""
    from dlnfusion import Gate, Lesion, NetworkSpec, init_pathways, train
    from dlnfusion.data import hierarchy
    from dlnfusion.reduced import reduced_pathways
    from dlnfusion.sweep import Pathways, ReducedPathways
    from dlnfusion.training import mode_strengths

    def task():
        return hierarchy(pathways=2)

    def network(depth):
        return NetworkSpec.pathways((depth, depth), 8, 15, width=12)

    fixed = {"lr": 0.05, "steps": 120, "record_every": 10, "strength": 0.02}
    ds = Sweep({"depth": [2, 3], "gate_end": [0.0, 30.0, 60.0]},
               Pathways(task, network, _pathway_windows), {**fixed, "jitter": 0.01},
               seeds=[0, 1]).run(tmp_path / "net", progress=False)
    assert ds.K.dims == ("depth", "gate_end", "seed", "time", "pathway", "mode")
    assert ds.pathway.values.tolist() == ["a", "b"] and ds.mode.size == 8
    np.testing.assert_array_equal(ds.time, np.arange(0, 121, 10))
    st, spec = task(), network(3)
    params = init_pathways(spec, st, seeds=[0, 1] * 3, strength=0.02, jitter=0.01)
    tr = train(spec, st, params, lr=0.05, steps=120, record_every=10, stop_loss=None,
               observe={"K": mode_strengths(st)},
               interventions=[Gate("b", start=np.zeros(6), end=np.repeat([0.0, 30.0, 60.0], 2))])
    np.testing.assert_array_equal(ds.K.sel(depth=3).values.reshape(6, 13, 2, 8),
                                  np.asarray(tr.records["K"]))
    assert not np.array_equal(ds.K.sel(seed=0), ds.K.sel(seed=1))       # jittered
    assert set(ds.status.values.ravel()) == {"max_steps"}

    red = Sweep({"depth": [2, 3], "gate_end": [0.0, 30.0], "method": ["gd", "gf"]},
                ReducedPathways(task, network, _pathway_windows),
                {**fixed, "lesion": True}).run(tmp_path / "reduced", progress=False)
    assert red.K.dims == ("depth", "gate_end", "method", "seed", "time", "pathway", "mode")
    for D in (2, 3):
        for end in (0.0, 30.0):
            for method in ("gd", "gf"):
                r = reduced_pathways(st.modes(0)[1], 0.02 ** (1 / D), (D, D), 0.05, 120,
                                     gates=(Gate("b", 0.0, end),),
                                     lesions=(Lesion("a", mode=0, start=0, end=None),),
                                     method=method, record_every=10)
                np.testing.assert_array_equal(
                    red.K.sel({"depth": D, "gate_end": end, "method": method, "seed": 0}).values, r.K)
    assert np.all(red.K.sel(pathway="a", mode=0).values == 0)          # the lesion


def _toy(sigma_ratio):
    return dln.Stats.scalar_toy(sigma_ratio, 1.0, 0.6)


def _linear_late():
    return dln.NetworkSpec.fusion(2, 2, width=20)


def _relu_late():
    return dln.NetworkSpec.fusion(2, 2, width=20, activation="relu")


def test_train_level_final_below_and_closed_form_times(tmp_path):
    """Train's ``level`` and ``final_below`` are measure_unimodal_phase's on the same runs;
    ClosedFormTimes gives theory.predict_times (predict_times_relu) from the runs' initial
    weights, NaN for tied modalities."""
    from dlnfusion import theory as th
    from dlnfusion.sweep import ClosedFormTimes

    grid, seeds = {"sigma_ratio": [1.0, 2.0]}, [0, 1]
    fixed = {"scale": 1e-6, "steps": 3000, "stop_loss": 1e-7, "record_every": 5}
    ds = Sweep(grid, Train(_toy, _relu_late, record=False, level=1.0, final_below=1e-3),
               fixed, seeds).run(tmp_path / "train", progress=False)
    tr = dln.simulate(_relu_late(), [_toy(1.0), _toy(2.0)], seeds=seeds, scale=1e-6,
                      steps=3000, stop_loss=1e-7, record_every=5, levels=(0.5, 1.0))
    m = measure_unimodal_phase(tr, level=1.0, final_below=1e-3)
    np.testing.assert_array_equal(ds.time_ratio.values, m.time_ratio)
    np.testing.assert_array_equal(ds.misattribution_final_below.values, m.misattribution)
    assert not np.array_equal(ds.misattribution.values, m.misattribution)
    for net, predict in ((_linear_late, th.predict_times), (_relu_late, th.predict_times_relu)):
        cf = Sweep(grid, ClosedFormTimes(_toy, net), fixed, seeds).run(
            tmp_path / net.__name__, progress=False)
        assert np.all(np.isnan(cf.time_ratio.sel(sigma_ratio=1.0)))
        st = _toy(2.0)
        w0 = th.effective_init(net(), tr.reshape(4).initial_params, th.phase_directions(st))
        want = [np.ravel(predict(st, 0.04, w).ratio)[0] for w in w0[2:]]
        np.testing.assert_allclose(cf.time_ratio.sel(sigma_ratio=2.0).values, want, rtol=1e-12)


def test_random_init_times_from_each_runs_initial_weights(tmp_path):
    """RandomInitTimes: theory.random_init_times from each seed's alignment seeds (the
    frobenius scheme drawn at scale 1, rescaled), NaN for early fusion; per grid point the
    leading order and the average over the initialization's laws (1 for early fusion)."""
    from dlnfusion import theory as th
    from dlnfusion.sweep import RandomInitTimes

    def net(fusion_layer):
        return dln.NetworkSpec.fusion(4, fusion_layer, width=12)

    grid, seeds = {"fusion_layer": [1, 3], "sigma_ratio": [2.0]}, [0, 2]
    fixed = {"scheme": "frobenius", "scale": 0.1, "lr": 0.04}
    ds = Sweep(grid, RandomInitTimes(_toy, net), fixed, seeds).run(tmp_path / "s",
                                                                   progress=False)
    assert np.all(np.isnan(ds.time_ratio.sel(fusion_layer=1).values))
    st, spec = _toy(2.0), net(3)
    for j, s in enumerate(seeds):
        w = 0.1 * th.alignment_seeds(spec, dln.init_batch(spec, [s], "frobenius", 1.0))[0]
        want = th.random_init_times(st, 4, 3, 0.1, 12, 0.04, weights=w)
        got = ds.sel(fusion_layer=3, sigma_ratio=2.0).isel(seed=j)
        np.testing.assert_allclose([got.t_A, got.t_B, got.time_ratio],
                                   [want.t_A, want.t_B, want.ratio], rtol=1e-10)
    one = ds.sel(fusion_layer=3, sigma_ratio=2.0).isel(seed=0)
    assert float(one.time_ratio_expected) == th.random_init_times(st, 4, 3, 0.1, 12, 0.04).ratio
    assert float(one.time_ratio_leading_order) == th.time_ratio_leading_order(st, 4, 3, 0.1).value
    early = ds.sel(fusion_layer=1, sigma_ratio=2.0).isel(seed=0)
    assert float(early.time_ratio_expected) == 1.0 and bool(early.time_ratio_expected_valid)
    with pytest.raises(ValueError, match="frobenius"):
        Sweep(grid, RandomInitTimes(_toy, net), {"scale": 0.1}, seeds)


def test_train_final_is_train_on_data_drawn_per_seed(tmp_path):
    """TrainFinal: each run's data drawn with its seed, the final maps, first-layer weights
    and crossing times those of a direct dlnfusion.train of that run."""
    from dlnfusion.data import xor_task
    from dlnfusion.sweep import TrainFinal

    spec = dln.NetworkSpec.fusion(2, 2, width=8, input_dims=(1, 2), activation="relu")
    kw = {"lr": 0.2, "steps": 60, "record_every": 5, "stop_loss": 1e-4, "dtype": "float32",
          "levels": (0.5, 1.0)}
    ds = Sweep({"sigma_a": [1.0, 2.0]},
               TrainFinal(lambda sigma_a, seed: xor_task(sigma_a, 64, seed=seed), lambda: spec,
                          phase=False), {**kw, "scale": 0.1}, seeds=[0, 3]).run(
        tmp_path / "s", progress=False)
    assert "t_A" not in ds and ds.crossing_global.dims[-2:] == ("modality", "level")
    for sa in (1.0, 2.0):
        for j, s in enumerate((0, 3)):
            tr = dln.train(spec, xor_task(sa, 64, seed=s),
                           dln.init_batch(spec, [s], "normal", 0.1), **kw)
            run = ds.sel(sigma_a=sa).isel(seed=j)
            for m, name in enumerate("AB"):
                np.testing.assert_allclose(run[f"first_layer_{name}"].values,
                                           tr.final_params.branches[m][0][0], rtol=1e-6)
                np.testing.assert_allclose(run[f"final_map_{name}"].values, tr.final_maps[m][0],
                                           rtol=1e-6)
            for ref in ("unimodal", "global"):
                np.testing.assert_allclose(run[f"crossing_{ref}"].values,
                                           tr.crossings[ref][0], rtol=1e-6)
            np.testing.assert_allclose(run.loss.values[: len(tr.time)], tr.loss[0], rtol=1e-6)
    with pytest.raises(ValueError, match="recorded levels"):
        Sweep({"sigma_a": [1.0]}, TrainFinal(lambda sigma_a, seed: xor_task(sigma_a, 64, seed),
                                             lambda: spec, level=0.25), kw)


def test_reconstruction_sweep_is_train_reconstruction(tmp_path):
    """Reconstruction: a chunk's distinct runs are one train_reconstruction call in grid order
    (a deficit of length 0 is one run under every deficit name)."""
    from dlnfusion import Deficit, NetworkSpec, Stats, init_batch
    from dlnfusion.sweep import Reconstruction
    from dlnfusion.training import train_reconstruction

    def task(rho):
        return Stats.scalar_toy(2.0, 1.0, rho)

    def network():
        return NetworkSpec.fusion(2, 2, width=6)

    def windows(rho, deficit, N):
        alt = Stats.scalar_toy(2.0, 1.0 if deficit == "weak" else 0.3, rho)
        return [Deficit(alt, start=0, end=N)]

    fixed = {"lr": 0.04, "scale": 0.01, "steps": 600, "decoder_scale": 0.01}
    ds = Sweep({"rho": [0.0, 0.5], "deficit": ["weak", "faint"], "N": [0, 200],
                "weight": [0.0, 1.0]}, Reconstruction(task, network, windows), fixed,
               seeds=[0, 1]).run(tmp_path, progress=False)
    assert ds.t_B.dims == ("rho", "deficit", "N", "weight", "seed")
    # the direct call: per ρ, N = 0 once then each deficit at N = 200, seeds inner
    runs = [(r, d, n, s) for r in (0.0, 0.5) for d, n in (("weak", 0), ("weak", 200),
                                                         ("faint", 200)) for s in (0, 1)]
    res = train_reconstruction(
        network(), [task(r) for r, *_ in runs], init_batch(network(), [s for *_, s in runs],
                                                           "normal", 0.01),
        weight=1.0, lr=0.04, steps=600, decoder_scale=0.01,
        interventions=[Deficit([windows(r, d, n)[0].data for r, d, n, _ in runs], start=0,
                               end=np.array([float(n) for _, _, n, _ in runs]))])
    for i, (r, d, n, s) in enumerate(runs):
        at = {"rho": r, "deficit": d, "N": n, "weight": 1.0, "seed": s}
        assert float(ds.t_B.sel(at)) == res.crossing("B")[i]
        assert float(ds.final_loss.sel(at)) == res.loss[i, -1]
    zero = ds.t_B.sel(N=0)
    np.testing.assert_array_equal(zero.sel(deficit="weak"), zero.sel(deficit="faint"))
    assert not np.array_equal(ds.t_B.sel(N=200, deficit="weak"),
                              ds.t_B.sel(N=200, deficit="faint"))


def test_deficit_fit_sweep_is_deficit_sweep(tmp_path):
    """DeficitFit: the runs that differ in deficit, N and seed are one deficit_sweep call."""
    from dlnfusion import FusionMLP, FusionTask
    from dlnfusion.compare import deficit_sweep
    from dlnfusion.data import digit_halves
    from dlnfusion.interventions import ImageBlur, ViewDissociation
    from dlnfusion.sweep import DeficitFit

    def task():
        full = digit_halves()
        return FusionTask(tuple(x[:120] for x in full.train_x), full.train_y[:120],
                          tuple(x[:60] for x in full.test_x), full.test_y[:60], n_classes=10,
                          names=full.names)

    def model(width):
        return FusionMLP((32, 32), depth=4, fusion_layer=2, width=width)

    def transform(deficit):
        return ImageBlur("B", 4) if deficit == "blur" else ViewDissociation()

    fixed = {"width": 8, "budget": 2, "lr": 0.05, "momentum": 0.9, "batch_size": 60,
             "n_rsv": 8}
    ds = Sweep({"deficit": ["blur", "dissociate"], "N": [0, 2]},
               DeficitFit(model, task, transform, lambda: (3, 2)), fixed,
               seeds=[0, 1]).run(tmp_path, progress=False)
    assert ds.rsv.dims == ("deficit", "N", "seed", "layer", "unit")
    assert ds.layer.values.tolist() == [3, 2] and ds.modality.size == 2
    sw = deficit_sweep(model(8), task(), [ImageBlur("B", 4), ViewDissociation()], [0, 2],
                       [0, 1], budget=2, layers=[3, 2], n_rsv=8, lr=0.05, momentum=0.9,
                       batch_size=60)
    np.testing.assert_array_equal(ds.test_acc.values, sw.test_acc)
    np.testing.assert_array_equal(ds.unimodal_acc.values, sw.unimodal_acc)
    for j, layer in enumerate((3, 2)):
        np.testing.assert_array_equal(ds.rsv.isel(layer=j).values, sw.rsv[layer])
        np.testing.assert_array_equal(ds.polarized.isel(layer=j).values, sw.polarized[layer])
    assert set(ds.status.values.ravel()) <= {"max_steps", "diverged"}


def test_strings_longer_in_later_chunks_are_kept_whole(tmp_path):
    """A text value may be longer in a later chunk than in the first one read (a caveat that
    only some points have): the Dataset keeps every string whole."""
    from dlnfusion.sweep import Predict, Sweep

    sw = Sweep(grid={"n": [1, 40]}, runner=Predict(lambda n: {"text": "x" * n}))
    ds = sw.run(tmp_path, chunk_size=1, progress=False)
    assert ds.text.sel(n=40).item() == "x" * 40 and ds.text.sel(n=1).item() == "x"
