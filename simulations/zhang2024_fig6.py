"""Zhang, Latham & Saxe (2024), Figure 6: the unimodal phase in four-layer fusion networks.

Fusion layer L_f = 1…4, random weights of scale u0: (a) loss trajectories; t_B/t_A against
(b) ρ, (c) σ_A/σ_B, (d) u0, simulated and predicted (each run's reduced dynamics, the closed
form for random weights, the paper's leading order). Sweeps: ``out/zhang2024-fig6/{quick,full}``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.compare import caveat_list, error_stats, point_errors
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, style_legend, theory_vs_sim
from dlnfusion.sweep import RandomInitTimes, Reduced, Sweep, Train

from ._output import run_sweeps, write_outputs

ID = "zhang2024-fig6"
TITLE = "Figure 6: time ratio of four-layer networks against fusion layer, rho, sigma ratio, u0"

DEPTH, FUSION_LAYERS = 4, (1, 2, 3, 4)
WIDTH, QUICK_WIDTH = 100, 32   # quick: narrower networks (the same pipeline, twice as fast)
LR, U0 = 0.04, 0.1
SEEDS, QUICK_SEEDS = 5, 2
MAX_STEPS, STOP_LOSS = 100_000, 1e-4
PANELS = {
    "b": {"param": "rho", "values": np.linspace(-0.9, 0.9, 9),
          "line": np.linspace(-0.9, 0.9, 37)},
    "c": {"param": "sigma_ratio", "values": np.linspace(1.2, 2.8, 5),
          "line": np.linspace(1.1, 2.9, 19)},
    "d": {"param": "init_scale", "values": np.linspace(0.03, 0.18, 5),
          "line": np.linspace(0.03, 0.18, 16)}}
#: quick: this many evenly spread points of each panel's grids, the same number in every panel
#: so that the panels' runs share their compiled calls (each batch size compiles anew).
QUICK_POINTS = {"values": 3, "line": 7}
#: A panel's parameter as the sweeps name it (the JSON keeps "init_scale").
_KEY = {"rho": "rho", "sigma_ratio": "sigma_ratio", "init_scale": "scale"}
_LABELS = {"b": r"Correlation coefficient $\rho$", "c": r"Variance ratio $\sigma_A/\sigma_B$",
           "d": r"Initialization scale $u_0$"}
#: Panel (a) shows the runs of panel c at σ_A/σ_B = 2, the other panels' base configuration.
PANEL_A = ("c", 2.0)


def _network(fusion_layer, width):
    return NetworkSpec.fusion(DEPTH, fusion_layer, width=width)


def _stats(sigma_ratio, rho):
    return Stats.scalar_toy(sigma_ratio, 1.0, rho)


def _grid(values, n):
    """``values``, or n of them evenly spread (first and last kept) when n is smaller."""
    spread = np.round(np.linspace(0, len(values) - 1, n or 1)).astype(int)
    return values[spread] if n and len(values) > n else values


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name: per panel the simulations, the line, closed forms."""
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    train = {"lr": LR, "scheme": "frobenius", "steps": MAX_STEPS, "stop_loss": STOP_LOSS,
             "record_every": 10}
    base = {"sigma_ratio": 2.0, "rho": 0.0, "scale": U0, "width": QUICK_WIDTH if quick else WIDTH}
    out = {}
    for panel, cfg in PANELS.items():
        key = _KEY[cfg["param"]]
        fixed = {**train, **{k: v for k, v in base.items() if k != key}}
        values, line = ({"fusion_layer": FUSION_LAYERS,
                         key: _grid(cfg[kind], quick and QUICK_POINTS[kind])}
                        for kind in ("values", "line"))
        record = panel == PANEL_A[0]
        runners = {"sim": (values, Train(_stats, _network, predict=True, record=record)),
                   "line": (line, Reduced(_stats, _network, record=record)),
                   "closed_form": (values, RandomInitTimes(_stats, _network)),
                   "line_closed_form": (line, RandomInitTimes(_stats, _network, expected=False))}
        out.update({f"{panel}_{k}": Sweep(grid, runner, fixed, seeds)
                    for k, (grid, runner) in runners.items()})
    return out


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    return run_sweeps(sweeps(quick), out, ID, quick)


#: A point's JSON entries (one per seed) and the variables of the simulations they hold, and
#: of the closed form from each seed's initial weights (early fusion: its one NaN).
_SIM = {"time_ratio_sim": "time_ratio", "t_A_sim": "t_A", "t_B_sim": "t_B",
        "time_ratio_theory_per_seed": "time_ratio_predicted", "t_A_theory": "t_A_predicted",
        "t_B_theory": "t_B_predicted"}
_CLOSED = {"time_ratio_closed_form_per_seed": "time_ratio", "t_A_closed_form": "t_A",
           "t_B_closed_form": "t_B"}


