"""Deep matrix completion: full-batch gradient descent on products of square matrices, with a
deficit window at the start of training (another target and/or observed set) that ends at a
step of its own for every run.

Model and loss (Kleinman, Achille, Soatto & Kao, arXiv 2308.12221, matrix-completion
experiments; conventions in ``shared/specs/critical_periods.md``)::

    P = W_D ⋯ W_2 W_1,                 W_i ∈ R^{n×n}, no biases,
    L(W; M, Ω) = 1/(2|Ω|) Σ_{(i,j)∈Ω} (P_ij − M_ij)²,
    W_i ← W_i − η ∂L/∂W_i,   ∂L/∂W_i = (W_D⋯W_{i+1})ᵀ G (W_{i−1}⋯W_1)ᵀ,  G = (Ω ⊙ (P − M))/|Ω|,

and the test error ``mean_ij (P_ij − M'_ij)²`` over all n² entries of the phase-2 target M'.
Time is counted in gradient steps (step t maps W_t to W_{t+1}). Initial entries are i.i.d.
N(0, σ²) with σ = (1e-3)^{1/D}/10 by default (so that every depth starts with product entries
of standard deviation ≈ 1e-4 for n = 100).

Symbol → argument: D → ``depth``, η → ``lr``, σ → ``scale``; the run's own task is
M' = ``targets[target]`` observed on ``masks[mask]``; the deficit (phase 1) is a
:class:`~dlnfusion.interventions.Deficit` window [0, T) whose data is a :class:`CompletionTask`
(M = ``targets[task.target]`` observed on ``masks[task.mask]``): steps t < T train on the deficit
task, steps t ≥ T (phase 2) on the run's own; a run trains ``steps`` steps in all. Without a
window a run trains on its own task throughout (T = 0).

Every run has its own seed, deficit end T, step budget and the four indices of its two phases;
they are arrays, so a sweep over deficit lengths, pre-training ranks, observed sets and seeds is
one compiled call per depth (the depth fixes the shapes). Inside that call everything is
``lax.while_loop``/``lax.fori_loop``; the host sees the results once, at the end.

Structure that is exploited (``share_prefix=True``, the default):

* runs that share (seed, deficit target, deficit mask) have the same first T steps whatever
  their deficit end or own task. Such a *group* is simulated once up to its largest deficit
  end, its weights are snapshotted at each of its deficit ends, and all snapshots then continue
  together, batched, on their own tasks (phase B). A run with T = 0 needs no prefix and is
  attached to any group with its seed.
* identical runs (same group, deficit end, step budget and own task) are simulated once.
* for D = 1 the model is the matrix itself; the update is elementwise and no matmul is done.
  For D ≥ 2 one step costs 3(D − 1) n×n matmuls (products W_i⋯W_1 forward, (W_D⋯W_{i+1})ᵀG
  backward, and one per gradient).

``share_prefix=False`` runs every run from scratch, the phase chosen per block of
``record_every`` steps (switches fall on block boundaries), as an independent check of the
sharing (same numbers to rounding; tested).

Speed (benchmarks/bench_completion.py, 2 CPU cores shared with other jobs, n = 100, 12 runs in
3 prefix groups): D = 3 about 3400 run-steps/s in float32 and 1800 in float64, D = 2 about
5900 and 3200, D = 1 about 33 000 (there the singular values of the records dominate). XLA on
CPU runs one compiled call on one core; a run-step of D = 3 is 6 batched 100×100 matmuls.

Records, every ``record_every`` steps at t = 0, record_every, …, ``record_until``: the test error
against the run's own target, the training loss of the phase the next step uses (the deficit's
for t < T, the run's own for t ≥ T) and the top ``n_singular`` singular values of P. Deficit ends
and step budgets must be multiples of ``record_every``, so that snapshots and records fall on
block boundaries.

Divergence: checked at every record (block boundary): a run whose loss there is not finite
is frozen from then on, its status becomes ``Status.DIVERGED`` with that step (``diverged_step``: the
blow-up happened within the ``record_every`` steps before it), and its records from then on
and its final values are NaN (its weights are non-finite or overflowing). Other runs in the
batch are unaffected (vmapped, independent). A run is not stopped for being large, only for
being non-finite. The check is per block, not per step, because a reduction per step costs
more than the whole step when D = 1.

Initial weights: :func:`initial_weights` (numpy draws on the host, float64, per seed and
layer); float32 runs start from the same weights rounded.

Precision: float64 by default, float32 on request (``dtype``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import checks
from ..interventions.schedule import Deficit, Gate, Lesion
from ..precision import float64, resolve_dtype
from ..results import Run, Status

__all__ = ["train_completion", "CompletionRuns", "CompletionTask", "default_scale",
           "initial_weights"]



def default_scale(depth: int) -> float:
    """σ = (1e-3)^{1/D}/10, the paper's entry standard deviation for depth D."""
    return float((1e-3) ** (1.0 / depth) / 10.0)


