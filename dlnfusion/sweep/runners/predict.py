"""Theory alone: :class:`Predict`, a function of the parameters per run, no training."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .base import Batch, CAVEAT_SEPARATOR, Runner, call, params_of, source

__all__ = ["Predict"]


def _flat(value, name=""):
    """A prediction as name → scalar: a mapping's entries, a dataclass's fields (a
    Prediction's value, valid, caveats; a TimePrediction's t_A, t_B, ... and its ratio),
    tuples of strings joined with :data:`CAVEAT_SEPARATOR`."""
    if isinstance(value, Mapping):
        items = value.items()
    elif is_dataclass(value):
        items = [(f.name, getattr(value, f.name)) for f in fields(value)]
        if hasattr(type(value), "ratio"):
            items.append(("ratio", value.ratio))
    else:
        return {name: value}
    out = {}
    for k, v in items:
        key = f"{name}_{k}" if name else str(k)
        if key.endswith("_value") and name:
            key = name
        if isinstance(v, (tuple, list)) and all(isinstance(x, str) for x in v):
            out[key] = CAVEAT_SEPARATOR.join(v)
        elif isinstance(v, Mapping) or is_dataclass(v):
            out.update(_flat(v, key))
        else:
            out[key] = v
    return out


@dataclass(frozen=True, eq=False)
class Predict(Runner):
    """Theory alone: ``fn`` called with the parameters it names (and ``seed``, if it takes one)
    returns a prediction, and every run of the grid is one call, no training.

    The prediction is a number, a mapping of names to numbers, booleans or strings, or a
    result of :mod:`dlnfusion.theory` (a ``Prediction``: ``value``, ``valid``, ``caveats``;
    a ``TimePrediction``: ``t_A``, ``t_B``, ``first``, ``second``, ``valid``, ``caveats``,
    ``ratio``; nested results are prefixed by their key, caveats joined with
    :data:`CAVEAT_SEPARATOR`, a line break). Each
    entry becomes a variable of the Dataset (``value`` for a bare number). ``defaults`` may
    give values to parameters that the grid does not set. ``dims`` names the entries that are
    arrays (of numbers) and their dimensions, e.g. ``{"times": ("transition",)}``: each becomes
    a record of those dimensions, the shorter ones padded with NaN.
    """

    fn: Callable[..., Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    dims: Mapping[str, tuple] = field(default_factory=dict)

    def factories(self):
        return (self.fn,)

    def group(self, point, prepared):
        return "all"

    def run(self, points, prepared, seeds, mesh=None):
        takes_seed = "seed" in params_of(self.fn)
        rows = []
        for p, s in zip(points, seeds):
            res = call(self.fn, {**p, "seed": s} if takes_seed else p)
            rows.append(_flat(res) if (isinstance(res, Mapping) or is_dataclass(res))
                        else {"value": res})
        names = list(dict.fromkeys(k for r in rows for k in r))
        values = {}
        for k in names:
            col = [r.get(k) for r in rows]
            if k in self.dims:
                values[k] = _padded(col, len(self.dims[k]), k)
            elif all(isinstance(v, str) for v in col):
                values[k] = np.array(col, dtype=str)
            elif all(isinstance(v, (bool, np.bool_)) for v in col):
                values[k] = np.array(col, dtype=bool)
            else:
                try:
                    values[k] = np.array([np.nan if v is None else v for v in col], dtype=float)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"prediction entry {k!r} must be a number, a bool or a "
                                     f"string in every run, got {col[:3]!r}") from exc
        return Batch(values, dims={k: tuple(d) for k, d in self.dims.items() if k in values})

    def describe(self):
        return {"runner": "Predict", "fn": source(self.fn),
                "defaults": {k: repr(v) for k, v in self.defaults.items()},
                **({"dims": {k: list(d) for k, d in self.dims.items()}} if self.dims else {})}


def _padded(col, ndim, name):
    """Arrays of ``ndim`` dimensions (None: none) stacked over runs, padded with NaN."""
    arrs = [np.full((0,) * ndim, np.nan) if v is None else np.asarray(v, dtype=float)
            for v in col]
    if any(a.ndim != ndim for a in arrs):
        raise ValueError(f"prediction entry {name!r} must have {ndim} dimension(s) in every "
                         f"run, got shapes {[a.shape for a in arrs[:3]]}")
    shape = tuple(max(a.shape[d] for a in arrs) for d in range(ndim))
    out = np.full((len(arrs),) + shape, np.nan)
    for r, a in enumerate(arrs):
        out[(r,) + tuple(slice(0, n) for n in a.shape)] = a
    return out
