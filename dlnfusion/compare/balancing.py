"""Measured against predicted for the modality-balancing runners of :mod:`dlnfusion.sweep`
(Balance, ReducedBalance, OGMLaw, BalanceFit): per-point tables from their Datasets and the
summaries of those tables.

A *point* is one grid point (a value of the swept coordinate, e.g. ρ, and a method): the
runs' measured t_A, t_B and t_B/t_A (None where a run has no transition), the predicted ones
(the reduced dynamics, or OGM-GE's law), the final total weights, and the validity and caveats
of the prediction. Values that are not finite are None, as they are written to JSON.
"""
from __future__ import annotations

import numpy as np

__all__ = ["finite_list", "caveat_list", "balancing_points", "balancing_summary",
           "law_width_rows", "law_width_summary", "mean_sd", "paired_differences", "true_runs",
           "relative_change"]


def finite_list(a) -> list:
    """The values of ``a`` (any shape, flattened) as floats, None where not finite."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float).ravel()]


def _mean(values) -> float:
    """The mean of the values that are not None (NaN if none)."""
    v = [x for x in (values or []) if x is not None]
    return float(np.mean(v)) if v else np.nan


def caveat_list(values, ordered: bool = True) -> list:
    """The distinct caveats of a point's runs (each run's caveats joined by the runners'
    separator): in order of appearance, or sorted."""
    from ..results import CAVEAT_SEPARATOR
    got = [c for text in np.ravel(values) for c in str(text).split(CAVEAT_SEPARATOR) if c]
    return list(dict.fromkeys(got)) if ordered else sorted(set(got))


def _law_sem(law) -> float:
    """The standard error of the seed mean of OGM-GE's law from each seed's own."""
    return float(np.sqrt(np.sum(np.square(law.time_ratio_sem.values))) / law.sizes["seed"])


def _point(sim, red, law, steps, paths) -> dict:
    theory = red if law is None else law
    ratio = theory.time_ratio.values
    finite = bool(np.all(np.isfinite(ratio)))
    caveats = caveat_list(theory.caveats, ordered=law is None)
    if not finite:
        caveats.append(f"no transition within {steps} steps in the reduced dynamics")
    status = [str(v) for v in sim.status.values]
    point = {"time_ratio_sim": finite_list(sim.time_ratio),
             "time_ratio_theory": float(np.mean(ratio)) if finite else None,
             "time_ratio_theory_per_seed": finite_list(ratio), "t_A_sim": finite_list(sim.t_A),
             "t_B_sim": finite_list(sim.t_B), "t_A_theory": finite_list(theory.t_A),
             "t_B_theory": finite_list(theory.t_B),
             "final_w_sim": np.stack([sim.final_map_A.values[:, 0, 0],
                                      sim.final_map_B.values[:, 0, 0]], 1).tolist(),
             "final_w_theory": theory.final_w.values.tolist(), "status": status,
             "valid": bool(np.all(theory.valid.values)) and finite, "caveats": caveats}
    if law is not None:
        point.update({"time_ratio_theory_sem": _law_sem(law),
                      "time_ratio_mean_field": finite_list(red.time_ratio),
                      "mean_field_valid": bool(np.all(red.valid.values)),
                      "mean_field_caveats": caveat_list(red.caveats, ordered=False),
                      "diverged_theory": float(np.mean(law.diverged.values)),
                      "diverged_sim": status.count("diverged"), "paths": paths})
    return point


def balancing_points(sim, reduced, laws=None, along: str = "rho", steps=None,
                     leading_order=None) -> list:
    """One record per value of ``along`` and method (the ``balancing`` coordinate), in the
    Datasets' order: ``sim`` from :class:`~dlnfusion.sweep.Balance`, ``reduced`` from
    :class:`~dlnfusion.sweep.ReducedBalance` over the same grid and seeds.

    ``laws``: method → an :class:`~dlnfusion.sweep.OGMLaw` Dataset over ``along`` (its
    ``paths`` as a second item: ``(law, paths)``); such a method's prediction is its law, the
    reduced (mean-field) ratio beside it, with the divergent fraction. ``steps``: the budget
    named in the caveat of a point without a transition. ``leading_order``: method →
    (a Dataset over ``along`` of a slow-down κ of A's escape, e.g. from a
    :class:`~dlnfusion.sweep.Predict` of :func:`dlnfusion.theory.inforeg_slowdown`, the
    method it slows): the point gets ``leading_order`` with κ and t_A = mean t_A of the
    reference method's prediction / κ.
    """
    laws, leading_order = laws or {}, leading_order or {}
    points = []
    for value in sim[along].values.tolist():
        for method in sim.balancing.values.tolist():
            at = {along: value, "balancing": method}
            law, paths = laws.get(method, (None, None))
            point = {"method": method, along: value,
                     **_point(sim.sel(at), reduced.sel(at),
                              None if law is None else law.sel({along: value}), steps, paths)}
            if method in leading_order:
                kappa, reference = leading_order[method]
                kappa = kappa.sel({along: value}).isel(seed=0)
                ref = next(p for p in points if p[along] == value and p["method"] == reference)
                point["leading_order"] = {
                    "kappa": float(kappa.value),
                    "t_A_theory": float(np.mean(ref["t_A_theory"]) / float(kappa.value)),
                    "valid": bool(kappa.valid), "caveats": caveat_list(kappa.caveats)}
            points.append(point)
    return points


def balancing_summary(points) -> dict:
    """The summary of :func:`balancing_points`' records: per method the median and largest
    relative error of the predicted t_B/t_A against the seed mean of the runs (valid points
    with a finite ratio on both sides) and ``n``; ``flagged`` [method, value] where the
    prediction is not valid; ``final_w_max_abs_error`` per method, the largest absolute error
    of the predicted final weights (seed mean) against the seed mean of the runs that did not
    diverge; ``no_transition_agreed``, the points without a transition in theory and in every
    run; ``never_converged``, the points where no run converged."""
    along = next(k for k in points[0] if k != "method")
    errs, split = {}, {}
    for p in points:
        if p["valid"] and np.isfinite(_mean(p["time_ratio_sim"])) and \
                p["time_ratio_theory"] is not None:
            errs.setdefault(p["method"], []).append(
                abs(p["time_ratio_theory"] / _mean(p["time_ratio_sim"]) - 1))
        ok = [w for w, s in zip(p["final_w_sim"], p["status"]) if s != "diverged"]
        if ok:
            err = float(np.max(np.abs(np.mean(p["final_w_theory"], 0) - np.mean(ok, 0))))
            split[p["method"]] = max(split.get(p["method"], 0.0), err)
    out = {m: {"median_rel_error": float(np.median(e)), "max_rel_error": float(np.max(e)),
               "n": len(e)} for m, e in errs.items()}
    out["flagged"] = [[p["method"], p[along]] for p in points if not p["valid"]]
    out["final_w_max_abs_error"] = split
    out["no_transition_agreed"] = [
        [p["method"], p[along]] for p in points
        if p["time_ratio_theory"] is None and all(v is None for v in p["time_ratio_sim"])]
    out["never_converged"] = [[p["method"], p[along]] for p in points
                              if "converged" not in p["status"]]
    return out


def law_width_rows(law, mean_field, sim) -> list:
    """OGM-GE against the width: per ρ and width of ``law`` (an
    :class:`~dlnfusion.sweep.OGMLaw` Dataset over rho × width) the law's seed-mean t_B/t_A,
    its standard error and divergent fraction, the mean field's ratio per seed
    (``mean_field``, a :class:`~dlnfusion.sweep.ReducedBalance` Dataset over the same grid)
    and, at the widths ``sim`` (a :class:`~dlnfusion.sweep.Balance` Dataset) trained, the
    networks' ratios and how many diverged (None elsewhere)."""
    rows = []
    for rho in law.rho.values.tolist():
        for width in law.width.values:
            at = {"rho": rho, "width": width}
            point = law.sel(at)
            row = {"rho": rho, "width": int(width),
                   "time_ratio_theory": finite_list([np.mean(point.time_ratio.values)])[0],
                   "time_ratio_theory_sem": finite_list([_law_sem(point)])[0],
                   "diverged_theory": float(np.mean(point.diverged.values)),
                   "time_ratio_mean_field": finite_list(mean_field.sel(at).time_ratio),
                   "time_ratio_sim": None, "diverged_sim": None}
            if width in sim.width.values:
                runs = sim.sel(at)
                row["time_ratio_sim"] = finite_list(runs.time_ratio)
                row["diverged_sim"] = int(np.sum(runs.status.values == "diverged"))
            rows.append(row)
    return rows


