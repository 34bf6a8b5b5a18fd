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

Every number comes from a sweep (:mod:`dlnfusion.sweep`), saved under
``out/zhang2024-fig6/{quick,full}/<sweep>``: a re-run of an interrupted figure resumes where it
stopped.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, init_batch, theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, theory_vs_sim
from dlnfusion.sweep import CAVEAT_SEPARATOR, Predict, Reduced, Sweep, Train

from ._output import write_outputs

ID = "zhang2024-fig6"
TITLE = "Figure 6: time ratio of four-layer networks against fusion layer, rho, sigma ratio, u0"

DEPTH = 4
FUSION_LAYERS = (1, 2, 3, 4)
WIDTH = 100
QUICK_WIDTH = 32   # quick: narrower networks (the same pipeline, about twice as fast)
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
#: quick: every QUICK_STRIDE-th point of each panel's grids (the same pipeline, coarser grids).
QUICK_STRIDE = 2
#: A panel's parameter as the sweeps name it (the JSON keeps "init_scale").
_KEY = {"rho": "rho", "sigma_ratio": "sigma_ratio", "init_scale": "scale"}


def _network(fusion_layer, width):
    return NetworkSpec.fusion(DEPTH, fusion_layer, width=width)


def _stats(sigma_ratio, rho):
    return Stats.scalar_toy(sigma_ratio, 1.0, rho)


@lru_cache(maxsize=None)
def _unit_seeds(fusion_layer, seed, width):
    """A seed's alignment numbers at scale 1 (the frobenius scheme is linear in u0)."""
    spec = NetworkSpec.fusion(DEPTH, fusion_layer, width=width)
    return th.alignment_seeds(spec, init_batch(spec, [seed], "frobenius", 1.0))[0]


def _closed_form(fusion_layer, sigma_ratio, rho, scale, seed, width):
    """theory.random_init_times from the seed's initial norms (L_f = 1: one transition)."""
    if fusion_layer == 1:
        return {"t_A": np.nan, "t_B": np.nan, "ratio": np.nan}
    p = th.random_init_times(_stats(sigma_ratio, rho), DEPTH, fusion_layer, scale, width, LR,
                             weights=scale * _unit_seeds(fusion_layer, seed, width))
    return {"t_A": p.t_A, "t_B": p.t_B, "ratio": p.ratio}


def _leading_order(fusion_layer, sigma_ratio, rho, scale):
    return th.time_ratio_leading_order(_stats(sigma_ratio, rho), DEPTH, fusion_layer, scale)


