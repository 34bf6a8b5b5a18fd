"""The delay of a modality's transition under a deficit window, simulated against its theory:
one record per (ρ, deficit, N) of a pair of sweeps, the theory's curves in N, and the error
summary (Kleinman, Achille & Soatto, CVPR 2023, protocol, in linear fusion networks).

The sweeps are over ``rho``, ``deficit`` and ``N`` (the window's length; N = 0 is the
undisturbed run, the same under every deficit) and ``seed``: the simulations of
:class:`~dlnfusion.sweep.Train` (``t_A``, ``t_B``, ``final_loss``, ``stop_time``, ``status``)
and the two levels of theory of :class:`~dlnfusion.sweep.DeficitTheory` on the same runs
((b): ``t_B``, the reduced network; (a): ``t_B_formula``, the delay formula; ``t_B_closed``,
the formula on closed-form no-deficit times; ``t_B_line``, ``delay_line`` the formula in N).
Relative errors are against the seed mean of the simulated t_B.
"""
from __future__ import annotations

import numpy as np

__all__ = ["finite_error_stats", "delay_points", "delay_lines", "delay_summary",
           "arm_delays"]

#: A flag of a point whose simulated transition was not reached in some seed.
NOT_REACHED = "B does not reach half of its final value within the budget in some seed"


def finite_error_stats(errors) -> dict:
    """``median``, ``max`` and ``n`` of |error| over the finite values (None, None, 0 if
    there are none)."""
    e = np.abs(np.asarray(errors, float))
    e = e[np.isfinite(e)]
    if e.size == 0:
        return {"median": None, "max": None, "n": 0}
    return {"median": float(np.median(e)), "max": float(np.max(e)), "n": int(e.size)}


def _floats(v) -> list:
    return [float(x) for x in np.atleast_1d(v)]


def _flags(theory, t_b_sim) -> list:
    from ..results import CAVEAT_SEPARATOR

    flags = sorted({f for text in theory.formula_caveats.values
                    for f in str(text).split(CAVEAT_SEPARATOR) if f})
    if np.any(np.isnan(t_b_sim)):
        flags.append(NOT_REACHED)
    return flags


def _point(sim, sim0, red, red0, undisturbed: bool, closed: bool) -> dict:
    """The record of one (ρ, deficit, N) from the rows (over seeds) of the simulations and the
    theory at N and at N = 0."""
    tb_sim = np.asarray(sim.t_B.values, float)
    mean_sim = float(np.nanmean(tb_sim)) if np.any(np.isfinite(tb_sim)) else float("nan")
    tb_th, tb_fo = float(np.mean(red.t_B.values)), float(np.mean(red.t_B_formula.values))
    pt = {"t_A_sim": _floats(sim.t_A.values), "t_B_sim": _floats(tb_sim),
          "t_B_theory": tb_th, "t_B_theory_per_seed": _floats(red.t_B.values),
          "t_A_theory": float(np.mean(red.t_A.values)),
          "t_B_formula": tb_fo, "t_B_formula_per_seed": _floats(red.t_B_formula.values),
          "t_A_formula": float(np.mean(red.t_A_formula.values)),
          "delay_sim": mean_sim - float(np.mean(sim0.t_B.values)),
          "delay_theory": tb_th - float(np.mean(red0.t_B.values)),
          "delay_formula": float(np.mean(red.delay_formula.values)),
          "rel_error_theory": tb_th / mean_sim - 1, "rel_error_formula": tb_fo / mean_sim - 1,
          "final_loss_sim": _floats(sim.final_loss.values),
          "stop_step_sim": _floats(sim.stop_time.values),
          "status": [str(s) for s in sim.status.values],
          "formula_regime": sorted(set(str(r) for r in red.formula_regime.values)),
          "formula_valid": bool(np.all(red.formula_valid.values)),
          "flags": _flags(red, tb_sim), "undisturbed_run": undisturbed}
    if closed:
        pt["t_B_formula_closed"] = float(np.mean(red.t_B_closed.values))
        pt["rel_error_formula_closed"] = pt["t_B_formula_closed"] / np.nanmean(tb_sim) - 1
    return pt


def delay_points(sim, theory, lengths, closed: bool = False, **labels) -> list:
    """One record per ρ, deficit and N of ``lengths`` (in that order) of one network's
    simulation and theory sweeps (module docstring): the simulated times per seed, both
    theories (seed means and per seed), the delays against N = 0, the relative errors, final
    losses, stop steps and statuses, the formula's regimes, validity and ``flags`` (its
    caveats, and whether the simulated t_B was reached in every seed), ``undisturbed_run``
    (N = 0). ``closed``: also the formula on the closed-form no-deficit times (two layers).
    ``labels`` (e.g. depth, fusion_layer) go into every record after ``deficit`` and ``N``."""
    out = []
    for rho in sim.rho.values.tolist():
        for d in sim.deficit.values.tolist():
            def at(ds, n):
                return ds.sel(rho=rho, deficit=d, N=float(n))
            for n in lengths:
                out.append({"deficit": d, "N": int(n), **labels, "rho": rho,
                            **_point(at(sim, n), at(sim, 0), at(theory, n), at(theory, 0),
                                     n == 0, closed)})
    return out


