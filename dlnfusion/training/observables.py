"""What a training run records: observables, evaluated inside the jitted loop.

An observable is a small pure function of a :class:`Snapshot` of one run (as diffrax's
``SaveAt(fn=...)``). Two kinds:

* :class:`Record`: evaluated every ``record_every`` steps; its value (any pytree of arrays) is
  stored at every record time. A plain function ``fn(snapshot)`` passed to ``train(observe=...)``
  is a Record.
* :class:`Crossing`: a progress vector evaluated at every step (gradient descent) or record
  time (gradient flow); what is stored is the first time each entry reaches each of ``levels``,
  linearly interpolated between the two evaluations that straddle it
  (:func:`dlnfusion.results.crossing_update`).

An observable may carry arrays (``data``, shared by every run of a batch); its function then
receives them: ``fn(snapshot, data)``. Observables are pytrees whose function is static: a new
``data`` value does not recompile, a new function object does (define functions once, at module
level, rather than as a fresh lambda per call).

The defaults (:func:`default_observables`) are the loss, the total maps, the layer norms, the
population loss under evaluation statistics when given, and the crossings of each modality's
progress toward its unimodal solution and toward its block of the global solution. The
progress of W_m toward a reference R_m is ⟨W_m, R_m⟩/‖R_m‖² (1 at the reference).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..losses import squared_moments
from ..networks import Params, layer_norms
from ..stats import split_modalities
from .objectives import Moments

__all__ = ["Snapshot", "Record", "Crossing", "as_observable", "default_observables",
           "loss", "maps", "norms", "progress_unimodal",
           "progress_global", "eval_loss", "mode_strengths"]


class Snapshot(NamedTuple):
    """One run at one time: what an observable sees.

    ``t`` time in steps; ``params`` the weights; ``maps`` the total map of every modality (a
    tuple of (d_out, d_m) arrays); ``loss`` the training loss; ``moments`` the run's
    population moments (for sample-based training: the evaluation statistics, or the
    dataset's own moments).
    """

    t: jnp.ndarray
    params: Params
    maps: tuple
    loss: jnp.ndarray
    moments: Moments


@dataclass(frozen=True)
class Record:
    """Record ``fn(snapshot)`` (or ``fn(snapshot, data)``) every ``record_every`` steps."""

    fn: Callable
    data: Any = None

    def __call__(self, snap: Snapshot):
        return self.fn(snap) if self.data is None else self.fn(snap, self.data)


@dataclass(frozen=True)
class Crossing:
    """Record the first time each entry of ``fn(snapshot)`` (a vector) reaches each level."""

    fn: Callable
    levels: Any = (0.5,)
    data: Any = None

    def __call__(self, snap: Snapshot):
        return self.fn(snap) if self.data is None else self.fn(snap, self.data)


jax.tree_util.register_dataclass(Record, data_fields=["data"], meta_fields=["fn"])
jax.tree_util.register_dataclass(Crossing, data_fields=["levels", "data"], meta_fields=["fn"])


def as_observable(name: str, obs):
    """A Record as given, a Crossing with its levels as a float vector, or a plain function as
    a Record."""
    if isinstance(obs, Crossing):
        levels = np.atleast_1d(np.asarray(obs.levels, dtype=float))
        if levels.ndim != 1 or levels.size < 1 or not np.all(np.isfinite(levels)):
            raise ValueError(f"observe[{name!r}]: levels must be a non-empty vector of finite "
                             f"numbers, got {obs.levels!r}")
        return Crossing(obs.fn, levels, obs.data)
    if isinstance(obs, Record):
        return obs
    if callable(obs):
        return Record(obs)
    raise ValueError(f"observe[{name!r}] must be a function of a Snapshot, a Record or a "
                     f"Crossing, got {obs!r}")


# ---------------------------------------------------------------------- the defaults
def loss(snap: Snapshot):
    """The training loss."""
    return snap.loss


def maps(snap: Snapshot):
    """The total map of every modality."""
    return snap.maps


def norms(snap: Snapshot):
    """Frobenius norm of every layer, ordered as ``NetworkSpec.layer_labels``."""
    return layer_norms(snap.params)


def _progress(snap: Snapshot, reference):
    dims = [m.shape[-1] for m in snap.maps]
    out = []
    for Wm, Rm in zip(snap.maps, split_modalities(reference, dims)):
        nrm = jnp.sum(Rm * Rm)
        out.append(jnp.where(nrm > 0, jnp.sum(Wm * Rm) / jnp.where(nrm > 0, nrm, 1.0), jnp.nan))
    return jnp.stack(out)


def progress_unimodal(snap: Snapshot):
    """(M,) progress of each modality toward its unimodal solution Σ_yx_m Σ_m⁻¹."""
    return _progress(snap, snap.moments.w_uni)


def progress_global(snap: Snapshot):
    """(M,) progress of each modality toward its block of the global solution Σ_yx Σ⁻¹."""
    return _progress(snap, snap.moments.w_star)


def _eval_loss(snap: Snapshot, ev: Moments):
    W = jnp.concatenate(snap.maps, axis=-1)
    return squared_moments(W, ev.sigma, ev.w_star, ev.l_star)


def eval_loss(stats) -> Record:
    """Population squared loss of the total map under ``stats`` (generalization error plus its
    noise floor, when the run trains on samples)."""
    return Record(_eval_loss, Moments.of(stats))


def _mode_strengths(snap: Snapshot, modes):
    return jnp.stack([jnp.diagonal(U.T @ W @ V) for W, (U, V) in zip(snap.maps, modes)])


def mode_strengths(stats) -> Record:
    """Per branch (pathway) p and mode α, K_{p,α} = (Uᵀ W_p^tot V)_{αα}, recorded as a (P, M)
    array; U, V from each modality's block of ``stats`` (:meth:`Stats.modes`; Kleinman,
    Achille, Soatto & Kao 2023). Branches must have the same number of modes M."""
    modes = []
    for m in range(stats.n_modalities):
        U, _, V = stats.modes(m)
        modes.append((U, V))
    if len({U.shape[1] for U, _ in modes}) != 1:
        raise ValueError("mode_strengths needs the same number of modes in every modality")
    return Record(_mode_strengths, tuple(modes))


def default_observables(levels=(0.5,), eval_stats=None) -> dict:
    """The observables every run records unless told otherwise (see the module docstring)."""
    lev = np.asarray(levels, dtype=float)
    out = {"loss": Record(loss), "maps": Record(maps), "norms": Record(norms),
           "unimodal": Crossing(progress_unimodal, lev), "global": Crossing(progress_global, lev)}
    if eval_stats is not None:
        out["eval_loss"] = eval_loss(eval_stats)
    return out

