"""Balancing invariants of fusion networks (paper eqs. 38–41, corrected).

Under gradient flow on any loss of the total maps, consecutive layers l, l+1 of one pathway
keep W^l W^lᵀ − W^{l+1}ᵀ W^{l+1} constant; at the fusion layer, where M branches feed one
post-fusion layer, Σ_m W_m^{L_f} W_m^{L_f}ᵀ − W^{L_f+1}ᵀ W^{L_f+1} is constant (theory/
invariants.py). The paper prints these as W^l W^lᵀ = W^{l+1} W^{l+1}ᵀ (eqs. 38, 39), which
does not even have matching shapes for rectangular layers. Taking traces gives the norm
relations of eqs. (40)–(41): ‖W^l‖² − ‖W^{l+1}‖² and Σ_m ‖W_m^{L_f}‖² − ‖W^{L_f+1}‖² are
conserved, which with a balanced start gives u_A² + u_B² = u².

Gradient descent conserves them only approximately: one step changes each invariant by
η² (G_l G_lᵀ − G_{l+1}ᵀ G_{l+1}) (G the gradients), so after a fixed time T = nη the drift is
O(η T): first order in the learning rate (tests/test_invariants.py measures the slope).
"""
from __future__ import annotations

import numpy as np

from ..networks import NetworkSpec, Params

__all__ = ["balance_invariants", "norm_invariants"]


def _mats(params):
    return ([[np.asarray(W) for W in layers] for layers in params.branches],
            [np.asarray(W) for W in params.post])


def _outer(W):      # W Wᵀ over the last two axes
    return W @ np.swapaxes(W, -1, -2)


def _inner(W):      # Wᵀ W over the last two axes
    return np.swapaxes(W, -1, -2) @ W


def balance_invariants(spec: NetworkSpec, params: Params) -> dict:
    """The conserved matrices of gradient flow, by name.

    Keys "A:1-2" (W_A¹W_A¹ᵀ − W_A²ᵀW_A²), ..., "fusion" (Σ_m W_m^{L_f}W_m^{L_f}ᵀ −
    W^{L_f+1}ᵀW^{L_f+1}, when there are post-fusion layers), "post:j-(j+1)". Leading batch axes
    of ``params`` are kept.
    """
    branches, post = _mats(params)
    out = {}
    for name, layers in zip(spec.names, branches):
        for l in range(len(layers) - 1):
            out[f"{name}:{l + 1}-{l + 2}"] = _outer(layers[l]) - _inner(layers[l + 1])
    if post:
        out["fusion"] = sum(_outer(layers[-1]) for layers in branches) - _inner(post[0])
        offset = max(spec.branch_depths)
        for j in range(len(post) - 1):
            out[f"post:{offset + j + 1}-{offset + j + 2}"] = _outer(post[j]) - _inner(post[j + 1])
    return out


def norm_invariants(spec: NetworkSpec, params: Params) -> dict:
    """Traces of :func:`balance_invariants`: differences of squared Frobenius norms (eqs. 40–41)."""
    return {k: np.trace(v, axis1=-2, axis2=-1) for k, v in balance_invariants(spec, params).items()}
