"""Objectives: what a run minimizes, as a function of its weights and its data.

An objective is a function ``(spec, params, data) -> (loss, maps)`` (``maps`` the total map of
every modality, which the observables reuse). The data of a run is one of:

* :class:`Moments` (population level, from a :class:`~dlnfusion.stats.Stats`): the squared
  loss L(W) = L* + ½ tr[(W − W*) Σ (W − W*)ᵀ] of the total map W = [W_A^tot, W_B^tot, ...]
  (:func:`~dlnfusion.losses.squared_moments`). This is exactly full-batch gradient descent on
  any dataset with these moments, at a cost independent of the sample count; it needs a linear
  network. The logistic loss at population level is the exact expectation for Gaussian inputs
  and a target jointly Gaussian with them (:func:`~dlnfusion.losses.gaussian_logistic`,
  scalar output). Two-layer ReLU networks also train exactly at population level under the
  squared loss (Gaussian inputs): through the arc-cosine kernel, or, for late fusion with
  scalar modalities, through four linear features (:func:`_population_relu_features`).
* :class:`Samples` (a :class:`~dlnfusion.stats.Dataset`): the mean over samples of a per-sample
  loss of the network output (:data:`SAMPLE_LOSSES`); any activation.

:func:`objective` picks the function for a kind of data and a loss name.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
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


def _relu_units(spec: NetworkSpec, params):
    """A two-layer ReLU fusion network as H units: pre-activation rows A (H, D) on the stacked
    input and output weights V (d_out, H). Early fusion sums the branches' first layers into
    one hidden layer; late fusion gives every branch units of its own (zero on the others)."""
    dims = spec.input_dims
    if spec.post_depth == 1:          # early fusion: W^2 relu(Σ_m W_m^1 x_m)
        return jnp.concatenate([layers[0] for layers in params.branches], axis=1), params.post[0]
    rows, start = [], 0
    for layers, d in zip(params.branches, dims):
        W1 = layers[0]
        rows.append(jnp.pad(W1, ((0, 0), (start, sum(dims) - start - d))))
        start += d
    return jnp.concatenate(rows, axis=0), jnp.concatenate([l[1] for l in params.branches], 1)


def _population_relu_kernel(spec: NetworkSpec, params, data: Moments):
    """Two-layer ReLU network, Gaussian inputs: exact population loss through the arc-cosine
    kernel (O(H²) per step)."""
    A, V = _relu_units(spec, params)
    loss = losses.relu_two_layer_moments(A, V, data.sigma, data.sigma_yx, data.sigma_yy)
    return loss, total_maps(spec, params)


def _population_relu_features(spec: NetworkSpec, params, data: Moments):
    """Two-layer late-fusion ReLU network with scalar modalities, Gaussian inputs.

    relu(w x) = relu(w) relu(x) + relu(−w) relu(−x) for a scalar x, so the network is linear
    in the 2M features f = (relu(x_A), relu(−x_A), relu(x_B), ...): ŷ = C f with
    C_{m±} = W_m² relu(±W_m¹). The loss is the quadratic L* + ½(C − C*)F(C − C*)ᵀ in the
    features' moments F = E[ffᵀ], E[y fᵀ] = ½ Σ_yx Pᵀ (P the ±1 selection) and C* their
    solution: exact and O(width) per step (theory/relu.py)."""
    M = spec.n_modalities
    P = jnp.kron(jnp.eye(M), jnp.array([[1.0], [-1.0]]))         # (2M, M): rows ±e_m
    F = losses.relu_gram(P, data.sigma)
    cross = 0.5 * data.sigma_yx @ P.T
    C = jnp.concatenate([jnp.stack([W2 @ jax.nn.relu(W1[:, 0]), W2 @ jax.nn.relu(-W1[:, 0])],
                                   axis=1) for W1, W2 in params.branches], axis=1)
    C_star = jnp.linalg.solve(F, cross.T).T
    return losses.squared_moments(C, F, C_star, data.l_star), total_maps(spec, params)


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
            return _population_relu(spec, loss)
        if loss == "logistic" and spec.output_dim != 1:
            raise ValueError("the population-level logistic loss needs a scalar output")
    return table[loss]


def _population_relu(spec: NetworkSpec, loss: str):
    """Exact population objectives of nonlinear networks: two-layer ReLU networks under the
    squared loss (Gaussian inputs, a target jointly Gaussian with them)."""
    two_layer = spec.branch_depths in ((1,) * spec.n_modalities, (2,) * spec.n_modalities) \
        and spec.depth == 2
    if spec.activation != "relu" or not two_layer or loss != "squared":
        raise ValueError("population-level training needs a linear network, or a two-layer "
                         "ReLU network with the squared loss; pass a Dataset (samples) to "
                         "train other nonlinear networks")
    if spec.post_depth == 0 and all(d == 1 for d in spec.input_dims):
        return _population_relu_features
    return _population_relu_kernel
