"""Zhang, Latham & Saxe (2024), Figure 3c and 3d: time ratio and mis-attribution.

Two-layer late-fusion networks on two scalar modalities, Σ = [[σ_A², ρσ_Aσ_B], [ρσ_Aσ_B,
σ_B²]], y = x_A + x_B, σ_B = 1, trained by gradient descent from small random weights. Panel c:
t_B/t_A against ρ; panel d: mis-attribution against ρ. Lines: dlnfusion's prediction for this
training (solid), the gradient-flow formula (dashed), eq. (9) as printed (dotted) and the ReLU
prediction (dash-dot); markers: linear (circles) and ReLU (crosses) networks, mean ± s.d. over
seeds. Saved under ``out/zhang2024-fig3c/{quick,full}/<sweep>``; protocol and numbers:
docs/figures/zhang2024-fig3c.md.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.compare import error_stats, point_errors
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, style_legend, theory_vs_sim
from dlnfusion.sweep import ClosedFormTimes, Predict, Sweep, Train

from ._output import run_sweeps, write_outputs

ID = "zhang2024-fig3c"
TITLE = "Figure 3c-d: time ratio and mis-attribution, two-layer late fusion"

SIGMA_RATIOS, RHOS = (1.0, 1.5, 2.0, 3.0), np.linspace(-0.9, 0.9, 9)
WIDTH, INIT_STD, LR, MAX_STEPS, STOP_LOSS = 100, 1e-9, 0.04, 40_000, 1e-8
SEEDS, QUICK_SEEDS = 5, 2
PAPER_STOP_LOSS = 1e-4  # the authors' stopping rule, used for the second mis-attribution
RHO_LINE = np.linspace(-0.92, 0.92, 93)


def _stats(sigma_ratio, rho):
    return Stats.scalar_toy(sigma_ratio, 1.0, rho)


def _linear():
    return NetworkSpec.fusion(depth=2, fusion_layer=2, width=WIDTH)


def _relu():
    return NetworkSpec.fusion(depth=2, fusion_layer=2, width=WIDTH, activation="relu")


def _theory(sigma_ratio, rho):
    return th.timescales.typical_run_ratios(_stats(sigma_ratio, rho), INIT_STD, WIDTH, LR)


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name."""
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    grid = {"sigma_ratio": SIGMA_RATIOS, "rho": RHOS}
    train = {"lr": LR, "scale": INIT_STD, "steps": MAX_STEPS, "stop_loss": STOP_LOSS,
             "record_every": 10}
    return {"linear": Sweep(grid, Train(_stats, _linear, record=False,
                                        final_below=PAPER_STOP_LOSS), train, seeds),
            "relu": Sweep(grid, Train(_stats, _relu, record=False, level=1.0), train, seeds),
            "predicted": Sweep(grid, ClosedFormTimes(_stats, _linear), train, seeds),
            "predicted_relu": Sweep(grid, ClosedFormTimes(_stats, _relu), train, seeds),
            "theory": Sweep(grid, Predict(_theory)),
            "lines": Sweep({"sigma_ratio": SIGMA_RATIOS, "rho": RHO_LINE}, Predict(_theory))}


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    return run_sweeps(sweeps(quick), out, ID, quick)


def _list(a, kind=float):
    return [kind(v) for v in np.ravel(a)]


def _point(ds, at) -> dict:
    s, u, p, q = (ds[k].sel(at) for k in ("linear", "relu", "predicted", "predicted_relu"))
    t = ds["theory"].sel(at).isel(seed=0)
    tie = bool(t.tie)
    return {"sigma_ratio": at["sigma_ratio"], "rho": float(at["rho"]), "tie": tie,
            "time_ratio_theory": 1.0 if tie else float(np.mean(p.time_ratio)),
            "time_ratio_gradient_flow": float(s.time_ratio_gradient_flow),
            "time_ratio_eq9": float(t.eq9), "time_ratio_sim": _list(s.time_ratio),
            "misattribution_theory": float(s.misattribution_theory),
            "misattribution_sim": _list(s.misattribution),
            "misattribution_sim_final_at_loss_1e-4": _list(s.misattribution_final_below),
            "time_ratio_relu_sim": _list(u.time_ratio),
            "misattribution_relu_sim": _list(u.misattribution),
            "time_ratio_relu_theory": 1.0 if tie else float(np.mean(q.time_ratio)),
            "status_relu": _list(u.status, str),
            "t_A_theory": None if tie else float(np.mean(p.t_A)),
            "t_B_theory": None if tie else float(np.mean(p.t_B)),
            "t_A_sim": _list(s.t_A), "t_B_sim": _list(s.t_B),
            "first_theory": str(t.first.item()), "first_sim": _list(s.first, str),
            "plateau_loss_theory": float(s.plateau_loss_theory),
            "plateau_loss_sim": _list(s.plateau_loss), "status": _list(s.status, str)}


