"""Multimodal fusion networks: specification, initialization, forward map, total maps.

A fusion network (Zhang, Latham & Saxe 2024, eq. 2 and Figure 1) has one branch per modality.
Branch m applies L_m layers W_m^1 ... W_m^{L_m}; the last of them (the fusion layer L_f) maps
every branch into a shared space where the branch outputs are summed; L_c post-fusion layers
follow. With equal branch depths, the total depth is L = L_f + L_c: L_f = 1 is early fusion,
1 < L_f < L intermediate fusion and L_f = L late fusion. The total map of modality m is

    W_m^tot = W^L ⋯ W^{L_f+1} · W_m^{L_f} ⋯ W_m^1,          ŷ = Σ_m W_m^tot x_m (linear case).

Weights are stored as (out, in) matrices in a :class:`Params` pytree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["NetworkSpec", "Params", "INIT_SCHEMES", "init_params", "forward", "total_maps",
           "layer_norms"]

ACTIVATIONS = ("linear", "relu")
INIT_SCHEMES = ("normal", "frobenius", "balanced")


def _pos_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Params(NamedTuple):
    """Network weights: ``branches[m][l]`` is W_m^{l+1}; ``post[j]`` is W^{L_f+1+j}."""

    branches: tuple
    post: tuple


@dataclass(frozen=True)
class NetworkSpec:
    """Shape of a fusion network.

    Parameters
    ----------
    branch_dims : tuple of tuples
        For each modality, the chain of dimensions (d_m, h_1, ..., h_f): input, hidden widths
        and the fused width h_f. Branch m has ``len(branch_dims[m]) - 1`` layers.
    post_dims : tuple
        The chain (h_f, ..., d_out) after fusion; ``(d_out,)`` when there are no post-fusion
        layers (late fusion).
    activation : "linear" or "relu"
        Applied after every layer but the last. Population-level training needs "linear".
    names : modality labels (default "A", "B", ...).

    Use :meth:`fusion` for the paper's networks and :meth:`unequal` for branches of different
    depth (paper Appendix E.4).
    """

    branch_dims: tuple
    post_dims: tuple
    activation: str = "linear"
    names: tuple = field(default=())

    def __post_init__(self):
        if not isinstance(self.branch_dims, (tuple, list)) or len(self.branch_dims) < 1:
            raise ValueError("branch_dims must be a non-empty sequence, one chain per modality")
        bds = []
        for m, chain in enumerate(self.branch_dims):
            if not isinstance(chain, (tuple, list)) or len(chain) < 2:
                raise ValueError(
                    f"branch_dims[{m}] must be a chain (d_m, ..., h_f) with at least 2 entries, "
                    f"got {chain!r}")
            bds.append(tuple(_pos_int(f"branch_dims[{m}] entry", d) for d in chain))
        if not isinstance(self.post_dims, (tuple, list)) or len(self.post_dims) < 1:
            raise ValueError("post_dims must be a non-empty chain (h_f, ..., d_out)")
        post = tuple(_pos_int("post_dims entry", d) for d in self.post_dims)
        for m, chain in enumerate(bds):
            if chain[-1] != post[0]:
                raise ValueError(
                    f"branch {m} ends at width {chain[-1]} but the fused width post_dims[0] is "
                    f"{post[0]}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        names = tuple(self.names) if self.names else tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i]
                                                          for i in range(len(bds)))
        if len(names) != len(bds) or len(set(names)) != len(names):
            raise ValueError(f"names must be {len(bds)} distinct labels, got {names!r}")
        object.__setattr__(self, "branch_dims", tuple(bds))
        object.__setattr__(self, "post_dims", post)
        object.__setattr__(self, "names", names)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def fusion(cls, depth: int, fusion_layer: int, width=100, input_dims: Sequence[int] = (1, 1),
               output_dim: int = 1, activation: str = "linear", names: Sequence[str] = ()):
        """The paper's network: total depth L = ``depth``, fusion at layer L_f = ``fusion_layer``.

        ``width`` is the hidden width (100 in the paper), either one integer for every hidden
        layer or a sequence of L - 1 widths; pre-fusion layers have that width in every branch.
        """
        L = _pos_int("depth", depth)
        Lf = _pos_int("fusion_layer", fusion_layer)
        if not 1 <= Lf <= L:
            raise ValueError(f"fusion_layer must satisfy 1 <= fusion_layer <= depth = {L}, got {Lf}")
        if L < 1:
            raise ValueError("depth must be at least 1")
        widths = cls._widths(width, L - 1)
        dims = tuple(_pos_int("input_dims entry", d) for d in input_dims)
        if len(dims) < 1:
            raise ValueError("input_dims must name at least one modality")
        d_out = _pos_int("output_dim", output_dim)
        chain = list(widths) + [d_out]  # output width of layers 1..L
        branch = tuple((d,) + tuple(chain[:Lf]) for d in dims)
        post = tuple(chain[Lf - 1:])
        return cls(branch, post, activation, tuple(names))

    @classmethod
    def unequal(cls, branch_depths: Sequence[int], post_depth: int, width: int = 100,
                input_dims: Sequence[int] = (1, 1), output_dim: int = 1,
                activation: str = "linear", names: Sequence[str] = ()):
        """Branches of different depths L_A, L_B, ... followed by L_c = ``post_depth`` layers."""
        depths = tuple(_pos_int("branch_depths entry", d) for d in branch_depths)
        Lc = int(post_depth)
        if Lc < 0:
            raise ValueError(f"post_depth must be >= 0, got {post_depth!r}")
        dims = tuple(_pos_int("input_dims entry", d) for d in input_dims)
        if len(dims) != len(depths):
            raise ValueError(
                f"branch_depths has {len(depths)} entries but input_dims has {len(dims)}")
        w = _pos_int("width", width)
        d_out = _pos_int("output_dim", output_dim)
        fused = d_out if Lc == 0 else w
        branch = tuple((d,) + (w,) * (Lm - 1) + (fused,) for d, Lm in zip(dims, depths))
        post = (fused,) + (w,) * max(Lc - 1, 0) + ((d_out,) if Lc > 0 else ())
        return cls(branch, post, activation, tuple(names))

    @staticmethod
    def _widths(width, n: int) -> tuple:
        if isinstance(width, (int, np.integer)) and not isinstance(width, bool):
            return (_pos_int("width", width),) * n
        try:
            ws = tuple(width)
        except TypeError as exc:
            raise ValueError(f"width must be an int or a sequence of ints, got {width!r}") from exc
        if len(ws) != n:
            raise ValueError(f"width must have depth - 1 = {n} entries, got {len(ws)}")
        return tuple(_pos_int("width entry", w) for w in ws)

    # ------------------------------------------------------------------ structure
    @property
    def n_modalities(self) -> int:
        return len(self.branch_dims)

    @property
    def input_dims(self) -> tuple:
        return tuple(c[0] for c in self.branch_dims)

    @property
    def output_dim(self) -> int:
        return self.post_dims[-1]

    @property
    def branch_depths(self) -> tuple:
        return tuple(len(c) - 1 for c in self.branch_dims)

    @property
    def post_depth(self) -> int:
        """Number of post-fusion layers L_c = L - L_f."""
        return len(self.post_dims) - 1

    @property
    def fusion_layer(self) -> int:
        """L_f (requires equal branch depths)."""
        ds = set(self.branch_depths)
        if len(ds) != 1:
            raise ValueError(f"branches have unequal depths {self.branch_depths}; L_f is per branch")
        return ds.pop()

    @property
    def depth(self) -> int:
        """Total depth L = L_f + L_c (requires equal branch depths)."""
        return self.fusion_layer + self.post_depth

    @property
    def layer_shapes(self) -> tuple:
        """(out, in) shape of every matrix, branches first, then post-fusion layers."""
        shapes = [(c[i + 1], c[i]) for c in self.branch_dims for i in range(len(c) - 1)]
        p = self.post_dims
        shapes += [(p[i + 1], p[i]) for i in range(len(p) - 1)]
        return tuple(shapes)

    @property
    def layer_labels(self) -> tuple:
        """Labels matching :attr:`layer_shapes`, e.g. ('W_A^1', 'W_A^2', 'W_B^1', ...)."""
        labels = [f"W_{n}^{l + 1}" for n, c in zip(self.names, self.branch_dims)
                  for l in range(len(c) - 1)]
        offset = max(self.branch_depths)
        labels += [f"W^{offset + j + 1}" for j in range(self.post_depth)]
        return tuple(labels)

    @property
    def n_layers(self) -> int:
        return len(self.layer_shapes)


# ---------------------------------------------------------------------- initialization
def _unit(key, n):
    v = jax.random.normal(key, (n,))
    return v / jnp.linalg.norm(v)


def _aligned_directions(spec: NetworkSpec, stats):
    """Common output direction o and per-modality input directions v_m from Σ_yx."""
    if stats is None:
        raise ValueError("scheme='balanced' needs stats to align the first layers with Sigma_yx")
    if tuple(stats.dims) != spec.input_dims or stats.output_dim != spec.output_dim:
        raise ValueError(
            f"stats dims {stats.dims} -> {stats.output_dim} do not match the network "
            f"{spec.input_dims} -> {spec.output_dim}")
    u, _, _ = np.linalg.svd(stats.sigma_yx)
    o = u[:, 0]
    if o.sum() < 0:  # fix the sign so that a scalar output has o = +1
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
    return jnp.asarray(o), [jnp.asarray(v) for v in vs]


def init_params(spec: NetworkSpec, key, scheme: str = "normal", scale=1e-9, stats=None) -> Params:
    """Initial weights drawn from ``key``.

    Schemes (``scale`` may be a traced scalar, so it can be vmapped over):

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
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {INIT_SCHEMES}, got {scheme!r}")
    if isinstance(scale, (int, float, np.floating)) and not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    M = spec.n_modalities
    shapes = spec.layer_shapes
    keys = jax.random.split(key, len(shapes) + 1)
    mats = []
    if scheme == "balanced":
        o, vs = _aligned_directions(spec, stats)
        scales = jnp.broadcast_to(jnp.asarray(scale, dtype=float), (M,))
        u_post = jnp.sqrt(jnp.sum(scales ** 2))
        k_iter = iter(keys)
        fused = spec.post_dims[0]
        r_f = o if spec.post_depth == 0 else _unit(next(k_iter), fused)
        branches = []
        for m, chain in enumerate(spec.branch_dims):
            prev = vs[m]
            layers = []
            for l in range(len(chain) - 1):
                last = l == len(chain) - 2
                r = r_f if last else _unit(next(k_iter), chain[l + 1])
                layers.append(scales[m] * jnp.outer(r, prev))
                prev = r
            branches.append(tuple(layers))
        post, prev = [], r_f
        p = spec.post_dims
        for j in range(len(p) - 1):
            r = o if j == len(p) - 2 else _unit(next(k_iter), p[j + 1])
            post.append(u_post * jnp.outer(r, prev))
            prev = r
        return Params(tuple(branches), tuple(post))

    n_pre = sum(spec.branch_depths)
    for i, (shape, k) in enumerate(zip(shapes, keys)):
        z = jax.random.normal(k, shape)
        if scheme == "normal":
            std = scale
        else:  # frobenius
            n_entries = shape[0] * shape[1]
            factor = 1.0 if i < n_pre else np.sqrt(M)
            std = factor * scale / np.sqrt(n_entries)
        mats.append(std * z)
    it = iter(mats)
    branches = tuple(tuple(next(it) for _ in range(d)) for d in spec.branch_depths)
    post = tuple(next(it) for _ in range(spec.post_depth))
    return Params(branches, post)


# ---------------------------------------------------------------------- maps
def _act(spec: NetworkSpec):
    return (lambda h: h) if spec.activation == "linear" else jax.nn.relu


def forward(spec: NetworkSpec, params: Params, xs) -> jnp.ndarray:
    """Network output ŷ for inputs ``xs`` (one (P, d_m) array per modality), shape (P, d_out)."""
    act = _act(spec)
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

    The product of the weight matrices along each pathway; for a ReLU network it ignores the
    nonlinearity (the convention of the paper's Figure 11).
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
    mats = [W for layers in params.branches for W in layers] + list(params.post)
    return jnp.stack([jnp.sqrt(jnp.sum(W * W)) for W in mats])
