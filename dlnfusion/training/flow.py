"""Gradient flow τ dW/dt = −∂L/∂W (τ = 1/η), integrated with diffrax, vmapped over runs.

The adaptive Tsit5 solver (relative/absolute tolerances ``rtol``/``atol``) stops at the first
time the loss falls below ``stop_loss`` (an event) or at the final time. The observables are
evaluated at the record times 0, record_every, 2·record_every, ... (diffrax ``SaveAt(fn=...)``); crossing
times are interpolated between consecutive records with the same function gradient descent
uses between steps, so pick ``record_every`` small against the transitions. Records after the stop
time are NaN.

With interventions (:mod:`dlnfusion.interventions`) the vector field reads the windows at time
t: the data in force, zero velocity for gated matrices, the velocity of a lesioned matrix
projected like the matrix. The field is discontinuous at the window boundaries, which are
given to the step-size controller as ``jump_ts``: the solver steps onto every switch time
exactly instead of smearing it over a step.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.flatten_util
import jax.numpy as jnp

from ..interventions import schedule as sch
from ..results import crossing_update
from .observables import Crossing, Record, Snapshot
from .state import CONVERGED, DIVERGED, MAX_STEPS

__all__ = ["gf_kernel"]


@partial(jax.jit, static_argnames=("spec", "objective", "steps", "record_every",
                                   "max_solver_steps", "plan"))
def gf_kernel(params, data, moments, lr, sched, observables, ts, stop_loss, diverge_loss, rtol,
              atol, *, spec, objective, steps, record_every, max_solver_steps, plan=None):
    """Integrate every run; returns (records, crossings, final params, final loss, stop time,
    status), each with the run axis first."""
    import diffrax

    records = {k: o for k, o in observables.items() if isinstance(o, Record)}
    crossings = {k: o for k, o in observables.items() if isinstance(o, Crossing)}
    t1 = float(steps)

    def one(p0, d0, mo, eta, sc):
        if plan is not None and plan.has("lesion"):        # lesions that start at t = 0
            on0 = sch.active(sc, jnp.zeros((), sc.start.dtype))
            mats, tree = jax.tree_util.tree_flatten(p0)
            p0 = jax.tree_util.tree_unflatten(tree, sch.project(plan, on0, sc, mats))
        flat0, unravel = jax.flatten_util.ravel_pytree(p0)

        def data_at(t):
            if plan is None or not plan.has("deficit"):
                return d0
            return sch.current_data(plan, sch.active(sc, t), d0, sc)

        def loss_at(t, y):
            return objective(spec, unravel(y), data_at(t))[0]

        def vf(t, y, args):
            g = jax.grad(lambda x: loss_at(t, x))(y)
            if plan is not None and (plan.has("gate") or plan.has("lesion")):
                on = sch.active(sc, t)
                mats, tree = jax.tree_util.tree_flatten(unravel(g))
                if plan.has("gate"):
                    mats = [jnp.where(f, 0.0, m)
                            for f, m in zip(sch.frozen(plan, on, len(mats)), mats)]
                if plan.has("lesion"):
                    mats = sch.project(plan, on, sc, mats)   # velocity projected like W
                g = jax.flatten_util.ravel_pytree(jax.tree_util.tree_unflatten(tree, mats))[0]
            return -eta * g

        def observe(t, y, args):
            p = unravel(y)
            loss, maps = objective(spec, p, data_at(t))
            snap = Snapshot(t, p, maps, loss, mo)
            return ({k: o(snap) for k, o in records.items()},
                    {k: o(snap) for k, o in crossings.items()})

        def stop(t, y, args, **kwargs):
            loss = loss_at(t, y)
            converged = ~(loss >= stop_loss)
            if plan is not None and plan.has("deficit"):    # not on a deficit's data
                converged = converged & ~sch.in_deficit(plan, sch.active(sc, t))
            return converged | (loss > diverge_loss)

        if plan is None:
            controller = diffrax.PIDController(rtol=rtol, atol=atol)
        else:    # window boundaries: the field jumps there (infinite ends never come)
            jumps = jnp.concatenate([sc.start, sc.end])
            jumps = jnp.where(jnp.isfinite(jumps) & (jumps > 0) & (jumps < t1), jumps, t1)
            controller = diffrax.PIDController(rtol=rtol, atol=atol, jump_ts=jnp.sort(jumps))
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf), diffrax.Tsit5(), t0=0.0, t1=t1, dt0=None, y0=flat0,
            saveat=diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts, fn=observe),
                                        diffrax.SubSaveAt(t1=True)]),
            stepsize_controller=controller,
            event=diffrax.Event(stop), max_steps=max_solver_steps, throw=False)
        (recs, progress), yfinal = sol.ys
        pf = unravel(yfinal[-1])
        t_end = sol.ts[1][-1]
        final_loss = loss_at(t_end, yfinal[-1])
        event = sol.result == diffrax.RESULTS.event_occurred
        ok = jnp.isfinite(final_loss) & (final_loss <= diverge_loss)
        status = jnp.where(event & ok & (final_loss < stop_loss), CONVERGED,
                           jnp.where(ok & (sol.result == diffrax.RESULTS.successful),
                                     MAX_STEPS, DIVERGED))
        after = ts > t_end               # records after the stop time are not simulated

        def mask(a):
            return jnp.where(after.reshape(after.shape + (1,) * (a.ndim - 1)), jnp.nan, a)
        recs = jax.tree_util.tree_map(mask, recs)
        progress = jax.tree_util.tree_map(mask, progress)
        cross = {k: _series_crossings(progress[k], ts, crossings[k].levels) for k in crossings}
        return recs, cross, pf, final_loss, t_end, status.astype(jnp.int8)

    return jax.vmap(one, in_axes=(0, 0, 0, 0, 0))(params, data, moments, lr, sched)


def _series_crossings(series, ts, levels):
    """First crossing times of every level in a saved series: ``series`` (T, P) recorded at
    times ``ts`` (T,), ``levels`` (K,) -> (P, K), NaN where a level is never reached."""
    P, K = series.shape[1], levels.shape[0]

    def step(carry, x):
        times, prev, t_prev = carry
        value, t = x
        times = crossing_update(times, prev, value, t_prev, t, levels, True)
        return (times, value, t), None

    init = (jnp.full((P, K), jnp.nan, series.dtype), jnp.full((P,), jnp.nan, series.dtype),
            jnp.zeros((), series.dtype))
    (times, _, _), _ = jax.lax.scan(step, init, (series, ts))
    return times
