"""Maps computed from the weights: the forward pass, the total map of every modality, norms."""
from __future__ import annotations

import jax.numpy as jnp

from .spec import NetworkSpec, Params

__all__ = ["forward", "total_maps", "layer_norms"]


def forward(spec: NetworkSpec, params: Params, xs) -> jnp.ndarray:
    """Network output ŷ for inputs ``xs`` (one (P, d_m) array per modality), shape (P, d_out).

    The activation follows every layer but the last: inside each branch, on the fused sum, and
    between post-fusion layers.
    """
    act = spec.act or (lambda h: h)
    z = None
    for x, layers in zip(xs, params.branches):
        h = x
        for l, W in enumerate(layers):
            h = h @ W.T
            if l < len(layers) - 1:
                h = act(h)
        z = h if z is None else z + h
    for W in params.post:
        z = act(z) @ W.T
    return z


def total_maps(spec: NetworkSpec, params: Params) -> tuple:
    """W_m^tot for every modality (eq. 2), each of shape (d_out, d_m).

    The product of the weight matrices along each pathway; for a nonlinear network it ignores
    the nonlinearity (the convention of the paper's Figure 11).
    """
    P = None
    for W in reversed(params.post):  # W^L W^{L-1} ... W^{L_f+1}
        P = W if P is None else P @ W
    out = []
    for layers in params.branches:
        M = P
        for W in reversed(layers):
            M = W if M is None else M @ W
        out.append(M)
    return tuple(out)


def layer_norms(params: Params) -> jnp.ndarray:
    """Frobenius norm of every weight matrix, in the order of ``NetworkSpec.layer_labels``."""
    return jnp.stack([jnp.sqrt(jnp.sum(W * W)) for W in params.matrices()])