@dataclass(frozen=True, eq=False)
class CompletionRuns(Run):
    """What :func:`train_completion` returns, runs first (B = number of runs asked for).

    ``time`` (R,) recorded steps; ``test_error``, ``train_loss`` (B, R) and
    ``singular_values`` (B, R, k) (descending), NaN after a run's last step or its divergence;
    ``test_error_final``, ``train_loss_final`` (B,) after its last step (its own task);
    ``product`` (B, n, n) the final learned product; ``status`` (B,)
    :class:`~dlnfusion.results.Status` codes (``MAX_STEPS``: the run trained its ``steps``,
    ``DIVERGED``) and ``diverged_step`` (B,) the first record step at which the run was
    non-finite (−1 if none). The remaining fields echo the schedule and settings, per run:
    ``seeds``, ``steps``, the run's own ``target`` and ``mask``, the deficit window's end
    ``deficit_end`` (0: no deficit) and task (``deficit_target``, ``deficit_mask``; the run's own
    where it has none) and the observed counts ``n_observed`` and ``n_observed_deficit``;
    ``n_prefix_groups``/``n_unique_runs`` say how much was shared, ``simulated_steps`` counts
    the run-steps the compiled loops executed (frozen and padded runs included) and
    ``requested_steps`` = Σ steps, the cost without sharing.
    """

    time: np.ndarray
    test_error: np.ndarray
    train_loss: np.ndarray
    singular_values: np.ndarray
    test_error_final: np.ndarray
    train_loss_final: np.ndarray
    product: np.ndarray
    status: np.ndarray
    diverged_step: np.ndarray
    seeds: np.ndarray
    steps: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    deficit_end: np.ndarray
    deficit_target: np.ndarray
    deficit_mask: np.ndarray
    n_observed: np.ndarray
    n_observed_deficit: np.ndarray
    depth: int
    lr: float
    scale: float
    dtype: str
    record_every: int
    shared_prefix: bool
    n_prefix_groups: int
    n_unique_runs: int
    simulated_steps: int
    requested_steps: int

    _static = ("depth", "lr", "scale", "dtype", "record_every", "shared_prefix",
               "n_prefix_groups", "n_unique_runs", "simulated_steps", "requested_steps")


# ----------------------------------------------------------------------------------------------
# One run: forward product, loss and gradients (hand-written; tests check them against jax.grad)

def _prefix_products(W):
    """[W_1, W_2 W_1, …, W_D⋯W_1] for W of shape (D, n, n), W[0] = W_1."""
    out = [W[0]]
    for i in range(1, W.shape[0]):
        out.append(W[i] @ out[-1])
    return out


def _product(W):
    return _prefix_products(W)[-1]


def _loss_grads(W, M, A):
    """Loss ½ Σ A ⊙ (P − M)² and its gradients for one run; A = Ω/|Ω| (mask over count).

    For D = 1 this is elementwise. For D ≥ 2: prefix products F_i = W_i⋯W_1, back-propagated
    B_i = (W_D⋯W_{i+1})ᵀ G with B_D = G, and ∂L/∂W_i = B_i F_{i−1}ᵀ (F_0 = I)."""
    D = W.shape[0]
    F = _prefix_products(W)
    E = F[-1] - M
    G = A * E
    loss = 0.5 * jnp.sum(G * E)
    grads = [None] * D
    Bi = G
    for i in range(D - 1, -1, -1):          # i is the 0-based layer index, W[i] = W_{i+1}
        grads[i] = Bi if i == 0 else Bi @ F[i - 1].T
        if i > 0:
            Bi = W[i].T @ Bi
    return loss, jnp.stack(grads)


# ----------------------------------------------------------------------------------------------
# The batched loop over blocks of record_every steps

class _Loop(NamedTuple):
    j: jax.Array            # block index (shared)
    W: jax.Array            # (L, D, n, n)
    dead: jax.Array         # (L,) bool
    dead_at: jax.Array      # (L,) int: first record step with a non-finite state, or −1
    rec_loss: jax.Array     # (R, L)
    rec_sv: jax.Array       # (R, L, k)
    rec_err: jax.Array      # (R, E)
    extra: object           # phase A: snapshot buffers; otherwise ()


