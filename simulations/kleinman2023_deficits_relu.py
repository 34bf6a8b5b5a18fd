"""Kleinman, Achille & Soatto (CVPR 2023), Figures 4-6 on real data: sensory deficits in ReLU
fusion networks that see the two halves of a digit (docs/figures/kleinman2023-deficits-relu.md).

Task: dlnfusion.data.digit_halves (scikit-learn's 8×8 digits, 1,347 training and 450 test
images, standardized; view A the left 8×4 half, view B the right half; ``--mnist FOLDER``:
MNIST's 28×14 halves). Network: dlnfusion.FusionMLP, ``n_pre`` hidden layers of width 128 per
view, the summed fusion layer, one common hidden layer and the classifier (depth n_pre + 3,
fusion layer n_pre + 1); the RSV is measured on the last hidden layer and the fusion layer.
Training: cross-entropy, SGD 0.05, momentum 0.9, batches of 64; a deficit on view B for the
first N epochs (blur: ImageBlur("B", 4); dissociation: ViewDissociation()), then BUDGET = 100
epochs of normal training (the paper: 180). Measured per run (5 seeds, the same initializations
and batch order at every N): test accuracy, each view's unimodal accuracy and the RSV of every
unit (64 fixed × 64 varied test samples per source; dead units apart; polarized: |RSV| > 0.9).

Sweeps (dlnfusion.sweep.DeficitFit), one per condition and n_pre, over both deficits and every
N: N ∈ {0, 5, 10, 25, 50, 100} at n_pre = 2, n_pre ∈ {1, 3, 4} at N ∈ {0, 50}, and the
conditions (width 32 and 256, learning rate 0.01, Gaussian pixel noise of standard deviation 1
on both views of every training batch) at n_pre ∈ {1, 4} and N ∈ {0, 50}. The JSON's
``claims`` and ``claims_by_condition`` answer the paper's claims (paired differences over seeds).

Quick mode: 2 seeds, N ∈ {0, 10, 25}, a 40-epoch budget, depths n_pre ∈ {1, 3} at N ∈ {0, 25},
one condition (width 32). It checks the pipeline; its differences are within the seed scatter.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import jax

from dlnfusion import FusionMLP
from dlnfusion.compare import POLARIZED, rsv_histogram
from dlnfusion.data import FusionTask, digit_halves
from dlnfusion.interventions import ImageBlur, ViewDissociation
from dlnfusion.plot import (PALETTE, color_style_legend, paper_style, rsv_histogram_row,
                            save)
from dlnfusion.sweep import DeficitFit, Sweep

from ._output import write_outputs

ID = "kleinman2023-deficits-relu"
TITLE = "Figs. 4-6: blur and dissociation deficits in ReLU fusion networks on digit halves"

WIDTH = 128
N_PRE = 2
LR, MOMENTUM, BATCH = 0.05, 0.9, 64
DEFICITS = ("blur", "dissociate")
BLUR_FACTOR = 4
FULL = dict(seeds=5, lengths=(0, 5, 10, 25, 50, 100), budget=100, depths=(1, 2, 3, 4),
            depth_lengths=(0, 50))
QUICK = dict(seeds=2, lengths=(0, 10, 25), budget=40, depths=(1, 3), depth_lengths=(0, 25))
#: Other conditions (full mode), each at the shallowest and deepest pre-fusion stack and the
#: depth sweep's lengths: where does the depth effect (or a dissociation effect) appear?
#: ``noise``: Gaussian pixel noise of this standard deviation (standardized pixels) added to
#: both views of every training batch, throughout training.
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


@dataclass(frozen=True)
class PixelNoise:
    """Gaussian noise of standard deviation ``std`` on every view of a training batch."""

    std: float

    def __call__(self, key, xs):
        keys = jax.random.split(key, len(xs))
        return tuple(x + self.std * jax.random.normal(k, x.shape, x.dtype)
                     for k, x in zip(keys, xs))


def noisy(task, std: float):
    """``task`` with :class:`PixelNoise` on its training batches."""
    info = dict(task.info, pixel_noise=std)
    return FusionTask(task.train_x, task.train_y, task.test_x, task.test_y,
                      n_classes=task.n_classes, names=task.names, corrupt=PixelNoise(std),
                      info=info)


def rsv_layers(model) -> tuple:
    """(the last hidden layer, the fusion layer): where the RSV is measured."""
    spec = getattr(model, "base", model).spec
    return spec.depth - 1, spec.fusion_layer


def _task(mnist=None, noise=None):
    task = digit_halves(mnist)
    return task if noise is None else noisy(task, noise)


def _model(n_pre, width=None, mnist=None):
    return network(digit_halves(mnist), n_pre, width)


def _layers(n_pre, width=None, mnist=None):
    return rsv_layers(_model(n_pre, width, mnist))


def _configurations(quick: bool) -> list:
    """(sweep name, condition, n_pre, lengths, parameters): N_PRE at every length and the
    other depths at the depth sweep's lengths (condition ``default``), and every condition at
    the shallowest and deepest stack."""
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
    """Every sweep, by name: one per condition and n_pre, over every deficit and length."""
    cfg = QUICK if quick else FULL
    runner = DeficitFit(_model, _task, transform, _layers)
    fixed = {"budget": cfg["budget"], "lr": LR, "momentum": MOMENTUM, "batch_size": BATCH,
             "n_rsv": N_RSV, "mnist": mnist, "width": None, "noise": None}
    return {name: Sweep({"deficit": DEFICITS, "N": lengths}, runner,
                        {**fixed, "n_pre": n, **cond}, range(cfg["seeds"]))
            for name, _, n, lengths, cond in _configurations(quick)}


def compute(out: Path, quick: bool = False, mnist=None) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False)
            for name, sw in sweeps(quick, mnist).items()}


def _rsv_point(r, layer) -> dict:
    """The RSV measures of the runs (seeds) of one point at one layer."""
    x, rsv = r.sel(layer=layer), r.rsv.sel(layer=layer).values
    return {"polarized": x.polarized.values.tolist(), "mean_rsv": x.mean_rsv.values.tolist(),
            "mean_abs_rsv": np.nanmean(np.abs(rsv), axis=-1).tolist(),
            "dead": x.dead.values.tolist(),
            "rsv_histogram": rsv_histogram(rsv, bins=BINS)[0].tolist()}


def points_of(ds, budget, **extra) -> list:
    """One JSON point per deficit and length of a sweep's Dataset (``extra`` in each)."""
    last, fusion = ds.layer.values.tolist()
    return [{"deficit": d, **extra, "N": int(N), "seeds": r.seed.values.tolist(),
             "budget": budget,
             "test_acc": r.test_acc.values.tolist(),
             "unimodal_acc_A": r.unimodal_acc.isel(modality=0).values.tolist(),
             "unimodal_acc_B": r.unimodal_acc.isel(modality=1).values.tolist(),
             "diverged": (r.status == "diverged").values.tolist(), "rsv_layer": last,
             **_rsv_point(r, last), "fusion_layer": {"layer": fusion, **_rsv_point(r, fusion)}}
            for d in DEFICITS for N in ds.N.values for r in [ds.sel(deficit=d, N=N)]]


