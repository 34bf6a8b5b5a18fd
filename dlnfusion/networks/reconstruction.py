"""Cross-source reconstruction as an auxiliary objective (Kleinman, Achille & Soatto, CVPR 2023,
Section 4.4): every view is reconstructed from the pre-fusion representation of every other
view, and the trainer adds the reconstruction error, with weight λ, to the task loss.

:class:`CrossReconstruction` wraps a :class:`~dlnfusion.networks.FusionMLP` with at least one
layer before fusion. For views m ≠ k with pre-fusion representations h_m (the output of branch
m's L_f − 1 layers, after the activation), a linear decoder (D_{m→k}, c_{m→k}) maps h_m to a
reconstruction of x_k, and the per-sample auxiliary loss is

    λ · Σ_{m ≠ k} mean_pixels (D_{m→k} h_m + c_{m→k} − x_k)²,

each term the mean squared error over x_k's pixels (so λ weighs it against the cross-entropy
independently of the image size). The decoders start from PyTorch's default initialization and
train with the network; the reconstruction's gradient reaches the encoders, which is what it is
for: a branch must keep what predicts the other view, so it cannot drop the features the two
views share.

The paper's version is a masked-patch reconstruction in a multi-view transformer (its ref. [4]);
a linear cross-view decoder is the simplest objective with the same aim, and the one whose
effect on a linear network can be computed.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .classifiers import FusionMLP, _activation, _uniform

__all__ = ["CrossReconstruction"]


@dataclass(frozen=True)
class CrossReconstruction:
    """A FusionMLP trained with cross-view reconstruction of weight ``weight`` (λ ≥ 0)."""

    base: FusionMLP
    weight: float = 1.0

    def __post_init__(self):
        if not isinstance(self.base, FusionMLP):
            raise ValueError(f"base must be a FusionMLP, got {type(self.base).__name__}")
        if self.base.spec.fusion_layer < 2:
            raise ValueError("cross-source reconstruction needs at least one layer before fusion "
                             f"(fusion_layer >= 2), got fusion_layer {self.base.fusion_layer}")
        if len(self.base.input_dims) < 2:
            raise ValueError("cross-source reconstruction needs at least two views")
        w = float(self.weight)
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"weight must be finite and >= 0, got {self.weight!r}")
        object.__setattr__(self, "weight", w)

    @property
    def input_dims(self) -> tuple:
        return self.base.input_dims

    @property
    def spec(self):
        return self.base.spec

    def pairs(self) -> tuple:
        """The ordered (source m, target k) pairs of the decoders."""
        M = len(self.base.input_dims)
        return tuple((m, k) for m in range(M) for k in range(M) if m != k)

    def init(self, key):
        """The base network's parameters from ``key`` itself (the same initialization as the
        base network trained without reconstruction), the decoders from a key folded off it."""
        k_net, k_dec = key, jax.random.fold_in(key, 7)
        width = self.base.width
        keys = iter(jax.random.split(k_dec, 2 * len(self.pairs())))
        decoders = tuple((_uniform(next(keys), (self.base.input_dims[k], width), width),
                          _uniform(next(keys), (self.base.input_dims[k],), width))
                         for _, k in self.pairs())
        return {"net": self.base.init(k_net), "decoders": decoders}

    def apply(self, params, xs):
        return self.base.apply(params["net"], xs)

    def representations(self, params, xs) -> tuple:
        """The pre-fusion representation of every view, (P, width) each."""
        act = _activation(self.base.activation)
        out = []
        for x, layers in zip(xs, params["net"]["branches"]):
            h = x.reshape(x.shape[0], -1)
            for W, b in layers:
                h = act(h @ W.T + b)
            out.append(h)
        return tuple(out)

    def reconstruction_error(self, params, xs):
        """Per sample, Σ over the pairs of the mean squared reconstruction error (P,)."""
        hs = self.representations(params, xs)
        flat = [x.reshape(x.shape[0], -1) for x in xs]
        total = 0.0
        for (m, k), (D, c) in zip(self.pairs(), params["decoders"]):
            total = total + jnp.mean((hs[m] @ D.T + c - flat[k]) ** 2, axis=-1)
        return total

    def auxiliary_loss(self, params, xs):
        """λ times :meth:`reconstruction_error`: what :func:`dlnfusion.fit` adds per sample."""
        return self.weight * self.reconstruction_error(params, xs)