def _phase_arrays(t, switch, M1, A1, M2, A2, switching):
    if not switching:
        return M1, A1
    ph1 = (t < switch)[:, None, None]
    return jnp.where(ph1, M1, M2), jnp.where(ph1, A1, A2)


def _run_blocks(W, dead, dead_at, t0, end, switch, M1, A1, M2, A2, err_run, err_target,
                targets, lr, *, n_blocks, record_every, n_records, n_singular, switching, chunk,
                hook=None, extra=()):
    """Train L runs (axis 0 of every array) from step t0 (per run) in blocks of
    ``record_every`` steps; at each block boundary j = 0 … n_blocks (a traced integer, at most
    n_records − 1) check for divergence, call ``hook(extra, W, dead, dead_at, j)`` (phase A:
    snapshots) and record into row j of the record buffers. Errors are recorded for the pairs
    (err_run, err_target): mean over all entries of (P[err_run] − targets[err_target])².

    Switch and end steps are multiples of ``record_every``, so within a block every run has
    one phase and is either training or frozen: the per-run task and step size are set once
    per block and the inner loop is plain gradient descent, with no reduction, comparison or
    selection per step (a per-step loss check made the D = 1 loop ten times slower)."""
    L = W.shape[0]
    dtype = W.dtype
    nan = jnp.asarray(jnp.nan, dtype)
    n_chunks = L // chunk

    def block(args, steps):
        """``steps`` gradient steps of a chunk of runs with per-run step sizes eta."""
        W, eta, M, A = args

        def step(_, W):
            return W - eta[:, None, None, None] * jax.vmap(_loss_grads)(W, M, A)[1]

        # A chunk trains the whole block before the next chunk starts, so that its weights
        # stay in cache across the block's steps.
        return jax.lax.fori_loop(0, steps, step, W)

    def advance(W, eta, M, A, steps):
        if n_chunks == 1:
            return block((W, eta, M, A), steps)
        split = lambda a: a.reshape((n_chunks, chunk) + a.shape[1:])  # noqa: E731
        Wc = jax.lax.map(lambda args: block(args, steps), tuple(split(a) for a in (W, eta, M, A)))
        return Wc.reshape(W.shape)

    def body(c):
        t = t0 + c.j * record_every
        M, A = _phase_arrays(t, switch, M1, A1, M2, A2, switching)
        P = jax.vmap(_product)(c.W)
        loss = 0.5 * jnp.sum(A * (P - M) ** 2, axis=(1, 2))
        # Guard: a state with a non-finite loss has diverged in the block before (non-finite
        # weights always give a non-finite loss: an inf or NaN entry of any W_i makes entries
        # of P inf or NaN, and 0·inf = NaN on the unobserved ones). The run is frozen from
        # here on (step size 0) and reported with the step of this boundary.
        bad = ~c.dead & ~jnp.isfinite(loss)
        dead = c.dead | bad
        dead_at = jnp.where(bad, t, c.dead_at)
        ext = c.extra if hook is None else hook(c.extra, c.W, dead, dead_at, c.j)
        # Zeros instead of a non-finite product keep LAPACK's SVD away from NaN input; the
        # records of dead runs are NaN anyway.
        P = jnp.where(dead[:, None, None], 0.0, P).astype(dtype)
        sv = jnp.linalg.svd(P, compute_uv=False)[:, :n_singular]
        err = jnp.mean((P[err_run] - targets[err_target]) ** 2, axis=(1, 2))
        upd = jax.lax.dynamic_update_index_in_dim
        rec_loss = upd(c.rec_loss, jnp.where(dead, nan, loss), c.j, 0)
        rec_sv = upd(c.rec_sv, jnp.where(dead[:, None], nan, sv), c.j, 0)
        rec_err = upd(c.rec_err, jnp.where(dead[err_run], nan, err), c.j, 0)
        # One block: runs past their end step or dead get step size 0 (W − 0·g = W for finite
        # g; a dead run's weights are non-finite already). The last boundary only records.
        eta = jnp.where(~dead & (t < end), lr, 0.0).astype(dtype)
        W = advance(c.W, eta, M, A, jnp.where(c.j < n_blocks, record_every, 0))
        return _Loop(c.j + 1, W, dead, dead_at, rec_loss, rec_sv, rec_err, ext)

    E = err_run.shape[0]
    c0 = _Loop(jnp.asarray(0, jnp.int32), W, dead, dead_at,
               jnp.full((n_records, L), nan), jnp.full((n_records, L, n_singular), nan),
               jnp.full((n_records, E), nan), extra)
    return jax.lax.while_loop(lambda c: c.j <= n_blocks, body, c0)


