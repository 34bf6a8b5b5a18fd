"""Initialization schemes: one run (:func:`init_params`) or a batch, one seed each
(:func:`init_batch`).

Every scheme is a function ``(spec, key, scale, directions) -> Params`` in :data:`INIT_SCHEMES`;
``scale`` may be a traced scalar, so a scheme can be vmapped over runs. ``directions`` is
``None`` except for schemes that align the weights with the data (``"balanced"``), which get
the output direction o and the input direction v_m of every modality, computed on the host from
the statistics by :func:`aligned_directions`.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..precision import float64
from .spec import NetworkSpec, Params

__all__ = ["INIT_SCHEMES", "init_params", "init_batch", "aligned_directions"]


def _unit(key, n):
    v = jax.random.normal(key, (n,))
    return v / jnp.linalg.norm(v)


def aligned_directions(spec: NetworkSpec, stats) -> tuple:
    """Output direction o (top left singular vector of Σ_yx, sign fixed so that a scalar output
    has o = +1) and, per modality, the unit input direction v_m ∝ Σ_yx_mᵀ o."""
    if stats is None:
        raise ValueError("scheme='balanced' needs stats to align the first layers with Sigma_yx")
    if tuple(stats.dims) != spec.input_dims or stats.output_dim != spec.output_dim:
        raise ValueError(
            f"stats dims {stats.dims} -> {stats.output_dim} do not match the network "
            f"{spec.input_dims} -> {spec.output_dim}")
    u, _, _ = np.linalg.svd(stats.sigma_yx)
    o = u[:, 0]
    if o.sum() < 0:
        o = -o
    vs = []
    for m in range(spec.n_modalities):
        v = stats.sigma_yx_m(m).T @ o
        nv = np.linalg.norm(v)
        if nv == 0:
            raise ValueError(
                f"Sigma_yx of modality {spec.names[m]} is zero along the output direction; no "
                "aligned initialization exists")
        vs.append(v / nv)
    return o, tuple(vs)


def _normal(spec, key, scale, directions):
    """Every entry i.i.d. N(0, scale²) (the paper's two-layer networks: scale = 1e-9)."""
    keys = jax.random.split(key, spec.n_layers + 1)
    mats = [scale * jax.random.normal(k, shape) for k, shape in zip(keys, spec.layer_shapes)]
    return Params.from_matrices(spec, mats)


def _frobenius(spec, key, scale, directions):
    """Pre-fusion matrices of Frobenius norm ≈ u0 = scale, post-fusion ones ≈ √M·u0 (eq. 41)."""
    keys = jax.random.split(key, spec.n_layers + 1)
    n_pre = sum(spec.branch_depths)
    mats = []
    for i, (k, shape) in enumerate(zip(keys, spec.layer_shapes)):
        factor = 1.0 if i < n_pre else np.sqrt(spec.n_modalities)
        mats.append(factor * scale / np.sqrt(shape[0] * shape[1]) * jax.random.normal(k, shape))
    return Params.from_matrices(spec, mats)


def _balanced(spec, key, scale, directions):
    """Exactly balanced rank-one weights aligned with Σ_yx (see :func:`init_params`)."""
    o, vs = directions
    M = spec.n_modalities
    keys = iter(jax.random.split(key, spec.n_layers + 1))
    scales = jnp.broadcast_to(jnp.asarray(scale), (M,))
    u_post = jnp.sqrt(jnp.sum(scales ** 2))
    r_f = o if spec.post_depth == 0 else _unit(next(keys), spec.post_dims[0])
    branches = []
    for m, chain in enumerate(spec.branch_dims):
        prev, layers = vs[m], []
        for l in range(len(chain) - 1):
            r = r_f if l == len(chain) - 2 else _unit(next(keys), chain[l + 1])
            layers.append(scales[m] * jnp.outer(r, prev))
            prev = r
        branches.append(tuple(layers))
    post, prev, p = [], r_f, spec.post_dims
    for j in range(len(p) - 1):
        r = o if j == len(p) - 2 else _unit(next(keys), p[j + 1])
        post.append(u_post * jnp.outer(r, prev))
        prev = r
    return Params(tuple(branches), tuple(post))


#: Initialization schemes by name (see :func:`init_params`).
INIT_SCHEMES = {"normal": _normal, "frobenius": _frobenius, "balanced": _balanced}
_ALIGNED = ("balanced",)


def _scheme(scheme):
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {tuple(INIT_SCHEMES)}, got {scheme!r}")
    return INIT_SCHEMES[scheme]


def init_params(spec: NetworkSpec, key, scheme: str = "normal", scale=1e-9, stats=None) -> Params:
    """Initial weights of one run drawn from ``key`` (in the current JAX precision).

    * ``"normal"``: every entry i.i.d. N(0, scale²). The paper's two-layer networks use
      scale = 1e-9 (implementation; the text writes "N(0, 10^-9)").
    * ``"frobenius"``: the paper's deep networks with initialization scale u0 = ``scale``: each
      pre-fusion matrix has entry std u0/√(entries), so its Frobenius norm is ≈ u0; each
      post-fusion matrix has entry std √M·u0/√(entries) for M branches (√2 u0 for two), matching
      the balance u² = Σ_m u_m² (eq. 41).
    * ``"balanced"``: exactly balanced rank-one weights aligned with Σ_yx (needs ``stats``).
      Every pre-fusion matrix of branch m has Frobenius norm ``scale`` (a scalar or one value
      per modality), every post-fusion matrix √(Σ_m scale_m²); the first layer of branch m is
      aligned with Σ_yx_m. Used for exact-solution checks.

    ``scale`` may be a traced scalar (vmap over it). Use :func:`init_batch` for a batch of runs
    in float64 whatever the process's JAX precision.
    """
    fn = _scheme(scheme)
    if isinstance(scale, (int, float, np.floating)) and not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    directions = aligned_directions(spec, stats) if scheme in _ALIGNED else None
    return fn(spec, key, scale, directions)


def _per_seed(name, values, S):
    """A value given once or once per seed, as a list of S."""
    if isinstance(values, (list, tuple)):
        if len(values) != S:
            raise ValueError(f"{name} has {len(values)} entries for {S} seeds")
        return list(values)
    return [values] * S


def init_batch(spec: NetworkSpec, seeds: Sequence[int], scheme: str = "normal", scale=1e-9,
               stats=None) -> Params:
    """Initial weights for a batch of runs, one PRNG seed each (leading batch axis), float64.

    ``scale`` may be a scalar or one value per seed (for ``"balanced"`` also one value per
    modality, or an array (seeds, modalities)); ``stats`` (needed by ``"balanced"``) one
    :class:`~dlnfusion.stats.Stats` or one per seed. Returns numpy arrays.
    """
    fn = _scheme(scheme)
    seeds = np.atleast_1d(np.asarray(seeds))
    if seeds.ndim != 1 or seeds.size < 1 or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"seeds must be a non-empty sequence of integers, got {seeds!r}")
    S, M = seeds.size, spec.n_modalities
    scales = np.asarray(scale, dtype=float)
    if scales.ndim == 0:
        scales = np.full((S,), float(scales))
    elif scheme in _ALIGNED and scales.shape == (M,):
        scales = np.tile(scales, (S, 1))  # one scale per modality, the same for every seed
    elif scales.shape not in ((S,), (S, M) if scheme in _ALIGNED else (S,)):
        raise ValueError(f"scale must be a scalar or one value per seed, got shape {scales.shape}")
    if np.any(~np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError(f"scale must be positive and finite, got {scale!r}")
    with float64():
        keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
        if scheme in _ALIGNED:
            dirs = [aligned_directions(spec, st) for st in _per_seed("stats", stats, S)]
            o = np.stack([d[0] for d in dirs])
            vs = tuple(np.stack([d[1][m] for d in dirs]) for m in range(M))
            out = jax.vmap(lambda k, s, o_, v_: fn(spec, k, s, (o_, v_)))(
                keys, jnp.asarray(scales), jnp.asarray(o), tuple(map(jnp.asarray, vs)))
        else:
            out = jax.vmap(lambda k, s: fn(spec, k, s, None))(keys, jnp.asarray(scales))
        return jax.tree_util.tree_map(np.asarray, out)
