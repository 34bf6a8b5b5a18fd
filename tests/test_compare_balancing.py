"""dlnfusion.compare.balancing: the tables and summaries of the balancing runners' Datasets,
checked on small hand-built Datasets against values computed here."""
import numpy as np
import pytest
import xarray as xr

from dlnfusion import compare as cmp


def test_finite_list_caveat_list_mean_sd():
    assert cmp.finite_list(np.array([[1.0, np.nan], [np.inf, 2]])) == [1.0, None, None, 2.0]
    runs = np.array(["b\na", "a", ""])
    assert cmp.caveat_list(runs) == ["b", "a"]
    assert cmp.caveat_list(runs, ordered=False) == ["a", "b"]
    assert cmp.mean_sd([1, 2, 3, 6]) == [3.0, pytest.approx(np.sqrt(3.5))]


def test_true_runs_against_the_edges_of_the_mask():
    rng = np.random.default_rng(0)
    assert cmp.true_runs([]) == [] and cmp.true_runs([True]) == [[0, 0]]
    for _ in range(50):
        mask = rng.random(30) < 0.5
        edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
        want = [[int(a), int(b) - 1] for a, b in zip(np.flatnonzero(edges == 1),
                                                     np.flatnonzero(edges == -1))]
        assert cmp.true_runs(mask) == want


def test_relative_change():
    F = np.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0]])
    rate = cmp.relative_change(F)
    assert np.all(np.isnan(rate[0]))
    np.testing.assert_array_equal(rate[1:], [[0.5, -1.0], [0.5, -1.0]])


def test_paired_differences_and_claims():
    rows = {"a": {"acc": [0.9, 0.8, 0.7]}, "b": {"acc": [0.5, 0.6, 0.7]}}
    out = cmp.paired_differences(rows, {"a_vs_b": ("a", "b", "acc"), "b_vs_a": ("b", "a", "acc")},
                                 {"a_wins": "a_vs_b", "b_wins": "b_vs_a"})
    d = np.array([0.4, 0.2, 0.0])
    assert out["a_vs_b"]["mean"] == pytest.approx(0.2)
    assert out["a_vs_b"]["se"] == pytest.approx(np.sqrt(np.sum((d - 0.2) ** 2) / 2 / 3))
    assert out["a_wins"] is (0.2 > 2 * out["a_vs_b"]["se"]) and out["b_wins"] is False
    one = cmp.paired_differences({"a": {"acc": [1.0]}, "b": {"acc": [0.0]}},
                                 {"d": ("a", "b", "acc")}, {"c": "d"})
    assert np.isnan(one["d"]["se"]) and one["c"] is None


def _runs(ratio, t_A, status, final, caveats, rho=(0.0, 0.5), methods=("joint", "ogm_ge")):
    """A Dataset of rho × balancing × seed like the balancing runners write."""
    dims = ("rho", "balancing", "seed")
    return xr.Dataset({"time_ratio": (dims, ratio), "t_A": (dims, t_A), "t_B": (dims, ratio * t_A),
                       "status": (dims, status), "valid": (dims, np.ones(ratio.shape, bool)),
                       "caveats": (dims, caveats),
                       "final_w": (dims + ("modality",), final),
                       "final_map_A": (dims + ("out", "in_A"), final[..., :1, None]),
                       "final_map_B": (dims + ("out", "in_B"), final[..., 1:, None])},
                      coords={"rho": list(rho), "balancing": list(methods), "seed": [0, 1]})


