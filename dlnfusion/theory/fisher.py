"""The information amount Tr F_m (Huang et al., CVPR 2025, eq. 7) along the mode solution of
a late-fusion network with scalar modalities and a scalar output: the weights whose map
:func:`dlnfusion.reduced.fisher_late_fusion` iterates exactly.

The closed form of Tr F_m for any linear network and its derivation are
:func:`dlnfusion.rules.fisher_trace` (one rule, shared by the InfoReg transformation and the
reduced simulators). Along the mode solution every branch is a chain whose total weight w_m
and (for two layers) squared norm p_m determine the trace, Tr F_m = E[e² x_m²] p_m (two
layers) or E[e² x_m²] L |w_m|^{2−2/L} (balanced, aligned chains of L ≥ 3 layers);
:func:`balanced_chain_params` builds such chains as network weights.
"""
from __future__ import annotations

import numpy as np

from ..networks import NetworkSpec, Params

__all__ = ["balanced_chain_params"]


def _toy_moments(stats):
    if stats.output_dim != 1 or any(d != 1 for d in stats.dims):
        raise ValueError("the late-fusion mode solution is written for scalar modalities and a scalar "
                         f"output, got input dims {stats.dims} and output {stats.output_dim}")
    S = np.asarray(stats.sigma, float)
    s = np.asarray(stats.sigma_yx, float).reshape(-1)
    return S, s, float(np.asarray(stats.sigma_yy).reshape(()))


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
