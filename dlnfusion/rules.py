"""The rules of the modality-balancing methods, written once: what the optax transformations
(:mod:`dlnfusion.transforms`) apply to a network and what the exact reduced simulators
(:mod:`dlnfusion.reduced`) apply to their reduced state are the same functions.

* OGM / OGM-GE (Peng et al., CVPR 2022; the conventions of docs/conventions.md and the authors'
  code): :func:`ogm_coefficients`, the gradient scale 1 − tanh(α·ratio) of the leading
  modality (``continuous``: 1 − tanh(α(ratio − 1))), 1 for the other.
* InfoReg (Huang, Wei, Yang & Hu, CVPR 2025): the performance gap Δ_m (eqs. 9-10,
  :func:`score_gaps`), the prime-learning-window test on the epoch traces (eq. 11 and the
  authors' moving average, :func:`window_test`; on a recorded series, :func:`prime_window`),
  the bookkeeping of those traces (:func:`push_trace`) and the regulation strength
  α_m = c_m exp(β tanh Δ_m) (eq. 16, :func:`inforeg_prefactor`) applied inside the window to
  the information-sufficient modality (:func:`inforeg_regulation`).
* The information amount Tr F_m = E‖∇_{θ_m} ℓ‖² (eq. 7) of a linear network, in closed form
  (:func:`fisher_trace`, :func:`fisher_terms`, :func:`noise_covariance`; derivation below).

Every traceable rule takes and returns arrays, so it runs inside the jitted loops of both.
tests/helpers/rules_reference.py re-implements each one in plain numpy from the papers'
equations, and the tests compare the two.

The Fisher trace in closed form (theory/fisher.py derives and checks it). For the
parameters θ_m of modality m's branch (its pre-fusion weight matrices, the fusion layer's
block W_m^{L_f} included: the grouping of :func:`dlnfusion.param_labels`),

    Tr F_m = E ‖∇_{θ_m} ℓ(x, y)‖²,     ℓ = ½‖y − ŷ(x)‖²   (per sample),

the expectation over the data distribution. With per-batch gradients (the authors' code) the
quantity is E‖ḡ_b‖², ḡ_b the mean gradient of a batch of b independent samples. A weight
matrix W_l of a linear network enters ŷ = A_l W_l B_l x, with A_l the product of the layers
above it (d_out × n_l; the identity for the last layer) and B_l the product below it,
restricted to the inputs that reach it (n_{l−1} × D: zero columns outside modality m for a
layer of branch m). The per-sample gradient is the outer product −(A_lᵀ e)(B_l x)ᵀ,
e = y − W x (W the total map), so

    ‖∇_{W_l} ℓ‖² = ‖A_lᵀ e‖² ‖B_l x‖²,

a product of two quadratic forms in the jointly Gaussian, zero-mean pair (e, x). By Isserlis'
theorem E[u_i² v_j²] = E[u_i²] E[v_j²] + 2 E[u_i v_j]², hence

    E‖∇_{W_l} ℓ‖² = tr(A_lᵀ Σ_ee A_l) tr(B_l Σ B_lᵀ) + 2 ‖A_lᵀ Σ_ex B_lᵀ‖²_F,

    Σ_ee = E[e eᵀ] = N + (W − W*) Σ (W − W*)ᵀ,   Σ_ex = E[e xᵀ] = −(W − W*) Σ,

with W* = Σ_yx Σ⁺ the global solution and N = Σ_yy − W* Σ W*ᵀ the noise covariance (written
around W* so that the value keeps its relative precision near convergence). The mean gradient
is E∇_{W_l} ℓ = −A_lᵀ Σ_ex B_lᵀ, so a batch of b samples gives

    E‖ḡ_b‖² = ‖A_lᵀ Σ_ex B_lᵀ‖² + (E‖∇ℓ‖² − ‖A_lᵀ Σ_ex B_lᵀ‖²)/b.

Assumptions: (x, y) jointly Gaussian and zero mean with the moments of the Stats (the
statistics of Stats.sample; any teacher with Gaussian noise); a linear network; the squared
loss. For other data the formula is the Gaussian approximation (its fourth moments are those
of a Gaussian with the same second moments); sample-based measurement for any network is
:func:`dlnfusion.compare.fisher_sampled`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .networks import NetworkSpec, Params
from .precision import float64

__all__ = ["ogm_coefficients", "score_gaps", "window_test", "push_trace", "inforeg_prefactor",
           "inforeg_regulation", "prime_window", "WINDOW_RULES", "WINDOWS", "fisher_terms",
           "fisher_trace", "noise_covariance", "FISHER_GROUPS"]

FISHER_GROUPS = ("branch", "layer")
#: The prime-learning-window rules tested on a trace: the paper's eq. 11 and the authors'
#: moving average.
WINDOW_RULES = ("paper", "moving_average")
#: InfoReg's window choices: the two rules, regulating throughout ("always") or only outside
#: the paper's window ("outside": the two ablations of the paper's Table 4) and never (joint
#: training).
WINDOWS = WINDOW_RULES + ("always", "outside", "never")


# ---------------------------------------------------------------------- OGM
def ogm_coefficients(scores, alpha: float, continuous: bool = False):
    """OGM's gradient scale of two modalities (traceable, (2,)): 1 − tanh(α·ratio) for the one
    whose score is the larger, ratio = s_lead/s_other (``continuous``: 1 − tanh(α(ratio −
    1))), 1 for the other; a non-positive score never leads and counts as infinitely behind."""
    tiny = jnp.finfo(scores.dtype).tiny
    ratio = jnp.stack([scores[0] / jnp.maximum(scores[1], tiny),
                       scores[1] / jnp.maximum(scores[0], tiny)])
    ratio = jnp.where(scores > 0, ratio, 0.0)
    arg = alpha * (ratio - 1.0) if continuous else alpha * ratio
    return jnp.where(ratio > 1.0, 1.0 - jnp.tanh(arg), 1.0)


# ---------------------------------------------------------------------- InfoReg
def score_gaps(scores):
    """Δ_m of Huang et al. eq. (10): the mean of s_m − s_n over the modalities n with
    s_n < s_m, 0 when there is none (traceable; the last axis is the modality)."""
    diff = scores[..., :, None] - scores[..., None, :]
    beats = diff > 0
    count = jnp.sum(beats, axis=-1)
    return jnp.where(count > 0, jnp.sum(jnp.where(beats, diff, 0.0), axis=-1)
                     / jnp.maximum(count, 1), 0.0)


def window_test(history, epoch, window: str, K: float, average: int):
    """InfoReg's window flags at the start of epoch ``epoch`` (traceable). ``history`` (H, M)
    holds the traces of the last finished epochs, newest last (Tr F^{t−1} last): "paper" and
    "outside" test (Tr F^{t−1} − Tr F^{t−2})/Tr F^{t−1} > K (eq. 11; "outside" is the
    complement), from epoch 2 on; "moving_average" the same on ``average``-epoch means, from
    epoch average + 1 on; "always" and "never" are constant."""
    M = history.shape[-1]
    if window == "always":
        return jnp.ones((M,), bool)
    if window == "never":
        return jnp.zeros((M,), bool)
    if window in ("paper", "outside"):
        new, old, ok = history[-1], history[-2], epoch >= 2
    else:
        new, old = jnp.mean(history[1:], axis=0), jnp.mean(history[:-1], axis=0)
        ok = epoch >= average + 1
    rate = (new - old) / jnp.where(new != 0, new, 1.0)
    return ok & ((rate <= K) if window == "outside" else (rate > K))


def push_trace(history, count, trace, new):
    """Where ``new`` (a traced bool): the trace history (H, M), newest last, with ``trace``
    (M,) appended and its oldest row dropped, and the count of traces held plus one;
    otherwise both unchanged (traceable)."""
    history = jnp.where(new, jnp.concatenate([history[1:], trace[None]]), history)
    return history, count + jnp.asarray(new).astype(jnp.int32)


def inforeg_prefactor(gaps, beta: float, prefactors):
    """InfoReg's regulation strength α_m = c_m exp(β tanh Δ_m) (eq. 16; c_m = 1 in the paper,
    fixed prefactors in the authors' code) from the gaps Δ (M,) (traceable)."""
    return jnp.asarray(prefactors, gaps.dtype) * jnp.exp(beta * jnp.tanh(gaps))


