"""Three to five modalities: the staircase of plateaus, the order, the transition times.

Two-layer late-fusion linear networks, M = 3, 4, 5 scalar modalities, Figure 3c's training
(width 100, weights N(0, (1e-9)²), gradient descent η = 0.04, 100,000 steps), on 20 random
covariances per M (the random sweep's inverse-Wishart, teacher in [−1, 1]), measured by
:class:`dlnfusion.sweep.TrainSequence` (maps every 5 steps). Theory:
:func:`dlnfusion.theory.learning_sequence` from the typical initial amplitude (order, times,
leading order) and :func:`dlnfusion.theory.sequence.departure`; a covariance lies inside the
assumptions by the theory alone (its caveats, and the last transition within 90 % of the
budget). (a–d) two examples: loss staircase and branch weights, simulation (every seed) and
theory (dashed). (e) predicted against simulated times; (f) relative errors inside the
assumptions. Deep networks (JSON ``deep_cases``, g–h): four-layer late fusion from Figure 6's
random weights (``"frobenius"``, u0 = 0.1), trained until the loss is below 1e-4, on
:func:`deep_covariance`; theory from each seed's initial norms
(:func:`dlnfusion.theory.alignment_seeds`), from the typical ones and at leading order. Every
number comes from a sweep, saved under ``out/multimodal-sequence/{quick,full}/<sweep>``.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from dlnfusion import NetworkSpec, Stats, init_batch, theory as th
from dlnfusion.plot import (PALETTE, error_histogram, identity_panel, new_figure, paper_style,
                            save, sequence_portrait)
from dlnfusion.sweep import CAVEAT_SEPARATOR, Predict, Sweep, TrainSequence

from ._output import write_outputs

ID = "multimodal-sequence"
TITLE = "Three to five modalities: order, transition times and plateaus"
N_MODALITIES = (3, 4, 5)
N_COV, QUICK_COVARIANCES = 20, (0, 1, 5, 13, 16, 17)
WIDTH, INIT_STD, LR, MAX_STEPS, STOP_LOSS, STRIDE = 100, 1e-9, 0.04, 100_000, 1e-8, 5
SEEDS, QUICK_SEEDS = (0, 1, 2, 3, 4), (0, 1)
#: The last predicted transition must come before this fraction of the step budget.
BUDGET_FRACTION = 0.9
EXAMPLES = ((3, 5), (4, 16))       # (M, covariance seed) drawn in panels a-d
DEEP_CASES = tuple((M, c) for M in (3, 4) for c in range(4))
DEEP_U0, DEEP_MAX_STEPS, DEEP_STOP_LOSS = 0.1, 100_000, 1e-4
DEEP_SEEDS, DEEP_QUICK_SEEDS, DEEP_QUICK_CASES = (0, 1, 2, 3), (0, 1), (0, 2, 3)


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


def covariance(n_modalities: int, covariance_seed: int) -> Stats:
    return Stats.random(dim=n_modalities, dims=(1,) * n_modalities, seed=covariance_seed)


def assumptions(seq) -> list:
    """Reasons, from the theory alone, why a covariance lies outside the analysis here."""
    reasons = list(seq.caveats)
    last = seq.times[-1] if seq.times else np.nan
    if np.isfinite(last) and last > BUDGET_FRACTION * MAX_STEPS:
        reasons.append(f"budget: the last transition is predicted at {last:.0f} steps, beyond "
                       f"{BUDGET_FRACTION:.0%} of {MAX_STEPS}")
    return reasons


def _network(n_modalities, depth=2):
    return NetworkSpec.fusion(depth, depth, width=WIDTH, input_dims=(1,) * n_modalities)


def _deep_stats(case):
    return deep_covariance(*DEEP_CASES[case])


def _deep_network(case):
    return _network(DEEP_CASES[case][0], 4)


def _theory(n_modalities, covariance_seed):
    """The typical run's sequence, its assumptions and its departure from ‖Σ_yx,m‖."""
    st = covariance(n_modalities, covariance_seed)
    seq = th.learning_sequence(st, scale=INIT_STD, width=WIDTH, lr=LR)
    return {**th.sequence.sequence_arrays(seq), "caveats": tuple(assumptions(seq)),
            "departure": th.sequence.departure(st, seq) or {"mechanism": ""}}


def _deep_theory(case, init=None):
    """From the typical initial norms, or from ``init`` (a run's alignment_seeds)."""
    seq = th.learning_sequence(_deep_stats(case), 4, 4, scale=DEEP_U0, width=WIDTH, lr=LR,
                               scheme="frobenius", init=init)
    return {**th.sequence.sequence_arrays(seq), "valid": seq.valid, "caveats": seq.caveats}


