"""Zhang, Latham & Saxe (2024), Figure 3c and 3d: time ratio and mis-attribution.

Two-layer late-fusion linear networks, two scalar modalities with
Σ = [[σ_A², ρσ_Aσ_B], [ρσ_Aσ_B, σ_B²]], y = x_A + x_B, σ_B = 1; width 100, weights i.i.d.
N(0, (1e-9)²), full-batch gradient descent with η = 0.04 (at most 40,000 steps). Panel c:
t_B/t_A against ρ; panel d: mis-attribution against ρ.

Runs stop at loss < 1e-8 rather than the authors' 1e-4: t_A and t_B happen long before
either, but at 1e-4 the "final" weight of modality A is still up to 0.04 away from its limit
when ρ = ±0.9 (the loss is flat along Σ's small eigenvector), which biases the measured
mis-attribution by up to 0.034. The JSON reports the mis-attribution measured both ways.

Lines: dlnfusion's prediction for this training (finite initialization and learning rate,
solid), the paper's gradient-flow formula corrected for the sign flip (dashed), eq. (9) as
printed (dotted, where it differs) and dlnfusion's prediction for the ReLU networks (thin
dash-dot: the linear prediction at half the learning rate from half the initial mode,
theory.predict_times_relu). Markers: simulations, mean ± s.d. over seeds; circles linear,
crosses ReLU networks (same widths, initialization and learning rate, trained exactly at
population level through four rectified features; their half-way points are at half of their
own plateaus, twice the linear ones).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, simulate, theory as th
from dlnfusion.compare import measure_unimodal_phase, unimodal_report
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, theory_vs_sim

from ._output import write_outputs

ID = "zhang2024-fig3c"
TITLE = "Figure 3c-d: time ratio and mis-attribution, two-layer late fusion"

SIGMA_RATIOS = (1.0, 1.5, 2.0, 3.0)
RHOS = np.linspace(-0.9, 0.9, 9)
WIDTH = 100
INIT_STD = 1e-9
LR = 0.04
SEEDS, QUICK_SEEDS = 5, 2
MAX_STEPS = 40_000
STOP_LOSS = 1e-8
PAPER_STOP_LOSS = 1e-4  # the authors' stopping rule, used for the second mis-attribution
RHO_LINE = np.linspace(-0.92, 0.92, 93)


def theory_lines(sigma_ratio: float) -> dict:
    """Theory curves over RHO_LINE for one σ_A/σ_B (typical initial mode value)."""
    w0 = th.saxe.typical_effective_init(INIT_STD, WIDTH)
    out = {"finite_lr": [], "relu": [], "gradient_flow": [], "eq9": [], "misattribution": []}
    for rho in RHO_LINE:
        st = Stats.scalar_toy(sigma_ratio, 1.0, rho)
        tie = th.roles(st).tie
        out["finite_lr"].append(1.0 if tie else th.predict_times(st, LR, [w0, w0]).ratio)
        out["relu"].append(1.0 if tie else th.predict_times_relu(st, LR, [w0, w0]).ratio)
        out["gradient_flow"].append(th.time_ratio_gradient_flow(st).value)
        out["eq9"].append(th.time_ratio_eq9(st).value)
        out["misattribution"].append(th.misattribution(st).value)
    return {k: np.asarray(v) for k, v in out.items()}


def run(out: Path, quick: bool = False) -> dict:
    seeds = range(QUICK_SEEDS if quick else SEEDS)
    spec = NetworkSpec.fusion(depth=2, fusion_layer=2, width=WIDTH)
    grid = [(r, rho) for r in SIGMA_RATIOS for rho in RHOS]
    stats = [Stats.scalar_toy(r, 1.0, rho) for r, rho in grid]
    traj = simulate(spec, stats, seeds=seeds, scale=INIT_STD, lr=LR, steps=MAX_STEPS,
                    stop_loss=STOP_LOSS, record_every=10)
    meas = measure_unimodal_phase(traj)
    meas_paper = measure_unimodal_phase(traj, final_below=PAPER_STOP_LOSS)
    # The ReLU crosses: the same networks with ReLU hidden units, trained exactly at population
    # level (four rectified features, dlnfusion.training.objectives). Their total weights end
    # at twice the linear ones (theory.relu), so half-way is progress 1 toward the linear
    # references.
    relu = NetworkSpec.fusion(depth=2, fusion_layer=2, width=WIDTH, activation="relu")
    traj_relu = simulate(relu, stats, seeds=seeds, scale=INIT_STD, lr=LR, steps=MAX_STEPS,
                         stop_loss=STOP_LOSS, record_every=10, levels=(0.5, 1.0))
    meas_relu = measure_unimodal_phase(traj_relu, level=1.0)

    points = []
    for c, ((r, rho), st) in enumerate(zip(grid, stats)):
        rep = unimodal_report(traj[c], st, lr=LR)
        comp = rep["comparisons"]
        tie = rep["tie"]
        points.append({
            "sigma_ratio": r, "rho": float(rho), "tie": tie,
            "time_ratio_theory": 1.0 if tie else comp["time_ratio"]["theory"],
            "time_ratio_gradient_flow": comp["time_ratio_gradient_flow"]["theory"],
            "time_ratio_eq9": th.time_ratio_eq9(st).value,
            "time_ratio_sim": [float(v) for v in meas.time_ratio[c]],
            "misattribution_theory": comp["misattribution"]["theory"],
            "misattribution_sim": [float(v) for v in meas.misattribution[c]],
            "misattribution_sim_final_at_loss_1e-4": [float(v) for v in
                                                      meas_paper.misattribution[c]],
            "time_ratio_relu_sim": [float(v) for v in meas_relu.time_ratio[c]],
            "misattribution_relu_sim": [float(v) for v in meas_relu.misattribution[c]],
            "time_ratio_relu_theory": 1.0 if tie else _relu_prediction(spec, traj_relu[c], st),
            "status_relu": [str(s) for s in traj_relu.status_names()[c]],
            "t_A_theory": None if tie else comp["t_A"]["theory"],
            "t_B_theory": None if tie else comp["t_B"]["theory"],
            "t_A_sim": [float(v) for v in meas.t_A[c]],
            "t_B_sim": [float(v) for v in meas.t_B[c]],
            "first_theory": rep["first_theory"], "first_sim": rep["first_sim"],
            "plateau_loss_theory": comp["plateau_loss"]["theory"],
            "plateau_loss_sim": comp["plateau_loss"]["simulated"],
            "status": rep["status"],
        })

    summary = _summary(points)
    payload = {
        "figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 3c-d",
        "parameters": {"sigma_ratios": list(SIGMA_RATIOS), "rhos": RHOS.tolist(),
                       "sigma_b": 1.0, "teacher": [1.0, 1.0], "width": WIDTH,
                       "init_std": INIT_STD, "lr": LR, "seeds": list(seeds),
                       "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS, "method": "gd"},
        "points": points, "summary": summary,
    }
    result = write_outputs(out, ID, payload, lambda stem: _figure(points, stem),
                           summary)
    _print_table(points, summary)
    return result


def _relu_prediction(spec, traj, st) -> float:
    """theory.predict_times_relu from each ReLU run's initial weights, averaged over seeds."""
    w0 = th.effective_init(spec, traj.initial_params, th.phase_directions(st))
    return float(np.mean([th.predict_times_relu(st, LR, w).ratio for w in w0]))


