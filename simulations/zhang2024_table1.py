"""Zhang, Latham & Saxe (2024), Table 1 with Figures 7, 13 and 14: deep ReLU and convolutional
fusion networks on the noisy two-digit task.

Each sample shows two images of the same class; in every training batch image B is corrupted
with probability 0.6, image A with probability 0.2 (x̃ = 0.1·x + 0.15·ξ in standardized pixel
units, see :func:`dlnfusion.data.noisy_pairs`). Networks, as the paper's Appendix I:

* MLP: fully connected ReLU networks, depth L = 5, fusion layer L_f = 1 … 5, width 500 (except
  the input layer), SGD at learning rate 0.04;
* CNN: five 3×3 convolutions with 32 channels, stride 1, ReLU, the branches concatenated along
  the channel axis at convolution L_f, a 2×2 max-pool and one dense layer; SGD at 0.002
  (convolutions keep the 8×8 digits' size with zero padding; 28×28 MNIST uses none);

both with cross-entropy, batches of 1000 (or the whole training set if smaller), the learning
rate multiplied by 0.996 after every epoch, PyTorch's default initialization, five seeds. The
time ratio is the epoch at which the second-learned modality's unimodal test accuracy (the other
branch shown a blank image) reaches 50%, divided by the epoch at which the first one's does
(interpolated between epochs). A run stops once every seed has both crossings, or at the
network's epoch budget; a seed whose second modality never reaches 50% within the budget has no
ratio (NaN) and is reported as such.

The default data are scikit-learn's 8×8 digits (1,347 training and 450 test images), so an
epoch is two SGD steps rather than MNIST's sixty; with ``mnist=FOLDER`` (the IDX files) the
command runs the paper's exact setting. The paper's Table 1 (MNIST) is shown beside ours, cited
as the paper's numbers.

``quick``: two seeds, width 100 and 8 channels, batches of 100, the MLP at L_f = 1, 3, 5 and the
CNN at L_f = 1 and 5 only,
small epoch budgets: a check that the whole pipeline runs, not the table's numbers.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jax
import numpy as np

from dlnfusion import FusionCNN, FusionMLP
from dlnfusion.data import noisy_digits
from dlnfusion.plot import (PALETTE, accuracy_panel, image_grid, mean_sd_text, new_figure,
                            paper_style, save, table_panel)
from dlnfusion.sweep import Fit, Sweep

from ._output import write_outputs

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
            "size": 500, "quick_size": 100, "quick_fusion_layers": (1, 3, 5)},
    "cnn": {"lr": 0.002, "epochs": 10, "mnist_epochs": 200, "quick_epochs": 2,
            "size": 32, "quick_size": 8, "quick_fusion_layers": (1, 5)},
}
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


def _mode(quick, mnist) -> str:
    return ("quick" if quick else "full") + ("-mnist" if mnist is not None else "")


def sweeps(quick: bool, mnist=None) -> dict:
    """One sweep over the fusion layer per network, each grid point trained from every seed
    until every seed has both 50% crossings (or the epoch budget ends)."""
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    out = {}
    for kind, cfg in NETWORKS.items():
        layers = cfg["quick_fusion_layers"] if quick else FUSION_LAYERS
        if not layers:
            continue
        budget = cfg["quick_epochs" if quick else "mnist_epochs" if mnist else "epochs"]
        fixed = {"kind": kind, "size": cfg["quick_size" if quick else "size"], "mnist": mnist,
                 "epochs": budget, "batch_size": batch_size(_task(mnist), quick),
                 "lr": cfg["lr"], "lr_decay": LR_DECAY, "loss": "cross_entropy",
                 "chunk_epochs": CHUNK, "batch_seeds": kind == "mlp", "level": LEVEL,
                 "stop_at_level": True}
        out[kind] = Sweep({"fusion_layer": list(layers)}, Fit(network, _task), fixed, seeds)
    return out


def compute(out: Path, quick: bool = False, mnist=None) -> dict:
    """Run (or resume) the sweeps; their Datasets by network."""
    folder = Path(out) / ID / _mode(quick, mnist)
    return {kind: sw.run(folder / kind, progress=False)
            for kind, sw in sweeps(quick, mnist).items()}


def _stats(x):
    x = np.asarray(x, float)
    ok = x[np.isfinite(x)]
    return (float(ok.mean()) if ok.size else float("nan"),
            float(ok.std()) if ok.size > 1 else float("nan"))


def _history(p):
    """A grid point's records up to the epoch its training ended."""
    keep = p.epoch.values <= int(p.epochs_run.values[0])
    rec = {k: p[k].values[..., keep]
           for k in ("train_loss", "test_acc", "unimodal_acc")}
    return {"epoch": p.epoch.values[keep], **rec, "names": list(p.modality.values)}


def _mean_curves(h) -> dict:
    """Seed means of the recorded curves (the lines of Figures 7 and 14)."""
    with np.errstate(invalid="ignore"):
        return {"epoch": h["epoch"].tolist(),
                "train_loss_over_initial": np.nanmean(h["train_loss"] / h["train_loss"][:, :1],
                                                      0).tolist(),
                "test_acc": np.nanmean(h["test_acc"], 0).tolist(),
                "unimodal_acc": {n: np.nanmean(h["unimodal_acc"][:, m], 0).tolist()
                                 for m, n in enumerate(h["names"])}}


