"""The public entry points: :func:`train` a batch of runs, :func:`simulate` (initialize + train).

Time convention (paper Section 2.3, Appendix B, J.1): one gradient-descent step with learning
rate η is one unit of time t, and the gradient-flow equations τ dW/dt = −∂L/∂W use τ = 1/η.
Gradient descent with step n is therefore the explicit Euler discretization of the flow at
t = n, and both methods report times in these units.
"""
from __future__ import annotations

import functools
from contextlib import nullcontext
from functools import partial
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import checks
from ..interventions import compile_schedule
from ..networks import NetworkSpec, Params, init_batch, total_maps
from ..precision import float64, resolve_dtype
from ..stats import Dataset, Stats
from .driver import run_gd
from .flow import gf_kernel
from .kernel import init_opt_state
from .objectives import Moments, Samples, objective
from .observables import Crossing, Snapshot, as_observable, default_observables
from .state import init_state
from .trajectory import Trajectory

__all__ = ["train", "simulate", "METHODS"]

METHODS = ("gd", "gf")


def _stack(items):
    return jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *items)


def _cast(tree, dtype):
    """Fresh device copies (the kernel donates its state, never the caller's arrays), floating
    point arrays in ``dtype``."""
    return jax.tree_util.tree_map(
        lambda a: jnp.array(a, dtype) if np.issubdtype(np.asarray(a).dtype, np.floating)
        else jnp.array(a), tree)


def _as_list(data, B):
    if isinstance(data, (Stats, Dataset)):
        return [data] * B
    data = list(data)
    if len(data) != B:
        raise ValueError(f"data has {len(data)} entries but the batch has {B} runs")
    return data


def _check_params(spec: NetworkSpec, params) -> int:
    if not isinstance(params, Params):
        raise ValueError("params must be a dlnfusion Params (see init_params / init_batch)")
    mats = params.matrices()
    if len(mats) != spec.n_layers or len(params.branches) != spec.n_modalities:
        raise ValueError(f"params has {len(mats)} matrices but the network has {spec.n_layers}")
    for W, shape, label in zip(mats, spec.layer_shapes, spec.layer_labels):
        if tuple(np.shape(W))[1:] != shape:
            raise ValueError(f"{label} has shape {tuple(np.shape(W))[1:]}, the network needs "
                             f"{shape}")
    return int(np.shape(mats[0])[0])


@functools.lru_cache(maxsize=32)
def _fixed_optimizer(transformation):
    """A ready optax transformation as a function of the learning rate (ignored), the same
    function for the same transformation so that the compiled loop is reused."""
    return lambda lr: transformation


def _check_budget(method, steps, record_every):
    if method == "gd":
        return checks.nonnegative_int("steps", steps), checks.positive_int("record_every", record_every)
    if not (np.isfinite(steps) and steps > 0):
        raise ValueError(f"steps (the final time) must be positive, got {steps!r}")
    if not (np.isfinite(record_every) and record_every > 0):
        raise ValueError(f"record_every must be a positive number of time units, got {record_every!r}")
    return float(steps), float(record_every)


def _check_data(spec, runs):
    kinds = {type(d) for d in runs}
    if len(kinds) != 1 or not kinds <= {Stats, Dataset}:
        raise ValueError("data must be all Stats or all Dataset, not a mix")
    for d in runs:
        if tuple(d.dims) != spec.input_dims:
            raise ValueError(f"data modality dims {tuple(d.dims)} do not match the network "
                             f"input dims {spec.input_dims}")
        d_out = d.output_dim if isinstance(d, Stats) else d.y.shape[1]
        if d_out != spec.output_dim:
            raise ValueError(f"data output dim {d_out} does not match the network "
                             f"output dim {spec.output_dim}")
    if kinds == {Dataset} and len({d.y.shape for d in runs}) != 1:
        raise ValueError("every Dataset in a batch needs the same number of samples")
    return Moments if kinds == {Stats} else Samples


def _observables(observe, levels, eval_stats) -> dict:
    obs = default_observables(levels, eval_stats)
    if observe is not None:
        if not isinstance(observe, Mapping):
            raise ValueError("observe must be a mapping name -> observable (None removes one)")
        for name, o in observe.items():
            if o is None:
                obs.pop(name, None)
            else:
                obs[name] = as_observable(name, o)
    return obs


