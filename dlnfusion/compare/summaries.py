"""Summaries of a figure's numbers: errors of predictions against seed-mean simulations over the
points of a figure, their median and maximum, and the seed means of a classifier's runs."""
from __future__ import annotations

import numpy as np

__all__ = ["point_errors", "error_stats", "unimodal_run_notes", "finite_mean_std",
           "mean_fit_curves"]


def point_errors(points, key: str, sim_key: str, relative: bool = True) -> np.ndarray:
    """Per point (a mapping), the error of the prediction ``point[key]`` against the mean of the
    simulated values ``point[sim_key]`` (one per seed): |prediction / mean − 1| if
    ``relative``, else |prediction − mean|."""
    if relative:
        errors = [abs(p[key] / np.mean(p[sim_key]) - 1) for p in points]
    else:
        errors = [abs(p[key] - np.mean(p[sim_key])) for p in points]
    return np.asarray(errors, dtype=float)


def error_stats(errors) -> dict:
    """``{"median": ..., "max": ...}`` of ``errors`` (NaN for both when there are none)."""
    errors = np.asarray(errors, dtype=float).ravel()
    if errors.size == 0:
        return {"median": float("nan"), "max": float("nan")}
    return {"median": float(np.median(errors)), "max": float(np.max(errors))}


def unimodal_run_notes(point, first_theory: str, steps: int) -> list:
    """What the runs of one grid point of a :class:`~dlnfusion.sweep.Train` sweep (``status``,
    ``first`` and ``t_B`` per seed) did that the two-phase analysis excludes, as readable
    notes: a run diverged, a run did not converge within ``steps``, a run learned another
    modality first than ``first_theory``, a run's second modality never reached half of its
    final value. Empty: nothing unexpected."""
    status = [str(v) for v in point.status.values]
    notes = []
    if "diverged" in status:
        notes.append("diverged")
    if "max_steps" in status:
        notes.append(f"not converged within {steps} steps")
    if any(f != first_theory for f in point.first.values):
        notes.append("the other modality was learned first")
    if np.any(~np.isfinite(point.t_B.values)):
        notes.append("the second modality never reached half of its final value")
    return notes


def finite_mean_std(values) -> tuple:
    """Mean and standard deviation of the finite ``values`` (NaN: a run without a value); the
    mean is NaN when none is finite, the standard deviation when fewer than two are."""
    x = np.asarray(values, dtype=float)
    ok = x[np.isfinite(x)]
    return (float(ok.mean()) if ok.size else float("nan"),
            float(ok.std()) if ok.size > 1 else float("nan"))


def mean_fit_curves(point) -> dict:
    """The seed means of the curves one grid point of a :class:`~dlnfusion.sweep.Fit` sweep
    recorded, up to the epoch its training ended (``epochs_run``): ``epoch``,
    ``train_loss_over_initial`` (each seed's training loss over its first record),
    ``test_acc`` and ``unimodal_acc`` (modality name → curve), as lists (NaN where no seed has
    a value)."""
    keep = point.epoch.values <= int(point.epochs_run.values.ravel()[0])
    loss = point.train_loss.values[..., keep]
    unimodal = point.unimodal_acc.values[..., keep]
    with np.errstate(invalid="ignore"):
        return {"epoch": point.epoch.values[keep].tolist(),
                "train_loss_over_initial": np.nanmean(loss / loss[:, :1], 0).tolist(),
                "test_acc": np.nanmean(point.test_acc.values[..., keep], 0).tolist(),
                "unimodal_acc": {str(n): np.nanmean(unimodal[:, m], 0).tolist()
                                 for m, n in enumerate(point.modality.values)}}
