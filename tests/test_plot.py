import numpy as np
import pytest

from dlnfusion import plot


def test_theory_vs_sim_and_trajectory_write_png_and_pdf(tmp_path):
    x = np.linspace(0, 1, 20)
    with plot.paper_style():
        fig, axes = plot.new_figure(ncols=2)
        plot.theory_vs_sim(axes[0, 0], x, [{"y": x ** 2, "label": "theory"}], x[::4],
                           [{"mean": x[::4] ** 2, "std": 0.01 * np.ones(5)}], "x", "y",
                           logy=False, panel="a")
        h = plot.trajectory_panel(axes[0, 1], x, loss=1 - x, maps=[x, 2 * x], labels=("A", "B"),
                                  panel="b")
        assert len(h) == 3
        paths = plot.save(fig, tmp_path / "f")
    assert [p.split(".")[-1] for p in paths] == ["png", "pdf"]
    assert all((tmp_path / f"f.{e}").stat().st_size > 1000 for e in ("png", "pdf"))


def test_new_figure_errors():
    with pytest.raises(ValueError):
        plot.new_figure(ncols=0)


def test_sequence_portrait_draws_the_predicted_staircase_and_the_runs(tmp_path):
    """The dashed stairs are learning_sequence's plateaus between its times; the simulated
    lines are the trajectory's loss and branch maps; vector modalities are drawn by the norm of
    their block; a deep network's steps sit at its leading-order times."""
    import matplotlib.pyplot as plt

    from dlnfusion import NetworkSpec, Stats, simulate, theory as th

    st = Stats.random(dim=3, dims=(1, 1, 1), seed=0)
    seq = th.learning_sequence(st, scale=1e-6, width=8, lr=0.1)
    spec = NetworkSpec.fusion(2, 2, width=8, input_dims=(1, 1, 1))
    traj = simulate(spec, st, seeds=[0, 1], scale=1e-6, lr=0.1, steps=400, record_every=4)
    with plot.paper_style():
        fig = plot.sequence_portrait(st, seq, traj, panels="ab")
        ax_l, ax_w = fig.axes[:2]
        stairs = [p for p in ax_l.patches if hasattr(p, "get_data")]
        values, edges = stairs[0].get_data()[:2]
        np.testing.assert_allclose(values, [th.sequence.plateau_loss(st, [])] + [p.loss for p in
                                                                        seq.plateaus])
        np.testing.assert_allclose(edges[1:-1], seq.times)
        w_stairs = [p.get_data()[0] for p in ax_w.patches if hasattr(p, "get_data")]
        for m in range(3):
            np.testing.assert_allclose(w_stairs[m][1:], [p.map[0, m] for p in seq.plateaus])
        ok = np.asarray(traj.time) > 0
        np.testing.assert_allclose(ax_l.lines[0].get_ydata(), np.asarray(traj.loss)[0][ok])
        np.testing.assert_allclose(ax_w.lines[1].get_ydata(),
                                   np.asarray(traj.maps[1])[0, ok, 0, 0])
        plot.save(fig, tmp_path / "seq")
        plt.close(fig)

        vec = Stats.random(dim=4, dims=(2, 1, 1), seed=1)
        vseq = th.learning_sequence(vec)
        fig = plot.sequence_portrait(vec)                  # theory only, default sequence
        w_stairs = [p.get_data()[0] for p in fig.axes[1].patches if hasattr(p, "get_data")]
        np.testing.assert_allclose(w_stairs[0][1:], [np.linalg.norm(p.map[:, :2])
                                                     for p in vseq.plateaus])
        plt.close(fig)

        deep = th.learning_sequence(st, 3, 3, scale=1e-3)
        fig = plot.sequence_portrait(st, deep)
        edges = [p for p in fig.axes[0].patches if hasattr(p, "get_data")][0].get_data()[1]
        np.testing.assert_allclose(edges[1:-1], deep.times_leading_order)
        plt.close(fig)
        with pytest.raises(ValueError, match="seq does not belong to stats"):
            plot.sequence_portrait(vec, seq)
        with pytest.raises(ValueError, match="trajectory must be a Trajectory"):
            plot.sequence_portrait(st, seq, trajectory=np.zeros(3))
        with pytest.raises(ValueError, match="trajectory has 3 inputs, stats has 4"):
            plot.sequence_portrait(vec, vseq, trajectory=traj)
    plt.close("all")