def _check_whole_steps(sched):
    """Gradient descent counts steps: every finite window bound must be a whole number (a
    fractional start or end would silently move to the next step)."""
    for name, times in (("start", sched.start), ("end", sched.end)):
        bad = np.isfinite(times) & (times != np.round(times))
        if np.any(bad):
            r, k = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"interventions: window {k}: {name} must be a whole number of "
                             f"steps with method='gd', got {times[r, k]:g} (run {r})")


def _record_times(steps, record_every):
    """Times of the records: 0, record_every, 2·record_every, ... up to steps."""
    n = int(np.floor(steps / record_every + 1e-9)) + 1
    return np.arange(n) * float(record_every)


def train(spec: NetworkSpec, data, params: Params, *, lr=0.04, method: str = "gd",
          steps: int = 40_000, record_every: int = 10, stop_loss: float | None = 1e-4,
          diverge_loss: float = 1e12, loss: str = "squared", eval_stats: Stats | None = None,
          levels: Sequence[float] = (0.5,), observe: Mapping | None = None,
          optimizer: Callable | None = None, dtype="float64", rtol: float = 1e-8,
          atol: float = 1e-20, max_solver_steps: int = 2_000_000, segment: int = 4096,
          sharding=None, interventions: Sequence | None = None) -> Trajectory:
    """Train a batch of runs and return their :class:`Trajectory`.

    Parameters
    ----------
    spec : the network.
    data : a :class:`Stats` (population level), a :class:`Dataset` (samples), or a sequence
        with one of them per run (all of the same shape).
    params : batched :class:`Params` (leading axis = runs), e.g. from :func:`init_batch`.
    lr : learning rate η, scalar or one per run. Gradient flow uses τ = 1/η.
    method : "gd" (gradient descent) or "gf" (gradient flow, adaptive Tsit5 solver with
        relative/absolute tolerances ``rtol``/``atol``).
    steps : step budget (gradient flow: final time, in the same units; may be a float).
    record_every : record every ``record_every`` steps (gradient flow: every ``record_every`` time units).
    stop_loss : a run stops once its loss is below this (None: never); not while a
        :class:`~dlnfusion.interventions.Deficit` window is in force (the loss there is that of
        the deficit's data, which a run may fit before it has learned its own task).
    diverge_loss : a run whose loss exceeds this, or is not finite, is marked diverged.
    loss : "squared" or "logistic" (ln(1 + e^{−yŷ}), summed over outputs). With Stats, the
        logistic loss is the exact expectation for Gaussian inputs and a target jointly
        Gaussian with them (scalar output); with a Dataset it is the sample mean.
    eval_stats : population statistics under which the loss of the total map is also recorded
        (``eval_loss``); for sample-based runs also the reference of the default crossings.
    levels : progress levels whose first crossing times the default crossings record.
    observe : extra observables by name (see :mod:`dlnfusion.training.observables`): a function
        of a :class:`Snapshot` (recorded every ``record_every`` steps), a ``Record`` or a
        ``Crossing``; ``None`` drops a default one.
    optimizer : None for plain gradient descent (hand-written), an optax GradientTransformation
        (with its own learning rate), or a function of the learning
        rate returning an optax gradient transformation, e.g. ``optax.sgd`` or
        ``lambda lr: optax.sgd(lr, momentum=0.9)``. Gradient descent only.
    dtype : "float64" (default) or "float32": the precision of the whole computation.
    segment : gradient descent runs in segments of this many steps; between segments the
        finished runs are dropped from the batch (one small host transfer per segment).
    sharding : optional one-axis ``jax.sharding.Mesh``; the runs are split over its devices
        (see dlnfusion.sweep). The batch size must be a multiple of the number of devices.
    interventions : windows during which the data change (:class:`~dlnfusion.interventions.Deficit`),
        a group of parameters receives no gradient (:class:`~dlnfusion.interventions.Gate`) or a
        mode/unit is held at zero (:class:`~dlnfusion.interventions.Lesion`); start and end in
        steps, whole numbers (gradient flow: time units, any number), each a scalar or one
        value per run. The windows become arrays of the compiled loop: new start/end values
        do not recompile. Gradient flow integrates piecewise (the solver steps onto every
        window boundary exactly); there a lesion must start at t = 0 (a later start would be
        a jump of the state). The recorded loss is the loss on the data in force.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(optimizer, optax.GradientTransformation):
        optimizer = _fixed_optimizer(optimizer)       # it carries its own learning rate
    if optimizer is not None and (not callable(optimizer) or method != "gd"):
        raise ValueError("optimizer must be an optax GradientTransformation or a function of "
                         "the learning rate returning one (e.g. optax.sgd), and needs "
                         "method='gd'")
    steps, record_every = _check_budget(method, steps, record_every)
    dt = resolve_dtype(dtype)
    B = _check_params(spec, params)
    runs = _as_list(data, B)
    kind = _check_data(spec, runs)
    fn = objective(kind, loss, spec)
    lr_arr = np.broadcast_to(np.asarray(lr, dtype=float), (B,)).copy()
    if np.any(~np.isfinite(lr_arr)) or np.any(lr_arr <= 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    if len(tuple(levels)) < 1:
        raise ValueError("levels must contain at least one value")
    stop = -np.inf if stop_loss is None else float(stop_loss)
    ref = runs if kind is Moments else [eval_stats or d.stats() for d in runs]
    plan, sched = (None, None) if not interventions else \
        compile_schedule(spec, interventions, runs, kind)
    if plan is not None and method == "gd":
        _check_whole_steps(sched)
    if plan is not None and method == "gf" and plan.has("lesion"):
        starts = sched.start[:, [k for k, kd in enumerate(plan.kinds) if kd == "lesion"]]
        if np.any(starts > 0):
            raise ValueError("interventions: with method='gf' a Lesion must start at 0 (a "
                             "later start is a jump of the weights; use method='gd')")
    initial = jax.tree_util.tree_map(np.asarray, params)
    time = _record_times(steps, record_every)
    with float64() if dt is np.float64 else nullcontext():
        obs = _cast(_observables(observe, levels, eval_stats), dt)
        batch = _cast((_stack([kind.of(d) for d in runs]), _stack([Moments.of(s) for s in ref]),
                       lr_arr), dt)
        p0 = _cast(params, dt)
        sc = None if sched is None else _cast(sched, dt)
        static = dict(spec=spec, objective=fn, steps=steps, record_every=record_every, plan=plan)
        if method == "gd":
            out = _train_gd(p0, batch, obs, stop, float(diverge_loss), len(time), dt, static,
                            optimizer, int(segment), sharding, sc)
        else:
            out = _train_gf(p0, batch, obs, time, stop, float(diverge_loss), float(rtol),
                            float(atol), int(max_solver_steps), static, sc)
        records, crossings, pf, final_loss, stop_time, status = out
        final_maps = jax.device_get(jax.vmap(lambda p: total_maps(spec, p))(_cast(pf, dt)))
    lev = tuple((k, tuple(float(v) for v in np.asarray(o.levels)))
                for k, o in obs.items() if isinstance(o, Crossing))
    host = lambda t: jax.tree_util.tree_map(np.asarray, t)  # noqa: E731
    return Trajectory(spec=spec, method=method, levels=lev, time=time, records=host(records),
                      crossings=host(crossings), initial_params=initial,
                      final_params=host(pf), final_loss=np.asarray(final_loss),
                      final_maps=host(final_maps), stop_time=np.asarray(stop_time),
                      status=np.asarray(status), lr=lr_arr)


def _train_gd(p0, batch, obs, stop, diverge, n_records, dt, static, optimizer, segment,
              sharding, sched):
    data, moments, lr = batch
    one = jax.tree_util.tree_map(lambda a: a[0], (p0, data, moments))
    snap = jax.eval_shape(partial(_snapshot, static, dt), *one)
    state = init_state(p0, init_opt_state(optimizer, p0, lr), snap, obs, n_records, dt)
    runs = run_gd(state, data, moments, lr, obs, stop, diverge, segment=segment,
                  sharding=sharding, optimizer=optimizer, sched=sched, **static)
    cross = {k: c.times for k, c in runs.crossings.items()}
    return runs.records, cross, runs.params, runs.final_loss, runs.stop_time, runs.status


def _snapshot(static, dt, p, d, mo):
    """The snapshot of one run at t = 0 (used abstractly, for the observables' shapes)."""
    loss, maps = static["objective"](static["spec"], p, d)
    return Snapshot(jnp.zeros((), dt), p, maps, loss, mo)


def _train_gf(p0, batch, obs, time, stop, diverge, rtol, atol, max_solver_steps, static,
              sched):
    data, moments, lr = batch
    res = gf_kernel(p0, data, moments, lr, sched, obs, jnp.asarray(time, lr.dtype), stop,
                    diverge, rtol, atol, max_solver_steps=max_solver_steps, **static)
    return jax.device_get(res)


def _expand_window(window, C, S, single):
    """A window whose start/end are given per configuration ((C,) or (C, S); (S,) for one
    Stats/Dataset), flattened to one value per run of the (configuration, seed) batch."""
    import dataclasses

    shape = (S,) if single else (C, S)

    def per_run(name, value):
        if value is None:
            return None
        arr = np.asarray(value, dtype=float)
        if arr.ndim == 1 and not single:
            arr = arr[:, None]
        try:
            return np.broadcast_to(arr, shape).reshape(-1)
        except ValueError as exc:
            raise ValueError(f"interventions: {name} of {type(window).__name__} must be a "
                             f"scalar or have the batch shape {shape}, got shape {arr.shape}") \
                from exc

    if not dataclasses.is_dataclass(window) or not hasattr(window, "start"):
        return window                  # train() names what is wrong with it
    out = dataclasses.replace(window, start=per_run("start", window.start),
                              end=per_run("end", window.end))
    alt = getattr(window, "data", None)
    if alt is not None and not isinstance(alt, (Stats, Dataset)) and not single:
        alt = list(alt)                # one deficit data set per configuration
        if len(alt) == C:
            out = dataclasses.replace(out, data=[a for a in alt for _ in range(S)])
    return out


def simulate(spec: NetworkSpec, data, seeds: Sequence[int] = (0,), *, scheme: str = "normal",
             scale=1e-9, **train_kwargs) -> Trajectory:
    """Initialize and train every (data, seed) pair.

    ``data`` is one Stats/Dataset or a sequence of them (configurations). The result has batch
    shape (n_configs, n_seeds), or (n_seeds,) for a single Stats/Dataset. ``scale`` is the
    initialization scale (scalar, or one per configuration). Keyword arguments go to
    :func:`train`; the start and end of ``interventions`` windows may be given per configuration
    (shape (n_configs,) or (n_configs, n_seeds)).
    """
    single = isinstance(data, (Stats, Dataset))
    configs = [data] if single else list(data)
    if not configs:
        raise ValueError("data must contain at least one Stats or Dataset")
    seeds = [checks.integer("seeds", s, what="integers") for s in np.atleast_1d(seeds)]
    C, S = len(configs), len(seeds)
    scales = np.repeat(np.broadcast_to(np.asarray(scale, dtype=float), (C,)), S)
    if scheme == "balanced":   # (runs, modalities): one scale per run, the same per branch
        scales = np.repeat(scales[:, None], spec.n_modalities, axis=1)
    runs = [cfg for cfg in configs for _ in range(S)]
    params = init_batch(spec, seeds * C, scheme, scales,
                        stats=[r if isinstance(r, Stats) else None for r in runs])
    lr = train_kwargs.pop("lr", 0.04)
    lr = np.repeat(np.broadcast_to(np.asarray(lr, dtype=float), (C,)), S)
    if train_kwargs.get("interventions"):
        train_kwargs["interventions"] = [_expand_window(w, C, S, single)
                                         for w in train_kwargs["interventions"]]
    traj = train(spec, runs, params, lr=lr, **train_kwargs)
    return traj.reshape(S) if single else traj.reshape(C, S)
