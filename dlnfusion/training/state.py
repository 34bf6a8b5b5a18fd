"""The state of a batch of gradient-descent runs inside the jitted loop.

Every leaf of :class:`RunState` has the batch (run) axis first, so the driver can drop
finished runs, pad or shard the batch with one ``tree_map``; the step counter of
:class:`LoopState` is shared by the batch.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..results import Status
from .observables import Crossing, Record, Snapshot

__all__ = ["MAX_STEPS", "CONVERGED", "DIVERGED", "CrossingState", "RunState",
           "LoopState", "init_state"]

# Status codes stored in :attr:`Trajectory.status` (see :class:`dlnfusion.results.Status`).
MAX_STEPS, CONVERGED, DIVERGED = (int(Status.MAX_STEPS), int(Status.CONVERGED),
                                  int(Status.DIVERGED))


class CrossingState(NamedTuple):
    prev: Any    # (P,) last evaluated progress (NaN before the first evaluation)
    times: Any   # (P, K) first crossing times (NaN: not reached)


class RunState(NamedTuple):
    """One run (batched: every leaf has the run axis in front)."""

    params: Any          # Params
    opt_state: Any       # optimizer state (() for plain gradient descent)
    active: Any          # bool: still training
    status: Any          # int8, see STATUS
    stop_time: Any       # step at which the run stopped
    final_loss: Any      # loss when it stopped
    records: dict        # name -> pytree of (R, ...) buffers, NaN where not recorded
    crossings: dict      # name -> CrossingState


class LoopState(NamedTuple):
    n: Any               # int32 step counter, shared by the batch
    runs: RunState


def init_state(params, opt_state, snapshot_shape: Snapshot, observables: dict, n_records: int,
               dtype) -> LoopState:
    """NaN-filled record buffers and crossing times for a batch with initial weights ``params``.

    ``snapshot_shape`` is the abstract snapshot of one run (``jax.eval_shape``), from which the
    shape of every observable's value is inferred.
    """
    B = int(jax.tree_util.tree_leaves(params)[0].shape[0])
    nan = lambda shape: np.full(shape, np.nan, dtype=dtype)  # noqa: E731
    records, crossings = {}, {}
    for name, obs in observables.items():
        out = jax.eval_shape(obs, snapshot_shape)
        if isinstance(obs, Record):
            records[name] = jax.tree_util.tree_map(
                lambda s: nan((B, n_records) + tuple(s.shape)), out)
        elif isinstance(obs, Crossing):
            if len(out.shape) != 1:
                raise ValueError(f"the crossing observable {name!r} must return a vector, got "
                                 f"shape {out.shape}")
            P, K = out.shape[0], int(np.shape(obs.levels)[0])
            crossings[name] = CrossingState(nan((B, P)), nan((B, P, K)))
    runs = RunState(params=params, opt_state=opt_state, active=np.ones((B,), dtype=bool),
                    status=np.full((B,), MAX_STEPS, dtype=np.int8),
                    stop_time=np.zeros((B,), dtype=dtype), final_loss=nan((B,)),
                    records=records, crossings=crossings)
    return LoopState(jnp.asarray(0, dtype=jnp.int32), runs)