def _deep_per_seed(case, seed):
    w = init_batch(_deep_network(case), [seed], "frobenius", DEEP_U0)
    return _deep_theory(case, th.alignment_seeds(_deep_network(case), w)[0])


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name."""
    seeds, deep_seeds = (QUICK_SEEDS, DEEP_QUICK_SEEDS) if quick else (SEEDS, DEEP_SEEDS)
    grid = {"n_modalities": N_MODALITIES,
            "covariance_seed": list(QUICK_COVARIANCES if quick else range(N_COV))}
    cases = {"case": list(DEEP_QUICK_CASES if quick else range(len(DEEP_CASES)))}
    train = {"lr": LR, "scale": INIT_STD, "steps": MAX_STEPS, "stop_loss": STOP_LOSS,
             "record_every": STRIDE}
    deep = {**train, "scale": DEEP_U0, "scheme": "frobenius", "steps": DEEP_MAX_STEPS,
            "stop_loss": DEEP_STOP_LOSS}
    theory = lambda fn: Predict(fn, dims=th.sequence.SEQUENCE_DIMS)  # noqa: E731
    out = {"shallow": Sweep(grid, TrainSequence(covariance, _network), train, seeds),
           "shallow_theory": Sweep(grid, theory(_theory)),
           "deep": Sweep(cases, TrainSequence(_deep_stats, _deep_network), deep, deep_seeds),
           "deep_theory": Sweep(cases, theory(_deep_theory)),
           "deep_theory_per_seed": Sweep(cases, theory(_deep_per_seed), seeds=deep_seeds)}
    for M, c in EXAMPLES:
        out[f"example_{M}"] = Sweep({"covariance_seed": [c]}, TrainSequence(
            covariance, _network, record=True), {**train, "n_modalities": M}, seeds)
        out[f"example_{M}_theory"] = Sweep({"covariance_seed": [c]}, theory(_theory),
                                           {"n_modalities": M})
    return out


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def _split(da) -> list:
    return [c for c in str(da.values).split(CAVEAT_SEPARATOR) if c]


def _sequence(t, names):
    """A theory sweep's point as its LearningSequence, valid when without caveats."""
    arrays = {k: t[k].values for k in th.sequence.SEQUENCE_DIMS}
    return th.sequence.sequence_from_arrays(arrays, names, not _split(t.caveats),
                                            _split(t.caveats))


def _measured(s, M) -> dict:
    o, t = s.order.values[:, :M], s.times.values[:, :M]
    return {"order_sim": o.tolist(), "times_sim": t.tolist(), "reached": np.isfinite(t).all(1)}


def _cases(ds) -> list:
    out, sim, theory = [], ds["shallow"], ds["shallow_theory"].isel(seed=0)
    for M in sim.n_modalities.values.tolist():
        for c in sim.covariance_seed.values.tolist():
            s, t = (d.sel(n_modalities=M, covariance_seed=c) for d in (sim, theory))
            seq, m = _sequence(t, covariance(M, c).names), _measured(s, M)
            dep = {k: t[f"departure_{k}"].item() for k in (
                "stage", "overtaken", "overtaker", "drive_ratio_overtaken",
                "drive_ratio_overtaker", "mechanism")} if t.departure_mechanism.item() else None
            if dep:
                dep.update({k: int(dep[k]) for k in ("stage", "overtaken", "overtaker")})
            notes = [] if m["reached"].all() else [f"{int(np.sum(~m['reached']))} of "
                                                   f"{len(m['reached'])} seeds did not reach "
                                                   "every transition"]
            if any(tuple(o) != seq.order for o in m["order_sim"]):
                notes.append("a seed learned in another order")
            if np.any(s.status.values == "diverged"):
                notes.append("diverged")
            out.append({
                "n_modalities": M, "covariance_seed": c, "order_sim": m["order_sim"],
                "order_theory": list(seq.order),
                "order_leading_order": list(seq.order_leading_order),
                "order_by_norm": list(seq.order_by_norm), "follows_norm": seq.follows_norm,
                "departure": dep, "times_sim": m["times_sim"], "times_theory": list(seq.times),
                "times_leading_order": list(seq.times_leading_order),
                "plateau_loss_sim": _seed_mean(s.plateau_loss.values[:, :M - 1]).tolist(),
                "plateau_loss_theory": [p.loss for p in seq.plateaus[:-1]],
                "plateaus_theory": [p.to_dict(seq.names) for p in seq.plateaus],
                "valid": seq.valid, "caveats": list(seq.caveats), "simulation_notes": notes})
    return out


