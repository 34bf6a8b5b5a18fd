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
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..results import first_crossing
from ..theory.sequence import partial_solution
from ..training import Trajectory

__all__ = ["SequenceMeasurement", "measure_learning_sequence"]


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
