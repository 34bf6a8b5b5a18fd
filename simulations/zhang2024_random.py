"""Random covariances: the two-layer time ratio on generic correlated vector modalities (the
authors' "random sweep" for Zhang, Latham & Saxe 2024).

x ∈ R^20 split into two modalities of 10 dimensions, Σ ~ inverse-Wishart, two-layer late
fusion trained by gradient descent from small random weights. (a) The simulated t_B/t_A against
eq. (9) corrected (gradient flow and gradient-descent rates), the same at finite u0 with the
turned mode, and dlnfusion's mode reduction of each run; points outside the theory's
assumptions (decided before simulating) are crosses. (b) The leading order's median error
against the initialization scale. Saved under ``out/zhang2024-random/{quick,full}/<sweep>``;
protocol and numbers: docs/figures/zhang2024-random.md.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.compare import error_stats, point_errors, unimodal_run_notes
from dlnfusion.plot import PALETTE, identity_panel, new_figure, paper_style, save
from dlnfusion.sweep import CAVEAT_SEPARATOR, Predict, Reduced, Sweep, Train

from ._output import run_sweeps, write_outputs

ID = "zhang2024-random"
TITLE = "Random covariances: two-layer time ratio, theory vs simulation"
DIM, WIDTH, INIT_STD, LR, MAX_STEPS, STOP_LOSS = 20, 100, 1e-9, 0.04, 40_000, 1e-4
N_COV, QUICK_N_COV = 100, 25
SEEDS, QUICK_SEEDS = (0, 1), (0,)
SCAN_STDS = (1e-6, 1e-9, 1e-15, 1e-30, 1e-60)
# quick: the first 10 covariances, which all converge within ~18,000 steps (covariance 17
# never does, and would hold every run of the scan's batch for SCAN_MAX_STEPS)
SCAN_N_COV, QUICK_SCAN_N_COV, SCAN_MAX_STEPS = 30, 10, 400_000
PREDICTIONS = ("theory", "gradient_descent", "gradient_flow", "crossover")


def _stats(cov):
    return Stats.random(dim=DIM, seed=cov)


def _network():
    return NetworkSpec.fusion(2, 2, width=WIDTH, input_dims=(DIM // 2, DIM - DIM // 2))


def _theory(cov, scale, steps):
    return th.timescales.leading_order_ratios(_stats(cov), scale, WIDTH, LR, steps, STOP_LOSS)


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name."""
    covs = range(QUICK_N_COV if quick else N_COV)
    train = {"lr": LR, "stop_loss": STOP_LOSS}
    scan = {"scale": SCAN_STDS, "cov": range(QUICK_SCAN_N_COV if quick else SCAN_N_COV)}
    sim = {**train, "scale": INIT_STD, "steps": MAX_STEPS, "record_every": 100}
    seeds = QUICK_SEEDS if quick else SEEDS
    return {
        "sim": Sweep({"cov": covs}, Train(_stats, _network, record=False), sim, seeds),
        "reduced": Sweep({"cov": covs}, Reduced(_stats, _network, basis="modes"), sim, seeds),
        "theory": Sweep({"cov": covs}, Predict(_theory), {"scale": INIT_STD, "steps": MAX_STEPS}),
        "scan_sim": Sweep(scan, Train(_stats, _network, record=False),
                          {**train, "steps": SCAN_MAX_STEPS, "record_every": 1000}),
        "scan_theory": Sweep(scan, Predict(_theory), {"steps": SCAN_MAX_STEPS}),
    }


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    return run_sweeps(sweeps(quick), out, ID, quick)


def _split(text) -> list:
    return [c for c in str(text).split(CAVEAT_SEPARATOR) if c]


def _points(sim, reduced, theory) -> list:
    points = []
    for i in sim.cov.values:
        s, r, t = sim.sel(cov=i), reduced.sel(cov=i), theory.sel(cov=i).isel(seed=0)
        flags = _split(t.flags.values)
        points.append({
            "seed": int(i), "k": float(t.k), "cos_theta": float(t.cos_theta),
            "time_ratio_sim": [float(v) for v in s.time_ratio.values],
            "time_ratio_gradient_flow": float(t.gradient_flow),
            "time_ratio_gradient_descent": float(t.gradient_descent),
            "time_ratio_crossover": float(t.crossover), "crossover_valid": bool(t.crossover_valid),
            "crossover_caveats": _split(t.crossover_caveats.values),
            "time_ratio_theory": float(np.mean(r.time_ratio.values)),
            "time_ratio_theory_per_seed": [float(v) for v in r.time_ratio.values],
            "status": [str(v) for v in s.status.values], "inside_assumptions": not flags,
            "flags": flags,
            "simulation_notes": unimodal_run_notes(s, str(t.first.values), MAX_STEPS)})
    return points


def _scan(sim, theory) -> list:
    """Leading-order error against the initialization scale (one seed per covariance), over the
    covariances inside the assumptions at that scale whose simulated ratio is defined."""
    rows = []
    for std in SCAN_STDS:
        s, t = sim.sel(scale=std).isel(seed=0), theory.sel(scale=std).isel(seed=0)
        ratio = s.time_ratio.values
        keep = (t.flags.values == "") & np.isfinite(ratio)
        errors = {k: np.abs(t[k].values[keep] / ratio[keep] - 1) for k in PREDICTIONS[1:]}
        rows.append({"init_std": std, "ln_1_over_u0": float(np.log(1 / (std * np.sqrt(WIDTH)))),
                     "n": int(keep.sum()),
                     **{f"{k}_median": error_stats(e)["median"] for k, e in errors.items()}})
    return rows


