"""The reduced simulators as runners: their results follow the run contract of
dlnfusion.results (a time axis, a status per run, one batched object for a batch, indexing and
reshape), and the package layering that keeps rules and runners out of the theory."""
import ast
from pathlib import Path

import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import reduced as rd
from dlnfusion import theory as th
from dlnfusion.compare import measure_unimodal_phase, predict_unimodal_phase
from dlnfusion.results import Run, Status, first_crossing

PACKAGE = Path(dln.__file__).resolve().parent


def test_balanced_run_is_one_batched_object():
    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.5)
    spec = dln.NetworkSpec.fusion(2, 2, width=12)
    gram = th.initial_gram(spec, dln.init_batch(spec, [0, 1, 2, 3], scale=1e-6))
    batch = rd.balancing_two_layer(stats, 0.04, gram, 1500, balancing="inforeg", epoch=10)
    assert isinstance(batch, Run) and batch.batch_shape == (4,) and len(batch) == 4
    assert batch.time.shape == (1501,) and batch.w.shape == (4, 1501, 2)
    assert batch.coefficient.shape == batch.regulated.shape == (4, 1500, 2)
    assert batch.status.dtype == np.int8 and np.all(batch.status == Status.MAX_STEPS)
    assert batch.valid.shape == (4,) and batch.caveats.shape == (4,)
    # a run of the batch is the run alone
    one = rd.balancing_two_layer(stats, 0.04, gram[2], 1500, balancing="inforeg", epoch=10)
    assert one.batch_shape == () and isinstance(one.caveats, tuple)
    for name in ("w", "trace", "coefficient", "regulated", "crossing", "t_A", "t_B", "ratio",
                 "valid", "status"):
        np.testing.assert_array_equal(getattr(batch[2], name), getattr(one, name), name)
    # labels: configurations × seeds
    grid = batch.reshape(2, 2)
    assert grid.batch_shape == (2, 2) and grid.w.shape == (2, 2, 1501, 2)
    np.testing.assert_array_equal(grid[1, 0].t_B, batch.t_B[2])
    with pytest.raises(ValueError, match="cannot reshape"):
        batch.reshape(3, 2)
    # the first-crossing rule of dlnfusion.results, on the recorded weights (the global
    # solution computed here by another route: a last-digit difference, 4 ε relative)
    np.testing.assert_allclose(
        batch.crossing, first_crossing(batch.w / stats.global_solution()[0], batch.time, 0.5,
                                       axis=-2), rtol=4 * np.finfo(float).eps)


def test_flags_are_per_run():
    """ρ = −0.75: the global weight of B has the sign opposite to Σ_yx,B; every run of a
    batch of balancing_deep is flagged, each with its own caveats."""
    stats = dln.Stats.scalar_toy(2.0, 1.0, -0.75)
    batch = rd.balancing_deep(stats, 4, 0.04, np.array([[0.1, 0.1], [0.05, 0.1]]), 20)
    assert batch.batch_shape == (2,) and not np.any(batch.valid)
    assert all("sign opposite to Sigma_yx" in c[-1] for c in batch.caveats)
    ok = rd.balancing_deep(dln.Stats.scalar_toy(2.0, 1.0, 0.5), 4, 0.04, 0.1, 20)
    assert ok.valid and ok.caveats == ()


def test_noisy_run_has_a_status_per_path():
    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.0)
    spec = dln.NetworkSpec.fusion(2, 2, width=8)
    x = th.noise_gram(spec, dln.init_batch(spec, [0, 1, 2], scale=0.1))
    law = rd.ogm_ge_two_layer(stats, 0.04, x, 8, 3000, paths=6, record_every=100)
    assert law.batch_shape == (3,) and law.paths == 6 and law.status.shape == (3, 6)
    assert law.t_A.shape == (3, 6) and law.w_mean.shape == (3, law.time.size, 2)
    assert law.diverged.shape == (3, 6) and law.diverged_fraction.shape == (3,)
    # every path that did not diverge stopped at the stopping rule
    assert np.all(np.isin(law.status, (Status.CONVERGED, Status.DIVERGED)))
    np.testing.assert_array_equal(law.diverged_fraction,
                                  np.mean(law.status == Status.DIVERGED, axis=-1))
    np.testing.assert_array_equal(law.reached, np.mean(np.isfinite(law.ratio), axis=-1))
    np.testing.assert_array_equal(law[1].t_B, law.t_B[1])
    assert law[1].batch_shape == () and law[1].status.shape == (6,)
    # without a stopping rule every path spends the budget
    budget = rd.ogm_ge_two_layer(stats, 0.04, x[0], 8, 50, paths=4, stop_loss=None)
    assert np.all(budget.status == Status.MAX_STEPS)
    # a learning rate past the edge of stability: every path diverges and is marked so
    bad = rd.ogm_ge_two_layer(stats, 1.5, x[0], 8, 200, paths=4)
    assert np.all(bad.status == Status.DIVERGED) and bad.diverged_fraction == 1.0


