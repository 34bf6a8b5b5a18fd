"""Gaussian pixel noise on every training batch of a task (a condition of the deficit
experiments, Kleinman, Achille & Soatto, CVPR 2023)."""
from __future__ import annotations

from dataclasses import dataclass

import jax

from .tasks import FusionTask

__all__ = ["PixelNoise", "with_pixel_noise"]


@dataclass(frozen=True)
class PixelNoise:
    """Gaussian noise of standard deviation ``std`` added to every view of a training batch (a
    task's ``corrupt``: called with a key and the tuple of views)."""

    std: float

    def __call__(self, key, xs):
        keys = jax.random.split(key, len(xs))
        return tuple(x + self.std * jax.random.normal(k, x.shape, x.dtype)
                     for k, x in zip(keys, xs))


def with_pixel_noise(task: FusionTask, std: float) -> FusionTask:
    """``task`` with :class:`PixelNoise` of standard deviation ``std`` on its training batches
    (its test set unchanged; ``info["pixel_noise"]`` records ``std``)."""
    info = dict(task.info, pixel_noise=std)
    return FusionTask(task.train_x, task.train_y, task.test_x, task.test_y,
                      n_classes=task.n_classes, names=task.names, corrupt=PixelNoise(std),
                      info=info)
