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


def test_noisy_pair_examples_show_one_pair_per_corruption_case(tmp_path):
    from dlnfusion.data import noisy_digits

    task = noisy_digits(seed=0)
    with plot.paper_style():
        fig = plot.noisy_pair_examples(task)
        titles = [ax.get_title() for ax in fig.axes]
        labels = [ax.get_xlabel() for ax in fig.axes]
        assert titles == ["A", "B"] * 3
        assert labels[::2] == ["B corrupted (p = 0.6)", "A corrupted (p = 0.2)",
                               "neither (p = 0.2)"]
        # the B-corrupted pair shows a noisy B and a clean A, and the other way round
        a, b = (np.asarray(ax.images[0].get_array()) for ax in fig.axes[:2])
        assert any(np.array_equal(a, x) for x in np.asarray(task.train_x[0][:400]))
        assert not any(np.array_equal(b, x) for x in np.asarray(task.train_x[1][:400]))
        plot.save(fig, tmp_path / "pairs")


def test_style_legend_entries_and_panel_label():
    """style_legend: a width or a dict of Line2D properties per entry (a filled marker, a
    color); panel_label writes the letter in bold in axes coordinates."""
    with plot.paper_style():
        fig, axes = plot.new_figure(ncols=1)
        leg = plot.style_legend(fig, [("-", "line", 2.0), ("o", "open"),
                                      ("s", "filled", {"mfc": "0.3", "ms": 3}),
                                      ("+", "black", {"color": "black"})])
        h = leg.legend_handles
        assert h[0].get_linewidth() == 2.0 and h[1].get_markerfacecolor() == "white"
        assert h[2].get_markerfacecolor() == "0.3" and h[2].get_markersize() == 3
        assert h[3].get_color() == "black" and h[1].get_color() == "0.3"
        t = plot.panel_label(axes[0, 0], "b", -0.2)
        assert t.get_text() == "b" and t.get_position() == (-0.2, 1.02)
        assert t.get_fontweight() == "bold" and t.get_transform() == axes[0, 0].transAxes
        plot.plt.close(fig)


def test_mode_groups_and_pathway_modes_panel():
    s = np.array([3.0, 2.0, 2.0 + 1e-13, 1.0, 1.0, 1.0])
    groups = plot.mode_groups(s)
    assert [v for v, _ in groups] == pytest.approx([3.0, 2.0, 1.0])
    assert [idx.tolist() for _, idx in groups] == [[0], [1, 2], [3, 4, 5]]
    time = np.arange(5.0)
    K = np.random.default_rng(0).random((5, 2, 6))
    with plot.paper_style():
        fig, axes = plot.new_figure()
        ax = plot.pathway_modes_panel(axes[0, 0], time, K, 2 * K, s, window=(1.0, 2.0))
        # per distinct value: pathway a and b simulated, both in theory
        assert len(ax.lines) == 4 * 3
        first = ax.lines[0]
        assert first.get_linestyle() == "-" and np.array_equal(first.get_ydata(), K[:, 0, 0])
        assert ax.lines[2].get_linestyle() == "--"
        assert np.array_equal(ax.lines[3].get_ydata(), 2 * K[:, 1, 0])
        assert len(ax.patches) == 1 and ax.get_xlim() == (0.0, 4.0)
        plot.plt.close(fig)


def test_sequence_times_panel_marks_each_case():
    """One point per transition (open marker inside, cross outside the assumptions), the grey
    leading order where the case is inside, the identity line and a legend entry per M."""
    inside = {"n_modalities": 3, "valid": True, "simulation_notes": [],
              "times_sim": [[100, 200, 400], [110, 210, 420]], "times_theory": [105, 205, 410],
              "times_leading_order": [90, 190]}
    outside = {**inside, "n_modalities": 4, "valid": False, "times_sim": [[50, 60, 70, 80]] * 2}
    fig, axes = plot.new_figure()
    ax = axes[0, 0]
    plot.sequence_times_panel(ax, [inside, outside], lims=(10, 1e3), panel="e")
    sizes = [len(c.get_offsets()) for c in ax.collections]
    assert sizes[:3] == [3, 3, 4]            # leading order (padded), inside, outside
    labels = ax.get_legend_handles_labels()[1]
    assert labels[:2] == ["M = 3", "M = 4"] and "outside the assumptions" in labels
    assert ax.get_xlim() == (10, 1e3) and ax.get_xscale() == "log"
    plot.plt.close(fig)


def test_errorbar_row_spectrum_panel_and_curve_family():
    """A row of mean ± s.d. panels on one shared log range with the legend in the first, the
    singular values (top ones in color, a switch line), and a family of curves along a
    colormap from its first to its last color."""
    fig, axes = plot.new_figure(ncols=3, nrows=2)
    stats = [[([0.1, 1.0], [0.01, 0.1]), ([0.2, 2.0], [0, 0])],
             [([1e-3, 0.5], [0, 0]), ([0.3, 0.4], [0, 0])]]
    plot.errorbar_row(axes[0, :2], [0, 1], stats, ["a", "b"], ["x", "y"], "T", "error")
    assert [ax.get_ylim() for ax in axes[0, :2]] == [(1e-3 / 3, 6.0)] * 2
    assert axes[0, 0].get_legend_handles_labels()[1] == ["a", "b"]
    assert axes[0, 1].get_legend() is None and axes[0, 1].get_title() == "y"
    plot.spectrum_panel(axes[1, 0], np.arange(4), np.ones((20, 4)), top=5, switch=2.0)
    lines = axes[1, 0].get_lines()
    assert len(lines) == 16 and lines[-1].get_xdata()[0] == 2.0        # 15 shown, the switch
    assert axes[1, 0].get_legend_handles_labels()[1] == ["top 5", "next 10"]
    plot.curve_family(axes[1, 1], np.arange(3), [np.ones(3), 2 * np.ones(3)], ["p", "q"])
    cmap = plot.plt.get_cmap("viridis")
    assert [ln.get_color() for ln in axes[1, 1].get_lines()] == [cmap(0.0), cmap(1.0)]
    plot.plt.close(fig)