def test_pathway_and_fisher_runs_report_divergence():
    good = rd.reduced_pathways([2.0, 1.0], 0.3, (2, 2), 0.05, 40)
    assert good.batch_shape == () and good.status == Status.MAX_STEPS
    # η s ≫ 1: gradient descent on the reduced map blows up
    bad = rd.reduced_pathways([2.0, 1.0], 0.3, (2, 2), 3.0, 40)
    assert bad.status == Status.DIVERGED and not np.all(np.isfinite(bad.K))
    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.0)
    fr = rd.fisher_late_fusion(stats, 2, 0.04, [1e-3, 1e-3], 100, record_every=10)
    assert isinstance(fr, rd.FisherRun) and fr.status == Status.MAX_STEPS
    assert fr.time.shape == (11,) and fr.trace.shape == (11, 2)
    assert rd.fisher_late_fusion(stats, 2, 4.0, [0.5, 0.5], 300).status == Status.DIVERGED


def test_predict_unimodal_phase_measures_the_reduced_run():
    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.3)
    spec = dln.NetworkSpec.fusion(3, 2, width=20)
    p = dln.init_batch(spec, [0, 1], scale=0.1)
    meas, traj = predict_unimodal_phase(spec, stats, p, 0.04, steps=3000)
    again = rd.train_reduced(spec, stats, p, 0.04, steps=3000)
    np.testing.assert_array_equal(measure_unimodal_phase(again).t_B, meas.t_B)
    assert np.all(np.isfinite(meas.t_B))
    with pytest.raises(ValueError, match="needs a linear network"):
        rd.train_reduced(dln.NetworkSpec.fusion(2, 2, width=4, activation="relu"), stats,
                         dln.init_batch(dln.NetworkSpec.fusion(2, 2, width=4), [0]), 0.04)


def _imports(path):
    """The dlnfusion modules a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = ".".join(("dlnfusion",) + path.relative_to(PACKAGE).parent.parts)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return {m for m in out if m and m.startswith("dlnfusion")}


def _layer(folder):
    files = [PACKAGE / f"{folder}.py"] if (PACKAGE / f"{folder}.py").exists() \
        else sorted((PACKAGE / folder).glob("*.py"))
    return {f.name: _imports(f) for f in files}


def test_layering():
    """Method rules live once and the theory only predicts: the transforms and the training
    never import the theory, the theory never imports the training or the reduced runners,
    and the rules import only the base modules."""
    def uses(mods, name):
        return {m for m in mods if m == name or m.startswith(name + ".")}

    for folder in ("transforms", "training"):
        for f, mods in _layer(folder).items():
            assert not uses(mods, "dlnfusion.theory"), f"{folder}/{f}"
    for f, mods in _layer("theory").items():
        assert not uses(mods, "dlnfusion.training") | uses(mods, "dlnfusion.reduced"), \
            f"theory/{f}"
    allowed = ("dlnfusion.networks", "dlnfusion.precision", "dlnfusion.stats",
               "dlnfusion.results")
    for mods in _layer("rules").values():
        assert all(any(m == a or m.startswith(a + ".") for a in allowed) for m in mods), mods
    for f, mods in _layer("reduced").items():
        assert not uses(mods, "dlnfusion.compare"), f"reduced/{f}"


def test_reduced_pathways_take_the_network_windows():
    """Gate and Lesion windows (as train takes them) drive the reduced pathways exactly as the
    (pathway, start, end) rows they stand for."""
    from dlnfusion import Gate, Lesion
    kw = dict(method="gd", record_every=5)
    rows = rd.reduced_pathways((3.0, 1.0), 0.05, (3, 3), 0.05, 400,
                               gates=((1, 20.0, 150.0),), lesions=((0, 1, 0.0, np.inf),), **kw)
    wins = rd.reduced_pathways((3.0, 1.0), 0.05, (3, 3), 0.05, 400,
                               gates=(Gate("b", start=20, end=150),),
                               lesions=(Lesion("a", mode=1, start=0, end=None),), **kw)
    np.testing.assert_array_equal(rows.K, wins.K)
    assert np.all(wins.K[:, 0, 1] == 0.0)                  # the lesioned mode never grows
    with pytest.raises(ValueError, match="not units"):
        rd.reduced_pathways((3.0,), 0.05, (3, 3), 0.05, 10, lesions=(Lesion("a", unit=0),))
    with pytest.raises(ValueError, match="pathway 'zz'"):
        rd.reduced_pathways((3.0,), 0.05, (3, 3), 0.05, 10, gates=(Gate("zz", end=5),))
