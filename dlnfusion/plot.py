"""Publication figures. All of dlnfusion's matplotlib code lives here.

One style for every figure: sans-serif 8 pt text, the Okabe–Ito colorblind-safe palette,
theory as lines and simulations as open markers with seed error bars, vector PDF plus a
300-dpi PNG. Widths follow two-column paper layouts (3.35 in single column, 6.9 in double).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["PALETTE", "SINGLE", "DOUBLE", "paper_style", "new_figure", "theory_vs_sim",
           "trajectory_panel", "save"]

#: Okabe & Ito (2008) colorblind-safe palette, black first.
PALETTE = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7",
           "#F0E442")
SINGLE, DOUBLE = 3.35, 6.9

_RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "mathtext.fontset": "dejavusans",
}


@contextlib.contextmanager
def paper_style():
    """Context manager applying dlnfusion's figure style."""
    with plt.rc_context(_RC):
        yield


def new_figure(ncols: int = 1, nrows: int = 1, width: float = DOUBLE, height: float = 2.3):
    """A figure with a grid of axes in the paper style (call inside :func:`paper_style`)."""
    if ncols < 1 or nrows < 1:
        raise ValueError("ncols and nrows must be positive")
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False,
                             constrained_layout=True)
    return fig, axes


def theory_vs_sim(ax, x_line, lines, x_points=None, points=(), xlabel="", ylabel="",
                  logy=False, panel=None):
    """Theory curves and simulated markers on one axis.

    ``lines``: sequence of dicts with keys ``y`` (same length as ``x_line``), ``color``,
    optional ``label``, ``style`` ('-', '--', ':') and ``width``. ``points``: sequence of dicts
    with ``mean``, optional ``std``, ``color``, ``label``, ``marker`` (default open circle);
    their x positions are ``x_points``.
    """
    for ln in lines:
        y = np.asarray(ln["y"], float)
        ax.plot(x_line, y, ls=ln.get("style", "-"), color=ln.get("color", PALETTE[0]),
                lw=ln.get("width", 1.2), label=ln.get("label"), zorder=2)
    for pt in points:
        mean = np.asarray(pt["mean"], float)
        std = pt.get("std")
        color = pt.get("color", PALETTE[0])
        ax.errorbar(x_points, mean, yerr=None if std is None else np.asarray(std, float),
                    fmt=pt.get("marker", "o"), mfc="white", mec=color, ecolor=color,
                    mew=0.9, ms=4, capsize=1.5, elinewidth=0.6, lw=0, label=pt.get("label"),
                    zorder=3)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if panel:
        ax.text(-0.16, 1.02, panel, transform=ax.transAxes, fontweight="bold", fontsize=9,
                va="bottom")
    return ax


def trajectory_panel(ax, time, loss=None, maps=None, labels=(), colors=None, panel=None,
                     xlabel="Step", loss_label="Loss"):
    """Loss (left axis, black) and total weights (right axis, colored) against time."""
    colors = colors or PALETTE[1:]
    handles = []
    if loss is not None:
        handles += ax.plot(time, loss, color=PALETTE[0], lw=1.2, label=loss_label)
        ax.set_ylabel(loss_label)
    if maps is not None:
        ax2 = ax.twinx()
        ax2.spines["right"].set_visible(True)
        for i, m in enumerate(maps):
            handles += ax2.plot(time, m, color=colors[i % len(colors)], lw=1.2,
                                label=labels[i] if i < len(labels) else None)
        ax2.set_ylabel("Total weight")
    ax.set_xlabel(xlabel)
    if panel:
        ax.text(-0.16, 1.02, panel, transform=ax.transAxes, fontweight="bold", fontsize=9,
                va="bottom")
    return handles


def save(fig, stem) -> list:
    """Write ``stem``.png (300 dpi) and ``stem``.pdf (vector); return the two paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=300)
    fig.savefig(paths[1])
    plt.close(fig)
    return [str(p) for p in paths]
