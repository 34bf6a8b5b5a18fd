import matplotlib
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import dlnfusion as dln
from dlnfusion import plot, theory as th


@pytest.mark.parametrize("L, Lf", [(2, 1), (2, 2), (3, 1), (4, 3)])
def test_reduced_flow_follows_balanced_gradient_flow(L, Lf):
    """Balanced aligned weights stay balanced and aligned: the total weights of the full
    network follow the 2-D reduced flow (integrated independently with scipy)."""
    st = dln.Stats.scalar_toy(1.5, 1.0, 0.4)
    spec = dln.NetworkSpec.fusion(L, Lf, width=6)
    scale = 0.3
    traj = dln.simulate(spec, st, seeds=[0], scheme="balanced", scale=scale, method="gf",
                        lr=1.0, max_steps=40, stride=1, stop_loss=None, rtol=1e-10, atol=1e-14)
    w0 = [traj.maps[0][0, 0, 0, 0], traj.maps[1][0, 0, 0, 0]]
    sol = solve_ivp(lambda t, w: np.array(th.reduced_flow(st, L, Lf, w[0], w[1])), (0, 40), w0,
                    t_eval=traj.time, rtol=1e-10, atol=1e-12)
    for m in range(2):
        assert np.max(np.abs(traj.maps[m][0, :, 0, 0] - sol.y[m])) < 1e-6


def test_reduced_flow_vanishes_at_fixed_points():
    st = dln.Stats.scalar_toy(2.0, 1.0, -0.3)
    for Lf in (1, 2):
        for name, m in th.fixed_points(st, Lf).items():
            w = m.total_map[0]
            da, db = th.reduced_flow(st, 2, Lf, w[0], w[1])
            assert abs(da) < 1e-12 and abs(db) < 1e-12, name
    with pytest.raises(ValueError, match="scalar"):
        th.reduced_flow(dln.Stats.random(dim=4, seed=0), 2, 2, 0.0, 0.0)
    with pytest.raises(ValueError, match="fusion_layer"):
        th.reduced_flow(st, 2, 3, 0.0, 0.0)


def test_phase_portrait_draws_fixed_points_and_trajectories(tmp_path):
    st = dln.Stats.scalar_toy(2.0, 1.0, 0.0)
    traj = dln.simulate(dln.NetworkSpec.fusion(2, 2, width=20), st, seeds=[0], max_steps=800,
                        stride=2)
    with plot.paper_style():
        fig = plot.phase_portrait(st, 2, 2, trajectories=[(traj.maps[0][0, :, 0, 0],
                                                           traj.maps[1][0, :, 0, 0])])
        assert isinstance(fig, matplotlib.figure.Figure)
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert len(labels) == 4  # M_0, M_*, M_A, M_B
        early = plot.phase_portrait(st, 4, 1, legend=False)
        assert early.axes[0].get_legend() is None
        paths = plot.save(fig, tmp_path / "pp")
    assert all(p.endswith(("png", "pdf")) for p in paths)
