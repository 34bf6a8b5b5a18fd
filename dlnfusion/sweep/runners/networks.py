"""Runners of the network simulators (:func:`dlnfusion.train`) and of their theory from the same
initial weights: :class:`Train`, :class:`Reduced`, :class:`TrainFinal`, :class:`TrainSequence`,
:class:`ClosedFormTimes`, :class:`RandomInitTimes`, :class:`DeficitTheory`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...compare import measure_unimodal_phase, predict_unimodal_phase, theory_columns
from ...networks import NetworkSpec, init_batch
from ...stats import Dataset, Stats
from ...training import train
from .base import Batch, CAVEAT_SEPARATOR, Runner, _stats_key, call, params_of, source

__all__ = ["Train", "Reduced", "DeficitTheory", "TrainFinal", "TRAIN_KEYS", "TrainSequence",
           "ClosedFormTimes", "RandomInitTimes"]


#: Training parameters of :class:`Train`, with their defaults.
TRAIN_KEYS = {"lr": 0.04, "scale": 1e-9, "scheme": "normal", "method": "gd",
              "loss": "squared", "steps": 40_000, "stop_loss": 1e-4, "record_every": 100}


#: The training parameters that change compiled code or shapes.
_STATIC_TRAIN = ("scheme", "method", "loss", "steps", "record_every")
_THEORY_NAMES = {"time_ratio_gradient_flow": "time_ratio_gradient_flow",
                 "misattribution": "misattribution_theory", "plateau_loss": "plateau_loss_theory",
                 "time_ratio_leading_order": "time_ratio_leading_order"}


def _phase_values(meas) -> dict:
    """The unimodal-phase observables of a measurement, one value per run."""
    return {"t_A": meas.t_A, "t_B": meas.t_B, "time_ratio": meas.time_ratio,
            "first": meas.first.astype(np.int8), "misattribution": meas.misattribution,
            "plateau_loss": meas.plateau_loss}


def _auto_chunk(spec, point, n_runs, budget=1 << 30):
    R = int(point["steps"]) // int(point["record_every"]) + 1
    per_record = 2 + sum(spec.input_dims) * spec.output_dim + spec.n_layers
    params = sum(a * b for a, b in spec.layer_shapes)
    per_run = 8 * (R * per_record + 6 * params)
    return int(max(1, min(n_runs, budget // max(per_run, 1))))


@dataclass(frozen=True, eq=False)
class Train(Runner):
    """Full-batch training of linear (or ReLU) fusion networks, :func:`dlnfusion.train`.

    ``stats`` returns the data (:class:`~dlnfusion.Stats` or :class:`~dlnfusion.Dataset`) of a
    grid point and ``network`` its :class:`~dlnfusion.NetworkSpec`, each called with the
    parameters it names; the training parameters are :data:`TRAIN_KEYS`. ``eval_stats``: the
    population statistics under which the loss is also recorded; ``record``: keep the loss
    and total-map trajectories; ``predict``: also integrate the reduced-dynamics prediction of
    every run (:func:`dlnfusion.compare.predict_unimodal_phase`, in the reduction's ``basis``:
    "signals" or "modes"); ``level``: the progress level at which the unimodal-phase crossings
    are measured (default ½; ReLU late fusion ends at twice the linear maps, so 1 there);
    ``final_below``: also measure the mis-attribution against the first recorded map whose
    loss is below this value (``misattribution_final_below``, the authors' stop rule);
    ``interventions``: a factory (called with the parameters it names) returning the point's
    windows (:class:`~dlnfusion.interventions.Deficit`, ``Gate``, ``Lesion``, in steps); the
    runs whose windows differ only in start, end and data share one compiled call.
    ``init`` (optional): a factory returning the initial :class:`~dlnfusion.Params` of one run
    (batch of one), called with the parameters it names and ``seed`` if it takes one; it
    replaces the ``scheme``/``scale`` initialization (default None keeps it). ``rtol``: the
    relative tolerance of gradient flow (default None: :func:`dlnfusion.train`'s).
    ``half_times``: also keep every modality's first crossing of ``level`` toward the global
    solution, ``t_half`` (modality), measured at every step.

    Per run: ``status``, ``stop_time``, ``final_loss``; for two modalities the unimodal-phase
    observables ``t_A``, ``t_B``, ``time_ratio``, ``first``, ``misattribution``,
    ``plateau_loss`` (and ``*_predicted`` with ``predict``); with ``record`` the trajectories
    ``loss`` (time), ``eval_loss``, ``map_<modality>`` (time, out, in). Per grid point the
    theory columns of :func:`dlnfusion.compare.theory_columns` (``time_ratio_leading_order``,
    ``time_ratio_gradient_flow``, ``misattribution_theory``, ``plateau_loss_theory``, each with
    ``_valid`` and ``_caveats``); ``theory=False`` leaves them out (they cost eigendecompositions
    of the data's moments, which large inputs notice).
    """

    stats: Callable[..., Any]
    network: Callable[..., NetworkSpec]
    eval_stats: Callable[..., Stats] | None = None
    record: bool = True
    predict: bool = False
    basis: str = "signals"
    level: float = 0.5
    final_below: float | None = None
    interventions: Callable[..., Any] | None = None
    theory: bool = True
    init: Callable[..., Any] | None = None
    rtol: float | None = None
    half_times: bool = False

    defaults = TRAIN_KEYS
    shardable = True

    def factories(self):
        return tuple(f for f in (self.stats, self.network, self.eval_stats, self.interventions,
                                 self.init) if f is not None)

    def check(self, grid, fixed):
        if "record_every" in grid and self.record:
            raise ValueError("record_every cannot be swept when trajectories are recorded")

    def prepare(self, point):
        spec, data = call(self.network, point), call(self.stats, point)
        if not isinstance(spec, NetworkSpec):
            raise ValueError(f"network factory returned {type(spec).__name__}, not NetworkSpec")
        if not isinstance(data, (Stats, Dataset)):
            raise ValueError(f"stats factory returned {type(data).__name__}, not Stats/Dataset")
        return spec, data

    def group(self, point, prepared):
        spec, d = prepared
        shape = (type(d).__name__, tuple(d.dims),
                 d.output_dim if isinstance(d, Stats) else d.y.shape)
        return (spec, shape) + tuple(point[k] for k in _STATIC_TRAIN) + \
            _window_key(self.interventions, point)

    def chunk_size(self, point, prepared, n_runs):
        return _auto_chunk(prepared[0], point, n_runs)

    def labels(self, prepared):
        return {"first": tuple(prepared[0].names)}

    @staticmethod
    def _initial(points, prepared, seeds):
        """The runs' initial weights: the chunk's scheme, each run's scale (one per branch for
        the balanced scheme) and seed."""
        p0, (spec, _) = points[0], prepared[0]
        scales = np.array([float(p["scale"]) for p in points])
        if p0["scheme"] == "balanced":
            scales = np.repeat(scales[:, None], spec.n_modalities, axis=1)
        return init_batch(spec, list(seeds), p0["scheme"], scales,
                          stats=[d if isinstance(d, Stats) else None for _, d in prepared])

    def _start(self, points, prepared, seeds):
        """The runs' initial weights: ``init`` per run, stacked, or :meth:`_initial`."""
        if self.init is None:
            return self._initial(points, prepared, seeds)
        takes_seed = "seed" in params_of(self.init)
        runs = [call(self.init, {**p, "seed": s} if takes_seed else p)
                for p, s in zip(points, seeds)]
        mats = [np.concatenate([np.asarray(r.matrices()[i]) for r in runs])
                for i in range(prepared[0][0].n_layers)]
        return type(runs[0]).from_matrices(prepared[0][0], mats)

    def run(self, points, prepared, seeds, mesh=None):
        if self.interventions is not None and mesh is None:
            keep, inverse = _distinct_runs(self.interventions, points, prepared, seeds)
            if len(keep) < len(points):         # e.g. N = 0 of every deficit: one run
                out = self.run([points[i] for i in keep], [prepared[i] for i in keep],
                               [seeds[i] for i in keep])
                return Batch({k: np.asarray(v)[inverse] for k, v in out.values.items()},
                             out.dims, out.coords)
        p0, (spec, _) = points[0], prepared[0]
        run_data = [d for _, d in prepared]
        params = self._start(points, prepared, seeds)
        ev = None
        if self.eval_stats is not None:
            evs = [call(self.eval_stats, p) for p in points]
            ev = evs[0]
            if any(e is not ev for e in evs):
                raise ValueError("eval_stats must not vary across a chunk; sweep the data instead")
        lrs = [float(p["lr"]) for p in points]
        traj = train(spec, run_data, params, lr=lrs, method=p0["method"],
                     steps=int(p0["steps"]), record_every=p0["record_every"],
                     stop_loss=p0["stop_loss"], loss=p0["loss"], eval_stats=ev, sharding=mesh,
                     interventions=_batch_windows(self.interventions, points),
                     levels=tuple(sorted({0.5, float(self.level)})),
                     **({} if self.rtol is None else {"rtol": float(self.rtol)}))
        out = Batch({"status": traj.status.astype(np.int8), "stop_time": traj.stop_time,
                     "final_loss": traj.final_loss})
        if self.half_times:
            out.values["t_half"] = np.stack([traj.crossing(m, "global", self.level)
                                             for m in range(spec.n_modalities)], -1)
            out.dims["t_half"] = ("modality",)
            out.coords["modality"] = np.array(spec.names)
        if self.record:
            out.coords["time"] = traj.time
            out.values["loss"], out.dims["loss"] = traj.loss, ("time",)
            if traj.eval_loss is not None:
                out.values["eval_loss"], out.dims["eval_loss"] = traj.eval_loss, ("time",)
            for name, m in zip(spec.names, traj.maps):
                out.values[f"map_{name}"] = m
                out.dims[f"map_{name}"] = ("time", "out", f"in_{name}")
        if spec.n_modalities == 2:
            out.values.update(_phase_values(measure_unimodal_phase(traj, self.level)))
            if self.final_below is not None:
                out.values["misattribution_final_below"] = measure_unimodal_phase(
                    traj, self.level, final_below=self.final_below).misattribution
            if self.predict and spec.is_linear and isinstance(run_data[0], Stats):
                pred, _ = predict_unimodal_phase(
                    spec, run_data, traj.initial_params, lrs, method=p0["method"],
                    steps=int(p0["steps"]), record_every=p0["record_every"],
                    stop_loss=p0["stop_loss"], basis=self.basis,
                    interventions=_batch_windows(self.interventions, points))
                out.values.update({"t_A_predicted": pred.t_A, "t_B_predicted": pred.t_B,
                                   "time_ratio_predicted": pred.time_ratio})
        return out

    def columns(self, point, prepared):
        spec, data = prepared
        if not self.theory or not isinstance(data, Stats):
            return {}
        out = {}
        for k, p in theory_columns(data, spec, point["scale"], point["scheme"]).items():
            name = _THEORY_NAMES[k]
            out[name] = float(p.value)
            out[name + "_valid"] = bool(p.valid)
            out[name + "_caveats"] = CAVEAT_SEPARATOR.join(p.caveats)
        return out

    def describe(self):
        return {"runner": "Train", "stats": source(self.stats), "network": source(self.network),
                "eval_stats": None if self.eval_stats is None else source(self.eval_stats),
                "record": self.record, "predict": self.predict,
                **({} if self.basis == "signals" else {"basis": self.basis}),
                **({} if self.level == 0.5 else {"level": self.level}),
                **({} if self.final_below is None else {"final_below": self.final_below}),
                **({} if self.theory else {"theory": False}),
                **({} if self.interventions is None else
                   {"interventions": source(self.interventions)}),
                **({} if self.init is None else {"init": source(self.init)}),
                **({} if self.rtol is None else {"rtol": self.rtol}),
                **({} if not self.half_times else {"half_times": True})}


@dataclass(frozen=True, eq=False)
class Reduced(Train):
    """The reduced dynamics alone, :func:`dlnfusion.compare.predict_unimodal_phase`: the
    prediction of the runs :class:`Train` would simulate (the same factories, parameters and
    initial weights), without training the networks. Linear networks on
    :class:`~dlnfusion.Stats`.

    Per run: ``status``, ``stop_time``, ``final_loss`` of the reduced run and, for two
    modalities, ``t_A``, ``t_B``, ``time_ratio``, ``first``, ``misattribution``,
    ``plateau_loss``; with ``record`` its ``loss`` (time). Per grid point the theory columns,
    as :class:`Train`.
    """

    stats: Callable[..., Any]
    network: Callable[..., NetworkSpec]
    record: bool = False

    def factories(self):
        return tuple(f for f in (self.stats, self.network, self.interventions) if f is not None)

    def prepare(self, point):
        spec, data = super().prepare(point)
        if not spec.is_linear or not isinstance(data, Stats):
            raise ValueError("Reduced predicts linear networks trained on population "
                             "statistics (a Stats and a linear NetworkSpec)")
        return spec, data

    def group(self, point, prepared):
        key = super().group(point, prepared)
        # The "modes" basis reduces every run of a call with one Stats: a call per data.
        return key + ((_stats_key(prepared[1]),) if self.basis == "modes" else ())

    def run(self, points, prepared, seeds, mesh=None):
        p0, (spec, _) = points[0], prepared[0]
        stats = [d for _, d in prepared]
        params = self._initial(points, prepared, seeds)
        meas, traj = predict_unimodal_phase(
            spec, stats, params, [float(p["lr"]) for p in points], method=p0["method"],
            steps=int(p0["steps"]), record_every=p0["record_every"], stop_loss=p0["stop_loss"],
            basis=self.basis, interventions=_batch_windows(self.interventions, points))
        out = Batch({"status": traj.status.astype(np.int8), "stop_time": traj.stop_time,
                     "final_loss": traj.final_loss})
        if self.record:
            out.values["loss"], out.dims["loss"] = traj.loss, ("time",)
            out.coords["time"] = traj.time
        if spec.n_modalities == 2:
            out.values.update(_phase_values(meas))
        return out

    def describe(self):
        return {"runner": "Reduced", "stats": source(self.stats),
                "network": source(self.network), "record": self.record,
                **({} if self.basis == "signals" else {"basis": self.basis}),
                **({} if self.interventions is None else
                   {"interventions": source(self.interventions)})}


def _point_windows(factory, point) -> list:
    """The windows ``factory`` returns for one grid point (a list; None: no window)."""
    from ...interventions import Deficit, Gate, Lesion

    windows = call(factory, point)
    windows = [] if windows is None else list(windows)
    for w in windows:
        if not isinstance(w, (Deficit, Gate, Lesion)):
            raise ValueError(f"interventions factory must return a list of Deficit, Gate and "
                             f"Lesion windows, got {w!r}")
    return windows


def _window_key(factory, point) -> tuple:
    """What of a point's windows is compiled (their kinds, groups, modes and units): points
    whose windows differ only in start, end and data share a call."""
    if factory is None:
        return ()
    return tuple((type(w).__name__, getattr(w, "group", None), getattr(w, "mode", None),
                  getattr(w, "unit", None)) for w in _point_windows(factory, point))


def _batch_windows(factory, points):
    """The windows of a chunk's runs (``factory`` of each run's point) as the windows of one
    :func:`dlnfusion.train` call: start and end one value per run, a Deficit's data one per
    run. The points share their window key (:func:`_window_key`)."""
    import dataclasses

    from ...interventions import Deficit

    if factory is None:
        return None
    per = [_point_windows(factory, p) for p in points]
    out = []
    for k, w0 in enumerate(per[0]):
        ws = [w[k] for w in per]
        ends = [w.end for w in ws]
        end = None if all(e is None for e in ends) else \
            np.array([np.inf if e is None else float(e) for e in ends])
        extra = {"data": [w.data for w in ws]} if isinstance(w0, Deficit) else {}
        out.append(dataclasses.replace(w0, start=np.array([float(w.start) for w in ws]),
                                       end=end, **extra))
    return out or None


def _data_key(data) -> str:
    arrays = (data.sigma, data.sigma_yx, data.sigma_yy) if isinstance(data, Stats) else \
        tuple(data.xs) + (data.y,)
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _distinct_runs(factory, points, prepared, seeds) -> tuple:
    """The runs of a chunk that train differently: indices of the first of each kind and, per
    run, the position of its kind among them. Two runs are the same run when their data, seed,
    scale and learning rate agree and so do their non-empty windows (an empty window, start =
    end, changes nothing)."""
    keys = []
    for p, (_, data), s in zip(points, prepared, seeds):
        wins = []
        for w in _point_windows(factory, p):
            if w.end is not None and float(w.start) == float(w.end):
                continue
            wins.append((type(w).__name__, float(w.start), None if w.end is None else
                         float(w.end), getattr(w, "group", None), getattr(w, "mode", None),
                         getattr(w, "unit", None),
                         _data_key(w.data) if hasattr(w, "data") else None))
        keys.append((_data_key(data), int(s), repr(p["scale"]), repr(p["lr"]), tuple(wins)))
    first = {}
    for r, k in enumerate(keys):
        first.setdefault(k, r)
    order = list(first)
    pos = {k: i for i, k in enumerate(order)}
    return [first[k] for k in order], np.array([pos[k] for k in keys])


def _moments_key(stats) -> tuple:
    return tuple(np.asarray(a).tobytes() for a in (stats.sigma, stats.sigma_yx, stats.sigma_yy))


def _closed_form_times(spec, stats, params, lr) -> tuple:
    """Two-layer networks: the no-deficit t_A⁰, t_B⁰ of every run of ``params`` from the
    closed-form predictors of :mod:`dlnfusion.theory` (the growing modes of the initial
    weights iterated with gradient descent's maps: ``predict_times`` for late,
    ``predict_times_early`` for early fusion)."""
    from ... import theory as th

    if spec.fusion_layer == 2:
        w0 = th.effective_init(spec, params, th.phase_directions(stats))
        preds = [th.predict_times(stats, lr, w) for w in w0]
    else:
        preds = [th.predict_times_early(stats, lr, w)
                 for w in th.effective_init_early(spec, params, stats)]
    if any(p.first != "A" for p in preds):
        raise RuntimeError("the closed-form no-deficit times expect A to be learned first")
    return np.array([p.t_A for p in preds]), np.array([p.t_B for p in preds])


def _take(tree, index):
    """Runs ``index`` of a batched pytree (numpy arrays)."""
    import jax

    idx = np.asarray(index)
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[idx], tree)


@dataclass(frozen=True, eq=False)
class DeficitTheory(Reduced):
    """The two levels of theory of a deficit window [0, N) on the second modality, for the runs
    that :class:`Train` simulates with the same factories and parameters (initial weights
    included): (b) the reduced network trained with the window (what :class:`Reduced` gives),
    and (a) the leading-order delay formula :func:`dlnfusion.theory.deficit_times` applied to
    the no-deficit times of (b).

    ``interventions`` returns a point's one :class:`~dlnfusion.interventions.Deficit` window,
    starting at 0: its data are the window's moments, its end is N. The grid must hold N = 0
    (the undisturbed run of each data and seed, whose t_A, t_B are the formula's t_A⁰, t_B⁰);
    all runs of a network are one call. For two-layer networks the formula is also applied to
    the no-deficit times of the closed forms (:func:`dlnfusion.theory.predict_times`,
    ``predict_times_early``), which integrate no network. p₀ is
    :func:`dlnfusion.theory.deficits.initial_post_norm` of the initial weights. ``line``: further
    lengths at which the formula is evaluated for every run's window (a curve in N). The runs
    that are the same run (the same data, seed, scale, learning rate and non-empty window, e.g.
    N = 0 under every deficit) are integrated once.

    Per run: what :class:`Reduced` gives, and ``t_A_formula``, ``t_B_formula``,
    ``delay_formula``, ``formula_regime``, ``formula_valid``, ``formula_caveats`` (joined with
    :data:`CAVEAT_SEPARATOR`); ``t_A_closed``, ``t_B_closed``, ``delay_closed`` (NaN unless two
    layers); with ``line`` the records ``t_B_line``, ``delay_line`` (length).
    """

    stats: Callable[..., Any]
    network: Callable[..., NetworkSpec]
    interventions: Callable[..., Any] = None
    line: tuple = ()

    def check(self, grid, fixed):
        if self.interventions is None:
            raise ValueError("DeficitTheory needs an interventions factory (the window)")

    def chunk_size(self, point, prepared, n_runs):
        return n_runs                     # the undisturbed runs are the formula's baseline

    def run(self, points, prepared, seeds, mesh=None):
        from ... import theory as th
        from ...interventions import Deficit

        # The runs that are the same run (N = 0 under every deficit) are integrated once.
        keep, inverse = _distinct_runs(self.interventions, points, prepared, seeds)
        distinct = [[xs[i] for i in keep] for xs in (points, prepared, seeds)]
        out = super().run(*distinct, mesh)
        out = Batch({k: np.asarray(v)[inverse] for k, v in out.values.items()}, out.dims,
                    out.coords)
        spec = prepared[0][0]
        stats = [d for _, d in prepared]
        windows = [_point_windows(self.interventions, p) for p in points]
        if any(len(w) != 1 or not isinstance(w[0], Deficit) or float(w[0].start) != 0
               for w in windows):
            raise ValueError("DeficitTheory: interventions must return one Deficit window "
                             "starting at 0")
        lengths = np.array([float(w[0].end) for w in windows])
        lrs = np.array([float(p["lr"]) for p in points])
        keys = [(_moments_key(st), s, repr(p["scale"]), lr)
                for st, s, p, lr in zip(stats, seeds, points, lrs)]
        zero = {k: r for r, k in enumerate(keys) if lengths[r] == 0}
        if len(zero) != len(set(keys)):
            raise ValueError("DeficitTheory: the grid must hold N = 0 (the undisturbed run) "
                             "for every data and seed")
        base_of = np.array([zero[k] for k in keys])
        params = _take(self._initial(*distinct), inverse)
        base = {"formula": (out.values["t_A"][base_of], out.values["t_B"][base_of])}
        if spec.depth == 2:
            ta, tb = np.full(len(points), np.nan), np.full(len(points), np.nan)
            by_data = {}
            for r in zero.values():
                by_data.setdefault((keys[r][0], keys[r][3]), []).append(r)
            for rs in by_data.values():
                ta[rs], tb[rs] = _closed_form_times(spec, stats[rs[0]], _take(params, rs),
                                                    float(lrs[rs[0]]))
            base["closed"] = (ta[base_of], tb[base_of])
        post = th.initial_post_norm(spec, params)
        n, line = len(points), np.asarray(self.line, float)
        v = {f"{q}_{b}": np.full(n, np.nan) for q in ("t_A", "t_B", "delay")
             for b in ("formula", "closed")}
        v.update(formula_regime=np.full(n, "", dtype=object), formula_valid=np.zeros(n, bool),
                 formula_caveats=np.full(n, "", dtype=object),
                 t_B_line=np.full((n, line.size), np.nan),
                 delay_line=np.full((n, line.size), np.nan))
        groups = {}
        for r, (st, w) in enumerate(zip(stats, windows)):
            groups.setdefault((_moments_key(st), _moments_key(w[0].data), lrs[r]), []).append(r)
        kw = dict(depth=spec.depth, fusion_layer=spec.fusion_layer)
        for rs in groups.values():
            rs = np.array(rs)
            st, ws, lr = stats[rs[0]], windows[rs[0]][0].data, float(lrs[rs[0]])
            for b, (ta0, tb0) in base.items():
                f = th.deficit_times(st, ws, lengths[rs], lr=lr, t_a0=ta0[rs], t_b0=tb0[rs],
                                     post_norm0=post[rs], **kw)
                v[f"t_A_{b}"][rs], v[f"t_B_{b}"][rs], v[f"delay_{b}"][rs] = \
                    f.t_A, f.t_B, f.delay
                if b == "formula":
                    v["formula_regime"][rs], v["formula_valid"][rs] = f.regime, f.valid
                    v["formula_caveats"][rs] = [CAVEAT_SEPARATOR.join(c) for c in f.caveats]
            if line.size:
                ta0, tb0 = base["formula"]
                f = th.deficit_times(st, ws, line[:, None], lr=lr, t_a0=ta0[rs], t_b0=tb0[rs],
                                     post_norm0=post[rs], **kw)
                v["t_B_line"][rs], v["delay_line"][rs] = f.t_B.T, f.delay.T
        for k in ("formula_regime", "formula_caveats"):
            v[k] = v[k].astype(str)
        out.values.update(v)
        if line.size:
            out.dims.update(t_B_line=("length",), delay_line=("length",))
            out.coords["length"] = line
        return out

    def describe(self):
        return {**super().describe(), "runner": "DeficitTheory",
                "line": [float(x) for x in self.line]}


@dataclass(frozen=True, eq=False)
class TrainFinal(Train):
    """:class:`Train` that also keeps the state each run ends in and its raw crossing times,
    optionally on data drawn per run.

    The ``stats`` factory may take ``seed``: every run then trains on its own data, drawn with
    the seed that also draws its initial weights (samples of a task, say; the point's shapes
    are read from seed 0's data). Parameters: :data:`TRAIN_KEYS` plus ``dtype`` ("float64" or
    "float32", the precision of the training) and ``levels`` (the progress levels whose
    first crossings are recorded; the unimodal-phase observables are measured at ``level``,
    which must be one of them).

    Per run what :class:`Train` gives (no ``predict``, ``interventions`` or ``final_below``; no
    per-point theory columns when the data are drawn per run), and ``final_map_<modality>`` (out,
    in_<modality>) the total map when the run stopped, ``first_layer_<modality>`` (unit,
    in_<modality>) the final weights of the first layer of the modality's branch, and
    ``crossing_unimodal``, ``crossing_global`` (modality, level): the first time each
    modality's progress toward its unimodal solution and toward its block of the global
    solution reached each level (NaN if never). ``phase`` False leaves out the unimodal-phase
    observables (which need the two modalities' maps to have the same shape when runs differ
    in the modality they learn first).
    """

    phase: bool = True

    defaults = {**TRAIN_KEYS, "dtype": "float64", "levels": (0.5,)}

    def _per_run(self) -> bool:
        return "seed" in params_of(self.stats)

    def parameters(self):
        return super().parameters() - {"seed"}

    def check(self, grid, fixed):
        super().check(grid, fixed)
        if self.predict or self.interventions is not None or self.final_below is not None:
            raise ValueError("TrainFinal runs no predict, interventions or final_below; use "
                             "Train")
        if "levels" in grid:
            raise ValueError("levels cannot be swept; give them in fixed")
        if float(self.level) not in [float(v) for v in fixed.get("levels", (0.5,))]:
            raise ValueError(f"level {self.level} must be one of the recorded levels")

    def prepare(self, point):
        return super().prepare({**point, "seed": 0} if self._per_run() else point)

    def group(self, point, prepared):
        return super().group(point, prepared) + (point["dtype"], tuple(point["levels"]))

    def columns(self, point, prepared):
        return {} if self._per_run() else super().columns(point, prepared)

    def run(self, points, prepared, seeds, mesh=None):
        p0, spec = points[0], prepared[0][0]
        if self._per_run():
            prepared = [(spec, call(self.stats, {**p, "seed": s})) for p, s in zip(points, seeds)]
        data = [d for _, d in prepared]
        ev = None if self.eval_stats is None else call(self.eval_stats, p0)
        traj = train(spec, data, self._initial(points, prepared, seeds),
                     lr=[float(p["lr"]) for p in points], method=p0["method"],
                     steps=int(p0["steps"]), record_every=p0["record_every"],
                     stop_loss=p0["stop_loss"], loss=p0["loss"], eval_stats=ev, sharding=mesh,
                     dtype=p0["dtype"], levels=tuple(float(v) for v in p0["levels"]))
        out = Batch({"status": traj.status.astype(np.int8), "stop_time": traj.stop_time,
                     "final_loss": traj.final_loss},
                    coords={"modality": np.array(spec.names),
                            "level": np.array(dict(traj.levels)["global"], dtype=float)})
        if self.record:
            out.coords["time"] = traj.time
            out.values["loss"], out.dims["loss"] = traj.loss, ("time",)
            if traj.eval_loss is not None:
                out.values["eval_loss"], out.dims["eval_loss"] = traj.eval_loss, ("time",)
            for name, m in zip(spec.names, traj.maps):
                out.values[f"map_{name}"] = m
                out.dims[f"map_{name}"] = ("time", "out", f"in_{name}")
        for name, m, b in zip(spec.names, traj.final_maps, traj.final_params.branches):
            out.values[f"final_map_{name}"] = m
            out.dims[f"final_map_{name}"] = ("out", f"in_{name}")
            out.values[f"first_layer_{name}"] = b[0]
            out.dims[f"first_layer_{name}"] = ("unit", f"in_{name}")
        for ref in ("unimodal", "global"):
            out.values[f"crossing_{ref}"] = traj.crossings[ref]
            out.dims[f"crossing_{ref}"] = ("modality", "level")
        if spec.n_modalities == 2 and self.phase:
            out.values.update(_phase_values(measure_unimodal_phase(traj, self.level)))
        return out

    def describe(self):
        return {**super().describe(), "runner": "TrainFinal", "phase": self.phase}


@dataclass(frozen=True, eq=False)
class TrainSequence(Train):
    """:class:`Train` measured as a learning sequence of any number of modalities
    (:func:`dlnfusion.compare.measure_learning_sequence`, each run against its own
    :class:`~dlnfusion.Stats`; the maps are recorded every ``record_every`` steps for it).
    Parameters: :data:`TRAIN_KEYS`; no ``predict``, ``interventions`` or theory columns.

    Per run: ``status``, ``stop_time``, ``final_loss``; ``order`` and ``times`` (transition):
    the modalities' indices in the order learned (−1 past the last one reached) and their
    transition times (NaN there); ``plateau_loss`` (plateau): the loss halfway between
    transitions k and k + 1. With ``record`` also the trajectories ``loss`` (time) and
    ``map_<modality>`` (time, out, in_<modality>).
    """

    record: bool = False

    def check(self, grid, fixed):
        super().check(grid, fixed)
        if self.predict or self.interventions is not None:
            raise ValueError("TrainSequence runs neither predict nor interventions")

    def prepare(self, point):
        spec, data = super().prepare(point)
        if not isinstance(data, Stats):
            raise ValueError("TrainSequence measures runs on population statistics (Stats)")
        return spec, data

    def labels(self, prepared):
        return {}

    def columns(self, point, prepared):
        return {}

    def run(self, points, prepared, seeds, mesh=None):
        from ...compare import measure_learning_sequence

        p0, spec = points[0], prepared[0][0]
        data = [d for _, d in prepared]
        traj = train(spec, data, self._initial(points, prepared, seeds),
                     lr=[float(p["lr"]) for p in points], method=p0["method"],
                     steps=int(p0["steps"]), record_every=p0["record_every"],
                     stop_loss=p0["stop_loss"], loss=p0["loss"], sharding=mesh,
                     observe={"norms": None})
        meas = [measure_learning_sequence(traj[b:b + 1], d) for b, d in enumerate(data)]
        out = Batch({"status": traj.status.astype(np.int8), "stop_time": traj.stop_time,
                     "final_loss": traj.final_loss,
                     "order": np.concatenate([m.order for m in meas]),
                     "times": np.concatenate([m.times for m in meas]),
                     "plateau_loss": np.concatenate([m.plateau_loss for m in meas])},
                    dims={"order": ("transition",), "times": ("transition",),
                          "plateau_loss": ("plateau",)})
        if self.record:
            out.coords["time"] = traj.time
            out.values["loss"], out.dims["loss"] = traj.loss, ("time",)
            for name, m in zip(spec.names, traj.maps):
                out.values[f"map_{name}"] = m
                out.dims[f"map_{name}"] = ("time", "out", f"in_{name}")
        return out

    def describe(self):
        return {**super().describe(), "runner": "TrainSequence"}


@dataclass(frozen=True, eq=False)
class ClosedFormTimes(Train):
    """The closed-form t_A and t_B of the runs :class:`Train` would simulate (the same
    factories, parameters and initial weights), without training: two-layer late fusion of
    two modalities on :class:`~dlnfusion.Stats`, each run's growing modes
    (:func:`dlnfusion.theory.effective_init`) iterated at its learning rate by
    :func:`dlnfusion.theory.predict_times` (linear networks) or
    :func:`dlnfusion.theory.predict_times_relu` (ReLU networks: half the rate from half the
    mode, half-way points at twice the linear maps).

    Per run: ``t_A``, ``t_B``, ``time_ratio`` (NaN where the modalities tie: no unimodal
    phase). Per grid point the theory columns, as :class:`Train`.
    """

    stats: Callable[..., Any]
    network: Callable[..., NetworkSpec]
    record: bool = False

    shardable = False

    def factories(self):
        return (self.stats, self.network)

    def prepare(self, point):
        spec, data = super().prepare(point)
        if spec.branch_depths != (2, 2) or spec.post_depth != 0 or not isinstance(data, Stats):
            raise ValueError("ClosedFormTimes predicts two-layer late-fusion networks of two "
                             "modalities trained on population statistics (a Stats)")
        return spec, data

    def run(self, points, prepared, seeds, mesh=None):
        import jax

        from ... import theory as th

        params = self._initial(points, prepared, seeds)
        rows = []
        for r, (p, (spec, st)) in enumerate(zip(points, prepared)):
            if th.roles(st).tie:
                rows.append((np.nan, np.nan, np.nan))
                continue
            one = jax.tree_util.tree_map(lambda a: a[r:r + 1], params)
            w0 = th.effective_init(spec, one, th.phase_directions(st))
            method = "gf" if p["method"] == "gf" else "gd"
            if spec.is_linear:
                pred = th.predict_times(st, float(p["lr"]), w0, method=method)
                rows.append((pred.t_A[0], pred.t_B[0], pred.ratio[0]))
            else:
                pred = th.predict_times_relu(st, float(p["lr"]), w0[0], method=method)
                rows.append((pred.t_A, pred.t_B, pred.ratio))
        t_a, t_b, ratio = (np.array(c, dtype=float) for c in zip(*rows))
        return Batch({"t_A": t_a, "t_B": t_b, "time_ratio": ratio})

    def describe(self):
        return {"runner": "ClosedFormTimes", "stats": source(self.stats),
                "network": source(self.network)}


#: The caveat of an early-fusion network's ratio in :class:`RandomInitTimes`.
_ONE_TRANSITION = "early fusion: one transition"


@dataclass(frozen=True, eq=False)
class RandomInitTimes(Train):
    """The random-initialization closed form :func:`dlnfusion.theory.random_init_times` of the
    runs :class:`Train` would simulate (the same factories, parameters and initial weights),
    without training: four-layer fusion networks of two scalar modalities on
    :class:`~dlnfusion.Stats`, initialized with the ``"frobenius"`` scheme at u0 = ``scale``.

    Per run: ``t_A``, ``t_B``, ``time_ratio`` from the run's initial weights
    (:func:`dlnfusion.theory.alignment_seeds`); NaN for early fusion (L_f = 1, one transition).
    Per grid point: ``time_ratio_leading_order`` (:func:`dlnfusion.theory.time_ratio_leading_order`
    at u0 = ``scale``) with ``time_ratio_leading_order_caveats``, and, with ``expected`` (the
    default), ``time_ratio_expected``: the closed form averaged over the initialization's laws
    (``random_init_times`` without weights; 1 for early fusion), with ``_valid`` and
    ``_caveats``. The average costs quadratures at every grid point: ``expected=False`` leaves
    it out.
    """

    stats: Callable[..., Any]
    network: Callable[..., NetworkSpec]
    record: bool = False
    expected: bool = True

    shardable = False

    def factories(self):
        return (self.stats, self.network)

    def check(self, grid, fixed):
        if "scheme" in grid or fixed.get("scheme") != "frobenius":
            raise ValueError('RandomInitTimes predicts runs of the "frobenius" initialization: '
                             'fix scheme="frobenius"')

    def prepare(self, point):
        spec, data = super().prepare(point)
        if spec.depth != 4 or spec.output_dim != 1 or any(d != 1 for d in spec.input_dims) \
                or not spec.is_linear or not isinstance(data, Stats):
            raise ValueError("RandomInitTimes predicts four-layer linear networks of scalar "
                             "modalities and a scalar output on population statistics (a Stats)")
        return spec, data

    def labels(self, prepared):
        return {}

    def run(self, points, prepared, seeds, mesh=None):
        from ... import theory as th

        spec = prepared[0][0]
        n = len(points)
        t_a, t_b, ratio = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        if spec.fusion_layer > 1:
            weights = th.alignment_seeds(spec, self._initial(points, prepared, seeds))
            for r, (p, (_, st)) in enumerate(zip(points, prepared)):
                pred = th.random_init_times(st, spec.depth, spec.fusion_layer, p["scale"],
                                            spec.layer_shapes[0][0], p["lr"], weights=weights[r])
                t_a[r], t_b[r], ratio[r] = pred.t_A, pred.t_B, pred.ratio
        return Batch({"t_A": t_a, "t_B": t_b, "time_ratio": ratio})

    def columns(self, point, prepared):
        from ... import theory as th

        spec, st = prepared
        L, Lf, scale = spec.depth, spec.fusion_layer, point["scale"]
        lo = th.time_ratio_leading_order(st, L, Lf, scale)
        out = {"time_ratio_leading_order": float(lo.value),
               "time_ratio_leading_order_caveats": CAVEAT_SEPARATOR.join(lo.caveats)}
        if self.expected:
            ex = th.random_init_times(st, L, Lf, scale, spec.layer_shapes[0][0], point["lr"]) \
                if Lf > 1 else th.Prediction(1.0, True, (_ONE_TRANSITION,))
            ratio = ex.ratio if Lf > 1 else ex.value
            out.update(time_ratio_expected=float(ratio), time_ratio_expected_valid=bool(ex.valid),
                       time_ratio_expected_caveats=CAVEAT_SEPARATOR.join(ex.caveats))
        return out

    def describe(self):
        return {"runner": "RandomInitTimes", "stats": source(self.stats),
                "network": source(self.network),
                **({} if self.expected else {"expected": False})}
