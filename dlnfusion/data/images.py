"""Labelled images: the handwritten digits that ship with scikit-learn, and MNIST from IDX files.

Both loaders return :class:`ImageSet` objects with pixel intensities in [0, 1]. The digits
(1,797 images of 8×8 pixels, 16 grey levels) need no download; MNIST (60,000 + 10,000 images of
28×28 pixels) is read from the four IDX files of its distribution when a user has them.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ImageSet", "load_digits", "load_mnist", "read_idx", "train_test_split",
           "MNIST_FILES"]

#: The IDX files of MNIST, by split: (images, labels). A ``.gz`` suffix is also accepted.
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

# IDX type codes (the third byte of the magic number) and the big-endian dtypes they name.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class ImageSet:
    """Images (N, H, W) with intensities in [0, 1] and integer labels (N,)."""

    images: np.ndarray
    labels: np.ndarray
    name: str = "images"

    def __post_init__(self):
        images = np.asarray(self.images, dtype=np.float32)
        labels = np.asarray(self.labels)
        if images.ndim != 3:
            raise ValueError(f"images must have shape (N, H, W), got {images.shape}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer) or labels.size and labels.min() < 0:
            raise ValueError("labels must be non-negative integers")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels.astype(np.int32))

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple:
        """The (H, W) of one image."""
        return self.images.shape[1:]

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1 if len(self) else 0

    def subset(self, index) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index], self.name)


def load_digits() -> ImageSet:
    """scikit-learn's handwritten digits: 1,797 images of 8×8 pixels, values 0…16 scaled to
    [0, 1], ten classes."""
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    return ImageSet(d.images / 16.0, d.target, "digits")


def train_test_split(data: ImageSet, test_fraction: float = 0.25, seed: int = 0):
    """Split ``data`` into (train, test), stratified by class, with a fixed seed."""
    f = float(test_fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(data.labels):
        idx = rng.permutation(np.nonzero(data.labels == c)[0])
        test.extend(idx[: int(round(f * idx.size))])
    mask = np.zeros(len(data), bool)
    mask[test] = True
    return data.subset(np.nonzero(~mask)[0]), data.subset(np.nonzero(mask)[0])


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array.

    The format: two zero bytes, a type code, the number of dimensions n, then n big-endian
    32-bit sizes and the data in row-major order.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"IDX file {str(path)!r} does not exist")
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{str(path)!r} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{str(path)!r} is not an IDX file (truncated header)")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{str(path)!r}: the header announces shape {shape} "
                         f"({expected} bytes of data) but the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    raise ValueError(f"mnist folder {str(folder)!r} has no file {name!r} (or {name}.gz)")


def load_mnist(folder):
    """MNIST's training and test sets (``ImageSet`` each) from the IDX files in ``folder``
    (the names in :data:`MNIST_FILES`, plain or ``.gz``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"mnist folder {str(folder)!r} does not exist or is not a folder")
    out = []
    for split in ("train", "test"):
        img_name, lab_name = MNIST_FILES[split]
        images = read_idx(_find(folder, img_name))
        labels = read_idx(_find(folder, lab_name))
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"mnist folder {str(folder)!r}: {split} images {images.shape} and "
                             f"labels {labels.shape} do not match (need (N, H, W) and (N,))")
        scale = 255.0 if images.dtype == np.uint8 else 1.0
        out.append(ImageSet(images.astype(np.float32) / scale, labels.astype(np.int64), "mnist"))
    return tuple(out)