def test_balancing_points_and_summary():
    ratio = np.array([[[2.0, 4.0], [1.5, np.nan]], [[3.0, 3.0], [1.0, 1.2]]])
    t_A = np.full(ratio.shape, 100.0)
    status = np.full(ratio.shape, "converged", dtype=object)
    status[1, 1, 1] = "diverged"
    final = np.ones(ratio.shape + (2,))
    final[1, 1, 1] = [5.0, 5.0]                     # the diverged run: left out of the split
    sim = _runs(ratio, t_A, status, final, np.full(ratio.shape, ""))
    red_ratio = np.array([[[3.0, 3.0], [np.nan, np.nan]], [[3.3, 3.3], [1.1, 1.1]]])
    caveats = np.full(ratio.shape, "", dtype=object)
    caveats[0, 1] = "mean field\nnoise"
    red = _runs(red_ratio, t_A + 1, status, final + 0.1, caveats)
    law = sim.sel(balancing="ogm_ge", drop=True)[["t_A", "t_B", "valid", "caveats", "final_w"]]
    law = law.assign(time_ratio=(("rho", "seed"), [[1.6, 1.8], [1.05, 1.15]]),
                     time_ratio_sem=(("rho", "seed"), [[0.1, 0.1], [0.3, 0.4]]),
                     diverged=(("rho", "seed"), [[0.0, 0.0], [0.25, 0.75]]),
                     final_w=(("rho", "seed", "modality"), np.ones((2, 2, 2))))
    points = cmp.balancing_points(sim, red, {"ogm_ge": (law, 64)}, steps=10)
    assert [(p["method"], p["rho"]) for p in points] == [
        ("joint", 0.0), ("ogm_ge", 0.0), ("joint", 0.5), ("ogm_ge", 0.5)]
    joint, ge = points[0], points[3]
    assert joint["time_ratio_sim"] == [2.0, 4.0] and joint["time_ratio_theory"] == 3.0
    assert "paths" not in joint and joint["valid"]
    assert ge["time_ratio_theory"] == pytest.approx(1.1) and ge["paths"] == 64
    assert ge["time_ratio_theory_sem"] == pytest.approx(0.5 / 2)
    assert ge["diverged_theory"] == 0.5 and ge["diverged_sim"] == 1
    assert ge["time_ratio_mean_field"] == [1.1, 1.1]
    assert points[1]["mean_field_caveats"] == ["mean field", "noise"]
    assert points[1]["time_ratio_sim"] == [1.5, None]
    s = cmp.balancing_summary(points)
    errors = [abs(3.0 / 3.0 - 1), abs(3.3 / 3.0 - 1)]
    assert s["joint"] == {"median_rel_error": pytest.approx(np.median(errors)),
                          "max_rel_error": pytest.approx(max(errors)), "n": 2}
    assert s["ogm_ge"]["n"] == 2
    # the law's 1.7 against the one run with a transition at ρ = 0, 1.1 against 1.1 at 0.5
    assert s["ogm_ge"]["max_rel_error"] == pytest.approx(1.7 / 1.5 - 1)
    # predicted final weights: the law's (1.0) against the runs that did not diverge (1.0)
    assert s["final_w_max_abs_error"] == {"joint": pytest.approx(0.1), "ogm_ge": 0.0}
    assert s["flagged"] == [] and s["never_converged"] == []
    # with a reduced prediction that never transitions, the point is flagged with the budget
    red2 = red.assign(time_ratio=red.time_ratio.where(red.balancing != "ogm_ge"))
    p = cmp.balancing_points(sim, red2, steps=10)[1]
    assert not p["valid"] and p["caveats"][-1] == \
        "no transition within 10 steps in the reduced dynamics"
    assert cmp.balancing_summary([p])["flagged"] == [["ogm_ge", 0.0]]


def test_law_width_rows_and_summary():
    dims = ("rho", "width", "seed")
    coords = {"rho": [-0.1], "width": [25, 400], "seed": [0, 1]}
    law = xr.Dataset({"time_ratio": (dims, [[[1.0, 1.2], [2.0, 2.2]]]),
                      "time_ratio_sem": (dims, [[[0.3, 0.4], [0.0, 0.0]]]),
                      "diverged": (dims, [[[0.0, 0.5], [0.0, 0.0]]])}, coords=coords)
    mf = xr.Dataset({"time_ratio": (dims, [[[2.0, 2.0], [2.0, np.nan]]])}, coords=coords)
    sim = xr.Dataset({"time_ratio": (("rho", "width", "seed"), [[[1.0, 1.0]]]),
                      "status": (("rho", "width", "seed"), [[["converged", "diverged"]]])},
                     coords={"rho": [-0.1], "width": [25], "seed": [0, 1]})
    rows = cmp.law_width_rows(law, mf, sim)
    assert [r["width"] for r in rows] == [25, 400]
    assert rows[0]["time_ratio_theory"] == pytest.approx(1.1)
    assert rows[0]["time_ratio_theory_sem"] == pytest.approx(0.25)
    assert rows[0]["diverged_theory"] == 0.25 and rows[0]["diverged_sim"] == 1
    assert rows[1]["time_ratio_sim"] is None and rows[1]["time_ratio_mean_field"] == [2.0, None]
    s = cmp.law_width_summary(rows)["-0.1"]
    assert s["max_rel_error_vs_sim"] == pytest.approx(0.1)
    assert s["law_over_mean_field"] == pytest.approx([1.1 / 2.0, 2.1 / 2.0])
    assert s["widths"] == [25, 400]
