"""The learning sequence measured on trajectories, for any number of modalities.

Definitions (the two-modality conventions of docs/conventions.md, extended):

* with the modalities S learned so far, a candidate j's progress is its projection onto its
  block P_j of the next plateau, ⟨W_j, P_j⟩/‖P_j‖² with P_j = j's block of Σ_yx,S∪j Σ_S∪j⁻¹
  (:func:`dlnfusion.theory.sequence.partial_solution`);
* the next modality learned is the candidate whose progress first reaches ½; that time is its
  transition time (for two modalities these are t_A and t_B);
* plateau k is sampled halfway between transitions k and k + 1 (t_mid of two modalities): the
  loss there and each learned modality's mis-attribution (W_m(t) − W_m(end))·W_m(end)/
  ‖W_m(end)‖².

Crossing times are interpolated linearly between records: record every step (``record_every=1``)
for the precision of the two-modality crossings measured inside the loop.

A figure's records ("cases", one per covariance) join a :class:`~dlnfusion.sweep.TrainSequence`
sweep with one of :func:`~dlnfusion.theory.sequence.sequence_record` over the same grid
(:func:`sequence_case`, :func:`per_seed_sequence_case`); :func:`sequence_summary` counts and
measures them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..results import first_crossing
from ..theory.sequence import (SEQUENCE_DIMS, LearningSequence, partial_solution,
                               sequence_from_arrays)
from ..training import Trajectory

__all__ = ["SequenceMeasurement", "measure_learning_sequence", "point_sequence",
           "finite_seed_mean", "nan_padded", "sequence_case", "per_seed_sequence_case",
           "sequence_time_errors", "sequence_summary"]


@dataclass(frozen=True, eq=False)
class SequenceMeasurement:
    """Per run (flattened batch): ``order`` (runs, M) modality indices in the order learned
    (−1 after the last one reached), ``times`` (runs, M) transition times (NaN: not reached),
    ``plateau_loss`` (runs, M − 1) the loss on each intermediate plateau and
    ``misattribution`` (runs, M − 1, M) each modality's mis-attribution there (NaN for a
    modality not yet learned)."""

    order: np.ndarray
    times: np.ndarray
    plateau_loss: np.ndarray
    misattribution: np.ndarray
    status: np.ndarray
    names: tuple = field(default=())


def _progress(W, P):
    n = float(np.sum(P * P))
    return np.tensordot(W, P, axes=([-2, -1], [0, 1])) / n if n > 0 else np.full(W.shape[0], np.nan)


def measure_learning_sequence(traj: Trajectory, stats, level: float = 0.5) -> SequenceMeasurement:
    """Measure the order, transition times and plateaus of every run of ``traj`` (trained on
    ``stats``; any number of modalities; the maps must have been recorded)."""
    if traj.spec.n_modalities != stats.n_modalities:
        raise ValueError(f"traj has {traj.spec.n_modalities} modalities but stats has "
                         f"{stats.n_modalities}")
    if not (0 < level < 1):
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    M = stats.n_modalities
    shape = traj.batch_shape
    flat = traj.reshape(int(np.prod(shape)))
    maps = [np.asarray(m) for m in flat.maps]                   # (B, T, d_out, d_m)
    time = np.asarray(flat.time, float)
    loss = np.asarray(flat.loss)
    final = [np.asarray(m) for m in flat.final_maps]
    B = maps[0].shape[0]
    cache = {}

    def block(S, j):
        key = (tuple(sorted(S)), j)
        if key not in cache:
            cache[key] = partial_solution(stats, list(key[0]) + [j])[:, stats.slices[j]]
        return cache[key]

    order = np.full((B, M), -1, int)
    times = np.full((B, M), np.nan)
    for b in range(B):
        S = []
        for k in range(M):
            best = (np.inf, -1)         # (time, modality)
            for j in range(M):
                if j in S:
                    continue
                t = float(first_crossing(_progress(maps[j][b], block(S, j)), time, level))
                if np.isfinite(t) and t < best[0]:
                    best = (t, j)
            if best[1] < 0:
                break
            times[b, k], order[b, k] = best
            S.append(best[1])
    pl = np.full((B, max(M - 1, 0)), np.nan)
    mis = np.full((B, max(M - 1, 0), M), np.nan)
    for b in range(B):
        ok = np.isfinite(loss[b])
        for k in range(M - 1):
            t0, t1 = times[b, k], times[b, k + 1]
            if not (np.isfinite(t0) and np.isfinite(t1)) or ok.sum() < 2:
                continue
            tm = 0.5 * (t0 + t1)
            pl[b, k] = np.interp(tm, time[ok], loss[b][ok])
            for m in order[b, :k + 1]:
                wf = final[m][b]
                n = float(np.sum(wf * wf))
                if n <= 0:
                    continue
                v = maps[m][b].reshape(len(time), -1)
                w = np.array([np.interp(tm, time[ok], v[ok, c]) for c in range(v.shape[1])])
                mis[b, k, m] = float(np.sum((w - wf.ravel()) * wf.ravel()) / n)
    rs = lambda a: np.reshape(a, shape + np.shape(a)[1:])  # noqa: E731
    return SequenceMeasurement(rs(order), rs(times), rs(pl), rs(mis), np.asarray(traj.status),
                               traj.names)


# Summaries of a learning-sequence figure: one record ("case") per covariance from a sweep of
# TrainSequence and one of theory.sequence.sequence_record over the same grid, and their errors.

_DEPARTURE = ("stage", "overtaken", "overtaker", "drive_ratio_overtaken",
              "drive_ratio_overtaker", "mechanism")


def _caveats(da) -> tuple:
    from ..results import CAVEAT_SEPARATOR

    return tuple(c for c in str(da.values).split(CAVEAT_SEPARATOR) if c)


def point_sequence(point, names) -> LearningSequence:
    """One point of a :class:`~dlnfusion.sweep.Predict` sweep of
    :func:`dlnfusion.theory.sequence.sequence_record` as its LearningSequence (``names`` the
    modalities')."""
    arrays = {k: point[k].values for k in SEQUENCE_DIMS}
    return sequence_from_arrays(arrays, names, bool(point.valid), _caveats(point.caveats))


def finite_seed_mean(a) -> np.ndarray:
    """Mean over seeds (axis 0) of the finite entries; NaN where no seed has one."""
    a = np.asarray(a, float)
    n = np.sum(np.isfinite(a), axis=0)
    return np.where(n > 0, np.nansum(a, axis=0) / np.maximum(n, 1), np.nan)


def nan_padded(values, n: int) -> np.ndarray:
    """``values`` as floats, cut or padded with NaN to length ``n`` (a sequence that stopped
    early)."""
    return np.array(list(values)[:n] + [np.nan] * (n - len(values)), float)


def _measured(sim, M) -> dict:
    order, times = sim.order.values[:, :M], sim.times.values[:, :M]
    return {"order_sim": order.tolist(), "times_sim": times.tolist(),
            "reached": np.isfinite(times).all(1)}


def sequence_case(sim, theory, names) -> dict:
    """The record of one covariance: ``sim`` its runs (a point of a
    :class:`~dlnfusion.sweep.TrainSequence` sweep, over seeds), ``theory`` its prediction (a
    point of :func:`~dlnfusion.theory.sequence.sequence_record` with ``with_departure``).
    Orders and times simulated (per seed), predicted and at leading order; the order of
    ‖Σ_yx,m‖ and where and why the prediction leaves it (``departure``, None where it does
    not); the plateau losses (simulated: seed mean); ``valid``, ``caveats``; and
    ``simulation_notes``, what the runs did that the comparison excludes (a seed that did not
    reach every transition, one that learned in another order, a divergence)."""
    M = len(names)
    seq, m = point_sequence(theory, names), _measured(sim, M)
    dep = None
    if theory.departure_mechanism.item():
        dep = {k: theory[f"departure_{k}"].item() for k in _DEPARTURE}
        dep.update({k: int(dep[k]) for k in ("stage", "overtaken", "overtaker")})
    notes = [] if m["reached"].all() else [f"{int(np.sum(~m['reached']))} of "
                                           f"{len(m['reached'])} seeds did not reach "
                                           "every transition"]
    if any(tuple(o) != seq.order for o in m["order_sim"]):
        notes.append("a seed learned in another order")
    if np.any(sim.status.values == "diverged"):
        notes.append("diverged")
    return {"order_sim": m["order_sim"], "order_theory": list(seq.order),
            "order_leading_order": list(seq.order_leading_order),
            "order_by_norm": list(seq.order_by_norm), "follows_norm": seq.follows_norm,
            "departure": dep, "times_sim": m["times_sim"], "times_theory": list(seq.times),
            "times_leading_order": list(seq.times_leading_order),
            "plateau_loss_sim": finite_seed_mean(sim.plateau_loss.values[:, :M - 1]).tolist(),
            "plateau_loss_theory": [p.loss for p in seq.plateaus[:-1]],
            "plateaus_theory": [p.to_dict(seq.names) for p in seq.plateaus],
            "valid": seq.valid, "caveats": list(seq.caveats), "simulation_notes": notes}


def per_seed_sequence_case(sim, typical, per_seed, names) -> dict:
    """The record of one covariance whose runs are predicted one by one: ``sim`` as in
    :func:`sequence_case`, ``typical`` the prediction from the typical initialization and
    ``per_seed`` the predictions from each run's initial weights (points over ``seed``, in the
    runs' order). Valid where every prediction is; the union of their caveats."""
    M = len(names)
    m, seq = _measured(sim, M), point_sequence(typical, names)
    seqs = [point_sequence(per_seed.isel(seed=k), names) for k in range(per_seed.sizes["seed"])]
    return {"order_sim": m["order_sim"], "order_theory": list(seq.order),
            "order_theory_per_seed": [list(p.order) for p in seqs],
            "times_sim": m["times_sim"], "times_theory": list(seq.times),
            "times_theory_per_seed": [list(p.times) for p in seqs],
            "times_leading_order": list(seq.times_leading_order),
            "valid": bool(typical.valid) and bool(per_seed.valid.all()),
            "caveats": sorted(set(seq.caveats).union(*[p.caveats for p in seqs])),
            "simulation_notes": [] if m["reached"].all() else
            ["a seed did not reach every transition"]}


def sequence_time_errors(cases, key: str) -> dict:
    """Relative errors of the predicted transition times ``case[key]`` against the simulated
    ``times_sim``, over the cases inside the assumptions (``valid``) and without
    ``simulation_notes``: against each run's time for a per-seed prediction (a list per seed),
    else against the seed mean. ``median``, ``max``, ``n`` and the ``errors`` (NaN for the
    statistics when there are none)."""
    e = []
    for c in (c for c in cases if c["valid"] and not c["simulation_notes"]):
        sim, pred = np.asarray(c["times_sim"], float), np.asarray(c[key], float)
        if "order_theory_per_seed" in c:
            e += list(np.abs(pred / (sim if pred.ndim == 2 else sim.mean(0)) - 1).ravel())
        else:
            e += list(np.abs(nan_padded(pred, sim.shape[1]) - sim.mean(0)) / sim.mean(0))
    e = np.asarray(e)[np.isfinite(e)]
    if not e.size:
        return {"median": np.nan, "max": np.nan, "n": 0, "errors": e}
    return {"median": float(np.median(e)), "max": float(np.max(e)), "n": int(e.size),
            "errors": e}


def sequence_summary(cases, per_seed_cases, n_modalities) -> dict:
    """The figure's counts and errors: cases inside the assumptions and outside, those whose
    predicted order is every seed's, what the runs did inside, the errors of the predicted and
    leading-order times (:func:`sequence_time_errors` without the ``errors``), the caveats by
    kind, the departures from the order of ‖Σ_yx,m‖ (per number of modalities in
    ``n_modalities``, by mechanism, and how many the runs confirm); under ``deep``, the same
    for ``per_seed_cases`` (:func:`per_seed_sequence_case`)."""
    inside = [c for c in cases if c["valid"]]
    clean = [c for c in per_seed_cases if c["valid"] and not c["simulation_notes"]]

    def match(c):
        return all(o == c["order_theory"] for o in c["order_sim"])

    def errors(cs, key):
        return {k: v for k, v in sequence_time_errors(cs, key).items() if k != "errors"}

    departs = [c for c in cases if not c["follows_norm"]]
    return {"inside": len(inside), "outside": len(cases) - len(inside),
            "order_match_inside": sum(map(match, inside)),
            "inside_with_simulation_notes": dict(Counter(n for c in inside
                                                         for n in c["simulation_notes"])),
            "theory": errors(cases, "times_theory"),
            "leading_order": errors(cases, "times_leading_order"),
            "flag_counts": dict(Counter(f.split(":")[0] for c in cases for f in c["caveats"])),
            "departs_from_norm": len(departs),
            "departs_from_norm_by_M": {str(M): sum(c["n_modalities"] == M for c in departs)
                                       for M in n_modalities},
            "departure_mechanisms": dict(Counter(c["departure"]["mechanism"] for c in cases
                                                 if c["departure"])),
            "departure_sim_confirms": sum(match(c) for c in inside if not c["follows_norm"]),
            "deep": {"cases": len(per_seed_cases), "inside": len(clean),
                     "order_match": sum(c["order_sim"] == c["order_theory_per_seed"]
                                        for c in clean),
                     "typical_order_match": sum(map(match, clean)),
                     "per_seed": errors(per_seed_cases, "times_theory_per_seed"),
                     "typical": errors(per_seed_cases, "times_theory"),
                     "leading_order": errors(per_seed_cases, "times_leading_order")}}
