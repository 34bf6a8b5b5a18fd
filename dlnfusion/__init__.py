"""dlnfusion: analytic theory and fast simulation of multimodal deep linear networks.

The front holds what a user calls: the data and network types, every runner (``train``,
``simulate``, ``fit``, ``train_completion``, ``train_reconstruction``), the result contract they
all return (``Run``, ``Status``, ``first_crossing``), the intervention windows, and the
submodules ``theory``, ``reduced``, ``compare``, ``interventions``, ``transforms``, ``data``,
``sweep`` and ``plot`` (imported on first use). ``dir(dlnfusion)`` lists exactly ``__all__``.

Importing dlnfusion leaves JAX's configuration as it is; dlnfusion computes in float64 where
its theory comparisons need it, inside a scope of its own (see ``dlnfusion.float64``).
"""
import importlib as _importlib

from .precision import enable_float64, float64
from .stats import Dataset, Stats
from .networks import (CrossReconstruction, FusionCNN, FusionMLP, NetworkSpec, Params, forward,
                       init_batch, init_params, init_pathways, layer_norms, total_maps)
from .results import Run, Status, first_crossing
from .training import (CompletionRuns, CompletionTask, History, ReconstructionRun, Trajectory,
                       fit, param_labels, simulate, train, train_completion,
                       train_reconstruction)
from .data import FusionTask
from .interventions import Deficit, Gate, Lesion

__version__ = "0.1.0"

#: Submodules of the front, imported when first used (``dlnfusion.theory``, ...).
SUBMODULES = ("theory", "reduced", "compare", "interventions", "transforms", "data", "sweep",
              "plot")

__all__ = [
    # data and networks
    "Stats", "Dataset", "FusionTask", "NetworkSpec", "Params", "init_params", "init_batch",
    "init_pathways", "forward", "total_maps", "layer_norms", "FusionMLP", "FusionCNN",
    "CrossReconstruction",
    # runners and their results
    "train", "simulate", "fit", "train_completion", "train_reconstruction", "param_labels",
    "Run", "Status", "first_crossing", "Trajectory", "History", "CompletionRuns",
    "ReconstructionRun",
    # interventions
    "Deficit", "Gate", "Lesion", "CompletionTask",
    # precision
    "float64", "enable_float64",
    # submodules
    *SUBMODULES,
]


def __getattr__(name):
    if name in SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dlnfusion' has no attribute {name!r}; the public names are "
                         f"listed in dlnfusion.__all__")


def __dir__():
    return sorted(__all__)