def inforeg_regulation(history, epoch, gaps, *, window: str, K: float, average: int,
                       beta: float, prefactors):
    """InfoReg's rule for one step (traceable): the regulated branches (M,) bool — the
    information-sufficient ones (Δ_m > 0) inside their window (:func:`window_test` on the
    trace ``history`` at ``epoch``) — and the proximal coefficient of every branch (M,):
    α_m (:func:`inforeg_prefactor`) where regulated, 0 elsewhere. The branch's gradient gains
    that coefficient times (θ_m − θ_m^{prev})."""
    regulated = window_test(history, epoch, window, K, average) & (gaps > 0)
    return regulated, jnp.where(regulated, inforeg_prefactor(gaps, beta, prefactors), 0.0)


def prime_window(trace, K: float = 0.04, rule: str = "paper", average: int = 10) -> np.ndarray:
    """Which epochs lie in the prime learning window, from the information amount recorded
    once per epoch (``trace`` (..., T): Tr F at the end of epochs 0 … T−1, last axis time).

    ``rule="paper"`` (eq. 11): epoch t is in the window when
    (Tr F^{t−1} − Tr F^{t−2}) / Tr F^{t−1} > K (epochs 0 and 1: no test, False).
    ``rule="moving_average"`` (the authors' code): the same relative change of the
    ``average``-epoch moving average of the trace (epochs before two full averages: False).
    Returns booleans of the shape of ``trace``. K must lie in (0, 1).
    """
    if rule not in WINDOW_RULES:
        raise ValueError(f"rule must be one of {WINDOW_RULES}, got {rule!r}")
    if isinstance(K, bool) or not isinstance(K, (int, float, np.floating, np.integer)) \
            or not 0 < K < 1:
        raise ValueError(f"K (the window threshold) must lie in (0, 1), got {K!r}")
    if isinstance(average, bool) or not isinstance(average, (int, np.integer)) or average < 1:
        raise ValueError(f"average must be a positive integer, got {average!r}")
    F = np.asarray(trace, float)
    if F.ndim < 1:
        raise ValueError("trace must have a time axis (the last)")
    if rule == "moving_average":
        kernel = np.ones(average) / average
        F = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="full")[:v.size], -1, F)
        F[..., :average - 1] = np.nan           # not a full average yet
    out = np.zeros(F.shape, bool)
    prev, prev2 = F[..., 1:-1], F[..., :-2]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (prev - prev2) / prev
    out[..., 2:] = np.nan_to_num(rate, nan=-np.inf) > K
    return out


