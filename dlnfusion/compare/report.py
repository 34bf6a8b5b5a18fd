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
           "to_json", "THEORY_COLUMNS"]


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


#: The columns :func:`theory_columns` returns (with a spec: every one, NaN where undefined).
THEORY_COLUMNS = ("time_ratio_gradient_flow", "misattribution", "plateau_loss",
                  "time_ratio_leading_order")


#: Early fusion's ratio is 1 only in the limit: t_A and t_B differ by how the total map turns
#: while it grows, O(1) steps × 1/s against a transition time of order ln(1/u0)/s.
_EARLY_RATIO = ("early fusion: both modalities are learned in one transition; the ratio tends "
                "to 1 only as 1 + O(1/ln(1/u0)) (two layers, toy σ_A/σ_B = 2, ρ = 0: 1.13 at "
                "u0 = 4.5e-6); the reduction (predict=True) gives the finite-initialization "
                "ratio")


#: Intermediate fusion from random weights: the leading order assumes balanced, aligned ones.
_RANDOM_INTERMEDIATE = (
    "leading order for balanced, aligned weights; from random weights (scheme {scheme!r}) the "
    "pathways must align first, which moves intermediate-fusion ratios by tens of percent "
    "(Figure 6, L = 4, L_f = 2 and 3: median 16-23 %, up to 93 %; docs/deep_networks.md); "
    "theory.random_init_times gives t_A, t_B and their ratio from random weights (depth 4)")


def _nan(reason):
    return th.Prediction(float("nan"), False, (reason,))


def _flag(pred, reason):
    """``pred`` marked invalid with one more caveat."""
    return th.Prediction(pred.value, False, tuple(pred.caveats) + (reason,))


def theory_columns(stats, spec=None, scale=None, scheme: str = "normal") -> dict:
    """The closed-form predictions for one configuration of two modalities, by column name:
    :class:`~dlnfusion.theory.Prediction` objects (value, validity, caveats).

    With ``spec`` every column is the prediction for that network, or NaN with the reason:

    * ``time_ratio_gradient_flow``: eq. 9 corrected for late fusion (L_f = L, any depth); 1
      for early fusion (L_f = 1: one transition); NaN for intermediate fusion (its ratio
      depends on u0: ``time_ratio_leading_order``).
    * ``misattribution``, ``plateau_loss`` (the loss on the first modality's saddle, eq. 62):
      for L_f ≥ 2, where the saddle M_A exists; NaN for early fusion (no unimodal plateau).
    * ``time_ratio_leading_order`` (eqs. 9, 12, 57 corrected) at u0 = the Frobenius norm of a
      first-layer matrix (``scale``·√entries for i.i.d. "normal" entries); NaN without
      ``scale`` or outside 0 < u0 < 1. It is the ratio of balanced, aligned weights: for
      intermediate fusion (2 ≤ L_f < L) from random weights (``scheme`` "normal" or
      "frobenius") it is kept but flagged (valid False; tens of percent off, see
      :func:`~dlnfusion.theory.random_init_times` for random weights). Late and early fusion
      are not flagged: the alignment delays both transitions alike there.

    Branches of unequal depth or a vector output leave the depth-dependent columns NaN; for a
    nonlinear network the linear network's values are kept and flagged (valid False). Without
    ``spec``: the first three columns for two-layer late fusion. A formula that raises for
    these statistics gives NaN with its message. No columns for other than two modalities.
    """
    from ..networks import INIT_SCHEMES

    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {tuple(INIT_SCHEMES)} (the initialization of "
                         f"the runs), got {scheme!r}")
    if stats.n_modalities != 2:
        return {}
    out = {}
    for name, fn in (("time_ratio_gradient_flow", lambda: th.time_ratio_gradient_flow(stats)),
                     ("misattribution", lambda: th.misattribution(stats)),
                     ("plateau_loss", lambda: th.Prediction(
                         th.landscape.saddle_loss(stats, th.roles(stats).first)))):
        try:
            out[name] = fn()
        except (ValueError, np.linalg.LinAlgError) as err:
            out[name] = _nan(f"undefined for these statistics: {err}")
    if spec is None:
        return out
    try:
        L, Lf = spec.depth, spec.fusion_layer
    except ValueError:
        reason = f"branches of unequal depth {spec.branch_depths}: no closed form"
        return {k: _nan(reason) for k in THEORY_COLUMNS}
    if Lf == 1:
        out["time_ratio_gradient_flow"] = th.Prediction(1.0, True, (_EARLY_RATIO,))
        for k in ("misattribution", "plateau_loss"):
            out[k] = _nan("early fusion has no unimodal plateau (no saddle M_A)")
    elif Lf < L:
        out["time_ratio_gradient_flow"] = _nan(
            f"eq. (9) is late fusion's ratio; intermediate fusion (L_f = {Lf} < L = {L}) "
            "depends on u0: see time_ratio_leading_order")
    if spec.output_dim != 1:
        out["time_ratio_leading_order"] = _nan("vector output: no closed form")
    elif scale is None:
        out["time_ratio_leading_order"] = _nan("no initialization scale given")
    else:
        u0 = float(scale)
        if scheme == "normal":
            u0 *= np.sqrt(spec.layer_shapes[0][0] * spec.layer_shapes[0][1])
        if not 0 < u0 < 1:
            out["time_ratio_leading_order"] = _nan(
                f"u0 = {u0:.3g} outside (0, 1): the small-initialization expansion does not "
                "apply")
        else:
            try:
                pred = th.time_ratio_leading_order(stats, L, Lf, u0)
                if Lf == 1:
                    pred = th.Prediction(pred.value, pred.valid, (_EARLY_RATIO,))
                elif Lf < L and scheme != "balanced":
                    pred = _flag(pred, _RANDOM_INTERMEDIATE.format(scheme=scheme))
                out["time_ratio_leading_order"] = pred
            except ValueError as err:
                out["time_ratio_leading_order"] = _nan(str(err))
    if not spec.is_linear:
        act = spec.activation if isinstance(spec.activation, str) else getattr(
            spec.activation, "__name__", "nonlinear")
        out = {k: _flag(v, f"linear-network theory; the network's activation is {act}")
               for k, v in out.items()}
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
        pred = th.predict_times(stats, lr, w0, method=method)       # one entry per run
        comps.append(compare("t_A", np.mean(pred.t_A), meas.t_A))
        comps.append(compare("t_B", np.mean(pred.t_B), meas.t_B))
        comps.append(compare("time_ratio", np.mean(pred.ratio), meas.time_ratio,
                             f"finite-init, finite-lr prediction ({method})"))
    cols = theory_columns(stats, traj.spec)
    cols.pop("time_ratio_leading_order", None)
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
