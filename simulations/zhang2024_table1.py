"""Zhang, Latham & Saxe (2024), Table 1 with Figures 7, 13 and 14: deep ReLU and convolutional
fusion networks on the noisy two-digit task (scikit-learn's 8×8 digits, or MNIST with ``mnist``).

One sweep over the fusion layer L_f per network (a ReLU MLP of depth 5, a CNN of five
convolutions), every point trained by SGD from every seed until both unimodal test accuracies
have reached 50 % (or the budget ends); the time ratio is the ratio of those two epochs. Saved
under ``out/zhang2024-table1/{quick,full}[-mnist]/<network>``; protocol and numbers:
docs/figures/zhang2024-table1.md. ``quick`` checks the pipeline, not the table's numbers.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from dlnfusion import FusionCNN, FusionMLP
from dlnfusion.compare import finite_mean_std, mean_fit_curves
from dlnfusion.data import noisy_digits
from dlnfusion.plot import (PALETTE, accuracy_panel, mean_sd_text, new_figure,
                            noisy_pair_examples, paper_style, save, table_panel)
from dlnfusion.sweep import Fit, Sweep

from ._output import run_sweeps, write_outputs

ID = "zhang2024-table1"
TITLE = "Table 1 (Figures 7, 13, 14): time ratio of deep ReLU and convolutional fusion networks"

#: The paper's Table 1 (noisy MNIST), mean and standard deviation over five seeds, L_f = 1 … 5.
PAPER_TABLE = {"mlp": [(1.30, 0.24), (1.53, 0.40), (1.90, 0.39), (3.38, 1.13), (6.38, 1.12)],
               "cnn": [(1.04, 0.03), (1.10, 0.05), (1.08, 0.03), (1.32, 0.16), (2.53, 0.45)]}
FUSION_LAYERS = (1, 2, 3, 4, 5)
SEEDS, QUICK_SEEDS = 5, 2
BATCH, LR_DECAY, LEVEL = 1000, 0.996, 0.5
CHUNK = 10  # epochs per compiled call; the stopping rule is checked between chunks
NETWORKS = {  # learning rate; epoch budgets on digits, MNIST and quick; width or channels
    "mlp": {"lr": 0.04, "epochs": 300, "mnist_epochs": 200, "quick_epochs": 30,
            "size": 500, "quick_size": 100, "quick_fusion_layers": (1, 5)},
    "cnn": {"lr": 0.002, "epochs": 10, "mnist_epochs": 200, "quick_epochs": 2,
            "size": 32, "quick_size": 8, "quick_fusion_layers": (1,)},
}  # quick: every fusion layer is a network of its own, compiled once
QUICK_BATCH = 100  # quick: 14 steps per epoch instead of 2, so that a few epochs show learning


@lru_cache(maxsize=4)
def _task(mnist=None):
    return noisy_digits(mnist, seed=0)


def network(kind: str, fusion_layer: int, size: int, mnist=None):
    """The paper's MLP (depth 5) or CNN (five convolutions) at fusion layer ``fusion_layer``,
    ``size`` units or channels, for the images of the task."""
    shape = _task(mnist).input_shapes[0]
    if kind == "mlp":
        d = int(np.prod(shape))
        return FusionMLP((d, d), depth=5, fusion_layer=fusion_layer, width=size, n_out=10)
    return FusionCNN(tuple(shape), fusion_layer=fusion_layer, n_conv=5, channels=size,
                     n_out=10)


def batch_size(task, quick: bool = False) -> int:
    return min(QUICK_BATCH if quick else BATCH, task.n_train)


def _budget(kind, quick, mnist) -> int:
    return NETWORKS[kind]["quick_epochs" if quick else "mnist_epochs" if mnist else "epochs"]


def sweeps(quick: bool, mnist=None) -> dict:
    """One sweep over the fusion layer per network, trained until both 50% crossings."""
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    out = {}
    for kind, cfg in NETWORKS.items():
        layers = cfg["quick_fusion_layers"] if quick else FUSION_LAYERS
        if not layers:
            continue
        fixed = {"kind": kind, "size": cfg["quick_size" if quick else "size"], "mnist": mnist,
                 "epochs": _budget(kind, quick, mnist),
                 "batch_size": batch_size(_task(mnist), quick), "lr": cfg["lr"],
                 "lr_decay": LR_DECAY, "loss": "cross_entropy", "chunk_epochs": CHUNK,
                 "batch_seeds": kind == "mlp", "level": LEVEL, "stop_at_level": True}
        out[kind] = Sweep({"fusion_layer": list(layers)}, Fit(network, _task), fixed, seeds)
    return out


def compute(out: Path, quick: bool = False, mnist=None) -> dict:
    """Run (or resume) the sweeps; their Datasets by network."""
    return run_sweeps(sweeps(quick, mnist), out, ID, quick,
                      suffix="-mnist" if mnist is not None else "")


def _row(kind, p, budget) -> dict:
    Lf = int(p.fusion_layer)
    mean, std = finite_mean_std(p.time_ratio.values)
    return {"network": kind, "fusion_layer": Lf,
            "time_ratio": [float(r) for r in p.time_ratio.values], "mean": mean, "std": std,
            "first_modality": [str(f) for f in p.first.values],
            "t_50_epochs": p.t_level.values.tolist(), "epochs_run": int(p.epochs_run[0]),
            "epoch_budget": budget, "status": [str(s) for s in p.status.values],
            "final_test_acc": [float(a) for a in p.final_test_acc.values],
            "seconds": float(p.seconds[0]), "curves": mean_fit_curves(p),
            "paper_mean": PAPER_TABLE[kind][Lf - 1][0], "paper_std": PAPER_TABLE[kind][Lf - 1][1]}


def run(out: Path, quick: bool = False, mnist=None) -> dict:
    task = _task(mnist)
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    rows = [_row(kind, ds.sel(fusion_layer=Lf), _budget(kind, quick, mnist))
            for kind, ds in compute(out, quick, mnist).items() for Lf in ds.fusion_layer.values]
    total = sum(r["seconds"] for r in rows)
    samples = sum(r["epochs_run"] * task.n_train * len(seeds) for r in rows)
    mlp = {r["fusion_layer"]: r["mean"] for r in rows if r["network"] == "mlp"}
    ordered = [mlp[L] for L in FUSION_LAYERS if L in mlp]
    summary = {
        "data": task.info["source"],
        "mlp_ratio_increases_with_fusion_layer": bool(np.all(np.diff(ordered) > 0))
        if len(ordered) > 1 else None,
        "mlp_ratio_lf5_over_lf1": float(mlp.get(5, np.nan) / mlp.get(1, np.nan)),
        "train_seconds": total, "samples_per_second": samples / total if total else None,
    }
    payload = {
        "figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Table 1, Figures 7, 13, 14",
        "data": task.info["source"], "task": task.info, "quick": quick,
        "parameters": {"seeds": seeds, "batch_size": batch_size(task, quick),
                       "lr_decay_per_epoch": LR_DECAY, "level": LEVEL, "loss": "cross_entropy",
                       "init": "PyTorch default: W, b ~ U(±1/sqrt(fan_in))",
                       "networks": {k: {**v, "used_size": v["quick_size" if quick else "size"]}
                                    for k, v in NETWORKS.items()}},
        "rows": rows, "paper_table": PAPER_TABLE, "summary": summary}
    for r in rows:
        print(f"{r['network']} L_f={r['fusion_layer']}: time ratio "
              f"{mean_sd_text(r['time_ratio'])}, {r['epochs_run']} epochs")
    print(f"MLP ratio rises with L_f: {summary['mlp_ratio_increases_with_fusion_layer']}; "
          f"L_f=5 / L_f=1 = {summary['mlp_ratio_lf5_over_lf1']:.2f}; training {total:.0f} s, "
          f"{summary['samples_per_second']:.0f} samples/s")
    return write_outputs(out, ID, payload, lambda stem: _figures(task, rows, stem), summary)


def _figures(task, rows, stem):
    with paper_style():
        paths = _table_figure(rows, stem)
        for kind, fig_no in (("mlp", 7), ("cnn", 14)):
            paths += _curves_figure([r for r in rows if r["network"] == kind],
                                    Path(f"{stem}-fig{fig_no}"))
        return paths + save(noisy_pair_examples(task), Path(f"{stem}-fig13"))


def _table_figure(rows, stem):
    fig, axes = new_figure(ncols=3, width=6.9, height=2.1)
    for ax, kind, name in ((axes[0, 0], "mlp", "MLP (L = 5)"), (axes[0, 1], "cnn", "CNN")):
        rs = [r for r in rows if r["network"] == kind]
        L = [r["fusion_layer"] for r in rs]
        for r in rs:
            ratio = np.asarray(r["time_ratio"], float)
            ok = np.isfinite(ratio)
            ax.plot([r["fusion_layer"]] * int(ok.sum()), ratio[ok], ".", color=PALETTE[5],
                    alpha=0.4, ms=3)
        means = np.asarray([r["mean"] for r in rs], float)
        ax.errorbar(L, means, np.asarray([r["std"] for r in rs], float), fmt="o-",
                    color=PALETTE[5], ms=3, capsize=2, label="dlnfusion (digits)")
        ax.errorbar(L, [r["paper_mean"] for r in rs], [r["paper_std"] for r in rs], fmt="s--",
                    color=PALETTE[0], mfc="none", ms=3, capsize=2, label="paper (MNIST)")
        ax.set(xlabel=r"fusion layer $L_f$", ylabel="time ratio", xticks=L)
        ax.set_title(name, fontsize=8)
        if not np.isfinite(means).any():
            ax.text(0.5, 0.55, "50% not reached\nwithin the epoch budget", ha="center",
                    va="center", fontsize=7, color=PALETTE[5], transform=ax.transAxes)
    axes[0, 0].legend(fontsize=6)
    done = {(r["network"], r["fusion_layer"]): mean_sd_text(r["time_ratio"]) for r in rows}
    cells = [[f"{Lf}"] + [v for kind in ("mlp", "cnn") for v in (
        done.get((kind, Lf), "not run"), "{:.2f}±{:.2f}".format(*PAPER_TABLE[kind][Lf - 1]))]
        for Lf in FUSION_LAYERS]
    table_panel(axes[0, 2], cells, ["$L_f$", "MLP", "paper", "CNN", "paper"],
                "time ratio: digits (dlnfusion) and MNIST (paper)")
    return save(fig, stem)


def _curves_figure(rows, stem):
    """The seed-mean curves of one network at every fusion layer (Figures 7 and 14)."""
    fig, axes = new_figure(ncols=len(FUSION_LAYERS), width=6.9, height=1.7)
    curves = {r["fusion_layer"]: r["curves"] for r in rows}
    for ax, Lf in zip(axes[0], FUSION_LAYERS):
        ax.set_title(f"$L_f = {Lf}$", fontsize=8)
        if Lf not in curves:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
            continue
        c = curves[Lf]
        accuracy_panel(ax, c["epoch"], c["train_loss_over_initial"], c["test_acc"],
                       c["unimodal_acc"], level=LEVEL)
    axes[0, 0].set_ylabel("loss & accuracy")
    if curves:
        ax = axes[0, FUSION_LAYERS.index(min(curves))]
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=4,
                   fontsize=6)
    return save(fig, stem)