# ---------------------------------------------------------------------- Fisher trace
def _eye(n, dtype):
    return jnp.eye(n, dtype=dtype)


def _chain(mats, n, dtype):
    """Product M_k ⋯ M_1 of ``mats`` = (M_1, …, M_k); the identity of size n when empty."""
    P = _eye(n, dtype)
    for M in mats:
        P = M @ P
    return P


def fisher_terms(params: Params, sigma, noise, w_star):
    """Per weight matrix (the order of :meth:`Params.matrices`): (E‖∇ℓ‖², ‖E∇ℓ‖²), each an
    array of shape (n_layers,), for one run (unbatched ``params``; traceable, no checks)."""
    dtype = sigma.dtype
    branches, post = params.branches, params.post
    dims = [layers[0].shape[1] for layers in branches]
    offsets = np.concatenate([[0], np.cumsum(dims)])
    D = int(offsets[-1])
    h_f = branches[0][-1].shape[0]
    # Total map W = P [F_1, …, F_M], P the post product, F_m the branch products.
    P = _chain(post, h_f, dtype)
    fused = [_chain(layers, layers[0].shape[1], dtype) for layers in branches]
    F = jnp.concatenate(fused, axis=1)                               # (h_f, D)
    W = P @ F
    Dev = W - w_star
    S_ee = noise + Dev @ sigma @ Dev.T
    S_ex = -Dev @ sigma

    def pair(A, B):
        full = (jnp.trace(A.T @ S_ee @ A) * jnp.trace(B @ sigma @ B.T))
        M = A.T @ S_ex @ B.T
        mean = jnp.sum(M * M)
        return full + 2.0 * mean, mean

    out = []
    for m, layers in enumerate(branches):
        for l in range(len(layers)):
            A = P @ _chain(layers[l + 1:], layers[l].shape[0], dtype)
            below = _chain(layers[:l], dims[m], dtype)                # (n_in, d_m)
            B = jnp.zeros((below.shape[0], D), dtype).at[:, offsets[m]:offsets[m + 1]].set(below)
            out.append(pair(A, B))
    d_out = W.shape[0]
    for j in range(len(post)):
        A = _chain(post[j + 1:], post[j].shape[0], dtype) if j + 1 < len(post) else _eye(d_out, dtype)
        B = _chain(post[:j], h_f, dtype) @ F
        out.append(pair(A, B))
    full = jnp.stack([f for f, _ in out])
    mean = jnp.stack([g for _, g in out])
    return full, mean


