"""Three to five modalities: the staircase of plateaus, the order, the transition times.

Two-layer late-fusion linear networks with M = 3, 4, 5 scalar modalities, Figure 3c's
training (width 100, weights i.i.d. N(0, (1e-9)²), full-batch gradient descent η = 0.04), with
a budget of 100,000 steps so that late last transitions are inside it. Covariances: the random sweep's inverse-Wishart (df = M + 2, the first
modality's row of the scale doubled), teacher uniform in [−1, 1]; 20 per M.

Theory: :func:`dlnfusion.theory.learning_sequence` from the typical initial mode amplitude
(not from the runs' weights): the order, the times (finite initialization, gradient-descent
rates) and the leading order (u0 → 0, gradient flow) beside. Whether a covariance lies inside
the assumptions is decided from the theory alone, before simulating: the caveats of
``learning_sequence`` (overlapping transitions, a learned weight that changes sign) and the
budget (the last predicted transition within 90 % of the steps). Simulation:
:func:`dlnfusion.compare.measure_learning_sequence` on maps recorded every 5 steps (the
progress is linear in time at its half crossing to second order, so the interpolation error
is far below a step).

(a–d) Two examples (three and four modalities, both learned out of the order of ‖Σ_yx,m‖):
the loss staircase and each branch's total weight, simulation (lines, every seed) and theory
(plateaus between the predicted transition times, dashed; predicted times as ticks).
(e) Predicted against simulated transition times, every transition of every covariance.
(f) Relative errors of the two predictions over the covariances inside the assumptions.

Deep networks from random weights (JSON ``deep_cases``, panels g–h): four-layer late fusion,
width 100, the paper's Figure 6 initialization (``"frobenius"``, u0 = 0.1), η = 0.04, three
and four modalities on 8 covariances (:func:`deep_covariance`: random correlations, variances
in [0.5, 4], teacher in [0.5, 1.5], for transitions within 10⁴–10⁵ steps). Theory:
``learning_sequence(..., scheme="frobenius")`` from each seed's initial norms
(:func:`dlnfusion.theory.alignment_seeds`; per seed) and from the typical ones, with the
aligned leading order beside. (g) predicted against simulated times, per seed; (h) errors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, simulate, theory as th
from dlnfusion.compare import measure_learning_sequence
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, sequence_portrait

from ._output import write_outputs

ID = "multimodal-sequence"
TITLE = "Three to five modalities: order, transition times and plateaus"
N_MODALITIES = (3, 4, 5)
N_COV = 20
WIDTH, INIT_STD, LR, MAX_STEPS, STOP_LOSS, STRIDE = 100, 1e-9, 0.04, 100_000, 1e-8, 5
SEEDS, QUICK_SEEDS = (0, 1, 2, 3, 4), (0, 1)
#: The last predicted transition must come before this fraction of the step budget.
BUDGET_FRACTION = 0.9
EXAMPLES = ((3, 5), (4, 16))       # (M, covariance seed) drawn in panels a-d
DEEP_CASES = tuple((M, c) for M in (3, 4) for c in range(4))
DEEP_U0, DEEP_MAX_STEPS = 0.1, 100_000
DEEP_SEEDS, DEEP_QUICK_SEEDS, DEEP_QUICK_CASES = (0, 1, 2, 3), (0, 1), 4


def deep_covariance(M: int, seed: int) -> Stats:
    """Random correlations (a Wishart draw normalized, plus 0.3·I before normalizing),
    variances uniform in [0.5, 4], teacher uniform in [0.5, 1.5]."""
    rng = np.random.default_rng(1000 + 10 * M + seed)
    A = rng.normal(size=(M, M))
    S = A @ A.T / M + 0.3 * np.eye(M)
    sd = np.sqrt(rng.uniform(0.5, 4.0, size=M))
    S = S / np.sqrt(np.outer(np.diag(S), np.diag(S))) * np.outer(sd, sd)
    w = rng.uniform(0.5, 1.5, size=M)
    return Stats(S, (S @ w)[None, :], float(w @ S @ w), (1,) * M)


def covariance(M: int, seed: int) -> Stats:
    return Stats.random(dim=M, dims=(1,) * M, seed=seed)


def assumptions(seq) -> list:
    """Reasons, from the theory alone, why a covariance lies outside the analysis here."""
    reasons = list(seq.caveats)
    last = seq.times[-1] if seq.times else np.nan
    if np.isfinite(last) and last > BUDGET_FRACTION * MAX_STEPS:
        reasons.append(f"budget: the last transition is predicted at {last:.0f} steps, beyond "
                       f"{BUDGET_FRACTION:.0%} of {MAX_STEPS}")
    return reasons


def departure(st, seq) -> dict | None:
    """Where the predicted order first leaves the order of ‖Σ_yx,m‖, and why.

    At that stage the modality with the largest ‖Σ_yx‖ left (overtaken, i) loses the race to
    another (overtaker, j): at leading order each needs (1 − p)/|e(S)|, p its progress so far.
    The mechanism is "sign flip" when i's drive on the plateau reached so far points against
    Σ_yx,i (it must regrow from the mode that decayed), else "explained away" when the learned
    modalities took a larger share of i's drive than of j's (|e_i|/|Σ_yx,i| < |e_j|/|Σ_yx,j|),
    else "head start" (j had progressed more)."""
    norms = [float(np.linalg.norm(st.sigma_yx_m(m))) for m in range(st.n_modalities)]
    S = []
    for j in seq.order:
        rest = [m for m in range(st.n_modalities) if m not in S]
        i = max(rest, key=lambda m: norms[m])
        if i != j:
            ei = float(th.sequence.residual_drive(st, S, i)[0, 0])
            ej = float(th.sequence.residual_drive(st, S, j)[0, 0])
            si, sj = float(st.sigma_yx_m(i)[0, 0]), float(st.sigma_yx_m(j)[0, 0])
            if ei * si < 0:
                mech = "sign flip"
            elif abs(ei) / abs(si) < abs(ej) / abs(sj):
                mech = "explained away"
            else:
                mech = "head start"
            return {"stage": len(S), "overtaken": i, "overtaker": j,
                    "drive_ratio_overtaken": abs(ei) / abs(si),
                    "drive_ratio_overtaker": abs(ej) / abs(sj), "mechanism": mech}
        S.append(j)
    return None


def run(out: Path, quick: bool = False) -> dict:
    seeds = QUICK_SEEDS if quick else SEEDS
    cases, examples = [], {}
    for M in N_MODALITIES:
        stats = [covariance(M, c) for c in range(N_COV)]
        seqs = [th.learning_sequence(st, scale=INIT_STD, width=WIDTH, lr=LR) for st in stats]
        flags = [assumptions(s) for s in seqs]                 # decided before simulating
        spec = NetworkSpec.fusion(2, 2, width=WIDTH, input_dims=(1,) * M)
        traj = simulate(spec, stats, seeds=seeds, scale=INIT_STD, lr=LR, steps=MAX_STEPS,
                        stop_loss=STOP_LOSS, record_every=STRIDE, observe={"norms": None})
        for c, (st, seq) in enumerate(zip(stats, seqs)):
            meas = measure_learning_sequence(traj[c], st)
            notes = []
            reached = np.all(np.isfinite(meas.times), axis=1)
            if not np.all(reached):
                notes.append(f"{int(np.sum(~reached))} of {len(seeds)} seeds did not reach "
                             "every transition")
            if any(tuple(o) != seq.order for o in meas.order):
                notes.append("a seed learned in another order")
            if "diverged" in list(traj[c].status_names()):
                notes.append("diverged")
            cases.append({
                "n_modalities": M, "covariance_seed": c,
                "order_sim": [[int(v) for v in o] for o in meas.order],
                "order_theory": list(seq.order),
                "order_leading_order": list(seq.order_leading_order),
                "order_by_norm": list(seq.order_by_norm), "follows_norm": seq.follows_norm,
                "departure": departure(st, seq),
                "times_sim": [[float(v) for v in t] for t in meas.times],
                "times_theory": [float(t) for t in seq.times],
                "times_leading_order": [float(t) for t in seq.times_leading_order],
                "plateau_loss_sim": [float(v) for v in _seed_mean(meas.plateau_loss)],
                "plateau_loss_theory": [p.loss for p in seq.plateaus[:-1]],
                "plateaus_theory": [p.to_dict(st.names) for p in seq.plateaus],
                "valid": not flags[c], "caveats": flags[c], "simulation_notes": notes,
            })
            if (M, c) in EXAMPLES:
                examples[f"{M}"] = _example(traj[c], st, seq)
    deep = _deep_cases(quick)
    summary = _summary(cases)
    summary["deep"] = _deep_summary(deep)
    payload = {"figure": ID, "title": TITLE,
               "parameters": {"n_modalities": list(N_MODALITIES), "covariances_per_M": N_COV,
                              "width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS, "stride": STRIDE,
                              "seeds": list(seeds)},
               "deep_parameters": {"depth": 4, "fusion_layer": 4, "width": WIDTH,
                                   "init": "frobenius", "u0": DEEP_U0, "lr": LR,
                                   "max_steps": DEEP_MAX_STEPS,
                                   "seeds": list(DEEP_QUICK_SEEDS if quick else DEEP_SEEDS)},
               "cases": cases, "deep_cases": deep, "summary": summary}
    result = write_outputs(out, ID, payload,
                           lambda stem: _figure(cases, examples, deep, stem), summary)
    s = summary
    print(f"{s['inside']} of {len(cases)} covariances inside the assumptions (decided before "
          f"simulating); flagged: {s['flag_counts']}")
    print(f"  order: theory = every seed in {s['order_match_inside']} of {s['inside']} inside; "
          f"departs from ||Sigma_yx|| in {s['departs_from_norm']} of {len(cases)} "
          f"({s['departure_mechanisms']})")
    for key in ("theory", "leading_order"):
        v = s[key]
        print(f"  times, {key:13s}: median relative error {v['median']:.2%}, max {v['max']:.2%} "
              f"over {v['n']} transitions")
    d = summary["deep"]
    print(f"  deep (four layers, random weights): order = every seed in {d['order_match']} of "
          f"{d['inside']} inside; times per seed: median {d['per_seed']['median']:.2%}, max "
          f"{d['per_seed']['max']:.2%}; typical init: median {d['typical']['median']:.1%}; "
          f"leading order: median {d['leading_order']['median']:.0%}")
    return result


def _deep_cases(quick):
    """Four-layer late fusion from random weights: simulated and predicted staircases."""
    seeds = list(DEEP_QUICK_SEEDS if quick else DEEP_SEEDS)
    chosen = DEEP_CASES[:DEEP_QUICK_CASES] if quick else DEEP_CASES
    out = []
    for M in sorted({M for M, _ in chosen}):
        keys = [c for m, c in chosen if m == M]
        stats = [deep_covariance(M, c) for c in keys]
        typ = [th.learning_sequence(st, 4, 4, scale=DEEP_U0, width=WIDTH, lr=LR,
                                    scheme="frobenius") for st in stats]
        spec = NetworkSpec.fusion(4, 4, width=WIDTH, input_dims=(1,) * M)
        horizon = max((s.times[-1] for s in typ if np.all(np.isfinite(s.times))), default=0)
        steps = int(min(DEEP_MAX_STEPS, max(2000, 1.5 * horizon)))
        traj = simulate(spec, stats, seeds=seeds, scheme="frobenius", scale=DEEP_U0, lr=LR,
                        steps=steps, record_every=STRIDE)
        init = th.alignment_seeds(spec, traj.initial_params)
        for i, (c, st, seq) in enumerate(zip(keys, stats, typ)):
            meas = measure_learning_sequence(traj[i], st)
            per = [th.learning_sequence(st, 4, 4, scale=DEEP_U0, width=WIDTH, lr=LR,
                                        scheme="frobenius", init=init[i, k])
                   for k in range(len(seeds))]
            notes = []
            if not np.all(np.isfinite(meas.times)):
                notes.append("a seed did not reach every transition")
            out.append({
                "n_modalities": M, "covariance_seed": c,
                "order_sim": [[int(v) for v in o] for o in meas.order],
                "order_theory": list(seq.order),
                "order_theory_per_seed": [list(p.order) for p in per],
                "times_sim": [[float(v) for v in t] for t in meas.times],
                "times_theory": [float(t) for t in seq.times],
                "times_theory_per_seed": [[float(t) for t in p.times] for p in per],
                "times_leading_order": [float(t) for t in seq.times_leading_order],
                "valid": bool(seq.valid and all(p.valid for p in per)),
                "caveats": sorted(set(seq.caveats).union(*[p.caveats for p in per])),
                "simulation_notes": notes,
            })
    return out


def _deep_errors(deep, key):
    e = []
    for c in deep:
        if not c["valid"] or c["simulation_notes"]:
            continue
        sim = np.asarray(c["times_sim"], float)
        if key == "times_theory_per_seed":
            e += list(np.abs(np.asarray(c[key], float) / sim - 1).ravel())
        else:
            e += list(np.abs(np.asarray(c[key], float) / np.mean(sim, axis=0) - 1))
    return np.asarray(e)


def _deep_summary(deep) -> dict:
    inside = [c for c in deep if c["valid"] and not c["simulation_notes"]]
    out = {"cases": len(deep), "inside": len(inside),
           "order_match": sum(all(o == p for o, p in zip(c["order_sim"],
                                                         c["order_theory_per_seed"]))
                              for c in inside),
           "typical_order_match": sum(all(o == c["order_theory"] for o in c["order_sim"])
                                      for c in inside)}
    for key, name in (("times_theory_per_seed", "per_seed"), ("times_theory", "typical"),
                      ("times_leading_order", "leading_order")):
        e = _deep_errors(deep, key)
        out[name] = ({"median": float(np.median(e)), "max": float(np.max(e)), "n": int(e.size)}
                     if e.size else {"median": float("nan"), "max": float("nan"), "n": 0})
    return out


def _example(traj, st, seq) -> dict:
    return {"traj": traj, "seq": seq, "stats": st}


def _seed_mean(a):
    """Mean over seeds (axis 0) of the finite entries; NaN where no seed has one."""
    a = np.asarray(a, float)
    n = np.sum(np.isfinite(a), axis=0)
    return np.where(n > 0, np.nansum(a, axis=0) / np.maximum(n, 1), np.nan)


def _pad(values, n):
    """``values`` as floats, padded with NaN to ``n`` (a sequence that stopped early)."""
    v = np.full(n, np.nan)
    v[:len(values)] = np.asarray(values, float)[:n]
    return v


def _errors(cases, key):
    errs = []
    for c in cases:
        if not c["valid"] or c["simulation_notes"]:
            continue
        sim = np.mean(np.asarray(c["times_sim"], float), axis=0)
        errs += list(np.abs(_pad(c[key], sim.size) - sim) / sim)
    errs = np.asarray(errs)
    return errs[np.isfinite(errs)]


def _summary(cases) -> dict:
    inside = [c for c in cases if c["valid"]]
    out = {"inside": len(inside), "outside": len(cases) - len(inside)}
    out["order_match_inside"] = sum(all(o == c["order_theory"] for o in c["order_sim"])
                                    for c in inside)
    out["inside_with_simulation_notes"] = {}
    for c in inside:
        for n in c["simulation_notes"]:
            out["inside_with_simulation_notes"][n] = \
                out["inside_with_simulation_notes"].get(n, 0) + 1
    for key, name in (("times_theory", "theory"), ("times_leading_order", "leading_order")):
        e = _errors(cases, key)
        out[name] = {"median": float(np.median(e)), "max": float(np.max(e)), "n": int(e.size)}
    counts = {}
    for c in cases:
        for f in c["caveats"]:
            k = f.split(":")[0]
            counts[k] = counts.get(k, 0) + 1
    out["flag_counts"] = counts
    out["departs_from_norm"] = sum(not c["follows_norm"] for c in cases)
    out["departs_from_norm_by_M"] = {str(M): sum(not c["follows_norm"] for c in cases
                                                 if c["n_modalities"] == M)
                                     for M in N_MODALITIES}
    mech = {}
    for c in cases:
        d = c["departure"]
        if d:
            mech[d["mechanism"]] = mech.get(d["mechanism"], 0) + 1
    out["departure_mechanisms"] = mech
    out["departure_sim_confirms"] = sum(
        all(o == c["order_theory"] for o in c["order_sim"]) for c in cases
        if not c["follows_norm"] and c["valid"])
    return out


def _figure(cases, examples, deep, stem):
    with paper_style():
        fig, axes = new_figure(ncols=2, nrows=4, width=6.9, height=10.0)
        for row, (M, _) in enumerate(EXAMPLES):
            ex = examples[f"{M}"]
            sequence_portrait(ex["stats"], ex["seq"], ex["traj"], axes=(axes[row, 0], axes[row, 1]),
                              panels="abcd"[2 * row:2 * row + 2])
        ax = axes[2, 0]
        markers = {3: "o", 4: "s", 5: "^"}
        for M in N_MODALITIES:
            sel = [c for c in cases if c["n_modalities"] == M]
            for c in sel:
                sim = _seed_mean(c["times_sim"])
                inside = c["valid"] and not c["simulation_notes"]
                kw = dict(s=9, linewidths=0.6)
                if inside:
                    ax.scatter(_pad(c["times_theory"], M), sim, marker=markers[M], facecolors="none",
                               edgecolors=PALETTE[M - 2], **kw)
                    ax.scatter(_pad(c["times_leading_order"], M), sim, marker=markers[M], color="0.75",
                               **kw, zorder=0)
                else:
                    ax.scatter(_pad(c["times_theory"], M), sim, marker="x",
                               color=PALETTE[M - 2], **kw)
            ax.scatter([], [], marker=markers[M], facecolors="none", edgecolors=PALETTE[M - 2],
                       s=9, label=f"M = {M}")
        ax.scatter([], [], marker="o", color="0.75", s=9, label="leading order")
        ax.scatter([], [], marker="x", color="0.3", s=9, label="outside the assumptions")
        lo, hi = 10, 1e5
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("predicted transition time (steps)")
        ax.set_ylabel("simulated (seed mean)")
        ax.legend(fontsize=6, loc="upper left")
        ax.text(-0.2, 1.02, "e", transform=ax.transAxes, fontweight="bold", fontsize=9)
        ax = axes[2, 1]
        e_th, e_lo = _errors(cases, "times_theory"), _errors(cases, "times_leading_order")
        bins = np.logspace(-5, 0, 31)
        ax.hist(np.clip(e_lo, 1e-5, 1), bins=bins, color="0.75", label="leading order")
        ax.hist(np.clip(e_th, 1e-5, 1), bins=bins, histtype="step", color=PALETTE[0], lw=1.2,
                label="finite init., GD rates")
        ax.set_xscale("log")
        ax.set_xlabel("relative error of a transition time")
        ax.set_ylabel("transitions")
        ax.axvline(np.median(e_th), color=PALETTE[0], lw=0.6, ls=":")
        ax.axvline(np.median(e_lo), color="0.5", lw=0.6, ls=":")
        ax.legend(fontsize=6, loc="upper left")
        ax.text(-0.2, 1.02, "f", transform=ax.transAxes, fontweight="bold", fontsize=9)
        _deep_panels(axes[3, 0], axes[3, 1], deep)
        return save(fig, stem)


def _deep_panels(ax, ax2, deep):
    """(g) per-seed predicted against simulated times of the deep random-weight cases, the
    leading order beside; (h) their relative errors."""
    markers = {3: "o", 4: "s"}
    for c in deep:
        sim = np.asarray(c["times_sim"], float)
        ok = c["valid"] and not c["simulation_notes"]
        M = c["n_modalities"]
        ax.scatter(np.asarray(c["times_theory_per_seed"], float).ravel(), sim.ravel(),
                   marker=markers.get(M, "^") if ok else "x", s=9, linewidths=0.6,
                   facecolors="none" if ok else None,
                   edgecolors=PALETTE[M - 2] if ok else None,
                   color=None if ok else PALETTE[M - 2])
        ax.scatter(c["times_leading_order"], np.mean(sim, axis=0), marker=markers.get(M, "^"),
                   color="0.75", s=9, zorder=0)
    for M in markers:
        ax.scatter([], [], marker=markers[M], facecolors="none", edgecolors=PALETTE[M - 2], s=9,
                   label=f"M = {M}, closed form per seed")
    ax.scatter([], [], marker="o", color="0.75", s=9, label="leading order (aligned)")
    lo, hi = 100, 2e5
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.7)
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
           xlabel="predicted transition time (steps)", ylabel="simulated")
    ax.set_title("four layers, random weights (u0 = 0.1)", fontsize=7)
    ax.legend(fontsize=6, loc="upper left")
    ax.text(-0.2, 1.02, "g", transform=ax.transAxes, fontweight="bold", fontsize=9)
    bins = np.logspace(-5, 0, 31)
    for key, kw in (("times_leading_order", dict(color="0.75", label="leading order")),
                    ("times_theory", dict(histtype="step", color=PALETTE[3], lw=1.0,
                                          label="closed form, typical init.")),
                    ("times_theory_per_seed", dict(histtype="step", color=PALETTE[0], lw=1.2,
                                                   label="closed form per seed"))):
        e = _deep_errors(deep, key)
        if e.size:
            ax2.hist(np.clip(e, 1e-5, 1), bins=bins, **kw)
    ax2.set(xscale="log", xlabel="relative error of a transition time", ylabel="transitions")
    ax2.legend(fontsize=6, loc="upper left")
    ax2.text(-0.2, 1.02, "h", transform=ax2.transAxes, fontweight="bold", fontsize=9)
