"""Sensory deficits: what a source looks like while it is degraded.

Each deficit is a transform of the data, given at two levels that agree:

* population level, a map Stats → Stats (the moments of the degraded data, derived below and
  checked against samples in tests/test_interventions.py);
* sample level, a map Dataset → Dataset (one fixed draw of the degraded samples; its moments
  converge to the population ones as O(1/√P)).

With x = [x_A, x_B, ...] stacked by modality and m the degraded modality:

``delete``  x̃_m = 0.
    Σ̃_mm = 0, Σ̃_mk = 0 (k ≠ m), Σ̃_{y m} = 0; the other moments are unchanged. Σ̃ is
    singular, so the result has ``allow_singular=True`` (W* becomes the minimum-norm
    solution, whose block m is 0).

``blur``  x̃_m = c·x_m + σ·ξ with ξ ~ N(0, I) independent of everything (c = ``attenuation``
    in [0, 1], σ = ``noise_std`` >= 0).
    Σ̃_mm = c² Σ_mm + σ² I, Σ̃_mk = c Σ_mk, Σ̃_{y m} = c Σ_{y m}.

``dissociate``  every modality is drawn from an independent sample and the target is the
    target of one of those samples, chosen uniformly at random (Kleinman, Achille & Soatto 2023,
    "dissociation"). With M modalities and zero-mean inputs, E[y x_mᵀ] = Σ_{y m}/M (the target
    comes from modality m's own sample with probability 1/M and is independent of x_m
    otherwise), Σ̃_mk = 0 for m ≠ k, Σ̃_mm = Σ_mm, Σ̃_yy = Σ_yy.

``switch`` another task altogether (a Stats or Dataset of the same shapes); nothing to derive.

Deficits act on data; when they act during training is the schedule's business
(:mod:`dlnfusion.interventions.schedule`).
"""
from __future__ import annotations

import numpy as np

from .. import checks
from ..stats import Dataset, Stats

__all__ = ["delete", "blur", "dissociate", "DEFICITS"]

#: The deficit transforms by name.
DEFICITS = ("delete", "blur", "dissociate")


def _modality(data, modality) -> int:
    names = tuple(data.names)
    if isinstance(modality, str):
        if modality not in names:
            raise ValueError(f"modality must be one of {names} or an index, got {modality!r}")
        return names.index(modality)
    if isinstance(modality, (int, np.integer)) and not isinstance(modality, bool) \
            and 0 <= modality < len(names):
        return int(modality)
    raise ValueError(f"modality must be one of {names} or an index 0..{len(names) - 1}, got "
                     f"{modality!r}")


def _check(data):
    if not isinstance(data, (Stats, Dataset)):
        raise ValueError(f"data must be a Stats or a Dataset, got {type(data).__name__}")


def _rebuild(stats: Stats, sigma, sigma_yx, singular=None) -> Stats:
    return Stats(sigma=sigma, sigma_yx=sigma_yx, sigma_yy=stats.sigma_yy, dims=stats.dims,
                 names=stats.names,
                 allow_singular=stats.allow_singular if singular is None else singular)


def delete(data, modality):
    """Modality ``modality`` (name or index) is zero: the source is absent."""
    _check(data)
    m = _modality(data, modality)
    if isinstance(data, Dataset):
        xs = tuple(np.zeros_like(x) if i == m else x for i, x in enumerate(data.xs))
        return Dataset(xs, data.y, data.names)
    s = data.slices[m]
    sigma = np.array(data.sigma)
    sigma[s, :] = 0.0
    sigma[:, s] = 0.0
    sigma_yx = np.array(data.sigma_yx)
    sigma_yx[:, s] = 0.0
    return _rebuild(data, sigma, sigma_yx, singular=True)


def blur(data, modality, attenuation: float = 0.1, noise_std: float = 0.15, seed: int = 0):
    """Modality ``modality`` replaced by ``attenuation``·x_m + ``noise_std``·ξ, ξ ~ N(0, I).

    ``attenuation`` lies in [0, 1] (a degradation scales the source down, 0 removing it) and
    ``noise_std`` is >= 0. The defaults are the degradation of the noisy-digit task (dlnfusion.data.tasks); ``seed``
    draws ξ for a Dataset (population moments need none).
    """
    _check(data)
    m = _modality(data, modality)
    c = checks.in_interval("attenuation", attenuation, 0.0, 1.0, closed="both")
    sd = checks.real("noise_std", noise_std)
    if sd < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
    if isinstance(data, Dataset):
        rng = np.random.default_rng(seed)
        xs = tuple(c * x + sd * rng.standard_normal(x.shape) if i == m else x
                   for i, x in enumerate(data.xs))
        return Dataset(xs, data.y, data.names)
    s = data.slices[m]
    sigma = np.array(data.sigma)
    sigma[s, :] *= c
    sigma[:, s] *= c                      # the diagonal block gets c² in total
    sigma[s, s] += sd ** 2 * np.eye(data.dims[m])
    sigma_yx = np.array(data.sigma_yx)
    sigma_yx[:, s] *= c
    singular = data.allow_singular or (sd == 0 and c == 0)
    return _rebuild(data, sigma, sigma_yx, singular=singular)


def dissociate(data, seed: int = 0):
    """Every modality from an independent sample, the target from one of them at random.

    For a Dataset of P samples: modality m of sample i is taken from sample π_m(i) (π_0 = id,
    the others independent random permutations, drawn with ``seed``) and the target is that of
    sample π_c(i) for a uniformly random modality c(i).
    """
    _check(data)
    M = data.n_modalities if isinstance(data, Stats) else len(data.xs)
    if M < 2:
        raise ValueError("dissociate needs at least two modalities")
    if isinstance(data, Dataset):
        rng = np.random.default_rng(seed)
        P = data.n_samples
        perms = [np.arange(P)] + [rng.permutation(P) for _ in range(M - 1)]
        xs = tuple(x[p] for x, p in zip(data.xs, perms))
        pick = rng.integers(0, M, size=P)
        source = np.stack(perms)[pick, np.arange(P)]
        return Dataset(xs, data.y[source], data.names)
    sigma = np.zeros_like(data.sigma)
    for s in data.slices:
        sigma[s, s] = data.sigma[s, s]
    return _rebuild(data, sigma, data.sigma_yx / M)

