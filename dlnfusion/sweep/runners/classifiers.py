"""Runners of mini-batch training of classifiers on samples: :class:`Fit` (:func:`dlnfusion.fit`)
and :class:`DeficitFit` (deficits and the units' RSV).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...training import fit
from .base import Batch, Runner, call, source

__all__ = ["Fit", "FIT_KEYS", "DeficitFit", "DEFICIT_FIT_KEYS"]


#: Training parameters of :class:`Fit`, with their defaults (those of :func:`dlnfusion.fit`;
#: ``epochs`` has none there, 10 here).
FIT_KEYS = {"epochs": 10, "batch_size": 1000, "lr": 0.04, "momentum": 0.0,
            "weight_decay": 0.0, "lr_decay": 1.0, "loss": "cross_entropy", "record_every": 1,
            "chunk_epochs": None, "batch_seeds": True, "level": None, "stop_at_level": False}


@dataclass(frozen=True, eq=False)
class Fit(Runner):
    """Mini-batch SGD of classifiers on samples, :func:`dlnfusion.fit`, all seeds of a grid
    point in one compiled call.

    ``model`` returns the network (:class:`~dlnfusion.FusionMLP`, :class:`~dlnfusion.FusionCNN`,
    ...) and ``task`` the :class:`~dlnfusion.FusionTask` of a grid point, each called with the
    parameters it names; the training parameters are :data:`FIT_KEYS`; ``interventions``, if
    given, is called with the parameters it names and returns the point's windows (in
    epochs). Per run: ``status``, ``final_test_acc``, ``epochs_run`` (the last epoch
    trained), ``seconds`` (the wall time of the chunk's call, the same for its runs), and the
    records ``train_loss``, ``test_acc`` (epoch) and ``unimodal_acc`` (modality, epoch).

    ``chunk_epochs`` and ``batch_seeds`` are those of :func:`dlnfusion.fit`. With ``level`` (an
    accuracy in (0, 1)) each run also has the observable of
    :func:`dlnfusion.compare.measure_accuracy_times`: ``t_level`` (modality) in epochs,
    ``first`` (the modality's name) and ``time_ratio``; ``stop_at_level`` ends a grid point's
    training at the first chunk after which :func:`dlnfusion.compare.crossings_complete` holds
    (the budget ``epochs`` still caps it). Records of points that stopped early are padded
    with NaN in the Dataset; ``epochs_run`` says where they end.
    """

    model: Callable[..., Any]
    task: Callable[..., Any]
    interventions: Callable[..., Any] | None = None

    defaults = FIT_KEYS

    def factories(self):
        return tuple(f for f in (self.model, self.task, self.interventions) if f is not None)

    def prepare(self, point):
        from ...data import FusionTask
        task = call(self.task, point)
        if not isinstance(task, FusionTask):
            raise ValueError(f"task factory returned {type(task).__name__}, not FusionTask")
        return call(self.model, point), task

    def check(self, grid, fixed):
        level = fixed.get("level")
        for name in ("level", "stop_at_level", "chunk_epochs", "batch_seeds"):
            if name in grid:
                raise ValueError(f"{name} cannot be swept (it is the same for every run of a "
                                 "Fit sweep); give it in fixed")
        if level is not None and not 0.0 < float(level) < 1.0:
            raise ValueError(f"level must be an accuracy strictly between 0 and 1, got {level!r}")
        if fixed.get("stop_at_level") and level is None:
            raise ValueError("stop_at_level needs level (the accuracy whose crossings end "
                             "training)")

    def labels(self, prepared):
        return {"first": tuple(prepared[1].names)}

    def run(self, points, prepared, seeds, mesh=None):
        import time

        import jax

        from ...compare import crossings_complete, measure_accuracy_times

        p0, (model, task) = points[0], prepared[0]
        windows = None if self.interventions is None else call(self.interventions, p0)
        level = p0["level"]
        stop = (lambda h: crossings_complete(h, level)) if p0["stop_at_level"] else None
        chunk = p0["chunk_epochs"]
        start = time.perf_counter()
        h = fit(model, task, list(seeds), epochs=int(p0["epochs"]),
                batch_size=int(p0["batch_size"]), lr=float(p0["lr"]),
                momentum=float(p0["momentum"]), weight_decay=float(p0["weight_decay"]),
                lr_decay=float(p0["lr_decay"]), loss=p0["loss"],
                record_every=int(p0["record_every"]), interventions=windows,
                chunk_epochs=None if chunk is None else int(chunk), stop=stop,
                batch_seeds=bool(p0["batch_seeds"]))
        jax.block_until_ready(jax.tree_util.tree_leaves(h.params))
        seconds = time.perf_counter() - start
        n = len(seeds)
        values = {"status": h.status.astype(np.int8), "final_test_acc": h.test_acc[:, -1],
                  "epochs_run": np.full(n, int(h.epoch[-1]), np.int64),
                  "seconds": np.full(n, seconds), "train_loss": h.train_loss,
                  "test_acc": h.test_acc, "unimodal_acc": h.unimodal_acc}
        dims = {"train_loss": ("epoch",), "test_acc": ("epoch",),
                "unimodal_acc": ("modality", "epoch")}
        if level is not None:
            t = measure_accuracy_times(h, float(level))
            values.update(t_level=t.times, first=t.first.astype(np.int8), time_ratio=t.ratio)
            dims["t_level"] = ("modality",)
        return Batch(values, dims=dims,
                     coords={"epoch": h.epoch, "modality": np.array(task.names)})


#: Parameters of :class:`DeficitFit`, with their defaults (``N``: the deficit's length in
#: epochs; ``budget``: epochs of normal training after it; ``n_rsv``, ``threshold``,
#: ``rsv_seed`` as :func:`dlnfusion.compare.deficit_sweep`; the rest go to
#: :func:`dlnfusion.fit`).
DEFICIT_FIT_KEYS = {"N": 0, "budget": 10, "start": 0, "n_rsv": 64, "threshold": 0.9,
                    "rsv_seed": 0, "lr": 0.04, "momentum": 0.0, "batch_size": 1000}
_SWEPT_DEFICIT_FIT = ("deficit", "N")


@dataclass(frozen=True, eq=False)
class DeficitFit(Runner):
    """Classifiers trained with a deficit on one view for the first N epochs, then ``budget``
    epochs of normal training, and the RSV of their units measured:
    :func:`dlnfusion.compare.deficit_sweep`.

    ``model`` returns the network (:class:`~dlnfusion.FusionMLP` or a wrapper such as
    :class:`~dlnfusion.CrossReconstruction`), ``task`` the :class:`~dlnfusion.FusionTask`,
    ``deficit`` the batch transform of the point's deficit (e.g. of a swept ``deficit`` name)
    and ``layers`` (optional) the layers whose RSV is measured; each is called with the
    parameters it names. Parameters: :data:`DEFICIT_FIT_KEYS`. The runs that differ only in
    ``deficit``, ``N`` and seed are one :func:`~dlnfusion.compare.deficit_sweep` call (its
    deficits, lengths and seeds in grid order).

    Per run: ``status``, ``test_acc``, ``unimodal_acc`` (modality), and per measured layer
    (``layer``) ``polarized``, ``dead``, ``mean_rsv`` and the units' ``rsv`` (layer, unit;
    NaN for a dead unit, and past a narrower layer's units).
    """

    model: Callable[..., Any]
    task: Callable[..., Any]
    deficit: Callable[..., Any]
    layers: Callable[..., Any] | None = None

    defaults = DEFICIT_FIT_KEYS

    def factories(self):
        return tuple(f for f in (self.model, self.task, self.deficit, self.layers)
                     if f is not None)

    def group(self, point, prepared):
        return json.dumps({k: repr(v) for k, v in sorted(point.items())
                           if k not in _SWEPT_DEFICIT_FIT})

    def run(self, points, prepared, seeds, mesh=None):
        from ...compare import deficit_sweep
        from ...results import Status

        p0 = points[0]
        names = list(dict.fromkeys(repr(p.get("deficit")) for p in points))
        lengths = list(dict.fromkeys(int(p["N"]) for p in points))
        uniq = list(dict.fromkeys(int(s) for s in seeds))
        first = {repr(p.get("deficit")): p for p in points}
        model, task = call(self.model, p0), call(self.task, p0)
        sw = deficit_sweep(
            model, task, [call(self.deficit, first[n]) for n in names], lengths, uniq,
            budget=int(p0["budget"]), start=int(p0["start"]),
            layers=None if self.layers is None else list(call(self.layers, p0)),
            n_rsv=int(p0["n_rsv"]), threshold=float(p0["threshold"]),
            rsv_seed=int(p0["rsv_seed"]), lr=float(p0["lr"]), momentum=float(p0["momentum"]),
            batch_size=int(p0["batch_size"]))
        at = tuple(np.array(a) for a in zip(*[
            (names.index(repr(p.get("deficit"))), lengths.index(int(p["N"])), uniq.index(int(s)))
            for p, s in zip(points, seeds)]))
        units = max(sw.rsv[l].shape[-1] for l in sw.layers)
        rsv = np.full((len(points), len(sw.layers), units), np.nan)
        for j, l in enumerate(sw.layers):
            rsv[:, j, :sw.rsv[l].shape[-1]] = sw.rsv[l][at]
        per_layer = {k: np.stack([getattr(sw, k)[l][at] for l in sw.layers], axis=1)
                     for k in ("polarized", "dead", "mean_rsv")}
        status = np.where(sw.diverged[at], Status.DIVERGED, Status.MAX_STEPS).astype(np.int8)
        return Batch({"status": status, "test_acc": sw.test_acc[at],
                      "unimodal_acc": sw.unimodal_acc[at], "rsv": rsv, **per_layer},
                     dims={"unimodal_acc": ("modality",), "rsv": ("layer", "unit"),
                           **{k: ("layer",) for k in per_layer}},
                     coords={"modality": np.array(task.names), "layer": np.array(sw.layers),
                             "unit": np.arange(units)})

    def describe(self):
        return {"runner": "DeficitFit", "factories": [source(f) for f in self.factories()]}