#: Tag of the random stream of the initial weights (an arbitrary integer).
_INIT_TAG = 2308_12221_3


def initial_weights(seed: int, depth: int, n: int, scale: float) -> np.ndarray:
    """Initial weights (D, n, n), W[i] = W_{i+1}: σ times i.i.d. N(0, 1) float64 draws of
    numpy's ``default_rng(SeedSequence([tag, seed, i]))`` for layer i (drawn on the host: a
    threefry draw inside the compiled loop costs more compile time than the whole loop)."""
    return np.stack([np.random.default_rng(np.random.SeedSequence([_INIT_TAG, int(seed), i]))
                     .standard_normal((n, n)) for i in range(depth)]) * float(scale)


def _init_batch(seeds, depth, n, scale, dtype):
    cache = {}
    for s in np.unique(seeds):
        cache[int(s)] = initial_weights(int(s), depth, n, scale)
    return jnp.asarray(np.stack([cache[int(s)] for s in seeds]), dtype)


def _final(W, dead, M2, A2, targets, target_after):
    P = jax.vmap(_product)(W)
    nan = jnp.asarray(jnp.nan, W.dtype)
    loss = jnp.where(dead, nan, 0.5 * jnp.sum(A2 * (P - M2) ** 2, axis=(1, 2)))
    err = jnp.where(dead, nan, jnp.mean((P - targets[target_after]) ** 2, axis=(1, 2)))
    return P, loss, err


@partial(jax.jit, static_argnames=("depth", "n_records", "n_singular", "record_every", "chunk"))
def _simulate_direct(targets, weights, W, lr, tb, mb, ta, ma, switch, end, *,
                     depth, n_records, n_singular, record_every, chunk):
    """Every run from scratch (initial weights W), the phase chosen per step (t < switch:
    phase 1)."""
    L = W.shape[0]
    M1, A1, M2, A2 = targets[tb], weights[mb], targets[ta], weights[ma]
    zeros = jnp.zeros((L,), jnp.int64)
    c = _run_blocks(W, jnp.zeros((L,), bool), zeros - 1, zeros, end, switch, M1, A1, M2, A2,
                    jnp.arange(L), ta, targets, lr, n_blocks=jnp.max(end) // record_every,
                    record_every=record_every, n_records=n_records, n_singular=n_singular,
                    switching=True, chunk=chunk)
    P, loss_f, err_f = _final(c.W, c.dead, M2, A2, targets, ta)
    return (c.rec_loss, c.rec_sv, c.rec_err), (P, loss_f, err_f, c.dead, c.dead_at)


@partial(jax.jit, static_argnames=("depth", "n_records", "n_singular", "record_every", "chunk",
                                   "chunk_groups"))
