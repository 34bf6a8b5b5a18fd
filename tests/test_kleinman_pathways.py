"""The parallel-pathway figures: the full network against the reduced per-mode theory, the
paper's claims, and the figure modules' outputs."""
import json

import numpy as np
import pytest

from dlnfusion import reduced as rd
from dlnfusion import theory as th
from dlnfusion.data import hierarchy
from dlnfusion.simulations import kleinman2023l_pathways as pw
from dlnfusion.simulations import kleinman2023l_portraits as pt
from dlnfusion.sweep import Pathways, ReducedPathways, Sweep

#: The reduced map is the full network's gradient descent written in its SVD basis, so the
#: two agree to float64 rounding accumulated over 1000 steps of width-100 products (~1e-14
#: measured); 1e-10 leaves room for other BLAS orderings and is far inside the 1e-3 target.
TOL_EXACT = 1e-10


def _K(folder, runner, grid, windows, **fixed):
    """K (grid..., time, pathway, mode) of a sweep of the figure's runs (its task, network and
    training) with the given runner and windows."""
    sweep = Sweep(grid, runner(pw.task, pw.network, windows), {**pw.TRAINING, **fixed})
    return sweep.run(folder, progress=False).K.isel(seed=0)


@pytest.fixture(scope="module")
def depth3(tmp_path_factory):
    """The trajectory panels' runs at D = 3 (b gated [0, 150), [400, 550), [750, 900), none):
    the network and the reduced map."""
    folder = tmp_path_factory.mktemp("depth3")
    grid = {"depth": [3], "gate": list(pw.PANEL.values())}
    return tuple(_K(folder / r.__name__, r, grid, pw.windows).isel(depth=0)
                 for r in (Pathways, ReducedPathways))


@pytest.fixture(scope="module")
def theory(tmp_path_factory):
    """The reduced map of the trajectory panels' runs at D = 2, 3, 4."""
    return _K(tmp_path_factory.mktemp("theory"), ReducedPathways,
              {"depth": [2, 3, 4], "gate": list(pw.PANEL.values())}, pw.windows)


