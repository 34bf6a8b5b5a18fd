"""Training: objectives, loop state, the gradient-descent kernel and its batch driver,
gradient flow, observables and the trajectory record.

Public entry points: :func:`train`, :func:`simulate` (and :func:`init_batch`, re-exported from
:mod:`dlnfusion.networks`), :class:`Trajectory`, the observables (:class:`Snapshot`,
:class:`Record`, :class:`Crossing`) and :func:`param_labels` for per-group optax transforms; :func:`fit` for mini-batch training on
samples (with :class:`History`, its per-epoch record, and :func:`sgd`); :func:`train_completion`
(deep matrix completion, its deficit task a :class:`CompletionTask`) and
:func:`train_reconstruction` (population-level training with cross-source reconstruction).
"""
from ..networks import init_batch
from .api import METHODS, simulate, train
from .completion import CompletionRuns, CompletionTask, train_completion
from .epochs import FIT_LOSSES, History, fit, sgd
from .labels import param_labels
from .objectives import LOSSES, Moments, Samples
from .observables import Crossing, Record, Snapshot, default_observables, mode_strengths
from .reconstruction import ReconstructionRun, reconstruction_loss, train_reconstruction
from .trajectory import Trajectory

__all__ = ["train", "simulate", "init_batch", "Trajectory", "METHODS", "LOSSES",
           "Moments", "Samples", "Snapshot", "Record", "Crossing", "default_observables",
           "param_labels", "fit", "sgd", "History", "FIT_LOSSES", "mode_strengths",
           "train_completion", "CompletionRuns", "CompletionTask", "train_reconstruction",
           "ReconstructionRun", "reconstruction_loss"]
