"""Multimodal classification tasks on samples, and the noisy two-digit task of the unimodal-bias
paper (its Figure 13).

A :class:`FusionTask` holds, per modality, the training and test inputs, the labels, and an
optional corruption that the trainer applies afresh to every training batch (a pure JAX function
of a random key, so it runs inside the compiled training loop).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .images import ImageSet, load_digits, load_mnist, train_test_split

__all__ = ["FusionTask", "noisy_pairs", "noisy_digits", "NOISE_STD", "NOISE_KEEP", "split_views",
           "digit_halves"]

#: Standard deviation of the Gaussian noise in a corrupted image, in units of the standardized
#: pixel (the training set's pixel mean subtracted, divided by its pixel standard deviation).
NOISE_STD = 0.15
#: Fraction of the image a corrupted input keeps: x̃ = NOISE_KEEP · x + NOISE_STD · ξ.
NOISE_KEEP = 0.1


def _modality_arrays(name: str, xs, n_mod: int | None = None) -> tuple:
    if not isinstance(xs, (tuple, list)) or len(xs) < 1:
        raise ValueError(f"{name} must be a tuple with one array per modality")
    out = tuple(np.asarray(x, dtype=np.float32) for x in xs)
    if n_mod is not None and len(out) != n_mod:
        raise ValueError(f"{name} has {len(out)} modalities, the training inputs {n_mod}")
    n = {x.shape[0] if x.ndim else -1 for x in out}
    if len(n) != 1 or -1 in n:
        raise ValueError(f"{name}: every modality needs the same number of samples (first axis), "
                         f"got {[x.shape[:1] for x in out]}")
    for x in out:
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} holds non-finite values")
    images = [x.shape[1:] for x in out if x.ndim >= 3]
    if len(images) == len(out) and len(set(images)) > 1:
        raise ValueError(f"{name}: the images of the modalities must have the same size, got "
                         f"{' and '.join('×'.join(map(str, s)) for s in images)}")
    return out


@dataclass(frozen=True)
class FusionTask:
    """Training and test inputs of every modality with their labels.

    ``train_x``/``test_x``: one array per modality, samples first, (N, d) vectors or (N, H, W)
    images. ``train_y``/``test_y``: class labels (N,) for classification (``n_classes`` > 0)
    or targets (N, d_out) for regression (``n_classes`` = 0). ``corrupt(key, xs) -> xs`` (or
    None) transforms each training batch; test inputs are used as they are. ``info`` records
    how the task was made (it goes into the JSON of a figure).
    """

    train_x: tuple
    train_y: np.ndarray
    test_x: tuple
    test_y: np.ndarray
    n_classes: int = 0
    names: tuple = ("A", "B")
    corrupt: Callable | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        tx = _modality_arrays("train_x", self.train_x)
        vx = _modality_arrays("test_x", self.test_x, len(tx))
        for a, b in zip(tx, vx):
            if a.shape[1:] != b.shape[1:]:
                raise ValueError(f"test_x inputs have shape {b.shape[1:]} per sample but train_x "
                                 f"{a.shape[1:]}")
        k = int(self.n_classes)
        if k < 0:
            raise ValueError(f"n_classes must be 0 (regression) or a number of classes, got {k}")
        ys = []
        for name, y, x in (("train_y", self.train_y, tx[0]), ("test_y", self.test_y, vx[0])):
            y = np.asarray(y)
            if y.shape[:1] != x.shape[:1]:
                raise ValueError(f"{name} has {y.shape[:1]} samples, the inputs {x.shape[:1]}")
            if k:
                if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) \
                        or y.min() < 0 or y.max() >= k:
                    raise ValueError(f"{name} must hold integer labels in [0, {k})")
                y = y.astype(np.int32)
            else:
                y = np.asarray(y, np.float32).reshape(y.shape[0], -1)
            ys.append(y)
        names = tuple(self.names)
        if len(names) != len(tx):
            raise ValueError(f"names must give {len(tx)} labels, got {names!r}")
        if self.corrupt is not None and not callable(self.corrupt):
            raise ValueError("corrupt must be a function (key, inputs) -> inputs, or None")
        object.__setattr__(self, "train_x", tx)
        object.__setattr__(self, "test_x", vx)
        object.__setattr__(self, "train_y", ys[0])
        object.__setattr__(self, "test_y", ys[1])
        object.__setattr__(self, "n_classes", k)
        object.__setattr__(self, "names", names)

    @property
    def n_train(self) -> int:
        return self.train_x[0].shape[0]

    @property
    def n_test(self) -> int:
        return self.test_x[0].shape[0]

    @property
    def n_modalities(self) -> int:
        return len(self.train_x)

    @property
    def input_shapes(self) -> tuple:
        return tuple(x.shape[1:] for x in self.train_x)


def _partners(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For every sample, another sample of the same class (itself when it is alone)."""
    out = np.arange(labels.size)
    for c in np.unique(labels):
        idx = np.nonzero(labels == c)[0]
        if idx.size < 2:
            continue
        shift = rng.integers(1, idx.size, size=idx.size)  # never the sample itself
        out[idx] = idx[(np.arange(idx.size) + shift) % idx.size]
    return out


def _corruption(p_b: float, p_a: float, noise_std: float, keep: float) -> Callable:
    def corrupt(key, xs):
        xa, xb = xs
        ku, ka, kb = jax.random.split(key, 3)
        u = jax.random.uniform(ku, (xa.shape[0],) + (1,) * (xa.ndim - 1))
        hit_b, hit_a = u < p_b, (u >= p_b) & (u < p_b + p_a)
        noisy_a = keep * xa + noise_std * jax.random.normal(ka, xa.shape, xa.dtype)
        noisy_b = keep * xb + noise_std * jax.random.normal(kb, xb.shape, xb.dtype)
        return jnp.where(hit_a, noisy_a, xa), jnp.where(hit_b, noisy_b, xb)

    return corrupt