def test_full_network_equals_reduced_dynamics(depth3):
    K, theo = depth3
    np.testing.assert_array_equal(theo.time, K.time)
    assert K.shape == (4, pw.STEPS // pw.STRIDE + 1, 2, 8)
    for gate in pw.PANEL.values():
        assert np.max(np.abs(K.sel(gate=gate).values - theo.sel(gate=gate).values)) < TOL_EXACT


def test_lesion_run_equals_reduced_dynamics(tmp_path):
    lesion = {"gate": "0", "gate_length": 200, "lesion": 0}
    K, theo = (_K(tmp_path / r.__name__, r, {"depth": [3]}, pw.windows, **lesion)
               .isel(depth=0).values for r in (Pathways, ReducedPathways))
    assert np.max(np.abs(K - theo)) < TOL_EXACT
    assert np.max(np.abs(K[:, 0, 0])) < 1e-15          # a's mode 1 stays at zero
    s = hierarchy().modes(0)[1]
    assert K[-1, 1, 0] == pytest.approx(s[0], rel=1e-3)  # b learns it once ungated


def test_papers_claims_on_the_gated_pathway(depth3, theory):
    """Early gate: b ends with a small share of every mode, for good; a late gate changes
    nothing; the middle gate's damage grows with depth (numbers in the module's JSON)."""
    K = depth3[0].values
    s = hierarchy().modes(0)[1]
    share = K[:, -1, 1] / s
    assert np.all(share[0] < 0.1)                       # early
    np.testing.assert_allclose(share[2], 0.5, atol=1e-3)  # late = no deficit
    np.testing.assert_allclose(share[3], 0.5, atol=1e-6)
    mid = {D: theory.sel(depth=D, gate=pw.PANEL["middle"]).values[-1, 1, -1] / s[-1]
           for D in (2, 3, 4)}
    assert mid[2] > mid[3] > mid[4]
    # permanent: 3000 more steps of the reduced map leave the early split where it is
    long = rd.reduced_pathways(tuple(s), pw.STRENGTH ** (1 / 3), (3, 3), pw.LR, 4000,
                               gates=((1, 0.0, 150.0),), record_every=1000)
    np.testing.assert_allclose(long.K[-1, 1], long.K[1, 1], atol=1e-3)


def test_closed_form_split_against_reduced_dynamics(theory):
    """Gradient-flow closed form vs the exact GD map at the spec's settings: the gap is the
    O(ηs) difference of GD and GF; measured ≤ 0.13 % of s, tested at 0.5 %."""
    s = hierarchy().modes(0)[1]
    for D in (2, 3, 4):
        for gate in pw.PANEL.values():
            pred = th.predicted_split(s, pw.STRENGTH ** (1 / D), D, pw.LR,
                                      *pw.gate_window(gate), pw.STEPS)
            theo = theory.sel(depth=D, gate=gate).values[-1]
            assert np.max(np.abs(pred.K_a - theo[0]) / s) < 5e-3
            assert np.max(np.abs(pred.K_b - theo[1]) / s) < 5e-3


def test_pathways_figure_writes_outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(pw, "DEPTHS", (2,))
    monkeypatch.setattr(pw, "QUICK_SWEEP_STARTS", np.array([0.0, 500.0]))
    monkeypatch.setattr(pw, "WIDTH", 12)
    res = pw.run(tmp_path, quick=True)
    data = json.loads((tmp_path / f"{pw.ID}.json").read_text())
    keys = {"depth", "gate_start", "gate_length", "gated_pathway", "singular_values",
            "K_a_final", "K_b_final", "K_a_theory", "K_b_theory"}
    assert all(keys <= set(r) for r in data["runs"])
    assert [r["gate_start"] for r in data["runs"]] == [0.0, 400.0, 750.0, 0.0, 0.0]
    assert data["runs"][-1]["lesion"]["mode"] == 0
    s = data["runs"][0]["singular_values"]
    assert s == sorted(s, reverse=True)
    assert data["summary"]["max_abs_error_sim_vs_reduced"]["2"] < TOL_EXACT
    # README: from a start jittered by 1 % the network leaves the aligned theory by 0.003 at
    # D = 2 (0.03, 0.05 at D = 3, 4; width 100). The deviation is first order in the jitter,
    # with a coefficient set by the jitter draw and the width: measured 4.2e-3 here (width 12,
    # D = 2, jitter seed 1). Tested within a factor 2 of the stated 0.003: far above rounding
    # (TOL_EXACT) and below D = 3's 0.03
    assert 1.5e-3 < data["summary"]["max_abs_error_jittered_vs_reduced"]["2"] < 6e-3
    assert sorted(res["figures"]) == sorted(str(tmp_path / f"{pw.ID}{e}") for e in (".pdf", ".png"))
    assert all((tmp_path / f"{pw.ID}{e}").stat().st_size > 0 for e in (".png", ".pdf"))


def test_portraits_figure_theory_and_network_agree(tmp_path, monkeypatch):
    """The network's gradient flow against the reduced flow, D = 2 and 3: the gated pathway's
    final share within 1e-3 (solver tolerance 1e-8 on a transition of ~10 steps)."""
    monkeypatch.setattr(pt, "DEPTHS", (2, 3))
    monkeypatch.setattr(pt, "QUICK_EARLY_LENGTHS", (0.0, 3.0))
    pt.run(tmp_path, quick=True)
    data = json.loads((tmp_path / f"{pt.ID}.json").read_text())
    assert data["summary"]["max_abs_share_difference_sim_vs_theory"] < 1e-3
    shares = {(r["depth"], r["deficit"], r["gate"][1]): r["share_b_theory"]
              for r in data["runs"]}
    assert shares[(2, "early", 0.0)] == pytest.approx(0.5, abs=1e-9)
    # a 3-step gate at the start costs the deeper pair more
    assert shares[(3, "early", 3.0)] < shares[(2, "early", 3.0)] < 0.5
    assert (tmp_path / f"{pt.ID}.png").exists() and (tmp_path / f"{pt.ID}.pdf").exists()
