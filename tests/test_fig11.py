"""Figure 11: two-layer ReLU networks on Figure 2's linear task, early and late fusion, run on
its quick settings (one seed)."""
import json

import numpy as np
import pytest

from dlnfusion import cli
from dlnfusion.simulations import zhang2024_fig11 as fig11

# The slow-down predictions (ReLU = linear network at η/2 from w0/2) neglect that the units
# growing with a positive and with a negative pre-activation weight are two separate networks
# whose seeds P, N differ: the ReLU half-way point is then ln[(P + N)/(2√(PN))]/(2 ln(1 + ηs/2))
# steps later than predicted (theory.relu). Measured: 6.5e-4 relative for seed 0, at most
# 2.3e-3 over seeds 0-4 (P/N up to 2.3), against the figure's acceptance of 5 %.
SLOWDOWN_RTOL = 5e-3
# Runs stop at loss 1e-10: every total weight is within √(2·1e-10/σ_B²) ≈ 1.4e-5 of its limit
# (the loss is quadratic in the odd part of the function), so the ratio of the ReLU and the
# linear weights is 2 to ~3e-5 (measured 1.4e-5).
WEIGHT_RTOL = 5e-5
# The linear networks' times against the theory that the ReLU prediction rescales: exact
# models of those runs up to the O(w0) neglected parts of the weights (measured ≤ 4e-10 over
# seeds 0-4).
LINEAR_RTOL = 1e-6


@pytest.fixture(scope="module")
def fig11_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig11")
    res = fig11.run(out, quick=True)
    for ext in ("png", "pdf"):
        assert (out / f"{fig11.ID}.{ext}").stat().st_size > 5000
    return res, json.loads((out / f"{fig11.ID}.json").read_text())


def test_registered():
    assert cli.FIGURES[fig11.ID] == "dlnfusion.simulations.zhang2024_fig11"


def test_json_schema(fig11_result):
    res, d = fig11_result
    assert d["figure"] == "zhang2024-fig11" and len(res["figures"]) == 2
    assert d["parameters"]["sigma"] == [[4.0, 0.0], [0.0, 1.0]]
    assert d["parameters"]["lr"] == 0.04 and d["parameters"]["width"] == 100
    assert set(d["networks"]) == {"early", "late"}
    for name, Lf in (("early", 1), ("late", 2)):
        r = d["networks"][name]
        assert r["fusion_layer"] == Lf
        for key in ("times_sim", "times_theory"):
            assert set(r[key]) == {"relu", "linear"}
            for v in r[key].values():
                assert set(v) == {"t_A", "t_B"} and len(v["t_A"]) == 1
        for key in ("slowdown_sim", "slowdown_theory", "slowdown_rel_error"):
            assert set(r[key]) == {"t_A", "t_B"}
        for key in ("final_total_map_relu", "final_total_map_linear"):
            assert np.shape(r[key]) == (1, 2)
        assert set(r["weight_factor_sim"]) == {"A", "B"}
        assert r["weight_factor_theory"] == 2.0
        assert r["status"] == {"relu": ["converged"], "linear": ["converged"]}
    s = d["summary"]
    assert set(s) >= {"slowdown_max_rel_deviation", "weight_factor_max_rel_deviation",
                      "all_converged"} and s["all_converged"]


def test_slowdown_predicted(fig11_result):
    _, d = fig11_result
    for name, r in d["networks"].items():
        for t in ("t_A", "t_B"):
            sim, pred = r["slowdown_sim"][t][0], r["slowdown_theory"][t][0]
            assert pred == pytest.approx(sim, rel=SLOWDOWN_RTOL), (name, t)
            assert r["slowdown_rel_error"][t] < SLOWDOWN_RTOL
            # The prediction is from the weights alone; the linear runs match it exactly.
            lin = r["times_sim"]["linear"][t][0]
            assert r["times_theory"]["linear"][t][0] == pytest.approx(lin, rel=LINEAR_RTOL)
            # "About two times slower": 1.97 and, for B in late fusion, 2.02.
            assert 1.9 < sim < 2.1
    assert d["summary"]["slowdown_max_rel_deviation"] < SLOWDOWN_RTOL


def test_weight_factor_is_two(fig11_result):
    _, d = fig11_result
    for r in d["networks"].values():
        for n in ("A", "B"):
            assert r["weight_factor_sim"][n][0] == pytest.approx(2.0, rel=WEIGHT_RTOL)
        np.testing.assert_allclose(r["final_total_map_relu"], [[2.0, 2.0]], rtol=WEIGHT_RTOL)
    assert d["summary"]["weight_factor_max_rel_deviation"] < WEIGHT_RTOL
