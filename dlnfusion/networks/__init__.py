"""Fusion networks: specification and parameters, initialization, maps computed from weights."""
from .spec import ACTIVATIONS, NetworkSpec, Params
from .init import INIT_SCHEMES, aligned_directions, init_batch, init_params
from .maps import forward, layer_norms, total_maps
from .classifiers import FusionCNN, FusionMLP, branch_parameters
from .pathways import init_pathways
from .reconstruction import CrossReconstruction

__all__ = ["NetworkSpec", "Params", "ACTIVATIONS", "INIT_SCHEMES", "init_params", "init_batch",
           "aligned_directions", "forward", "total_maps", "layer_norms", "FusionMLP", "FusionCNN",
           "init_pathways", "CrossReconstruction", "branch_parameters"]