def _ms(values):
    v = np.asarray(values, float)
    return float(np.mean(v)), float(np.std(v, ddof=1)) if v.size > 1 else 0.0


def _delta(a, b):
    """Mean of the paired difference b − a over seeds and its standard error."""
    d = np.asarray(b, float) - np.asarray(a, float)
    se = float(np.std(d, ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")
    return float(np.mean(d)), se


def _at(points, d, n_pre, N, condition="default"):
    return next(p for p in points if p["deficit"] == d and p["n_pre"] == n_pre
                and p["N"] == N and p["condition"] == condition)


def _depth_claim(points, d, depths, depth_lengths, condition="default") -> dict:
    """Accuracy lost to the deficit (N = max vs min of ``depth_lengths``) at every n_pre, and
    whether it grows from the shallowest to the deepest stack by more than 2 s.e."""
    drops = {}
    for n_pre in depths:
        a = _at(points, d, n_pre, min(depth_lengths), condition)
        b = _at(points, d, n_pre, max(depth_lengths), condition)
        m, se = _delta(b["test_acc"], a["test_acc"])     # accuracy lost to the deficit
        pm, pse = _delta(a["polarized"], b["polarized"])
        fm, fse = _delta(a["fusion_layer"]["polarized"], b["fusion_layer"]["polarized"])
        drops[str(n_pre)] = {"accuracy_drop": m, "accuracy_drop_se": se,
                             "polarized_change": pm, "polarized_change_se": pse,
                             "fusion_polarized_change": fm, "fusion_polarized_change_se": fse}
    first, last = drops[str(min(depths))], drops[str(max(depths))]
    diff = last["accuracy_drop"] - first["accuracy_drop"]
    se = float(np.hypot(first["accuracy_drop_se"], last["accuracy_drop_se"]))
    return {"N": list(depth_lengths), "by_n_pre": drops, "drop_difference": diff,
            "drop_difference_se": se, "holds": bool(diff > 2 * se) if np.isfinite(se) else None}


def condition_claims(points, conditions, depths, depth_lengths) -> dict:
    """Per condition and deficit: the depth claim at the shallowest and deepest stack."""
    ends = (min(depths), max(depths))
    return {c: {d: _depth_claim(points, d, ends, depth_lengths, c) for d in DEFICITS}
            for c in conditions}


def claims(points, lengths, depths, depth_lengths) -> dict:
    """The paper's two claims, answered from the points (paired differences over seeds)."""
    def at(d, n_pre, N):
        return _at(points, d, n_pre, N)
    out = {}
    n0, n1 = min(lengths), max(lengths)
    for d in DEFICITS:
        a, b = at(d, N_PRE, n0), at(d, N_PRE, n1)
        dp, se_p = _delta(a["polarized"], b["polarized"])
        dr, se_r = _delta(a["mean_rsv"], b["mean_rsv"])
        da, se_a = _delta(a["test_acc"], b["test_acc"])
        dub, se_ub = _delta(a["unimodal_acc_B"], b["unimodal_acc_B"])
        out[f"{d}: long deficit polarizes"] = {
            "N": [n0, n1], "polarized_change": dp, "polarized_change_se": se_p,
            "mean_rsv_change": dr, "mean_rsv_change_se": se_r,
            "test_acc_change": da, "test_acc_change_se": se_a,
            "unimodal_B_change": dub, "unimodal_B_change_se": se_ub,
            "holds": bool(dp > 2 * se_p) if np.isfinite(se_p) else None}
        fp, se_f = _delta(a["fusion_layer"]["polarized"], b["fusion_layer"]["polarized"])
        out[f"{d}: long deficit polarizes"].update(
            fusion_polarized_change=fp, fusion_polarized_change_se=se_f,
            holds_at_fusion_layer=bool(fp > 2 * se_f) if np.isfinite(se_f) else None)
        out[f"{d}: deeper pre-fusion stacks suffer more"] = _depth_claim(
            points, d, depths, depth_lengths)
    return out


def run(out: Path, quick: bool = False, mnist=None) -> dict:
    t0 = time.perf_counter()
    cfg = QUICK if quick else FULL
    task = digit_halves(mnist)
    ds = compute(out, quick, mnist)
    points = [p for name, c, n, _, _ in _configurations(quick)
              for p in points_of(ds[name], cfg["budget"], n_pre=n, condition=c)]
    conditions = QUICK_CONDITIONS if quick else CONDITIONS
    answers = claims(points, cfg["lengths"], cfg["depths"], cfg["depth_lengths"])
    by_condition = condition_claims(points, ["default"] + list(conditions), cfg["depths"],
                                    cfg["depth_lengths"])
    payload = {"id": ID, "title": TITLE, "quick": quick, "task": task.info,
               "network": {"width": WIDTH, "n_pre": N_PRE, "depth": "n_pre + 3",
                           "fusion_layer": "n_pre + 1", "rsv_layer": "depth - 1"},
               "training": {"lr": LR, "momentum": MOMENTUM, "batch_size": BATCH,
                            "budget": cfg["budget"], "blur_factor": BLUR_FACTOR},
               "polarized_threshold": POLARIZED, "rsv_samples": N_RSV, "bins": BINS,
               "conditions": conditions, "points": points, "claims": answers,
               "claims_by_condition": by_condition,
               "seconds": time.perf_counter() - t0}
    summary = {k: {kk: v[kk] for kk in v if kk in ("holds", "polarized_change",
                                                   "drop_difference", "test_acc_change")}
               for k, v in answers.items()}
    return write_outputs(out, ID, payload,
                         lambda stem: figure(points, cfg, stem, answers, by_condition),
                         summary)


def figure(points, cfg, stem, answers, by_condition):
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    lengths = sorted({p["N"] for p in points if p["n_pre"] == N_PRE
                      and p["condition"] == "default"})
    colors = {"blur": PALETTE[5], "dissociate": PALETTE[4]}
    names = {"blur": "blur", "dissociate": "dissociation"}
    ew = dict(capsize=1.5, lw=0.9, elinewidth=0.6)
    with paper_style():
        fig = plt.figure(figsize=(7.0, 7.0))
        outer = fig.add_gridspec(3, 1, height_ratios=(1, 1, 1.35), hspace=0.55)
        for r, d in enumerate(DEFICITS):
            sel = [_at(points, d, N_PRE, N) for N in lengths]
            rsv_histogram_row(fig, outer[r].subgridspec(1, len(lengths), wspace=0.22),
                              [p["rsv_histogram"] for p in sel], [f"N = {N}" for N in lengths],
                              colors[d], f"{names[d]}\nfraction of units",
                              [f"pol. {np.mean(p['polarized']):.2f}" for p in sel])
        bottom = outer[2].subgridspec(1, 4, wspace=0.55)
        ax_acc, ax_pol, ax_depth, ax_cond = (fig.add_subplot(bottom[k]) for k in range(4))
        for d in DEFICITS:
            sel = [_at(points, d, N_PRE, N) for N in lengths]
            for key, ls, mark in (("test_acc", "-", "o"), ("unimodal_acc_B", ":", "v"),
                                  ("unimodal_acc_A", "--", "^")):
                ms = np.array([_ms(p[key]) for p in sel])
                ax_acc.errorbar(lengths, ms[:, 0], yerr=ms[:, 1], color=colors[d], ls=ls,
                                marker=mark, ms=3, **ew)
            for get, ls, mark in ((lambda p: p["polarized"], "-", "o"),
                                  (lambda p: p["mean_rsv"], "--", "s"),
                                  (lambda p: p["fusion_layer"]["polarized"], ":", "D")):
                ms = np.array([_ms(get(p)) for p in sel])
                ax_pol.errorbar(lengths, ms[:, 0], yerr=ms[:, 1], color=colors[d], ls=ls,
                                marker=mark, ms=2.8, **ew)
            drops = answers[f"{d}: deeper pre-fusion stacks suffer more"]["by_n_pre"]
            ks = sorted(int(k) for k in drops)
            ax_depth.errorbar(ks, [100 * drops[str(k)]["accuracy_drop"] for k in ks],
                              yerr=[100 * drops[str(k)]["accuracy_drop_se"] for k in ks],
                              color=colors[d], marker="o", ms=3, **ew)
            conds = list(by_condition)
            x = np.arange(len(conds)) + (0.12 if d == DEFICITS[1] else -0.12)
            ax_cond.errorbar(x, [100 * by_condition[c][d]["drop_difference"] for c in conds],
                             yerr=[200 * by_condition[c][d]["drop_difference_se"]
                                   for c in conds],
                             color=colors[d], marker="o", ms=3, ls="", **ew)
        ax_acc.set_xlabel("deficit length N (epochs)")
        ax_acc.set_ylabel("final test accuracy")
        below = dict(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=1)
        color_style_legend(ax_acc, (("-", "o", "both views"), ("--", "^", "A alone"),
                                    (":", "v", "B alone")), **below)
        ax_pol.axhline(0, color="0.8", lw=0.5, zorder=0)
        ax_pol.set_xlabel("deficit length N (epochs)")
        ax_pol.set_ylabel("RSV of the units")
        color_style_legend(ax_pol, (("-", "o", "fraction |RSV| > 0.9"), ("--", "s", "mean RSV"),
                                    (":", "D", "fraction |RSV| > 0.9, fusion layer")), **below)
        n_lo, n_hi = min(cfg["depth_lengths"]), max(cfg["depth_lengths"])
        ax_depth.axhline(0, color="0.8", lw=0.5, zorder=0)
        ax_depth.set_xlabel("layers before fusion")
        ax_depth.set_ylabel(f"accuracy lost, N = {n_hi} vs {n_lo} (%)")
        ax_depth.set_xticks(ks)
        ax_cond.axhline(0, color="0.8", lw=0.5, zorder=0)
        ax_cond.set_xticks(np.arange(len(conds)))
        ax_cond.set_xticklabels(conds, rotation=60, ha="right", fontsize=6)
        ax_cond.set_ylabel(f"extra loss, {max(cfg['depths'])} vs {min(cfg['depths'])} "
                           "layers (%, ± 2 s.e.)")
        fig.legend(handles=[Line2D([], [], color=colors[d], lw=1.4, label=names[d])
                            for d in DEFICITS], loc="upper center", ncol=2, fontsize=7,
                   bbox_to_anchor=(0.5, 0.935))
        return save(fig, stem)
