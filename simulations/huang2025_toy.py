"""Modality-balancing methods on the unimodal-bias toy: t_B/t_A against ρ for joint training,
unimodal losses, OGM-GE, OGM and InfoReg (Huang et al., CVPR 2025; Peng et al., CVPR 2022) in
a two-layer late-fusion linear network, against the exact reduced dynamics of each run (for
OGM-GE the exact law of its noise), with OGM-GE against the width in the last panel.

The protocol and the numbers are in docs/figures/huang2025-toy.md. Every number comes from
sweeps saved under ``out/huang2025-toy/{quick,full}/<sweep>``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats
from dlnfusion import compare as cmp
from dlnfusion import theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.sweep import Balance, Balancing, OGMLaw, Predict, ReducedBalance, Sweep

from ._output import run_sweeps, write_outputs

ID = "huang2025-toy"
TITLE = "Balancing methods on the toy: t_B/t_A against rho (joint, OGM-GE, InfoReg)"
SIGMA_A, SIGMA_B = 2.0, 1.0
RHOS, QUICK_RHOS = (-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75), (-0.5, 0.5)
LR, WIDTH, SCALE = 0.04, 100, 1e-9
STEPS, STRIDE = 8000, 10
STOP_LOSS = 1e-4        # dlnfusion.train's default: a run stops once its loss is below
EPOCH = 10
BETA, K_WINDOW, OGM_ALPHA = 0.9, 0.04, 0.8
SEEDS, QUICK_SEEDS = 5, 2
PATHS, QUICK_PATHS = 256, 16   # noise realizations per seed of OGM-GE's law
# OGM-GE against the width where its noise decides the escape: the law at every width (its
# cost does not depend on it), the network at the smaller ones; the quick mode's law at
# WIDTH shares its compiled sampler with the sweep over ρ
WIDTH_RHOS = (-0.1, -0.25)
WIDTHS_LAW, QUICK_WIDTHS_LAW = (25, 100, 400, 1600, 6400, 25600, 102400), (100, 6400)
WIDTHS_SIM, QUICK_WIDTHS_SIM = (25, 100, 400, 1600), (100,)
UNIMODAL = 1.0          # λ of the added unimodal losses
METHODS = ("joint", "unimodal", "ogm_ge", "ogm", "inforeg")
BALANCING = {"joint": Balancing("joint"), "unimodal": Balancing("joint", unimodal=UNIMODAL),
             "ogm_ge": Balancing("ogm_ge", alpha=OGM_ALPHA),
             "ogm": Balancing("ogm", alpha=OGM_ALPHA),
             "inforeg": Balancing("inforeg", epoch=EPOCH, beta=BETA, K=K_WINDOW)}
LABELS = {"joint": "joint training", "unimodal": "+ unimodal losses", "ogm_ge": "OGM-GE",
          "ogm": "OGM (no noise)", "inforeg": "InfoReg"}
COLORS = {"joint": PALETTE[0], "unimodal": PALETTE[3], "ogm_ge": PALETTE[4],
          "ogm": PALETTE[1], "inforeg": PALETTE[5]}


def _stats(rho):
    return Stats.scalar_toy(SIGMA_A, SIGMA_B, rho)


def _network(width=WIDTH):
    return NetworkSpec.fusion(2, 2, width=width)


def _kappa(rho):
    """InfoReg's leading-order slowdown of A's escape (α = 1 while the scores are tiny)."""
    return th.inforeg_slowdown(float(_stats(rho).sigma_yx[0, 0]), LR, 1.0, EPOCH)


def sweeps(quick: bool) -> dict:
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    rhos = QUICK_RHOS if quick else RHOS
    widths = {"rho": WIDTH_RHOS, "width": QUICK_WIDTHS_LAW if quick else WIDTHS_LAW}
    fixed = {"lr": LR, "scale": SCALE, "steps": STEPS, "stop_loss": STOP_LOSS,
             "record_every": STRIDE}
    ge = {**fixed, "balancing": "ogm_ge"}
    grid = {"rho": rhos, "balancing": METHODS}
    return {
        "train": Sweep(grid, Balance(_stats, _network, record=False, methods=BALANCING),
                       fixed, seeds),
        "theory": Sweep(grid, ReducedBalance(_stats, _network, record=True, methods=BALANCING),
                        fixed, seeds),
        "law": Sweep({"rho": rhos},
                     OGMLaw(_stats, _network, noise_seed=lambda rho: int(1000 * rho) % 997,
                            record=True, methods=BALANCING),
                     {**ge, "paths": QUICK_PATHS if quick else PATHS}, seeds),
        "kappa": Sweep({"rho": rhos}, Predict(_kappa)),
        "width_law": Sweep(widths, OGMLaw(_stats, _network, noise_seed=lambda width: width % 997,
                                          methods=BALANCING),
                           {**ge, "paths": QUICK_PATHS if quick else PATHS // 4}, seeds),
        "width_mean_field": Sweep(widths, ReducedBalance(_stats, _network, methods=BALANCING),
                                  ge, seeds),
        "width_sim": Sweep({"rho": WIDTH_RHOS,
                            "width": QUICK_WIDTHS_SIM if quick else WIDTHS_SIM},
                           Balance(_stats, _network, record=False, methods=BALANCING),
                           ge, seeds)}


def compute(out: Path, quick: bool = False) -> dict:
    return run_sweeps(sweeps(quick), out, ID, quick)


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    paths = QUICK_PATHS if quick else PATHS
    points = cmp.balancing_points(ds["train"], ds["theory"], {"ogm_ge": (ds["law"], paths)},
                                  steps=STEPS, leading_order={"inforeg": (ds["kappa"], "joint")})
    law, red = ds["law"].sel(rho=0.5, seed=0), ds["theory"].sel(rho=0.5, seed=0)
    curves = {m: (law.time.values, law.w.values) if m == "ogm_ge"
              else (red.step.values, red.sel(balancing=m).w.values) for m in METHODS}
    sweep = cmp.law_width_rows(ds["width_law"], ds["width_mean_field"], ds["width_sim"])
    summary = cmp.balancing_summary(points)
    summary["width_sweep"] = cmp.law_width_summary(sweep)
    payload = {"figure": ID, "paper": "Huang et al., CVPR 2025 (InfoReg); Peng et al., CVPR "
                                      "2022 (OGM-GE); the toy of Zhang et al., ICML 2024",
               "quick": quick,
               "parameters": {"sigma_a": SIGMA_A, "sigma_b": SIGMA_B,
                              "rhos": list(QUICK_RHOS if quick else RHOS),
                              "lr": LR, "width": WIDTH, "init_std": SCALE, "steps": STEPS,
                              "epoch_steps": EPOCH, "beta": BETA, "K": K_WINDOW,
                              "ogm_alpha": OGM_ALPHA, "unimodal_weight": UNIMODAL,
                              "seeds": [int(s) for s in ds["train"].seed.values]},
               "points": points, "width_sweep": sweep, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(points, curves, sweep, stem),
                           summary)
    _print(summary)
    return result


def _print(summary):
    errors = ", ".join(f"{LABELS[m]} {100 * summary[m]['max_rel_error']:.2g} %"
                       for m in METHODS if m in summary)
    print(f"  t_B/t_A, theory vs seed mean, max rel error: {errors}")
    print(f"  flagged (method, ρ): {summary['flagged']}; never converged: "
          f"{summary['never_converged']}")
    for rho, v in summary["width_sweep"].items():
        print(f"  OGM-GE at ρ = {rho} against the width: law vs networks max rel "
              f"{v['max_rel_error_vs_sim']}; law / mean field {v['law_over_mean_field']}")


def _mean_sd(runs):
    """Seed means and standard deviations of each point's runs (None: no transition)."""
    runs = [[v for v in r if v is not None] for r in runs]
    return ([np.mean(v) if v else np.nan for v in runs],
            [np.std(v) if v else np.nan for v in runs])