def _row(kind, p, budget, curves):
    h = _history(p)
    curves[(kind, int(p.fusion_layer))] = h
    mean, std = _stats(p.time_ratio.values)
    Lf = int(p.fusion_layer)
    return {"network": kind, "fusion_layer": Lf,
            "time_ratio": [float(r) for r in p.time_ratio.values], "mean": mean, "std": std,
            "first_modality": [str(f) for f in p.first.values],
            "t_50_epochs": p.t_level.values.tolist(), "epochs_run": int(p.epochs_run[0]),
            "epoch_budget": budget, "status": [str(s) for s in p.status.values],
            "final_test_acc": [float(a) for a in p.final_test_acc.values],
            "seconds": float(p.seconds[0]), "curves": _mean_curves(h),
            "paper_mean": PAPER_TABLE[kind][Lf - 1][0], "paper_std": PAPER_TABLE[kind][Lf - 1][1]}


def run(out: Path, quick: bool = False, mnist=None) -> dict:
    task = _task(mnist)
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    rows, curves = [], {}
    for kind, ds in compute(out, quick, mnist).items():
        budget = NETWORKS[kind]["quick_epochs" if quick else "mnist_epochs" if mnist
                                else "epochs"]
        rows += [_row(kind, ds.sel(fusion_layer=Lf), budget, curves)
                 for Lf in ds.fusion_layer.values]
    for r in rows:
        print(f"{r['network']} L_f={r['fusion_layer']}: time ratio {r['mean']:.2f} ± "
              f"{r['std']:.2f} (per seed {np.round(r['time_ratio'], 2).tolist()}, first "
              f"{r['first_modality']}), {r['epochs_run']} epochs, {r['seconds']:.1f} s")
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
    print(f"MLP ratio rises with L_f: {summary['mlp_ratio_increases_with_fusion_layer']}; "
          f"L_f=5 / L_f=1 = {summary['mlp_ratio_lf5_over_lf1']:.2f}; training {total:.0f} s, "
          f"{summary['samples_per_second']:.0f} samples/s")
    return write_outputs(out, ID, payload, lambda stem: _figures(task, rows, curves, stem),
                         summary)


def _figures(task, rows, curves, stem):
    paths = []
    with paper_style():
        paths += _table_figure(rows, stem)
        for kind, fig_no in (("mlp", 7), ("cnn", 14)):
            paths += _curves_figure(kind, curves, Path(f"{stem}-fig{fig_no}"))
        paths += _examples_figure(task, Path(f"{stem}-fig13"))
    return paths


def _table_figure(rows, stem):
    fig, axes = new_figure(ncols=3, width=6.9, height=2.1)
    for ax, kind, name in ((axes[0, 0], "mlp", "MLP (L = 5)"), (axes[0, 1], "cnn", "CNN")):
        rs = [r for r in rows if r["network"] == kind]
        L = [r["fusion_layer"] for r in rs]
        for r in rs:
            ratio = np.asarray(r["time_ratio"], float)  # JSON writes NaN as null
            ok = np.isfinite(ratio)
            ax.plot([r["fusion_layer"]] * int(ok.sum()), ratio[ok], ".", color=PALETTE[5],
                    alpha=0.4, ms=3)
        means = np.asarray([r["mean"] for r in rs], float)
        ax.errorbar(L, means, np.asarray([r["std"] for r in rs], float), fmt="o-",
                    color=PALETTE[5], ms=3, capsize=2, label="dlnfusion (digits)")
        ax.errorbar(L, [r["paper_mean"] for r in rs], [r["paper_std"] for r in rs], fmt="s--",
                    color=PALETTE[0], mfc="none", ms=3, capsize=2, label="paper (MNIST)")
        ax.set_xlabel(r"fusion layer $L_f$")
        ax.set_ylabel("time ratio")
        ax.set_title(name, fontsize=8)
        ax.set_xticks(L)
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


def _curves_figure(kind, curves, stem):
    fig, axes = new_figure(ncols=len(FUSION_LAYERS), width=6.9, height=1.7)
    legend = None
    for k, Lf in enumerate(FUSION_LAYERS):
        ax = axes[0, k]
        ax.set_title(f"$L_f = {Lf}$", fontsize=8)
        if (kind, Lf) not in curves:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
            continue
        c = _mean_curves(curves[(kind, Lf)])
        accuracy_panel(ax, c["epoch"], c["train_loss_over_initial"], c["test_acc"],
                       c["unimodal_acc"], level=LEVEL)
        legend = legend or ax
        if k == 0:
            ax.set_ylabel("loss & accuracy")
    if legend is not None:
        fig.legend(*legend.get_legend_handles_labels(), loc="outside lower center", ncol=4,
                   fontsize=6)
    return save(fig, stem)


def _examples_figure(task, stem):
    """One pair of training images per corruption case (Figure 13)."""
    x = task.train_x
    idx = np.arange(min(400, task.n_train))
    xa, xb = (np.asarray(v) for v in task.corrupt(jax.random.PRNGKey(1),
                                                   (x[0][idx], x[1][idx])))
    hit_b = ~np.all(xb == x[1][idx], axis=(1, 2))
    hit_a = ~np.all(xa == x[0][idx], axis=(1, 2))
    p_b, p_a = task.info["p_b"], task.info["p_a"]
    cases = [(f"B corrupted (p = {p_b:g})", hit_b), (f"A corrupted (p = {p_a:g})", hit_a),
             (f"neither (p = {1 - p_a - p_b:g})", ~hit_a & ~hit_b)]
    cases = [(title, int(np.argmax(mask))) for title, mask in cases if mask.any()]
    fig, axes = new_figure(ncols=2 * len(cases), width=6.9 * len(cases) / 3, height=1.45)
    image_grid(axes[0], [im for _, i in cases for im in (xa[i], xb[i])],
               titles=["A", "B"] * len(cases),
               xlabels=[v for title, _ in cases for v in (title, None)],
               vmin=float(np.min(x[0])), vmax=float(np.max(x[0])))
    return save(fig, stem)
