"""Modality balancing in the over-parameterized setting of the unimodal-bias paper's Figure 5:
does InfoReg or OGM-GE remove the generalization deficit of late fusion?

Setting (dlnfusion.simulations.zhang2024_fig5): x_A, x_B ∈ R^50, Σ_A = I, Σ_B = 3I, y = w*·x + ε
(w* = 0.1, ε ~ N(0, 0.5²)); two-layer late fusion, width 100, entries N(0, 1e-18), η = 0.04,
full-batch gradient descent on 70 samples (over-parameterized) and 700 (under-parameterized),
computed at population level on the samples' moments (exact for full-batch training of a
linear network). B (the larger Σ_yx) is learned first.

Methods (dlnfusion.transforms, chained before optax.sgd, reading the training moments only):
joint training, OGM-GE (α = 0.8), OGM without noise, InfoReg (β = 0.9, K = 0.04, epoch EPOCH
steps). Measured: the generalization error ½(W − w*)Σ(W − w*)ᵀ under the true statistics
during training (its minimum, when, and its final value) against the best unimodal network on
the same data (the dotted line of Figure 5), and the final training loss.

Every number comes from two sweeps (:mod:`dlnfusion.sweep`, runner Balance), saved under
``out/huang2025-overparam/{quick,full}/<sweep>``: "methods" (regime × method) and "unimodal"
(regime × modality, one branch alone, joint training).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.sweep import Balance, Balancing, Sweep

from . import zhang2024_fig5 as fig5
from ._output import write_outputs

ID = "huang2025-overparam"
TITLE = "Balancing methods against the generalization deficit of over-parameterized late fusion"
SAMPLES = fig5.SAMPLES
MAX_STEPS, QUICK_MAX_STEPS, STRIDE = 40_000, 10_000, 20
EPOCH, BETA, K_WINDOW, OGM_ALPHA = 10, 0.9, 0.04, 0.8
METHODS = ("joint", "ogm_ge", "ogm", "inforeg")
BALANCING = {"joint": Balancing("joint"), "ogm_ge": Balancing("ogm_ge", alpha=OGM_ALPHA),
             "ogm": Balancing("ogm", alpha=OGM_ALPHA),
             "inforeg": Balancing("inforeg", epoch=EPOCH, beta=BETA, K=K_WINDOW)}
LABELS = {"joint": "joint training", "ogm_ge": "OGM-GE", "ogm": "OGM (no noise)",
          "inforeg": "InfoReg"}
COLORS = {"joint": PALETTE[0], "ogm_ge": PALETTE[4], "ogm": PALETTE[1], "inforeg": PALETTE[5]}


@lru_cache(maxsize=None)
def _true(modality=None) -> Stats:
    """The true statistics (of one modality alone, if named)."""
    true = fig5.true_stats()
    return true if modality is None else _marginal(true, modality, False)


@lru_cache(maxsize=None)
def _empirical(regime, modality=None) -> Stats:
    """The training samples' moments (of one modality alone, if named)."""
    emp = fig5.true_stats().sample(SAMPLES[regime], seed=fig5.DATA_SEED).stats(
        allow_singular=True)
    return emp if modality is None else _marginal(emp, modality, True)


def _marginal(stats, modality, allow_singular) -> Stats:
    m = stats.index(modality)
    return Stats(stats.sigma_m(m), stats.sigma_yx_m(m), stats.sigma_yy, (stats.dims[m],),
                 (modality,), allow_singular)


def _network(modality=None) -> NetworkSpec:
    if modality is None:
        return NetworkSpec.fusion(2, 2, width=fig5.WIDTH, input_dims=(fig5.DIM, fig5.DIM))
    return NetworkSpec.fusion(2, 2, width=fig5.WIDTH, input_dims=(fig5.DIM,), names=(modality,))


def sweeps(quick: bool) -> dict:
    fixed = {"lr": fig5.LR, "scale": fig5.INIT_STD, "stop_loss": None, "record_every": STRIDE,
             "steps": QUICK_MAX_STEPS if quick else MAX_STEPS}
    return {"methods": Sweep({"regime": list(SAMPLES), "balancing": METHODS},
                             Balance(_empirical, _network, eval_stats=_true, methods=BALANCING),
                             fixed, seeds=[0]),
            "unimodal": Sweep({"regime": list(SAMPLES), "modality": list(_true().names)},
                              Balance(_empirical, _network, eval_stats=_true), fixed, seeds=[0])}


