"""Theory against simulation on the grid of the paper's Figure 3c-d (two-layer late fusion)."""
import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import NetworkSpec, Stats, simulate, theory as th
from dlnfusion.compare import measure_unimodal_phase

RATIOS = (1.0, 1.5, 2.0, 3.0)
RHOS = np.linspace(-0.9, 0.9, 9)
GRID = [(r, rho) for r in RATIOS for rho in RHOS]


@pytest.fixture(scope="module")
def fig3c():
    spec = NetworkSpec.fusion(2, 2, width=100)
    stats = [Stats.scalar_toy(r, 1.0, rho) for r, rho in GRID]
    traj = simulate(spec, stats, seeds=[0, 1], scale=1e-9, lr=0.04, stop_loss=1e-8)
    return spec, stats, traj, measure_unimodal_phase(traj)


def test_finite_lr_prediction_matches_gradient_descent(fig3c):
    spec, stats, traj, meas = fig3c
    errs, gf_errs = [], []
    for c, ((r, rho), st) in enumerate(zip(GRID, stats)):
        assert set(traj.status_names()[c]) == {"converged"}
        if r == 1.0:
            continue
        w0 = th.effective_init(spec, traj[c].initial_params, th.phase_directions(st))
        pred = np.mean([th.predict_times(st, 0.04, w).ratio for w in w0])
        sim = np.mean(meas.time_ratio[c])
        errs.append(abs(pred / sim - 1))
        gf_errs.append(abs(th.time_ratio_gradient_flow(st).value / sim - 1))
        assert list(meas.first[c]) == [0, 0]  # A (larger ‖Σ_yxA‖) is learned first
    # Issue acceptance: median ≤ 3 %, max ≤ 6 %. Measured: median 0.1 %, max 1.2 %.
    assert np.median(errs) <= 0.03 and np.max(errs) <= 0.06
    # The gradient-flow formula is not accurate for gradient descent at η = 0.04.
    assert np.max(gf_errs) > 0.2


def test_misattribution_matches_theory(fig3c):
    _, stats, _, meas = fig3c
    for c, ((r, rho), st) in enumerate(zip(GRID, stats)):
        if r == 1.0:
            continue
        assert abs(np.mean(meas.misattribution[c]) - rho / r) <= 0.03
        # At t_mid modality B has already grown to W_B ~ sqrt(W_B(t_A)) ~ 1e-3 when k is close
        # to 1 (short phase), which lowers the plateau loss by up to ~0.5 %.
        assert np.mean(meas.plateau_loss[c]) == pytest.approx(th.saddle_loss(st, 0), rel=1e-2)


def test_tied_modalities_have_no_unimodal_phase(fig3c):
    _, _, _, meas = fig3c
    for c, (r, rho) in enumerate(GRID):
        if r == 1.0:
            assert abs(np.mean(meas.time_ratio[c]) - 1) <= 0.15


def test_gradient_flow_formula_matches_gradient_flow():
    spec = NetworkSpec.fusion(2, 2, width=100)
    grid = [(r, rho) for r in (2.0, 3.0) for rho in (-0.9, 0.0, 0.9)]
    stats = [Stats.scalar_toy(r, 1.0, rho) for r, rho in grid]
    traj = simulate(spec, stats, seeds=[0], method="gf", stride=1, max_steps=8000,
                    stop_loss=1e-6)
    meas = measure_unimodal_phase(traj)
    for c, st in enumerate(stats):
        sim = meas.time_ratio[c, 0]
        assert abs(th.time_ratio_gradient_flow(st).value / sim - 1) <= 0.05
        w0 = th.effective_init(spec, traj[c].initial_params, th.phase_directions(st))[0]
        assert th.predict_times(st, 0.04, w0, method="gf").ratio == pytest.approx(sim, rel=0.01)


def test_unimodal_phase_scales_with_log_init_only_for_late_fusion():
    """Eq. (8): t_B − t_A ∝ ln(1/u0) for late fusion; early fusion has one transition."""
    stds = (1e-6, 1e-9, 1e-12)
    stats = [Stats.scalar_toy(r, 1.0, rho) for r, rho in GRID]
    out = {}
    for Lf in (1, 2):
        spec = NetworkSpec.fusion(2, Lf, width=100)
        gaps = []
        for s in stds:
            m = measure_unimodal_phase(simulate(spec, stats, seeds=[0], scale=s, stop_loss=1e-6))
            gaps.append(m.t_b[:, 0] - m.t_a[:, 0])
        out[Lf] = np.array(gaps)
    early = out[1]
    assert np.all(np.abs(early[2] - early[0]) <= np.maximum(0.1 * np.abs(early[0]), 5.0))
    late = out[2]
    dlog = np.log(1e3)  # each std step changes ln(1/u0) by ln 1000
    for c, ((r, rho), st) in enumerate(zip(GRID, stats)):
        s1, s2 = (late[1, c] - late[0, c]) / dlog, (late[2, c] - late[1, c]) / dlog
        if r == 1.0:
            assert abs(s1) < 0.5 and abs(s2) < 0.5  # tie: no unimodal phase to grow
            continue
        assert s2 == pytest.approx(s1, rel=0.01)  # linear in ln(1/u0)
        factor = th.log_init_sensitivity(st, 0.04)["t_B - t_A"]
        assert s2 == pytest.approx(factor, rel=0.02)
