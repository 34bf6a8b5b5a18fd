"""Table 1's module on reduced networks, on the digits and on MNIST files the test writes, and
the command line's --mnist option."""
import json

import numpy as np
import pytest

from dlnfusion import cli
from dlnfusion.data import MNIST_FILES
from dlnfusion.simulations import zhang2024_table1 as table1

from test_data import _write_idx

TINY = {  # the MLP at a larger learning rate, so that 20 epochs of a width-16 network learn
    "mlp": {"lr": 0.3, "epochs": 20, "mnist_epochs": 4, "quick_epochs": 20, "size": 16,
            "quick_size": 16, "quick_fusion_layers": (1, 5)},
    "cnn": {"lr": 0.002, "epochs": 2, "mnist_epochs": 2, "quick_epochs": 2, "size": 4,
            "quick_size": 4, "quick_fusion_layers": (2,)},
}


def _check(out, data, layers):
    d = json.loads((out / "zhang2024-table1.json").read_text())
    assert d["data"] == data and d["task"]["p_b"] == 0.6 and d["task"]["p_a"] == 0.2
    got = [(r["network"], r["fusion_layer"]) for r in d["rows"]]
    assert got == layers
    for r in d["rows"]:
        assert len(r["time_ratio"]) == len(d["parameters"]["seeds"]) == 2
        assert (r["paper_mean"], r["paper_std"]) == tuple(
            table1.PAPER_TABLE[r["network"]][r["fusion_layer"] - 1])
        ratio = np.array([np.nan if v is None else v for v in r["time_ratio"]], float)
        assert np.all(ratio[np.isfinite(ratio)] >= 1.0)  # second over first
        assert r["epochs_run"] <= r["epoch_budget"]
    for stem in ("zhang2024-table1", "zhang2024-table1-fig7", "zhang2024-table1-fig14",
                 "zhang2024-table1-fig13"):
        for ext in ("png", "pdf"):
            assert (out / f"{stem}.{ext}").stat().st_size > 5000
    return d


def test_table1_on_digits(tmp_path, monkeypatch):
    monkeypatch.setattr(table1, "NETWORKS", TINY)
    result = table1.run(tmp_path, quick=True)
    d = _check(tmp_path, "digits", [("mlp", 1), ("mlp", 5), ("cnn", 2)])
    assert result["summary"]["data"] == "digits"
    # the tiny MLP learns within 20 epochs of 14 batches: accuracy far above chance (0.1)
    assert min(r["final_test_acc"][0] for r in d["rows"] if r["network"] == "mlp") > 0.5


def test_table1_on_mnist_files(tmp_path, monkeypatch):
    """The same command on a folder of IDX files (random 28×28 images, the format's check)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for split, n in (("train", 120), ("test", 40)):
        _write_idx(folder / MNIST_FILES[split][0], rng.integers(0, 256, size=(n, 28, 28)))
        _write_idx(folder / MNIST_FILES[split][1], np.arange(n) % 10)
    tiny = {"mlp": {**TINY["mlp"], "quick_fusion_layers": (1,)},
            "cnn": {**TINY["cnn"], "quick_fusion_layers": ()}}
    monkeypatch.setattr(table1, "NETWORKS", tiny)
    assert cli.main(["reproduce", "zhang2024-table1", "--quick", "--mnist", str(folder),
                     "--out", str(tmp_path / "out")]) == 0
    d = _check(tmp_path / "out", "mnist", [("mlp", 1)])
    assert d["task"]["image_shape"] == [28, 28] and d["task"]["n_train"] == 120


def test_mnist_option_errors(tmp_path):
    with pytest.raises(SystemExit, match="--mnist: zhang2024-fig2 does not use image data"):
        cli.main(["reproduce", "zhang2024-fig2", "--mnist", str(tmp_path), "--out", "x"])
    with pytest.raises(SystemExit, match="--mnist: mnist folder .* does not exist"):
        cli.main(["reproduce", "zhang2024-table1", "--mnist", str(tmp_path / "none"),
                  "--out", str(tmp_path / "out")])


def test_table1_resumes_after_an_interruption(tmp_path, monkeypatch):
    """Interrupted (Ctrl-C) in its second training call, Table 1 keeps the grid point it
    finished; the same command then trains only the missing points and writes the numbers of
    an uninterrupted run (all but the wall times)."""
    import dlnfusion
    import dlnfusion.sweep.runners.classifiers as runners

    tiny = {"mlp": {**TINY["mlp"], "quick_epochs": 10, "quick_fusion_layers": (1, 5)},
            "cnn": {**TINY["cnn"], "quick_fusion_layers": (2,)}}
    monkeypatch.setattr(table1, "NETWORKS", tiny)
    fit, total = runners.fit, []
    monkeypatch.setattr(runners, "fit", lambda *a, **kw: total.append(1) or fit(*a, **kw))
    table1.run(tmp_path / "whole", quick=True)
    calls = []

    def interrupted(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fit(*a, **kw)

    monkeypatch.setattr(runners, "fit", interrupted)
    with pytest.raises(dlnfusion.sweep.SweepInterrupted, match="1 of 2 chunks"):
        table1.run(tmp_path / "cut", quick=True)
    counted = []
    monkeypatch.setattr(runners, "fit", lambda *a, **kw: counted.append(1) or fit(*a, **kw))
    table1.run(tmp_path / "cut", quick=True)
    assert len(total) == 3 and len(counted) == 2     # the finished point is not trained again
    whole, cut = (json.loads((tmp_path / d / "zhang2024-table1.json").read_text())
                  for d in ("whole", "cut"))
    for w, c in zip(whole["rows"], cut["rows"]):
        w.pop("seconds"), c.pop("seconds")
        assert w == c
    assert len(whole["rows"]) == 3