def _summary(points) -> dict:
    def rel(th_v, sims):
        return abs(th_v / np.mean(sims) - 1)
    uni = [p for p in points if not p["tie"]]
    e_th = [rel(p["time_ratio_theory"], p["time_ratio_sim"]) for p in uni]
    e_gf = [rel(p["time_ratio_gradient_flow"], p["time_ratio_sim"]) for p in uni]
    e_9 = [rel(p["time_ratio_eq9"], p["time_ratio_sim"]) for p in uni]
    mis = [abs(p["misattribution_theory"] - np.mean(p["misattribution_sim"])) for p in uni]
    ties = [abs(np.mean(p["time_ratio_sim"]) - 1) for p in points if p["tie"]]
    e_relu = [rel(p["time_ratio_relu_theory"], p["time_ratio_relu_sim"]) for p in uni]
    e_relu_paper = [rel(p["time_ratio_gradient_flow"], p["time_ratio_relu_sim"]) for p in uni]
    mis_relu = [abs(p["misattribution_theory"] - np.mean(p["misattribution_relu_sim"]))
                for p in uni]
    return {
        "relu_time_ratio_theory_rel_error": {"median": float(np.median(e_relu)),
                                             "max": float(np.max(e_relu))},
        "relu_time_ratio_vs_paper_line_rel_error": {"median": float(np.median(e_relu_paper)),
                                                    "max": float(np.max(e_relu_paper))},
        "relu_misattribution_abs_error_max": float(np.max(mis_relu)),
        "time_ratio_theory_rel_error": {"median": float(np.median(e_th)), "max": float(np.max(e_th))},
        "time_ratio_gradient_flow_rel_error": {"median": float(np.median(e_gf)),
                                               "max": float(np.max(e_gf))},
        "time_ratio_eq9_rel_error": {"median": float(np.median(e_9)), "max": float(np.max(e_9))},
        "misattribution_abs_error_max": float(np.max(mis)),
        "tie_points_max_deviation_from_1": float(np.max(ties)) if ties else None,
        "all_converged": all(s == "converged" for p in points
                             for s in p["status"] + p["status_relu"]),
    }