def _point_theory(fusion_layer, sigma_ratio, rho, scale, width):
    """The leading order and the closed form's expectation over the initialization's laws."""
    st = _stats(sigma_ratio, rho)
    lo = th.time_ratio_leading_order(st, DEPTH, fusion_layer, scale)
    ex = th.random_init_times(st, DEPTH, fusion_layer, scale, width, LR) \
        if fusion_layer > 1 else None
    return {"leading_order": lo.value, "leading_order_caveats": lo.caveats,
            "expected": ex.ratio if ex else 1.0, "expected_valid": ex.valid if ex else True,
            "expected_caveats": ex.caveats if ex else ("early fusion: one transition",)}


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name."""
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    train = {"lr": LR, "scheme": "frobenius", "steps": MAX_STEPS, "stop_loss": STOP_LOSS,
             "record_every": 10}
    base = {"sigma_ratio": 2.0, "rho": 0.0, "scale": U0, "width": QUICK_WIDTH if quick else WIDTH}
    out = {"a": Sweep({"fusion_layer": FUSION_LAYERS}, Train(_stats, _network),
                      {**train, **base}, seeds[:1]),
           "a_theory": Sweep({"fusion_layer": FUSION_LAYERS},
                             Reduced(_stats, _network, record=True), {**train, **base}, seeds[:1])}
    stride = QUICK_STRIDE if quick else 1
    for panel, cfg in PANELS.items():
        cfg = {**cfg, "values": cfg["values"][::stride], "line": cfg["line"][::stride]}
        key = _KEY[cfg["param"]]
        rest = {k: v for k, v in base.items() if k != key}
        for kind, xs in (("values", cfg["values"]), ("line", cfg["line"])):
            grid = {"fusion_layer": FUSION_LAYERS, key: xs}
            out[f"{panel}_{kind}_closed_form"] = Sweep(grid, Predict(_closed_form), rest, seeds)
            out[f"{panel}_{kind}_theory"] = Sweep(
                grid, Predict(_point_theory), rest) if kind == "values" else Sweep(
                grid, Predict(_leading_order), {k: v for k, v in rest.items() if k != "width"})
        out[f"{panel}_sim"] = Sweep({"fusion_layer": FUSION_LAYERS, key: cfg["values"]},
                                    Train(_stats, _network, predict=True, record=False),
                                    {**train, **rest}, seeds)
        out[f"{panel}_line"] = Sweep({"fusion_layer": FUSION_LAYERS, key: cfg["line"]},
                                     Reduced(_stats, _network), {**train, **rest}, seeds)
    return out


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def _list(a):
    return [float(v) for v in np.ravel(a)]


def _points(ds) -> list:
    points = []
    for Lf in FUSION_LAYERS:
        for panel, cfg in PANELS.items():
            key = _KEY[cfg["param"]]
            sim, cf, pt = (ds[f"{panel}_{k}"] for k in ("sim", "values_closed_form",
                                                        "values_theory"))
            for x in sim[key].values:
                at = {"fusion_layer": Lf, key: x}
                s, c, t = sim.sel(at), cf.sel(at), pt.sel(at).isel(seed=0)
                one = slice(0, 1) if Lf == 1 else slice(None)   # early fusion: one NaN
                conf = {"sigma_ratio": 2.0, "rho": 0.0, "init_scale": U0, cfg["param"]: float(x)}
                points.append({
                    "panel": panel, "fusion_layer": Lf, "rho": conf["rho"],
                    "sigma_ratio": conf["sigma_ratio"], "init_scale": conf["init_scale"],
                    "time_ratio_leading_order": float(t.leading_order),
                    "time_ratio_theory": float(np.nanmean(s.time_ratio_predicted)),
                    "time_ratio_theory_per_seed": _list(s.time_ratio_predicted),
                    "time_ratio_closed_form": float(np.mean(c.ratio)) if Lf > 1 else 1.0,
                    "time_ratio_closed_form_per_seed": _list(c.ratio[one]),
                    "t_A_closed_form": _list(c.t_A[one]), "t_B_closed_form": _list(c.t_B[one]),
                    "time_ratio_closed_form_expected": float(t.expected),
                    "closed_form_valid": bool(t.expected_valid),
                    "closed_form_caveats": _caveats(t.expected_caveats),
                    "time_ratio_sim": _list(s.time_ratio), "t_A_sim": _list(s.t_A),
                    "t_B_sim": _list(s.t_B), "t_A_theory": _list(s.t_A_predicted),
                    "t_B_theory": _list(s.t_B_predicted),
                    "leading_order_caveats": _caveats(t.leading_order_caveats),
                    "status": [str(v) for v in s.status.values]})
    return points


def _caveats(da) -> list:
    text = str(da.values)
    return [c for c in text.split(CAVEAT_SEPARATOR) if c]


def _curves(ds) -> dict:
    curves = {}
    for panel, cfg in PANELS.items():
        for Lf in FUSION_LAYERS:
            cf = ds[f"{panel}_line_closed_form"].sel(fusion_layer=Lf).ratio
            curves[(panel, Lf)] = {
                "x": ds[f"{panel}_line"][_KEY[cfg["param"]]].values,
                "theory": ds[f"{panel}_line"].sel(fusion_layer=Lf).time_ratio.mean("seed").values,
                "closed_form": cf.mean("seed").values if Lf > 1 else np.ones(len(cf[_KEY[cfg["param"]]])),
                "leading_order": ds[f"{panel}_line_theory"].sel(fusion_layer=Lf)
                .value.isel(seed=0).values}
    return curves


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    points = _points(ds)
    summary = _summary(points)
    payload = {
        "figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 6",
        "parameters": {"depth": DEPTH, "fusion_layers": list(FUSION_LAYERS), "width": QUICK_WIDTH if quick else WIDTH,
                       "lr": LR, "seeds": [int(s) for s in ds["b_sim"].seed.values],
                       "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS, "init": "frobenius",
                       "u0": U0, "teacher": [1.0, 1.0], "sigma_b": 1.0,
                       "panels": {k: {"param": v["param"],
                                      "values": ds[f"{k}_sim"][_KEY[v["param"]]].values.tolist()}
                                  for k, v in PANELS.items()}},
        "points": points, "summary": summary,
    }
    result = write_outputs(out, ID, payload, lambda stem: _figure(points, _curves(ds), ds, stem),
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


def _figure(points, curves, ds, stem):
    colors = {Lf: PALETTE[i + 1] for i, Lf in enumerate(FUSION_LAYERS)}
    labels = {"b": r"Correlation coefficient $\rho$",
              "c": r"Variance ratio $\sigma_A/\sigma_B$", "d": r"Initialization scale $u_0$"}
    with paper_style():
        fig, axes = new_figure(ncols=4, width=6.9, height=2.1)
        ax = axes[0, 0]
        for Lf in FUSION_LAYERS:
            ta, pa = (ds[k].sel(fusion_layer=Lf).isel(seed=0) for k in ("a", "a_theory"))
            ax.plot(ta.time, ta.loss, color=colors[Lf], lw=1.2, label=fr"$L_f={Lf}$")
            ax.plot(pa.time, pa.loss, color="black", lw=0.6, ls=(0, (2, 2)))
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
