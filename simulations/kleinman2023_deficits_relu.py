"""Kleinman, Achille & Soatto (CVPR 2023), Figs. 4-6 on real data: blur and dissociation of view
B for the first N epochs in ReLU fusion networks on digit halves (``--mnist FOLDER``: MNIST's),
then normal training; final accuracies and the units' RSV. One ``DeficitFit`` sweep per condition
and n_pre, saved under ``out/kleinman2023-deficits-relu/{quick,full}/<condition>_n_pre<n>``;
protocol and numbers in docs/figures/kleinman2023-deficits-relu.md.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dlnfusion import FusionMLP
from dlnfusion.compare import (POLARIZED, deficit_claims, deficit_fit_points, depth_claim,
                               find_point)
from dlnfusion.data import digit_halves, with_pixel_noise
from dlnfusion.interventions import ImageBlur, ViewDissociation
from dlnfusion.plot import (PALETTE, color_style_legend, paper_style, rsv_histogram_row,
                            save, seed_errorbars, style_legend)
from dlnfusion.sweep import DeficitFit, Sweep

from ._output import run_sweeps, write_outputs

ID = "kleinman2023-deficits-relu"
TITLE = "Figs. 4-6: blur and dissociation deficits in ReLU fusion networks on digit halves"

WIDTH = 128
N_PRE = 2
LR, MOMENTUM, BATCH = 0.05, 0.9, 64
DEFICITS = ("blur", "dissociate")
BLUR_FACTOR = 4
FULL = dict(seeds=5, lengths=(0, 5, 10, 25, 50, 100), budget=100, depths=(1, 2, 3, 4),
            depth_lengths=(0, 50))
QUICK = dict(seeds=2, lengths=(0, 5, 10), budget=20, depths=(1, 2), depth_lengths=(0, 10))
#: Other conditions at the shallowest and deepest pre-fusion stack and the depth lengths (noise:
#: Gaussian pixel noise of this standard deviation on both views of every training batch).
CONDITIONS = {"width 32": dict(width=32), "width 256": dict(width=256),
              "lr 0.01": dict(lr=0.01), "pixel noise 1": dict(noise=1.0)}
QUICK_CONDITIONS = {"width 32": dict(width=32)}
N_RSV = 64
BINS = 20


def transform(deficit: str):
    if deficit == "blur":
        return ImageBlur("B", BLUR_FACTOR)
    if deficit == "dissociate":
        return ViewDissociation()
    raise ValueError(f"deficit must be one of {DEFICITS}, got {deficit!r}")


def network(task, n_pre: int, width: int | None = None) -> FusionMLP:
    dims = tuple(int(np.prod(s)) for s in task.input_shapes)
    return FusionMLP(dims, depth=n_pre + 3, fusion_layer=n_pre + 1,
                     width=WIDTH if width is None else width)


def rsv_layers(model) -> tuple:
    """(the last hidden layer, the fusion layer): where the RSV is measured."""
    spec = getattr(model, "base", model).spec
    return spec.depth - 1, spec.fusion_layer


def _task(mnist=None, noise=None):
    task = digit_halves(mnist)
    return task if noise is None else with_pixel_noise(task, noise)


def _model(n_pre, width=None, mnist=None):
    return network(digit_halves(mnist), n_pre, width)


def _layers(n_pre, width=None, mnist=None):
    return rsv_layers(_model(n_pre, width, mnist))


def _configurations(quick: bool) -> list:
    """(name, condition, n_pre, lengths, parameters) per sweep: N_PRE at every length."""
    cfg = QUICK if quick else FULL
    dl = list(cfg["depth_lengths"])
    out = [(f"default_n_pre{n}", "default", n,
            sorted(set(cfg["lengths"]) | set(dl)) if n == N_PRE else dl, {})
           for n in sorted(set(cfg["depths"]) | {N_PRE})]
    for name, cond in (QUICK_CONDITIONS if quick else CONDITIONS).items():
        out += [(f"{name.replace(' ', '_')}_n_pre{n}", name, n, dl, cond)
                for n in (min(cfg["depths"]), max(cfg["depths"]))]
    return out


def sweeps(quick: bool, mnist=None) -> dict:
    """One sweep per condition and n_pre, over every deficit and length."""
    cfg = QUICK if quick else FULL
    runner = DeficitFit(_model, _task, transform, _layers)
    fixed = {"budget": cfg["budget"], "lr": LR, "momentum": MOMENTUM, "batch_size": BATCH,
             "n_rsv": N_RSV, "mnist": mnist, "width": None, "noise": None}
    return {name: Sweep({"deficit": DEFICITS, "N": lengths}, runner,
                        {**fixed, "n_pre": n, **cond}, range(cfg["seeds"]))
            for name, _, n, lengths, cond in _configurations(quick)}


def compute(out: Path, quick: bool = False, mnist=None) -> dict:
    return run_sweeps(sweeps(quick, mnist), out, ID, quick)


def run(out: Path, quick: bool = False, mnist=None) -> dict:
    t0 = time.perf_counter()
    cfg = QUICK if quick else FULL
    ds = compute(out, quick, mnist)
    points = [p for name, c, n, _, _ in _configurations(quick) for p in deficit_fit_points(
        ds[name], cfg["budget"], BINS, n_pre=n, condition=c)]
    conditions = QUICK_CONDITIONS if quick else CONDITIONS
    answers = deficit_claims(points, DEFICITS, N_PRE, cfg["lengths"], cfg["depths"],
                             cfg["depth_lengths"])
    ends = (min(cfg["depths"]), max(cfg["depths"]))
    by_condition = {c: {d: depth_claim(points, d, ends, cfg["depth_lengths"], c)
                        for d in DEFICITS} for c in ["default", *conditions]}
    payload = {"id": ID, "title": TITLE, "quick": quick, "task": digit_halves(mnist).info,
               "network": {"width": WIDTH, "n_pre": N_PRE, "depth": "n_pre + 3",
                           "fusion_layer": "n_pre + 1", "rsv_layer": "depth - 1"},
               "training": {"lr": LR, "momentum": MOMENTUM, "batch_size": BATCH,
                            "budget": cfg["budget"], "blur_factor": BLUR_FACTOR},
               "polarized_threshold": POLARIZED, "rsv_samples": N_RSV, "bins": BINS,
               "conditions": conditions, "points": points, "claims": answers,
               "claims_by_condition": by_condition,
               "seconds": time.perf_counter() - t0}
    keys = ("holds", "polarized_change", "drop_difference", "test_acc_change")
    summary = {k: {kk: v[kk] for kk in v if kk in keys} for k, v in answers.items()}
    return write_outputs(out, ID, payload,
                         lambda stem: figure(points, cfg, stem, answers, by_condition),
                         summary)


def figure(points, cfg, stem, answers, by_condition):
    import matplotlib.pyplot as plt

    lengths = sorted({p["N"] for p in points if p["n_pre"] == N_PRE
                      and p["condition"] == "default"})
    colors = {"blur": PALETTE[5], "dissociate": PALETTE[4]}
    names = dict(blur="blur", dissociate="dissociation")
    ew = dict(capsize=1.5, lw=0.9, elinewidth=0.6)
    with paper_style():
        fig = plt.figure(figsize=(7.0, 7.0))
        outer = fig.add_gridspec(3, 1, height_ratios=(1, 1, 1.35), hspace=0.55)
        default = {d: [find_point(points, deficit=d, n_pre=N_PRE, N=N, condition="default")
                       for N in lengths] for d in DEFICITS}
        for r, (d, sel) in enumerate(default.items()):
            rsv_histogram_row(fig, outer[r].subgridspec(1, len(lengths), wspace=0.22),
                              [p["rsv_histogram"] for p in sel], [f"N = {N}" for N in lengths],
                              colors[d], f"{names[d]}\nfraction of units",
                              [f"pol. {np.mean(p['polarized']):.2f}" for p in sel])
        bottom = outer[2].subgridspec(1, 4, wspace=0.55)
        ax_acc, ax_pol, ax_depth, ax_cond = (fig.add_subplot(bottom[k]) for k in range(4))
        conds = list(by_condition)
        for d, sel in default.items():
            at = {k: [p[k] for p in sel] for k in sel[0] if k != "fusion_layer"}
            at["fusion"] = [p["fusion_layer"]["polarized"] for p in sel]
            seed_errorbars(ax_acc, lengths, [(at[k], ls, m) for k, ls, m in (
                ("test_acc", "-", "o"), ("unimodal_acc_B", ":", "v"),
                ("unimodal_acc_A", "--", "^"))], colors[d], ms=3, **ew)
            seed_errorbars(ax_pol, lengths, [(at[k], ls, m) for k, ls, m in (
                ("polarized", "-", "o"), ("mean_rsv", "--", "s"), ("fusion", ":", "D"))],
                colors[d], ms=2.8, **ew)
            drops = answers[f"{d}: deeper pre-fusion stacks suffer more"]["by_n_pre"]
            ks = sorted(int(k) for k in drops)
            ax_depth.errorbar(ks, [100 * drops[str(k)]["accuracy_drop"] for k in ks],
                              yerr=[100 * drops[str(k)]["accuracy_drop_se"] for k in ks],
                              color=colors[d], marker="o", ms=3, **ew)
            claim = [by_condition[c][d] for c in conds]
            ax_cond.errorbar(np.arange(len(conds)) + (0.12 if d == DEFICITS[1] else -0.12),
                             [100 * c["drop_difference"] for c in claim],
                             yerr=[200 * c["drop_difference_se"] for c in claim],
                             color=colors[d], marker="o", ms=3, ls="", **ew)
        below = dict(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=1)
        color_style_legend(ax_acc, (("-", "o", "both views"), ("--", "^", "A alone"),
                                    (":", "v", "B alone")), **below)
        color_style_legend(ax_pol, (("-", "o", "fraction |RSV| > 0.9"), ("--", "s", "mean RSV"),
                                    (":", "D", "fraction |RSV| > 0.9, fusion layer")), **below)
        n_lo, n_hi = min(cfg["depth_lengths"]), max(cfg["depth_lengths"])
        for ax, xlabel, ylabel in (
                (ax_acc, "deficit length N (epochs)", "final test accuracy"),
                (ax_pol, "deficit length N (epochs)", "RSV of the units"),
                (ax_depth, "layers before fusion", f"accuracy lost, N = {n_hi} vs {n_lo} (%)"),
                (ax_cond, "", f"extra loss, {max(cfg['depths'])} vs {min(cfg['depths'])} "
                              "layers (%, ± 2 s.e.)")):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if ax is not ax_acc:
                ax.axhline(0, color="0.8", lw=0.5, zorder=0)
        ax_depth.set_xticks(ks)
        ax_cond.set_xticks(np.arange(len(conds)))
        ax_cond.set_xticklabels(conds, rotation=60, ha="right", fontsize=6)
        style_legend(fig, [("-", names[d], {"color": colors[d], "lw": 1.4}) for d in DEFICITS],
                     loc="upper center", ncol=2, fontsize=7, bbox_to_anchor=(0.5, 0.935))
        return save(fig, stem)
