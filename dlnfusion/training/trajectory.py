"""The result of training a batch of runs: a pytree of numpy arrays with the batch in front."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import jax
import numpy as np

from ..networks import NetworkSpec, Params
from ..results import Run

__all__ = ["Trajectory"]

_META = ("spec", "method", "levels")


@dataclass(frozen=True, eq=False)
class Trajectory(Run):
    """Recorded training runs; every array but ``time`` has the batch shape in front.

    Attributes
    ----------
    time : (T,) times of the records, in steps (t = n for gradient descent).
    records : dict name -> (*batch, T, ...) values of every :class:`Record` observable, NaN
        after a run stopped. The defaults are ``loss``, ``maps`` (a tuple over modalities of
        (*batch, T, d_out, d_m) total maps), ``norms`` ((*batch, T, n_layers), ordered as
        ``spec.layer_labels``) and, with evaluation statistics, ``eval_loss``.
    crossings : dict name -> (*batch, P, K): first time entry p of a :class:`Crossing`
        observable reached level k (NaN if never). The defaults ``unimodal`` and ``global``
        have one entry per modality: its progress toward its unimodal solution and toward its
        block of the global solution.
    initial_params, final_params : Params with the batch shape in front (weights at the start
        and when the run stopped).
    final_loss : (*batch,) loss when the run stopped.
    final_maps : tuple over modalities of (*batch, d_out, d_m).
    stop_time : (*batch,) time at which the run stopped.
    status : (*batch,) :class:`~dlnfusion.results.Status` codes (int8), see :meth:`status_names`.
    lr : (*batch,) learning rates.
    levels : dict name -> levels of each crossing observable (static).
    """

    spec: NetworkSpec
    method: str
    levels: tuple                 # ((name, (level, ...)), ...): hashable, static
    time: np.ndarray
    records: dict
    crossings: dict
    initial_params: Params
    final_params: Params
    final_loss: np.ndarray
    final_maps: tuple
    stop_time: np.ndarray
    status: np.ndarray
    lr: np.ndarray = field(default=None)

    _static = _META

    # ------------------------------------------------------------------ default observables
    @property
    def loss(self) -> np.ndarray:
        return self._record("loss")

    @property
    def maps(self) -> tuple:
        return self._record("maps")

    @property
    def norms(self) -> np.ndarray:
        return self._record("norms")

    @property
    def eval_loss(self):
        """Population loss under the evaluation statistics, or None if none were given."""
        return self.records.get("eval_loss")

    def _record(self, name):
        if name not in self.records:
            raise KeyError(f"the observable {name!r} was not recorded; recorded: "
                           f"{sorted(self.records)}")
        return self.records[name]

    @property
    def names(self) -> tuple:
        return self.spec.names

    def crossing(self, modality, reference: str = "unimodal", level: float = 0.5) -> np.ndarray:
        """First time modality's progress toward ``reference`` reaches ``level``, (*batch,).

        ``reference`` names a crossing observable ("unimodal" or "global" by default).
        """
        if reference not in self.crossings:
            raise ValueError(f"reference must be one of {tuple(self.crossings)}, got {reference!r}")
        m = self.names.index(modality) if isinstance(modality, str) else int(modality)
        levels = dict(self.levels)[reference]
        if level not in levels:
            raise ValueError(f"level {level} was not tracked; tracked levels: {levels}")
        return self.crossings[reference][..., m, levels.index(level)]


jax.tree_util.register_dataclass(
    Trajectory, data_fields=[f.name for f in fields(Trajectory) if f.name not in _META],
    meta_fields=list(_META))
