"""Parameter labels, for optax transforms that act on groups of weights.

``optax.multi_transform(transforms, param_labels(spec))`` or ``optax.partition`` apply one
gradient transformation per label: a branch (modality) and the post-fusion layers, or every
layer on its own. With :func:`dlnfusion.train`'s ``optimizer`` argument this is how per-branch
methods (gating a branch, scaling one modality's gradients) plug into training.
"""
from __future__ import annotations

from ..networks import NetworkSpec, Params

__all__ = ["param_labels", "LABEL_KINDS"]

LABEL_KINDS = ("branch", "layer")


def param_labels(spec: NetworkSpec, by: str = "branch") -> Params:
    """A Params pytree of string labels, one per weight matrix.

    ``by="branch"``: the modality name (``spec.names``) for every pre-fusion layer of that
    branch and ``"post"`` for the post-fusion layers. ``by="layer"``: the layer's own label
    (``spec.layer_labels``, e.g. ``"W_A^1"``).
    """
    if by == "branch":
        labels = [n for n, d in zip(spec.names, spec.branch_depths) for _ in range(d)]
        labels += ["post"] * spec.post_depth
    elif by == "layer":
        labels = list(spec.layer_labels)
    else:
        raise ValueError(f"by must be one of {LABEL_KINDS}, got {by!r}")
    return Params.from_matrices(spec, labels)
