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
from .sequence import (SequenceMeasurement, finite_seed_mean,  # noqa: E402
                       measure_learning_sequence, nan_padded, per_seed_sequence_case,
                       point_sequence, sequence_case, sequence_summary, sequence_time_errors)

__all__ += ["SequenceMeasurement", "measure_learning_sequence", "point_sequence",
            "finite_seed_mean", "nan_padded", "sequence_case", "per_seed_sequence_case",
            "sequence_time_errors", "sequence_summary"]
from .sources import (max_deviation, run_source_errors, source_errors,  # noqa: E402
                      source_report, worst_source_errors)

__all__ += ["max_deviation", "source_errors", "run_source_errors", "source_report",
            "worst_source_errors"]
from .summaries import (error_stats, finite_mean_std, mean_fit_curves,  # noqa: E402
                        point_errors, unimodal_run_notes)

__all__ += ["point_errors", "error_stats", "unimodal_run_notes", "finite_mean_std",
            "mean_fit_curves"]
from .balancing import (balancing_points, balancing_summary, caveat_list,  # noqa: E402
                        finite_list, law_width_rows, law_width_summary, mean_sd,
                        paired_differences, relative_change, true_runs)

__all__ += ["finite_list", "caveat_list", "balancing_points", "balancing_summary",
            "law_width_rows", "law_width_summary", "mean_sd", "paired_differences",
            "true_runs", "relative_change"]
from .delays import (arm_delays, delay_lines, delay_points, delay_summary,  # noqa: E402
                     finite_error_stats)

__all__ += ["delay_points", "delay_lines", "delay_summary", "finite_error_stats", "arm_delays"]
from .completion import completion_curves, completion_entries, switch_claims  # noqa: E402

__all__ += ["completion_entries", "completion_curves", "switch_claims"]
from .deficit_records import (deficit_claims, deficit_fit_points, depth_claim,  # noqa: E402
                             find_point, mean_sd_sample, paired_change, reconstruction_answers,
                             rsv_point)

__all__ += ["find_point", "rsv_point", "deficit_fit_points", "paired_change", "mean_sd_sample",
            "depth_claim", "deficit_claims", "reconstruction_answers"]
