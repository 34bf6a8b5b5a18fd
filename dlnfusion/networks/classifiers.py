"""Fusion networks for real data: fully connected and convolutional, with biases and
PyTorch's default initialization.

:class:`NetworkSpec` describes the bias-free networks of the theory. The two classes here are the
practitioner's networks of the paper's noisy-digit experiments (its Appendix I): every layer
has a bias, every hidden layer a ReLU (or another activation), and the parameters start from
PyTorch's default initialization, W and b i.i.d. uniform on [−1/√fan_in, 1/√fan_in] (the
``kaiming_uniform(a=√5)`` of ``nn.Linear`` and ``nn.Conv2d``).

Both expose ``init(key) -> params`` (a pytree) and ``apply(params, xs) -> outputs`` for a tuple
of per-modality input batches, so the mini-batch trainer (:func:`dlnfusion.fit`) treats them
alike. The branches are fused at layer ``fusion_layer`` by concatenation (features for the
fully connected network, channels for the convolutional one), which is the same as summing the
per-branch parts of the fusion layer; the fusion layer has one bias.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import checks
from .spec import ACTIVATIONS, NetworkSpec

__all__ = ["FusionMLP", "FusionCNN", "branch_parameters"]


def _uniform(key, shape, fan_in):
    bound = 1.0 / np.sqrt(fan_in)
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def _activation(activation):
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)} or a callable, "
                         f"got {activation!r}")
    return ACTIVATIONS[activation] or (lambda h: h)


@dataclass(frozen=True)
class FusionMLP:
    """Fully connected fusion network: depth L, fusion layer L_f, hidden width ``width``.

    Modality m enters a branch of L_f − 1 layers (input dimension ``input_dims[m]``, flattened
    from images), the branches are concatenated and pass through the fusion layer and the
    L − L_f layers after it; the activation follows every layer but the last. L_f = 1 is early
    fusion, L_f = L late fusion (the last layer is the fusion layer).
    """

    input_dims: tuple
    depth: int = 5
    fusion_layer: int = 1
    width: int = 500
    n_out: int = 10
    activation: object = "relu"

    def __post_init__(self):
        dims = tuple(checks.positive_int("input_dims entry", d) for d in self.input_dims)
        # NetworkSpec validates depth, fusion layer and widths and gives the layer shapes.
        spec = NetworkSpec.fusion(self.depth, self.fusion_layer, width=self.width,
                                  input_dims=dims, output_dim=self.n_out)
        _activation(self.activation)
        object.__setattr__(self, "input_dims", dims)
        object.__setattr__(self, "_spec", spec)

    @property
    def spec(self) -> NetworkSpec:
        """The bias-free :class:`NetworkSpec` with the same layer shapes."""
        return self._spec

    def init(self, key):
        spec = self._spec
        keys = iter(jax.random.split(key, 2 * spec.n_layers + 2))
        branches = []
        for chain in spec.branch_dims:
            layers = [(_uniform(next(keys), (o, i), i), _uniform(next(keys), (o,), i))
                      for i, o in zip(chain[:-2], chain[1:-1])]
            branches.append(tuple(layers))
        fan = sum(chain[-2] for chain in spec.branch_dims)
        fused = tuple(_uniform(next(keys), (spec.post_dims[0], chain[-2]), fan)
                      for chain in spec.branch_dims)
        fused_b = _uniform(next(keys), (spec.post_dims[0],), fan)
        post = tuple((_uniform(next(keys), (o, i), i), _uniform(next(keys), (o,), i))
                     for i, o in zip(spec.post_dims[:-1], spec.post_dims[1:]))
        return {"branches": tuple(branches), "fused": fused, "fused_b": fused_b, "post": post}

    def apply(self, params, xs):
        act = _activation(self.activation)
        z = params["fused_b"]
        for x, layers, Wf in zip(xs, params["branches"], params["fused"]):
            h = x.reshape(x.shape[0], -1)
            for W, b in layers:
                h = act(h @ W.T + b)
            z = z + h @ Wf.T
        for W, b in params["post"]:
            z = act(z) @ W.T + b
        return z


def _conv(x, W, b, padding):
    """Stride-1 cross-correlation of NHWC images with an HWIO kernel, as a sum of k² shifted
    matrix products.

    It computes what ``jax.lax.conv_general_dilated`` computes (the tests check the two
    against each other). The trainer vmaps over seeds, i.e. over per-seed kernels; XLA's CPU
    backend turns a vmapped convolution into a grouped convolution that runs about twice as
    slowly per seed, while vmapped matrix products stay batched matrix products.
    """
    k = W.shape[0]
    if padding == "SAME":
        lo = (k - 1) // 2
        x = jnp.pad(x, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
    H, Wd = x.shape[1] - k + 1, x.shape[2] - k + 1
    out = b
    for i in range(k):
        for j in range(k):
            out = out + jnp.einsum("nhwc,co->nhwo", x[:, i:i + H, j:j + Wd, :], W[i, j])
    return out


@dataclass(frozen=True)
class FusionCNN:
    """Convolutional fusion network: ``n_conv`` convolutional layers (``kernel``×``kernel``,
    ``channels`` output channels, stride 1, ReLU), a 2×2 max-pool, then one dense layer to
    ``n_out`` outputs (the paper's six-layer network has five convolutions).

    Layers 1 … L_f − 1 are per-branch convolutions; at the fusion layer L_f the branches'
    feature maps (or, for L_f = 1, the input images) are concatenated along the channel axis.
    ``padding``: "VALID" (PyTorch's default, no padding, each convolution trims the image by
    kernel − 1), "SAME" (zero padding that keeps the size), or "auto": VALID when the image
    stays at least 2×2 after all convolutions, else SAME (8×8 digits need SAME; 28×28 MNIST takes
    VALID, as in the paper).
    """

    image_shape: tuple
    fusion_layer: int = 1
    n_conv: int = 5
    channels: int = 32
    kernel: int = 3
    n_out: int = 10
    n_modalities: int = 2
    padding: str = "auto"

    def __post_init__(self):
        shape = tuple(int(s) for s in self.image_shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"image_shape must be (H, W), got {self.image_shape!r}")
        L = checks.positive_int("n_conv", self.n_conv)
        Lf = checks.positive_int("fusion_layer", self.fusion_layer)
        if Lf > L:
            raise ValueError(f"fusion_layer must satisfy 1 <= fusion_layer <= n_conv = {L}, "
                             f"got {Lf}")
        for name in ("channels", "kernel", "n_out", "n_modalities"):
            checks.positive_int(name, getattr(self, name))
        pad = self.padding
        if pad not in ("auto", "SAME", "VALID"):
            raise ValueError(f"padding must be 'auto', 'SAME' or 'VALID', got {pad!r}")
        trimmed = min(shape) - L * (self.kernel - 1)
        if pad == "auto":
            pad = "VALID" if trimmed >= 2 else "SAME"
        if pad == "VALID" and trimmed < 2:
            raise ValueError(f"padding 'VALID' leaves images of {shape} smaller than 2×2 after "
                             f"{L} convolutions; use padding='SAME'")
        object.__setattr__(self, "image_shape", shape)
        object.__setattr__(self, "padding", pad)

    @property
    def feature_shape(self) -> tuple:
        """(H, W) of the feature maps after the last convolution."""
        if self.padding == "SAME":
            return self.image_shape
        t = self.n_conv * (self.kernel - 1)
        return tuple(s - t for s in self.image_shape)

    @property
    def dense_in(self) -> int:
        h, w = (s // 2 for s in self.feature_shape)
        return h * w * self.channels

    def init(self, key):
        k, C, M, Lf = self.kernel, self.channels, self.n_modalities, self.fusion_layer
        keys = iter(jax.random.split(key, 2 * (M * Lf + self.n_conv + 1)))

        def conv(cin, fan_in=None):
            fan = fan_in or cin * k * k
            return (_uniform(next(keys), (k, k, cin, C), fan), _uniform(next(keys), (C,), fan))

        branches = tuple(tuple(conv(1 if l == 0 else C) for l in range(Lf - 1))
                         for _ in range(M))
        fused = conv(M * (1 if Lf == 1 else C))
        post = tuple(conv(C) for _ in range(self.n_conv - Lf))
        dense = (_uniform(next(keys), (self.n_out, self.dense_in), self.dense_in),
                 _uniform(next(keys), (self.n_out,), self.dense_in))
        return {"branches": branches, "fused": fused, "post": post, "dense": dense}

    def apply(self, params, xs):
        pad = self.padding
        hs = []
        for x, layers in zip(xs, params["branches"]):
            h = x[..., None] if x.ndim == 3 else x
            for W, b in layers:
                h = jax.nn.relu(_conv(h, W, b, pad))
            hs.append(h)
        h = jax.nn.relu(_conv(jnp.concatenate(hs, axis=-1), *params["fused"], pad))
        for W, b in params["post"]:
            h = jax.nn.relu(_conv(h, W, b, pad))
        h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        W, b = params["dense"]
        return h.reshape(h.shape[0], -1) @ W.T + b


def _check_shapes(model, shapes: Sequence[tuple]) -> None:
    """Raise if ``model`` cannot take inputs of the given per-sample shapes."""
    if isinstance(getattr(model, "base", None), (FusionMLP, FusionCNN)):
        model = model.base                # a wrapper such as CrossReconstruction
    if isinstance(model, FusionCNN):
        if len(shapes) != model.n_modalities:
            raise ValueError(f"the task has {len(shapes)} modalities, the network "
                             f"{model.n_modalities}")
        for s in shapes:
            if tuple(s) != model.image_shape:
                raise ValueError(f"the network takes images of {model.image_shape}, the task "
                                 f"gives {tuple(s)}")
    elif isinstance(model, FusionMLP):
        dims = tuple(int(np.prod(s)) for s in shapes)
        if dims != model.input_dims:
            raise ValueError(f"the network takes inputs of dimensions {model.input_dims}, the "
                             f"task gives {dims}")


def branch_parameters(model, tree) -> list:
    """The parameters (or gradients: any pytree shaped like the model's parameters) of each
    modality's branch, one pytree per modality: for a :class:`NetworkSpec`'s ``Params`` the
    matrices of ``branches[m]``; for :class:`FusionMLP` the layers of branch m and its block of
    the summed fusion layer (``fused[m]``); for :class:`FusionCNN` (whose fusion layer is one
    convolution over the concatenated channels) the layers of branch m. Layers after fusion
    belong to no branch."""
    if isinstance(model, NetworkSpec):
        return [tuple(layers) for layers in tree.branches]
    if isinstance(model, FusionMLP):
        return [(b, f) for b, f in zip(tree["branches"], tree["fused"])]
    if isinstance(model, FusionCNN):
        return [tuple(b) for b in tree["branches"]]
    base = getattr(model, "base", None)
    if base is not None and isinstance(tree, dict) and "net" in tree:
        return branch_parameters(base, tree["net"])
    raise ValueError(f"branch_parameters knows NetworkSpec, FusionMLP and FusionCNN, got "
                     f"{type(model).__name__}")