def _summary(points) -> dict:
    inside = [p for p in points if p["inside_assumptions"]]
    # Inside points whose simulated ratio is undefined (t_B never reached) are counted, not
    # dropped silently; the errors are over the others.
    defined = [p for p in inside if np.all(np.isfinite(p["time_ratio_sim"]))]
    out = {"inside": len(inside), "outside": len(points) - len(inside),
           "inside_with_undefined_simulated_ratio": len(inside) - len(defined)}
    for key in PREDICTIONS:
        out[key] = error_stats(point_errors(defined, f"time_ratio_{key}", "time_ratio_sim"))
    sharp = [p for p in defined if p["crossover_valid"]]
    gd = error_stats(point_errors(sharp, "time_ratio_gradient_descent", "time_ratio_sim"))
    out["crossover_where_sharp_turn"] = {
        "n": len(sharp), **error_stats(point_errors(sharp, "time_ratio_crossover",
                                                    "time_ratio_sim")),
        "gradient_descent_median": gd["median"]}
    flags = [f.split(":")[0] for p in points for f in p["flags"]]
    notes = [n for p in inside for n in p["simulation_notes"]]
    out["flag_counts"] = {f: flags.count(f) for f in dict.fromkeys(flags)}
    out["inside_but_simulation_outside"] = {n: notes.count(n) for n in dict.fromkeys(notes)}
    return out


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    points = _points(ds["sim"], ds["reduced"], ds["theory"])
    summary, scan = _summary(points), _scan(ds["scan_sim"], ds["scan_theory"])
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, random sweep "
               "(authors' implementation)",
               "parameters": {"dim": DIM, "width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS,
                              "covariances": len(points),
                              "seeds": [int(s) for s in ds["sim"].seed.values],
                              "inverse_wishart_df": DIM + 2, "scale_factor": 2.0},
               "points": points, "summary": summary, "init_scale_scan": scan}
    result = write_outputs(out, ID, payload, lambda stem: _figure(points, scan, stem),
                           summary)
    print(f"{summary['inside']} of {len(points)} covariances inside the assumptions; flagged: "
          f"{summary['flag_counts']}; inside, the simulation showed: "
          f"{summary['inside_but_simulation_outside'] or 'nothing unexpected'}")
    print("median relative error: " + ", ".join(f"{k} {summary[k]['median']:.2%}"
                                                for k in PREDICTIONS))
    print("leading order (GD rates), median error by init std: " + ", ".join(
        f"{r['init_std']:.0e}: {r['gradient_descent_median']:.1%}" for r in scan))
    return result


SERIES = (("gradient_flow", "eq. (9), gradient flow", PALETTE[2], "s"),
          ("gradient_descent", "eq. (9), GD rates", PALETTE[1], "^"),
          ("crossover", "eq. (9) with the turned mode", PALETTE[4], "D"),
          ("theory", "mode reduction (dlnfusion)", PALETTE[0], "o"))


def _figure(points, scan, stem):
    from matplotlib.ticker import NullFormatter, PercentFormatter, ScalarFormatter

    with paper_style():
        fig, axes = new_figure(ncols=2, width=6.9, height=2.7)
        ax = axes[0, 0]
        sim = np.array([np.mean(p["time_ratio_sim"]) for p in points])
        inside = np.array([p["inside_assumptions"] for p in points])
        for key, label, color, marker in SERIES:
            pred = np.array([p[f"time_ratio_{key}"] for p in points])
            ax.scatter(pred[inside], sim[inside], s=10, marker=marker, facecolors="none",
                       edgecolors=color, linewidths=0.7, label=label)
            ax.scatter(pred[~inside], sim[~inside], s=12, marker="x", color=color,
                       linewidths=0.7)
        identity_panel(ax, 0.5, np.nanpercentile(sim[np.isfinite(sim)], 98) * 1.3,
                       r"predicted $t_B/t_A$", r"simulated $t_B/t_A$", panel="a")
        ax.text(0.98, 0.02, "× outside the assumptions", transform=ax.transAxes, ha="right",
                fontsize=6, color="0.3")
        ax = axes[0, 1]
        x = [r["ln_1_over_u0"] for r in scan]
        for key, label, color, marker in SERIES[:3]:
            ax.plot(x, [r[f"{key}_median"] for r in scan], f"{marker}-", color=color,
                    mfc="white", label=label + (", GD rates" if key == "crossover" else ""),
                    **({"ms": 3.5} if key == "crossover" else {}))
        ax.set(xscale="log", yscale="log", xticks=[15, 20, 30, 50, 70, 100, 140],
               yticks=[0.02, 0.05, 0.1, 0.2, 0.3], ylabel="median relative error",
               xlabel=r"$\ln(1/u_0)$, $u_0$ = first-layer norm at initialization")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=6)
        ax.text(-0.18, 1.02, "b", transform=ax.transAxes, fontweight="bold", fontsize=9)
        return save(fig, stem)
