import json
import subprocess
import sys

import numpy as np
import pytest

from dlnfusion import cli


def test_reproduce_fig3c_quick(tmp_path, capsys):
    assert cli.main(["reproduce", "zhang2024-fig3c", "--out", str(tmp_path), "--quick"]) == 0
    out = capsys.readouterr().out
    assert "median error" in out and "wrote" in out
    data = json.loads((tmp_path / "zhang2024-fig3c.json").read_text())
    pts = data["points"]
    assert len(pts) == 36
    keys = {"sigma_ratio", "rho", "time_ratio_theory", "time_ratio_gradient_flow",
            "time_ratio_sim", "misattribution_theory", "misattribution_sim"}
    assert keys <= set(pts[0])
    assert all(len(p["time_ratio_sim"]) == 2 and len(p["misattribution_sim"]) == 2 for p in pts)
    s = data["summary"]
    assert s["time_ratio_theory_rel_error"]["median"] <= 0.03
    assert s["time_ratio_theory_rel_error"]["max"] <= 0.06
    assert s["misattribution_abs_error_max"] <= 0.03
    assert s["tie_points_max_deviation_from_1"] <= 0.15
    for ext in ("png", "pdf"):
        assert (tmp_path / f"zhang2024-fig3c.{ext}").stat().st_size > 10_000
    # JSON numbers agree with a direct evaluation of the theory.
    from dlnfusion import Stats, theory as th
    p = pts[20]
    st = Stats.scalar_toy(p["sigma_ratio"], 1.0, p["rho"])
    assert p["time_ratio_gradient_flow"] == pytest.approx(th.time_ratio_gradient_flow(st).value)
    assert p["misattribution_theory"] == pytest.approx(p["rho"] / p["sigma_ratio"])


def test_list_and_errors(capsys):
    assert cli.main(["list"]) == 0
    assert "zhang2024-fig3c" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "nope", "--out", "x"])
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "zhang2024-fig3c"])  # --out is required


def test_console_script_is_installed():
    r = subprocess.run([sys.executable, "-m", "dlnfusion.cli", "list"], capture_output=True,
                       text=True, check=True)
    assert "zhang2024-fig3c" in r.stdout
