"""Linear fusion networks trained at population level with a cross-source reconstruction
objective (Kleinman, Achille & Soatto, CVPR 2023, Section 4.4), deficit windows included.

For a fusion network with L_f ≥ 2, the pre-fusion representation of modality m is
h_m = P_m x_m with P_m = W_m^{L_f−1} ⋯ W_m^1 (width × d_m). A linear decoder D_{m→k}
(d_k × width) reconstructs x_k from h_m, and the objective is

    L = ½⟨‖y − W x‖²⟩ + λ Σ_{m≠k} (1/d_k) ⟨‖D_{m→k} P_m x_m − x_k‖²⟩,

the same per-coordinate mean squared error as :class:`~dlnfusion.networks.CrossReconstruction`
on samples. With Σ = ⟨x xᵀ⟩ (blocks Σ_mk) every term is a function of the moments:

    ⟨‖D P_m x_m − x_k‖²⟩ = tr(D P_m Σ_mm P_mᵀ Dᵀ) − 2 tr(D P_m Σ_mk) + tr Σ_kk,

so training is exact full-batch gradient descent on any data with these moments, as the
toolkit's population kernel for the task loss alone (the task part is
:func:`dlnfusion.losses.squared_moments`). A :class:`~dlnfusion.interventions.Deficit` window
(start and end in steps, per run) replaces the moments (delete, blur, dissociate) in both terms:
a deleted source reconstructs nothing and is reconstructed from nothing useful, and under
dissociation Σ_mk = 0 leaves the reconstruction no cross-source signal. :class:`~dlnfusion.interventions.Gate`
and :class:`~dlnfusion.interventions.Lesion` windows act on the network's weights as in
:func:`dlnfusion.train` (the decoders are in no group).

:func:`train_reconstruction` runs every run of a batch in one compiled ``lax.scan`` over
records, each a ``lax.scan`` over ``record_every`` steps (no host synchronization per step), in
float64. It records the task loss, the reconstruction error and each modality's progress toward
its block of the global solution, ⟨W_m, W*_m⟩/‖W*_m‖² (the toolkit's "global" progress, whose
half-way crossing is t_B); :meth:`ReconstructionRun.crossing` interpolates a crossing between
records.
"""
from __future__ import annotations

from functools import partial
from dataclasses import dataclass
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import losses
from ..interventions import schedule as sch
from ..networks import NetworkSpec, Params, total_maps
from ..precision import float64
from ..results import Run, Status, first_crossing
from ..stats import Stats
from .kernel import _intervene, _per_matrix
from .objectives import Moments

__all__ = ["train_reconstruction", "ReconstructionRun", "reconstruction_loss"]


@dataclass(frozen=True, eq=False)
class ReconstructionRun(Run):
    """Records of :func:`train_reconstruction`, runs first: ``time`` (T,) steps; ``loss``
    (B, T) the task loss ½⟨‖y − ŷ‖²⟩ on the data in force; ``reconstruction`` (B, T) the
    unweighted reconstruction error Σ_{m≠k} (1/d_k)⟨‖D P_m x_m − x_k‖²⟩; ``progress`` (B, T, M)
    each modality's progress toward its block of the global solution of the run's own data;
    ``params`` and ``decoders`` the final weights; ``status`` (B,)
    :class:`~dlnfusion.results.Status` codes (``MAX_STEPS`` or ``DIVERGED``)."""

    time: np.ndarray
    loss: np.ndarray
    reconstruction: np.ndarray
    progress: np.ndarray
    params: Params
    decoders: tuple
    status: np.ndarray
    names: tuple

    _static = ("names",)

    def crossing(self, modality, level: float = 0.5) -> np.ndarray:
        """(B,) the first time each run's progress of ``modality`` (name or index) reaches
        ``level``, linearly interpolated between records; NaN if it never does."""
        m = self.names.index(modality) if isinstance(modality, str) else int(modality)
        return first_crossing(self.progress[..., m], self.time, level)


def _pairs(M):
    return tuple((m, k) for m in range(M) for k in range(M) if m != k)


def _pre_fusion(params: Params, m: int):
    layers = params.branches[m][:-1]            # the fusion layer's W_m^{L_f} is left out
    P = layers[0]
    for W in layers[1:]:
        P = W @ P
    return P


