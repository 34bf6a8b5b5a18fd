"""The runner of deep matrix completion, :class:`Completion` (:func:`dlnfusion.train_completion`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .base import Batch, Runner, call

__all__ = ["Completion", "COMPLETION_KEYS"]


#: Parameters of :class:`Completion`, with their defaults (``scale`` None: the paper's σ for
#: the depth; ``record_until`` None: the chunk's largest ``steps``).
COMPLETION_KEYS = {"depth": 3, "steps": 1000, "steps_after": None, "deficit_end": 0, "lr": 0.2,
                   "scale": None, "record_every": 100, "record_until": None,
                   "n_singular": None, "dtype": "float64"}
_STATIC_COMPLETION = ("depth", "lr", "scale", "record_every", "record_until", "n_singular",
                      "dtype")


def _budget(point) -> int:
    """A completion run's step budget: ``steps``, or ``deficit_end + steps_after``."""
    after = point["steps_after"]
    return int(point["steps"]) if after is None else int(point["deficit_end"]) + int(after)


@dataclass(frozen=True, eq=False)
class Completion(Runner):
    """Deep matrix completion, :func:`dlnfusion.train_completion`: the runs of a depth (and
    its other compiled settings) in one call, those that share their deficit simulated once.

    ``target`` and ``mask`` return a run's own task (an (n, n) matrix and an (n, n) boolean
    observed set), ``deficit_target`` and ``deficit_mask`` (optional; default the run's own)
    the task of the deficit window [0, ``deficit_end``) at the start of training; each is
    called with the parameters it names, ``seed`` included (a run's targets and masks may
    depend on its seed). Parameters: :data:`COMPLETION_KEYS` (``steps_after``, if given, sets a
    run's budget to ``deficit_end + steps_after`` in place of ``steps``). Per run: ``status``,
    ``test_error_final``, ``train_loss_final``, and the records ``test_error``, ``train_loss``
    (time) and ``singular_values`` (time, singular), largest first.
    """

    target: Callable[..., Any]
    mask: Callable[..., Any]
    deficit_target: Callable[..., Any] | None = None
    deficit_mask: Callable[..., Any] | None = None

    defaults = COMPLETION_KEYS

    def factories(self):
        return tuple(f for f in (self.target, self.mask, self.deficit_target,
                                 self.deficit_mask) if f is not None)

    def parameters(self):
        return super().parameters() - {"seed"}

    def group(self, point, prepared):
        return tuple(repr(point[k]) for k in _STATIC_COMPLETION)

    def run(self, points, prepared, seeds, mesh=None):
        from ...interventions import Deficit
        from ...training.completion import CompletionTask, train_completion

        mats, masks, index = [], [], {}

        def slot(store, kind, a):
            a = np.asarray(a)
            key = (kind, a.shape, a.dtype.str, hashlib.sha256(a.tobytes()).hexdigest())
            if key not in index:
                index[key] = len(store)
                store.append(a)
            return index[key]

        own_t, own_m, def_t, def_m = [], [], [], []
        for p, s in zip(points, seeds):
            q = {**p, "seed": s}
            own_t.append(slot(mats, "t", call(self.target, q)))
            own_m.append(slot(masks, "m", call(self.mask, q)))
            def_t.append(own_t[-1] if self.deficit_target is None else
                         slot(mats, "t", call(self.deficit_target, q)))
            def_m.append(own_m[-1] if self.deficit_mask is None else
                         slot(masks, "m", call(self.deficit_mask, q)))
        p0 = points[0]
        ends = np.array([int(p["deficit_end"]) for p in points])
        window = Deficit(CompletionTask(target=np.array(def_t), mask=np.array(def_m)), start=0,
                         end=ends)
        r = train_completion(np.stack(mats), np.stack(masks), depth=int(p0["depth"]),
                             seeds=np.array(seeds), steps=np.array([_budget(p) for p in points]),
                             target=np.array(own_t), mask=np.array(own_m),
                             interventions=[window], lr=float(p0["lr"]), scale=p0["scale"],
                             record_every=int(p0["record_every"]),
                             record_until=p0["record_until"], n_singular=p0["n_singular"],
                             dtype=p0["dtype"])
        k = r.singular_values.shape[-1]
        return Batch({"status": r.status.astype(np.int8), "test_error_final": r.test_error_final,
                      "train_loss_final": r.train_loss_final, "test_error": r.test_error,
                      "train_loss": r.train_loss, "singular_values": r.singular_values},
                     dims={"test_error": ("time",), "train_loss": ("time",),
                           "singular_values": ("time", "singular")},
                     coords={"time": r.time, "singular": np.arange(k)})
