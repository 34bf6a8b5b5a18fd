"""What a :class:`~dlnfusion.sweep.Sweep` drives: the runner protocol and the toolkit's runners.

A runner turns grid points into results. It declares

* ``defaults``: its own parameters with their default values (a grid or ``fixed`` may set them,
  and the factories' arguments are parameters too: :meth:`Runner.parameters`);
* how configurations batch: :meth:`Runner.group` maps a point to a key, and the runs (point ×
  seed) of one key run together, cut into chunks of at most :meth:`Runner.chunk_size` runs; one
  chunk is one call of :meth:`Runner.run`, i.e. one compiled call for the batched runners;
* which observables land in the Dataset: :meth:`Runner.run` returns a :class:`Batch` of
  arrays whose leading axis is the chunk's runs, with named extra dimensions (``time``,
  ``modality``, ...) and their coordinates; :meth:`Runner.columns` adds values per grid point
  (the theory of that point), and :attr:`Runner.labels` turns integer codes into names.

The engine does the rest for every runner: the labeled Dataset, chunk files written as they
finish, resume with any chunking, sharding over local devices (for runners that are
``shardable``) and several processes.

The runners, by module: :mod:`~dlnfusion.sweep.runners.base` (the protocol),
:mod:`~dlnfusion.sweep.runners.networks`, :mod:`~dlnfusion.sweep.runners.classifiers`,
:mod:`~dlnfusion.sweep.runners.completion`, :mod:`~dlnfusion.sweep.runners.predict`,
:mod:`~dlnfusion.sweep.runners.pathways`, :mod:`~dlnfusion.sweep.runners.balancing` and
:mod:`~dlnfusion.sweep.runners.reconstruction`. :class:`Train` (the network simulators, :func:`dlnfusion.train`),
:class:`Reduced` (their reduced dynamics alone, the prediction without training), :class:`Fit`
(mini-batch :func:`dlnfusion.fit` of classifiers on samples), :class:`Completion` (deep matrix
completion, :func:`dlnfusion.train_completion`; :class:`CompletionSeries` on the tasks of
Kleinman et al. 2023) and :class:`Predict` (theory alone: a function
of the parameters, no training). :class:`Pathways` trains parallel deep linear pathways with
gates and lesions, :class:`ReducedPathways` runs their exact per-mode reduced dynamics, :class:`Reconstruction` trains
linear fusion networks with a cross-source reconstruction objective, :class:`DeficitFit` trains
classifiers with a deficit of N epochs and measures their units' RSV.
:class:`Balance` trains with a modality-balancing method (a :class:`Balancing`),
:class:`ReducedBalance` and :class:`OGMLaw` run its exact reduced dynamics and OGM-GE's law,
:class:`BalanceFit` trains classifiers with one. :class:`FisherTrace` records every branch's
information amount against its reduced prediction, with the prime learning window.
Subclass :class:`Runner` for another.
"""
from .base import CAVEAT_SEPARATOR, Batch, Runner
from .predict import Predict
from .networks import (Train, Reduced, DeficitTheory, TrainFinal,
                       TRAIN_KEYS, TrainSequence, ClosedFormTimes, RandomInitTimes)
from .classifiers import Fit, FIT_KEYS, DeficitFit, DEFICIT_FIT_KEYS
from .completion import Completion, COMPLETION_KEYS, CompletionSeries
from .pathways import Pathways, ReducedPathways, PATHWAY_KEYS
from .balancing import (Balancing, BALANCING_METHODS, Balance,
                        ReducedBalance, OGMLaw, BalanceFit,
                        BALANCE_FIT_KEYS, FisherTrace, FISHER_KEYS)
from .reconstruction import Reconstruction, RECONSTRUCTION_KEYS

__all__ = ["Runner", "Batch", "Train", "Reduced", "Fit", "Completion", "Predict", "DeficitTheory",
           "TrainFinal", "TRAIN_KEYS", "FIT_KEYS", "COMPLETION_KEYS", "CAVEAT_SEPARATOR",
           "Pathways", "ReducedPathways", "PATHWAY_KEYS", "Reconstruction", "RECONSTRUCTION_KEYS",
           "DeficitFit", "DEFICIT_FIT_KEYS", "Balancing", "BALANCING_METHODS", "Balance",
           "ReducedBalance", "OGMLaw", "BalanceFit", "BALANCE_FIT_KEYS", "FisherTrace",
           "FISHER_KEYS", "TrainSequence", "ClosedFormTimes", "RandomInitTimes",
           "CompletionSeries"]
