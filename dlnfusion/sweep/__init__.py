"""Parameter sweeps: a labeled grid of runs of any runner, batched, chunked, sharded and
resumable.

:class:`Sweep` is the engine (:mod:`dlnfusion.sweep.engine`); a runner says what a grid point
runs (:mod:`dlnfusion.sweep.runners`): :class:`Train` (the network simulators), :class:`Reduced` (their reduced dynamics
alone), :class:`Fit`
(mini-batch training of classifiers), :class:`Completion` (deep matrix completion),
:class:`Predict` (theory alone), or a subclass of
:class:`Runner`. :func:`load` reopens a result; :class:`SweepInterrupted` is what Ctrl-C
raises; :func:`init_distributed` starts several processes.
"""
from .engine import Sweep, SweepInterrupted, init_distributed, load
from .runners import (CAVEAT_SEPARATOR, COMPLETION_KEYS, FIT_KEYS, TRAIN_KEYS, Batch, Completion, Fit, Predict,
                      Reduced, Runner, Train)

__all__ = ["Sweep", "load", "SweepInterrupted", "init_distributed", "Runner", "Batch", "Train",
           "Reduced", "Fit", "Completion", "Predict", "TRAIN_KEYS", "FIT_KEYS", "COMPLETION_KEYS",
           "CAVEAT_SEPARATOR"]