def reconstruction_loss(spec: NetworkSpec, params: Params, decoders, data: Moments):
    """Σ_{m≠k} (1/d_k)⟨‖D_{m→k} P_m x_m − x_k‖²⟩ from the moments (one run, no batch axis)."""
    offsets = np.concatenate([[0], np.cumsum(spec.input_dims)])
    blk = lambda i, j: data.sigma[offsets[i]:offsets[i + 1], offsets[j]:offsets[j + 1]]  # noqa: E731
    total = 0.0
    for (m, k), D in zip(_pairs(spec.n_modalities), decoders):
        A = D @ _pre_fusion(params, m)          # (d_k, d_m): x_m ↦ reconstruction of x_k
        err = jnp.trace(A @ blk(m, m) @ A.T) - 2 * jnp.trace(A @ blk(m, k)) + jnp.trace(blk(k, k))
        total = total + err / spec.input_dims[k]
    return total


def _task_loss(spec, params, data: Moments):
    maps = total_maps(spec, params)
    W = jnp.concatenate(maps, axis=1)
    return losses.squared_moments(W, data.sigma, data.w_star, data.l_star), maps


@partial(jax.jit, static_argnames=("spec", "plan", "n_records", "record_every"))
def _run(params, decoders, base, lr, weight, sched, *, spec, plan, n_records, record_every):
    def one_run(p, dec, own, eta, lam, sc):
        def objective(pd, data):
            task, maps = _task_loss(spec, pd[0], data)
            rec = reconstruction_loss(spec, pd[0], pd[1], data)
            return task + lam * rec, (task, rec, maps)

        grad = jax.value_and_grad(objective, has_aux=True)

        def step(carry, n):
            (p, dec), dead = carry
            # the windows in force at step n: the data, lesioned weights, gated matrices
            p, data, frozen, _ = _intervene(plan, sc, n, p, own)
            (_, (task, rec, maps)), (gp, gd) = grad((p, dec), data)
            if frozen is not None:   # a gated matrix neither receives a gradient nor moves
                gp = _per_matrix(frozen, lambda f, g: jnp.where(f, 0.0, g), gp)
            new = jax.tree_util.tree_map(lambda a, b: a - eta * b, (p, dec), (gp, gd))
            bad = dead | ~jnp.isfinite(task + rec)
            keep = jax.tree_util.tree_map(lambda a, b: jnp.where(bad, b, a), new, (p, dec))
            return (keep, bad), (task, rec, maps)

        def record(carry, r):
            carry, out = jax.lax.scan(step, carry, r * record_every + jnp.arange(record_every))
            return carry, jax.tree_util.tree_map(lambda a: a[0], out)

        (pd, dead), (task, rec, maps) = jax.lax.scan(record, ((p, dec), jnp.asarray(False)),
                                                     jnp.arange(n_records))
        return pd, dead, task, rec, maps

    return jax.vmap(one_run)(params, decoders, base, lr, weight, sched)


