"""Zhang, Latham & Saxe (2024), Figure 9: logistic loss ln(1 + e^{−yŷ}).

Two-layer early and late fusion (width 100, N(0, (1e-9)²) weights, gradient descent
η = 0.04) on the scalar toy (y = x_A + x_B, σ_B = 1) with the logistic loss instead of the
squared loss. The inputs are Gaussian, so the expected logistic loss is a function of the
covariance of (y, ŷ) alone and is computed exactly (dlnfusion's population-level logistic
loss; the paper used 8192 samples, which agree with it to a few per cent).

(a, b) Loss and total weights of early and late fusion for Σ = diag(4, 1). (c) t_B/t_A of late
fusion against ρ for σ_A/σ_B = 2 (and 3 in full mode), with eq. (9) (line) and the
squared-loss simulation (gray markers). t_A and t_B use the squared-loss references
(half of Σ_yxAΣ_A⁻¹ and of the global solution), as the logistic loss has no finite optimum.

Finding: the first transition is the squared-loss one at half the rate (eq. 35–37: the
logistic gradient at ŷ = 0 is −½ y x), so t_A doubles; the second is much slower, because once
A classifies most samples the logistic loss's sigmoid factor suppresses what drives B. The time
ratio is therefore larger than eq. (9) (about 2.4× at ρ = 0, σ_A/σ_B = 2) rather than equal to it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, simulate, theory as th
from dlnfusion.compare import measure_unimodal_phase
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, theory_vs_sim, trajectory_panel

from ._output import write_outputs

ID = "zhang2024-fig9"
TITLE = "Figure 9: logistic loss, trajectories and time ratio against eq. (9)"
WIDTH, INIT_STD, LR = 100, 1e-9, 0.04
RHOS = np.linspace(-0.9, 0.9, 9)
RATIOS, QUICK_RATIOS = (2.0, 3.0), (2.0,)
SEEDS, QUICK_SEEDS = (0, 1, 2), (0, 1)
MAX_STEPS, QUICK_MAX_STEPS = 120_000, 40_000
TRAJ_STEPS = 3000


def run(out: Path, quick: bool = False) -> dict:
    ratios = QUICK_RATIOS if quick else RATIOS
    seeds = QUICK_SEEDS if quick else SEEDS
    max_steps = QUICK_MAX_STEPS if quick else MAX_STEPS
    toy = Stats.scalar_toy(2.0, 1.0, 0.0)
    trajs = {}
    for name, Lf in (("early", 1), ("late", 2)):
        spec = NetworkSpec.fusion(2, Lf, width=WIDTH)
        trajs[name] = simulate(spec, toy, seeds=[0], scale=INIT_STD, lr=LR, loss="logistic",
                               steps=TRAJ_STEPS, stop_loss=None, record_every=1)
    late = NetworkSpec.fusion(2, 2, width=WIDTH)
    grid = [(r, rho) for r in ratios for rho in RHOS]
    stats = [Stats.scalar_toy(r, 1.0, rho) for r, rho in grid]
    logi = measure_unimodal_phase(simulate(late, stats, seeds=seeds, scale=INIT_STD, lr=LR,
                                           loss="logistic", steps=max_steps,
                                           stop_loss=None, record_every=100))
    mse = measure_unimodal_phase(simulate(late, stats, seeds=seeds, scale=INIT_STD, lr=LR,
                                          steps=max_steps, stop_loss=1e-8, record_every=100))
    points = []
    for c, ((r, rho), st) in enumerate(zip(grid, stats)):
        points.append({
            "sigma_ratio": r, "rho": float(rho),
            "time_ratio_eq9": th.time_ratio_gradient_flow(st).value,
            "time_ratio_logistic_drives": th.timescales.time_ratio_from_drives(st, "logistic", LR).value,
            "time_ratio_logistic_sim": [float(v) for v in logi.time_ratio[c]],
            "time_ratio_squared_sim": [float(v) for v in mse.time_ratio[c]],
            "t_A_logistic_sim": [float(v) for v in logi.t_A[c]],
            "t_A_squared_sim": [float(v) for v in mse.t_A[c]],
            "t_B_logistic_sim": [float(v) for v in logi.t_B[c]],
        })
    summary = {
        "t_A_logistic_over_squared_median": float(np.nanmedian(
            [np.mean(p["t_A_logistic_sim"]) / np.mean(p["t_A_squared_sim"]) for p in points])),
        "ratio_logistic_over_eq9": {f"{p['sigma_ratio']:g}/{p['rho']:+.3f}":
                                    float(np.mean(p["time_ratio_logistic_sim"])
                                          / p["time_ratio_eq9"]) for p in points},
        "points_without_t_B": sum(int(np.any(np.isnan(p["t_B_logistic_sim"]))) for p in points),
        "logistic_drives_rel_error": {f"{p['sigma_ratio']:g}/{p['rho']:+.3f}":
                                      float(p["time_ratio_logistic_drives"]
                                            / np.nanmean(p["time_ratio_logistic_sim"]) - 1)
                                      for p in points},
    }
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 9",
               "parameters": {"width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": max_steps, "seeds": list(seeds),
                              "loss": "logistic, exact expectation for Gaussian inputs"},
               "points": points, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(trajs, points, ratios, stem),
                           summary)
    print(f"t_A(logistic)/t_A(squared), median over the grid: "
          f"{summary['t_A_logistic_over_squared_median']:.2f} (leading order: 2)")
    for p in points:
        lg = np.mean(p["time_ratio_logistic_sim"])
        print(f"  sA/sB={p['sigma_ratio']:g} rho={p['rho']:+.3f}: logistic {lg:8.3f} (drives "
              f"{p['time_ratio_logistic_drives']:8.3f})  squared "
              f"{np.mean(p['time_ratio_squared_sim']):7.3f}  eq.(9) {p['time_ratio_eq9']:7.3f}")
    return result


def _figure(trajs, points, ratios, stem):
    with paper_style():
        fig, axes = new_figure(ncols=3, width=6.9, height=2.1)
        for k, name in enumerate(("early", "late")):
            tr = trajs[name]
            h = trajectory_panel(axes[0, k], tr.time, loss=tr.loss[0],
                                 maps=[tr.maps[0][0, :, 0, 0], tr.maps[1][0, :, 0, 0]],
                                 labels=(r"$W_A^{tot}$", r"$W_B^{tot}$"),
                                 colors=(PALETTE[1], PALETTE[2]), panel="ab"[k],
                                 loss_label="Logistic loss")
            axes[0, k].set_title(f"{name} fusion", fontsize=8)
            if k == 0:
                axes[0, k].legend(handles=h, fontsize=6, loc="center right")
        ax = axes[0, 2]
        rho_line = np.linspace(-0.92, 0.92, 93)
        lines, pts_l, pts_s = [], [], []
        for i, r in enumerate(ratios):
            col = PALETTE[3 + i]
            lines.append({"y": [th.time_ratio_gradient_flow(Stats.scalar_toy(r, 1.0, x)).value
                                for x in rho_line], "color": col,
                          "label": fr"eq. (9), $\sigma_A/\sigma_B={r:g}$"})
            lines.append({"y": [th.timescales.time_ratio_from_drives(Stats.scalar_toy(r, 1.0, x), "logistic",
                                                          LR).value for x in rho_line[::4]],
                          "x": rho_line[::4], "color": col, "style": "--", "width": 0.9})
            sel = [p for p in points if p["sigma_ratio"] == r]
            pts_l.append({"mean": [np.nanmean(p["time_ratio_logistic_sim"]) for p in sel],
                          "color": col, "marker": "o"})
            pts_s.append({"mean": [np.nanmean(p["time_ratio_squared_sim"]) for p in sel],
                          "color": "0.55", "marker": "s"})
        theory_vs_sim(ax, rho_line, lines, RHOS, pts_s + pts_l,
                      r"Correlation coefficient $\rho$", r"Time ratio $t_B/t_A$", logy=True,
                      panel="c")
        from matplotlib.lines import Line2D
        ax.legend(handles=[Line2D([], [], color=PALETTE[3 + i], label=fr"eq. (9), "
                                  fr"$\sigma_A/\sigma_B={r:g}$") for i, r in enumerate(ratios)]
                  + [Line2D([], [], color="0.3", ls="--", label="two phases, logistic drives"),
                     Line2D([], [], ls="", marker="o", mfc="white", mec="0.2",
                            label="logistic loss"),
                     Line2D([], [], ls="", marker="s", mfc="white", mec="0.55",
                            label="squared loss")], fontsize=5.5, loc="upper center")
        return save(fig, stem)
