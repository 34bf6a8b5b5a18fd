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
assumptions is decided from the theory alone, before simulating (:func:`assumptions`: stability
at the minimum, separated phases, budget); points outside are drawn as crosses and listed with
the reason in the JSON, and what the simulation then did is reported beside it, also for the
points inside.
(b) How the leading-order formulas approach the simulation as the initialization shrinks
(median relative error over the covariances inside the assumptions): the error is the
O(1/ln(1/u0)) remainder of the expansion.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, simulate, theory as th
from dlnfusion.compare import measure_unimodal_phase, predict_unimodal_phase
from dlnfusion.plot import PALETTE, new_figure, paper_style, save

from ._output import write_outputs

ID = "zhang2024-random"
TITLE = "Random covariances: two-layer time ratio, theory vs simulation"
DIM, WIDTH, INIT_STD, LR, MAX_STEPS, STOP_LOSS = 20, 100, 1e-9, 0.04, 40_000, 1e-4
N_COV, QUICK_N_COV = 100, 50
SEEDS, QUICK_SEEDS = (0, 1), (0,)
SCAN_STDS = (1e-6, 1e-9, 1e-15, 1e-30, 1e-60)
SCAN_N_COV, SCAN_MAX_STEPS = 30, 400_000


#: The second modality may have grown to at most this fraction of its unimodal plateau when
#: the first is learned, for the two transitions to count as separate phases.
SEPARATION = 0.1


def assumptions(st, init_std: float = INIT_STD, steps: int = MAX_STEPS) -> list:
    """Reasons, from the theory alone (before any simulation), why a covariance lies outside
    the two-phase analysis at this initialization, learning rate and budget (empty: inside).

    * stability: gradient descent from small weights ends at the balanced minimum, where it is
      linearly stable only if η λ_max < 2 (theory.minimum_curvature); otherwise it diverges or
      leaves the balanced regime the theory describes;
    * separated phases: in the first phase each modality's growing mode starts at the typical
      value w0 (theory.saxe.typical_effective_init) and is multiplied by (1 + η‖Σ_yx_m‖)² per step;
      at the time the first modality reaches half its plateau, the second must still be below
      SEPARATION of its own, or the two transitions overlap (a near tie);
    * budget: the predicted t_B (leading order with gradient-descent rates) plus the final
      approach along the flattest direction of the minimum, down to the stopping loss, must fit
      in ``steps``;
    * the caveats of the leading-order formula itself (collinear, near anti-parallel, ...).
    """
    reasons = []
    r = th.roles(st)
    curv = th.minimum_curvature(st)
    if not curv.stable(LR):
        reasons.append(f"unstable at the minimum: lr*lambda_max = {LR * curv.lambda_max:.3g} >= 2")
    w0 = th.saxe.typical_effective_init(init_std, WIDTH)
    half = []
    for m in (r.first, r.second):
        plateau = np.linalg.norm(st.unimodal_solution(m))
        rate = np.log1p(LR * np.linalg.norm(st.sigma_yx_m(m)))
        half.append((np.log(plateau / w0) / (2 * rate), plateau, rate))
    t_a = half[0][0]
    x_b = w0 / half[1][1] * np.exp(2 * half[1][2] * t_a)
    if x_b > SEPARATION:
        reasons.append(f"phases overlap: the second modality is at {x_b:.2g} of its plateau when "
                       f"the first is learned (k = {r.k:.3f}, near tie)")
    ratio = th.time_ratio_gradient_descent(st, LR)
    if np.isfinite(ratio.value):
        excess = th.landscape.saddle_loss(st, r.first) - max(st.min_loss(), 0.0)
        t_end = t_a * ratio.value + curv.steps_to_shrink(LR, max(excess / STOP_LOSS, 1.0))
        if t_end > steps:
            reasons.append(f"predicted to need {t_end:.0f} steps, more than the budget "
                           f"{steps}")
    reasons += list(th.time_ratio_gradient_flow(st).caveats)
    return reasons


def _simulation_notes(st, status, first, t_b) -> list:
    """What the simulation did that the theory's assumptions exclude (reported, not used to
    select points)."""
    notes = []
    if "diverged" in status:
        notes.append("diverged")
    if "max_steps" in status:
        notes.append(f"not converged within {MAX_STEPS} steps")
    if any(f != th.roles(st).first for f in first):
        notes.append("the other modality was learned first")
    if np.any(~np.isfinite(t_b)):
        notes.append("the second modality never reached half of its final value")
    return notes