def compute(out: Path, quick: bool = False) -> dict:
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    floor = _true().min_loss()
    results, curves = {}, {}
    for regime, P in SAMPLES.items():
        uni = ds["unimodal"].sel(regime=regime, seed=0)
        base = {str(m): float(np.nanmin(uni.eval_loss.sel(modality=m)) - floor)
                for m in uni.modality.values}
        baseline = min(base.values())
        for method in METHODS:
            r = ds["methods"].sel(regime=regime, balancing=method, seed=0)
            t, gen = r.time.values, r.eval_loss.values - floor
            i_min = int(np.nanargmin(gen)) if np.isfinite(gen).any() else 0
            results[f"{regime}/{method}"] = {
                "samples": P, "method": method,
                "train_loss_final": float(r.loss.values[-1]),
                "generalization_error_final": float(gen[-1]),
                "generalization_error_min": float(gen[i_min]), "time_of_min": float(t[i_min]),
                "unimodal_baseline": baseline, "unimodal_baseline_per_modality": base,
                "final_below_unimodal_baseline": bool(gen[-1] < baseline),
                "min_below_unimodal_baseline": bool(gen[i_min] < baseline),
                "status": str(r.status.values)}
            curves[f"{regime}/{method}"] = (t, r.loss.values, gen, baseline)
    summary = _summary(results)
    payload = {"figure": ID, "paper": "Huang et al., CVPR 2025; Peng et al., CVPR 2022; the "
                                      "setting of Zhang, Latham & Saxe, ICML 2024, Figure 5",
               "quick": quick,
               "parameters": {"dim_per_modality": fig5.DIM, "sigma_B": fig5.VAR_B,
                              "teacher": fig5.TEACHER, "noise_std": fig5.NOISE_STD,
                              "samples": SAMPLES, "width": fig5.WIDTH, "init_std": fig5.INIT_STD,
                              "lr": fig5.LR, "max_steps": QUICK_MAX_STEPS if quick else MAX_STEPS,
                              "epoch_steps": EPOCH, "beta": BETA, "K": K_WINDOW,
                              "ogm_alpha": OGM_ALPHA},
               "runs": results, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(curves, stem), summary)
    for key, r in results.items():
        print(f"  {key:16s}: generalization min {r['generalization_error_min']:.3f} (step "
              f"{r['time_of_min']:.0f}), final {r['generalization_error_final']:.3f}; unimodal "
              f"baseline {r['unimodal_baseline']:.3f}; train loss {r['train_loss_final']:.3g}")
    print(f"  removes the deficit (final below the baseline, 70 samples): "
          f"{summary['removes_deficit']}")
    return result


def _summary(results):
    over = {m: results[f"over/{m}"] for m in METHODS}
    return {
        "final_generalization_over": {m: r["generalization_error_final"] for m, r in over.items()},
        "min_generalization_over": {m: r["generalization_error_min"] for m, r in over.items()},
        "unimodal_baseline_over": over["joint"]["unimodal_baseline"],
        "removes_deficit": {m: r["final_below_unimodal_baseline"] for m, r in over.items()},
    }


def _figure(curves, stem):
    with paper_style():
        fig, axes = new_figure(ncols=2, width=6.9, height=2.4)
        for k, regime in enumerate(SAMPLES):
            ax = axes[0, k]
            for method in METHODS:
                t, train, gen, baseline = curves[f"{regime}/{method}"]
                ax.plot(t[1:], gen[1:], color=COLORS[method], lw=1.1, label=LABELS[method])
                ax.plot(t[1:], train[1:], color=COLORS[method], lw=0.7, ls=":")
            ax.axhline(baseline, color="0.5", ls="--", lw=0.8, label="best unimodal")
            ax.set_xscale("log")
            ax.set_ylim(0, None)
            ax.set_xlabel("step")
            ax.set_title(f"late fusion, {SAMPLES[regime]} samples "
                         f"({'over' if regime == 'over' else 'under'}-parameterized)", fontsize=7)
            if k == 0:
                ax.set_ylabel("loss")
                ax.text(0.02, 0.03, "solid: generalization error\ndotted: training loss",
                        transform=ax.transAxes, fontsize=5.5, va="bottom")
                ax.legend(frameon=False, fontsize=5.5, loc="upper right")
        return save(fig, stem)
