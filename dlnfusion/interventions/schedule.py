"""Interventions during training, as data: windows [start, end) compiled to arrays.

A training run can carry a list of windows, each active for start ≤ t < end (t in steps for
gradient descent, in the same time units for gradient flow):

* :class:`Deficit` — the data change: other statistics (population level) or other samples
  (a Dataset of the same shape), e.g. from :mod:`dlnfusion.interventions.deficits`, or another
  task altogether;
* :class:`Gate` — a named group of parameters (a branch/pathway, ``"post"``, or one layer
  such as ``"W_b^2"``) still contributes to the output but receives no gradient: its weights
  are frozen;
* :class:`Lesion` — a mode or a unit held at zero. ``mode=α`` on a branch m: the branch's
  first layer is projected onto the complement of v_α, the α-th right singular vector of
  modality m's block of Σ_yx (:meth:`dlnfusion.Stats.modes`) (so the branch's total map, and every one of its mode strengths
  (Uᵀ W_m^tot V)_{·α}, is zero along that mode); ``unit=i`` on a layer: row i of that layer's
  matrix is zero (unit i's activity is zero). ``end=None`` lesions for good.

:func:`compile_schedule` turns the windows of a batch of B runs into a static :class:`Plan`
(what each window does: which data slot, which parameter groups, which matrix is projected;
hashable, part of the compiled program) and :class:`Schedule` arrays (start and end of every
window per run, the alternative data, the lesion projections). Start and end are arrays with
one value per run, so a sweep over deficit start and length is one compiled batch: new values
never recompile, only a different list of windows does.

Inside a step the kernel evaluates, from the current time t: which windows are active
(:func:`active`), the data in force (:func:`current_data`), the lesion projections
(:func:`project`) and the frozen matrices (:func:`frozen`).

Rules (checked, with errors naming the window): 0 ≤ start ≤ end (start = end is an empty
window, useful as "no deficit" in a sweep); two data windows of one run must not overlap (which
data would be in force is ambiguous); gates and lesions may overlap anything (their effects
combine).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..networks import NetworkSpec
from ..stats import Dataset, Stats

__all__ = ["Deficit", "Gate", "Lesion", "Plan", "Schedule", "compile_schedule", "active",
           "current_data", "in_deficit", "project", "frozen", "WINDOW_KINDS"]

WINDOW_KINDS = ("deficit", "gate", "lesion")


@dataclass(frozen=True, eq=False)
class Deficit:
    """During [start, end) the run trains on ``data`` (a Stats or Dataset like the run's own,
    or a sequence with one per run)."""

    data: Any
    start: Any = 0
    end: Any = 0


@dataclass(frozen=True, eq=False)
class Gate:
    """During [start, end) the parameter group ``group`` receives no gradient."""

    group: str
    start: Any = 0
    end: Any = 0


@dataclass(frozen=True, eq=False)
class Lesion:
    """During [start, end) (``end=None``: for good) a mode of branch ``group`` (``mode=α``) or a
    unit of layer ``group`` (``unit=i``) is held at zero."""

    group: str
    mode: int | None = None
    unit: int | None = None
    start: Any = 0
    end: Any = None


@dataclass(frozen=True)
class Plan:
    """What every window does (static: part of the compiled program).

    ``kinds[k]`` is "deficit", "gate" or "lesion"; ``slots[k]`` is the index of the window's
    alternative data (deficits) or projection (lesions) and -1 otherwise; ``leaves[k]`` the
    indices (in ``Params.matrices()`` order) of the matrices a gate freezes or the one matrix a
    lesion projects; ``sides[k]`` is "right" (W P: input directions) or "left" (P W: units)
    for lesions.
    """

    kinds: tuple
    slots: tuple
    leaves: tuple
    sides: tuple

    @property
    def n_windows(self) -> int:
        return len(self.kinds)

    def has(self, kind: str) -> bool:
        return kind in self.kinds


class Schedule(NamedTuple):
    """The arrays of a batch's windows (leading axis: runs).

    start, end: (B, K) times; data: tuple of the deficits' alternative data (Moments or
    Samples pytrees, (B, ...)); projections: tuple of the lesions' projection matrices (B, n, n).
    """

    start: Any
    end: Any
    data: tuple
    projections: tuple


# ---------------------------------------------------------------------- compile
def _times(name, k, value, B, allow_inf) -> np.ndarray:
    try:
        arr = np.broadcast_to(np.asarray(np.inf if value is None else value, dtype=float), (B,))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"window {k}: {name} must be a number or one value per run ({B}), got "
                         f"{value!r}") from exc
    if np.any(np.isnan(arr)) or (not allow_inf and np.any(~np.isfinite(arr))):
        raise ValueError(f"window {k}: {name} must be finite, got {value!r}")
    return arr.copy()


def _groups(spec: NetworkSpec) -> dict:
    """Group name -> matrix indices: every branch name, "post", and every layer label."""
    out, i = {}, 0
    for name, depth in zip(spec.names, spec.branch_depths):
        out[name] = tuple(range(i, i + depth))
        i += depth
    if spec.post_depth:
        out["post"] = tuple(range(i, i + spec.post_depth))
    for j, label in enumerate(spec.layer_labels):
        out[label] = (j,)
    return out


#: Singular values below this fraction of the largest are outside the rank of Σ_yx_m.
_RANK_RTOL = 1e-10


def _mode_projection(spec, runs, k, w, m):
    mats = []
    for r, data in enumerate(runs):
        stats = data if isinstance(data, Stats) else data.stats()
        _, s, V = stats.modes(m)
        rank = int(np.sum(s > _RANK_RTOL * max(s[0], 1e-300))) if s.size else 0
        if not isinstance(w.mode, (int, np.integer)) or isinstance(w.mode, bool) \
                or not 0 <= w.mode < rank:
            raise ValueError(f"window {k}: mode must be an integer in 0..{rank - 1} (the rank of "
                             f"modality {spec.names[m]!r}'s block of sigma_yx is {rank}), got "
                             f"{w.mode!r}")
        v = V[:, w.mode]
        mats.append(np.eye(v.size) - np.outer(v, v))
    return np.stack(mats)


def _unit_projection(spec, leaf, k, w, B):
    rows = spec.layer_shapes[leaf][0]
    if not isinstance(w.unit, (int, np.integer)) or isinstance(w.unit, bool) \
            or not 0 <= w.unit < rows:
        raise ValueError(f"window {k}: unit must be an integer in 0..{rows - 1} (the units of "
                         f"{spec.layer_labels[leaf]}), got {w.unit!r}")
    P = np.eye(rows)
    P[w.unit, w.unit] = 0.0
    return np.broadcast_to(P, (B, rows, rows)).copy()


def _alt_data(k, w, runs, kind):
    alt = w.data
    if isinstance(alt, (Stats, Dataset)):
        alt = [alt] * len(runs)
    else:
        try:
            alt = list(alt)
        except TypeError as exc:
            raise ValueError(f"window {k}: data must be a Stats, a Dataset or one per run") \
                from exc
    if len(alt) != len(runs):
        raise ValueError(f"window {k}: data has {len(alt)} entries but the batch has "
                         f"{len(runs)} runs")
    for a, base in zip(alt, runs):
        if type(a) is not type(base):
            raise ValueError(f"window {k}: the deficit data must be a {type(base).__name__} like "
                             f"the run's own data, got {type(a).__name__}")
        if tuple(a.dims) != tuple(base.dims):
            raise ValueError(f"window {k}: the deficit data has modality dims {tuple(a.dims)}, "
                             f"the run's data {tuple(base.dims)}")
        if isinstance(a, Stats) and a.output_dim != base.output_dim:
            raise ValueError(f"window {k}: the deficit data has output dim {a.output_dim}, the "
                             f"run's data {base.output_dim}")
        if isinstance(a, Dataset) and a.y.shape != base.y.shape:
            raise ValueError(f"window {k}: the deficit Dataset has targets of shape {a.y.shape}, "
                             f"the run's Dataset {base.y.shape} (same sample count needed)")
    return [kind.of(a) for a in alt]


def compile_schedule(spec: NetworkSpec, windows: Sequence, runs: Sequence, kind) -> tuple:
    """(Plan, Schedule as numpy arrays) for the windows of a batch whose data are ``runs``.

    ``kind`` is the objectives' data type (Moments or Samples), used to convert deficit data.
    Every window's start and end are scalars or one value per run.
    """
    windows = list(windows)
    B = len(runs)
    groups = _groups(spec)
    kinds, slots, leaves, sides = [], [], [], []
    starts, ends, alt, projections = [], [], [], []
    for k, w in enumerate(windows):
        if not isinstance(w, (Deficit, Gate, Lesion)):
            raise ValueError(f"window {k} must be a Deficit, Gate or Lesion, got {w!r}")
        s = _times("start", k, w.start, B, allow_inf=False)
        e = _times("end", k, w.end, B, allow_inf=isinstance(w, Lesion))
        if np.any(s < 0):
            raise ValueError(f"window {k}: start must be >= 0, got {w.start!r}")
        if np.any(s > e):
            bad = int(np.argmax(s > e))
            raise ValueError(f"window {k}: start {s[bad]:g} is after end {e[bad]:g} (run {bad})")
        starts.append(s)
        ends.append(e)
        if isinstance(w, Deficit):
            kinds.append("deficit")
            slots.append(len(alt))
            alt.append(jax.tree_util.tree_map(lambda *xs: np.stack(xs),
                                              *_alt_data(k, w, runs, kind)))
            leaves.append(())
            sides.append("")
            continue
        if not isinstance(w.group, str) or w.group not in groups:
            raise ValueError(f"window {k}: group must be one of {tuple(groups)}, got "
                             f"{w.group!r}")
        if isinstance(w, Gate):
            kinds.append("gate")
            slots.append(-1)
            leaves.append(groups[w.group])
            sides.append("")
            continue
        kinds.append("lesion")
        slots.append(len(projections))
        if (w.mode is None) == (w.unit is None):
            raise ValueError(f"window {k}: a Lesion needs exactly one of mode= or unit=")
        if w.mode is not None:
            if w.group not in spec.names:
                raise ValueError(f"window {k}: a mode lesion acts on a branch; group must be one "
                                 f"of {spec.names}, got {w.group!r}")
            m = spec.names.index(w.group)
            projections.append(_mode_projection(spec, runs, k, w, m))
            leaves.append((groups[w.group][0],))
            sides.append("right")
        else:
            if len(groups[w.group]) != 1:
                raise ValueError(f"window {k}: a unit lesion acts on one layer; group must be a "
                                 f"layer label {spec.layer_labels}, got {w.group!r}")
            leaf = groups[w.group][0]
            projections.append(_unit_projection(spec, leaf, k, w, B))
            leaves.append((leaf,))
            sides.append("left")
    deficits = [k for k, kd in enumerate(kinds) if kd == "deficit"]
    for i, a in enumerate(deficits):
        for b in deficits[i + 1:]:
            lo = np.maximum(starts[a], starts[b])
            hi = np.minimum(ends[a], ends[b])
            if np.any(lo < hi):
                r = int(np.argmax(lo < hi))
                raise ValueError(f"windows {a} and {b} both change the data during "
                                 f"[{lo[r]:g}, {hi[r]:g}) (run {r}); data windows must not "
                                 "overlap")
    plan = Plan(tuple(kinds), tuple(slots), tuple(leaves), tuple(sides))
    shape = (B, len(windows))
    sched = Schedule(np.stack(starts, 1) if windows else np.zeros(shape),
                     np.stack(ends, 1) if windows else np.zeros(shape),
                     tuple(alt), tuple(projections))
    return plan, sched


# ---------------------------------------------------------------------- in the loop
def active(sched: Schedule, t):
    """(K,) which windows of one run are active at time t (start ≤ t < end)."""
    return (sched.start <= t) & (t < sched.end)


def current_data(plan: Plan, on, base, sched: Schedule):
    """The data in force: the active deficit's, else the run's own (data windows never
    overlap, so at most one applies)."""
    d = base
    for k, kind in enumerate(plan.kinds):
        if kind == "deficit":
            alt = sched.data[plan.slots[k]]
            d = jax.tree_util.tree_map(lambda a, b: jnp.where(on[k], b, a), d, alt)
    return d


def in_deficit(plan: Plan, on):
    """Whether a deficit window is active (a boolean scalar; False without deficits)."""
    flags = [on[k] for k, kind in enumerate(plan.kinds) if kind == "deficit"]
    return jnp.any(jnp.stack(flags)) if flags else jnp.asarray(False)


def _apply(P, W, side):
    return W @ P if side == "right" else P @ W


def project(plan: Plan, on, sched: Schedule, mats: list) -> list:
    """The matrices with every active lesion's projection applied (``mats`` in
    ``Params.matrices()`` order). Projections are idempotent, so applying them again at every
    step keeps a lesioned mode or unit exactly at zero."""
    mats = list(mats)
    for k, kind in enumerate(plan.kinds):
        if kind == "lesion":
            (leaf,) = plan.leaves[k]
            P = sched.projections[plan.slots[k]]
            mats[leaf] = jnp.where(on[k], _apply(P, mats[leaf], plan.sides[k]), mats[leaf])
    return mats


def frozen(plan: Plan, on, n_leaves: int) -> list:
    """Per matrix: whether an active gate freezes it (a traced bool)."""
    out = [jnp.zeros((), bool) for _ in range(n_leaves)]
    for k, kind in enumerate(plan.kinds):
        if kind == "gate":
            for leaf in plan.leaves[k]:
                out[leaf] = out[leaf] | on[k]
    return out