def _points(ds) -> list:
    points = []
    for Lf in FUSION_LAYERS:
        for panel, cfg in PANELS.items():
            key = _KEY[cfg["param"]]
            for x in ds[f"{panel}_sim"][key].values:
                s, c = (ds[f"{panel}_{k}"].sel(fusion_layer=Lf, **{key: x})
                        for k in ("sim", "closed_form"))
                points.append({
                    "panel": panel, "fusion_layer": Lf, "rho": 0.0, "sigma_ratio": 2.0,
                    "init_scale": U0, cfg["param"]: float(x),
                    **{k: s[v].values for k, v in _SIM.items()},
                    **{k: c[v].values[:1 if Lf == 1 else None] for k, v in _CLOSED.items()},
                    "time_ratio_theory": float(np.nanmean(s.time_ratio_predicted)),
                    "time_ratio_closed_form": float(np.mean(c.time_ratio)) if Lf > 1 else 1.0,
                    "time_ratio_closed_form_expected": float(c.time_ratio_expected),
                    "closed_form_valid": bool(c.time_ratio_expected_valid),
                    "closed_form_caveats": caveat_list(c.time_ratio_expected_caveats),
                    "time_ratio_leading_order": float(c.time_ratio_leading_order),
                    "leading_order_caveats": caveat_list(c.time_ratio_leading_order_caveats),
                    "status": [str(v) for v in s.status.values]})
    return points


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    points = _points(ds)
    summary = _summary(points)
    payload = {
        "figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 6",
        "parameters": {"depth": DEPTH, "fusion_layers": list(FUSION_LAYERS),
                       "width": QUICK_WIDTH if quick else WIDTH, "lr": LR,
                       "seeds": [int(s) for s in ds["b_sim"].seed.values],
                       "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS, "init": "frobenius",
                       "u0": U0, "teacher": [1.0, 1.0], "sigma_b": 1.0,
                       "panels": {k: {"param": v["param"],
                                      "values": ds[f"{k}_sim"][_KEY[v["param"]]].values.tolist()}
                                  for k, v in PANELS.items()}},
        "points": points, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(ds, stem), summary)
    for panel in PANELS:
        v = summary[f"{panel}/all"]
        print(f"panel {panel}: theory median {v['theory_median']:.2%}, max {v['theory_max']:.2%}; "
              f"closed form median {v['closed_form_median']:.1%}, max {v['closed_form_max']:.1%}")
    return result


def _summary(points) -> dict:
    """Each prediction's relative error (median, max) per panel, by fusion layer and overall."""
    names = ("theory", "closed_form", "closed_form_expected", "leading_order")
    out = {}
    for panel in PANELS:
        groups = {**{f"Lf={Lf}": (Lf,) for Lf in FUSION_LAYERS}, "all": FUSION_LAYERS}
        for group, layers in groups.items():
            sel = [p for p in points if p["panel"] == panel and p["fusion_layer"] in layers]
            errors = out.setdefault(f"{panel}/{group}", {})
            for name in names[:2] if group == "all" else names:
                e = error_stats(point_errors(sel, f"time_ratio_{name}", "time_ratio_sim"))
                errors.update({f"{name}_median": e["median"], f"{name}_max": e["max"]})
    out["all_converged"] = all(s == "converged" for p in points for s in p["status"])
    return out


def _figure(ds, stem):
    colors = {Lf: PALETTE[i + 1] for i, Lf in enumerate(FUSION_LAYERS)}
    panel, x = PANEL_A
    with paper_style():
        fig, axes = new_figure(ncols=4, width=6.9, height=2.1)
        ax = axes[0, 0]
        for Lf in FUSION_LAYERS:
            at = {"fusion_layer": Lf, _KEY[PANELS[panel]["param"]]: x}
            ta, pa = (ds[f"{panel}_{k}"].sel(at).isel(seed=0) for k in ("sim", "line"))
            ax.plot(ta.time, ta.loss, color=colors[Lf], lw=1.2, label=fr"$L_f={Lf}$")
            ax.plot(pa.time, pa.loss, color="black", lw=0.6, ls=(0, (2, 2)))
        ax.axhline(th.landscape.saddle_loss(_stats(2.0, 0.0), 0), color="0.6", lw=0.6, ls=":")
        ax.set(xscale="log", xlim=(100, None), xlabel="Step", ylabel="Loss")
        ax.legend(fontsize=6, loc="lower left")
        ax.text(-0.3, 1.02, "a", transform=ax.transAxes, fontweight="bold", fontsize=9)
        for i, (panel, cfg) in enumerate(PANELS.items()):
            key, lines, pts = _KEY[cfg["param"]], [], []
            for Lf in FUSION_LAYERS:
                line, cf = (ds[f"{panel}_{k}"].sel(fusion_layer=Lf)
                            for k in ("line", "line_closed_form"))
                closed = cf.time_ratio.mean("seed") if Lf > 1 else np.ones(len(cf[key]))
                lines += [{"y": line.time_ratio.mean("seed").values, "color": colors[Lf]},
                          {"y": closed, "color": colors[Lf], "style": ":", "width": 1.0},
                          {"y": cf.time_ratio_leading_order.values, "color": colors[Lf],
                           "style": "--", "width": 0.8}]
                sim = ds[f"{panel}_sim"].sel(fusion_layer=Lf).time_ratio
                pts.append({"mean": sim.mean("seed"), "std": sim.std("seed"), "color": colors[Lf]})
            theory_vs_sim(axes[0, i + 1], ds[f"{panel}_line"][key].values, lines,
                          ds[f"{panel}_sim"][key].values, pts, _LABELS[panel],
                          r"Time ratio $t_B/t_A$" if i == 0 else "", logy=(panel == "b"),
                          panel=panel)
        entries = [("-", "theory (reduced dynamics, GD)"), (":", "closed form, random weights"),
                   ("--", "leading order in $u_0$"), ("o", "simulation"),
                   ((0, (2, 2)), "(a) predicted loss", {"color": "black", "lw": 0.6})]
        style_legend(fig, entries, ncol=5, fontsize=6)
        return save(fig, stem)
