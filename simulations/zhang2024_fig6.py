"""Zhang, Latham & Saxe (2024), Figure 6: the unimodal phase in four-layer fusion networks.

Four-layer linear networks with fusion layer L_f ∈ {1, 2, 3, 4}, width 100, y = x_A + x_B,
σ_B = 1, gradient descent with η = 0.04 until the loss is below 1e-4 (at most 100,000 steps),
initialization of scale u0 as in the authors' implementation (pre-fusion matrices of
Frobenius norm ≈ u0, post-fusion ≈ √2·u0).

(a) loss trajectories for Σ = diag(4, 1), u0 = 0.1, with the reduced-dynamics prediction;
(b) time ratio against ρ ∈ [−0.9, 0.9], σ_A/σ_B = 2, u0 = 0.1;
(c) against σ_A/σ_B ∈ [1.2, 2.8], ρ = 0, u0 = 0.1;
(d) against u0 ∈ [0.03, 0.18], σ_A/σ_B = 2, ρ = 0.

Lines: dlnfusion's prediction for the simulated training (signal-subspace reduction of each
seed's initial weights, integrated with the same learning rate; solid), dlnfusion's closed
form for random weights (`theory.random_init_times` from each seed's initial norms, seed
mean; dotted) and the paper's leading-order formula, eqs. (9), (12), (57) corrected (dashed).
Markers: simulations, mean ± s.d. over seeds. The JSON also has the closed form averaged over
the initialization's laws (`time_ratio_closed_form_expected`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, simulate, theory as th
from dlnfusion.compare import measure_unimodal_phase, predict_unimodal_phase
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, theory_vs_sim, trajectory_panel

from ._output import write_outputs

ID = "zhang2024-fig6"
TITLE = "Figure 6: time ratio of four-layer networks against fusion layer, rho, sigma ratio, u0"

DEPTH = 4
FUSION_LAYERS = (1, 2, 3, 4)
WIDTH = 100
LR = 0.04
SEEDS, QUICK_SEEDS = 5, 2
MAX_STEPS = 100_000
STOP_LOSS = 1e-4
U0 = 0.1
PANELS = {
    "b": {"param": "rho", "values": np.linspace(-0.9, 0.9, 9),
          "line": np.linspace(-0.9, 0.9, 37)},
    "c": {"param": "sigma_ratio", "values": np.linspace(1.2, 2.8, 5),
          "line": np.linspace(1.1, 2.9, 19)},
    "d": {"param": "init_scale", "values": np.linspace(0.03, 0.18, 5),
          "line": np.linspace(0.03, 0.18, 16)},
}


def _config(panel: str, value: float):
    """(sigma_ratio, rho, u0) of one point of a panel."""
    if panel == "b":
        return 2.0, float(value), U0
    if panel == "c":
        return float(value), 0.0, U0
    return 2.0, 0.0, float(value)


def _train_kw():
    return dict(steps=MAX_STEPS, stop_loss=STOP_LOSS, record_every=10)


def _prediction_curve(spec, params_unit, panel, xs):
    """Seed-mean reduced prediction along a panel's x axis (params at scale 1, scaled)."""
    import jax

    n_seeds = np.shape(params_unit.post[0] if params_unit.post else
                       params_unit.branches[0][0])[0]
    stats, scaled = [], []
    for x in xs:
        r, rho, u0 = _config(panel, x)
        stats += [Stats.scalar_toy(r, 1.0, rho)] * n_seeds
        scaled.append(jax.tree_util.tree_map(lambda a: u0 * a, params_unit))
    params = jax.tree_util.tree_map(lambda *a: np.concatenate(a), *scaled)
    meas, _ = predict_unimodal_phase(spec, stats, params, LR, **_train_kw())
    return np.nanmean(meas.time_ratio.reshape(len(xs), n_seeds), axis=1)


def _closed_form(spec, seeds_unit, grid):
    """Per-seed closed-form t_A, t_B, ratio at each (sigma_ratio, rho, u0) of ``grid``, from
    the seeds' initial norms at scale 1 (the frobenius scheme is linear in u0)."""
    Lf = spec.fusion_layer
    if Lf == 1:
        return np.full((len(grid), 1, 3), np.nan)
    out = np.full((len(grid), len(seeds_unit), 3), np.nan)
    for c, (r, rho, u0) in enumerate(grid):
        st = Stats.scalar_toy(r, 1.0, rho)
        for s, w in enumerate(seeds_unit):
            p = th.random_init_times(st, DEPTH, Lf, u0, WIDTH, LR, weights=u0 * w)
            out[c, s] = p.t_A, p.t_B, p.ratio
    return out


