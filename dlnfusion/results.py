"""The result contract shared by every runner: :class:`Status`, :class:`Run` and
:func:`first_crossing`.

Every function that runs dynamics — the network simulators (:func:`dlnfusion.train`,
:func:`dlnfusion.fit`, :func:`dlnfusion.train_completion`, :func:`dlnfusion.train_reconstruction`)
and the exact reduced simulators of :mod:`dlnfusion.reduced` — returns a :class:`Run`: a frozen
dataclass whose array fields carry the batch of runs in front, with

* ``time`` — the recorded time axis, in steps at the run's learning rate (gradient flow
  reports the same unit, t = n·η/η, see docs/conventions.md);
* ``status`` — one :class:`Status` code per run (a diverged run is data, never an exception);
* ``batch_shape``, indexing (``run[2]``, ``run[:, 0]``) and :meth:`Run.reshape`.

Crossing times ("the first time a progress series reaches a level") are computed by one rule,
:func:`first_crossing` over recorded series, whose interpolation :func:`crossing_update` also
applies online inside the jitted loops.
"""
from __future__ import annotations

import enum
from dataclasses import fields, replace
from typing import ClassVar

import jax
import numpy as np

__all__ = ["Status", "Run", "first_crossing", "crossing_update", "interpolate_crossing"]

#: What joins a run's caveats (tuples of strings) into one string of a sweep's Dataset: a line
#: break, since a caveat's own text may hold "; " (``text.split(CAVEAT_SEPARATOR)`` gives them
#: back).
CAVEAT_SEPARATOR = "\n"


class Status(enum.IntEnum):
    """How a run ended. Members are integers (stored as int8 arrays inside the loops) and carry
    a message (``Status.DIVERGED.message``)."""

    MAX_STEPS = 0
    CONVERGED = 1
    DIVERGED = 2

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @classmethod
    def names(cls, codes) -> np.ndarray:
        """Lower-case member names of an array of codes ('max_steps', 'converged',
        'diverged'); 'missing' for a code that is no member (a sweep point not yet run)."""
        names = {int(m): m.name.lower() for m in cls}
        return np.vectorize(lambda c: names.get(int(c), "missing"), otypes=[object])(
            np.asarray(codes))


_MESSAGES = {
    Status.MAX_STEPS: "ran its whole step budget without meeting the stopping rule",
    Status.CONVERGED: "stopped at the stopping rule (the loss fell below stop_loss)",
    Status.DIVERGED: "diverged: the loss or a weight became non-finite or exceeded "
                     "diverge_loss; the run froze at its last finite state",
}