def _figure(points, stem):
    with paper_style():
        fig, axes = new_figure(ncols=2, height=2.4)
        ax_c, ax_d = axes[0]
        colors = {r: PALETTE[i + 1] for i, r in enumerate(SIGMA_RATIOS)}
        lines_c, lines_d, pts_c, pts_d = [], [], [], []
        for r in SIGMA_RATIOS:
            curves = theory_lines(r)
            col = colors[r]
            lines_c.append({"y": curves["finite_lr"], "color": col,
                            "label": fr"$\sigma_A/\sigma_B={r:g}$"})
            lines_c.append({"y": curves["gradient_flow"], "color": col, "style": "--", "width": 0.9})
            differs = np.abs(curves["eq9"] / curves["gradient_flow"] - 1) > 1e-9
            lines_c.append({"y": np.where(differs, curves["eq9"], np.nan), "color": col,
                            "style": ":", "width": 0.9})
            lines_c.append({"y": curves["relu"], "color": col, "style": "-.", "width": 0.7})
            sel = [p for p in points if p["sigma_ratio"] == r]
            pts_c.append({"mean": [np.mean(p["time_ratio_sim"]) for p in sel],
                          "std": [np.std(p["time_ratio_sim"]) for p in sel], "color": col})
            pts_c.append({"mean": [np.mean(p["time_ratio_relu_sim"]) for p in sel],
                          "std": [np.std(p["time_ratio_relu_sim"]) for p in sel], "color": col,
                          "marker": "x"})
            if r != 1.0:
                lines_d.append({"y": curves["misattribution"], "color": col,
                                "label": fr"$\sigma_A/\sigma_B={r:g}$"})
                pts_d.append({"mean": [np.mean(p["misattribution_sim"]) for p in sel],
                              "std": [np.std(p["misattribution_sim"]) for p in sel],
                              "color": col})
                pts_d.append({"mean": [np.mean(p["misattribution_relu_sim"]) for p in sel],
                              "std": [np.std(p["misattribution_relu_sim"]) for p in sel],
                              "color": col, "marker": "x"})
        theory_vs_sim(ax_c, RHO_LINE, lines_c, RHOS, pts_c, r"Correlation coefficient $\rho$",
                      r"Time ratio $t_B/t_A$", logy=True, panel="c")
        theory_vs_sim(ax_d, RHO_LINE, lines_d, RHOS, pts_d, r"Correlation coefficient $\rho$",
                      "Mis-attribution", panel="d")
        # Legend for line styles.
        from matplotlib.lines import Line2D
        style_handles = [
            Line2D([], [], color="0.3", ls="-", label=r"theory, GD $\eta=0.04$"),
            Line2D([], [], color="0.3", ls="--", label="gradient flow, leading order"),
            Line2D([], [], color="0.3", ls=":", label="eq. (9) as printed"),
            Line2D([], [], color="0.3", ls="-.", lw=0.7, label=r"theory, ReLU ($\eta/2$)"),
            Line2D([], [], color="0.3", ls="", marker="o", mfc="white", label="linear network"),
            Line2D([], [], color="0.3", ls="", marker="x", label="ReLU network"),
        ]
        ax_c.legend(loc="upper center", ncol=2, fontsize=6, handlelength=1.5)
        fig.legend(handles=style_handles, loc="outside lower center", ncol=3, fontsize=6.5,
                   handlelength=2.2)
        ax_c.set_ylim(0.7, 150)
        ax_d.legend(loc="upper left", fontsize=6)
        ax_d.axhline(0, color="0.8", lw=0.5, zorder=0)
        return save(fig, stem)