def run(out: Path, quick: bool = False) -> dict:
    import jax

    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    points, curves, status = [], {}, []
    traj_a = {}
    for Lf in FUSION_LAYERS:
        spec = NetworkSpec.fusion(DEPTH, Lf, width=WIDTH)
        # Panel (a): one run per fusion layer, with its prediction.
        st_a = Stats.scalar_toy(2.0, 1.0, 0.0)
        ta = simulate(spec, st_a, seeds=seeds[:1], scheme="frobenius", scale=U0, lr=LR,
                      **_train_kw())
        _, pa = predict_unimodal_phase(spec, st_a, ta.initial_params, LR, **_train_kw())
        traj_a[Lf] = (ta, pa)
        unit = None
        for panel, cfg in PANELS.items():
            grid = [_config(panel, v) for v in cfg["values"]]
            stats = [Stats.scalar_toy(r, 1.0, rho) for r, rho, _ in grid]
            traj = simulate(spec, stats, seeds=seeds, scheme="frobenius",
                            scale=[u0 for _, _, u0 in grid], lr=LR, **_train_kw())
            meas = measure_unimodal_phase(traj)
            pred, _ = predict_unimodal_phase(
                spec, [s for s in stats for _ in seeds], traj.initial_params, LR, **_train_kw())
            if unit is None:  # weights at scale 1 (the frobenius scheme is linear in u0)
                unit = jax.tree_util.tree_map(lambda a: a[0] / grid[0][2], traj.initial_params)
                seeds_unit = th.alignment_seeds(spec, unit) if Lf > 1 else None
            cf = _closed_form(spec, seeds_unit, grid)
            for c, ((r, rho, u0), st) in enumerate(zip(grid, stats)):
                lo = th.time_ratio_leading_order(st, DEPTH, Lf, u0)
                ex = (th.random_init_times(st, DEPTH, Lf, u0, WIDTH, LR) if Lf > 1 else None)
                points.append({
                    "panel": panel, "fusion_layer": Lf, "rho": rho, "sigma_ratio": r,
                    "init_scale": u0,
                    "time_ratio_leading_order": lo.value,
                    "time_ratio_theory": float(np.nanmean(pred.time_ratio[c])),
                    "time_ratio_theory_per_seed": [float(v) for v in pred.time_ratio[c]],
                    "time_ratio_closed_form": (float(np.mean(cf[c, :, 2])) if Lf > 1
                                               else 1.0),
                    "time_ratio_closed_form_per_seed": [float(v) for v in cf[c, :, 2]],
                    "t_A_closed_form": [float(v) for v in cf[c, :, 0]],
                    "t_B_closed_form": [float(v) for v in cf[c, :, 1]],
                    "time_ratio_closed_form_expected": ex.ratio if ex else 1.0,
                    "closed_form_valid": ex.valid if ex else True,
                    "closed_form_caveats": list(ex.caveats) if ex else
                    ["early fusion: one transition"],
                    "time_ratio_sim": [float(v) for v in meas.time_ratio[c]],
                    "t_A_sim": [float(v) for v in meas.t_A[c]],
                    "t_B_sim": [float(v) for v in meas.t_B[c]],
                    "t_A_theory": [float(v) for v in pred.t_A[c]],
                    "t_B_theory": [float(v) for v in pred.t_B[c]],
                    "leading_order_caveats": list(lo.caveats),
                    "status": [str(s) for s in traj.status_names()[c]],
                })
            curves[(panel, Lf)] = {
                "x": cfg["line"],
                "theory": _prediction_curve(spec, unit, panel, cfg["line"]),
                "closed_form": (np.mean(_closed_form(spec, seeds_unit, [
                    _config(panel, x) for x in cfg["line"]])[:, :, 2], axis=1) if Lf > 1
                    else np.ones(len(cfg["line"]))),
                "leading_order": np.array([th.time_ratio_leading_order(
                    Stats.scalar_toy(r, 1.0, rho), DEPTH, Lf, u0).value
                    for r, rho, u0 in (_config(panel, x) for x in cfg["line"])]),
            }
    summary = _summary(points)
    payload = {
        "figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 6",
        "parameters": {"depth": DEPTH, "fusion_layers": list(FUSION_LAYERS), "width": WIDTH,
                       "lr": LR, "seeds": seeds, "max_steps": MAX_STEPS,
                       "stop_loss": STOP_LOSS, "init": "frobenius", "u0": U0,
                       "teacher": [1.0, 1.0], "sigma_b": 1.0,
                       "panels": {k: {"param": v["param"], "values": v["values"].tolist()}
                                  for k, v in PANELS.items()}},
        "points": points, "summary": summary,
    }
    result = write_outputs(out, ID, payload, lambda stem: _figure(points, curves, traj_a, stem),
                           summary)
    _print_summary(summary)
    return result


def _errors(points, key):
    return [abs(p[key] / np.mean(p["time_ratio_sim"]) - 1) for p in points]


