"""Runners of parallel deep linear pathways: :class:`Pathways` and their reduced dynamics,
:class:`ReducedPathways`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...networks import NetworkSpec
from ...stats import Stats
from ...training import train
from .base import Batch, Runner, _stats_key, call, source

__all__ = ["Pathways", "ReducedPathways", "PATHWAY_KEYS"]


#: Parameters of :class:`Pathways` and :class:`ReducedPathways`, with their defaults
#: (``strength``: the initial mode strength K0 of every pathway and mode; ``init``, reduced
#: dynamics only: the per-layer initial value p0, None for K0^{1/D} of each pathway; ``rtol``
#: and ``atol``: the network's gradient-flow tolerances, as :func:`dlnfusion.train`).
PATHWAY_KEYS = {"lr": 0.01, "steps": 1000, "record_every": 1, "method": "gd", "strength": 0.01,
                "jitter": 0.0, "init": None, "rtol": 1e-8, "atol": 1e-20}
_STATIC_PATHWAYS = ("lr", "steps", "record_every", "method", "strength", "jitter", "init",
                    "rtol", "atol")


def _windows_key(windows) -> tuple:
    """What must agree for windows to be stacked over runs: kinds, groups, modes, units and
    whether a lesion lasts for good."""
    from ...interventions import Gate, Lesion
    key = []
    for w in windows:
        if isinstance(w, Gate):
            key.append(("gate", w.group))
        elif isinstance(w, Lesion):
            key.append(("lesion", w.group, w.mode, w.unit, w.end is None))
        else:
            raise ValueError(f"pathway windows are Gate or Lesion, got {type(w).__name__}")
    return tuple(key)



@dataclass(frozen=True, eq=False)
class Pathways(Runner):
    """Parallel deep linear pathways (Kleinman, Achille, Soatto & Kao 2023), trained with
    :func:`dlnfusion.train` from aligned, balanced weights (:func:`dlnfusion.init_pathways`),
    the mode strengths K_{p,α} recorded (:func:`dlnfusion.training.mode_strengths`).

    ``stats`` returns the task (:class:`~dlnfusion.Stats`, one modality or repeated per
    pathway), ``network`` its :class:`~dlnfusion.NetworkSpec` (``NetworkSpec.pathways``) and
    ``interventions`` (optional) the run's :class:`~dlnfusion.Gate` and
    :class:`~dlnfusion.Lesion` windows with scalar start and end; each is called with the
    parameters it names. Parameters: :data:`PATHWAY_KEYS` (``init`` unused). The runs that
    share the network, task, window kinds and parameters are one call of
    :func:`dlnfusion.train` (their windows stacked), so a gradient-flow batch integrates them
    together as one solve. The seed draws the jitter of :func:`dlnfusion.init_pathways`.

    Per run: ``status``, and the record ``K`` (time, pathway, mode).
    """

    stats: Callable[..., Any]
    network: Callable[..., NetworkSpec]
    interventions: Callable[..., Any] | None = None

    defaults = PATHWAY_KEYS

    def factories(self):
        return tuple(f for f in (self.stats, self.network, self.interventions) if f is not None)

    def prepare(self, point):
        spec, data = call(self.network, point), call(self.stats, point)
        if not isinstance(spec, NetworkSpec) or spec.post_depth != 0:
            raise ValueError("network factory must return parallel pathways "
                             "(NetworkSpec.pathways)")
        if not isinstance(data, Stats):
            raise ValueError(f"stats factory returned {type(data).__name__}, not Stats")
        windows = () if self.interventions is None else tuple(call(self.interventions, point))
        _windows_key(windows)
        return spec, data, windows

    def group(self, point, prepared):
        spec, data, windows = prepared
        return ((spec, _stats_key(data), _windows_key(windows))
                + tuple(repr(point[k]) for k in _STATIC_PATHWAYS))

    def run(self, points, prepared, seeds, mesh=None):
        from ...interventions import Gate, Lesion
        from ...networks import init_pathways
        from ...training import mode_strengths

        p0, (spec, data, first) = points[0], prepared[0]
        windows = []
        for j, w in enumerate(first):
            start = np.array([float(prep[2][j].start) for prep in prepared])
            end = None if isinstance(w, Lesion) and w.end is None else \
                np.array([float(prep[2][j].end) for prep in prepared])
            windows.append(Gate(w.group, start=start, end=end) if isinstance(w, Gate) else
                           Lesion(w.group, mode=w.mode, unit=w.unit, start=start, end=end))
        params = init_pathways(spec, data, seeds=list(seeds), strength=p0["strength"],
                               jitter=p0["jitter"])
        tr = train(spec, data, params, lr=p0["lr"], steps=p0["steps"],
                   record_every=p0["record_every"], stop_loss=None, method=p0["method"],
                   rtol=p0["rtol"], atol=p0["atol"], observe={"K": mode_strengths(data)},
                   interventions=windows)
        K = np.asarray(tr.records["K"])
        return Batch({"status": tr.status.astype(np.int8), "K": K},
                     dims={"K": ("time", "pathway", "mode")},
                     coords={"time": np.asarray(tr.time), "pathway": np.array(spec.names),
                             "mode": np.arange(K.shape[-1])})

    def describe(self):
        return {"runner": "Pathways", "factories": [source(f) for f in self.factories()]}


@dataclass(frozen=True, eq=False)
class ReducedPathways(Pathways):
    """The reduced dynamics of the runs :class:`Pathways` would train (the same factories and
    parameters), without a network: :func:`dlnfusion.reduced.reduced_pathways` per run, from
    the task's singular values, the pathways' depths and the per-layer initial value ``init``
    (None: ``strength``^{1/D} per pathway); ``method`` "gd" iterates the exact per-mode
    gradient-descent map, "gf" integrates its gradient flow (``rtol``, ``atol`` and
    ``jitter`` unused: the reduction assumes exactly aligned weights).

    Per run: ``status``, and the record ``K`` (time, pathway, mode).
    """

    def run(self, points, prepared, seeds, mesh=None):
        from ...interventions import Gate, Lesion
        from ...reduced import reduced_pathways

        Ks, status, time = [], [], None
        for p, (spec, data, windows) in zip(points, prepared):
            depths = spec.branch_depths
            init = p["init"] if p["init"] is not None else \
                tuple(float(p["strength"]) ** (1 / d) for d in depths)
            r = reduced_pathways(data.modes(0)[1], init, depths, p["lr"], p["steps"],
                                 gates=tuple(w for w in windows if isinstance(w, Gate)),
                                 lesions=tuple(w for w in windows if isinstance(w, Lesion)),
                                 method=p["method"], record_every=p["record_every"])
            Ks.append(r.K)
            status.append(r.status)
            time = r.time
        return Batch({"status": np.array(status, dtype=np.int8), "K": np.stack(Ks)},
                     dims={"K": ("time", "pathway", "mode")},
                     coords={"time": time, "pathway": np.array(prepared[0][0].names),
                             "mode": np.arange(Ks[0].shape[-1])})

    def describe(self):
        return {"runner": "ReducedPathways",
                "factories": [source(f) for f in self.factories()]}