def noisy_pairs(train: ImageSet, test: ImageSet, *, p_b: float = 0.6, p_a: float = 0.2,
                noise_std: float = NOISE_STD, keep: float = NOISE_KEEP, pairing: str = "class",
                seed: int = 0) -> FusionTask:
    """The noisy two-digit task: modality A and modality B each show an image of the sample's
    class; in every training batch, with probability ``p_b`` image B is corrupted, with
    probability ``p_a`` image A, otherwise neither (never both).

    Corruption replaces x by ``keep``·x + ``noise_std``·ξ, ξ ~ N(0, 1) per pixel, in
    standardized pixel units (the training images' pixel mean subtracted and divided by their
    pixel standard deviation, as the paper's MNIST pipeline normalizes). The defaults, 0.1 and
    0.15, are the values of the authors' released code: a corrupted image keeps a trace of the
    digit at a signal-to-noise power ratio of (0.1/0.15)² ≈ 0.44 per pixel, so the corrupted
    modality is much less informative than the clean one but not pure noise, and the input scale
    stays comparable. ``pairing="class"``: image B is another image of the same class, drawn
    once from ``seed`` (two images of the same class, as the paper describes); ``"same"``: both
    modalities show the same image, as the authors' code does. Test pairs are built the same way
    and never corrupted.
    """
    for name, p in (("p_b", p_b), ("p_a", p_a)):
        if not (np.isfinite(p) and 0.0 <= p <= 1.0):
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    if p_a + p_b > 1.0:
        raise ValueError(f"p_a + p_b must be at most 1 (never both corrupted), got {p_a + p_b}")
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be finite and non-negative, got {noise_std!r}")
    if not np.isfinite(keep):
        raise ValueError(f"keep must be finite, got {keep!r}")
    if pairing not in ("class", "same"):
        raise ValueError(f"pairing must be 'class' or 'same', got {pairing!r}")
    if train.shape != test.shape:
        raise ValueError(f"test images are {test.shape}, training images {train.shape}; "
                         "both sets need one image size")
    mean, std = float(train.images.mean()), float(train.images.std())
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for part in (train, test):
        z = (part.images - mean) / std
        b = _partners(part.labels, rng) if pairing == "class" else np.arange(len(part))
        xs.append((z, z[b]))
        ys.append(part.labels)
    info = {"source": train.name, "n_train": len(train), "n_test": len(test),
            "image_shape": list(train.shape), "p_b": p_b, "p_a": p_a, "noise_std": noise_std,
            "keep": keep, "pairing": pairing, "pixel_mean": mean, "pixel_std": std,
            "seed": seed}
    return FusionTask(xs[0], ys[0], xs[1], ys[1], n_classes=max(train.n_classes, test.n_classes),
                      names=("A", "B"), corrupt=_corruption(p_b, p_a, noise_std, keep), info=info)


def noisy_digits(mnist=None, *, test_fraction: float = 0.25, seed: int = 0,
                 **kwargs) -> FusionTask:
    """The noisy two-digit task on scikit-learn's digits (the default: 1,347 training and 450
    test images after a stratified split with ``seed``), or on MNIST's own training and test
    sets when ``mnist`` names a folder with its IDX files. Other keywords go to
    :func:`noisy_pairs`."""
    if mnist is None:
        train, test = train_test_split(load_digits(), test_fraction, seed)
    else:
        train, test = load_mnist(mnist)
    return noisy_pairs(train, test, seed=seed, **kwargs)


def split_views(train: ImageSet, test: ImageSet, *, names=("A", "B")) -> FusionTask:
    """Two views of every image: its left half (view A) and its right half (view B), as the
    Split-ResNet of Kleinman, Achille & Soatto (CVPR 2023) sees the two crops of a CIFAR image.
    Pixels are standardized with the training images' mean and standard deviation; the images'
    width must be even. Both views carry the same label; no corruption."""
    if train.shape != test.shape:
        raise ValueError(f"test images are {test.shape}, training images {train.shape}; "
                         "both sets need one image size")
    h, w = train.shape
    if w % 2:
        raise ValueError(f"split_views needs an even image width, got {h}×{w}")
    mean, std = float(train.images.mean()), float(train.images.std())
    xs = []
    for part in (train, test):
        z = (part.images - mean) / std
        xs.append((z[:, :, : w // 2], z[:, :, w // 2:]))
    info = {"source": train.name, "n_train": len(train), "n_test": len(test),
            "image_shape": [h, w], "views": "left half, right half", "pixel_mean": mean,
            "pixel_std": std}
    return FusionTask(xs[0], train.labels, xs[1], test.labels,
                      n_classes=max(train.n_classes, test.n_classes), names=tuple(names),
                      info=info)


def digit_halves(mnist=None, *, test_fraction: float = 0.25, seed: int = 0) -> FusionTask:
    """:func:`split_views` of scikit-learn's digits (8×8: two 8×4 views; 1,347 training and 450
    test images after a stratified split with ``seed``), or of MNIST when ``mnist`` names a
    folder with its IDX files (28×28: two 28×14 views)."""
    if mnist is None:
        train, test = train_test_split(load_digits(), test_fraction, seed)
    else:
        train, test = load_mnist(mnist)
    task = split_views(train, test)
    task.info["seed"] = seed
    return task
