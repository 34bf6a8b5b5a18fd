"""Multimodal fusion networks: the specification and the parameter pytree.

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
from typing import Callable, NamedTuple, Sequence

import jax
import numpy as np

from .. import checks

__all__ = ["NetworkSpec", "Params", "ACTIVATIONS"]

#: Elementwise activations by name; ``NetworkSpec(activation=...)`` also takes any callable.
ACTIVATIONS: dict[str, Callable | None] = {
    "linear": None,
    "relu": jax.nn.relu,
    "tanh": jax.numpy.tanh,
    "gelu": jax.nn.gelu,
}



class Params(NamedTuple):
    """Network weights: ``branches[m][l]`` is W_m^{l+1}; ``post[j]`` is W^{L_f+1+j}."""

    branches: tuple
    post: tuple

    def matrices(self) -> tuple:
        """Every weight matrix, branches first, in the order of ``NetworkSpec.layer_labels``."""
        return tuple(W for layers in self.branches for W in layers) + tuple(self.post)

    @classmethod
    def from_matrices(cls, spec: "NetworkSpec", mats: Sequence) -> "Params":
        """Inverse of :meth:`matrices` for the network ``spec``."""
        mats = list(mats)
        if len(mats) != spec.n_layers:
            raise ValueError(f"got {len(mats)} matrices, the network has {spec.n_layers}")
        it = iter(mats)
        branches = tuple(tuple(next(it) for _ in range(d)) for d in spec.branch_depths)
        return cls(branches, tuple(next(it) for _ in range(spec.post_depth)))


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
    activation : a name in :data:`ACTIVATIONS` ("linear", "relu", "tanh", "gelu") or any
        elementwise function of an array. Applied after every layer but the last.
        Population-level training needs a linear network.
    names : modality labels (default "A", "B", ...).

    Notes
    -----
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
            bds.append(tuple(checks.positive_int(f"branch_dims[{m}] entry", d) for d in chain))
        if not isinstance(self.post_dims, (tuple, list)) or len(self.post_dims) < 1:
            raise ValueError("post_dims must be a non-empty chain (h_f, ..., d_out)")
        post = tuple(checks.positive_int("post_dims entry", d) for d in self.post_dims)
        for m, chain in enumerate(bds):
            if chain[-1] != post[0]:
                raise ValueError(
                    f"branch {m} ends at width {chain[-1]} but the fused width post_dims[0] is "
                    f"{post[0]}")
        if not callable(self.activation) and self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)} or a callable, "
                             f"got {self.activation!r}")
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
        L = checks.positive_int("depth", depth)
        Lf = checks.positive_int("fusion_layer", fusion_layer)
        if not 1 <= Lf <= L:
            raise ValueError(f"fusion_layer must satisfy 1 <= fusion_layer <= depth = {L}, got {Lf}")
        if L < 1:
            raise ValueError("depth must be at least 1")
        widths = cls._widths(width, L - 1)
        dims = tuple(checks.positive_int("input_dims entry", d) for d in input_dims)
        if len(dims) < 1:
            raise ValueError("input_dims must name at least one modality")
        d_out = checks.positive_int("output_dim", output_dim)
        chain = list(widths) + [d_out]  # output width of layers 1..L
        branch = tuple((d,) + tuple(chain[:Lf]) for d in dims)
        post = tuple(chain[Lf - 1:])
        return cls(branch, post, activation, tuple(names))

    @classmethod
    def unequal(cls, branch_depths: Sequence[int], post_depth: int, width: int = 100,
                input_dims: Sequence[int] = (1, 1), output_dim: int = 1,
                activation: str = "linear", names: Sequence[str] = ()):
        """Branches of different depths L_A, L_B, ... followed by L_c = ``post_depth`` layers."""
        depths = tuple(checks.positive_int("branch_depths entry", d) for d in branch_depths)
        Lc = int(post_depth)
        if Lc < 0:
            raise ValueError(f"post_depth must be >= 0, got {post_depth!r}")
        dims = tuple(checks.positive_int("input_dims entry", d) for d in input_dims)
        if len(dims) != len(depths):
            raise ValueError(
                f"branch_depths has {len(depths)} entries but input_dims has {len(dims)}")
        w = checks.positive_int("width", width)
        d_out = checks.positive_int("output_dim", output_dim)
        fused = d_out if Lc == 0 else w
        branch = tuple((d,) + (w,) * (Lm - 1) + (fused,) for d, Lm in zip(dims, depths))
        post = (fused,) + (w,) * max(Lc - 1, 0) + ((d_out,) if Lc > 0 else ())
        return cls(branch, post, activation, tuple(names))

    @classmethod
    def pathways(cls, depths: Sequence[int] = (2, 2), input_dim: int = 8, output_dim: int = 15,
                 width: int = 100, names: Sequence[str] = ()):
        """Parallel pathways that see the same input and whose outputs are summed
        (Kleinman, Achille, Soatto & Kao 2023): pathway p is a chain of ``depths[p]`` matrices
        input_dim → width → … → output_dim. It is a late-fusion network with one branch per
        pathway; train it on :meth:`dlnfusion.Stats.repeated` statistics (the input repeated
        once per pathway). Names default to "a", "b", ...; gate or lesion a pathway by name."""
        try:
            depths = tuple(depths)
        except TypeError as exc:
            raise ValueError(f"depths must be a sequence of positive integers, got {depths!r}") \
                from exc
        if len(depths) < 1:
            raise ValueError("depths must name at least one pathway")
        names = tuple(names) if names else tuple("abcdefghijklmnopqrstuvwxyz"[i]
                                                 for i in range(len(depths)))
        return cls.unequal(depths, 0, width=width, input_dims=(input_dim,) * len(depths),
                           output_dim=output_dim, names=names)

    @staticmethod
    def _widths(width, n: int) -> tuple:
        if isinstance(width, (int, np.integer)) and not isinstance(width, bool):
            return (checks.positive_int("width", width),) * n
        try:
            ws = tuple(width)
        except TypeError as exc:
            raise ValueError(f"width must be an int or a sequence of ints, got {width!r}") from exc
        if len(ws) != n:
            raise ValueError(f"width must have depth - 1 = {n} entries, got {len(ws)}")
        return tuple(checks.positive_int("width entry", w) for w in ws)

    # ------------------------------------------------------------------ structure
    @property
    def is_linear(self) -> bool:
        """True for a linear network (the population-level objective and the theory need it)."""
        return self.activation == "linear"

    @property
    def act(self) -> Callable | None:
        """The activation as a function (None for a linear network)."""
        return ACTIVATIONS[self.activation] if isinstance(self.activation, str) else self.activation

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