def _deep_cases(ds) -> list:
    out, typ = [], ds["deep_theory"].isel(seed=0)
    for case in ds["deep"].case.values.tolist():
        (M, c), s, per = DEEP_CASES[case], ds["deep"].sel(case=case), \
            ds["deep_theory_per_seed"].sel(case=case)
        m, names = _measured(s, M), deep_covariance(M, c).names
        seq = _sequence(typ.sel(case=case), names)
        seqs = [_sequence(per.isel(seed=k), names) for k in range(per.sizes["seed"])]
        out.append({
            "n_modalities": M, "covariance_seed": c, "order_sim": m["order_sim"],
            "order_theory": list(seq.order), "order_theory_per_seed": [list(p.order)
                                                                       for p in seqs],
            "times_sim": m["times_sim"], "times_theory": list(seq.times),
            "times_theory_per_seed": [list(p.times) for p in seqs],
            "times_leading_order": list(seq.times_leading_order),
            "valid": bool(typ.valid.sel(case=case)) and bool(per.valid.all()),
            "caveats": sorted(set(seq.caveats).union(*[p.caveats for p in seqs])),
            "simulation_notes": [] if m["reached"].all() else
            ["a seed did not reach every transition"]})
    return out


def _seed_mean(a):
    """Mean over seeds (axis 0) of the finite entries; NaN where no seed has one."""
    n = np.sum(np.isfinite(a), axis=0)
    return np.where(n > 0, np.nansum(a, axis=0) / np.maximum(n, 1), np.nan)


def _pad(values, n):
    """``values`` as floats, padded with NaN to ``n`` (a sequence that stopped early)."""
    return np.array(list(values)[:n] + [np.nan] * (n - len(values)), float)


def _errors(cases, key):
    """Relative errors of ``key``'s times against the simulated seed mean (deep: per seed for
    ``times_theory_per_seed``), over the cases inside the assumptions and without notes."""
    e = []
    for c in (c for c in cases if c["valid"] and not c["simulation_notes"]):
        sim, pred = np.asarray(c["times_sim"], float), np.asarray(c[key], float)
        if "order_theory_per_seed" in c:
            e += list(np.abs(pred / (sim if pred.ndim == 2 else sim.mean(0)) - 1).ravel())
        else:
            e += list(np.abs(_pad(pred, sim.shape[1]) - sim.mean(0)) / sim.mean(0))
    e = np.asarray(e)[np.isfinite(e)]
    return {"median": float(np.median(e)), "max": float(np.max(e)), "n": int(e.size),
            "errors": e} if e.size else {"median": np.nan, "max": np.nan, "n": 0, "errors": e}


def _counts(items) -> dict:
    return dict(Counter(items))


def _summary(cases, deep) -> dict:
    inside = [c for c in cases if c["valid"]]
    match = lambda c: all(o == c["order_theory"] for o in c["order_sim"])  # noqa: E731
    errors = lambda cs, k: {n: v for n, v in _errors(cs, k).items() if n != "errors"}  # noqa
    deep_in = [c for c in deep if c["valid"] and not c["simulation_notes"]]
    return {"inside": len(inside), "outside": len(cases) - len(inside),
            "order_match_inside": sum(map(match, inside)),
            "inside_with_simulation_notes": _counts(n for c in inside
                                                   for n in c["simulation_notes"]),
            "theory": errors(cases, "times_theory"),
            "leading_order": errors(cases, "times_leading_order"),
            "flag_counts": _counts(f.split(":")[0] for c in cases for f in c["caveats"]),
            "departs_from_norm": sum(not c["follows_norm"] for c in cases),
            "departs_from_norm_by_M": {str(M): sum(not c["follows_norm"] for c in cases
                                                   if c["n_modalities"] == M)
                                       for M in N_MODALITIES},
            "departure_mechanisms": _counts(c["departure"]["mechanism"] for c in cases
                                           if c["departure"]),
            "departure_sim_confirms": sum(match(c) for c in inside if not c["follows_norm"]),
            "deep": {"cases": len(deep), "inside": len(deep_in),
                     "order_match": sum(c["order_sim"] == c["order_theory_per_seed"]
                                        for c in deep_in),
                     "typical_order_match": sum(map(match, deep_in)),
                     "per_seed": errors(deep, "times_theory_per_seed"),
                     "typical": errors(deep, "times_theory"),
                     "leading_order": errors(deep, "times_leading_order")}}


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    cases, deep = _cases(ds), _deep_cases(ds)
    summary = _summary(cases, deep)
    payload = {"figure": ID, "title": TITLE,
               "parameters": {"n_modalities": list(N_MODALITIES),
                              "covariances_per_M": ds["shallow"].sizes["covariance_seed"],
                              "width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS, "stride": STRIDE,
                              "seeds": ds["shallow"].seed.values.tolist()},
               "deep_parameters": {"depth": 4, "fusion_layer": 4, "width": WIDTH,
                                   "init": "frobenius", "u0": DEEP_U0, "lr": LR,
                                   "max_steps": DEEP_MAX_STEPS, "stop_loss": DEEP_STOP_LOSS,
                                   "seeds": ds["deep"].seed.values.tolist()},
               "cases": cases, "deep_cases": deep, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(cases, deep, ds, stem),
                           summary)
    s, d = summary, summary["deep"]
    print(f"{s['inside']} of {len(cases)} covariances inside the assumptions (decided before "
          f"simulating); flagged: {s['flag_counts']}\n  order: theory = every seed in "
          f"{s['order_match_inside']} of {s['inside']} inside; departs from ||Sigma_yx|| in "
          f"{s['departs_from_norm']} of {len(cases)} ({s['departure_mechanisms']})")
    for key in ("theory", "leading_order"):
        print(f"  times, {key:13s}: median relative error {s[key]['median']:.2%}, max "
              f"{s[key]['max']:.2%} over {s[key]['n']} transitions")
    print(f"  deep (four layers, random weights): order = every seed in {d['order_match']} of "
          f"{d['inside']} inside; times per seed: median {d['per_seed']['median']:.2%}, max "
          f"{d['per_seed']['max']:.2%}; typical init: median {d['typical']['median']:.1%}; "
          f"leading order: median {d['leading_order']['median']:.0%}")
    return result