def train_reconstruction(spec: NetworkSpec, stats, params: Params, *, weight, lr,
                         steps: int, record_every: int = 1, decoder_scale: float = 1e-9,
                         seed: int = 0, interventions: Sequence | None = None
                         ) -> ReconstructionRun:
    """Population-level gradient descent on the task loss plus λ times the cross-source
    reconstruction error (module docstring), for a batch of B runs.

    ``stats``: one :class:`~dlnfusion.stats.Stats` or one per run; ``params``: batched initial
    weights (:func:`dlnfusion.init_batch`); ``weight`` (λ ≥ 0) and ``lr``: a number or one per
    run; ``steps`` a multiple of ``record_every`` (records at 0, record_every, ...,
    steps − record_every: the
    state before each of those steps); decoders start i.i.d. normal with standard deviation
    ``decoder_scale`` from ``seed`` (run b uses fold_in(seed, b)); ``interventions``:
    :class:`~dlnfusion.interventions.Deficit` windows with Stats data,
    :class:`~dlnfusion.interventions.Gate` and :class:`~dlnfusion.interventions.Lesion`
    windows, as for :func:`dlnfusion.train` (start and end in steps, scalar or per run). The
    decoders belong to no group: a gate or lesion acts on the network's weights only.
    """
    if not isinstance(spec, NetworkSpec):
        raise ValueError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
    if not spec.is_linear:
        raise ValueError("train_reconstruction trains linear networks (population moments)")
    if spec.fusion_layer < 2:
        raise ValueError("cross-source reconstruction needs at least one layer before fusion "
                         f"(fusion_layer >= 2), got {spec.fusion_layer}")
    if spec.n_modalities < 2:
        raise ValueError("cross-source reconstruction needs at least two modalities")
    B = int(np.shape(params.branches[0][0])[0])
    runs = [stats] * B if isinstance(stats, Stats) else list(stats)
    if len(runs) != B or not all(isinstance(s, Stats) for s in runs):
        raise ValueError(f"stats must be one Stats or one per run ({B})")
    for s in runs:
        if tuple(s.dims) != tuple(spec.input_dims) or s.output_dim != spec.output_dim:
            raise ValueError(f"stats have modality dims {tuple(s.dims)} and output dim "
                             f"{s.output_dim}; the network takes {tuple(spec.input_dims)} and "
                             f"{spec.output_dim}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(record_every, bool) or not isinstance(record_every, (int, np.integer)) or record_every < 1 \
            or steps % record_every:
        raise ValueError(f"record_every must be a positive integer dividing steps ({steps}), got "
                         f"{record_every!r}")
    lam = np.broadcast_to(np.asarray(weight, float), (B,)).copy()
    if np.any(~np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError(f"weight must be finite and >= 0, got {weight!r}")
    eta = np.broadcast_to(np.asarray(lr, float), (B,)).copy()
    if np.any(~np.isfinite(eta)) or np.any(eta <= 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    sd = float(decoder_scale)
    if not np.isfinite(sd) or sd <= 0:
        raise ValueError(f"decoder_scale must be positive and finite, got {decoder_scale!r}")
    if interventions is not None and not isinstance(interventions, (list, tuple)):
        raise ValueError("interventions must be a list of Deficit, Gate and Lesion windows, got "
                         f"{interventions!r}")
    windows = list(interventions or ())
    plan, sched = (None, None)
    if windows:
        plan, sched = sch.compile_schedule(spec, windows, runs, Moments)
    M, width = spec.n_modalities, spec.branch_dims[0][spec.fusion_layer - 1]
    with float64():
        keys = [jax.random.fold_in(jax.random.PRNGKey(int(seed)), b) for b in range(B)]
        decoders = tuple(
            jnp.stack([sd * jax.random.normal(jax.random.fold_in(key, j),
                                              (spec.input_dims[k], width), jnp.float64)
                       for key in keys])
            for j, (m, k) in enumerate(_pairs(M)))
        base = jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]),
                                      *[Moments.of(s) for s in runs])
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
        sc = sch.Schedule(jnp.zeros((B, 0)), jnp.zeros((B, 0)), (), ()) if sched is None else \
            jax.tree_util.tree_map(jnp.asarray, sched)
        (pf, df), dead, task, rec, maps = _run(
            p, decoders, base, jnp.asarray(eta), jnp.asarray(lam), sc, spec=spec, plan=plan,
            n_records=steps // record_every, record_every=int(record_every))
        ref = [s.global_solution() for s in runs]
        offsets = np.concatenate([[0], np.cumsum(spec.input_dims)])
        prog = np.zeros(np.shape(task) + (M,))
        for m in range(M):
            Wm = np.asarray(maps[m])                                    # (B, T, d_out, d_m)
            R = np.stack([r[:, offsets[m]:offsets[m + 1]] for r in ref])  # (B, d_out, d_m)
            nrm = np.sum(R * R, axis=(1, 2))
            prog[:, :, m] = np.einsum("btij,bij->bt", Wm, R) / np.where(nrm > 0, nrm, np.nan)[:, None]
        return ReconstructionRun(np.arange(0, steps, record_every), np.asarray(task), np.asarray(rec),
                                 prog, jax.tree_util.tree_map(np.asarray, pf),
                                 tuple(np.asarray(d) for d in df),
                                 np.where(np.asarray(dead), Status.DIVERGED,
                                          Status.MAX_STEPS).astype(np.int8),
                                 tuple(spec.names))
