"""The gradient-descent kernel: one jitted ``lax.while_loop`` over steps, ``vmap`` over runs.

Inside one step of one run, in this order: the interventions in force at step n (when the run
carries a schedule, :mod:`dlnfusion.interventions`: the active deficit's data, the active
lesions' projections of the weights, the gates' frozen matrices); the loss, total maps and
gradient at the current weights; the snapshot observables see (records every ``record_every`` steps, crossings every step);
the stopping checks (converged: loss < ``stop_loss``, never while a deficit window is in
force; diverged: non-finite loss or loss >
``diverge_loss``; budget: ``steps``); the update, for the runs still stepping. A stopped run
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

from ..interventions import schedule as sch
from ..results import crossing_update
from .observables import Crossing, Record, Snapshot
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


def _update(optimizer, params, grads, opt_state, eta, extra=None):
    """One optimizer step. A transformation that takes extra arguments
    (``optax.GradientTransformationExtraArgs``, e.g. ``optax.chain``) receives ``extra``: the
    step ``step`` and the run's data in force ``data`` (Moments at population level), which
    per-branch methods such as :func:`dlnfusion.transforms.inforeg` read."""
    if optimizer is None:
        return jax.tree_util.tree_map(lambda p, g: p - eta * g, params, grads), opt_state
    import optax

    tx = optimizer(eta)
    if extra and isinstance(tx, optax.GradientTransformationExtraArgs):
        updates, opt_state = tx.update(grads, opt_state, params, **extra)
    else:
        updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def _write(buffers, value, idx, live):
    """Store ``value`` at record ``idx`` of a run's buffers (kept as they were if not live)."""
    def one(buf, val):
        old = jax.lax.dynamic_index_in_dim(buf, idx, 0, keepdims=False)
        return jax.lax.dynamic_update_index_in_dim(buf, jnp.where(live, val, old), idx, 0)
    return jax.tree_util.tree_map(one, buffers, value)


def _intervene(plan, sched, n, params, data):
    """The weights (active lesions applied), the data in force, the frozen matrices at
    step n (``frozen`` None without gates) and whether a deficit window is in force."""
    if plan is None:
        return params, data, None, jnp.asarray(False)
    on = sch.active(sched, n.astype(sched.start.dtype))
    mats, tree = jax.tree_util.tree_flatten(params)      # Params leaves = matrices, in order
    if plan.has("lesion"):
        params = jax.tree_util.tree_unflatten(tree, sch.project(plan, on, sched, mats))
    data = sch.current_data(plan, on, data, sched) if plan.has("deficit") else data
    frozen = sch.frozen(plan, on, len(mats)) if plan.has("gate") else None
    return params, data, frozen, sch.in_deficit(plan, on)


def _per_matrix(frozen, fn, *trees):
    """Apply ``fn(frozen_i, leaf_i, ...)`` to every matrix of Params-shaped trees."""
    leaves = [jax.tree_util.tree_leaves(t) for t in trees]
    tree = jax.tree_util.tree_structure(trees[0])
    return jax.tree_util.tree_unflatten(tree, [fn(f, *ls) for f, *ls in zip(frozen, *leaves)])


@partial(jax.jit, static_argnames=("spec", "objective", "optimizer", "steps", "record_every",
                                   "plan"),
         donate_argnums=(0,))
def gd_segment(state: LoopState, data, moments, lr, sched, observables, stop_loss,
               diverge_loss, n_stop, *, spec, objective, optimizer, steps, record_every,
               plan=None) -> LoopState:
    """Advance every active run by gradient descent until step ``n_stop`` (or all stopped).

    ``sched`` holds the runs' intervention arrays (a :class:`~dlnfusion.interventions.Schedule`
    batched over runs) and ``plan`` what its windows do; both None without interventions."""
    value_and_grad = jax.value_and_grad(partial(objective, spec), has_aux=True)
    records = {k: o for k, o in observables.items() if isinstance(o, Record)}
    crossings = {k: o for k, o in observables.items() if isinstance(o, Crossing)}
    last = jnp.minimum(n_stop, steps)

    def run_step(n, rs: RunState, d, mo, eta, sc) -> RunState:
        params, d, frozen, in_deficit = _intervene(plan, sc, n, rs.params, d)
        (loss, maps), grads = value_and_grad(params, d)
        if frozen is not None:   # a gated matrix receives no gradient ...
            grads = _per_matrix(frozen, lambda f, g: jnp.where(f, 0.0, g), grads)
        t = n.astype(rs.stop_time.dtype)
        snap = Snapshot(t, params, maps, loss, mo)
        active = rs.active

        def write(bufs):
            return {k: _write(bufs[k], o(snap), n // record_every, active) for k, o in records.items()}
        recs = jax.lax.cond(n % record_every == 0, write, lambda bufs: bufs, rs.records)
        cross = {}
        for k, o in crossings.items():
            c = rs.crossings[k]
            value = o(snap)
            times = crossing_update(c.times, c.prev, value, t - 1, t, o.levels, active)
            cross[k] = CrossingState(jnp.where(active, value, c.prev), times)

        finite = jnp.isfinite(loss)
        # convergence counts on the run's own data only: inside a deficit window the loss is
        # that of other data, which a run may fit long before it has learned its task
        conv = active & finite & (loss < stop_loss) & ~in_deficit
        div = active & (~finite | (loss > diverge_loss))
        budget = active & ~conv & ~div & (n >= steps)
        status = jnp.where(conv, CONVERGED, jnp.where(div, DIVERGED, rs.status))
        stepping = active & ~conv & ~div & ~budget
        new_params, new_opt = _update(optimizer, params, grads, rs.opt_state, eta,
                                      {"step": n, "data": d})
        if frozen is not None:   # ... and does not move (an optimizer's momentum included)
            new_params = _per_matrix(frozen, lambda f, new, old: jnp.where(f, old, new),
                                     new_params, params)
        return RunState(params=_select(stepping, new_params, params),
                        opt_state=_select(stepping, new_opt, rs.opt_state),
                        active=stepping, status=status.astype(jnp.int8),
                        stop_time=jnp.where(active, t, rs.stop_time),
                        final_loss=jnp.where(active, loss, rs.final_loss),
                        records=recs, crossings=cross)

    batched = jax.vmap(run_step, in_axes=(None, 0, 0, 0, 0, 0))

    def body(c: LoopState) -> LoopState:
        return LoopState(c.n + 1, batched(c.n, c.runs, data, moments, lr, sched))

    return jax.lax.while_loop(lambda c: (c.n <= last) & jnp.any(c.runs.active), body, state)
