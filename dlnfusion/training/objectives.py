"""Objectives: what a run minimizes, as a function of its weights and its data.

An objective is a function ``(spec, params, data) -> (loss, maps)`` (``maps`` the total map of
every modality, which the observables reuse). The data of a run is one of:

* :class:`Moments` (population level, from a :class:`~dlnfusion.stats.Stats`): the squared
  loss L(W) = L* + ½ tr[(W − W*) Σ (W − W*)ᵀ] of the total map W = [W_A^tot, W_B^tot, ...]
  (:func:`~dlnfusion.losses.squared_moments`). This is exactly full-batch gradient descent on
  any dataset with these moments, at a cost independent of the sample count; it needs a linear
  network. The logistic loss at population level is the exact expectation for Gaussian inputs
  and a target jointly Gaussian with them (:func:`~dlnfusion.losses.gaussian_logistic`,
  scalar output).
* :class:`Samples` (a :class:`~dlnfusion.stats.Dataset`): the mean over samples of a per-sample
  loss of the network output (:data:`SAMPLE_LOSSES`); any activation.

:func:`objective` picks the function for a kind of data and a loss name.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .. import losses
from ..networks import NetworkSpec, forward, total_maps

__all__ = ["Moments", "Samples", "objective", "LOSSES", "SAMPLE_LOSSES"]


class Moments(NamedTuple):
    """Population moments of one run as arrays (see :class:`~dlnfusion.stats.Stats`)."""

    sigma: np.ndarray     # (D, D)  Σ
    sigma_yx: np.ndarray  # (d_out, D)  Σ_yx
    sigma_yy: np.ndarray  # (d_out, d_out)
    w_star: np.ndarray    # (d_out, D)  global solution Σ_yx Σ⁺
    l_star: np.ndarray    # ()  loss at W* (noise floor, clipped at 0)
    w_uni: np.ndarray     # (d_out, D)  per-modality blocks Σ_yx_m Σ_m⁻¹ (unimodal solutions)

    @classmethod
    def of(cls, stats) -> "Moments":
        uni = np.concatenate([stats.unimodal_solution(m) for m in range(stats.n_modalities)],
                             axis=1)
        return cls(np.asarray(stats.sigma), np.asarray(stats.sigma_yx),
                   np.asarray(stats.sigma_yy), stats.global_solution(),
                   np.asarray(max(stats.min_loss(), 0.0)), uni)


class Samples(NamedTuple):
    """A finite dataset of one run: one (P, d_m) array per modality and targets (P, d_out)."""

    xs: tuple
    y: np.ndarray

    @classmethod
    def of(cls, dataset) -> "Samples":
        return cls(tuple(np.asarray(x) for x in dataset.xs), np.asarray(dataset.y))


def _population_squared(spec: NetworkSpec, params, data: Moments):
    maps = total_maps(spec, params)
    W = jnp.concatenate(maps, axis=1)
    return losses.squared_moments(W, data.sigma, data.w_star, data.l_star), maps


def _population_logistic(spec: NetworkSpec, params, data: Moments):
    maps = total_maps(spec, params)
    W = jnp.concatenate(maps, axis=1)
    return losses.gaussian_logistic(W, data.sigma, data.sigma_yx, data.sigma_yy), maps


def _samples_squared(spec: NetworkSpec, params, data: Samples):
    return jnp.mean(losses.squared(forward(spec, params, data.xs), data.y)), \
        total_maps(spec, params)


def _samples_logistic(spec: NetworkSpec, params, data: Samples):
    return jnp.mean(losses.logistic(forward(spec, params, data.xs), data.y)), \
        total_maps(spec, params)


#: Per-sample losses available for sample-based training.
SAMPLE_LOSSES = {"squared": _samples_squared, "logistic": _samples_logistic}
_POPULATION = {"squared": _population_squared, "logistic": _population_logistic}
LOSSES = tuple(SAMPLE_LOSSES)


def objective(kind: type, loss: str, spec: NetworkSpec):
    """The objective function for data of type ``kind`` (Moments or Samples) and ``loss``."""
    table = _POPULATION if kind is Moments else SAMPLE_LOSSES
    if loss not in table:
        raise ValueError(f"loss must be one of {tuple(table)}, got {loss!r}")
    if kind is Moments:
        if not spec.is_linear:
            raise ValueError("population-level training needs a linear network; pass a "
                             "Dataset (samples) to train a nonlinear network")
        if loss == "logistic" and spec.output_dim != 1:
            raise ValueError("the population-level logistic loss needs a scalar output")
    return table[loss]
