"""Random covariances: the two-layer time ratio on generic correlated vector modalities.

As the authors' "random sweep": x ∈ R^20 split into two modalities of 10 dimensions,
Σ ~ inverse-Wishart(df = 22, Ψ = I with the first half of rows doubled), teacher uniform in
[−1, 1]; two-layer late fusion, width 100, N(0, (1e-9)²) weights, gradient descent η = 0.04
until the loss is below 1e-4 (at most 40,000 steps).

(a) Simulated t_B/t_A (seed mean) against four predictions: eq. (9) corrected (gradient
flow, leading order in u0), the same with gradient-descent rates, the same at finite u0 with
the angle between s_B and s̃_B (:func:`dlnfusion.theory.timescales.time_ratio_crossover`, u0 = √width ×
the entry std; a closed form that assumes a sharp turn of B's drive), and dlnfusion's mode
reduction of each run (:func:`dlnfusion.compare.predict_unimodal_phase` with
``basis="modes"``: the paper's rank-one ansatz, both signs, seeded by the actual weights,
integrated with the same learning rate). Whether a covariance lies inside the theory's
assumptions is decided from the theory alone, before simulating
(:func:`dlnfusion.theory.timescales.two_phase_assumptions`: stability at the minimum, separated
phases, budget); points outside are drawn as crosses and listed with
the reason in the JSON, and what the simulation then did is reported beside it, also for the
points inside.
(b) How the leading-order formulas approach the simulation as the initialization shrinks
(median relative error over the covariances inside the assumptions): the error is the
O(1/ln(1/u0)) remainder of the expansion.

Every number comes from a sweep (:mod:`dlnfusion.sweep`), saved under
``out/zhang2024-random/{quick,full}/<sweep>``: the simulations with the mode reduction of each
run, the theory of every covariance, and the same two for the initialization scan.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.plot import PALETTE, identity_panel, new_figure, paper_style, save
from dlnfusion.sweep import CAVEAT_SEPARATOR, Predict, Reduced, Sweep, Train

from ._output import write_outputs

ID = "zhang2024-random"
TITLE = "Random covariances: two-layer time ratio, theory vs simulation"
DIM, WIDTH, INIT_STD, LR, MAX_STEPS, STOP_LOSS = 20, 100, 1e-9, 0.04, 40_000, 1e-4
N_COV, QUICK_N_COV = 100, 25
SEEDS, QUICK_SEEDS = (0, 1), (0,)
SCAN_STDS = (1e-6, 1e-9, 1e-15, 1e-30, 1e-60)
SCAN_N_COV, SCAN_MAX_STEPS = 30, 400_000


def _stats(cov):
    return Stats.random(dim=DIM, seed=cov)


def _network():
    return NetworkSpec.fusion(2, 2, width=WIDTH, input_dims=(DIM // 2, DIM - DIM // 2))


def _theory(cov, scale, steps):
    """The theory of a covariance at an initialization std and budget, and whether it lies
    inside the two-phase analysis (decided before simulating)."""
    st = _stats(cov)
    r = th.roles(st)
    return {"k": r.k, "cos_theta": r.cos_theta, "first": st.names[r.first],
            "gradient_flow": th.time_ratio_gradient_flow(st).value,
            "gradient_descent": th.time_ratio_gradient_descent(st, LR).value,
            "crossover": th.timescales.time_ratio_crossover(st, scale * np.sqrt(WIDTH), LR),
            "flags": th.timescales.two_phase_assumptions(st, scale, WIDTH, LR, steps,
                                                         STOP_LOSS)}


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name."""
    covs = range(QUICK_N_COV if quick else N_COV)
    train = {"lr": LR, "stop_loss": STOP_LOSS}
    scan = {"scale": SCAN_STDS, "cov": range(SCAN_N_COV)}
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
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def _split(text) -> list:
    return [c for c in str(text).split(CAVEAT_SEPARATOR) if c]


def _simulation_notes(status, first, t_b, first_theory) -> list:
    """What the simulation did that the theory's assumptions exclude (reported, not used to
    select points)."""
    notes = []
    if "diverged" in status:
        notes.append("diverged")
    if "max_steps" in status:
        notes.append(f"not converged within {MAX_STEPS} steps")
    if any(f != first_theory for f in first):
        notes.append("the other modality was learned first")
    if np.any(~np.isfinite(t_b)):
        notes.append("the second modality never reached half of its final value")
    return notes


def _points(sim, reduced, theory) -> list:
    points = []
    for i in sim.cov.values:
        s, r, t = sim.sel(cov=i), reduced.sel(cov=i), theory.sel(cov=i).isel(seed=0)
        status, flags = [str(v) for v in s.status.values], _split(t.flags.values)
        points.append({
            "seed": int(i), "k": float(t.k), "cos_theta": float(t.cos_theta),
            "time_ratio_sim": [float(v) for v in s.time_ratio.values],
            "time_ratio_gradient_flow": float(t.gradient_flow),
            "time_ratio_gradient_descent": float(t.gradient_descent),
            "time_ratio_crossover": float(t.crossover), "crossover_valid": bool(t.crossover_valid),
            "crossover_caveats": _split(t.crossover_caveats.values),
            "time_ratio_theory": float(np.mean(r.time_ratio.values)),
            "time_ratio_theory_per_seed": [float(v) for v in r.time_ratio.values],
            "status": status, "inside_assumptions": not flags, "flags": flags,
            "simulation_notes": _simulation_notes(status, list(s.first.values), s.t_B.values,
                                                  str(t.first.values)),
        })
    return points


