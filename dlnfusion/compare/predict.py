"""Predictions for the training actually run, measured on the training of a reduction of the
network (:func:`dlnfusion.reduced.train_reduced`), so that theory and simulation are compared
on the same observables."""
from __future__ import annotations

from ..networks import NetworkSpec, Params
from ..reduced import train_reduced
from .measure import measure_unimodal_phase

__all__ = ["predict_unimodal_phase"]


def predict_unimodal_phase(spec: NetworkSpec, stats, params: Params, lr, method: str = "gd",
                           basis: str = "signals", **train_kwargs):
    """Predict t_A, t_B, the time ratio and the plateau of a training run from its initial
    weights: :func:`dlnfusion.reduced.train_reduced` (the reduction of the network,
    :func:`dlnfusion.reduced.reduce_network`, trained like the runs it predicts) measured by
    :func:`measure_unimodal_phase`.

    ``params`` are the initial weights of the runs to predict (batched, as in
    :attr:`Trajectory.initial_params`), ``stats`` one Stats or one per run, ``lr`` and
    ``method`` those of the training. Returns ``(PhaseMeasurement, reduced Trajectory)``.
    Requires a linear network (the reduction uses linearity of the forward map).
    """
    traj = train_reduced(spec, stats, params, lr, method=method, basis=basis, **train_kwargs)
    return measure_unimodal_phase(traj), traj
