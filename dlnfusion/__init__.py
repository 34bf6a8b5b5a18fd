"""dlnfusion: analytic theory and fast simulation of multimodal deep linear networks.

Importing dlnfusion leaves JAX's configuration as it is; dlnfusion computes in float64 where
its theory comparisons need it, inside a scope of its own (see :mod:`dlnfusion.precision`).
"""
from .precision import enable_float64, float64
from .stats import Dataset, Stats
from .networks import (CrossReconstruction, FusionCNN, FusionMLP, NetworkSpec, Params, forward,
                       init_batch, init_params, init_pathways, layer_norms, total_maps)
from .training import STATUS, History, Trajectory, fit, param_labels, simulate, train
from .data import FusionTask
from .interventions import Deficit, Gate, Lesion
from . import data, interventions, reduced, rules, theory

__version__ = "0.1.0"

__all__ = [
    "Stats", "Dataset", "NetworkSpec", "Params", "init_params", "forward", "total_maps",
    "layer_norms", "Trajectory", "STATUS", "train", "simulate", "init_batch", "param_labels",
    "float64", "enable_float64", "FusionMLP", "FusionCNN", "FusionTask", "fit", "History",
    "init_pathways", "CrossReconstruction", "Deficit", "Gate", "Lesion", "interventions",
]