def _simulate_shared(targets, weights, lr, W, g_tb, g_mb, g_end, g_switches,
                     u_group, u_slot, u_ta, u_ma, u_switch, u_end, *, depth, n_records,
                     n_singular, record_every, chunk, chunk_groups):
    """Phase A: groups (shared prefixes) up to their last switch step, snapshotted at every
    switch step (g_switches (G, K), −1 = unused slot). Phase B: the unique runs continue from
    their snapshots on their phase-2 tasks."""
    G, K = g_switches.shape
    dtype = targets.dtype
    M1, A1 = targets[g_tb], weights[g_mb]
    snap0 = (jnp.zeros((G, K) + W.shape[1:], dtype), jnp.zeros((G, K), bool),
             jnp.full((G, K), -1, jnp.int64))

    rows = jnp.arange(G)

    def snapshot(extra, W, dead, dead_at, j):
        # Switch steps of a group are distinct, so at most one slot per group is hit; a
        # group without a hit rewrites its slot 0 with its old contents. (A scatter of G
        # matrices; a select over the whole (G, K, D, n, n) buffer made phase A 8× slower.)
        hit = g_switches == j * record_every                  # (G, K); groups start at t = 0
        any_hit, slot = jnp.any(hit, axis=1), jnp.argmax(hit, axis=1)
        sW, sd, sda = extra
        keep = lambda new, old: jnp.where(  # noqa: E731
            any_hit.reshape((G,) + (1,) * (new.ndim - 1)), new, old)
        return (sW.at[rows, slot].set(keep(W, sW[rows, slot])),
                sd.at[rows, slot].set(keep(dead, sd[rows, slot])),
                sda.at[rows, slot].set(keep(dead_at, sda[rows, slot])))

    zg = jnp.zeros((G,), jnp.int64)
    a = _run_blocks(W, jnp.zeros((G,), bool), zg - 1, zg, g_end, g_end, M1, A1, M1, A1,
                    u_group, u_ta, targets, lr, n_blocks=jnp.max(g_end) // record_every,
                    record_every=record_every, n_records=n_records, n_singular=n_singular,
                    switching=False, chunk=chunk_groups, hook=snapshot, extra=snap0)
    sW, sd, sda = a.extra
    U = u_group.shape[0]
    M2, A2 = targets[u_ta], weights[u_ma]
    b = _run_blocks(sW[u_group, u_slot], sd[u_group, u_slot], sda[u_group, u_slot], u_switch,
                    u_end, u_switch, M2, A2, M2, A2, jnp.arange(U), u_ta, targets, lr,
                    n_blocks=jnp.max(u_end - u_switch) // record_every,
                    record_every=record_every, n_records=n_records, n_singular=n_singular,
                    switching=False, chunk=chunk)
    P, loss_f, err_f = _final(b.W, b.dead, M2, A2, targets, u_ta)
    return ((a.rec_loss, a.rec_sv, a.rec_err), (b.rec_loss, b.rec_sv, b.rec_err),
            (P, loss_f, err_f, b.dead, b.dead_at))


# ----------------------------------------------------------------------------------------------
# Host side: checks, grouping, assembly

def _int_array(name, value, low=0):
    a = np.asarray(value)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be an integer or an array of integers, got {value!r}")
    if a.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-d array (one entry per run)")
    if a.size and a.min() < low:
        raise ValueError(f"{name} must be >= {low}, got {a.min()}")
    return a.astype(np.int64)


@dataclass(frozen=True)
class CompletionTask:
    """A matrix-completion task by index: ``targets[target]`` observed on ``masks[mask]``
    (an integer or one per run each; None: the run's own). The data of a
    :class:`~dlnfusion.interventions.Deficit` window of :func:`train_completion`."""

    target: object = None
    mask: object = None


def _deficit(interventions):
    """(end, deficit target, deficit mask) of the one Deficit window, or (0, None, None)."""
    if interventions is None:
        return 0, None, None
    if isinstance(interventions, (Deficit, Gate, Lesion)) or \
            not isinstance(interventions, (list, tuple)):
        raise ValueError("interventions must be a list of windows (at most one Deficit for "
                         f"train_completion), got {interventions!r}")
    if not interventions:
        return 0, None, None
    if len(interventions) > 1:
        raise ValueError("interventions: train_completion takes at most one window, a Deficit "
                         f"starting at step 0; got {len(interventions)} windows")
    (w,) = interventions
    if not isinstance(w, Deficit):
        raise ValueError(f"interventions: train_completion takes a Deficit window (the task "
                         f"before its end); a {type(w).__name__} acts on the groups of a "
                         "fusion network, which a product of square matrices does not have")
    if not isinstance(w.data, CompletionTask):
        raise ValueError("interventions: the Deficit's data must be a CompletionTask(target=, "
                         f"mask=), got {type(w.data).__name__}")
    start = np.asarray(w.start)
    if start.dtype == bool or not np.issubdtype(start.dtype, np.number) or np.any(start != 0):
        raise ValueError("interventions: the Deficit window of train_completion starts at step "
                         f"0 (the deficit task first, then the run's own); got start={w.start!r}")
    if w.end is None:
        raise ValueError("interventions: the Deficit window needs an end step (an integer or "
                         "one per run)")
    return w.end, w.data.target, w.data.mask


def _stack_square(name, a, kind):
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name} must have shape (count, n, n) or (n, n), got {a.shape}")
    if kind == "mask":
        if a.dtype != bool:
            if not np.issubdtype(a.dtype, np.number) or not np.all((a == 0) | (a == 1)):
                raise ValueError(f"{name} must be boolean (or 0/1)")
            a = a.astype(bool)
        empty = np.nonzero(~a.reshape(a.shape[0], -1).any(axis=1))[0]
        if empty.size:
            raise ValueError(f"{name}[{int(empty[0])}] observes no entry")
    else:
        if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite real numbers")
        a = a.astype(np.float64)
    return a


