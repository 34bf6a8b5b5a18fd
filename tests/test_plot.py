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