def _scan(sim, theory) -> list:
    """Leading-order error against the initialization scale (one seed per covariance), over the
    covariances inside the assumptions at that scale whose simulated ratio is defined."""
    rows = []
    for std in SCAN_STDS:
        s, t = sim.sel(scale=std).isel(seed=0), theory.sel(scale=std).isel(seed=0)
        ratio = s.time_ratio.values
        keep = (t.flags.values == "") & np.isfinite(ratio)

        def err(key):
            return float(np.median(np.abs(t[key].values[keep] / ratio[keep] - 1)))

        rows.append({"init_std": std, "ln_1_over_u0": float(np.log(1 / (std * np.sqrt(WIDTH)))),
                     "n": int(keep.sum()), "gradient_descent_median": err("gradient_descent"),
                     "gradient_flow_median": err("gradient_flow"),
                     "crossover_median": err("crossover")})
    return rows


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    points = _points(ds["sim"], ds["reduced"], ds["theory"])
    summary = _summary(points)
    scan = _scan(ds["scan_sim"], ds["scan_theory"])
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
    _print(summary, scan, len(points))
    return result


def _summary(points) -> dict:
    inside = [p for p in points if p["inside_assumptions"]]
    out = {"inside": len(inside), "outside": len(points) - len(inside)}
    # Inside points whose simulated ratio is undefined (t_B never reached) are counted, not
    # dropped silently; the errors are over the others.
    defined = [p for p in inside if np.all(np.isfinite(p["time_ratio_sim"]))]
    out["inside_with_undefined_simulated_ratio"] = len(inside) - len(defined)
    for key in ("theory", "gradient_descent", "gradient_flow", "crossover"):
        errs = [abs(p[f"time_ratio_{key}"] / np.mean(p["time_ratio_sim"]) - 1) for p in defined]
        out[key] = {"median": float(np.median(errs)), "max": float(np.max(errs))}
    sharp = [p for p in defined if p["crossover_valid"]]
    errs = [abs(p["time_ratio_crossover"] / np.mean(p["time_ratio_sim"]) - 1) for p in sharp]
    gd = [abs(p["time_ratio_gradient_descent"] / np.mean(p["time_ratio_sim"]) - 1) for p in sharp]
    out["crossover_where_sharp_turn"] = {
        "n": len(sharp), "median": float(np.median(errs)) if errs else float("nan"),
        "max": float(np.max(errs)) if errs else float("nan"),
        "gradient_descent_median": float(np.median(gd)) if gd else float("nan")}
    counts, surprises = {}, {}
    for p in points:
        for f in p["flags"]:
            key = f.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
        if p["inside_assumptions"]:
            for n in p["simulation_notes"]:
                surprises[n] = surprises.get(n, 0) + 1
    out["flag_counts"] = counts
    out["inside_but_simulation_outside"] = surprises
    return out


def _print(s, scan, n_points):
    print(f"{s['inside']} of {n_points} covariances inside the assumptions (decided before "
          f"simulating); flagged: {s['flag_counts']}; inside, the simulation showed: "
          f"{s['inside_but_simulation_outside'] or 'nothing unexpected'}")
    for key in ("theory", "gradient_descent", "gradient_flow", "crossover"):
        print(f"  {key:17s}: median relative error {s[key]['median']:.2%}, max "
              f"{s[key]['max']:.2%}")
    v = s["crossover_where_sharp_turn"]
    print(f"  crossover where its sharp turn holds ({v['n']} covariances): median "
          f"{v['median']:.2%}, max {v['max']:.2%} (eq. 9 with GD rates there: "
          f"{v['gradient_descent_median']:.2%})")
    for row in scan:
        print(f"  init std {row['init_std']:.0e}: leading order (GD rates) median error "
              f"{row['gradient_descent_median']:.1%}, (gradient flow) "
              f"{row['gradient_flow_median']:.1%}, (turned mode) {row['crossover_median']:.1%} "
              f"over {row['n']} covariances")


def _figure(points, scan, stem):
    with paper_style():
        fig, axes = new_figure(ncols=2, width=6.9, height=2.7)
        ax = axes[0, 0]
        sim = np.array([np.mean(p["time_ratio_sim"]) for p in points])
        inside = np.array([p["inside_assumptions"] for p in points])
        series = (("time_ratio_gradient_flow", "eq. (9), gradient flow", PALETTE[2], "s"),
                  ("time_ratio_gradient_descent", "eq. (9), GD rates", PALETTE[1], "^"),
                  ("time_ratio_crossover", "eq. (9) with the turned mode", PALETTE[4], "D"),
                  ("time_ratio_theory", "mode reduction (dlnfusion)", PALETTE[0], "o"))
        for key, label, color, marker in series:
            pred = np.array([p[key] for p in points])
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
        ax.plot(x, [r["gradient_flow_median"] for r in scan], "s-", color=PALETTE[2], mfc="white",
                label="eq. (9), gradient flow")
        ax.plot(x, [r["gradient_descent_median"] for r in scan], "^-", color=PALETTE[1],
                mfc="white", label="eq. (9), GD rates")
        ax.plot(x, [r["crossover_median"] for r in scan], "D-", color=PALETTE[4], mfc="white",
                ms=3.5, label="eq. (9) with the turned mode, GD rates")
        ax.set_xscale("log")
        ax.set_yscale("log")
        from matplotlib.ticker import NullFormatter, PercentFormatter, ScalarFormatter
        ax.set_xticks([15, 20, 30, 50, 70, 100, 140])
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks([0.02, 0.05, 0.1, 0.2, 0.3])
        ax.set_xlabel(r"$\ln(1/u_0)$, $u_0$ = first-layer norm at initialization")
        ax.set_ylabel("median relative error")
        ax.legend(fontsize=6)
        ax.text(-0.18, 1.02, "b", transform=ax.transAxes, fontweight="bold", fontsize=9)
        return save(fig, stem)
