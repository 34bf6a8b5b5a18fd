"""Closed-form theory of multimodal linear networks.

Pure functions of statistics, network specifications and weights: nothing here trains a
network or steps its dynamics through time (solutions are closed forms or quadratures). What
integrates or iterates dynamics, even reduced ones, is a runner and lives in
:mod:`dlnfusion.reduced`; the rules the balancing methods apply (OGM's
coefficient, InfoReg's window, the Fisher trace) live once in :mod:`dlnfusion.rules`.
The front below holds the functions a user calls; the building blocks stay one level down,
as ``theory.<module>.<name>`` (``theory.deep.pathway_time``, ``theory.sources.task_modes``):
``saxe`` (two-layer solutions and effective initial values), ``timescales`` (time ratios and
times of two-layer networks), ``landscape`` (fixed points, saddles, curvature, the reduced
flow), ``deep`` (deep leading order and random initialization), ``relu``, ``sequence`` (three
or more modalities), ``sources`` and ``deficits`` (critical periods), ``pathways``,
``balancing`` and ``fisher`` (the balancing methods), ``invariants``.
Every function states its assumptions and returns a :class:`Prediction` (or a richer value)
that says whether they hold; every function that predicts learning times returns one of the
:class:`Times` family (:class:`TimePrediction` for two modalities, ``deficits.DeficitTimes``
being one, ``sequence.LearningSequence`` for M). Derivations of every formula live in the
repository's theory/ folder and run in the test suite.
"""
from .common import Prediction
from .timescales import (TimePrediction, Times, learning_order, misattribution,
                         phase_directions, predict_times, roles, time_ratio_eq9,
                         time_ratio_gradient_descent, time_ratio_gradient_flow,
                         times_leading_order)
from .saxe import effective_init, effective_init_early, predict_times_early, saxe_late_fusion
from .relu import predict_times_relu
from .landscape import fixed_points, minimum_curvature, superficial_preference
from .deep import (alignment_seeds, deep_times, fusion_integral, random_init_times,
                   time_ratio_leading_order, time_ratio_unequal)
from .sequence import learning_sequence
from .sources import source_dynamics
from .deficits import deficit_times, initial_post_norm
from .pathways import pathways_closed_form, predicted_split
from .balancing import inforeg_slowdown, initial_gram, noise_gram
from .invariants import balance_invariants
# The building blocks, one level down: theory.<module>.<name>.
from . import (balancing, common, deep, deficits, fisher, invariants, landscape, pathways, relu,
               saxe, sequence, sources, timescales)  # noqa: F401

__all__ = [
    "Prediction", "Times", "TimePrediction", "predict_times", "predict_times_early",
    "predict_times_relu", "effective_init", "effective_init_early", "phase_directions",
    "roles", "learning_order", "misattribution", "time_ratio_gradient_flow",
    "time_ratio_gradient_descent", "time_ratio_eq9", "times_leading_order", "saxe_late_fusion",
    "fixed_points", "minimum_curvature", "superficial_preference", "time_ratio_leading_order",
    "deep_times", "time_ratio_unequal", "random_init_times", "fusion_integral",
    "learning_sequence", "source_dynamics", "deficit_times", "initial_post_norm",
    "pathways_closed_form", "predicted_split", "inforeg_slowdown", "balance_invariants",
    "initial_gram", "noise_gram", "alignment_seeds",
]


def __dir__():
    return sorted(__all__) + ["balancing", "deep", "deficits", "fisher", "invariants",
                              "landscape", "pathways", "relu", "saxe", "sequence", "sources",
                              "timescales"]
