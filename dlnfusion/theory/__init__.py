"""Closed-form theory of multimodal linear networks.

Every function states its assumptions and returns a :class:`Prediction` (or a richer value)
that says whether they hold. Derivations of every formula live in the repository's theory/
folder and run in the test suite.
"""
from .common import Prediction
from .saxe import (effective_init, logistic_weight, mode_strength, saxe_late_fusion,
                   typical_effective_init, white_uncorrelated)
from .landscape import (Manifold, fixed_points, preference_regions, saddle_loss,
                        superficial_preference)
from .timescales import (Roles, TimePrediction, learning_order, log_init_sensitivity,
                         logistic_map_crossing,
                         misattribution, phase_directions, predict_times, roles,
                         time_ratio_eq9, time_ratio_gradient_flow, times_leading_order)

__all__ = [
    "Prediction", "effective_init", "logistic_weight", "mode_strength", "saxe_late_fusion",
    "typical_effective_init", "white_uncorrelated", "Manifold", "fixed_points",
    "preference_regions", "saddle_loss", "superficial_preference", "Roles", "TimePrediction",
    "learning_order", "log_init_sensitivity", "logistic_map_crossing", "misattribution", "phase_directions",
    "predict_times", "roles", "time_ratio_eq9", "time_ratio_gradient_flow",
    "times_leading_order",
]
