"""The batch driver: gradient descent in segments, finished runs dropped, optional sharding.

The kernel (:func:`~.kernel.gd_segment`) runs ``segment`` steps at a time. Between segments
the host reads which runs are still active (one small transfer), stores the finished ones and,
once at most half of the batch is active, continues with the active runs only (padded to a
power of two, so that few batch sizes are compiled). Every run's arithmetic is the same in any
batch, so its results do not depend on the others. With a device mesh the runs are split over
its devices and finished runs stay in the batch (frozen) instead.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .kernel import gd_segment
from .state import LoopState, RunState

__all__ = ["run_gd", "place"]

#: Batches smaller than this are not compacted: a small batch costs little per step on top of
#: the loop's fixed cost, while every new batch size costs a compilation.
MIN_COMPACT = 16


def _take(tree, idx):
    return jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), tree)


def place(tree, mesh, split: bool = True):
    """Put every array of ``tree`` on ``mesh``, split along its first (run) axis (scalars, and
    everything when ``split`` is False, are replicated)."""
    from jax.sharding import NamedSharding, PartitionSpec

    def one(a):
        a = jnp.asarray(a)
        spec = PartitionSpec() if a.ndim == 0 or not split else PartitionSpec(mesh.axis_names[0])
        return jax.device_put(a, NamedSharding(mesh, spec))

    return jax.tree_util.tree_map(one, tree)


def _bucket(n: int, current: int) -> int:
    """Smallest power of two >= n, capped at the current batch size."""
    return min(current, 1 << max(0, int(np.ceil(np.log2(max(n, 1))))))


class _Store:
    """Host copies of finished runs, in the batch's original order (weights, records, ...)."""

    def __init__(self, size: int):
        self.size, self.out, self.done = size, None, np.zeros(size, dtype=bool)

    def add(self, runs: RunState, slots, rows):
        host = jax.device_get(_take(runs._replace(opt_state=()), jnp.asarray(slots)))
        if self.out is None:
            self.out = jax.tree_util.tree_map(
                lambda a: np.zeros((self.size,) + a.shape[1:], a.dtype), host)
        jax.tree_util.tree_map(lambda dst, src: dst.__setitem__(rows, src), self.out, host)
        self.done[rows] = True


def run_gd(state: LoopState, data, moments, lr, observables, stop_loss, diverge_loss, *,
           segment: int, sharding, sched=None, **static) -> RunState:
    """Run every run of ``state`` to its stop; returns the final RunState on the host."""
    B = int(lr.shape[0])
    steps = static["steps"]
    batch = (data, moments, lr, sched)
    if sharding is not None:
        state = place(state, sharding)
        batch = place(batch, sharding)
        observables = place(observables, sharding, split=False)
    else:
        # Committed to the default device like the kernel's own outputs, so that the first
        # segment and the later ones share one compiled executable.
        device = jax.local_devices()[0]
        state, batch, observables = jax.device_put((state, batch, observables), device)
    origin = np.arange(B)                     # original run of each batch slot (-1: padding)
    store = _Store(B)
    n_next = segment
    while True:
        state = gd_segment(state, *batch, observables, stop_loss, diverge_loss, n_next, **static)
        active = np.asarray(jax.device_get(state.runs.active))
        n_now = int(jax.device_get(state.n))
        if not active.any() or n_now > steps:
            break
        n_next = n_now + segment
        live = np.nonzero(active)[0]
        size = _bucket(live.size, active.size)
        if size <= active.size // 2 and active.size >= MIN_COMPACT and sharding is None:
            done = np.nonzero(~active & (origin >= 0))[0]
            if done.size:
                store.add(state.runs, done, origin[done])
            slots = np.concatenate([live, np.full(size - live.size, live[0])])
            pad = np.arange(size) >= live.size
            runs = _take(state.runs, jnp.asarray(slots))
            runs = runs._replace(active=jnp.where(jnp.asarray(pad), False, runs.active))
            state = LoopState(state.n, runs)
            batch = _take(batch, jnp.asarray(slots))
            origin = np.where(pad, -1, origin[slots])
    remaining = np.nonzero(origin >= 0)[0]
    store.add(state.runs, remaining, origin[remaining])
    if not store.done.all():
        raise RuntimeError("internal error: a run of the batch was not stored")
    return store.out