def law_width_summary(rows) -> dict:
    """Per ρ of :func:`law_width_rows`: the law's largest relative error against the seed mean
    of the networks where they were trained, and the law over its mean field at the smallest
    and the largest width."""
    out = {}
    for rho in sorted({r["rho"] for r in rows}):
        sel = [r for r in rows if r["rho"] == rho]
        law = [_mean([r["time_ratio_theory"]]) for r in sel]
        errs = [abs(t / _mean(r["time_ratio_sim"]) - 1) for r, t in zip(sel, law)
                if np.isfinite(_mean(r["time_ratio_sim"])) and np.isfinite(t)]
        mf = [_mean(r["time_ratio_mean_field"]) for r in sel]
        out[str(rho)] = {"max_rel_error_vs_sim": float(np.max(errs)) if errs else None,
                         "law_over_mean_field": finite_list([law[0] / mf[0], law[-1] / mf[-1]]),
                         "widths": [sel[0]["width"], sel[-1]["width"]]}
    return out


def mean_sd(values) -> list:
    """[mean, standard deviation] of ``values`` (over the seeds, as float)."""
    a = np.asarray(values, float)
    return [float(np.mean(a)), float(np.std(a))]


def paired_differences(rows, comparisons, claims=None) -> dict:
    """Paired differences of measures over the same seeds: ``rows`` maps a method to its
    measures (name → one value per seed, the seeds in the same order for every method);
    ``comparisons`` maps a name to (method, against, measure). Per comparison the mean of the
    per-seed differences and its standard error (NaN with one seed); per claim of ``claims``
    (name → a comparison's name) whether the mean is above twice its standard error (None
    without one)."""
    out = {}
    for name, (a, b, key) in comparisons.items():
        d = np.asarray(rows[a][key]) - np.asarray(rows[b][key])
        out[name] = {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(d.size))
                     if d.size > 1 else float("nan")}
    for claim, key in (claims or {}).items():
        d = out[key]
        out[claim] = bool(d["mean"] > 2 * d["se"]) if np.isfinite(d["se"]) else None
    return out


def true_runs(mask) -> list:
    """The [first, last] indices of every run of True in a 1-d boolean ``mask`` (a prime
    learning window's epochs)."""
    runs, start = [], None
    for i, v in enumerate(list(mask) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append([start, i - 1])
            start = None
    return runs


def relative_change(trace):
    """(F_t − F_{t−1}) / F_t per record along the first axis of ``trace`` (NaN at the first
    record): the relative change that the prime-window rule tests."""
    F = np.asarray(trace, float)
    rate = np.full_like(F, np.nan)
    rate[1:] = (F[1:] - F[:-1]) / F[1:]
    return rate
