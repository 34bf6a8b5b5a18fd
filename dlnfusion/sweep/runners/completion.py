"""The runners of deep matrix completion (:func:`dlnfusion.train_completion`):
:class:`Completion`, and :class:`CompletionSeries` on the tasks of Kleinman et al. (2023).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...data.completion import low_rank_target, observed_mask
from .base import Batch, Runner, call

__all__ = ["Completion", "COMPLETION_KEYS", "CompletionSeries"]


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

    @staticmethod
    def default_scale(depth: int) -> float:
        """The initial entries' standard deviation of a run whose ``scale`` is None: the
        paper's σ = (1e-3)^{1/D}/10 for depth D."""
        from ...training.completion import default_scale
        return default_scale(depth)

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


# ------------------------------------------------ the tasks of Kleinman et al. (2023)

@dataclass(frozen=True, eq=False)
class CompletionSeries(Completion):
    """:class:`Completion` on the tasks of Kleinman et al. (2023), drawn from each run's seed:
    the parameter ``series`` indexes ``table``, whose rows are (experiment, pre-training rank,
    observed count).

    Seed s observes the first ``count`` entries of ``observed_order(s, n)`` (so the observed
    sets of a seed are nested) of the final target ``low_rank_target(2000 + s, n, final_rank,
    frobenius)``. During the deficit window [0, ``deficit_end``), experiment 1 trains on the
    pre-training target ``low_rank_target(1000 + s, n, rank, frobenius)`` on the same entries,
    experiment 2 on the final target observed on its first ``deficit_count`` entries only (its
    rank is not used). Parameters and results: those of :class:`Completion`, and ``series``.
    """

    table: tuple
    n: int = 100
    frobenius: float = 100.0
    final_rank: int = 5
    deficit_count: int = 1000
    target: Callable[..., Any] | None = field(default=None, init=False)
    mask: Callable[..., Any] | None = field(default=None, init=False)
    deficit_target: Callable[..., Any] | None = field(default=None, init=False)
    deficit_mask: Callable[..., Any] | None = field(default=None, init=False)

    def __post_init__(self):
        table = tuple((int(e), int(r), int(c)) for e, r, c in self.table)
        if not table or any(e not in (1, 2) for e, _, _ in table):
            raise ValueError("table must hold at least one (experiment 1 or 2, rank, count)")
        object.__setattr__(self, "table", table)
        for name in ("target", "mask", "deficit_target", "deficit_mask"):
            object.__setattr__(self, name, getattr(self, f"_{name}"))

    def _target(self, seed):
        return low_rank_target(2000 + seed, self.n, self.final_rank, self.frobenius)

    def _mask(self, series, seed):
        return observed_mask(seed, self.n, self.table[series][2])

    def _deficit_target(self, series, seed):
        experiment, rank, _ = self.table[series]
        if experiment == 1:
            return low_rank_target(1000 + seed, self.n, rank, self.frobenius)
        return self._target(seed)

    def _deficit_mask(self, series, seed):
        experiment, _, count = self.table[series]
        return observed_mask(seed, self.n, count if experiment == 1 else self.deficit_count)

    def check(self, grid, fixed):
        values = list(grid["series"]) if "series" in grid else [fixed.get("series")]
        if any(not isinstance(i, (int, np.integer)) or not 0 <= i < len(self.table)
               for i in values):
            raise ValueError(f"series must index the table (0 to {len(self.table) - 1})")

    def describe(self):
        return {**super().describe(), "table": [list(row) for row in self.table],
                "n": self.n, "frobenius": self.frobenius, "final_rank": self.final_rank,
                "deficit_count": self.deficit_count}
