"""dlnfusion.compare.delays: the records, curves and error summary of a deficit's delay, checked
against values computed by hand on small synthetic sweeps."""
import numpy as np
import pytest
import xarray as xr

from dlnfusion.compare import delay_lines, delay_points, delay_summary, finite_error_stats
from dlnfusion.sweep import CAVEAT_SEPARATOR

RHOS, DEFICITS, NS, SEEDS = [0.0, 0.5], ["delete", "blur"], [0.0, 100.0], [0, 1]
LINE = [0.0, 50.0, 100.0]


def _sweeps():
    """A simulation and a theory sweep over ρ × deficit × N × seed with known values: t_B of
    the simulation 1000 + 10·N + seed (ρ = 0) or + 500 (ρ = 0.5); the theory 1 % later, the
    formula 2 % later; one caveat at (ρ = 0.5, blur, N = 100); t_B missing in one seed of
    (ρ = 0, delete, N = 100)."""
    dims = ("rho", "deficit", "N", "seed")
    coords = {"rho": RHOS, "deficit": DEFICITS, "N": NS, "seed": SEEDS}
    r, _, n, s = np.meshgrid(np.array(RHOS), np.arange(2), np.array(NS), np.array(SEEDS),
                             indexing="ij")
    tb = 1000 + 10 * n + s + 1000 * r
    sim_tb = tb.copy()
    sim_tb[0, 0, 1, 1] = np.nan
    sim = xr.Dataset({"t_A": (dims, tb / 4), "t_B": (dims, sim_tb),
                      "final_loss": (dims, np.full(tb.shape, 1e-7)),
                      "stop_time": (dims, tb + 50), "status": (dims, np.full(tb.shape,
                                                                           "converged"))},
                     coords)
    caveats = np.full(tb.shape, "", dtype=object)
    caveats[1, 1, 1, 0] = CAVEAT_SEPARATOR.join(["second", "first"])
    line = np.broadcast_to(np.array(LINE), tb.shape + (3,))
    theory = xr.Dataset({"t_A": (dims, tb / 4), "t_B": (dims, 1.01 * tb),
                         "t_A_formula": (dims, tb / 4), "t_B_formula": (dims, 1.02 * tb),
                         "delay_formula": (dims, 1.02 * 10 * n),
                         "t_B_closed": (dims, 1.03 * tb),
                         "formula_regime": (dims, np.full(tb.shape, "late")),
                         "formula_valid": (dims, np.ones(tb.shape, bool)),
                         "formula_caveats": (dims, caveats.astype(str)),
                         "t_B_line": (dims + ("length",), 2000 + line),
                         "delay_line": (dims + ("length",), line)},
                        {**coords, "length": LINE})
    return sim, theory


def test_finite_error_stats():
    got = finite_error_stats([0.1, -0.3, np.nan, 0.2, np.inf])
    assert got == {"median": pytest.approx(0.2), "max": pytest.approx(0.3), "n": 3}
    assert finite_error_stats([np.nan]) == {"median": None, "max": None, "n": 0}


def test_delay_points_against_hand_values():
    sim, theory = _sweeps()
    pts = delay_points(sim, theory, [0, 100], closed=True, depth=2, fusion_layer=2)
    assert len(pts) == 8 and [p["deficit"] for p in pts[:4]] == ["delete"] * 2 + ["blur"] * 2
    assert list(pts[0])[:5] == ["deficit", "N", "depth", "fusion_layer", "rho"]
    p = next(p for p in pts if (p["rho"], p["deficit"], p["N"]) == (0.5, "delete", 100))
    tb = np.array([2500.0, 2501.0])
    assert p["t_B_sim"] == tb.tolist() and p["t_A_sim"] == (tb / 4).tolist()
    assert p["t_B_theory"] == pytest.approx(1.01 * tb.mean(), rel=1e-15)
    assert p["rel_error_theory"] == pytest.approx(0.01, rel=1e-12)
    assert p["rel_error_formula"] == pytest.approx(0.02, rel=1e-12)
    assert p["rel_error_formula_closed"] == pytest.approx(0.03, rel=1e-12)
    assert p["delay_sim"] == pytest.approx(1000.0) and p["delay_theory"] == pytest.approx(1010.0)
    assert p["delay_formula"] == pytest.approx(1020.0)
    assert p["flags"] == [] and not p["undisturbed_run"] and p["formula_valid"]
    assert p["status"] == ["converged"] * 2 and p["formula_regime"] == ["late"]
    flagged = next(p for p in pts if (p["rho"], p["deficit"], p["N"]) == (0.5, "blur", 100))
    assert flagged["flags"] == ["first", "second"]
    missing = next(p for p in pts if (p["rho"], p["deficit"], p["N"]) == (0.0, "delete", 100))
    assert missing["t_B_sim"][1] != missing["t_B_sim"][1]                  # NaN kept
    assert missing["rel_error_theory"] == pytest.approx(1.01 * 2000.5 / 2000 - 1, rel=1e-12)
    assert "reach" in missing["flags"][0]
    assert all(p["undisturbed_run"] == (p["N"] == 0) for p in pts)
    assert "t_B_formula_closed" not in delay_points(sim, theory, [0, 100])[0]


def test_delay_lines_and_summary():
    sim, theory = _sweeps()
    lines = delay_lines(theory)
    ln = lines[(0.5, "blur")]
    np.testing.assert_array_equal(ln["N"], LINE)
    np.testing.assert_array_equal(ln["delay_formula"], LINE)
    np.testing.assert_allclose(ln["t_B_theory"], 1.01 * (1500.5 + 10 * np.array(NS)))
    np.testing.assert_allclose(ln["delay_theory"], 1.01 * 10 * np.array(NS))
    pts = [p for L in (2, 4) for p in delay_points(sim, theory, [0, 100], closed=L == 2,
                                                   depth=L, fusion_layer=L)]
    s = delay_summary(pts, median=0.015, worst=0.05)
    # the undisturbed runs once: per network 2 ρ × (1 + 2 deficits) points
    assert s["t_B_theory_rel_error"]["n"] == 12
    assert s["t_B_formula_closed_rel_error_two_layer"]["n"] == 6
    assert s["acceptance_theory"] and not s["acceptance_formula"]
    assert list(s["by_network"]) == ["L=2,L_f=2", "L=4,L_f=4"]
    assert s["by_deficit"]["blur"]["theory"]["n"] == 4
    assert len(s["flagged_points"]) == 4                       # the caveat and the missing t_B
    assert s["t_B_formula_rel_error_unflagged"]["n"] == 8 and s["all_converged"]
    errors = [abs(p["rel_error_formula"]) for p in pts if p["N"] or p["deficit"] == "delete"]
    assert s["t_B_formula_rel_error"]["median"] == pytest.approx(np.median(errors), rel=1e-14)