def _print_table(points, summary):
    print(f"{'sA/sB':>5} {'rho':>6} | {'sim t_B/t_A':>16} {'theory':>8} {'err':>7} | "
          f"{'grad.flow':>9} {'err':>7} | {'mis sim':>8} {'mis th':>7}")
    for p in points:
        sim = np.array(p["time_ratio_sim"])
        e = p["time_ratio_theory"] / sim.mean() - 1
        g = p["time_ratio_gradient_flow"] / sim.mean() - 1
        ms = np.mean(p["misattribution_sim"])
        print(f"{p['sigma_ratio']:5.1f} {p['rho']:+6.3f} | {sim.mean():9.3f} ±{sim.std():6.3f} "
              f"{p['time_ratio_theory']:8.3f} {e:+7.2%} | {p['time_ratio_gradient_flow']:9.3f} "
              f"{g:+7.1%} | {ms:+8.4f} {p['misattribution_theory']:+7.4f}"
              + ("  (tie)" if p["tie"] else ""))
    s = summary
    print(f"time ratio, theory vs simulation (sA/sB != 1): median error "
          f"{s['time_ratio_theory_rel_error']['median']:.2%}, max "
          f"{s['time_ratio_theory_rel_error']['max']:.2%}")
    print(f"time ratio, gradient-flow formula vs simulation: median "
          f"{s['time_ratio_gradient_flow_rel_error']['median']:.1%}, max "
          f"{s['time_ratio_gradient_flow_rel_error']['max']:.1%}")
    print(f"time ratio, eq. (9) as printed vs simulation: median "
          f"{s['time_ratio_eq9_rel_error']['median']:.1%}, max {s['time_ratio_eq9_rel_error']['max']:.1%}")
    print(f"mis-attribution: max |theory - simulation| = {s['misattribution_abs_error_max']:.4f}")
    print(f"ReLU time ratio, dlnfusion's ReLU prediction vs simulation: median "
          f"{s['relu_time_ratio_theory_rel_error']['median']:.2%}, max "
          f"{s['relu_time_ratio_theory_rel_error']['max']:.2%}; the paper's linear theory line: "
          f"median {s['relu_time_ratio_vs_paper_line_rel_error']['median']:.1%}, max "
          f"{s['relu_time_ratio_vs_paper_line_rel_error']['max']:.1%}; ReLU mis-attribution: "
          f"max |theory - simulation| = {s['relu_misattribution_abs_error_max']:.4f}")
    if s["tie_points_max_deviation_from_1"] is not None:
        print(f"tie points (sA/sB = 1): max |t_B/t_A - 1| = {s['tie_points_max_deviation_from_1']:.3f}")