class Run:
    """Base of every runner's result (a frozen dataclass subclasses it).

    Every field holds an array (or a pytree of arrays) with the batch shape in front, except
    ``time`` and the fields a subclass names in ``_static`` (settings, names, shapes). A batch
    is one object: ``run[i]`` selects runs, ``run.reshape(n_configs, n_seeds)`` labels them.
    """

    _static: ClassVar[tuple] = ()

    # ------------------------------------------------------------------ status
    @property
    def batch_shape(self) -> tuple:
        return tuple(np.shape(self.status))

    @property
    def n_runs(self) -> int:
        return int(np.prod(self.batch_shape, dtype=int))

    @property
    def diverged(self) -> np.ndarray:
        """(*batch,) True where a run diverged."""
        return np.asarray(self.status) == Status.DIVERGED

    def status_names(self) -> np.ndarray:
        """(*batch,) the status of every run as a string ('max_steps', 'converged',
        'diverged')."""
        return Status.names(self.status)

    # ------------------------------------------------------------------ batch operations
    def _batched_fields(self) -> dict:
        skip = set(self._static) | {"time"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def _map_batch(self, fn):
        mapped = jax.tree_util.tree_map(fn, self._batched_fields())
        return replace(self, **mapped)

    def reshape(self, *shape):
        """The same runs with a new batch shape (e.g. configurations × seeds)."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        nb = len(self.batch_shape)
        if int(np.prod(shape, dtype=int)) != self.n_runs:
            raise ValueError(f"cannot reshape batch {self.batch_shape} into {shape}")
        return self._map_batch(lambda a: np.reshape(a, shape + np.shape(a)[nb:]))

    def __getitem__(self, index):
        """Index the batch, e.g. ``run[2]`` or ``run[:, 0]``."""
        idx = index if isinstance(index, tuple) else (index,)
        if len(idx) > len(self.batch_shape):
            raise IndexError(f"too many indices for batch shape {self.batch_shape}")
        return self._map_batch(lambda a: np.asarray(a)[idx])

    def __len__(self) -> int:
        if not self.batch_shape:
            raise TypeError("a single run has no length; index a batch of runs")
        return self.batch_shape[0]

    def __bool__(self) -> bool:     # a result is never "empty", even a single run
        return True

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def replace(self, **changes):
        """A copy with some fields replaced (the results are immutable)."""
        return replace(self, **changes)


# ---------------------------------------------------------------------- crossing times
def interpolate_crossing(prev, value, t_prev, t, level, xp=np):
    """The one crossing rule: the time a series reached ``level`` between two evaluations,
    ``prev`` at ``t_prev`` (below the level) and ``value`` at ``t`` (at or above it), by linear
    interpolation; ``t`` itself where there is no earlier evaluation (``prev`` NaN) or the two
    are equal. ``xp`` is numpy or jax.numpy (inside jitted loops)."""
    denom = value - prev
    frac = (level - prev) / xp.where(denom == 0, 1.0, denom)
    frac = xp.clip(xp.where(xp.isfinite(frac), frac, 1.0), 0.0, 1.0)
    return xp.where(xp.isnan(prev), t, t_prev + frac * (t - t_prev))


def crossing_update(times, prev, value, t_prev, t, levels, live=True):
    """Online form of :func:`first_crossing`, for jitted loops: update the first-crossing times
    ``times`` (P, K) of P series at K ``levels`` with one new evaluation ``value`` (P,) at time
    ``t``, the previous one being ``prev`` (P,) at ``t_prev`` (NaN before the first). ``live``
    masks runs that have stopped."""
    import jax.numpy as jnp
    reached = (value[:, None] >= levels) & jnp.isnan(times) & live
    stamp = interpolate_crossing(prev[:, None], value[:, None], t_prev, t, levels, xp=jnp)
    return jnp.where(reached, stamp, times)


def first_crossing(series, time, level=0.5, *, axis: int = -1) -> np.ndarray:
    """First time each recorded series reaches ``level`` (NaN if it never does).

    ``series`` (..., T, ...) recorded at ``time`` (T,) along ``axis``; ``level`` a scalar or a
    (K,) array of levels. Returns (...) for a scalar level, (..., K) for levels. Between two
    records the time is linearly interpolated (:func:`interpolate_crossing`); a series already
    at the level at its first record crosses at ``time[0]``; non-finite records (a run that
    stopped) never cross.
    """
    s = np.moveaxis(np.asarray(series, dtype=float), axis, -1)
    t = np.asarray(time, dtype=float)
    if t.ndim != 1 or t.shape[0] != s.shape[-1]:
        raise ValueError(f"time must be (T,) with T = {s.shape[-1]} records along axis "
                         f"{axis}, got shape {t.shape}")
    lv = np.asarray(level, dtype=float)
    scalar = lv.ndim == 0
    lv = np.atleast_1d(lv)
    if s.shape[-1] == 0:
        out = np.full(s.shape[:-1] + lv.shape, np.nan)
        return out[..., 0] if scalar else out
    with np.errstate(invalid="ignore"):
        hit = s[..., None, :] >= lv[:, None]                          # (..., K, T)
    found = hit.any(axis=-1)
    idx = hit.argmax(axis=-1)                                         # (..., K)
    s_k = np.broadcast_to(s[..., None, :], hit.shape)
    value = np.take_along_axis(s_k, idx[..., None], -1)[..., 0]
    prev = np.take_along_axis(s_k, np.maximum(idx - 1, 0)[..., None], -1)[..., 0]
    prev = np.where(idx > 0, prev, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = interpolate_crossing(prev, value, t[np.maximum(idx - 1, 0)], t[idx], lv)
    out = np.where(found, out, np.nan)
    return out[..., 0] if scalar else out
