"""The gradient-descent kernel: one jitted ``lax.while_loop`` over steps, ``vmap`` over runs.

Inside one step of one run, in this order: the loss, total maps and gradient at the current
weights; the snapshot observables see (records every ``stride`` steps, crossings every step);
the stopping checks (converged: loss < ``stop_loss``; diverged: non-finite loss or loss >
``diverge_loss``; budget: ``max_steps``); the update, for the runs still stepping. A stopped run
is frozen, so the other runs' results do not depend on it. Nothing is synchronized with the
host inside the loop.

The update is either the hand-written plain gradient descent W ← W − η ∂L/∂W (the fast path,
``optimizer=None``) or any optax gradient transformation built from the run's learning rate
(``optimizer=lambda lr: optax.sgd(lr, momentum=0.9)``; the factory is called inside the vmap,
so every run keeps its own learning rate). ``optax.sgd`` gives the fast path's numbers bit for
bit (tests/test_training.py).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .observables import Crossing, Record, Snapshot, first_crossing
from .state import CONVERGED, DIVERGED, CrossingState, LoopState, RunState

__all__ = ["gd_segment", "init_opt_state"]


def _select(mask, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(mask, a, b), new, old)


@partial(jax.jit, static_argnames=("optimizer",))
def _init_opt(params, lr, *, optimizer):
    return jax.vmap(lambda p, eta: optimizer(eta).init(p))(params, lr)


def init_opt_state(optimizer, params, lr):
    """Batched optimizer state (``()`` for the hand-written update)."""
    return () if optimizer is None else _init_opt(params, lr, optimizer=optimizer)


def _update(optimizer, params, grads, opt_state, eta):
    if optimizer is None:
        return jax.tree_util.tree_map(lambda p, g: p - eta * g, params, grads), opt_state
    import optax

    updates, opt_state = optimizer(eta).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def _write(buffers, value, idx, live):
    """Store ``value`` at record ``idx`` of a run's buffers (kept as they were if not live)."""
    def one(buf, val):
        old = jax.lax.dynamic_index_in_dim(buf, idx, 0, keepdims=False)
        return jax.lax.dynamic_update_index_in_dim(buf, jnp.where(live, val, old), idx, 0)
    return jax.tree_util.tree_map(one, buffers, value)


@partial(jax.jit, static_argnames=("spec", "objective", "optimizer", "max_steps", "stride"),
         donate_argnums=(0,))
def gd_segment(state: LoopState, data, moments, lr, observables, stop_loss, diverge_loss,
               n_stop, *, spec, objective, optimizer, max_steps, stride) -> LoopState:
    """Advance every active run by gradient descent until step ``n_stop`` (or all stopped)."""
    value_and_grad = jax.value_and_grad(partial(objective, spec), has_aux=True)
    records = {k: o for k, o in observables.items() if isinstance(o, Record)}
    crossings = {k: o for k, o in observables.items() if isinstance(o, Crossing)}
    last = jnp.minimum(n_stop, max_steps)

    def run_step(n, rs: RunState, d, mo, eta) -> RunState:
        (loss, maps), grads = value_and_grad(rs.params, d)
        t = n.astype(rs.stop_time.dtype)
        snap = Snapshot(t, rs.params, maps, loss, mo)
        active = rs.active

        def write(bufs):
            return {k: _write(bufs[k], o(snap), n // stride, active) for k, o in records.items()}
        recs = jax.lax.cond(n % stride == 0, write, lambda bufs: bufs, rs.records)
        cross = {}
        for k, o in crossings.items():
            c = rs.crossings[k]
            value = o(snap)
            times = first_crossing(c.times, c.prev, value, t - 1, t, o.levels, active)
            cross[k] = CrossingState(jnp.where(active, value, c.prev), times)

        finite = jnp.isfinite(loss)
        conv = active & finite & (loss < stop_loss)
        div = active & (~finite | (loss > diverge_loss))
        budget = active & ~conv & ~div & (n >= max_steps)
        status = jnp.where(conv, CONVERGED, jnp.where(div, DIVERGED, rs.status))
        stepping = active & ~conv & ~div & ~budget
        new_params, new_opt = _update(optimizer, rs.params, grads, rs.opt_state, eta)
        return RunState(params=_select(stepping, new_params, rs.params),
                        opt_state=_select(stepping, new_opt, rs.opt_state),
                        active=stepping, status=status.astype(jnp.int8),
                        stop_time=jnp.where(active, t, rs.stop_time),
                        final_loss=jnp.where(active, loss, rs.final_loss),
                        records=recs, crossings=cross)

    batched = jax.vmap(run_step, in_axes=(None, 0, 0, 0, 0))

    def body(c: LoopState) -> LoopState:
        return LoopState(c.n + 1, batched(c.n, c.runs, data, moments, lr))

    return jax.lax.while_loop(lambda c: (c.n <= last) & jnp.any(c.runs.active), body, state)