def _group(values, branch_depths, by):
    if by == "layer":
        return values
    sums, i = [], 0
    for d in branch_depths:
        sums.append(jnp.sum(values[..., i:i + d], axis=-1))
        i += d
    return jnp.stack(sums, axis=-1)


def _trace_one(params, sigma, noise, w_star, by, batch_size):
    full, mean = fisher_terms(params, sigma, noise, w_star)
    vals = full if batch_size is None else mean + (full - mean) / batch_size
    return _group(vals, [len(b) for b in params.branches], by)


def noise_covariance(stats) -> np.ndarray:
    """N = Σ_yy − W* Σ W*ᵀ, the covariance of the target left unexplained by W*."""
    W = stats.global_solution()
    return np.asarray(stats.sigma_yy) - W @ np.asarray(stats.sigma) @ W.T


def _check_by(by):
    if by not in FISHER_GROUPS:
        raise ValueError(f"by must be one of {FISHER_GROUPS}, got {by!r}")


def _check_batch(batch_size):
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be None (per-sample gradients) or a positive "
                         f"integer, got {batch_size!r}")
    return int(batch_size)


def _check_spec_params(spec, params, linear=True):
    if not isinstance(spec, NetworkSpec):
        raise ValueError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
    if linear and not spec.is_linear:
        raise ValueError("the closed-form Fisher trace needs a linear network; use "
                         "dlnfusion.compare.fisher_sampled for a nonlinear one")
    if not isinstance(params, Params):
        raise ValueError("params must be a dlnfusion Params")
    mats = params.matrices()
    if len(mats) != spec.n_layers:
        raise ValueError(f"params has {len(mats)} matrices, the network {spec.n_layers}")
    batch = None
    for W, shape, label in zip(mats, spec.layer_shapes, spec.layer_labels):
        sh = tuple(np.shape(W))
        if sh[-2:] != shape:
            raise ValueError(f"{label} has shape {sh}, the network needs (..., ) + {shape}")
        if batch is None:
            batch = sh[:-2]
        elif sh[:-2] != batch:
            raise ValueError(f"{label} has batch shape {sh[:-2]}, other matrices {batch}")
    return batch


def fisher_trace(spec: NetworkSpec, params: Params, stats, by: str = "branch",
                 batch_size: int | None = None) -> np.ndarray:
    """Tr F of every branch (``by="branch"``: shape (..., M)) or every weight matrix
    (``by="layer"``: (..., n_layers), the order of ``spec.layer_labels``), exact for Gaussian
    data with the moments ``stats`` and a linear network (module docstring).

    ``params`` may carry leading batch axes. ``batch_size=None``: per-sample gradients (the
    paper's eq. 7); an integer b: the expected squared norm of the mean gradient of a batch of
    b samples (the authors' per-batch variant, per batch). The post-fusion layers belong to no
    branch: ``by="layer"`` reports them.
    """
    _check_by(by)
    b = _check_batch(batch_size)
    batch = _check_spec_params(spec, params)
    if tuple(stats.dims) != tuple(spec.input_dims) or stats.output_dim != spec.output_dim:
        raise ValueError(f"stats have input dims {stats.dims} and output {stats.output_dim}, "
                         f"the network {spec.input_dims} and {spec.output_dim}")
    with float64():
        sigma = jnp.asarray(stats.sigma, jnp.float64)
        noise = jnp.asarray(noise_covariance(stats), jnp.float64)
        w_star = jnp.asarray(stats.global_solution(), jnp.float64)
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64).reshape(
            (-1,) + np.shape(a)[len(batch):]), params)
        fn = jax.vmap(lambda q: _trace_one(q, sigma, noise, w_star, by, b))
        out = np.asarray(fn(p))
    return out.reshape(batch + out.shape[1:])
