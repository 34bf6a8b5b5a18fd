"""The runner of the cross-source reconstruction objective, :class:`Reconstruction`
(:func:`dlnfusion.train_reconstruction`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...networks import NetworkSpec
from ...stats import Stats
from .base import Batch, Runner, _stats_key, call, source
from .networks import _batch_windows, _point_windows, _window_key

__all__ = ["Reconstruction", "RECONSTRUCTION_KEYS"]


#: Parameters of :class:`Reconstruction`, with their defaults (those of
#: :func:`dlnfusion.train_reconstruction`; ``weight`` λ, ``decoder_seed`` its ``seed``).
RECONSTRUCTION_KEYS = {"lr": 0.04, "scale": 1e-9, "scheme": "normal", "steps": 40_000,
                       "record_every": 1, "weight": 1.0, "decoder_scale": 1e-9,
                       "decoder_seed": 0}
_STATIC_RECONSTRUCTION = tuple(RECONSTRUCTION_KEYS)


@dataclass(frozen=True, eq=False)
class Reconstruction(Runner):
    """Linear fusion networks trained at population level on the task loss plus λ times the
    cross-source reconstruction error, :func:`dlnfusion.train_reconstruction`.

    ``stats``, ``network`` and ``interventions`` (optional: the point's windows, as for
    :class:`Train`) are called with the parameters they name; the training parameters are
    :data:`RECONSTRUCTION_KEYS`. The runs of a chunk that are the same run (the same seed, task
    and non-empty windows, e.g. a deficit of length 0 under any name) are trained once, and the
    chunk's distinct runs are one call, in grid order: the decoders of the run at position b of
    that call start from ``fold_in(decoder_seed, b)``.

    Per run: ``status``, ``final_loss``, ``final_reconstruction`` and the crossing times
    ``t_<modality>`` of half the global solution (:meth:`ReconstructionRun.crossing`); with
    ``record`` the records ``loss`` and ``reconstruction`` (time).
    """

    stats: Callable[..., Stats]
    network: Callable[..., NetworkSpec]
    interventions: Callable[..., Any] | None = None
    record: bool = False

    defaults = RECONSTRUCTION_KEYS

    def factories(self):
        return tuple(f for f in (self.stats, self.network, self.interventions) if f is not None)

    def prepare(self, point):
        spec, data = call(self.network, point), call(self.stats, point)
        if not isinstance(spec, NetworkSpec) or not isinstance(data, Stats):
            raise ValueError("Reconstruction trains a NetworkSpec on Stats")
        return spec, data

    def group(self, point, prepared):
        return ((prepared[0],) + tuple(repr(point[k]) for k in _STATIC_RECONSTRUCTION)
                + _window_key(self.interventions, point))

    def _identity(self, point, data, seed):
        """What makes a run: its seed, task and non-empty windows."""
        windows = [] if self.interventions is None else _point_windows(self.interventions, point)
        kept = []
        for w in windows:
            end = np.inf if w.end is None else float(w.end)
            if end > float(w.start):
                data_key = _stats_key(w.data) if hasattr(w, "data") else None
                kept.append((type(w).__name__, getattr(w, "group", None),
                             getattr(w, "mode", None), float(w.start), end, data_key))
        return (int(seed), _stats_key(data), tuple(kept))

    def run(self, points, prepared, seeds, mesh=None):
        from ...networks import init_batch
        from ...training import train_reconstruction

        p0, spec = points[0], prepared[0][0]
        index, first, slot = {}, [], []
        for r, (p, (_, data), s) in enumerate(zip(points, prepared, seeds)):
            key = self._identity(p, data, s)
            if key not in index:
                index[key] = len(first)
                first.append(r)
            slot.append(index[key])
        params = init_batch(spec, [seeds[r] for r in first], p0["scheme"], p0["scale"])
        res = train_reconstruction(
            spec, [prepared[r][1] for r in first], params, weight=p0["weight"], lr=p0["lr"],
            steps=int(p0["steps"]), record_every=int(p0["record_every"]),
            decoder_scale=p0["decoder_scale"], seed=int(p0["decoder_seed"]),
            interventions=_batch_windows(self.interventions, [points[r] for r in first]))
        slot = np.array(slot)
        out = Batch({"status": np.asarray(res.status).astype(np.int8)[slot],
                     "final_loss": res.loss[slot, -1],
                     "final_reconstruction": res.reconstruction[slot, -1],
                     **{f"t_{m}": res.crossing(m)[slot] for m in spec.names}})
        if self.record:
            for k in ("loss", "reconstruction"):
                out.values[k], out.dims[k] = getattr(res, k)[slot], ("time",)
            out.coords["time"] = res.time
        return out

    def describe(self):
        return {"runner": "Reconstruction", "record": self.record,
                "factories": [source(f) for f in self.factories()]}
