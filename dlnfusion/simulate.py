"""Gradient descent and gradient flow for fusion networks, batched over runs.

Time convention (paper Section 2.3, Appendix B, J.1): one gradient-descent step with learning
rate η is one unit of time t, and the gradient-flow equations τ dW/dt = −∂L/∂W use τ = 1/η.
Gradient descent with step n is therefore the explicit Euler discretization of the flow at
t = n, and both simulators report times in these units.

Objectives
----------
* Population level (a :class:`~dlnfusion.stats.Stats`): L = ½⟨‖y − ŷ‖²⟩ written in moments,
  L(W) = L* + ½ tr[(W − W*) Σ (W − W*)ᵀ] with W = [W_A^tot, W_B^tot, ...], W* = Σ_yx Σ^{-1}
  and L* the noise floor. This equals ½ tr(Σ_yy − 2WΣ_xy + WΣWᵀ) exactly and is full-batch
  gradient descent on any dataset with these moments, at a cost independent of the sample
  count. Requires a linear network.
* Samples (a :class:`~dlnfusion.stats.Dataset`): full-batch gradient descent on a finite
  dataset with the squared loss ½ mean‖y − ŷ‖² or the logistic loss mean log(1 + e^{−yŷ}).
  Works for ReLU networks too.

Batching
--------
Every run of a batch has its own weights, data and learning rate; the data must have a
common shape. Gradient descent runs the batch in one ``lax.while_loop`` whose per-run work is
``vmap``-ed; a run that converges (loss < ``stop_loss``), diverges (non-finite loss or loss >
``diverge_loss``) or exhausts ``max_steps`` is frozen and its status recorded, so the other
runs' results do not depend on it. Nothing is synchronized with the host inside the loop.

Observables
-----------
Every ``stride`` steps: the loss, the total map of each modality, the Frobenius norm of
every layer and, if ``eval_stats`` is given, the population loss under those statistics
(the generalization error plus its noise floor). Every step: the first time the progress of
each modality's total map toward its unimodal solution Σ_yx_m Σ_m^{-1} and toward its part of
the global solution reaches each of ``levels`` (linearly interpolated between steps). The
progress of W_m toward a reference R_m is ⟨W_m, R_m⟩ / ‖R_m‖² (1 at the reference).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import NamedTuple, Sequence

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from .losses import gaussian_logistic
from .networks import NetworkSpec, Params, forward, init_params, layer_norms, total_maps
from .stats import Dataset, Stats

__all__ = ["Trajectory", "STATUS", "train", "simulate", "init_batch"]

#: Status codes stored in :attr:`Trajectory.status`.
STATUS = {0: "max_steps", 1: "converged", 2: "diverged"}
_MAX_STEPS, _CONVERGED, _DIVERGED = 0, 1, 2

LOSSES = ("squared", "logistic")
METHODS = ("gd", "gf")


class _Population(NamedTuple):
    sigma: jnp.ndarray     # (D, D)
    w_star: jnp.ndarray    # (d_out, D)
    l_star: jnp.ndarray    # ()
    sigma_yx: jnp.ndarray  # (d_out, D)
    sigma_yy: jnp.ndarray  # (d_out, d_out)


class _Samples(NamedTuple):
    X: jnp.ndarray  # (P, D)
    Y: jnp.ndarray  # (P, d_out)


class _Refs(NamedTuple):
    unimodal: jnp.ndarray  # (d_out, D): per-modality blocks Σ_yx_m Σ_m^{-1}
    glob: jnp.ndarray      # (d_out, D): W*


def _population(stats: Stats) -> _Population:
    return _Population(np.asarray(stats.sigma), stats.global_solution(),
                       np.asarray(max(stats.min_loss(), 0.0)), np.asarray(stats.sigma_yx),
                       np.asarray(stats.sigma_yy))


def _refs(stats: Stats) -> _Refs:
    uni = np.concatenate([stats.unimodal_solution(m) for m in range(stats.n_modalities)], axis=1)
    return _Refs(uni, stats.global_solution())


# ---------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class Trajectory:
    """Recorded training runs; every array has the batch shape in front.

    Attributes
    ----------
    time : (T,) times of the records, in steps (t = n for gradient descent).
    loss : (*batch, T) training loss; NaN after a run stopped.
    maps : tuple over modalities of (*batch, T, d_out, d_m) total maps W_m^tot.
    norms : (*batch, T, n_layers) Frobenius norms, ordered as ``spec.layer_labels``.
    eval_loss : (*batch, T) population loss under ``eval_stats`` or None.
    crossings : dict with keys "unimodal" and "global", each (*batch, M, n_levels): first time
        the progress of modality m toward that reference reaches each level (NaN if never).
    initial_params, final_params : Params with the batch shape in front (weights at the start
        and when the run stopped).
    final_loss : (*batch,) loss when the run stopped.
    final_maps : tuple over modalities of (*batch, d_out, d_m).
    stop_time : (*batch,) time at which the run stopped.
    status : (*batch,) int codes, see :data:`STATUS` and :meth:`status_names`.
    lr : (*batch,) learning rates.
    """

    spec: NetworkSpec
    method: str
    time: np.ndarray
    loss: np.ndarray
    maps: tuple
    norms: np.ndarray
    eval_loss: np.ndarray | None
    crossings: dict
    initial_params: Params
    final_params: Params
    final_loss: np.ndarray
    final_maps: tuple
    stop_time: np.ndarray
    status: np.ndarray
    lr: np.ndarray
    levels: tuple
    names: tuple = field(default=())

    @property
    def batch_shape(self) -> tuple:
        return tuple(self.status.shape)

    def status_names(self) -> np.ndarray:
        """Status of every run as strings: 'converged', 'max_steps' or 'diverged'."""
        return np.vectorize(STATUS.get, otypes=[object])(self.status)

    def crossing(self, modality, reference: str = "unimodal", level: float = 0.5) -> np.ndarray:
        """First time modality's progress toward ``reference`` reaches ``level``, (*batch,)."""
        if reference not in self.crossings:
            raise ValueError(f"reference must be one of {tuple(self.crossings)}, got {reference!r}")
        m = self.names.index(modality) if isinstance(modality, str) else int(modality)
        if level not in self.levels:
            raise ValueError(f"level {level} was not tracked; tracked levels: {self.levels}")
        return self.crossings[reference][..., m, self.levels.index(level)]

    def _map_leaves(self, fn) -> "Trajectory":
        def f(a):
            return None if a is None else fn(a)
        return replace(
            self,
            loss=f(self.loss), maps=tuple(f(m) for m in self.maps), norms=f(self.norms),
            eval_loss=f(self.eval_loss),
            crossings={k: f(v) for k, v in self.crossings.items()},
            initial_params=jax.tree_util.tree_map(f, self.initial_params),
            final_params=jax.tree_util.tree_map(f, self.final_params),
            final_loss=f(self.final_loss), final_maps=tuple(f(m) for m in self.final_maps),
            stop_time=f(self.stop_time), status=f(self.status), lr=f(self.lr))

    def reshape(self, *shape) -> "Trajectory":
        """Give the runs a new batch shape (e.g. configurations × seeds)."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        nb = len(self.batch_shape)
        if int(np.prod(shape)) != int(np.prod(self.batch_shape)):
            raise ValueError(f"cannot reshape batch {self.batch_shape} into {shape}")
        return self._map_leaves(lambda a: np.reshape(a, shape + a.shape[nb:]))

    def __getitem__(self, index) -> "Trajectory":
        """Index the batch, e.g. ``traj[2]`` or ``traj[:, 0]``."""
        idx = index if isinstance(index, tuple) else (index,)
        if len(idx) > len(self.batch_shape):
            raise IndexError(f"too many indices for batch shape {self.batch_shape}")
        return self._map_leaves(lambda a: np.asarray(a)[idx])


# ---------------------------------------------------------------------- kernels
def _loss_fn(spec: NetworkSpec, kind: str, loss_kind: str):
    slices, start = [], 0
    for d in spec.input_dims:
        slices.append(slice(start, start + d))
        start += d

    def fn(params, obj):
        maps = total_maps(spec, params)
        if kind == "population":
            W = jnp.concatenate(maps, axis=1)
            if loss_kind == "logistic":
                return gaussian_logistic(W, obj.sigma, obj.sigma_yx, obj.sigma_yy), maps
            D = W - obj.w_star
            return obj.l_star + 0.5 * jnp.sum((D @ obj.sigma) * D), maps
        yhat = forward(spec, params, [obj.X[:, s] for s in slices])
        if loss_kind == "squared":
            return 0.5 * jnp.mean(jnp.sum((obj.Y - yhat) ** 2, axis=-1)), maps
        return jnp.mean(jnp.sum(jax.nn.softplus(-obj.Y * yhat), axis=-1)), maps

    return fn


def _eval_loss(W, ev: _Population):
    D = W - ev.w_star
    return ev.l_star + 0.5 * jnp.sum((D @ ev.sigma) * D)


def _progress(W, refs: _Refs, dims):
    """(2M,) progress of each modality toward its unimodal and its global reference."""
    out = []
    for R in (refs.unimodal, refs.glob):
        start = 0
        for d in dims:
            Wm, Rm = W[:, start:start + d], R[:, start:start + d]
            nrm = jnp.sum(Rm * Rm)
            out.append(jnp.where(nrm > 0, jnp.sum(Wm * Rm) / jnp.where(nrm > 0, nrm, 1.0),
                                 jnp.nan))
            start += d
    return jnp.stack(out)


def _bcast(mask, x):
    return mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))


def _gd_state(params, B, R, spec, K, with_eval):
    """Initial loop state of a batch of B runs (record buffers of R records, NaN-filled)."""
    M, D, d_out = spec.n_modalities, sum(spec.input_dims), spec.output_dim
    nan = np.nan
    return dict(
        n=np.asarray(0, dtype=np.int32),
        params=params,
        active=np.ones((B,), dtype=bool),
        status=np.full((B,), _MAX_STEPS, dtype=np.int8),
        stop_time=np.zeros((B,)),
        final_loss=np.full((B,), nan),
        rec_loss=np.full((R, B), nan),
        rec_maps=np.full((R, B, d_out, D), nan),
        rec_norms=np.full((R, B, spec.n_layers), nan),
        rec_eval=np.full((R, B), nan) if with_eval else np.zeros((1, B)),
        prev=np.full((B, 2 * M), nan),
        cross=np.full((B, 2 * M, K), nan),
    )


#: Batches smaller than this are not compacted: a small batch costs little per step on top of
#: the loop's fixed cost, while every new batch size costs a compilation.
_MIN_COMPACT = 16

#: State entries whose batch axis is 1 (the record buffers); all others have it at 0.
_RECORDS = ("rec_loss", "rec_maps", "rec_norms", "rec_eval")


@partial(jax.jit, static_argnames=("spec", "kind", "loss_kind", "max_steps", "stride",
                                   "with_eval"), donate_argnums=(0,))
def _gd_segment(state, obj, refs, ev, lr, levels, stop_loss, diverge_loss, n_stop, *, spec,
                kind, loss_kind, max_steps, stride, with_eval):
    """Advance every active run by gradient descent until step ``n_stop`` (or all stopped)."""
    dims = spec.input_dims
    loss_fn = _loss_fn(spec, kind, loss_kind)
    batched_vg = jax.vmap(jax.value_and_grad(loss_fn, has_aux=True))
    batched_loss = jax.vmap(loss_fn)
    batched_progress = jax.vmap(partial(_progress, dims=dims))
    batched_norms = jax.vmap(layer_norms)
    batched_eval = jax.vmap(_eval_loss)
    last = jnp.minimum(n_stop, max_steps)

    def record(c):
        """Write the observables of the runs active at step n (a multiple of stride)."""
        n, active = c["n"], c["active"]
        loss, maps = batched_loss(c["params"], obj)
        W = jnp.concatenate(maps, axis=-1)
        idx = n // stride

        def rec(buf, val):
            old = jax.lax.dynamic_index_in_dim(buf, idx, 0, keepdims=False)
            new = jnp.where(_bcast(active, val), val, old)
            return jax.lax.dynamic_update_index_in_dim(buf, new, idx, 0)

        out = dict(c)
        out["rec_loss"] = rec(c["rec_loss"], loss)
        out["rec_maps"] = rec(c["rec_maps"], W)
        out["rec_norms"] = rec(c["rec_norms"], batched_norms(c["params"]))
        if with_eval:
            out["rec_eval"] = rec(c["rec_eval"], batched_eval(W, ev))
        return out

    def step(c):
        """One gradient step of every active run, with crossing and stopping checks."""
        n, active = c["n"], c["active"]
        (loss, maps), grads = batched_vg(c["params"], obj)
        W = jnp.concatenate(maps, axis=-1)
        probe = batched_progress(W, refs)
        out = dict(c)
        # First crossing of each level, interpolated linearly between steps n-1 and n.
        prev = c["prev"]
        reached = (probe[..., None] >= levels) & jnp.isnan(c["cross"]) & active[:, None, None]
        denom = probe - prev
        frac = (levels - prev[..., None]) / jnp.where(denom == 0, 1.0, denom)[..., None]
        frac = jnp.clip(jnp.where(jnp.isfinite(frac), frac, 1.0), 0.0, 1.0)
        t_cross = jnp.where(n == 0, 0.0, (n - 1) + frac)
        out["cross"] = jnp.where(reached, t_cross, c["cross"])
        out["prev"] = jnp.where(active[:, None], probe, prev)

        finite = jnp.isfinite(loss)
        conv = active & finite & (loss < stop_loss)
        div = active & (~finite | (loss > diverge_loss))
        budget = active & ~conv & ~div & (n >= max_steps)
        status = jnp.where(conv, _CONVERGED, jnp.where(div, _DIVERGED, c["status"]))
        out["status"] = status.astype(jnp.int8)
        out["final_loss"] = jnp.where(active, loss, c["final_loss"])
        out["stop_time"] = jnp.where(active, n.astype(float), c["stop_time"])
        stepping = active & ~conv & ~div & ~budget
        out["params"] = jax.tree_util.tree_map(
            lambda p, g: jnp.where(_bcast(stepping, p), p - _bcast(lr, p) * g, p),
            c["params"], grads)
        out["active"] = stepping
        out["n"] = n + 1
        return out

    def body(c):
        """Record when n is a multiple of stride, then take one step."""
        return step(jax.lax.cond(c["n"] % stride == 0, record, lambda x: x, c))

    return jax.lax.while_loop(lambda c: (c["n"] <= last) & jnp.any(c["active"]), body, state)


def _take(tree, idx, axis=0):
    return jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=axis), tree)


def _place(tree, mesh, axis):
    """Put every array of ``tree`` on ``mesh``, split along ``axis`` (None: replicated)."""
    from jax.sharding import NamedSharding, PartitionSpec

    def one(a):
        a = jnp.asarray(a)
        if axis is None or a.ndim <= axis:
            return jax.device_put(a, NamedSharding(mesh, PartitionSpec()))
        spec = (None,) * axis + (mesh.axis_names[0],)
        return jax.device_put(a, NamedSharding(mesh, PartitionSpec(*spec)))

    return jax.tree_util.tree_map(one, tree)


def _bucket(n: int, current: int) -> int:
    """Smallest power of two >= n, capped at the current batch size."""
    return min(current, 1 << max(0, int(np.ceil(np.log2(max(n, 1))))))


def _run_gd(params, obj, refs, ev, lr, levels, stop_loss, diverge_loss, *, spec, kind,
            loss_kind, max_steps, stride, with_eval, segment, sharding):
    """Gradient descent on a batch, in segments; finished runs are dropped between segments.

    Between segments the host reads which runs are still active (one small transfer), stores
    the finished ones and, once at most half of the batch is active, continues with the
    active runs only (padded to a power of two, so that few batch sizes are compiled). Every
    run's arithmetic is the same in any batch, so its results do not depend on the others.
    """
    B = int(lr.shape[0])
    R = max_steps // stride + 1
    K = int(levels.shape[0])
    static = dict(spec=spec, kind=kind, loss_kind=loss_kind, max_steps=max_steps,
                  stride=stride, with_eval=with_eval)
    state = _gd_state(params, B, R, spec, K, with_eval)
    data = (obj, refs, ev, jnp.asarray(lr))
    if sharding is not None:
        state = {k: _place(v, sharding, 1 if k in _RECORDS else (None if k == "n" else 0))
                 for k, v in state.items()}
        data = _place(data, sharding, 0)
    origin = np.arange(B)                       # original run of each batch slot (-1: padding)
    out = {k: None for k in ("rec_loss", "rec_maps", "rec_norms", "rec_eval", "cross",
                             "params", "final_loss", "stop_time", "status")}
    stored = np.zeros(B, dtype=bool)

    def store(st, slots):
        host = jax.device_get({k: (jnp.take(st[k], slots, axis=1) if k in _RECORDS
                                   else _take(st[k], slots)) for k in out})
        rows = origin[slots]
        for k, v in host.items():
            if out[k] is None:
                out[k] = jax.tree_util.tree_map(
                    lambda a: np.zeros(a.shape[:1] + (B,) + a.shape[2:], a.dtype)
                    if k in _RECORDS else np.zeros((B,) + a.shape[1:], a.dtype), v)
            if k in _RECORDS:
                out[k][:, rows] = v
            else:
                jax.tree_util.tree_map(lambda dst, src: dst.__setitem__(rows, src), out[k], v)
        stored[rows] = True

    n_next = segment
    while True:
        state = _gd_segment(state, *data, levels, stop_loss, diverge_loss, n_next, **static)
        active = np.asarray(jax.device_get(state["active"]))
        n_now = int(jax.device_get(state["n"]))
        if not active.any() or n_now > max_steps:
            break
        n_next = n_now + segment
        live = np.nonzero(active)[0]
        size = _bucket(live.size, active.size)
        if size <= active.size // 2 and active.size >= _MIN_COMPACT and sharding is None:
            done = np.nonzero(~active & (origin >= 0))[0]
            if done.size:
                store(state, done)
            slots = np.concatenate([live, np.full(size - live.size, live[0])])
            pad = np.arange(size) >= live.size
            state = {k: (jnp.take(v, slots, axis=1) if k in _RECORDS else
                         (v if k == "n" else _take(v, slots))) for k, v in state.items()}
            state["active"] = jnp.where(jnp.asarray(pad), False, state["active"])
            data = _take(data, slots)
            origin = np.where(pad, -1, origin[slots])
    remaining = np.nonzero(origin >= 0)[0]
    store(state, remaining)
    assert stored.all()
    final_maps = jax.device_get(jax.vmap(partial(total_maps, spec))(
        jax.tree_util.tree_map(jnp.asarray, out["params"])))
    out["final_maps"] = final_maps
    return out


@partial(jax.jit, static_argnames=("spec", "kind", "loss_kind", "max_steps", "stride",
                                   "with_eval", "max_solver_steps"))
def _gf_kernel(params, obj, refs, ev, lr, stop_loss, diverge_loss, rtol, atol, *, spec, kind,
               loss_kind, max_steps, stride, with_eval, max_solver_steps):
    import diffrax

    dims = spec.input_dims
    loss_fn = _loss_fn(spec, kind, loss_kind)
    ts = jnp.asarray(_record_times(max_steps, stride))
    t1 = float(max_steps)

    def one(p0, ob, rf, e, eta):
        flat0, unravel = jax.flatten_util.ravel_pytree(p0)

        def vf(t, y, args):
            g = jax.grad(lambda q: loss_fn(q, ob)[0])(unravel(y))
            return -eta * jax.flatten_util.ravel_pytree(g)[0]

        def observe(t, y, args):
            p = unravel(y)
            loss, maps = loss_fn(p, ob)
            W = jnp.concatenate(maps, axis=-1)
            ev_loss = _eval_loss(W, e) if with_eval else jnp.zeros(())
            return loss, W, layer_norms(p), ev_loss, _progress(W, rf, dims)

        def stop(t, y, args, **kwargs):
            loss = loss_fn(unravel(y), ob)[0]
            return ~(loss >= stop_loss) | (loss > diverge_loss)

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf), diffrax.Tsit5(), t0=0.0, t1=t1, dt0=None, y0=flat0,
            saveat=diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts, fn=observe),
                                        diffrax.SubSaveAt(t1=True)]),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            event=diffrax.Event(stop), max_steps=max_solver_steps, throw=False)
        (loss, W, norms, ev_loss, probe), yfinal = sol.ys
        pf = unravel(yfinal[-1])
        final_loss = loss_fn(pf, ob)[0]
        t_end = sol.ts[1][-1]
        event = sol.result == diffrax.RESULTS.event_occurred
        ok = jnp.isfinite(final_loss) & (final_loss <= diverge_loss)
        status = jnp.where(event & ok & (final_loss < stop_loss), _CONVERGED,
                           jnp.where(ok & (sol.result == diffrax.RESULTS.successful),
                                     _MAX_STEPS, _DIVERGED))
        # Records after the stop time are not simulated.
        after = ts > t_end
        loss = jnp.where(after, jnp.nan, loss)
        W = jnp.where(after[:, None, None], jnp.nan, W)
        norms = jnp.where(after[:, None], jnp.nan, norms)
        ev_loss = jnp.where(after, jnp.nan, ev_loss)
        probe = jnp.where(after[:, None], jnp.nan, probe)
        return loss, W, norms, ev_loss, probe, pf, final_loss, t_end, status.astype(jnp.int8)

    return jax.vmap(one)(params, obj, refs, ev, lr)


def _record_times(max_steps, stride):
    """Times of the records: 0, stride, 2·stride, ... up to max_steps."""
    n = int(np.floor(max_steps / stride + 1e-9)) + 1
    return np.arange(n) * float(stride)


def _crossings_from_records(time, probe, levels):
    """First crossing times from a recorded progress series, (B, T, 2M) -> (B, 2M, K)."""
    probe = np.asarray(probe)
    B, T, P = probe.shape
    out = np.full((B, P, len(levels)), np.nan)
    for k, lev in enumerate(levels):
        above = probe >= lev
        has = above.any(axis=1)
        first = np.argmax(above, axis=1)  # (B, P)
        for b, p in zip(*np.nonzero(has)):
            i = first[b, p]
            if i == 0:
                out[b, p, k] = time[0]
                continue
            y0, y1 = probe[b, i - 1, p], probe[b, i, p]
            frac = (lev - y0) / (y1 - y0) if y1 != y0 else 1.0
            out[b, p, k] = time[i - 1] + np.clip(frac, 0, 1) * (time[i] - time[i - 1])
    return out


# ---------------------------------------------------------------------- public API
def _stack(items):
    return jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *items)


def _as_list(data, B):
    if isinstance(data, (Stats, Dataset)):
        return [data] * B
    data = list(data)
    if len(data) != B:
        raise ValueError(f"data has {len(data)} entries but the batch has {B} runs")
    return data


def _batch_size(params: Params) -> int:
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError("params has no weights")
    return int(np.shape(leaves[0])[0])


def _check_params(spec: NetworkSpec, params: Params, batched: bool):
    if not isinstance(params, Params):
        raise ValueError("params must be a dlnfusion Params (see init_params / init_batch)")
    mats = [W for layers in params.branches for W in layers] + list(params.post)
    if len(mats) != spec.n_layers or len(params.branches) != spec.n_modalities:
        raise ValueError(f"params has {len(mats)} matrices but the network has {spec.n_layers}")
    for W, shape, label in zip(mats, spec.layer_shapes, spec.layer_labels):
        got = tuple(np.shape(W))[1:] if batched else tuple(np.shape(W))
        if got != shape:
            raise ValueError(f"{label} has shape {got}, the network needs {shape}")


def init_batch(spec: NetworkSpec, seeds: Sequence[int], scheme: str = "normal", scale=1e-9,
               stats: Stats | None = None) -> Params:
    """Initial weights for a batch of runs, one PRNG seed each (leading batch axis).

    ``scale`` may be a scalar or one value per seed. See :func:`~dlnfusion.networks.init_params`
    for the schemes.
    """
    seeds = np.atleast_1d(np.asarray(seeds))
    if seeds.ndim != 1 or seeds.size < 1 or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"seeds must be a non-empty sequence of integers, got {seeds!r}")
    S, M = seeds.size, spec.n_modalities
    scales = np.asarray(scale, dtype=float)
    if scales.ndim == 0:
        scales = np.full((S,), float(scales))
    elif scheme == "balanced" and scales.shape == (M,):
        scales = np.tile(scales, (S, 1))  # one scale per modality, same for every seed
    elif scales.shape not in ((S,), (S, M) if scheme == "balanced" else (S,)):
        raise ValueError(f"scale must be a scalar or one value per seed, got shape {scales.shape}")
    if np.any(~np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError(f"scale must be positive and finite, got {scale!r}")
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
    fn = lambda k, s: init_params(spec, k, scheme, s, stats)  # noqa: E731
    return jax.tree_util.tree_map(np.asarray, jax.vmap(fn)(keys, jnp.asarray(scales)))


def train(spec: NetworkSpec, data, params: Params, *, lr=0.04, method: str = "gd",
          max_steps: int = 40_000, stride: int = 10, stop_loss: float | None = 1e-4,
          diverge_loss: float = 1e12, loss: str = "squared", eval_stats: Stats | None = None,
          levels: Sequence[float] = (0.5,), rtol: float = 1e-8, atol: float = 1e-20,
          max_solver_steps: int = 2_000_000, segment: int = 4096,
          sharding=None) -> Trajectory:
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
    max_steps : step budget (gradient flow: final time, in the same units; may be a float).
    stride : record every ``stride`` steps (gradient flow: every ``stride`` time units, a
        positive number; crossing times are interpolated between records, so pick it small
        against the transitions).
    stop_loss : a run stops once its loss is below this (None: never).
    diverge_loss : a run whose loss exceeds this, or is not finite, is marked diverged.
    loss : "squared" or "logistic" (ln(1 + e^{−yŷ}), summed over outputs). With Stats, the
        logistic loss is the exact expectation for Gaussian inputs and a target jointly
        Gaussian with them (2-D Gauss–Hermite quadrature, scalar output); with a Dataset it is
        the sample mean.
    eval_stats : population statistics under which the loss of the total map is also recorded.
    levels : progress levels whose first crossing times are recorded.
    segment : gradient descent runs in segments of this many steps; between segments the
        finished runs are dropped from the batch (one small host transfer per segment).
    sharding : optional one-axis ``jax.sharding.Mesh``; the runs are split over its devices
        (see dlnfusion.sweep). The batch size must be a multiple of the number of devices;
        finished runs are then kept in the batch (frozen) rather than dropped.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if method == "gd":
        if not isinstance(max_steps, (int, np.integer)) or max_steps < 0:
            raise ValueError(f"max_steps must be a non-negative integer, got {max_steps!r}")
        if not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        max_steps, stride = int(max_steps), int(stride)
    else:
        if not (np.isfinite(max_steps) and max_steps > 0):
            raise ValueError(f"max_steps (the final time) must be positive, got {max_steps!r}")
        if not (np.isfinite(stride) and stride > 0):
            raise ValueError(f"stride must be a positive number of time units, got {stride!r}")
        max_steps, stride = float(max_steps), float(stride)
    _check_params(spec, params, batched=True)
    B = _batch_size(params)
    runs = _as_list(data, B)
    kinds = {type(d) for d in runs}
    if len(kinds) != 1:
        raise ValueError("data must be all Stats or all Dataset, not a mix")
    kind = "population" if kinds.pop() is Stats else "samples"
    if kind == "population":
        if spec.activation != "linear":
            raise ValueError("population-level training needs a linear network; pass a "
                             "Dataset (samples) to train a ReLU network")
        if loss == "logistic" and spec.output_dim != 1:
            raise ValueError("the population-level logistic loss needs a scalar output")
    for d in runs:
        if tuple(d.dims) != spec.input_dims:
            raise ValueError(f"data modality dims {tuple(d.dims)} do not match the network "
                             f"input dims {spec.input_dims}")
        d_out = d.output_dim if isinstance(d, Stats) else d.y.shape[1]
        if d_out != spec.output_dim:
            raise ValueError(f"data output dim {d_out} does not match the network "
                             f"output dim {spec.output_dim}")
    lr_arr = np.broadcast_to(np.asarray(lr, dtype=float), (B,)).copy()
    if np.any(~np.isfinite(lr_arr)) or np.any(lr_arr <= 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    levels_t = tuple(float(v) for v in levels)
    if len(levels_t) < 1:
        raise ValueError("levels must contain at least one value")
    stop = -np.inf if stop_loss is None else float(stop_loss)

    if kind == "population":
        obj = _stack([_population(s) for s in runs])
        ref_stats = runs
    else:
        shapes = {d.y.shape for d in runs}
        if len(shapes) != 1:
            raise ValueError("every Dataset in a batch needs the same number of samples")
        obj = _stack([_Samples(np.concatenate(d.xs, axis=1), d.y) for d in runs])
        ref_stats = [eval_stats if eval_stats is not None else d.stats() for d in runs]
    refs = _stack([_refs(s) for s in ref_stats])
    with_eval = eval_stats is not None
    ev = _stack([_population(eval_stats if with_eval else ref_stats[0])] * B)
    initial = jax.tree_util.tree_map(np.asarray, params)
    params = jax.tree_util.tree_map(jnp.asarray, params)
    static = dict(spec=spec, kind=kind, loss_kind=loss, max_steps=max_steps,
                  stride=stride, with_eval=with_eval)
    time = _record_times(max_steps, stride)

    if method == "gd":
        out = _run_gd(params, obj, refs, ev, jnp.asarray(lr_arr), jnp.asarray(levels_t),
                      stop, float(diverge_loss), segment=int(segment), sharding=sharding,
                      **static)
        rec_loss = np.moveaxis(out["rec_loss"], 0, 1)
        rec_maps = np.moveaxis(out["rec_maps"], 0, 1)
        rec_norms = np.moveaxis(out["rec_norms"], 0, 1)
        rec_eval = np.moveaxis(out["rec_eval"], 0, 1) if with_eval else None
        cross = out["cross"]
        final_params, final_loss = out["params"], out["final_loss"]
        final_maps, stop_time, status = out["final_maps"], out["stop_time"], out["status"]
    else:
        res = _gf_kernel(params, obj, refs, ev, jnp.asarray(lr_arr), stop, float(diverge_loss),
                         float(rtol), float(atol), max_solver_steps=int(max_solver_steps),
                         **static)
        res = jax.device_get(res)
        rec_loss, rec_maps, rec_norms, rec_eval, probe, pf, final_loss, stop_time, status = res
        rec_eval = rec_eval if with_eval else None
        cross = _crossings_from_records(time, probe, levels_t)
        final_params = pf
        final_maps = jax.device_get(jax.vmap(partial(total_maps, spec))(
            jax.tree_util.tree_map(jnp.asarray, pf)))

    M = spec.n_modalities
    splits = np.cumsum(spec.input_dims)[:-1]
    maps = tuple(np.split(rec_maps, splits, axis=-1))
    crossings = {"unimodal": np.asarray(cross[:, :M]), "global": np.asarray(cross[:, M:])}
    return Trajectory(
        spec=spec, method=method, time=time, loss=np.asarray(rec_loss), maps=maps,
        norms=np.asarray(rec_norms), eval_loss=None if rec_eval is None else np.asarray(rec_eval),
        crossings=crossings, initial_params=initial, final_params=jax.tree_util.tree_map(np.asarray, final_params),
        final_loss=np.asarray(final_loss), final_maps=tuple(np.asarray(m) for m in final_maps),
        stop_time=np.asarray(stop_time), status=np.asarray(status), lr=lr_arr,
        levels=levels_t, names=spec.names)


def simulate(spec: NetworkSpec, data, seeds: Sequence[int] = (0,), *, scheme: str = "normal",
             scale=1e-9, **train_kwargs) -> Trajectory:
    """Initialize and train every (data, seed) pair.

    ``data`` is one Stats/Dataset or a sequence of them (configurations). The result has batch
    shape (n_configs, n_seeds), or (n_seeds,) for a single Stats/Dataset. ``scale`` is the
    initialization scale (scalar, or one per configuration). Keyword arguments go to
    :func:`train`.
    """
    single = isinstance(data, (Stats, Dataset))
    configs = [data] if single else list(data)
    if not configs:
        raise ValueError("data must contain at least one Stats or Dataset")
    seeds = [int(s) for s in np.atleast_1d(seeds)]
    C, S = len(configs), len(seeds)
    scales = np.broadcast_to(np.asarray(scale, dtype=float), (C,))
    parts = []
    for c in range(C):
        st = configs[c] if isinstance(configs[c], Stats) else None
        parts.append(init_batch(spec, seeds, scheme, scales[c], stats=st))
    params = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *parts)
    runs = [cfg for cfg in configs for _ in range(S)]
    lr = train_kwargs.pop("lr", 0.04)
    lr = np.repeat(np.broadcast_to(np.asarray(lr, dtype=float), (C,)), S)
    traj = train(spec, runs, params, lr=lr, **train_kwargs)
    return traj.reshape(S) if single else traj.reshape(C, S)