def delay_lines(theory) -> dict:
    """The theory's curves in N per (ρ, deficit), seed means: the formula's ``t_B_formula``
    and ``delay_formula`` at the lengths ``N`` of its line, and the reduced network's
    ``t_B_theory`` and ``delay_theory`` at the sweep's lengths ``N_theory``."""
    out = {}
    for rho in theory.rho.values.tolist():
        for d in theory.deficit.values.tolist():
            red, red0 = theory.sel(rho=rho, deficit=d), theory.sel(rho=rho, deficit=d, N=0.0)
            tb = red.t_B.values.mean(axis=1)                                 # (N,)
            out[(rho, d)] = {"N": red.length.values,
                             "t_B_formula": red0.t_B_line.values.mean(axis=0),
                             "delay_formula": red0.delay_line.values.mean(axis=0),
                             "N_theory": red.N.values, "t_B_theory": tb,
                             "delay_theory": tb - red0.t_B.values.mean()}
    return out


def delay_summary(points, median: float = 0.03, worst: float = 0.08) -> dict:
    """The errors of both theories over :func:`delay_points`' records (each undisturbed run
    counted once): :func:`finite_error_stats` overall, without flagged points, of the closed-form
    baseline, per network (``by_network``, "L=<depth>,L_f=<fusion_layer>") and per deficit
    (``by_deficit``, N > 0); ``acceptance_theory`` and ``acceptance_formula`` (median error at
    most ``median``, largest at most ``worst``); ``flagged_points``; ``all_converged``."""
    first = points[0]["deficit"]
    uniq = [p for p in points if p["N"] > 0 or p["deficit"] == first]

    def errors(sel, key="rel_error_theory"):
        return finite_error_stats([p[key] for p in sel if key in p])

    def both(sel):
        return {"theory": errors(sel), "formula": errors(sel, "rel_error_formula")}

    out = {"t_B_theory_rel_error": errors(uniq),
           "t_B_formula_rel_error": errors(uniq, "rel_error_formula"),
           "t_B_formula_rel_error_unflagged": errors([p for p in uniq if not p["flags"]],
                                                     "rel_error_formula"),
           "t_B_formula_closed_rel_error_two_layer": errors(uniq, "rel_error_formula_closed")}
    accept = {level: bool(e["median"] <= median and e["max"] <= worst) for level, e in
              (("theory", out["t_B_theory_rel_error"]), ("formula", out["t_B_formula_rel_error"]))}
    out["acceptance_theory"] = accept["theory"]
    networks = dict.fromkeys((p["depth"], p["fusion_layer"]) for p in points)
    out["by_network"] = {
        f"L={L},L_f={Lf}": both([p for p in uniq if (p["depth"], p["fusion_layer"]) == (L, Lf)])
        for L, Lf in networks}
    out["by_deficit"] = {d: both([p for p in uniq if p["deficit"] == d and p["N"] > 0])
                         for d in dict.fromkeys(p["deficit"] for p in points)}
    out["acceptance_formula"] = accept["formula"]
    out["flagged_points"] = [
        {k: p[k] for k in ("deficit", "N", "depth", "fusion_layer", "rho", "flags",
                           "rel_error_formula", "rel_error_theory")}
        for p in uniq if p["flags"]]
    out["all_converged"] = all(s == "converged" for p in points for s in p["status"])
    return out


def _finite_mean(values) -> float:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def arm_delays(points, lengths, arm: str = "reconstruction_weight") -> dict:
    """Per network, deficit and ρ (key "L=<depth>,L_f=<fusion_layer>,<deficit>,rho=<ρ>"): the
    delay of t_B at the longest of ``lengths`` against N = 0 of the same arm, in each arm
    (records with ``arm`` zero: "without", nonzero: "with"): ``t_B_<arm>``, ``t_B0_<arm>``,
    ``delay_<arm>``, ``final_loss_<arm>`` (means over the seeds that reached the level) and
    ``delay_ratio`` (with over without). ``points``: records with depth, fusion_layer, rho,
    deficit, N, ``arm``, ``t_B_sim`` and ``final_loss`` (one value per seed)."""
    out = {}
    n1 = max(lengths)
    same = ("depth", "fusion_layer", "rho", "deficit", arm)
    for p in points:
        if p["N"] != n1:
            continue
        key = f"L={p['depth']},L_f={p['fusion_layer']},{p['deficit']},rho={p['rho']}"
        name = "with" if p[arm] else "without"
        zero = next(q for q in points if q["N"] == 0 and all(q[k] == p[k] for k in same))
        row = out.setdefault(key, {"N": n1})
        row[f"t_B_{name}"] = _finite_mean(p["t_B_sim"])
        row[f"t_B0_{name}"] = _finite_mean(zero["t_B_sim"])
        row[f"delay_{name}"] = row[f"t_B_{name}"] - row[f"t_B0_{name}"]
        row[f"final_loss_{name}"] = _finite_mean(p["final_loss"])
    for row in out.values():
        if "delay_with" in row and "delay_without" in row:
            row["delay_ratio"] = row["delay_with"] / row["delay_without"] \
                if row["delay_without"] else float("nan")
    return out