def run(out: Path, quick: bool = False) -> dict:
    n_cov = QUICK_N_COV if quick else N_COV
    seeds = QUICK_SEEDS if quick else SEEDS
    stats = [Stats.random(dim=DIM, seed=i) for i in range(n_cov)]
    flags = [assumptions(st) for st in stats]      # decided before simulating
    spec = NetworkSpec.fusion(2, 2, width=WIDTH, input_dims=(DIM // 2, DIM - DIM // 2))
    traj = simulate(spec, stats, seeds=seeds, scale=INIT_STD, lr=LR, steps=MAX_STEPS,
                    stop_loss=STOP_LOSS, record_every=100)
    meas = measure_unimodal_phase(traj)
    points = []
    for i, st in enumerate(stats):
        pred, _ = predict_unimodal_phase(spec, st, traj[i].initial_params, LR,
                                            basis="modes", steps=MAX_STEPS,
                                            stop_loss=STOP_LOSS, record_every=100)
        xo = th.timescales.time_ratio_crossover(st, INIT_STD * np.sqrt(WIDTH), LR)
        notes = _simulation_notes(st, list(traj.status_names()[i]), list(meas.first[i]),
                                  meas.t_B[i])
        points.append({
            "seed": i, "k": th.roles(st).k, "cos_theta": th.roles(st).cos_theta,
            "time_ratio_sim": [float(v) for v in meas.time_ratio[i]],
            "time_ratio_gradient_flow": th.time_ratio_gradient_flow(st).value,
            "time_ratio_gradient_descent": th.time_ratio_gradient_descent(st, LR).value,
            "time_ratio_crossover": xo.value, "crossover_valid": xo.valid,
            "crossover_caveats": list(xo.caveats),
            "time_ratio_theory": float(np.mean(pred.time_ratio)),
            "time_ratio_theory_per_seed": [float(v) for v in pred.time_ratio],
            "status": [str(s) for s in traj.status_names()[i]],
            "inside_assumptions": not flags[i], "flags": flags[i],
            "simulation_notes": notes,
        })
    summary = _summary(points)
    scan = _scan()
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, random sweep "
               "(authors' implementation)",
               "parameters": {"dim": DIM, "width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS,
                              "covariances": n_cov, "seeds": list(seeds),
                              "inverse_wishart_df": DIM + 2, "scale_factor": 2.0},
               "points": points, "summary": summary, "init_scale_scan": scan}
    result = write_outputs(out, ID, payload, lambda stem: _figure(points, scan, stem),
                           summary)
    s = summary
    print(f"{s['inside']} of {len(points)} covariances inside the assumptions (decided before "
          f"simulating); flagged: {s['flag_counts']}; inside, the simulation showed: "
          f"{s['inside_but_simulation_outside'] or 'nothing unexpected'}")
    for key in ("theory", "gradient_descent", "gradient_flow", "crossover"):
        v = s[key]
        print(f"  {key:17s}: median relative error {v['median']:.2%}, max {v['max']:.2%}")
    v = s["crossover_where_sharp_turn"]
    print(f"  crossover where its sharp turn holds ({v['n']} covariances): median "
          f"{v['median']:.2%}, max {v['max']:.2%} (eq. 9 with GD rates there: "
          f"{v['gradient_descent_median']:.2%})")
    for row in scan:
        print(f"  init std {row['init_std']:.0e}: leading order (GD rates) median error "
              f"{row['gradient_descent_median']:.1%}, (gradient flow) "
              f"{row['gradient_flow_median']:.1%}, (turned mode) {row['crossover_median']:.1%} "
              f"over {row['n']} covariances")
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


def _scan() -> list:
    """Leading-order error against the initialization scale (one seed per covariance)."""
    stats = [Stats.random(dim=DIM, seed=i) for i in range(SCAN_N_COV)]
    spec = NetworkSpec.fusion(2, 2, width=WIDTH, input_dims=(DIM // 2, DIM - DIM // 2))
    rows = []
    for std in SCAN_STDS:
        traj = simulate(spec, stats, seeds=[0], scale=std, lr=LR, steps=SCAN_MAX_STEPS,
                        stop_loss=STOP_LOSS, record_every=1000)
        meas = measure_unimodal_phase(traj)
        e_gd, e_gf, e_xo = [], [], []
        for i, st in enumerate(stats):
            sim = float(meas.time_ratio[i, 0])
            if assumptions(st, std, SCAN_MAX_STEPS) or not np.isfinite(sim):
                continue
            e_gd.append(abs(th.time_ratio_gradient_descent(st, LR).value / sim - 1))
            e_gf.append(abs(th.time_ratio_gradient_flow(st).value / sim - 1))
            e_xo.append(abs(th.timescales.time_ratio_crossover(st, std * np.sqrt(WIDTH), LR).value / sim - 1))
        rows.append({"init_std": std, "ln_1_over_u0": float(np.log(1 / (std * np.sqrt(WIDTH)))),
                     "n": len(e_gd), "gradient_descent_median": float(np.median(e_gd)),
                     "gradient_flow_median": float(np.median(e_gf)),
                     "crossover_median": float(np.median(e_xo))})
    return rows


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
        finite = np.isfinite(sim)
        hi = np.nanpercentile(sim[finite], 98) * 1.3
        ax.plot([0.5, hi], [0.5, hi], color="0.5", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(0.5, hi)
        ax.set_ylim(0.5, hi)
        ax.set_xlabel(r"predicted $t_B/t_A$")
        ax.set_ylabel(r"simulated $t_B/t_A$")
        ax.legend(fontsize=6, loc="upper left")
        ax.text(0.98, 0.02, "× outside the assumptions", transform=ax.transAxes, ha="right",
                fontsize=6, color="0.3")
        ax.text(-0.18, 1.02, "a", transform=ax.transAxes, fontweight="bold", fontsize=9)
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
