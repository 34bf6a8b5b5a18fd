"""Modality-balancing methods in fusion networks with scalar modalities and a scalar output:
the state of their exact reduced dynamics and a leading-order closed form.

The reduced simulators (:mod:`dlnfusion.reduced`: :func:`~dlnfusion.reduced.balancing_two_layer`,
:func:`~dlnfusion.reduced.balancing_deep`, :func:`~dlnfusion.reduced.ogm_ge_two_layer`) run
joint training, OGM, OGM-GE and InfoReg on a few numbers per branch instead of the width-h
network. Their initial state is a function of the network's initial weights:
:func:`initial_gram`, the Gram matrix of each branch's weight vectors u = W^1, v = W^2 (and of
InfoReg's epoch-start copies), and :func:`noise_gram`, the Gram entries of u, v and the unit
all-ones direction that OGM-GE's exact law follows.

Leading order for InfoReg (:func:`inforeg_slowdown`). In the exponential phase of the
regulated mode (g ≈ s constant, balanced aligned weights of amplitude a, w = a²) a step is
a' = (1 + η(s − α)) a + ηα a_p within an epoch of E steps started at a_p, so an epoch multiplies
the amplitude by

    F = (s r^E − α)/(s − α),   r = 1 + η(s − α)      (α ≠ s),

against (1 + ηs)^E without the proximal term: the escape of the regulated modality is slower by
κ = ln F / (E ln(1 + ηs)) and its t_m, dominated by the escape, longer by about 1/κ.
"""
from __future__ import annotations

import numpy as np

from ..networks import NetworkSpec, Params
from .common import Prediction

__all__ = ["initial_gram", "noise_gram", "inforeg_slowdown"]


def initial_gram(spec: NetworkSpec, params: Params) -> np.ndarray:
    """(runs, M, 4, 4): the Gram matrix of [u, v, u_p = u, v_p = v] of every branch of a
    two-layer late-fusion network with scalar modalities and output (batched params)."""
    if not isinstance(spec, NetworkSpec) or spec.post_depth or spec.output_dim != 1 \
            or any(d != 2 for d in spec.branch_depths) or any(d != 1 for d in spec.input_dims):
        raise ValueError("initial_gram needs two-layer late fusion with scalar modalities and "
                         "a scalar output")
    out = []
    for layers in params.branches:
        u = np.asarray(layers[0])[..., :, 0]
        v = np.asarray(layers[1])[..., 0, :]
        X = np.stack([u, v, u, v], axis=-2)                  # (runs, 4, h)
        out.append(X @ np.swapaxes(X, -1, -2))
    return np.stack(out, axis=-3)


def inforeg_slowdown(s: float, lr: float, alpha: float, epoch: int) -> Prediction:
    """How much InfoReg's proximal term slows the escape of the regulated modality.

        κ = ln F / (E ln(1 + ηs)),   F = (s r^E − α)/(s − α),   r = 1 + η(s − α)   (α ≠ s)

    (derived in the module docstring, "Leading order for InfoReg", and in the repository's
    theory/balancing.py). Without the proximal term the regulated mode's amplitude grows by
    (1 + ηs) per step; with it, by F per epoch of E steps. κ < 1: the escape, and the
    modality's t_m that it dominates, take about 1/κ times longer (t_m ≈ t_m^joint/κ).

    Arguments (symbol: argument, units):

    * s: ``s``, the drive of the regulated modality's growing mode, g = s_m − Σ_n Σ_mn w_n,
      taken at its value far below the target, g ≈ s_m = Σ_yx,m (the scalar modality's
      input-output correlation). Units of Σ_yx: with τ = 1/η the mode grows at rate s per
      unit of τ.
    * η: ``lr``, the gradient-descent step (population level). Times are in steps.
    * α: ``alpha``, the coefficient of InfoReg's proximal term: the regulated branch's
      gradient gets α(θ_m − θ_m^prev) added, the gradient of (α/2)‖θ_m − θ_m^prev‖² (Huang,
      Wei, Yang & Hu, CVPR 2025, Algorithm 1), with α = c_m exp(β tanh Δ_m) (their eq. 16;
      β the ``beta`` and c_m the ``prefactors`` of :func:`dlnfusion.transforms.inforeg`,
      c_m = 1 in the paper; Δ_m the score gap of eq. 10). Same units as ``s`` (both multiply
      weights in a gradient): a step pulls the weights back by the fraction ηα of their
      change since θ_m^prev. During the escape the scores are still near zero, so Δ_m ≈ 0
      and α ≈ c_m (= 1 with the paper's prefactor: pass ``alpha=1`` to predict
      ``inforeg(spec, epoch=E)``).
    * E: ``epoch``, the steps between refreshes of θ_m^prev (the ``epoch`` of
      :func:`dlnfusion.transforms.inforeg`; at population level an epoch is that many
      steps), a positive integer.

    Returns a :class:`~.common.Prediction` of κ (dimensionless). Assumptions (leading order):
    the regulated mode far below its target (g ≈ s), balanced aligned weights, α constant
    during the escape and the modality regulated throughout it (inside InfoReg's window).
    ``valid`` is False (with the reason in ``caveats``) when 1 + η(s − α) ≤ 0 (the proximal
    step overshoots) or F ≤ 1 (the mode does not grow over an epoch); at α = s (where
    F = 1 + Eηs) it returns NaN, not valid. Raises ValueError unless ``s``, ``lr`` and
    ``alpha`` are positive and finite and ``epoch`` a positive integer."""
    for name, v in (("s", s), ("lr", lr), ("alpha", alpha)):
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 1:
        raise ValueError(f"epoch must be a positive integer, got {epoch!r}")
    if np.isclose(alpha, s):
        return Prediction(float("nan"), False, ("alpha equals the drive s: F = 1 + Eηs",))
    r = 1.0 + lr * (s - alpha)
    F = (s * r ** epoch - alpha) / (s - alpha)
    caveats = []
    if r <= 0:
        caveats.append("1 + lr (s − alpha) <= 0: the proximal step overshoots")
    if F <= 1:
        caveats.append("the regulated mode does not grow over an epoch")
    kappa = np.log(F) / (epoch * np.log1p(lr * s)) if F > 0 else float("nan")
    return Prediction(float(kappa), not caveats, tuple(caveats))


def noise_gram(spec: NetworkSpec, params: Params) -> np.ndarray:
    """(runs, M, 5): per branch of a two-layer late-fusion network with scalar modalities and
    output (batched params) the Gram entries (|u|², u·v, |v|², e·u, e·v) of its weight vectors
    u = W^1, v = W^2 and the unit all-ones direction e = 1/√h: the state of
    :func:`dlnfusion.reduced.ogm_ge_two_layer`."""
    G = initial_gram(spec, params)
    out = []
    for layers in params.branches:
        u = np.asarray(layers[0])[..., :, 0]
        v = np.asarray(layers[1])[..., 0, :]
        h = u.shape[-1]
        out.append(np.stack([u.sum(-1), v.sum(-1)], -1) / np.sqrt(h))
    ev = np.stack(out, axis=-2)
    return np.concatenate([G[..., 0, 0, None], G[..., 0, 1, None], G[..., 1, 1, None], ev], -1)
