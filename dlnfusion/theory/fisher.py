"""The information amount of a branch: the trace of its Fisher information (Huang et al.,
CVPR 2025, eq. 7), in closed form for linear fusion networks, and along the mode solution.

Definition. For the parameters θ_m of modality m's branch (its pre-fusion weight matrices,
the fusion layer's block W_m^{L_f} included: the grouping of :func:`dlnfusion.param_labels`),

    Tr F_m = E ‖∇_{θ_m} ℓ(x, y)‖²,     ℓ = ½‖y − ŷ(x)‖²   (per sample),

the expectation over the data distribution. With per-batch gradients (the authors' code) the
quantity is E‖ḡ_b‖², ḡ_b the mean gradient of a batch of b independent samples.

Closed form (theory/fisher.py derives and checks it). A weight matrix W_l of a linear network
enters ŷ = A_l W_l B_l x, with A_l the product of the layers above it (d_out × n_l; the
identity for the last layer) and B_l the product below it, restricted to the inputs that reach
it (n_{l−1} × D: zero columns outside modality m for a layer of branch m). The per-sample
gradient is the outer product −(A_lᵀ e)(B_l x)ᵀ, e = y − W x (W the total map), so

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

Along the mode solution (late fusion, scalar modalities, scalar output). Branch m is a chain
of L matrices whose product is the scalar w_m. With g_m = E[x_m e] = s_m − Σ_n Σ_mn w_n (s_m
= Σ_yx_m), ℓ's gradient makes each branch a chain driven by g_m:

* two layers (W_m^1 = u, W_m^2 = vᵀ): ‖∇ℓ‖² summed over both = e² x_m² (‖u‖² + ‖v‖²), so
  Tr F_m = E[e² x_m²] p_m with p_m = ‖u‖² + ‖v‖²; gradient descent maps
  (w, p) → (w + η p g + η² w g², p + 4η w g + η² p g²) exactly, for any initial weights
  (u' = u + η g v, v' = v + η g u), so w_m(t) and p_m(t) follow from (w_m(0), p_m(0)) alone;
* L ≥ 3 layers, balanced and aligned (every layer of norm a, w = a^L): a → a + η a^{L−1} g
  per step and Σ_l ‖A_l‖²‖B_l‖² = L a^{2(L−1)}, so Tr F_m = E[e² x_m²] L |w_m|^{2−2/L}. This
  is the mode solution; it ignores the components of random initial weights outside the
  growing mode (they dominate the norms until the mode has grown above them).

E[e² x_m²] = E[e²] Σ_mm + 2 g_m² (Isserlis again). :func:`fisher_late_fusion` iterates these
maps (gradient descent at learning rate η; one step of the map is one step of training).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..networks import NetworkSpec, Params
from ..precision import float64

__all__ = ["fisher_trace", "fisher_terms", "noise_covariance", "FisherTheory", "fisher_late_fusion",
           "balanced_chain_params",
           "prime_window", "WINDOW_RULES", "FISHER_GROUPS"]

FISHER_GROUPS = ("branch", "layer")
WINDOW_RULES = ("paper", "moving_average")


# ---------------------------------------------------------------------- closed form
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


# ---------------------------------------------------------------------- mode solution
class FisherTheory(NamedTuple):
    """Tr F_m(t) of a late-fusion network along its mode solution (:func:`fisher_late_fusion`).

    ``time`` (T,) steps; ``w`` (T, M) the total weight of each branch; ``norms`` (T, M) the
    weight factor Σ_l ‖A_l‖²‖B_l‖² of each branch; ``trace`` (T, M) Tr F_m; ``loss`` (T,).
    """

    time: np.ndarray
    w: np.ndarray
    norms: np.ndarray
    trace: np.ndarray
    loss: np.ndarray


def _toy_moments(stats):
    if stats.output_dim != 1 or any(d != 1 for d in stats.dims):
        raise ValueError("the late-fusion mode solution is written for scalar modalities and a scalar "
                         f"output, got input dims {stats.dims} and output {stats.output_dim}")
    S = np.asarray(stats.sigma, float)
    s = np.asarray(stats.sigma_yx, float).reshape(-1)
    return S, s, float(np.asarray(stats.sigma_yy).reshape(()))


def fisher_late_fusion(stats, depth: int, lr: float, w0, steps: int, p0=None,
                       stride: int = 1) -> FisherTheory:
    """Tr F_m(t) of a late-fusion linear network (every branch ``depth`` layers, scalar
    modalities, scalar output) trained by gradient descent at learning rate ``lr``, from the
    mode solution (module docstring): iterate the exact (depth 2) or balanced-aligned
    (depth ≥ 3) map of every branch's total weight w_m, the branches coupled through
    g_m = s_m − Σ_n Σ_mn w_n.

    ``w0`` the initial total weight of each branch along its growing mode (one value per
    modality, e.g. :func:`dlnfusion.theory.effective_init`, or the product of aligned initial
    weights); for depth 2 ``p0`` the initial ‖W_m^1‖² + ‖W_m^2‖² of each branch (default
    2|w0|: balanced and aligned). Records every ``stride`` steps up to ``steps``.
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2 (late fusion), got {depth!r}")
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    for name, v in (("steps", steps), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    S, s, syy = _toy_moments(stats)
    M = len(s)
    w0 = np.broadcast_to(np.asarray(w0, float), (M,)).copy()
    L = int(depth)
    if not np.all(np.isfinite(w0)) or (L > 2 and np.any(w0 <= 0)):
        raise ValueError(f"w0 must be finite (and positive for depth >= 3: the balanced "
                         f"chain of the growing mode), got {w0}")
    if p0 is None:
        p0 = 2.0 * np.abs(w0)
    elif L != 2:
        raise ValueError("p0 (the initial sum of squared norms) is used by depth 2 only")
    p0 = np.broadcast_to(np.asarray(p0, float), (M,)).copy()
    if np.any(p0 < 2 * np.abs(w0) * (1 - 1e-12)):
        raise ValueError("p0 must be at least 2|w0| (‖u‖² + ‖v‖² >= 2|u·v|)")
    n_rec = steps // stride + 1

    w_star = np.linalg.pinv(S) @ s
    noise = max(syy - s @ w_star, 0.0)

    def moments(w):
        dev = w - w_star                                # written around W* (precision)
        return -S @ dev, noise + dev @ S @ dev          # E[x_m e], E[e²]

    def factor(w, p):
        if L == 2:
            return p
        return L * jnp.abs(w) ** (2.0 - 2.0 / L)

    def step(state, _):
        w, p = state
        g, _ = moments(w)
        if L == 2:
            return (w + lr * p * g + lr ** 2 * w * g ** 2,
                    p + 4.0 * lr * w * g + lr ** 2 * p * g ** 2), None
        a = w ** (1.0 / L)                             # every layer of norm a, w = a^L > 0
        return ((a + lr * a ** (L - 1) * g) ** L, p), None

    def block(state, _):
        state, _ = jax.lax.scan(step, state, None, length=stride)
        return state, state

    with float64():
        init = (jnp.asarray(w0), jnp.asarray(p0))
        _, (ws, ps) = jax.lax.scan(block, init, None, length=n_rec - 1)
        ws = jnp.concatenate([init[0][None], ws])
        ps = jnp.concatenate([init[1][None], ps])
        g, ee = jax.vmap(moments)(ws)
        ex2 = ee[:, None] * jnp.diag(S)[None] + 2.0 * g ** 2
        fac = jax.vmap(factor)(ws, ps)
        out = FisherTheory(np.arange(n_rec, dtype=float) * stride, np.asarray(ws),
                           np.asarray(fac), np.asarray(ex2 * fac), 0.5 * np.asarray(ee))
    return out


def balanced_chain_params(spec: NetworkSpec, w0, seeds=(0,)) -> Params:
    """Batched Params (leading axis: seeds) of a late-fusion network with scalar modalities and
    a scalar output whose every branch is a balanced, aligned chain of total weight ``w0``
    (one positive value per modality): W_m^1 = a r_1, W_m^l = a r_l r_{l−1}ᵀ, W_m^L = a r_{L−1}ᵀ
    with a = w0^{1/L} and random orthonormal r_l drawn per seed and branch. Gradient descent
    keeps this structure (every layer's gradient is a^{L−1} g r_l r_{l−1}ᵀ), so
    :func:`fisher_late_fusion` is exact on it."""
    if not isinstance(spec, NetworkSpec):
        raise ValueError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
    if spec.post_depth or spec.output_dim != 1 or any(d != 1 for d in spec.input_dims):
        raise ValueError("balanced_chain_params builds late fusion (no post-fusion layers) "
                         "with scalar modalities and a scalar output")
    M, L = spec.n_modalities, spec.depth
    w0 = np.broadcast_to(np.asarray(w0, float), (M,))
    if not np.all(np.isfinite(w0)) or np.any(w0 <= 0):
        raise ValueError(f"w0 must be positive, one per modality, got {w0}")
    a = w0 ** (1.0 / L)
    runs = []
    for seed in np.atleast_1d(seeds):
        rng = np.random.default_rng(int(seed))
        mats = []
        for m, chain in enumerate(spec.branch_dims):
            widths = chain[1:-1]
            r = [np.ones(1)]
            for h in widths:
                v = rng.standard_normal(h)
                r.append(v / np.linalg.norm(v))
            r.append(np.ones(1))
            mats += [a[m] * np.outer(r[l + 1], r[l]) for l in range(L)]
        runs.append(mats)
    return Params.from_matrices(spec, [np.stack([r[i] for r in runs])
                                       for i in range(spec.n_layers)])


# ---------------------------------------------------------------------- the window
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
