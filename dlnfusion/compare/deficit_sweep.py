"""Sensory deficits of several lengths on a network trained with mini-batches: the final
accuracies and the Relative Source Variance of a layer's units after a fixed budget of normal
training (Kleinman, Achille & Soatto, CVPR 2023, Figures 4-6).

:func:`deficit_sweep` trains, for every deficit length N, the same seeds (the same
initializations and batch order) for N epochs with the deficit and ``budget`` epochs without
it, and measures at the end: test accuracy with both views, each view's unimodal accuracy (the
other view blank), and the RSV of every unit of ``layer`` by the paper's sampling procedure on
the test set (:func:`~dlnfusion.compare.rsv_sampled`). A unit that does not respond to either
view (a dead ReLU: both source variances zero) has no RSV; it is counted in ``dead`` and left
out of the histograms and of the polarized fraction.

All lengths train with one compiled loop: the chunk of epochs per compiled call is the greatest
common divisor of the run lengths N + budget, so only the window bounds and the number of calls
change between lengths.
"""
from __future__ import annotations

from math import gcd
from typing import NamedTuple, Sequence

import jax
import numpy as np

from ..interventions.schedule import Deficit
from ..stats import Dataset
from ..training.epochs import fit
from .rsv import layer_activity, rsv_sampled

__all__ = ["DeficitSweep", "deficit_sweep", "POLARIZED"]

#: |RSV| above which a unit counts as polarized (responds to one source only).
POLARIZED = 0.9


class DeficitSweep(NamedTuple):
    """What :func:`deficit_sweep` measured; ``lengths`` (n,), ``seeds`` (S,).

    ``test_acc`` (n, S) and ``unimodal_acc`` (n, S, M) at the end of each run; ``curves``
    (n, S, T_n) the test accuracy at every recorded epoch (a list over lengths, runs of
    different lengths record different numbers of epochs) and ``epochs`` the recorded epochs of
    each; ``diverged`` (n, S). Per measured layer l (dicts keyed by layer, ``layers`` in the
    order asked): ``rsv[l]`` (n, S, units) per unit, NaN for dead units; ``polarized[l]``
    (n, S) the fraction of live units with |RSV| > ``threshold``; ``dead[l]`` (n, S) the
    fraction of dead units; ``mean_rsv[l]`` (n, S) the mean RSV of the live units."""

    lengths: np.ndarray
    seeds: tuple
    budget: int
    test_acc: np.ndarray
    unimodal_acc: np.ndarray
    curves: list
    epochs: list
    rsv: dict
    polarized: dict
    dead: dict
    mean_rsv: dict
    diverged: np.ndarray
    threshold: float
    layers: tuple


def _test_views(task) -> Dataset:
    xs = tuple(np.asarray(x, float).reshape(x.shape[0], -1) for x in task.test_x)
    return Dataset(xs, np.zeros((task.n_test, 1)), task.names)


def _nonneg_int(name, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    return int(v)


def deficit_sweep(model, task, deficit, lengths: Sequence[int], seeds: Sequence[int] = (0,),
                  *, budget: int, layers: Sequence[int] | None = None, start: int = 0,
                  record_every: int | None = None, n_rsv: int = 64,
                  threshold: float = POLARIZED, rsv_seed: int = 0, **fit_kwargs) -> DeficitSweep:
    """Train ``model`` on ``task`` with ``deficit`` (a batch transform such as
    :class:`~dlnfusion.interventions.ImageBlur`) during epochs [start, start + N), then
    ``budget`` more epochs, for every N in ``lengths``; see the module docstring.

    ``layers``: the layers whose units' RSV is measured (default: the last hidden layer, the
    representation before the classifier, as in the paper); the model must be a two-view
    :class:`~dlnfusion.networks.FusionMLP` (or a wrapper with ``base``, e.g.
    :class:`~dlnfusion.networks.CrossReconstruction`). ``n_rsv``: fixed and varied samples per
    source of the RSV estimate. Other keywords go to :func:`dlnfusion.fit` (learning rate,
    batch size, momentum, ...).
    """
    lengths = np.asarray([_nonneg_int("lengths entry", n) for n in lengths], dtype=int)
    if lengths.size == 0:
        raise ValueError("lengths must name at least one deficit length")
    budget = _nonneg_int("budget", budget)
    start = _nonneg_int("start", start)
    totals = start + lengths + budget
    if np.any(totals < 1):
        raise ValueError("every run needs at least one epoch (start + N + budget >= 1)")
    th = float(threshold)
    if not 0.0 < th < 1.0:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
    base = getattr(model, "base", model)
    depth = base.spec.depth
    layers = (depth - 1,) if layers is None else layers
    if isinstance(layers, (int, np.integer)) or not isinstance(layers, (list, tuple)) \
            or not layers:
        raise ValueError(f"layers must be a non-empty list of layers, got {layers!r}")
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or \
                not 1 <= layer <= depth:
            raise ValueError(f"layers: every layer must be an integer in 1..{depth}, got "
                             f"{layer!r}")
    layers = tuple(int(l) for l in layers)
    chunk = 0
    for t in totals:
        chunk = gcd(chunk, int(t))
    if record_every is None:
        record_every = chunk
    elif chunk % record_every:
        raise ValueError(f"record_every ({record_every}) must divide every run length "
                         f"start + N + budget ({sorted(set(totals.tolist()))})")
    seeds = tuple(int(s) for s in seeds)
    views = _test_views(task)
    out = {k: [] for k in ("acc", "uni", "curve", "ep", "rsv", "div")}
    for N, T in zip(lengths, totals):
        h = fit(model, task, seeds, epochs=int(T), record_every=record_every,
                chunk_epochs=chunk, interventions=[Deficit(deficit, start, start + int(N))],
                **fit_kwargs)
        out["acc"].append(h.test_acc[:, -1])
        out["uni"].append(h.unimodal_acc[:, :, -1])
        out["curve"].append(h.test_acc)
        out["ep"].append(h.epoch)
        out["div"].append(h.diverged)
        per_layer = []
        for layer in layers:
            rs = []
            for i in range(len(seeds)):
                p = jax.tree_util.tree_map(lambda a: a[i], h.params)
                f = layer_activity(model, p, layer)
                rs.append(rsv_sampled(f, views, n_rsv, n_rsv, seed=rsv_seed + i).rsv)
            per_layer.append(np.stack(rs))
        out["rsv"].append(per_layer)
    rsv, polarized, dead, mean_rsv = {}, {}, {}, {}
    for j, layer in enumerate(layers):
        r = np.stack([per[j] for per in out["rsv"]])
        live = ~np.isnan(r)
        n_live = np.maximum(live.sum(-1), 1)
        rsv[layer] = r
        polarized[layer] = np.sum(live & (np.abs(np.nan_to_num(r)) > th), -1) / n_live
        dead[layer] = 1.0 - live.mean(-1)
        mean_rsv[layer] = np.where(live.any(-1), np.nansum(r, -1) / n_live, np.nan)
    return DeficitSweep(lengths, seeds, budget, np.stack(out["acc"]), np.stack(out["uni"]),
                        out["curve"], out["ep"], rsv, polarized, dead, mean_rsv,
                        np.stack(out["div"]), th, layers)