def _schedule(seeds, switch, steps, tb, mb, ta, ma, n_targets, n_masks, rec):
    names = ("seeds", "the Deficit's end", "steps", "the deficit target", "the deficit mask",
             "target", "mask")
    arrs = [_int_array(nm, v) for nm, v in zip(names, (seeds, switch, steps, tb, mb, ta, ma))]
    try:
        arrs = [np.array(a) for a in np.broadcast_arrays(*arrs)]
    except ValueError:
        raise ValueError("the per-run arrays (seeds, steps, target, mask and the Deficit's end "
                         "and task) must have one length (or be scalars)") from None
    arrs = [a.reshape(-1) for a in arrs]
    if arrs[0].size == 0:
        raise ValueError("seeds must name at least one run")
    seeds, sw, end, tb, mb, ta, ma = arrs
    for nm, a, top in (("the deficit target", tb, n_targets), ("target", ta, n_targets),
                       ("the deficit mask", mb, n_masks), ("mask", ma, n_masks)):
        if a.max() >= top:
            raise ValueError(f"{nm} indexes entry {a.max()}, but there are only {top}")
    if np.any(sw > end):
        raise ValueError("the Deficit's end must not exceed steps")
    for nm, a in (("the Deficit's end", sw), ("steps", end)):
        if np.any(a % rec):
            raise ValueError(f"{nm} must be a multiple of record_every ({rec})")
    return seeds, sw, end, tb, mb, ta, ma


def _group(seeds, sw, end, tb, mb, ta, ma):
    """Prefix groups and unique runs. Returns the group table, the unique runs and, per run
    asked for, the index of its unique run."""
    B = seeds.size
    tb, mb = tb.copy(), mb.copy()
    # A run that switches at t = 0 has no prefix: attach it to a group of its seed, if any.
    for s in np.unique(seeds[sw == 0]):
        donors = np.nonzero((seeds == s) & (sw > 0))[0]
        if donors.size:
            zero = (seeds == s) & (sw == 0)
            tb[zero], mb[zero] = tb[donors[0]], mb[donors[0]]
    gkey = np.stack([seeds, tb, mb], 1)
    groups, run_group = np.unique(gkey, axis=0, return_inverse=True)
    run_group = run_group.reshape(-1)
    ukey = np.stack([run_group, sw, end, ta, ma], 1)
    uniq, run_unique = np.unique(ukey, axis=0, return_inverse=True)
    run_unique = run_unique.reshape(-1)
    u_group, u_sw, u_end, u_ta, u_ma = uniq.T
    G = groups.shape[0]
    switches = [np.unique(u_sw[u_group == g]) for g in range(G)]
    K = max(s.size for s in switches)
    table = np.full((G, K), -1, np.int64)
    for g, s in enumerate(switches):
        table[g, :s.size] = s
    u_slot = np.array([np.searchsorted(switches[g], t) for g, t in zip(u_group, u_sw)],
                      np.int64)
    g_end = table.max(axis=1)
    assert B == run_unique.size
    return (groups[:, 0], groups[:, 1], groups[:, 2], g_end, table), \
        (u_group, u_slot, u_ta, u_ma, u_sw, u_end), run_unique


def _pad(arrs, size):
    """Pad per-run arrays (a dict name -> array) to ``size`` runs by repeating the first run.
    The caller gives padded runs an end step of 0, so they never step and are never read."""
    L = next(iter(arrs.values())).shape[0]
    return {k: np.concatenate([a, np.repeat(a[:1], size - L, axis=0)]) for k, a in arrs.items()}


