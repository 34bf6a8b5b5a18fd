"""Theory-versus-simulation reports: comparisons, the theory columns of a configuration, JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .. import theory as th
from ..training import Trajectory
from .measure import measure_unimodal_phase

__all__ = ["Comparison", "compare", "relative_error", "theory_columns", "unimodal_report",
           "to_json"]


def relative_error(value, reference):
    """|value − reference| / |reference| (inf where the reference is 0 and the value is not)."""
    value, reference = np.asarray(value, float), np.asarray(reference, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.abs(value - reference) / np.abs(reference)
    return np.where((value == reference), 0.0, err)


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else (None if np.isnan(v) else str(v))


@dataclass(frozen=True)
class Comparison:
    """One quantity: its theoretical value and the simulated value of every run."""

    name: str
    theory: float
    simulated: tuple
    note: str = ""

    @property
    def mean(self) -> float:
        s = np.asarray(self.simulated, float)
        return float(np.nanmean(s)) if np.any(np.isfinite(s)) else float("nan")

    @property
    def std(self) -> float:
        s = np.asarray(self.simulated, float)
        return float(np.nanstd(s)) if np.any(np.isfinite(s)) else float("nan")

    @property
    def relative_error(self) -> float:
        """Relative error of the theory against the mean of the simulated values."""
        return float(relative_error(self.theory, self.mean))

    @property
    def absolute_error(self) -> float:
        return float(abs(self.theory - self.mean))

    def to_dict(self) -> dict:
        return {"name": self.name, "theory": _num(self.theory),
                "simulated": [_num(v) for v in self.simulated], "mean": _num(self.mean),
                "std": _num(self.std), "relative_error": _num(self.relative_error),
                "absolute_error": _num(self.absolute_error), "note": self.note}


def compare(name: str, theory, simulated, note: str = "") -> Comparison:
    """Build a :class:`Comparison` from a theory value and simulated values."""
    sims = tuple(float(v) for v in np.atleast_1d(np.asarray(simulated, float)).ravel())
    return Comparison(name, float(theory), sims, note)


def theory_columns(stats, spec=None, scale=None, scheme: str = "normal") -> dict:
    """The closed-form predictions for one configuration of two modalities, by column name.

    Always (when defined): ``time_ratio_gradient_flow`` (eq. 9 corrected), ``misattribution``
    and ``plateau_loss`` (the loss on the first modality's saddle, eq. 62). With ``spec``
    (equal branch depths, scalar output) and the initialization ``scale``/``scheme``:
    ``time_ratio_leading_order`` (eqs. 9, 12, 57 corrected) at u0 = the Frobenius norm of a
    first-layer matrix (scale·√entries for i.i.d. "normal" entries), when 0 < u0 < 1. Values are
    :class:`~dlnfusion.theory.Prediction` objects (value, validity, caveats); a column whose
    formula raises for these statistics is left out.
    """
    out = {}
    if stats.n_modalities != 2:
        return out
    try:
        out["time_ratio_gradient_flow"] = th.time_ratio_gradient_flow(stats)
        out["misattribution"] = th.misattribution(stats)
        out["plateau_loss"] = th.Prediction(th.saddle_loss(stats, th.roles(stats).first))
    except (ValueError, np.linalg.LinAlgError):
        return out
    if spec is not None and scale is not None and len(set(spec.branch_depths)) == 1 \
            and spec.output_dim == 1:
        u0 = float(scale)
        if scheme == "normal":
            u0 *= np.sqrt(spec.layer_shapes[0][0] * spec.layer_shapes[0][1])
        if 0 < u0 < 1:
            try:
                out["time_ratio_leading_order"] = th.time_ratio_leading_order(
                    stats, spec.depth, spec.fusion_layer, u0)
            except ValueError:
                pass
    return out


def unimodal_report(traj: Trajectory, stats, lr: float | None = None) -> dict:
    """Theory against simulation for the unimodal phase of one configuration.

    ``traj`` holds the seeds of one configuration (1-d batch) of a fusion network trained on
    ``stats``. Compares, per run and on average: which modality is learned first, the theory
    columns (:func:`theory_columns`) and, for two-layer late fusion with scalar modalities,
    t_A, t_B and the time ratio predicted for each run from its initial weights at the
    training's learning rate. Returns a JSON-serializable dict.
    """
    if len(traj.batch_shape) != 1:
        raise ValueError("unimodal_report takes the seeds of one configuration (a 1-d batch)")
    meas = measure_unimodal_phase(traj)
    lr = float(traj.lr[0]) if lr is None else float(lr)
    roles = th.roles(stats)
    out = {"first_theory": stats.names[roles.first], "tie": roles.tie,
           "first_sim": [str(n) for n in meas.first_names()],
           "status": [str(s) for s in traj.status_names()]}
    comps = []
    if traj.spec.branch_depths == (2, 2) and traj.spec.post_depth == 0 and stats.dims == (1, 1) \
            and not roles.tie:
        w0 = th.effective_init(traj.spec, traj.initial_params, th.phase_directions(stats))
        method = "gf" if traj.method == "gf" else "gd"
        preds = [th.predict_times(stats, lr, w, method=method) for w in w0]
        comps.append(compare("t_A", np.mean([p.t_a for p in preds]), meas.t_a))
        comps.append(compare("t_B", np.mean([p.t_b for p in preds]), meas.t_b))
        comps.append(compare("time_ratio", np.mean([p.ratio for p in preds]), meas.time_ratio,
                             f"finite-init, finite-lr prediction ({method})"))
    cols = theory_columns(stats)
    sims = {"time_ratio_gradient_flow": meas.time_ratio, "misattribution": meas.misattribution,
            "plateau_loss": meas.plateau_loss}
    notes = {"time_ratio_gradient_flow": "leading order in u0, gradient flow; "}
    for name, pred in cols.items():
        comps.append(compare(name, pred.value, sims[name],
                             notes.get(name, "") + "; ".join(pred.caveats)))
    plateau = stats.unimodal_solution(roles.first)
    if plateau.size == 1:
        comps.append(compare("plateau_value", plateau.item(), meas.plateau_map.reshape(-1)))
    out["comparisons"] = {c.name: c.to_dict() for c in comps}
    return out


def _clean(obj):
    """Plain JSON values: NaN → null, ±inf → "inf"/"-inf", numpy scalars and arrays → Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return _num(obj)
    return obj


def to_json(obj, path) -> None:
    """Write a report (nested dicts/lists) to ``path`` as indented, standard JSON.

    NaN becomes null and ±inf the strings "inf"/"-inf" (JSON has no such numbers).
    """
    with open(path, "w") as f:
        json.dump(_clean(obj), f, indent=2, allow_nan=False)
