"""Aligned, balanced initialization of parallel pathways (Kleinman, Achille, Soatto & Kao 2023).

Pathway p (a branch of :meth:`NetworkSpec.pathways`, D = its number of matrices) starts on the
task's modes Σ_yx = U diag(s) Vᵀ (:meth:`dlnfusion.Stats.modes`): every layer carries the same
value q per mode, so the pathway's map is U diag(q^D) Vᵀ and its mode strengths are
K_{p,α} = q^D = ``strength``:

    W_1 = R_1 diag(q) Vᵀ,  W_l = R_l diag(q) R_{l−1}ᵀ,  W_D = U diag(q) R_{D−1}ᵀ   (D = 1: U diag(q) Vᵀ)

with R_l (width × M) random orthonormal columns, one draw per seed (M = number of modes).
Gradient descent keeps such a network aligned and balanced, and every mode follows the scalar
map q ← q + η q^{D−1}(s_α − Σ_p K_{p,α}) exactly (dlnfusion.theory.pathways). ``jitter`` breaks
the exact alignment: every entry of every matrix gets i.i.d. Gaussian noise of standard
deviation jitter·q/√fan_in (a relative perturbation of each unit's weight vector of size
≈ jitter·√(width/M) against its aligned part); the spec of the paper's code states a small
jitter but no value, so the default 0 is the exactly aligned network.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .spec import NetworkSpec, Params

__all__ = ["init_pathways"]


def _orthonormal(rng, n, k):
    q, r = np.linalg.qr(rng.standard_normal((n, k)))
    return q * np.sign(np.diag(r))


def init_pathways(spec: NetworkSpec, stats, seeds: Sequence[int] = (0,), strength=0.01,
                  jitter: float = 0.0) -> Params:
    """Batched Params (leading axis: seeds) of aligned, balanced pathways.

    ``stats`` are the task's statistics (one modality, e.g. :func:`dlnfusion.data.hierarchy`)
    or their repetition for the pathways (:meth:`Stats.repeated`); ``strength`` the initial
    mode strength K of every pathway and mode (> 0; a scalar, one per pathway, or (P, M));
    ``jitter`` as in the module docstring.
    """
    P = spec.n_modalities
    if spec.post_depth != 0:
        raise ValueError("init_pathways needs a network of parallel pathways (no post-fusion "
                         "layers), e.g. NetworkSpec.pathways")
    base = stats
    if stats.n_modalities == P and P > 1:
        base_dims = set(stats.dims)
        if len(base_dims) != 1:
            raise ValueError("stats for pathways must repeat one input")
        U, s, V = stats.modes(0)
    elif stats.n_modalities == 1:
        U, s, V = base.modes(0)
    else:
        raise ValueError(f"stats must have one modality or one per pathway ({P}), got "
                         f"{stats.n_modalities}")
    d_in, d_out = V.shape[0], U.shape[0]
    if set(spec.input_dims) != {d_in} or spec.output_dim != d_out:
        raise ValueError(f"stats dims {d_in} -> {d_out} do not match the pathways "
                         f"{spec.input_dims} -> {spec.output_dim}")
    M = s.size
    try:
        k = np.asarray(strength, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"strength must be numeric, got {strength!r}") from exc
    if k.ndim == 0:
        K0 = np.full((P, M), float(k))
    elif k.shape == (P,):
        K0 = np.repeat(k[:, None], M, axis=1)
    else:
        K0 = k
    if K0.shape != (P, M) or np.any(~np.isfinite(K0)) or np.any(K0 <= 0):
        raise ValueError(f"strength must be positive and finite, scalar, ({P},) or ({P}, {M}); "
                         f"got {strength!r}")
    if not np.isfinite(jitter) or jitter < 0:
        raise ValueError(f"jitter must be >= 0, got {jitter!r}")
    for p, chain in enumerate(spec.branch_dims):
        if len(chain) > 2 and min(chain[1:-1]) < M:
            raise ValueError(f"pathway {spec.names[p]} has a hidden width {min(chain[1:-1])} "
                             f"below the number of modes {M}")
    runs = []
    for seed in [int(x) for x in np.atleast_1d(seeds)]:
        rng = np.random.default_rng(seed)
        mats = []
        for p, (chain, D) in enumerate(zip(spec.branch_dims, spec.branch_depths)):
            q = K0[p] ** (1.0 / D)
            R = [V] + [_orthonormal(rng, h, M) for h in chain[1:-1]] + [U]
            for l in range(D):
                W = R[l + 1] @ np.diag(q) @ R[l].T
                if jitter:
                    W = W + jitter * np.mean(q) / np.sqrt(W.shape[1]) \
                        * rng.standard_normal(W.shape)
                mats.append(W)
        runs.append(mats)
    stacked = [np.stack([r[i] for r in runs]) for i in range(len(runs[0]))]
    return Params.from_matrices(spec, stacked)
