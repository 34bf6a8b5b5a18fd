"""Gradient flow τ dW/dt = −∂L/∂W (τ = 1/η), integrated with diffrax, vmapped over runs.

The adaptive Tsit5 solver (relative/absolute tolerances ``rtol``/``atol``) stops at the first
time the loss falls below ``stop_loss`` (an event) or at the final time. The observables are
evaluated at the record times 0, stride, 2·stride, ... (diffrax ``SaveAt(fn=...)``); crossing
times are interpolated between consecutive records with the same function gradient descent
uses between steps, so pick ``stride`` small against the transitions. Records after the stop
time are NaN.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.flatten_util
import jax.numpy as jnp

from .observables import Crossing, Record, Snapshot, series_crossings
from .state import CONVERGED, DIVERGED, MAX_STEPS

__all__ = ["gf_kernel"]


@partial(jax.jit, static_argnames=("spec", "objective", "max_steps", "stride",
                                   "max_solver_steps"))
def gf_kernel(params, data, moments, lr, observables, ts, stop_loss, diverge_loss, rtol, atol,
              *, spec, objective, max_steps, stride, max_solver_steps):
    """Integrate every run; returns (records, crossings, final params, final loss, stop time,
    status), each with the run axis first."""
    import diffrax

    records = {k: o for k, o in observables.items() if isinstance(o, Record)}
    crossings = {k: o for k, o in observables.items() if isinstance(o, Crossing)}
    t1 = float(max_steps)

    def one(p0, d, mo, eta):
        flat0, unravel = jax.flatten_util.ravel_pytree(p0)

        def loss_at(y):
            return objective(spec, unravel(y), d)[0]

        def vf(t, y, args):
            return -eta * jax.grad(loss_at)(y)

        def observe(t, y, args):
            p = unravel(y)
            loss, maps = objective(spec, p, d)
            snap = Snapshot(t, p, maps, loss, mo)
            return ({k: o(snap) for k, o in records.items()},
                    {k: o(snap) for k, o in crossings.items()})

        def stop(t, y, args, **kwargs):
            loss = loss_at(y)
            return ~(loss >= stop_loss) | (loss > diverge_loss)

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf), diffrax.Tsit5(), t0=0.0, t1=t1, dt0=None, y0=flat0,
            saveat=diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts, fn=observe),
                                        diffrax.SubSaveAt(t1=True)]),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            event=diffrax.Event(stop), max_steps=max_solver_steps, throw=False)
        (recs, progress), yfinal = sol.ys
        pf = unravel(yfinal[-1])
        final_loss = loss_at(yfinal[-1])
        t_end = sol.ts[1][-1]
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
        cross = {k: series_crossings(progress[k], ts, crossings[k].levels) for k in crossings}
        return recs, cross, pf, final_loss, t_end, status.astype(jnp.int8)

    return jax.vmap(one, in_axes=(0, 0, 0, 0))(params, data, moments, lr)
