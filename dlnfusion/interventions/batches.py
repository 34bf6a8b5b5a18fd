"""Sensory deficits for mini-batch training: transforms that :func:`dlnfusion.fit` applies to
every training batch inside a :class:`~dlnfusion.interventions.Deficit` window (start and end
in epochs).

These are the image-level deficits of Kleinman, Achille & Soatto (CVPR 2023), Section 4:

``ImageBlur(modality, factor)``
    the view of ``modality`` is down-sampled ``factor``× and resized back ("we simulate the
    blurry vision of a weak eye by downsampling the input of the right pathway by 4×, and then
    resized the image to the original size"). Here: the mean over each ``factor``×``factor``
    block of pixels, repeated over the block (box down-sampling, nearest-neighbour resize). It is
    a linear projection: the degraded view keeps exactly the block means.

``ViewDissociation()``
    every view but the first comes from another training sample, drawn uniformly at random
    (with replacement, independently per view and per batch), and the label is that of one of
    the views' samples chosen with equal probability ("the right crop is sampled from a
    different image than the left one ... the task is to predict either the class of the left
    image or the right image with probability 0.5"). The views then carry no joint information
    about the label; each still carries its own.

Each transform is a frozen dataclass (hashable: it is part of the compiled training loop) with
``__call__(key, xs, y, pool_x, pool_y, names) -> (xs, y)``: ``xs`` the batch (one array per
view), ``y`` its labels, ``pool_x``/``pool_y`` the whole training set (dissociation draws from
it), ``names`` the views' names, and
``check(task)``, which raises when the task's inputs do not fit the transform.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["ImageBlur", "ViewDissociation", "BATCH_DEFICITS"]


def _view_index(names, modality) -> int:
    if isinstance(modality, str):
        if modality not in names:
            raise ValueError(f"modality must be one of {tuple(names)} or an index, got "
                             f"{modality!r}")
        return tuple(names).index(modality)
    if isinstance(modality, (int, np.integer)) and not isinstance(modality, bool) \
            and 0 <= modality < len(names):
        return int(modality)
    raise ValueError(f"modality must be one of {tuple(names)} or an index "
                     f"0..{len(names) - 1}, got {modality!r}")


@dataclass(frozen=True)
class ImageBlur:
    """Box down-sampling of one view by ``factor`` and nearest-neighbour resize back."""

    modality: object = "B"
    factor: int = 4

    def __post_init__(self):
        f = self.factor
        if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 1:
            raise ValueError(f"factor must be a positive integer, got {f!r}")
        object.__setattr__(self, "factor", int(f))

    def check(self, task) -> None:
        m = _view_index(task.names, self.modality)
        shape = task.input_shapes[m]
        if len(shape) != 2:
            raise ValueError(f"ImageBlur needs images (H, W) in modality {task.names[m]!r}, the "
                             f"task gives samples of shape {shape}")
        if shape[0] % self.factor or shape[1] % self.factor:
            raise ValueError(f"ImageBlur: factor {self.factor} must divide the image size "
                             f"{shape[0]}×{shape[1]} of modality {task.names[m]!r}")

    def blur(self, x):
        """The blurred images ``x`` (N, H, W)."""
        f = self.factor
        n, h, w = x.shape
        means = x.reshape(n, h // f, f, w // f, f).mean(axis=(2, 4))
        return jnp.repeat(jnp.repeat(means, f, axis=1), f, axis=2)

    def __call__(self, key, xs, y, pool_x, pool_y, names):
        m = _view_index(names, self.modality)
        return tuple(self.blur(x) if k == m else x for k, x in enumerate(xs)), y


@dataclass(frozen=True)
class ViewDissociation:
    """Views from independent samples; the label from one of them, chosen uniformly."""

    def check(self, task) -> None:
        if task.n_modalities < 2:
            raise ValueError("ViewDissociation needs at least two views")
        if not task.n_classes:
            raise ValueError("ViewDissociation draws the label of one view's sample: it needs a "
                             "classification task")

    def __call__(self, key, xs, y, pool_x, pool_y, names):
        M, n, P = len(xs), y.shape[0], pool_y.shape[0]
        kd, kc = jax.random.split(key)
        draws = jax.random.randint(kd, (M - 1, n), 0, P)
        out = (xs[0],) + tuple(px[draws[k - 1]] for k, px in enumerate(pool_x) if k > 0)
        labels = jnp.concatenate([y[None], pool_y[draws]], axis=0)        # (M, n)
        pick = jax.random.randint(kc, (n,), 0, M)
        return out, jnp.take_along_axis(labels, pick[None], axis=0)[0]


#: The batch deficits by name.
BATCH_DEFICITS = {"blur": ImageBlur, "dissociate": ViewDissociation}
