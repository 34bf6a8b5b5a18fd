"""Sensory deficits of several kinds and lengths on a network trained with mini-batches: the
final accuracies and the Relative Source Variance of layers' units after a fixed budget of
normal training (Kleinman, Achille & Soatto, CVPR 2023, Figures 4-6).

:func:`deficit_sweep` trains, for every deficit k and length N, the same seeds (the same
initializations and batch order) for N epochs with the deficit and ``budget`` epochs without
it, and measures at the end: test accuracy with both views, each view's unimodal accuracy (the
other view blank), and the RSV of every unit of the chosen layers by the paper's sampling
procedure on the test set (:func:`~dlnfusion.compare.rsv_sampled`). A unit that does not
respond to either view (a dead ReLU: both source variances zero) has no RSV; it is counted in
``dead`` and left out of the histograms and of the polarized fraction.

One compiled training loop serves the whole sweep: every length is one :func:`~dlnfusion.fit`
call of K × S runs (deficit k's window is [start, start + N) for its S runs and empty for the
others, so all deficits are in every call's program), and the chunk of epochs per compiled call
is the greatest common divisor of the run lengths start + N + budget; between lengths only the
window bounds and the number of calls change. (A new program per deficit and network costs
~10 s of compilation on a 2-core CPU, more than training a digit network for 50 epochs.) At
N = 0 the K runs of a seed are the same run; they are trained K times, which keeps the batch
shape, and agree exactly.
"""
from __future__ import annotations

from math import gcd
from typing import NamedTuple, Sequence

import jax
import numpy as np

from .. import checks
from ..interventions.schedule import Deficit
from ..stats import Dataset
from ..training.epochs import fit
from .rsv import layer_activity, rsv_sampled

__all__ = ["DeficitSweep", "deficit_sweep", "POLARIZED"]

#: |RSV| above which a unit counts as polarized (responds to one source only).
POLARIZED = 0.9


class DeficitSweep(NamedTuple):
    """What :func:`deficit_sweep` measured for K deficits (``deficits``), ``lengths`` (n,)
    and ``seeds`` (S,).

    ``test_acc`` (K, n, S) and ``unimodal_acc`` (K, n, S, M) at the end of each run; ``curves``
    (a list over lengths of (K, S, T_n) arrays) the test accuracy at every recorded epoch and
    ``epochs`` the recorded epochs of each length; ``diverged`` (K, n, S). Per measured layer l
    (dicts keyed by layer, ``layers`` in the order asked): ``rsv[l]`` (K, n, S, units) per
    unit, NaN for dead units; ``polarized[l]`` (K, n, S) the fraction of live units with
    |RSV| > ``threshold``; ``dead[l]`` (K, n, S) the fraction of dead units; ``mean_rsv[l]``
    (K, n, S) the mean RSV of the live units."""

    deficits: tuple
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



def deficit_sweep(model, task, deficits, lengths: Sequence[int], seeds: Sequence[int] = (0,),
                  *, budget: int, layers: Sequence[int] | None = None, start: int = 0,
                  record_every: int | None = None, n_rsv: int = 64,
                  threshold: float = POLARIZED, rsv_seed: int = 0, **fit_kwargs) -> DeficitSweep:
    """Train ``model`` on ``task`` with each of ``deficits`` (a sequence of batch transforms
    such as :class:`~dlnfusion.interventions.ImageBlur`, or one) during epochs
    [start, start + N), then ``budget`` more epochs, for every N in ``lengths``; see the module
    docstring.

    ``layers``: the layers whose units' RSV is measured (default: the last hidden layer, the
    representation before the classifier, as in the paper); the model must be a two-view
    :class:`~dlnfusion.networks.FusionMLP` (or a wrapper with ``base``, e.g.
    :class:`~dlnfusion.networks.CrossReconstruction`). ``n_rsv``: fixed and varied samples per
    source of the RSV estimate (the draws for the i-th seed come from ``rsv_seed + i``).
    Other keywords go to :func:`dlnfusion.fit` (learning rate, batch size, momentum, ...).
    """
    deficits = tuple(deficits) if isinstance(deficits, (list, tuple)) else (deficits,)
    if not deficits:
        raise ValueError("deficits must name at least one batch transform")
    lengths = np.asarray([checks.nonnegative_int("lengths entry", n) for n in lengths], dtype=int)
    if lengths.size == 0:
        raise ValueError("lengths must name at least one deficit length")
    budget = checks.nonnegative_int("budget", budget)
    start = checks.nonnegative_int("start", start)
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
    K, S = len(deficits), len(seeds)
    views = _test_views(task)
    acc, uni, curves, eps, div, rsv_runs = [], [], [], [], [], []
    for N, T in zip(lengths, totals):
        ends = [np.repeat([start + int(N) if j == k else start for j in range(K)], S)
                for k in range(K)]
        windows = [Deficit(d, start, ends[k]) for k, d in enumerate(deficits)]
        h = fit(model, task, seeds * K, epochs=int(T), record_every=record_every,
                chunk_epochs=chunk, interventions=windows, **fit_kwargs)
        acc.append(h.test_acc[:, -1].reshape(K, S))
        uni.append(h.unimodal_acc[:, :, -1].reshape(K, S, -1))
        curves.append(h.test_acc.reshape(K, S, -1))
        eps.append(h.epoch)
        div.append(h.diverged.reshape(K, S))
        per_layer = []
        for layer in layers:
            rs = []
            for i in range(K * S):
                p = jax.tree_util.tree_map(lambda a: a[i], h.params)
                f = layer_activity(model, p, layer)
                rs.append(rsv_sampled(f, views, n_rsv, n_rsv, seed=rsv_seed + i % S).rsv)
            per_layer.append(np.stack(rs).reshape(K, S, -1))
        rsv_runs.append(per_layer)
    rsv, polarized, dead, mean_rsv = {}, {}, {}, {}
    for j, layer in enumerate(layers):
        r = np.stack([per[j] for per in rsv_runs], axis=1)        # (K, n, S, units)
        live = ~np.isnan(r)
        n_live = np.maximum(live.sum(-1), 1)
        rsv[layer] = r
        polarized[layer] = np.sum(live & (np.abs(np.nan_to_num(r)) > th), -1) / n_live
        dead[layer] = 1.0 - live.mean(-1)
        mean_rsv[layer] = np.where(live.any(-1), np.nansum(r, -1) / n_live, np.nan)
    return DeficitSweep(deficits, lengths, seeds, budget, np.stack(acc, 1), np.stack(uni, 1),
                        curves, eps, rsv, polarized, dead, mean_rsv, np.stack(div, 1), th,
                        layers)
