"""The Figure 6 pipeline on a reduced grid (the full grid runs in the CLI and benchmarks)."""
import json

import numpy as np
import pytest

from dlnfusion.simulations import zhang2024_fig6 as fig6


def test_fig6_pipeline_on_a_small_grid(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fig6, "FUSION_LAYERS", (1, 3))
    monkeypatch.setattr(fig6, "QUICK_WIDTH", 16)
    monkeypatch.setattr(fig6, "PANELS", {
        "b": {"param": "rho", "values": np.array([-0.9, 0.45]), "line": np.array([-0.9, 0.45])},
        "c": {"param": "sigma_ratio", "values": np.array([2.0]), "line": np.array([1.5, 2.0])},
        "d": {"param": "init_scale", "values": np.array([0.1]), "line": np.array([0.08, 0.1])},
    })
    res = fig6.run(tmp_path, quick=True)
    data = json.loads((tmp_path / "zhang2024-fig6.json").read_text())
    pts = data["points"]
    assert len(pts) == 2 * (2 + 1 + 1)
    keys = {"panel", "fusion_layer", "rho", "sigma_ratio", "init_scale",
            "time_ratio_leading_order", "time_ratio_theory", "time_ratio_sim"}
    assert keys <= set(pts[0])
    for p in pts:
        assert len(p["time_ratio_sim"]) == 2 and all(s == "converged" for s in p["status"])
        # The reduced-dynamics prediction is the accurate one (also at width 16).
        assert p["time_ratio_theory"] == pytest.approx(np.mean(p["time_ratio_sim"]), rel=0.02)
    early = [p for p in pts if p["fusion_layer"] == 1]
    assert all(p["time_ratio_leading_order"] == 1.0 for p in early)
    assert (tmp_path / "zhang2024-fig6.png").stat().st_size > 10_000
    assert "panel b" in capsys.readouterr().out
    assert res["summary"]["b/all"]["theory_max"] < 0.02


def test_fig6_resumes_after_an_interruption(tmp_path, monkeypatch):
    """Interrupted in its third training call (Ctrl-C), the figure keeps the sweeps and chunks
    it finished; the same command then completes it, training only what is missing, and
    writes the numbers of an uninterrupted run."""
    import dlnfusion
    import dlnfusion.sweep.runners.networks as runners

    monkeypatch.setattr(fig6, "FUSION_LAYERS", (1, 3))
    monkeypatch.setattr(fig6, "QUICK_WIDTH", 16)
    monkeypatch.setattr(fig6, "PANELS", {
        "b": {"param": "rho", "values": np.array([0.45]), "line": np.array([0.45])},
        "c": {"param": "sigma_ratio", "values": np.array([2.0]), "line": np.array([2.0])},
        "d": {"param": "init_scale", "values": np.array([0.1]), "line": np.array([0.1])},
    })
    train, total = runners.train, []
    monkeypatch.setattr(runners, "train", lambda *a, **kw: total.append(1) or train(*a, **kw))
    fig6.run(tmp_path / "whole", quick=True)
    calls = []

    def interrupted(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return train(*a, **kw)

    monkeypatch.setattr(runners, "train", interrupted)
    with pytest.raises(dlnfusion.sweep.SweepInterrupted):
        fig6.run(tmp_path / "cut", quick=True)
    counted = []
    monkeypatch.setattr(runners, "train", lambda *a, **kw: counted.append(1) or train(*a, **kw))
    fig6.run(tmp_path / "cut", quick=True)
    # the two calls finished before the interruption are not trained again
    assert len(counted) == len(total) - 2
    whole, cut = (json.loads((tmp_path / d / "zhang2024-fig6.json").read_text())
                  for d in ("whole", "cut"))
    assert whole["points"] == cut["points"]