def _summary(points) -> dict:
    uni = [p for p in points if not p["tie"]]

    def rel(key, sim):
        return error_stats(point_errors(uni, key, sim))

    def worst(sim):
        return float(np.max(point_errors(uni, "misattribution_theory", sim, relative=False)))

    ties = [abs(np.mean(p["time_ratio_sim"]) - 1) for p in points if p["tie"]]
    return {
        "relu_time_ratio_theory_rel_error": rel("time_ratio_relu_theory", "time_ratio_relu_sim"),
        "relu_time_ratio_vs_paper_line_rel_error": rel("time_ratio_gradient_flow",
                                                       "time_ratio_relu_sim"),
        "relu_misattribution_abs_error_max": worst("misattribution_relu_sim"),
        "time_ratio_theory_rel_error": rel("time_ratio_theory", "time_ratio_sim"),
        "time_ratio_gradient_flow_rel_error": rel("time_ratio_gradient_flow", "time_ratio_sim"),
        "time_ratio_eq9_rel_error": rel("time_ratio_eq9", "time_ratio_sim"),
        "misattribution_abs_error_max": worst("misattribution_sim"),
        "tie_points_max_deviation_from_1": float(np.max(ties)) if ties else None,
        "all_converged": all(s == "converged" for p in points
                             for s in p["status"] + p["status_relu"]),
    }


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    points = [_point(ds, {"sigma_ratio": r, "rho": rho}) for r in SIGMA_RATIOS for rho in RHOS]
    summary = _summary(points)
    payload = {
        "figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 3c-d",
        "parameters": {"sigma_ratios": list(SIGMA_RATIOS), "rhos": RHOS.tolist(),
                       "sigma_b": 1.0, "teacher": [1.0, 1.0], "width": WIDTH,
                       "init_std": INIT_STD, "lr": LR,
                       "seeds": [int(s) for s in ds["linear"].seed.values],
                       "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS, "method": "gd"},
        "points": points, "summary": summary,
    }
    result = write_outputs(out, ID, payload, lambda stem: _figure(points, ds["lines"], stem),
                           summary)
    for text, key in (("dlnfusion's prediction", "time_ratio_theory"),
                      ("gradient-flow formula", "time_ratio_gradient_flow"),
                      ("eq. (9) as printed", "time_ratio_eq9"),
                      ("ReLU networks, dlnfusion's ReLU prediction", "relu_time_ratio_theory")):
        e = summary[f"{key}_rel_error"]
        print(f"time ratio, {text} vs simulation: median error {e['median']:.2%}, "
              f"max {e['max']:.2%}")
    print(f"mis-attribution: max |theory - simulation| = "
          f"{summary['misattribution_abs_error_max']:.4f} (ReLU "
          f"{summary['relu_misattribution_abs_error_max']:.4f})")
    return result


def _markers(sel, key, color, **kw) -> dict:
    return {"mean": [np.mean(p[key]) for p in sel], "std": [np.std(p[key]) for p in sel],
            "color": color, **kw}


def _figure(points, lines, stem):
    with paper_style():
        fig, axes = new_figure(ncols=2, height=2.4)
        ax_c, ax_d = axes[0]
        lines_c, lines_d, pts_c, pts_d = [], [], [], []
        for i, r in enumerate(SIGMA_RATIOS):
            cv, col = lines.sel(sigma_ratio=r).isel(seed=0), PALETTE[i + 1]
            label = fr"$\sigma_A/\sigma_B={r:g}$"
            differs = np.abs(cv.eq9 / cv.gradient_flow - 1) > 1e-9
            lines_c += [{"y": cv.finite_lr.values, "color": col, "label": label},
                        {"y": cv.gradient_flow.values, "color": col, "style": "--", "width": 0.9},
                        {"y": np.where(differs, cv.eq9, np.nan), "color": col, "style": ":",
                         "width": 0.9},
                        {"y": cv.relu.values, "color": col, "style": "-.", "width": 0.7}]
            sel = [p for p in points if p["sigma_ratio"] == r]
            pts_c += [_markers(sel, "time_ratio_sim", col),
                      _markers(sel, "time_ratio_relu_sim", col, marker="x")]
            if r != 1.0:
                lines_d.append({"y": cv.misattribution.values, "color": col, "label": label})
                pts_d += [_markers(sel, "misattribution_sim", col),
                          _markers(sel, "misattribution_relu_sim", col, marker="x")]
        theory_vs_sim(ax_c, RHO_LINE, lines_c, RHOS, pts_c, r"Correlation coefficient $\rho$",
                      r"Time ratio $t_B/t_A$", logy=True, panel="c")
        theory_vs_sim(ax_d, RHO_LINE, lines_d, RHOS, pts_d, r"Correlation coefficient $\rho$",
                      "Mis-attribution", panel="d")
        ax_c.legend(loc="upper center", ncol=2, fontsize=6, handlelength=1.5)
        style_legend(fig, [("-", r"theory, GD $\eta=0.04$"), ("--", "gradient flow, leading order"),
                           (":", "eq. (9) as printed"), ("-.", r"theory, ReLU ($\eta/2$)", 0.7),
                           ("o", "linear network"), ("x", "ReLU network")],
                     ncol=3, fontsize=6.5, handlelength=2.2)
        ax_c.set_ylim(0.7, 150)
        ax_d.legend(loc="upper left", fontsize=6)
        ax_d.axhline(0, color="0.8", lw=0.5, zorder=0)
        return save(fig, stem)