def _figure(points, curves, sweep, stem):
    marker = dict(fmt="o", ms=3, mfc="none", capsize=1.5, elinewidth=0.6)
    with paper_style():
        fig, axes = new_figure(ncols=4, width=9.0, height=2.4)
        ax = axes[0, 0]
        for method in METHODS:
            sel = [p for p in points if p["method"] == method]
            rho = [p["rho"] for p in sel]
            # a flagged theory point is not drawn (OGM-GE where its noise decides the escape)
            ax.plot(rho, [p["time_ratio_theory"] if p["valid"] else np.nan for p in sel],
                    color=COLORS[method], lw=1.2, label=LABELS[method])
            mean, sd = _mean_sd([p["time_ratio_sim"] for p in sel])
            ax.errorbar(rho, mean, yerr=sd, color=COLORS[method], **marker)
            if method == "ogm_ge":    # its noise in mean field (wrong for ρ < 0)
                ax.plot(rho, _mean_sd([p["time_ratio_mean_field"] for p in sel])[0],
                        color=COLORS[method], lw=0.8, ls=":", label="OGM-GE, mean field")
            for key, ls in (("t_A_sim", "--"), ("t_B_sim", "-")):
                axes[0, 1].plot(rho, _mean_sd([p[key] for p in sel])[0], ls=ls, marker="o",
                                ms=2.5, mfc="none", lw=0.9, color=COLORS[method])
            for m, ls in ((0, "--"), (1, "-")):
                t, w = curves[method]
                axes[0, 2].plot(t, w[:, m], ls=ls, color=COLORS[method], lw=1.0)
        ax.set(xlabel=r"correlation $\rho$", ylabel=r"time ratio $t_B/t_A$", yscale="log")
        ax.set_yticks([1, 2, 4, 8], ["1", "2", "4", "8"])
        ax.minorticks_off()
        ax.set_title("lines: theory where valid, markers: simulation", fontsize=7)
        ax = axes[0, 1]
        ax.plot([], [], "k--", lw=0.9, label="$t_A$")
        ax.plot([], [], "k-", lw=0.9, label="$t_B$")
        ax.set(yscale="log", xlabel=r"correlation $\rho$", ylabel="step (simulation)")
        ax.legend(frameon=False, fontsize=6)
        ax = axes[0, 2]
        ax.set(xlim=(0, 1400), xlabel="step", ylabel=r"total weight ($\rho$ = 0.5, theory)")
        ax.set_title(r"dashed: $W_A^{tot}$, solid: $W_B^{tot}$", fontsize=7)
        # the methods' legend for all panels, in this panel's empty lower right
        ax.legend(*axes[0, 0].get_legend_handles_labels(), frameon=False, fontsize=5.5,
                  loc="lower right")
        ax = axes[0, 3]
        for rho, color in zip(WIDTH_RHOS, (PALETTE[4], PALETTE[2])):
            sel = [r for r in sweep if r["rho"] == rho]
            w = [r["width"] for r in sel]
            ax.plot(w, np.array([r["time_ratio_theory"] for r in sel], float), color=color, lw=1.2,
                    label=rf"$\rho$ = {rho}: law")
            ax.plot(w, _mean_sd([r["time_ratio_mean_field"] for r in sel])[0], color=color,
                    lw=0.8, ls=":", label="mean field")
            sims = [r for r in sel if r["time_ratio_sim"]]
            mean, sd = _mean_sd([r["time_ratio_sim"] for r in sims])
            ax.errorbar([r["width"] for r in sims], mean, yerr=sd, color=color, **marker)
        ax.set(xscale="log", xlabel="width $h$", ylabel=r"OGM-GE $t_B/t_A$")
        ax.set_title("OGM-GE: noise against width", fontsize=7)
        ax.legend(frameon=False, fontsize=5.5, loc="center left", ncol=2)
        return [str(p) for p in save(fig, stem)]
