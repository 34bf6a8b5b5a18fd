"""dlnfusion: analytic theory and fast simulation of multimodal deep linear networks.

Importing dlnfusion turns on JAX's 64-bit mode (``jax_enable_x64``): theory-versus-simulation
comparisons need double precision. Pass float32 arrays yourself if you want single precision.
"""
import jax as _jax

_jax.config.update("jax_enable_x64", True)

from .stats import Dataset, Stats  # noqa: E402
from .networks import (NetworkSpec, Params, forward, init_params, layer_norms,  # noqa: E402
                       total_maps)
from .simulate import STATUS, Trajectory, init_batch, simulate, train  # noqa: E402
from . import theory  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Stats", "Dataset", "NetworkSpec", "Params", "init_params", "forward", "total_maps",
    "layer_norms", "Trajectory", "STATUS", "train", "simulate", "init_batch",
]
