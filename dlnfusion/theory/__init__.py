"""Closed-form theory of multimodal linear networks.

Pure functions of statistics, network specifications and weights: nothing here trains a
network or steps its dynamics through time (solutions are closed forms or quadratures). What
integrates or iterates dynamics, even reduced ones, is a runner and lives in
:mod:`dlnfusion.reduced`; the rules the balancing methods apply (OGM's
coefficient, InfoReg's window, the Fisher trace) live once in :mod:`dlnfusion.rules`.
Every function states its assumptions and returns a :class:`Prediction` (or a richer value)
that says whether they hold. Derivations of every formula live in the repository's theory/
folder and run in the test suite.
"""
from .common import Prediction
from .saxe import (effective_init, effective_init_early, logistic_weight, mode_strength,
                   predict_times_early, saxe_late_fusion, typical_effective_init,
                   white_uncorrelated)
from .landscape import (Curvature, Manifold, fixed_points, minimum_curvature,
                        preference_regions, reduced_flow, saddle_loss, superficial_preference)
from .deep import (RANDOM_INIT_SMALL_B, alignment_escape_time, alignment_seeds, mode_after,
                   mode_potential,
                   branch_relation, deep_times, fusion_integral,
                   pathway_time,
                   pathway_trajectory, reduced_rhs, time_ratio_leading_order,
                   random_init_times, time_ratio_unequal, unequal_integral)
from .invariants import balance_invariants, norm_invariants
from .relu import (RELU_RATE_FACTOR, RELU_WEIGHT_FACTOR, predict_times_early_relu,
                   predict_times_relu)
from .timescales import (SHARP_TURN_ALIGN, Roles, TimePrediction, learning_order,
                         log_init_sensitivity, logistic_map_crossing,
                         misattribution, phase_directions, predict_times, roles,
                         time_ratio_eq9, time_ratio_from_drives, time_ratio_gradient_descent,
                         time_ratio_crossover, time_ratio_gradient_flow,
                         times_leading_order, turned_mode_power)
from .pathways import (SplitPrediction, pathway_flow, pathways_closed_form, predicted_split,
                       small_init_split, split_limit)
from .sources import (SourceDynamics, aligned_initial_map, aligned_params, deep_total_map,
                      half_times, mode_projections, shallow_total_map, source_dynamics,
                      source_strengths, task_modes, whitened_sources)
from .deficits import (DeficitDrives, DeficitTimes, deficit_drives, deficit_times, growth_rate,
                       initial_post_norm, projection_blur)
from .fisher import balanced_chain_params
from .balancing import inforeg_slowdown, initial_gram, noise_gram
from .sequence import (LearningSequence, Plateau, learning_sequence, partial_solution,
                       plateau_loss, residual_drive, sequence_init, stage_one_integral)

__all__ = [
    "Prediction", "effective_init", "logistic_weight", "mode_strength", "saxe_late_fusion",
    "typical_effective_init", "white_uncorrelated", "Manifold", "fixed_points", "Curvature",
    "minimum_curvature",
    "preference_regions", "reduced_flow", "saddle_loss", "superficial_preference", "Roles", "TimePrediction",
    "learning_order", "log_init_sensitivity", "logistic_map_crossing", "misattribution", "phase_directions",
    "predict_times", "roles", "time_ratio_eq9", "time_ratio_from_drives",
    "time_ratio_gradient_descent", "time_ratio_crossover", "turned_mode_power", "SHARP_TURN_ALIGN",
    "time_ratio_gradient_flow",
    "times_leading_order", "alignment_escape_time", "alignment_seeds", "random_init_times",
    "mode_potential", "mode_after",
    "RANDOM_INIT_SMALL_B", "branch_relation", "deep_times", "fusion_integral", "pathway_time",
    "pathway_trajectory", "reduced_rhs", "time_ratio_leading_order", "time_ratio_unequal",
    "unequal_integral", "balance_invariants", "norm_invariants",
    "effective_init_early", "predict_times_early", "predict_times_early_relu",
    "pathways_closed_form", "SplitPrediction", "predicted_split", "split_limit",
    "small_init_split", "pathway_flow",
    "SourceDynamics", "aligned_initial_map", "aligned_params", "deep_total_map",
    "half_times", "mode_projections", "shallow_total_map", "source_dynamics",
    "source_strengths", "task_modes", "whitened_sources",
    "DeficitDrives", "DeficitTimes", "deficit_drives", "deficit_times", "growth_rate",
    "initial_post_norm", "projection_blur",
    "balanced_chain_params", "initial_gram", "inforeg_slowdown", "noise_gram",
    "LearningSequence", "Plateau", "learning_sequence", "partial_solution",
    "plateau_loss", "residual_drive", "sequence_init", "stage_one_integral",
]