def _figure(cases, deep, ds, stem):
    markers = {3: "o", 4: "s", 5: "^"}
    with paper_style():
        fig, axes = new_figure(ncols=2, nrows=4, width=6.9, height=10.0)
        for row, (M, c) in enumerate(EXAMPLES):
            e, st = ds[f"example_{M}"].isel(covariance_seed=0), covariance(M, c)
            traj = SimpleNamespace(time=e.time.values, loss=e.loss.values,
                                   maps=[e[f"map_{n}"].values for n in st.names])
            seq = _sequence(ds[f"example_{M}_theory"].isel(covariance_seed=0, seed=0), st.names)
            sequence_portrait(st, seq, traj, axes=tuple(axes[row]), panels="abcd"[2 * row:][:2])
        for ax, sel, per in ((axes[2, 0], cases, False), (axes[3, 0], deep, True)):
            for c in sel:
                M, ok = c["n_modalities"], c["valid"] and not c["simulation_notes"]
                sim = np.asarray(c["times_sim"], float)
                if ok or per:
                    ax.scatter(_pad(c["times_leading_order"], M), _seed_mean(sim),
                               marker=markers[M], color="0.75", s=9, zorder=0)
                ax.scatter(np.ravel(c["times_theory_per_seed"]) if per else
                           _pad(c["times_theory"], M), sim.ravel() if per else _seed_mean(sim),
                           s=9, linewidths=0.6, **(dict(
                               marker=markers[M], facecolors="none", edgecolors=PALETTE[M - 2])
                               if ok else dict(marker="x", color=PALETTE[M - 2])))
            for M in sorted({c["n_modalities"] for c in sel}):
                ax.scatter([], [], marker=markers[M], facecolors="none", s=9,
                           edgecolors=PALETTE[M - 2],
                           label=f"M = {M}" + ", closed form per seed" * per)
            ax.scatter([], [], marker="o", color="0.75", s=9,
                       label="leading order" + " (aligned)" * per)
            if not per:
                ax.scatter([], [], marker="x", color="0.3", s=9, label="outside the assumptions")
            identity_panel(ax, *((100, 2e5) if per else (10, 1e5)),
                           "predicted transition time (steps)",
                           "simulated" + " (seed mean)" * (not per), "eg"[per])
        axes[3, 0].set_title("four layers, random weights (u0 = 0.1)", fontsize=7)
        err = lambda cs, k: _errors(cs, k)["errors"]  # noqa: E731
        error_histogram(axes[2, 1], [
            (err(cases, "times_leading_order"), dict(color="0.75", median="0.5",
                                                     label="leading order")),
            (err(cases, "times_theory"), dict(histtype="step", color=PALETTE[0], lw=1.2,
                                              median=PALETTE[0], label="finite init., GD rates"))],
            "f")
        error_histogram(axes[3, 1], [
            (err(deep, "times_leading_order"), dict(color="0.75", label="leading order")),
            (err(deep, "times_theory"), dict(histtype="step", color=PALETTE[3], lw=1.0,
                                             label="closed form, typical init.")),
            (err(deep, "times_theory_per_seed"), dict(histtype="step", color=PALETTE[0], lw=1.2,
                                                      label="closed form per seed"))], "h")
        return save(fig, stem)
