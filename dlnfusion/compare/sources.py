"""Simulated source and mode strengths against a closed form (dlnfusion.theory.sources).

A feature is a source m (its strength w_m = ⟨W_m, Σ^{yx}_m⟩/‖Σ^{yx}_m‖ on a reference task)
or a mode α of that task (u_αᵀ W v_α). The deviation of a run from the closed form is, per
feature, max over the recorded times of |sim(t) − theory(t)| divided by |theory(∞)| for an
enabled feature, and the absolute max for a disabled source (whose limit may be 0).
"""
from __future__ import annotations

import numpy as np

__all__ = ["max_deviation", "source_errors", "run_source_errors", "source_report",
           "worst_source_errors"]


def max_deviation(sim, theory, limit, absolute=None):
    """(relative, absolute) per feature (last axis) of trajectories ``sim`` and ``theory``
    (time, feature): max_t |sim − theory| / |limit| where ``absolute`` is False, NaN
    elsewhere; max_t |sim − theory| where ``absolute`` is True, NaN elsewhere. ``absolute``: a
    boolean mask over the features (default: none)."""
    dev = np.max(np.abs(np.asarray(sim, float) - np.asarray(theory, float)), axis=0)
    mask = np.zeros(dev.shape, bool) if absolute is None else np.asarray(absolute, bool)
    rel = np.where(mask, np.nan, dev / np.where(mask, 1.0, np.abs(np.asarray(limit, float))))
    return rel, np.where(mask, dev, np.nan)


def _get(theory, name):
    return np.asarray(getattr(theory, name), float)


def source_errors(maps, reference, theory, half_time_sim, disabled=()) -> dict:
    """Compare one run's total maps with the closed form.

    ``maps`` (time, d_out, D): the run's total map at the times where ``theory`` is given;
    ``reference``: the full task (:class:`~dlnfusion.Stats`) on which strengths are measured;
    ``theory``: anything with ``source_strength`` (time, M), ``source_limit`` (M,),
    ``mode_strength`` (time, r), ``mode_limit`` (r,) and ``half_time`` (M,) attributes (a
    :class:`~dlnfusion.theory.sources.SourceDynamics`, or a Dataset with those variables);
    ``half_time_sim`` (M,): the run's half-learning times; ``disabled``: the names of the
    disabled sources. Returns ``source_strength`` (time, M) and ``mode_strength`` (time, r)
    of the run and, per feature, ``max_rel_error_sources`` (NaN at a disabled source),
    ``max_abs_error_disabled_source`` (NaN at an enabled one), ``max_rel_error_modes`` and
    ``rel_error_half_times`` (|t_sim − t_theory|/t_theory, NaN without a half time).
    """
    from ..theory.sources import mode_projections, source_strengths

    sim_src = source_strengths(maps, reference)
    sim_mode = mode_projections(maps, reference)
    disabled = (disabled,) if isinstance(disabled, str) else tuple(disabled or ())
    mask = np.array([n in disabled for n in reference.names])
    rel_s, abs_s = max_deviation(sim_src, _get(theory, "source_strength"),
                                 _get(theory, "source_limit"), mask)
    rel_m, _ = max_deviation(sim_mode, _get(theory, "mode_strength"), _get(theory, "mode_limit"))
    half = _get(theory, "half_time")
    return {"source_strength": sim_src, "mode_strength": sim_mode,
            "max_rel_error_sources": rel_s, "max_abs_error_disabled_source": abs_s,
            "max_rel_error_modes": rel_m,
            "rel_error_half_times": np.abs(np.asarray(half_time_sim, float) - half) / half}


def worst_source_errors(runs, accept: float) -> dict:
    """The largest of each measure of :func:`source_errors` over ``runs`` (mappings holding
    its per-feature measures, None or NaN where undefined), with ``within_acceptance``: both
    relative errors (sources, modes) at most ``accept``. Keys ``max_rel_error_sources``,
    ``max_rel_error_modes``, ``max_abs_error_disabled_source``, ``max_rel_error_half_times``."""
    def worst(key):
        vals = [float(v) for r in runs for v in r[key] if v is not None and np.isfinite(v)]
        return float(max(vals))

    out = {k: worst(k) for k in ("max_rel_error_sources", "max_rel_error_modes",
                                 "max_abs_error_disabled_source")}
    out["max_rel_error_half_times"] = worst("rel_error_half_times")
    out["within_acceptance"] = bool(max(out["max_rel_error_sources"],
                                        out["max_rel_error_modes"]) <= accept)
    return out


def run_source_errors(run, reference, theory, disabled=()) -> tuple:
    """:func:`source_errors` of one training run and the JSON entries that report it.

    ``run``: one run of a :class:`~dlnfusion.sweep.Train` Dataset with half-learning times
    (``map_<name>`` per source of ``reference``, ``t_half`` per source, ``status``), the
    other arguments as for :func:`source_errors`. Returns ``(errors, entries)``: the dict of
    :func:`source_errors`, and ``half_time_sim``, ``max_rel_error_sources``,
    ``max_abs_error_disabled_source``, ``rel_error_half_times`` (lists, None where undefined),
    ``max_rel_error_modes`` (a list) and ``status`` (a string)."""
    maps = np.concatenate([run[f"map_{n}"].values for n in reference.names], axis=-1)
    t_sim = run["t_half"].values
    err = source_errors(maps, reference, theory, t_sim, disabled)
    keys = ("max_rel_error_sources", "max_abs_error_disabled_source", "rel_error_half_times")
    return err, {"half_time_sim": _finite_list(t_sim), **{k: _finite_list(err[k]) for k in keys},
                 "max_rel_error_modes": err["max_rel_error_modes"].tolist(),
                 "status": str(run["status"].values)}


def source_report(theory, runs: dict, reference, disabled=(), keep=slice(None)) -> dict:
    """One configuration's closed form against its training runs, as JSON entries.

    ``theory``: one point of a sweep of :func:`~dlnfusion.theory.sources.source_predictions`
    (a Dataset row); ``runs``: name → one run of a training sweep of the same configuration
    (as for :func:`run_source_errors`); ``reference`` and ``disabled`` as for
    :func:`source_errors`; ``keep``: the records to report (an index or slice of the time
    axis). Returns the closed form's ``singular_values``, ``source_limit``, ``mode_limit`` and
    ``half_time_theory``; ``fraction_theory`` and ``fraction_sim`` (the first run), the
    fractions learned w_m/‖R_m‖ (R = ``reference``'s Σ^{yx}) at the records ``keep``; and
    under each name of ``runs``, that run's entries of :func:`run_source_errors`."""
    norms = np.linalg.norm(np.asarray(reference.sigma_yx, float), axis=0)
    errors = {name: run_source_errors(run, reference, theory, disabled)
              for name, run in runs.items()}
    first = next(iter(errors.values()))[0]
    return {**{k: theory[k].values.tolist() for k in ("singular_values", "source_limit",
                                                      "mode_limit")},
            "half_time_theory": _finite_list(theory["half_time"].values),
            "fraction_theory": (theory["source_strength"].values[keep] / norms).tolist(),
            "fraction_sim": (first["source_strength"][keep] / norms).tolist(),
            **{name: entries for name, (_, entries) in errors.items()}}


def _finite_list(a) -> list:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(a, float)]
