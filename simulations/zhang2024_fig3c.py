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
own plateaus, twice the linear ones: ``Train(level=1.0)``).

Every number comes from a sweep (:mod:`dlnfusion.sweep`), saved under
``out/zhang2024-fig3c/{quick,full}/<sweep>``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, style_legend, theory_vs_sim
from dlnfusion.sweep import ClosedFormTimes, Predict, Sweep, Train

from ._output import write_outputs

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
    """The theory curves at one point (typical initial mode value; a tie has ratio 1)."""
    st = _stats(sigma_ratio, rho)
    w0 = th.saxe.typical_effective_init(INIT_STD, WIDTH)
    r = th.roles(st)
    return {"tie": bool(r.tie), "first": st.names[r.first],
            "finite_lr": 1.0 if r.tie else th.predict_times(st, LR, [w0, w0]).ratio,
            "relu": 1.0 if r.tie else th.predict_times_relu(st, LR, [w0, w0]).ratio,
            "gradient_flow": th.time_ratio_gradient_flow(st).value,
            "eq9": th.time_ratio_eq9(st).value, "misattribution": th.misattribution(st).value}


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
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def _list(a, kind=float):
    return [kind(v) for v in np.ravel(a)]


def _points(ds) -> list:
    points = []
    for r in SIGMA_RATIOS:
        for rho in RHOS:
            at = {"sigma_ratio": r, "rho": rho}
            s, u, p, q = (ds[k].sel(at) for k in ("linear", "relu", "predicted",
                                                  "predicted_relu"))
            t = ds["theory"].sel(at).isel(seed=0)
            tie = bool(t.tie)
            points.append({
                "sigma_ratio": r, "rho": float(rho), "tie": tie,
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
                "plateau_loss_sim": _list(s.plateau_loss), "status": _list(s.status, str)})
    return points


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    points = _points(ds)
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
    _print_table(points, summary)
    return result


def _stat(errors) -> dict:
    return {"median": float(np.median(errors)), "max": float(np.max(errors))}


def _summary(points) -> dict:
    def rel(key, sim):
        return [abs(p[key] / np.mean(p[sim]) - 1) for p in uni]
    uni = [p for p in points if not p["tie"]]
    mis = [abs(p["misattribution_theory"] - np.mean(p["misattribution_sim"])) for p in uni]
    mis_relu = [abs(p["misattribution_theory"] - np.mean(p["misattribution_relu_sim"]))
                for p in uni]
    ties = [abs(np.mean(p["time_ratio_sim"]) - 1) for p in points if p["tie"]]
    return {
        "relu_time_ratio_theory_rel_error": _stat(rel("time_ratio_relu_theory",
                                                      "time_ratio_relu_sim")),
        "relu_time_ratio_vs_paper_line_rel_error": _stat(rel("time_ratio_gradient_flow",
                                                             "time_ratio_relu_sim")),
        "relu_misattribution_abs_error_max": float(np.max(mis_relu)),
        "time_ratio_theory_rel_error": _stat(rel("time_ratio_theory", "time_ratio_sim")),
        "time_ratio_gradient_flow_rel_error": _stat(rel("time_ratio_gradient_flow",
                                                        "time_ratio_sim")),
        "time_ratio_eq9_rel_error": _stat(rel("time_ratio_eq9", "time_ratio_sim")),
        "misattribution_abs_error_max": float(np.max(mis)),
        "tie_points_max_deviation_from_1": float(np.max(ties)) if ties else None,
        "all_converged": all(s == "converged" for p in points
                             for s in p["status"] + p["status_relu"]),
    }


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


def _print_table(points, s):
    print(f"{'sA/sB':>5} {'rho':>6} | {'sim t_B/t_A':>16} {'theory':>8} {'err':>7} | "
          f"{'grad.flow':>9} {'err':>7} | {'mis sim':>8} {'mis th':>7}")
    for p in points:
        sim = np.array(p["time_ratio_sim"])
        e, g = (p[k] / sim.mean() - 1 for k in ("time_ratio_theory", "time_ratio_gradient_flow"))
        print(f"{p['sigma_ratio']:5.1f} {p['rho']:+6.3f} | {sim.mean():9.3f} ±{sim.std():6.3f} "
              f"{p['time_ratio_theory']:8.3f} {e:+7.2%} | {p['time_ratio_gradient_flow']:9.3f} "
              f"{g:+7.1%} | {np.mean(p['misattribution_sim']):+8.4f} "
              f"{p['misattribution_theory']:+7.4f}" + ("  (tie)" if p["tie"] else ""))
    for text, key, f in (("theory vs simulation (sA/sB != 1): median error", "theory", ".2%"),
                         ("gradient-flow formula vs simulation: median", "gradient_flow", ".1%"),
                         ("eq. (9) as printed vs simulation: median", "eq9", ".1%")):
        e = s[f"time_ratio_{key}_rel_error"]
        print(f"time ratio, {text} {e['median']:{f}}, max {e['max']:{f}}")
    print(f"mis-attribution: max |theory - simulation| = {s['misattribution_abs_error_max']:.4f}")
    relu = s["relu_time_ratio_theory_rel_error"]
    paper = s["relu_time_ratio_vs_paper_line_rel_error"]
    print(f"ReLU time ratio, dlnfusion's ReLU prediction vs simulation: median "
          f"{relu['median']:.2%}, max {relu['max']:.2%}; the paper's linear theory line: median "
          f"{paper['median']:.1%}, max {paper['max']:.1%}; ReLU mis-attribution: max |theory - "
          f"simulation| = {s['relu_misattribution_abs_error_max']:.4f}")
    if s["tie_points_max_deviation_from_1"] is not None:
        print(f"tie points (sA/sB = 1): max |t_B/t_A - 1| = "
              f"{s['tie_points_max_deviation_from_1']:.3f}")
