"""Kleinman, Achille & Soatto (CVPR 2023), Section 4.4: does a cross-source reconstruction
objective (dlnfusion.CrossReconstruction, weight λ = 1) remove the permanent effect of an early
blur or dissociation deficit? The setting of kleinman2023-deficits-relu trained with and
without the objective from the same seeds (paired), and the linear fusion networks of
kleinman2023-deficits-linear trained at population level with and without it
(dlnfusion.train_reconstruction): the delay of t_B. One ``DeficitFit`` sweep and one
``Reconstruction`` sweep per linear network, saved under
``out/kleinman2023-reconstruction/{quick,full}/<sweep>``; protocol and numbers in
docs/figures/kleinman2023-reconstruction.md.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dlnfusion import CrossReconstruction
from dlnfusion.compare import (POLARIZED, arm_delays, deficit_fit_points, finite_mean_std,
                               find_point, reconstruction_answers)
from dlnfusion.data import digit_halves
from dlnfusion.plot import PALETTE, color_style_legend, paper_style, save, seed_errorbars
from dlnfusion.sweep import DeficitFit, Reconstruction, Sweep

from . import kleinman2023_deficits_linear as lin
from . import kleinman2023_deficits_relu as relu
from ._output import run_sweeps, write_outputs
from .kleinman2023_deficits_relu import BINS, DEFICITS, N_PRE, network

ID = "kleinman2023-reconstruction"
TITLE = "Sec. 4.4: cross-source reconstruction against blur and dissociation deficits"
WEIGHT = 1.0
FULL = dict(seeds=5, lengths=(0, 10, 25, 50, 100), budget=100)
QUICK = dict(seeds=2, lengths=(0, 10), budget=20)
LINEAR_NETWORKS = ((2, 2), (4, 2), (4, 3), (4, 4))
LINEAR_FULL = dict(seeds=3, lengths=lin.LENGTHS, networks=LINEAR_NETWORKS)
LINEAR_QUICK = dict(seeds=1, lengths=(0, 1000), networks=((2, 2), (4, 2)))
#: Decoder entries' standard deviation: the scale of the network's own initial entries.
DECODER_SCALE = {2: 1e-9, 4: 0.01}


def _model(weight, mnist=None):
    base = network(digit_halves(mnist), N_PRE)
    return CrossReconstruction(base, weight) if weight else base


def sweeps(quick: bool, mnist=None) -> dict:
    """Every sweep, by name: the ReLU networks' (every weight, deficit and N), and per linear
    network every ρ, deficit, N and weight."""
    c = QUICK if quick else FULL
    relu_sweep = Sweep({"weight": [0.0, WEIGHT], "deficit": DEFICITS, "N": c["lengths"]},
                       DeficitFit(_model, lambda mnist=None: digit_halves(mnist),
                                  relu.transform, lambda weight: relu.rsv_layers(_model(weight))),
                       {"budget": c["budget"], "lr": relu.LR, "momentum": relu.MOMENTUM,
                        "batch_size": relu.BATCH, "n_rsv": relu.N_RSV, "mnist": mnist},
                       range(c["seeds"]))
    cfg = LINEAR_QUICK if quick else LINEAR_FULL
    grid = {"rho": lin.RHOS, "deficit": lin.DEFICITS, "N": cfg["lengths"],
            "weight": [0.0, WEIGHT]}
    return {"relu": relu_sweep, **{f"linear_L{depth}_Lf{Lf}": Sweep(
        grid, Reconstruction(lin._task, lin._network, lin._windows),
        {"depth": depth, "fusion_layer": Lf, "lr": lin.LR, "scheme": lin.INIT[depth][0],
         "scale": lin.INIT[depth][1], "steps": lin.BUDGET[(depth, Lf)],
         "decoder_scale": DECODER_SCALE[depth]}, range(cfg["seeds"]))
        for depth, Lf in cfg["networks"]}}


def compute(out: Path, quick: bool = False, mnist=None) -> dict:
    return run_sweeps(sweeps(quick, mnist), out, ID, quick)


def linear_points(ds, cfg) -> list:
    """t_A, t_B and the final task loss of the linear networks, with and without
    reconstruction, every deficit, ρ and N (N = 0 once per ρ, listed under every deficit)."""
    first = lin.DEFICITS[0]
    return [{"depth": depth, "fusion_layer": Lf, "rho": rho, "deficit": dd, "N": int(n),
             "reconstruction_weight": w, "seeds": r.seed.values.tolist(),
             "shared": n == 0 and dd != first, "t_A_sim": r.t_A.values.tolist(),
             "t_B_sim": r.t_B.values.tolist(), "final_loss": r.final_loss.values.tolist(),
             "diverged": (r.status == "diverged").values.tolist()}
            for depth, Lf in cfg["networks"] for w in (0.0, WEIGHT) for rho in lin.RHOS
            for d in lin.DEFICITS for n in cfg["lengths"] if n > 0 or d == first
            for dd in (lin.DEFICITS if n == 0 else (d,))
            for r in [ds[f"linear_L{depth}_Lf{Lf}"].sel(rho=rho, deficit=dd, N=n, weight=w)]]


def run(out: Path, quick: bool = False, mnist=None) -> dict:
    t0 = time.perf_counter()
    cfg, lcfg = (QUICK, LINEAR_QUICK) if quick else (FULL, LINEAR_FULL)
    ds = compute(out, quick, mnist)
    points = deficit_fit_points(ds["relu"], cfg["budget"], BINS,
                                {"weight": "reconstruction_weight"}, n_pre=N_PRE)
    lpoints = linear_points(ds, lcfg)
    answers = reconstruction_answers(points, DEFICITS, cfg["lengths"], WEIGHT)
    lanswers = arm_delays(lpoints, lcfg["lengths"])
    payload = {"id": ID, "title": TITLE, "quick": quick, "task": digit_halves(mnist).info,
               "reconstruction_weight": WEIGHT, "polarized_threshold": POLARIZED,
               "budget": cfg["budget"], "points": points, "answers": answers,
               "linear": {"points": lpoints, "answers": lanswers,
                          "decoder_scale": {str(k): v for k, v in DECODER_SCALE.items()},
                          "lr": lin.LR, "width": lin.WIDTH,
                          "budget": {f"{k[0]},{k[1]}": v for k, v in lin.BUDGET.items()}},
               "seconds": time.perf_counter() - t0}
    summary = {d: {k: answers[d][k] for k in ("removes_polarization", "reduces_accuracy_loss")}
               for d in DEFICITS}
    return write_outputs(out, ID, payload, lambda stem: figure(points, lpoints, cfg, lcfg, stem),
                         summary)


def figure(points, lpoints, cfg, lcfg, stem):
    import matplotlib.pyplot as plt

    lengths = sorted({p["N"] for p in points})
    colors = {0.0: PALETTE[0], WEIGHT: PALETTE[3]}
    names = {0.0: "task loss only", WEIGHT: f"+ reconstruction (λ = {WEIGHT:g})"}
    titles = {"blur": "blur of B", "dissociate": "dissociation"}
    edges = np.linspace(-1, 1, BINS + 1)
    with paper_style():
        fig = plt.figure(figsize=(7.0, 6.6))
        outer = fig.add_gridspec(2, 1, height_ratios=(2, 1), hspace=0.4)
        top = outer[0].subgridspec(2, 3, wspace=0.45, hspace=0.6)
        axes = np.array([[fig.add_subplot(top[r, c]) for c in range(3)] for r in range(2)])
        for r, d in enumerate(DEFICITS):
            ax_acc, ax_pol, ax_hist = axes[r]
            for w in (0.0, WEIGHT):
                sel = [find_point(points, deficit=d, reconstruction_weight=w, N=N)
                       for N in lengths]
                for ax, measures in (
                        (ax_acc, (("test_acc", "-", "o"), ("unimodal_acc_B", ":", "v"))),
                        (ax_pol, (("polarized", "-", "o"), ("mean_rsv", "--", "s")))):
                    seed_errorbars(ax, lengths, [([p[k] for p in sel], ls, m)
                                                 for k, ls, m in measures], colors[w], ms=3,
                                   capsize=1.5, lw=0.9, elinewidth=0.6)
                last = sel[-1]
                ax_hist.stairs(last["rsv_histogram"], edges, color=colors[w], lw=1.1,
                               fill=False)
            ax_acc.set_title(f"{titles[d]}: accuracy", fontsize=7.5)
            ax_pol.set_title(f"{titles[d]}: polarization", fontsize=7.5)
            ax_hist.set_title(f"{titles[d]}: RSV after N = {lengths[-1]}", fontsize=7.5)
            ax_acc.set_ylabel("final test accuracy")
            ax_pol.set_ylabel("RSV measure")
            ax_pol.axhline(0, color="0.8", lw=0.5, zorder=0)
            ax_hist.set_ylabel("fraction of units")
            ax_hist.set_xlim(-1, 1)
            for ax in (ax_acc, ax_pol):
                ax.set_xlabel("deficit length N (epochs)")
            ax_hist.set_xlabel("RSV (+1: A only, −1: B only)")
        color_style_legend(axes[0, 2], (), colors, names, loc="upper left")
        color_style_legend(axes[0, 0], (("-", "o", "both views"), (":", "v", "B alone")),
                           loc="center right")
        color_style_legend(axes[0, 1], (("-", "o", "fraction |RSV| > 0.9"),
                                        ("--", "s", "mean RSV")), loc="center right")
        _linear_row(fig, outer[1], lpoints, lcfg, colors, names)
        return save(fig, stem)


def _linear_row(fig, cell, lpoints, lcfg, colors, names):
    """The delay of t_B against N in the linear networks, one panel per deficit: without
    (black) and with (green) reconstruction, one line style per network, ρ = 0.5 filled and
    ρ = 0 open markers."""
    from matplotlib.lines import Line2D

    row = cell.subgridspec(1, 3, wspace=0.4)
    styles = dict(zip(lcfg["networks"], ("-", "--", "-.", ":")))
    lengths = sorted(lcfg["lengths"])
    for c, d in enumerate(lin.DEFICITS):
        ax = fig.add_subplot(row[c])
        for (L, Lf) in lcfg["networks"]:
            for rho in lin.RHOS:
                for w in (0.0, WEIGHT):
                    tb = np.array([finite_mean_std(find_point(
                        lpoints, depth=L, fusion_layer=Lf, rho=rho, deficit=d, N=N,
                        reconstruction_weight=w)["t_B_sim"])[0] for N in lengths])
                    ax.plot(lengths, tb - tb[0], color=colors[w], ls=styles[(L, Lf)], lw=0.9,
                            marker="o", ms=3, mfc=colors[w] if rho else "white")
        ax.plot(lengths, lengths, color="0.75", lw=0.6, zorder=0)
        ax.set_title(f"linear networks: {d} of B", fontsize=7.5)
        ax.set_xlabel("deficit length N (steps)")
        ax.set_ylabel("delay of t_B (steps)")
    handles = [Line2D([], [], color="0.3", ls=styles[k], lw=0.9, label=f"L = {k[0]}, L_f = {k[1]}")
               for k in lcfg["networks"]]
    handles += [Line2D([], [], color=colors[w], lw=1.2, label=names[w]) for w in colors]
    handles += [Line2D([], [], color="0.3", marker="o", ls="", ms=3, mfc=m, label=lab)
                for m, lab in (("0.3", "ρ = 0.5"), ("white", "ρ = 0"))]
    ax.legend(handles=handles, fontsize=5, loc="upper left", handlelength=2.2)
