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
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import optax

from dlnfusion import NetworkSpec, simulate
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.transforms import inforeg, ogm_ge

from . import zhang2024_fig5 as fig5
from ._output import write_outputs

ID = "huang2025-overparam"
TITLE = "Balancing methods against the generalization deficit of over-parameterized late fusion"
SAMPLES = fig5.SAMPLES
MAX_STEPS, QUICK_MAX_STEPS, STRIDE = 40_000, 10_000, 20
EPOCH, BETA, K_WINDOW, OGM_ALPHA = 10, 0.9, 0.04, 0.8
METHODS = ("joint", "ogm_ge", "ogm", "inforeg")
LABELS = {"joint": "joint training", "ogm_ge": "OGM-GE", "ogm": "OGM (no noise)",
          "inforeg": "InfoReg"}
COLORS = {"joint": PALETTE[0], "ogm_ge": PALETTE[4], "ogm": PALETTE[1], "inforeg": PALETTE[5]}


def _optimizer(method, spec):
    if method == "joint":
        return None
    tx = (inforeg(spec, epoch=EPOCH, beta=BETA, K=K_WINDOW) if method == "inforeg"
          else ogm_ge(spec, alpha=OGM_ALPHA, noise=(method == "ogm_ge")))
    return lambda lr: optax.chain(tx, optax.sgd(lr))


def run(out: Path, quick: bool = False) -> dict:
    max_steps = QUICK_MAX_STEPS if quick else MAX_STEPS
    true = fig5.true_stats()
    floor = true.min_loss()
    spec = NetworkSpec.fusion(2, 2, width=fig5.WIDTH, input_dims=(fig5.DIM, fig5.DIM))
    results, curves = {}, {}
    for regime, P in SAMPLES.items():
        emp = true.sample(P, seed=fig5.DATA_SEED).stats(allow_singular=True)
        base = fig5.unimodal_baseline(emp, true, max_steps, STRIDE)
        baseline = min(base.values())
        for method in METHODS:
            tr = simulate(spec, emp, seeds=[0], scale=fig5.INIT_STD, lr=fig5.LR,
                          steps=max_steps, stop_loss=None, record_every=STRIDE, eval_stats=true,
                          optimizer=_optimizer(method, spec))
            gen = tr.eval_loss[0] - floor
            ok = np.isfinite(gen)
            i_min = int(np.nanargmin(gen)) if ok.any() else 0
            results[f"{regime}/{method}"] = {
                "samples": P, "method": method,
                "train_loss_final": float(tr.loss[0, -1]),
                "generalization_error_final": float(gen[-1]),
                "generalization_error_min": float(gen[i_min]),
                "time_of_min": float(tr.time[i_min]),
                "unimodal_baseline": baseline, "unimodal_baseline_per_modality": base,
                "final_below_unimodal_baseline": bool(gen[-1] < baseline),
                "min_below_unimodal_baseline": bool(gen[i_min] < baseline),
                "status": str(tr.status_names()[0]),
            }
            curves[f"{regime}/{method}"] = (tr.time, tr.loss[0], gen, baseline)
    summary = _summary(results)
    payload = {"figure": ID, "paper": "Huang et al., CVPR 2025; Peng et al., CVPR 2022; the "
                                      "setting of Zhang, Latham & Saxe, ICML 2024, Figure 5",
               "quick": quick,
               "parameters": {"dim_per_modality": fig5.DIM, "sigma_B": fig5.VAR_B,
                              "teacher": fig5.TEACHER, "noise_std": fig5.NOISE_STD,
                              "samples": SAMPLES, "width": fig5.WIDTH, "init_std": fig5.INIT_STD,
                              "lr": fig5.LR, "max_steps": max_steps, "epoch_steps": EPOCH,
                              "beta": BETA, "K": K_WINDOW, "ogm_alpha": OGM_ALPHA},
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
