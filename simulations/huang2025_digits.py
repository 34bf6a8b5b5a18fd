"""InfoReg and OGM-GE on real data (Huang et al., CVPR 2025, Tables 2-4): the two-digit task
with a noisier modality B (scikit-learn's 8×8 digits, or MNIST with --mnist), a ReLU fusion
network trained with the authors' schedule under joint training, OGM-GE, InfoReg, its Table 4
ablation (throughout, outside the window), the per-sample trace, and the Table 3 setting with
unimodal losses; the paper's CREMA-D numbers beside, cited as printed.

The protocol and the numbers are in docs/figures/huang2025-digits.md. Every number comes from
one sweep over the methods (runner BalanceFit), saved under
``out/huang2025-digits/{quick,full}/methods`` (``full_mnist`` with MNIST).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from dlnfusion import FusionMLP
from dlnfusion import compare as cmp
from dlnfusion.data import noisy_digits
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.sweep import BalanceFit, Balancing, Sweep

from ._output import run_sweeps, write_outputs

ID = "huang2025-digits"
TITLE = "InfoReg and OGM-GE on the two-digit task (ReLU fusion network), with Table 4's ablation"
WIDTH, DEPTH = 100, 3
BATCH, LR, MOMENTUM, WEIGHT_DECAY = 64, 0.02, 0.9, 1e-4
EPOCHS, DECAY_AT, QUICK_EPOCHS, QUICK_DECAY_AT = 50, 30, 12, 8
SEEDS, QUICK_SEEDS = 5, 2
BETA, K_WINDOW, OGM_ALPHA = 0.9, 0.04, 0.8
METHODS = ("joint", "ogm_ge", "inforeg", "inforeg_always", "inforeg_outside",
           "inforeg_per_sample", "joint_star", "inforeg_star")
LABELS = {"joint": "Joint training", "ogm_ge": "OGM-GE", "inforeg": "InfoReg (window)",
          "inforeg_always": "InfoReg throughout", "inforeg_outside": "InfoReg outside window",
          "inforeg_per_sample": "InfoReg, per-sample Tr F",
          "joint_star": "Joint training*", "inforeg_star": "InfoReg*"}
#: λ of the added unimodal losses (the starred rows)
UNIMODAL_WEIGHT = 1.0
_INFOREG = dict(beta=BETA, K=K_WINDOW)
BALANCING = {"joint": Balancing("joint"), "ogm_ge": Balancing("ogm_ge", alpha=OGM_ALPHA),
             "inforeg": Balancing("inforeg", **_INFOREG),
             "inforeg_always": Balancing("inforeg", window="always", **_INFOREG),
             "inforeg_outside": Balancing("inforeg", window="outside", **_INFOREG),
             "inforeg_per_sample": Balancing("inforeg", trace="per_sample", **_INFOREG),
             "joint_star": Balancing("joint", unimodal=UNIMODAL_WEIGHT),
             "inforeg_star": Balancing("inforeg", unimodal=UNIMODAL_WEIGHT, **_INFOREG)}
#: The paper's CREMA-D numbers (Table 2: accuracy, audio alone, video alone; Table 4: InfoReg
#: regulating throughout "WTP", in the window "PLW", in other periods), cited as printed.
PAPER_TABLE2 = {"joint": (66.61, 58.99, 35.14), "ogm_ge": (68.70, 56.84, 39.52),
                "inforeg": (71.90, 60.03, 49.65)}
PAPER_TABLE4 = {"inforeg_always": 69.03, "inforeg": 71.90, "inforeg_outside": 67.22}
#: Table 3 (with unimodal losses), CREMA-D: accuracy, audio alone, video alone, as printed.
PAPER_TABLE3 = {"joint_star": (70.81, 60.52, 55.23), "inforeg_star": (75.71, 61.63, 61.22)}
COLORS = {"joint": PALETTE[0], "ogm_ge": PALETTE[4], "inforeg": PALETTE[5],
          "inforeg_always": PALETTE[2], "inforeg_outside": PALETTE[6],
          "inforeg_per_sample": PALETTE[3], "joint_star": PALETTE[1], "inforeg_star": PALETTE[7]}


def network(task) -> FusionMLP:
    dims = tuple(int(np.prod(s)) for s in task.input_shapes)
    return FusionMLP(dims, depth=DEPTH, fusion_layer=DEPTH, width=WIDTH, n_out=task.n_classes)


@lru_cache(maxsize=None)
def _task(mnist=None):
    return noisy_digits(None if mnist is None else Path(mnist))


def sweeps(quick: bool, mnist=None) -> dict:
    epochs, decay_at = (QUICK_EPOCHS, QUICK_DECAY_AT) if quick else (EPOCHS, DECAY_AT)
    fixed = {"epochs": epochs, "decay_at": decay_at, "decay": 0.1, "batch_size": BATCH,
             "lr": LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
             "mnist": None if mnist is None else str(mnist)}
    return {"methods": Sweep({"balancing": METHODS},
                             BalanceFit(lambda mnist: network(_task(mnist)), _task, BALANCING),
                             fixed, seeds=range(QUICK_SEEDS if quick else SEEDS))}


def compute(out: Path, quick: bool = False, mnist=None) -> dict:
    return run_sweeps(sweeps(quick, mnist), out, ID, quick, suffix="_mnist" if mnist else "")


def run(out: Path, quick: bool = False, mnist=None) -> dict:
    ds = compute(out, quick, mnist)["methods"]
    task = _task(None if mnist is None else str(mnist))
    seeds = [int(s) for s in ds.seed.values]
    epochs, decay_at = (QUICK_EPOCHS, QUICK_DECAY_AT) if quick else (EPOCHS, DECAY_AT)
    rows, curves = {}, {}
    for method in METHODS:
        r = ds.sel(balancing=method)
        acc, uni = r.test_acc.values, r.unimodal_acc.values
        rows[method] = {
            "test_acc": acc[:, -1].tolist(), "unimodal_acc_A": uni[:, 0, -1].tolist(),
            "unimodal_acc_B": uni[:, 1, -1].tolist(),
            "test_acc_ms": cmp.mean_sd(acc[:, -1]), "unimodal_A_ms": cmp.mean_sd(uni[:, 0, -1]),
            "unimodal_B_ms": cmp.mean_sd(uni[:, 1, -1]),
            "paper_crema_d": PAPER_TABLE2.get(method, PAPER_TABLE3.get(method)),
            "paper_table4": PAPER_TABLE4.get(method),
        }
        curves[method] = (ds.epoch.values, acc, uni)
    summary = cmp.paired_differences(rows, COMPARISONS, CLAIMS)
    payload = {"figure": ID, "paper": "Huang, Wei, Yang & Hu, CVPR 2025, Tables 2 and 4 "
                                      "(CREMA-D numbers cited as printed)",
               "quick": quick, "task": task.info,
               "network": {"kind": "FusionMLP", "depth": DEPTH, "fusion_layer": DEPTH,
                           "width": WIDTH},
               "training": {"batch": BATCH, "lr": LR, "momentum": MOMENTUM,
                            "weight_decay": WEIGHT_DECAY, "epochs": epochs,
                            "decay_at_epoch": decay_at, "seeds": seeds,
                            "loss": "cross-entropy of the fused output"},
               "methods": {"beta": BETA, "K": K_WINDOW, "ogm_alpha": OGM_ALPHA,
                           "unimodal_weight": UNIMODAL_WEIGHT},
               "rows": rows, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(rows, curves, stem), summary)
    _print(rows, summary)
    return result


#: The summary's paired differences (same seeds and initializations): name → (method,
#: against, measure), and the claims they test (mean above twice its standard error).
COMPARISONS = {
    "inforeg_vs_joint_test_acc": ("inforeg", "joint", "test_acc"),
    "inforeg_vs_joint_weak_branch": ("inforeg", "joint", "unimodal_acc_B"),
    "ogm_ge_vs_joint_test_acc": ("ogm_ge", "joint", "test_acc"),
    "ogm_ge_vs_joint_weak_branch": ("ogm_ge", "joint", "unimodal_acc_B"),
    "window_vs_throughout_test_acc": ("inforeg", "inforeg_always", "test_acc"),
    "window_vs_outside_test_acc": ("inforeg", "inforeg_outside", "test_acc"),
    "per_sample_vs_batch_trace_test_acc": ("inforeg_per_sample", "inforeg", "test_acc"),
    "joint_star_vs_joint_test_acc": ("joint_star", "joint", "test_acc"),
    "joint_star_vs_joint_weak_branch": ("joint_star", "joint", "unimodal_acc_B"),
    "inforeg_star_vs_joint_star_test_acc": ("inforeg_star", "joint_star", "test_acc"),
    "inforeg_star_vs_joint_star_weak_branch": ("inforeg_star", "joint_star", "unimodal_acc_B")}
CLAIMS = {"inforeg_raises_weak_branch": "inforeg_vs_joint_weak_branch",
          "inforeg_raises_accuracy": "inforeg_vs_joint_test_acc",
          "window_beats_throughout": "window_vs_throughout_test_acc",
          "unimodal_losses_raise_accuracy": "joint_star_vs_joint_test_acc",
          "inforeg_star_beats_joint_star": "inforeg_star_vs_joint_star_test_acc"}


def _print(rows, summary):
    print(f"  {'method':24s} {'both views':>12s} {'A alone':>12s} {'B alone':>12s}   CREMA-D "
          "(paper: acc, audio, video)")
    for m, r in rows.items():
        cells = [f"{100 * r[k][0]:5.2f}±{100 * r[k][1]:4.2f}"
                 for k in ("test_acc_ms", "unimodal_A_ms", "unimodal_B_ms")]
        paper = r["paper_crema_d"] or ((r["paper_table4"],) if r["paper_table4"] else ())
        print(f"  {LABELS[m]:24s} " + " ".join(f"{c:>12s}" for c in cells) + "   "
              + ", ".join(f"{v:.2f}" for v in paper))
    for k in COMPARISONS:
        d = summary[k]
        print(f"  {k}: {100 * d['mean']:+.2f} ± {100 * d['se']:.2f} points (paired s.e.)")


def _figure(rows, curves, stem):
    with paper_style():
        fig, axes = new_figure(ncols=3, width=6.9, height=2.4)
        ax = axes[0, 0]
        keys = (("test_acc_ms", "both views"), ("unimodal_A_ms", "A alone"),
                ("unimodal_B_ms", "B alone"))
        x = np.arange(len(keys))
        wbar = 0.8 / len(rows)
        for i, (m, r) in enumerate(rows.items()):
            ax.bar(x + (i - (len(rows) - 1) / 2) * wbar, [100 * r[k][0] for k, _ in keys],
                   wbar, yerr=[100 * r[k][1] for k, _ in keys], color=COLORS[m],
                   label=LABELS[m], error_kw=dict(lw=0.6, capsize=1.5))
        ax.set_xticks(x, [lab for _, lab in keys])
        lo = min(100 * r[k][0] for r in rows.values() for k, _ in keys)
        ax.set_ylim(max(0, lo - 5), 100.5)
        ax.set_ylabel("final test accuracy (%)")
        for j, (title, idx) in enumerate((("both views", None), ("B alone (the noisier view)",
                                                                 1))):
            ax = axes[0, j + 1]
            for m, (ep, acc, uni) in curves.items():
                y = acc if idx is None else uni[:, idx]
                mean = 100 * np.mean(y, axis=0)
                ax.plot(ep, mean, color=COLORS[m], lw=1.0, label=LABELS[m])
            ax.set_xlabel("epoch")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(title, fontsize=7)
            ax.set_ylim(50, 100)
        axes[0, 1].legend(frameon=False, fontsize=5.5, loc="lower right")
        return save(fig, stem)
