"""Kleinman, Achille & Soatto (CVPR 2023), Section 4.4 on real data: does a cross-source
reconstruction objective remove the permanent effect of an early deficit?

The setting of kleinman2023-deficits-relu (digit halves, FusionMLP with n_pre = 2 layers per
view, width 128, SGD 0.05 with momentum 0.9, batches of 64, a deficit on view B for N epochs,
then a budget of normal training; RSV of the last hidden layer's units), trained twice from the
same seeds: once on the cross-entropy alone, once with the auxiliary objective of
dlnfusion.CrossReconstruction of weight λ = 1 (each view reconstructed by a linear decoder
from the other view's pre-fusion representation; mean squared error per pixel of the
standardized image, so λ = 1 weighs an error the size of the pixel variance like one nat of
cross-entropy). The two arms share the network initialization and the batch order of every
seed, so differences are paired. The reconstruction objective is on throughout, also during
the deficit (where, under dissociation, the views it pairs are unrelated images).

The paper pre-trains a multi-view transformer with masked cross-view reconstruction and then
fine-tunes it; the auxiliary loss here is the simplest objective with the same aim, trained
jointly with the task.

Full: 5 seeds, N ∈ {0, 10, 25, 50, 100}, 100-epoch budget. Quick: 2 seeds, N ∈ {0, 50},
50-epoch budget.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dlnfusion import CrossReconstruction
from dlnfusion.compare import POLARIZED, rsv_histogram
from dlnfusion.data import digit_halves
from dlnfusion.plot import PALETTE, paper_style, save

from ._output import write_outputs
from .kleinman2023_deficits_relu import (BINS, DEFICITS, N_PRE, _delta, _ms, _style_legend,
                                         network, sweep_deficits)

ID = "kleinman2023-reconstruction"
TITLE = "Sec. 4.4: cross-source reconstruction against blur and dissociation deficits"
WEIGHT = 1.0
FULL = dict(seeds=5, lengths=(0, 10, 25, 50, 100), budget=100)
QUICK = dict(seeds=2, lengths=(0, 50), budget=50)


def _answers(points, lengths) -> dict:
    n0, n1 = min(lengths), max(lengths)

    def at(d, w, N):
        return next(p for p in points if p["deficit"] == d and p["reconstruction_weight"] == w
                    and p["N"] == N)
    out = {}
    for d in DEFICITS:
        row = {}
        for key in ("test_acc", "unimodal_acc_B", "polarized", "mean_rsv"):
            eff = {}
            for w in (0.0, WEIGHT):
                eff[str(w)] = _delta(at(d, w, n0)[key], at(d, w, n1)[key])
            # the deficit's effect with reconstruction minus without, paired over seeds
            diff = _delta(np.asarray(at(d, 0.0, n1)[key]) - np.asarray(at(d, 0.0, n0)[key]),
                          np.asarray(at(d, WEIGHT, n1)[key]) - np.asarray(at(d, WEIGHT, n0)[key]))
            row[key] = {"effect_without": eff["0.0"][0], "effect_without_se": eff["0.0"][1],
                        "effect_with": eff[str(WEIGHT)][0],
                        "effect_with_se": eff[str(WEIGHT)][1],
                        "difference": diff[0], "difference_se": diff[1]}
        pol = row["polarized"]
        acc = row["test_acc"]
        row["removes_polarization"] = bool(abs(pol["effect_with"]) < 2 * pol["effect_with_se"]
                                           and pol["effect_without"] > 2 *
                                           pol["effect_without_se"])
        row["reduces_accuracy_loss"] = bool(acc["difference"] > 2 * acc["difference_se"])
        row["N"] = [n0, n1]
        out[d] = row
    return out


def run(out: Path, quick: bool = False, mnist=None) -> dict:
    t0 = time.perf_counter()
    cfg = QUICK if quick else FULL
    task = digit_halves(mnist)
    seeds = list(range(cfg["seeds"]))
    base = network(task, N_PRE)
    points = []
    for w, model in ((0.0, base), (WEIGHT, CrossReconstruction(base, WEIGHT))):
        points += sweep_deficits(model, task, cfg["lengths"], seeds, cfg["budget"],
                                 n_pre=N_PRE, reconstruction_weight=w)
    answers = _answers(points, cfg["lengths"])
    payload = {"id": ID, "title": TITLE, "quick": quick, "task": task.info,
               "reconstruction_weight": WEIGHT, "polarized_threshold": POLARIZED,
               "budget": cfg["budget"], "points": points, "answers": answers,
               "seconds": time.perf_counter() - t0}
    summary = {d: {k: answers[d][k] for k in ("removes_polarization", "reduces_accuracy_loss")}
               for d in DEFICITS}
    return write_outputs(out, ID, payload, lambda stem: figure(points, cfg, stem), summary)


def figure(points, cfg, stem):
    import matplotlib.pyplot as plt

    lengths = sorted({p["N"] for p in points})
    colors = {0.0: PALETTE[0], WEIGHT: PALETTE[3]}
    names = {0.0: "task loss only", WEIGHT: f"+ reconstruction (λ = {WEIGHT:g})"}
    titles = {"blur": "blur of B", "dissociate": "dissociation"}
    edges = np.linspace(-1, 1, BINS + 1)
    with paper_style():
        fig, axes = plt.subplots(2, 3, figsize=(7.0, 4.3), gridspec_kw=dict(wspace=0.4,
                                                                            hspace=0.55))
        for r, d in enumerate(DEFICITS):
            ax_acc, ax_pol, ax_hist = axes[r]
            for w in (0.0, WEIGHT):
                sel = [next(p for p in points if p["deficit"] == d and
                            p["reconstruction_weight"] == w and p["N"] == N) for N in lengths]
                for key, ls, mark in (("test_acc", "-", "o"), ("unimodal_acc_B", ":", "v")):
                    ms = np.array([_ms(p[key]) for p in sel])
                    ax_acc.errorbar(lengths, ms[:, 0], yerr=ms[:, 1], color=colors[w], ls=ls,
                                    marker=mark, ms=3, capsize=1.5, lw=0.9, elinewidth=0.6)
                for key, ls, mark in (("polarized", "-", "o"), ("mean_rsv", "--", "s")):
                    ms = np.array([_ms(p[key]) for p in sel])
                    ax_pol.errorbar(lengths, ms[:, 0], yerr=ms[:, 1], color=colors[w], ls=ls,
                                    marker=mark, ms=3, capsize=1.5, lw=0.9, elinewidth=0.6)
                last = sel[-1]
                ax_hist.stairs(last["rsv_histogram"], edges, color=colors[w], lw=1.1,
                               fill=False)
            ax_acc.set_title(f"{titles[d]}: accuracy", fontsize=7.5)
            ax_pol.set_title(f"{titles[d]}: polarization", fontsize=7.5)
            ax_hist.set_title(f"{titles[d]}: RSV after N = {lengths[-1]}", fontsize=7.5)
            ax_acc.set_ylabel("final test accuracy")
            ax_pol.set_ylabel("fraction |RSV| > 0.9 / mean RSV")
            ax_pol.axhline(0, color="0.8", lw=0.5, zorder=0)
            ax_hist.set_ylabel("fraction of units")
            ax_hist.set_xlim(-1, 1)
            for ax in (ax_acc, ax_pol):
                ax.set_xlabel("deficit length N (epochs)")
            ax_hist.set_xlabel("RSV (+1: A only, −1: B only)")
        _style_legend(axes[0, 0], colors, names, (("-", "o", "both views"),
                                                  (":", "v", "B alone")))
        _style_legend(axes[0, 1], colors, names, (("-", "o", "|RSV| > 0.9"),
                                                  ("--", "s", "mean RSV")))
        return save(fig, stem)
