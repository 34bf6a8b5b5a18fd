"""The comparison layer: observables measured on trajectories, theory-versus-simulation
reports, and predictions measured on the runs of reduced networks (dlnfusion.reduced).

Definitions (paper Section 3.2 and the authors' implementation, see docs/conventions.md):

* the first-learned modality is the one whose total map first reaches half of its unimodal
  plateau Σ_yx_m Σ_m^{-1}; that time is t_A;
* t_B is the first time the other modality's total map reaches half of its final value (its
  block of the global solution Σ_yx Σ^{-1});
* the unimodal phase is sampled at t_mid = (t_A + t_B)/2: plateau value and plateau loss;
* mis-attribution is (W_A(t_mid) − W_A(end))·W_A(end)/‖W_A(end)‖².
"""
from .measure import (AccuracyTimes, PhaseMeasurement, measure_accuracy_times, crossings_complete,
                      measure_unimodal_phase)
from .predict import predict_unimodal_phase
from .report import (THEORY_COLUMNS, Comparison, compare, relative_error, theory_columns, to_json,
                     unimodal_report)

__all__ = ["PhaseMeasurement", "measure_unimodal_phase", "AccuracyTimes", "measure_accuracy_times", "crossings_complete", "predict_unimodal_phase",
           "THEORY_COLUMNS", "Comparison", "compare", "relative_error", "theory_columns", "unimodal_report",
           "to_json"]
from .rsv import (SAMPLINGS, RSVSample, layer_activity, rsv_from_variances, rsv_histogram,
                  rsv_mc_std, rsv_observable, rsv_population, rsv_sampled, source_covariances,
                  source_variances, unit_maps)

__all__ += ["SAMPLINGS", "RSVSample", "layer_activity", "rsv_from_variances", "rsv_histogram",
            "rsv_mc_std", "rsv_observable", "rsv_population", "rsv_sampled",
            "source_covariances", "source_variances", "unit_maps"]
from .deficit_sweep import POLARIZED, DeficitSweep, deficit_sweep  # noqa: E402

__all__ += ["DeficitSweep", "deficit_sweep", "POLARIZED"]
from .fisher import fisher_observable, fisher_sample_observable, fisher_sampled

__all__ += ["fisher_observable", "fisher_sample_observable", "fisher_sampled"]
from .sequence import SequenceMeasurement, measure_learning_sequence  # noqa: E402

__all__ += ["SequenceMeasurement", "measure_learning_sequence"]
from .sources import max_deviation, source_errors, worst_source_errors  # noqa: E402

__all__ += ["max_deviation", "source_errors", "worst_source_errors"]
