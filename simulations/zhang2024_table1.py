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

``quick``: two seeds, width 100 and 8 channels, batches of 100, the CNN at L_f = 1 and 5 only,
small epoch budgets: a check that the whole pipeline runs, not the table's numbers.
"""
from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

from dlnfusion import FusionCNN, FusionMLP, fit
from dlnfusion.compare import measure_accuracy_times
from dlnfusion.data import noisy_digits
from dlnfusion.plot import PALETTE, new_figure, paper_style, save

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
            "size": 500, "quick_size": 100, "quick_fusion_layers": FUSION_LAYERS},
    "cnn": {"lr": 0.002, "epochs": 10, "mnist_epochs": 200, "quick_epochs": 2,
            "size": 32, "quick_size": 8, "quick_fusion_layers": (1, 5)},
}
QUICK_BATCH = 100  # quick: 14 steps per epoch instead of 2, so that a few epochs show learning


def network(kind: str, fusion_layer: int, image_shape, quick: bool = False):
    cfg = NETWORKS[kind]
    size = cfg["quick_size"] if quick else cfg["size"]
    if kind == "mlp":
        d = int(np.prod(image_shape))
        return FusionMLP((d, d), depth=5, fusion_layer=fusion_layer, width=size, n_out=10)
    return FusionCNN(tuple(image_shape), fusion_layer=fusion_layer, n_conv=5, channels=size,
                     n_out=10)


def _done(history) -> bool:
    t = measure_accuracy_times(history, LEVEL)
    return bool(np.all(np.isfinite(t.ratio) | history.diverged))


def batch_size(task, quick: bool = False) -> int:
    return min(QUICK_BATCH if quick else BATCH, task.n_train)


def train_one(kind: str, fusion_layer: int, task, seeds, max_epochs: int, quick: bool = False):
    """Train one (network, L_f) from every seed; returns (history, times, seconds)."""
    model = network(kind, fusion_layer, task.input_shapes[0], quick)
    start = time.perf_counter()
    hist = fit(model, task, seeds, epochs=max_epochs, batch_size=batch_size(task, quick),
               lr=NETWORKS[kind]["lr"], lr_decay=LR_DECAY, loss="cross_entropy",
               chunk_epochs=CHUNK, stop=_done, batch_seeds=kind == "mlp")
    jax.block_until_ready(jax.tree_util.tree_leaves(hist.params))
    return hist, measure_accuracy_times(hist, LEVEL), time.perf_counter() - start


def _stats(x):
    x = np.asarray(x, float)
    ok = x[np.isfinite(x)]
    return (float(ok.mean()) if ok.size else float("nan"),
            float(ok.std()) if ok.size > 1 else float("nan"))


def _mean_curves(h) -> dict:
    """Seed means of the recorded curves (the lines of Figures 7 and 14)."""
    with np.errstate(invalid="ignore"):
        return {"epoch": h.epoch.tolist(),
                "train_loss_over_initial": np.nanmean(h.train_loss / h.train_loss[:, :1],
                                                      0).tolist(),
                "test_acc": np.nanmean(h.test_acc, 0).tolist(),
                "unimodal_acc": {n: np.nanmean(h.unimodal_acc[:, m], 0).tolist()
                                 for m, n in enumerate(h.names)}}


def run(out: Path, quick: bool = False, mnist=None) -> dict:
    task = noisy_digits(mnist, seed=0)
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    rows, curves, total, samples = [], {}, 0.0, 0
    for kind, cfg in NETWORKS.items():
        budget = cfg["quick_epochs" if quick else "mnist_epochs" if mnist else "epochs"]
        for Lf in cfg["quick_fusion_layers"] if quick else FUSION_LAYERS:
            hist, times, secs = train_one(kind, Lf, task, seeds, budget, quick)
            total += secs
            n_ep = int(hist.epoch[-1])
            samples += n_ep * task.n_train * len(seeds)
            mean, std = _stats(times.ratio)
            rows.append({
                "network": kind, "fusion_layer": Lf,
                "time_ratio": [float(r) for r in times.ratio], "mean": mean, "std": std,
                "first_modality": times.first_names(),
                "t_50_epochs": times.times.tolist(), "epochs_run": n_ep,
                "epoch_budget": budget, "status": [str(s) for s in hist.status_names()],
                "final_test_acc": [float(a) for a in hist.test_acc[:, -1]],
                "seconds": secs, "curves": _mean_curves(hist),
                "paper_mean": PAPER_TABLE[kind][Lf - 1][0],
                "paper_std": PAPER_TABLE[kind][Lf - 1][1]})
            curves[(kind, Lf)] = hist
            print(f"{kind} L_f={Lf}: time ratio {mean:.2f} ± {std:.2f} "
                  f"(per seed {np.round(times.ratio, 2).tolist()}, first "
                  f"{times.first_names()}), {n_ep} epochs, {secs:.1f} s")
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
    ax = axes[0, 2]
    ax.axis("off")

    def cell(r):
        if r is None:
            return "not run"
        n_ok = int(np.isfinite(np.asarray(r["time_ratio"], float)).sum())
        if n_ok == 0:
            return "not reached"
        txt = f"{r['mean']:.2f}±{r['std']:.2f}" if n_ok > 1 else f"{r['mean']:.2f}"
        return txt if n_ok == len(r["time_ratio"]) else f"{txt} ({n_ok}/{len(r['time_ratio'])})"

    cells = []
    for Lf in FUSION_LAYERS:
        row = [f"{Lf}"]
        for kind in ("mlp", "cnn"):
            r = next((x for x in rows if x["network"] == kind and x["fusion_layer"] == Lf), None)
            paper = PAPER_TABLE[kind][Lf - 1]
            row += [cell(r), f"{paper[0]:.2f}±{paper[1]:.2f}"]
        cells.append(row)
    t = ax.table(cellText=cells, colLabels=["$L_f$", "MLP", "paper", "CNN", "paper"],
                 loc="center", cellLoc="center")
    t.auto_set_font_size(False)
    t.set_fontsize(5.5)
    t.auto_set_column_width(list(range(5)))
    t.scale(1.0, 1.35)
    ax.set_title("time ratio: digits (dlnfusion) and MNIST (paper)", fontsize=7)
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
        h = curves[(kind, Lf)]
        loss = np.nanmean(h.train_loss / h.train_loss[:, :1], 0)
        ax.plot(h.epoch, loss, color=PALETTE[0], lw=1.0, label="loss / initial")
        ax.plot(h.epoch, np.nanmean(h.test_acc, 0), ":", color=PALETTE[0], lw=1.0,
                label="A & B acc.")
        ax.plot(h.epoch, np.nanmean(h.unimodal_acc[:, 0], 0), color=PALETTE[5], lw=1.0,
                label="A acc.")
        ax.plot(h.epoch, np.nanmean(h.unimodal_acc[:, 1], 0), color=PALETTE[6], lw=1.0,
                label="B acc.")
        ax.axhline(LEVEL, color="0.7", lw=0.5, zorder=0)
        ax.set_ylim(0, 1.05)
        legend = legend or ax
        ax.set_xlabel("epoch")
        if k == 0:
            ax.set_ylabel("loss & accuracy")
    if legend is not None:
        fig.legend(*legend.get_legend_handles_labels(), loc="outside lower center", ncol=4,
                   fontsize=6)
    return save(fig, stem)


def _examples_figure(task, stem):
    import jax.numpy as jnp

    x = task.train_x
    idx = np.arange(min(400, task.n_train))
    xa, xb = (np.asarray(v) for v in task.corrupt(jax.random.PRNGKey(1),
                                                   (jnp.asarray(x[0][idx]), jnp.asarray(x[1][idx]))))
    hit_b = ~np.all(xb == x[1][idx], axis=(1, 2))
    hit_a = ~np.all(xa == x[0][idx], axis=(1, 2))
    p_b, p_a = task.info["p_b"], task.info["p_a"]
    cases = [(f"B corrupted (p = {p_b:g})", hit_b), (f"A corrupted (p = {p_a:g})", hit_a),
             (f"neither (p = {1 - p_a - p_b:g})", ~hit_a & ~hit_b)]
    cases = [(title, int(np.argmax(mask))) for title, mask in cases if mask.any()]
    fig, axes = new_figure(ncols=2 * len(cases), width=6.9 * len(cases) / 3, height=1.45)
    lo, hi = float(np.min(x[0])), float(np.max(x[0]))
    for k, (title, i) in enumerate(cases):
        for j, (img, name) in enumerate(((xa[i], "A"), (xb[i], "B"))):
            ax = axes[0, 2 * k + j]
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}", fontsize=7)
        axes[0, 2 * k].set_xlabel(title, fontsize=6, loc="left")
    return save(fig, stem)
