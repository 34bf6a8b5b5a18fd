"""Parameter sweeps: a labeled grid of runs of any runner, batched, chunked, sharded and
resumable.

:class:`Sweep` is the engine (:mod:`dlnfusion.sweep.engine`); a runner says what a grid point
runs (:mod:`dlnfusion.sweep.runners`):

* the network simulators: :class:`Train`, and from the same initial weights :class:`Reduced`
  (their reduced dynamics alone), :class:`ClosedFormTimes` (the closed-form times),
  :class:`RandomInitTimes` (the closed form of four-layer networks from random weights),
  :class:`DeficitTheory` (the theory of a deficit window); :class:`TrainFinal` (training that
  keeps each run's final state), :class:`TrainSequence` (a learning sequence of M
  modalities);
* classifiers on samples: :class:`Fit`, :class:`DeficitFit` (deficits and the units' RSV);
* deep matrix completion: :class:`Completion`, :class:`CompletionSeries` (the tasks of
  Kleinman et al. 2023);
* parallel pathways: :class:`Pathways`, :class:`ReducedPathways`;
* the cross-source reconstruction objective: :class:`Reconstruction`;
* modality balancing (a :class:`Balancing`): :class:`Balance`, :class:`ReducedBalance`,
  :class:`OGMLaw`, :class:`BalanceFit`; the information amount: :class:`FisherTrace`;
* theory alone: :class:`Predict`;

or a subclass of :class:`Runner`. :func:`load` reopens a result; :class:`SweepInterrupted` is
what Ctrl-C raises; :func:`init_distributed` starts several processes.
"""
from .engine import Sweep, SweepInterrupted, init_distributed, load
from .runners import (Runner, Batch, Train, Reduced, Fit, Completion, Predict, DeficitTheory,
                     TrainFinal, TRAIN_KEYS, FIT_KEYS, COMPLETION_KEYS, CAVEAT_SEPARATOR, Pathways,
                     ReducedPathways, PATHWAY_KEYS, Reconstruction, RECONSTRUCTION_KEYS,
                     DeficitFit, DEFICIT_FIT_KEYS, Balancing, BALANCING_METHODS, Balance,
                     ReducedBalance, OGMLaw, BalanceFit, BALANCE_FIT_KEYS, FisherTrace,
                     FISHER_KEYS, TrainSequence, ClosedFormTimes, RandomInitTimes,
                     CompletionSeries)

__all__ = ["Sweep", "load", "SweepInterrupted", "init_distributed", "Runner", "Batch", "Train",
           "Reduced", "Fit", "Completion", "Predict", "DeficitTheory", "TrainFinal", "TRAIN_KEYS",
           "FIT_KEYS", "COMPLETION_KEYS", "CAVEAT_SEPARATOR", "Pathways", "ReducedPathways",
           "PATHWAY_KEYS", "Reconstruction", "RECONSTRUCTION_KEYS", "DeficitFit",
           "DEFICIT_FIT_KEYS", "Balancing", "BALANCING_METHODS", "Balance", "ReducedBalance",
           "OGMLaw", "BalanceFit", "BALANCE_FIT_KEYS", "FisherTrace", "FISHER_KEYS",
           "TrainSequence", "ClosedFormTimes", "RandomInitTimes", "CompletionSeries"]
