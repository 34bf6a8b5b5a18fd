"""Predictions for the training actually run, by integrating a reduction of the network.

The reduction itself (the signal-subspace or mode projection of the initial weights) is
:func:`dlnfusion.theory.reduce_network`; this module trains the reduced network with the same
update rule and learning rate as the training it predicts and measures the unimodal phase on
it, so that theory and simulation are compared on the same observables.
"""
from __future__ import annotations

import jax
import numpy as np

from .. import theory as th
from ..networks import NetworkSpec, Params
from ..training import train
from .measure import measure_unimodal_phase

__all__ = ["predict_unimodal_phase"]


def predict_unimodal_phase(spec: NetworkSpec, stats, params: Params, lr, method: str = "gd",
                           basis: str = "signals", **train_kwargs):
    """Predict t_A, t_B, the time ratio and the plateau of a training run from its initial
    weights, by integrating a reduction of the network (:func:`reduce_network`).

    ``params`` are the initial weights of the runs to predict (batched, as in
    :attr:`Trajectory.initial_params`), ``stats`` one Stats or one per run, ``lr`` and
    ``method`` those of the training. Returns ``(PhaseMeasurement, reduced Trajectory)``.
    Requires a linear network (the reduction uses linearity of the forward map).
    """
    if not spec.is_linear:
        raise ValueError("the signal-subspace reduction needs a linear network")
    one = stats if not isinstance(stats, (list, tuple)) else stats[0]
    if basis == "modes" and isinstance(stats, (list, tuple)) and any(
            not np.allclose(s.sigma_yx, one.sigma_yx) for s in stats):
        raise ValueError("basis='modes' takes one Stats for the whole batch")
    rspec, rparams = th.reduce_network(spec, params, basis=basis, stats=one)
    batch = np.shape(jax.tree_util.tree_leaves(rparams)[0])[:-2]
    flat = jax.tree_util.tree_map(lambda a: np.reshape(a, (-1,) + a.shape[len(batch):]), rparams)
    n = int(np.prod(batch)) if batch else 1
    data = stats if not isinstance(stats, (list, tuple)) else list(stats)
    if isinstance(data, list):
        if len(data) != n:
            raise ValueError(f"got {len(data)} Stats for {n} runs")
    lr = np.broadcast_to(np.asarray(lr, dtype=float), batch).reshape(-1)
    traj = train(rspec, data, flat, lr=lr, method=method, **train_kwargs)
    traj = traj.reshape(batch) if batch else traj
    return measure_unimodal_phase(traj), traj
