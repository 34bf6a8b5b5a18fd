"""Unimodal-phase observables measured on trajectories.

Definitions (paper Section 3.2 and the authors' implementation, see docs/conventions.md):

* the first-learned modality is the one whose total map first reaches half of its unimodal
  plateau Σ_yx_m Σ_m^{-1} (progress ⟨W_m, U_m⟩/‖U_m‖² = ½); that time is t_A;
* t_B is the first time the other modality's total map reaches half of its final value
  (its block of the global solution Σ_yx Σ^{-1});
* the unimodal phase is sampled at t_mid = (t_A + t_B)/2: the first modality's total map
  there is the plateau value, the loss there the plateau loss;
* mis-attribution is (W_A(t_mid) − W_A(end))·W_A(end)/‖W_A(end)‖², the relative overshoot of
  the plateau over the final value (signed; for scalars (W_A(t_mid) − W_A(end))/W_A(end)).

Crossing times are interpolated linearly between steps; the authors' implementation takes the
step whose value is closest to the half level, which differs by less than one step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..training import Trajectory
from ..training.epochs import History
from ..results import first_crossing

__all__ = ["PhaseMeasurement", "measure_unimodal_phase", "AccuracyTimes",
           "measure_accuracy_times"]


@dataclass(frozen=True, eq=False)
class PhaseMeasurement:
    """Unimodal-phase observables of every run (arrays with the trajectory's batch shape)."""

    first: np.ndarray          # index of the first-learned modality (-1 if none)
    t_A: np.ndarray
    t_B: np.ndarray
    t_mid: np.ndarray
    plateau_map: np.ndarray    # first modality's total map at t_mid, (*batch, d_out, d_A)
    plateau_loss: np.ndarray
    final_map: np.ndarray      # first modality's total map at the end, (*batch, d_out, d_A)
    misattribution: np.ndarray
    status: np.ndarray
    names: tuple = field(default=())

    @property
    def time_ratio(self) -> np.ndarray:
        return self.t_B / self.t_A

    def first_names(self) -> np.ndarray:
        return np.vectorize(lambda i: self.names[i] if i >= 0 else "none", otypes=[object])(
            self.first)


def _interp_rows(time, values, t):
    """Interpolate each run's recorded series at its own time t (NaN where not recorded)."""
    out = np.full(values.shape[:1] + values.shape[2:], np.nan)
    for b in range(values.shape[0]):
        if not np.isfinite(t[b]):
            continue
        v = values[b].reshape(values.shape[1], -1)
        ok = np.all(np.isfinite(v), axis=1)
        if ok.sum() < 2 or t[b] > time[ok][-1] or t[b] < time[ok][0]:
            continue
        cols = [np.interp(t[b], time[ok], v[ok, j]) for j in range(v.shape[1])]
        out[b] = np.reshape(cols, values.shape[2:])
    return out


def measure_unimodal_phase(traj: Trajectory, level: float = 0.5,
                           final_below: float | None = None) -> PhaseMeasurement:
    """Measure t_A, t_B, the plateau and the mis-attribution of every run of ``traj``.

    The final value entering the mis-attribution is the map at the end of the run, or, with
    ``final_below``, the first recorded map whose loss is below that value (the authors'
    implementation stops at loss < 1e-4 and uses the map there). Needs exactly two modalities. Runs in which no modality reaches its level get first = −1
    and NaN times; runs in which the second modality never reaches half of its final value get
    t_B = NaN (for example collinear modalities, Figure 8).
    """
    if traj.spec.n_modalities != 2:
        raise ValueError("measure_unimodal_phase compares exactly two modalities")
    shape = traj.batch_shape
    flat = traj.reshape(int(np.prod(shape)))
    uni = flat.crossing(0, "unimodal", level), flat.crossing(1, "unimodal", level)
    glob = flat.crossing(0, "global", level), flat.crossing(1, "global", level)
    u = np.stack(uni, axis=-1)
    none = np.all(np.isnan(u), axis=-1)
    first = np.where(none, -1, np.argmin(np.where(np.isnan(u), np.inf, u), axis=-1))
    idx = np.arange(first.size)
    safe = np.maximum(first, 0)
    t_a = np.where(none, np.nan, u[idx, safe])
    t_b = np.where(none, np.nan, np.stack(glob, axis=-1)[idx, 1 - safe])
    t_mid = 0.5 * (t_a + t_b)
    plateau, final = [], []
    for b in range(first.size):
        m = safe[b]
        plateau.append(_interp_rows(flat.time, flat.maps[m][b:b + 1], t_mid[b:b + 1])[0])
        if final_below is None:
            final.append(flat.final_maps[m][b])
            continue
        below = np.nonzero(flat.loss[b] < final_below)[0]
        final.append(flat.maps[m][b, below[0]] if below.size else flat.final_maps[m][b])
    plateau, final = np.stack(plateau), np.stack(final)
    plateau_loss = _interp_rows(flat.time, flat.loss[..., None], t_mid)[..., 0]
    nrm = np.sum(final ** 2, axis=(-2, -1))
    mis = np.where(nrm > 0, np.sum((plateau - final) * final, axis=(-2, -1))
                   / np.where(nrm > 0, nrm, 1.0), np.nan)
    first = np.where(none, -1, first)
    rs = lambda a: np.reshape(a, shape + np.shape(a)[1:])  # noqa: E731
    return PhaseMeasurement(rs(first), rs(t_a), rs(t_b), rs(t_mid), rs(plateau),
                            rs(plateau_loss), rs(final), rs(mis), np.asarray(traj.status),
                            traj.names)


@dataclass(frozen=True, eq=False)
class AccuracyTimes:
    """When each modality's unimodal test accuracy first reaches ``level``, per seed.

    ``times`` (S, M) in epochs, linearly interpolated between records (NaN: never reached);
    ``first`` (S,) the index of the modality that got there first (−1: none did); ``ratio``
    (S,) the time of the second divided by the time of the first (NaN unless both did; with
    more than two modalities, the last to arrive over the first).
    """

    times: np.ndarray
    first: np.ndarray
    ratio: np.ndarray
    level: float
    names: tuple

    def first_names(self) -> list:
        return [self.names[i] if i >= 0 else "none" for i in self.first]


def measure_accuracy_times(history: History, level: float = 0.5) -> AccuracyTimes:
    """The time-ratio observable of the paper's noisy-digit experiments (its Table 1): the epoch
    at which the second-learned modality's unimodal accuracy reaches ``level`` (50%) divided by
    the epoch at which the first-learned one does."""
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be an accuracy strictly between 0 and 1, got {level!r}")
    uni = np.asarray(history.unimodal_acc, dtype=np.float64)  # (S, M, T)
    times = first_crossing(uni, np.asarray(history.epoch, np.float64), float(level))  # (S, M)
    reached = np.isfinite(times)
    first = np.where(reached.any(1), np.argmin(np.where(reached, times, np.inf), 1), -1)
    both = reached.all(1)
    safe = np.where(reached, times, 1.0)
    with np.errstate(divide="ignore"):  # a crossing at epoch 0 gives an infinite ratio
        ratio = np.where(both, safe.max(1) / safe.min(1), np.nan)
    return AccuracyTimes(times, first, ratio, float(level), tuple(history.names))


def crossings_complete(history: History, level: float = 0.5) -> bool:
    """The stop rule of the noisy-digit experiments: True once every seed either has both
    crossings of :func:`measure_accuracy_times` at ``level`` (a finite time ratio) or
    diverged, so that training longer cannot change the measured ratios."""
    t = measure_accuracy_times(history, level)
    return bool(np.all(np.isfinite(t.ratio) | history.diverged))
