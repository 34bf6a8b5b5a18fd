"""The runner protocol: :class:`Runner`, the :class:`Batch` a chunk returns, and the helpers every
runner uses.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ...results import CAVEAT_SEPARATOR  # re-exported: what joins a run's caveats

__all__ = ["Runner", "Batch", "CAVEAT_SEPARATOR"]


@dataclass
class Batch:
    """What one chunk produced: ``values`` name → array whose first axis is the chunk's runs,
    ``dims`` name → the names of the array's further axes (none: one value per run), and
    ``coords`` dimension → its coordinate values (optional per dimension; where chunks differ
    in length, the Dataset takes the longest and pads the shorter records with NaN)."""

    values: dict
    dims: dict = field(default_factory=dict)
    coords: dict = field(default_factory=dict)


def params_of(fn) -> tuple:
    """The names of the keyword-usable arguments of ``fn``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read the arguments of {fn!r}") from exc
    return tuple(p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def call(fn, point: Mapping):
    """``fn`` called with the entries of ``point`` it takes by name."""
    return fn(**{k: point[k] for k in params_of(fn) if k in point})


def source(fn) -> str:
    """The source of ``fn`` (its name where there is none): part of a sweep's identity."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))


class Runner:
    """The protocol a :class:`~dlnfusion.sweep.Sweep` drives (module docstring).

    Subclasses set ``defaults`` and implement :meth:`run`; the rest has defaults: every point
    its own group, chunks of a whole group, no per-point columns.
    """

    #: The runner's own parameters and their defaults.
    defaults: Mapping[str, Any] = {}
    #: Whether a chunk may be sharded over several local devices (the engine then pads it to a
    #: multiple of the device count and passes ``mesh`` to :meth:`run`).
    shardable: bool = False

    def factories(self) -> tuple:
        """The callables whose arguments are parameters of the sweep."""
        return ()

    def parameters(self) -> set:
        """Every name a grid or ``fixed`` may set."""
        names = set(self.defaults)
        for fn in self.factories():
            names |= set(params_of(fn))
        return names

    def check(self, grid: Mapping, fixed: Mapping) -> None:
        """Refuse a grid the runner cannot run (ValueError naming the parameter)."""

    def prepare(self, point: Mapping) -> Any:
        """What the runner builds once per grid point (data, network); checked here."""
        return None

    def group(self, point: Mapping, prepared: Any):
        """The key of the runs that may share one call (default: every point alone)."""
        return json.dumps({k: repr(v) for k, v in sorted(point.items())})

    def chunk_size(self, point: Mapping, prepared: Any, n_runs: int) -> int:
        """Runs per call when the user gives no ``chunk_size`` (default: the whole group)."""
        return n_runs

    def run(self, points: list, prepared: list, seeds: list, mesh=None) -> Batch:
        """Results of the runs (``points[r]``, ``seeds[r]``), as a :class:`Batch`."""
        raise NotImplementedError(f"{type(self).__name__} does not define run()")

    def columns(self, point: Mapping, prepared: Any) -> dict:
        """Values per grid point (no seed axis): a float, bool or str each."""
        return {}

    def labels(self, prepared: Any) -> dict:
        """Variable name → the names its integer codes stand for (``prepared``: the first grid
        point's); the Dataset holds the names (−1 or an unknown code: "none")."""
        return {}

    def describe(self) -> dict:
        """A JSON-able identity (the sources of the factories), to refuse resuming another
        sweep in the same folder."""
        return {"runner": type(self).__name__,
                "factories": [source(fn) for fn in self.factories()]}


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def _stats_key(stats) -> str:
    return hashlib.sha256(b"".join(np.ascontiguousarray(a, dtype=float).tobytes()
                                   for a in (stats.sigma, stats.sigma_yx, stats.sigma_yy))
                          + repr((stats.dims, stats.names)).encode()).hexdigest()