def _chunked(L, chunk):
    """Chunk size and padded batch size: the fewest chunks of at most ``chunk`` runs, of equal
    size, so that at most (number of chunks − 1) runs are padding."""
    n_chunks = -(-L // chunk)
    c = -(-L // n_chunks)
    return c, n_chunks * c


def train_completion(targets, masks, *, depth: int, seeds, steps, target, mask,
                     interventions=None, lr: float = 0.2, scale: float | None = None,
                     record_every: int = 1000, record_until: int | None = None,
                     n_singular: int | None = None, dtype="float64", share_prefix: bool = True,
                     chunk: int = 8) -> CompletionRuns:
    """Train a batch of deep matrix-completion runs; see the module docstring for the model,
    the loss, the deficit schedule and the sharing of prefixes.

    Parameters
    ----------
    targets : (K, n, n) target matrices (or one (n, n)), e.g. from
        :func:`dlnfusion.data.completion.low_rank_target`.
    masks : (Q, n, n) boolean observed sets (or one (n, n)), each observing ≥ 1 entry.
    depth : D, the number of factors (1, 2, 3, …); one compiled call per depth.
    seeds, steps, target, mask : per-run integers (arrays of one length B, or scalars
        broadcast to it). The seed draws the initial weights; a run trains ``steps`` steps on
        its own task, ``targets[target]`` observed on ``masks[mask]``, against which the test
        error is always measured.
    interventions : None, or a list with one
        :class:`~dlnfusion.interventions.Deficit` window ``Deficit(CompletionTask(target=,
        mask=), start=0, end=T)``: steps t < T train on the deficit task (its target and mask
        indices, an integer or one per run each; None keeps the run's own), steps T ≤ t < steps
        on the run's own. ``end`` is an integer or one per run (0: no deficit).
    lr : learning rate η (0.2 in the paper).
    scale : σ, the standard deviation of the initial entries; default (1e-3)^{1/D}/10
        (:func:`default_scale`).
    record_every : steps between records; deficit ends and ``steps`` must be multiples of it.
    record_until : last recorded step (default the largest of ``steps``); a multiple of
        record_every. The compiled code depends on record_until/record_every, not on the steps
        themselves.
    n_singular : how many of the largest singular values of P to record (default n).
    dtype : "float64" (default) or "float32".
    share_prefix : simulate shared prefixes once (default) or every run from scratch.
    chunk : runs per cache-sized chunk in the inner loop (a speed setting; no effect on the
        numbers).

    Notes
    -----
    Compiled shapes depend on (B or the numbers of groups, snapshot slots and unique runs, n, D,
    the numbers of targets and masks, record_until/record_every, n_singular, dtype, chunk); new
    seeds and deficit ends with the same grouping reuse the compiled loop.
    """
    depth = checks.positive_int("depth", depth)
    rec = checks.positive_int("record_every", record_every)
    chunk = checks.positive_int("chunk", chunk)
    lr = checks.learning_rate(lr)
    scale = default_scale(depth) if scale is None else checks.positive("scale", scale)
    switch, tb, mb = _deficit(interventions)
    tb = target if tb is None else tb
    mb = mask if mb is None else mb
    dt = resolve_dtype(dtype)
    T = _stack_square("targets", targets, "target")
    Q = _stack_square("masks", masks, "mask")
    n = T.shape[1]
    if Q.shape[1] != n:
        raise ValueError(f"masks are {Q.shape[1]}×{Q.shape[1]} but targets are {n}×{n}")
    if n_singular is None:
        n_singular = n
    n_singular = checks.positive_int("n_singular", n_singular)
    if n_singular > n:
        raise ValueError(f"n_singular must be at most n = {n}, got {n_singular}")
    seeds, sw, end, tb, mb, ta, ma = _schedule(seeds, switch, steps, tb, mb, target, mask,
                                               T.shape[0], Q.shape[0], rec)
    top = int(end.max())
    horizon = top if record_until is None else checks.nonnegative_int("record_until",
                                                                      record_until)
    if horizon < top or horizon % rec:
        raise ValueError(f"record_until must be a multiple of record_every ({rec}) and at least "
                         f"the largest of steps ({top}), got {horizon}")
    n_records = horizon // rec + 1
    counts = Q.reshape(Q.shape[0], -1).sum(axis=1)
    B = seeds.size
    static = dict(depth=depth, n_records=n_records, n_singular=n_singular, record_every=rec)

    with float64():
        Tj = jnp.asarray(T, dt)
        # A = Ω/|Ω|: the loss is ½ Σ A ⊙ (P − M)², the mean over the observed entries.
        Aj = jnp.asarray(Q / counts[:, None, None], dt)
        lr_j = jnp.asarray(lr, dt)
        if share_prefix:
            gtab, utab, run_u = _group(seeds, sw, end, tb, mb, ta, ma)
            g_seed, g_tb, g_mb, g_end, g_sw = gtab
            G, U = g_seed.size, utab[0].size
            cg, Gp = _chunked(G, chunk)
            cu, Up = _chunked(U, chunk)
            gp = _pad(dict(s=g_seed, tb=g_tb, mb=g_mb, sw=g_sw), Gp)
            g_end_p = np.concatenate([g_end, np.zeros(Gp - G, np.int64)])  # padding: no steps
            up = _pad(dict(g=utab[0], k=utab[1], ta=utab[2], ma=utab[3]), Up)
            u_sw = np.concatenate([utab[4], np.zeros(Up - U, np.int64)])
            u_end = np.concatenate([utab[5], np.zeros(Up - U, np.int64)])
            W0 = _init_batch(gp["s"], depth, n, scale, dt)
            ra, rb, fin = _simulate_shared(
                Tj, Aj, lr_j, W0, *(jnp.asarray(x) for x in (
                    gp["tb"], gp["mb"], g_end_p, gp["sw"], up["g"], up["k"],
                    up["ta"], up["ma"], u_sw, u_end)), chunk=cu, chunk_groups=cg, **static)
            ra, rb, fin = jax.tree_util.tree_map(np.asarray, (ra, rb, fin))
            simulated = int(Gp * g_end_p.max() + Up * (u_end - u_sw).max())
            loss, sv, err = _assemble(ra, rb, utab, U, n_records, rec, n_singular)
            P, loss_f, err_f, dead, dead_at = (a[:U] for a in fin)
            pick = run_u
        else:
            G, U = B, B
            cu, Bp = _chunked(B, chunk)
            p = _pad(dict(s=seeds, tb=tb, mb=mb, ta=ta, ma=ma, sw=sw), Bp)
            endp = np.concatenate([end, np.zeros(Bp - B, np.int64)])
            W0 = _init_batch(p["s"], depth, n, scale, dt)
            r, fin = _simulate_direct(Tj, Aj, W0, lr_j,
                                      *(jnp.asarray(p[k]) for k in ("tb", "mb", "ta", "ma",
                                                                    "sw")),
                                      jnp.asarray(endp), chunk=cu, **static)
            r, fin = jax.tree_util.tree_map(np.asarray, (r, fin))
            simulated = int(Bp * endp.max())
            loss, sv, err = (np.moveaxis(x[:, :B], 0, 1).copy() for x in r)
            # Records after a run's end step are not part of its history.
            after = np.arange(n_records)[None] > (end // rec)[:, None]
            loss[after], err[after], sv[after] = np.nan, np.nan, np.nan
            P, loss_f, err_f, dead, dead_at = (a[:B] for a in fin)
            pick = np.arange(B)

    status = np.where(dead[pick], Status.DIVERGED, Status.MAX_STEPS).astype(np.int8)
    return CompletionRuns(
        time=np.arange(n_records, dtype=np.int64) * rec, test_error=err[pick].astype(float),
        train_loss=loss[pick].astype(float), singular_values=sv[pick].astype(float),
        test_error_final=err_f[pick].astype(float), train_loss_final=loss_f[pick].astype(float),
        product=P[pick], status=status,
        diverged_step=np.where(dead[pick], dead_at[pick], -1).astype(np.int64), seeds=seeds,
        steps=end, target=ta, mask=ma, deficit_end=sw, deficit_target=tb, deficit_mask=mb,
        n_observed=counts[ma], n_observed_deficit=counts[mb], depth=depth, lr=lr, scale=scale, dtype=np.dtype(dt).name, record_every=rec,
        shared_prefix=bool(share_prefix), n_prefix_groups=int(G), n_unique_runs=int(U),
        simulated_steps=simulated, requested_steps=int(end.sum()))


def _assemble(ra, rb, utab, U, R, rec, k):
    """Records per unique run on the absolute time grid: phase A (its group's) before the
    switch, phase B (its own) from the switch to the end, NaN after the end."""
    a_loss, a_sv, a_err = ra          # (R, Gp), (R, Gp, k), (R, Up)
    b_loss, b_sv, b_err = rb          # (R, Up), (R, Up, k), (R, Up)
    u_group, _, _, _, u_sw, u_end = utab
    r = np.arange(R)[None, :]
    s_r, e_r = (u_sw // rec)[:, None], (u_end // rec)[:, None]
    before = r < s_r
    during = (r >= s_r) & (r <= e_r)
    jb = np.clip(r - s_r, 0, R - 1)                       # phase-B block of record r
    uu = np.arange(U)[:, None]
    loss = np.where(before, a_loss[:, u_group].T,
                    np.where(during, b_loss[jb, uu], np.nan))
    err = np.where(before, a_err[:, :U].T, np.where(during, b_err[jb, uu], np.nan))
    sv = np.where(before[..., None], np.moveaxis(a_sv[:, u_group], 0, 1),
                  np.where(during[..., None], b_sv[jb, uu], np.nan))
    return loss, sv, err