def _summary(points) -> dict:
    out = {}
    for panel in PANELS:
        for Lf in FUSION_LAYERS:
            sel = [p for p in points if p["panel"] == panel and p["fusion_layer"] == Lf]
            e_th, e_lo = _errors(sel, "time_ratio_theory"), _errors(sel, "time_ratio_leading_order")
            e_cf = _errors(sel, "time_ratio_closed_form")
            e_ex = _errors(sel, "time_ratio_closed_form_expected")
            out[f"{panel}/Lf={Lf}"] = {
                "theory_median": float(np.median(e_th)), "theory_max": float(np.max(e_th)),
                "closed_form_median": float(np.median(e_cf)),
                "closed_form_max": float(np.max(e_cf)),
                "closed_form_expected_median": float(np.median(e_ex)),
                "closed_form_expected_max": float(np.max(e_ex)),
                "leading_order_median": float(np.median(e_lo)),
                "leading_order_max": float(np.max(e_lo))}
        sel = [p for p in points if p["panel"] == panel]
        e_th, e_cf = _errors(sel, "time_ratio_theory"), _errors(sel, "time_ratio_closed_form")
        out[f"{panel}/all"] = {"theory_median": float(np.median(e_th)),
                               "theory_max": float(np.max(e_th)),
                               "closed_form_median": float(np.median(e_cf)),
                               "closed_form_max": float(np.max(e_cf))}
    out["all_converged"] = all(s == "converged" for p in points for s in p["status"])
    return out


def _figure(points, curves, traj_a, stem):
    colors = {Lf: PALETTE[i + 1] for i, Lf in enumerate(FUSION_LAYERS)}
    labels = {"b": r"Correlation coefficient $\rho$",
              "c": r"Variance ratio $\sigma_A/\sigma_B$", "d": r"Initialization scale $u_0$"}
    with paper_style():
        fig, axes = new_figure(ncols=4, width=6.9, height=2.1)
        ax = axes[0, 0]
        for Lf in FUSION_LAYERS:
            ta, pa = traj_a[Lf]
            ax.plot(ta.time, ta.loss[0], color=colors[Lf], lw=1.2, label=fr"$L_f={Lf}$")
            ax.plot(pa.time, pa.loss[0], color="black", lw=0.6, ls=(0, (2, 2)))
        st = Stats.scalar_toy(2.0, 1.0, 0.0)
        ax.axhline(th.landscape.saddle_loss(st, 0), color="0.6", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_xlim(100, None)
        ax.set_xlabel("Step")
        ax.set_ylabel("Loss")
        ax.legend(fontsize=6, loc="lower left")
        ax.text(-0.3, 1.02, "a", transform=ax.transAxes, fontweight="bold", fontsize=9)
        for i, panel in enumerate(PANELS):
            ax = axes[0, i + 1]
            lines, pts = [], []
            for Lf in FUSION_LAYERS:
                cv = curves[(panel, Lf)]
                lines.append({"y": cv["theory"], "color": colors[Lf]})
                lines.append({"y": cv["closed_form"], "color": colors[Lf], "style": ":",
                              "width": 1.0})
                lines.append({"y": cv["leading_order"], "color": colors[Lf], "style": "--",
                              "width": 0.8})
                sel = [p for p in points if p["panel"] == panel and p["fusion_layer"] == Lf]
                pts.append({"mean": [np.mean(p["time_ratio_sim"]) for p in sel],
                            "std": [np.std(p["time_ratio_sim"]) for p in sel],
                            "color": colors[Lf]})
            param = PANELS[panel]["param"]
            xs = [p[param] for p in points if p["panel"] == panel and p["fusion_layer"] == 1]
            theory_vs_sim(ax, curves[(panel, 1)]["x"], lines, xs, pts, labels[panel],
                          r"Time ratio $t_B/t_A$" if i == 0 else "", logy=(panel == "b"),
                          panel=panel)
        from matplotlib.lines import Line2D
        handles = [Line2D([], [], color="0.3", ls="-", label="theory (reduced dynamics, GD)"),
                   Line2D([], [], color="0.3", ls=":", label="closed form, random weights"),
                   Line2D([], [], color="0.3", ls="--", label="leading order in $u_0$"),
                   Line2D([], [], color="0.3", ls="", marker="o", mfc="white",
                          label="simulation"),
                   Line2D([], [], color="black", ls=(0, (2, 2)), lw=0.6,
                          label="(a) predicted loss")]
        fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=6)
        return save(fig, stem)


def _print_summary(summary):
    print(f"{'panel':>6} {'L_f':>4} | {'theory median':>13} {'max':>7} | "
          f"{'closed form median':>18} {'max':>7} | {'leading order median':>20} {'max':>7}")
    for key, v in summary.items():
        if not isinstance(v, dict) or "leading_order_median" not in v:
            continue
        panel, lf = key.split("/")
        print(f"{panel:>6} {lf[3:]:>4} | {v['theory_median']:13.2%} {v['theory_max']:7.2%} | "
              f"{v['closed_form_median']:18.1%} {v['closed_form_max']:7.1%} | "
              f"{v['leading_order_median']:20.1%} {v['leading_order_max']:7.1%}")
    for panel in PANELS:
        v = summary[f"{panel}/all"]
        print(f"panel {panel}: theory median {v['theory_median']:.2%}, max {v['theory_max']:.2%}; "
              f"closed form median {v['closed_form_median']:.1%}, max {v['closed_form_max']:.1%}")
