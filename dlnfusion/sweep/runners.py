"""What a :class:`~dlnfusion.sweep.Sweep` drives: the runner protocol and the toolkit's runners.

A runner turns grid points into results. It declares

* ``defaults``: its own parameters with their default values (a grid or ``fixed`` may set them,
  and the factories' arguments are parameters too: :meth:`Runner.parameters`);
* how configurations batch: :meth:`Runner.group` maps a point to a key, and the runs (point ×
  seed) of one key run together, cut into chunks of at most :meth:`Runner.chunk_size` runs; one
  chunk is one call of :meth:`Runner.run`, i.e. one compiled call for the batched runners;
* which observables land in the Dataset: :meth:`Runner.run` returns a :class:`Batch` of
  arrays whose leading axis is the chunk's runs, with named extra dimensions (``time``,
  ``modality``, ...) and their coordinates; :meth:`Runner.columns` adds values per grid point
  (the theory of that point), and :attr:`Runner.labels` turns integer codes into names.

The engine does the rest for every runner: the labeled Dataset, chunk files written as they
finish, resume with any chunking, sharding over local devices (for runners that are
``shardable``) and several processes.

Runners here: :class:`Train` (the network simulators, :func:`dlnfusion.train`),
:class:`Reduced` (their reduced dynamics alone, the prediction without training), :class:`Fit`
(mini-batch :func:`dlnfusion.fit` of classifiers on samples), :class:`Completion` (deep matrix
completion, :func:`dlnfusion.train_completion`) and :class:`Predict` (theory alone: a function
of the parameters, no training). Subclass :class:`Runner` for another.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..compare import measure_unimodal_phase, predict_unimodal_phase, theory_columns
from ..networks import NetworkSpec, init_batch
from ..stats import Dataset, Stats
from ..training import fit, train

__all__ = ["Runner", "Batch", "Train", "Reduced", "Fit", "Completion", "Predict", "TRAIN_KEYS",
           "FIT_KEYS", "COMPLETION_KEYS", "CAVEAT_SEPARATOR"]

#: What joins a run's caveats (tuples of strings) into one string of the Dataset: a line break,
#: since a caveat's own text may hold "; " (``text.split(CAVEAT_SEPARATOR)`` gives them back).
CAVEAT_SEPARATOR = "\n"
#: Training parameters of :class:`Train`, with their defaults.
TRAIN_KEYS = {"lr": 0.04, "scale": 1e-9, "scheme": "normal", "method": "gd",
              "loss": "squared", "steps": 40_000, "stop_loss": 1e-4, "record_every": 100}
#: Training parameters of :class:`Fit`, with their defaults (those of :func:`dlnfusion.fit`;
#: ``epochs`` has none there, 10 here).
FIT_KEYS = {"epochs": 10, "batch_size": 1000, "lr": 0.04, "momentum": 0.0,
            "weight_decay": 0.0, "lr_decay": 1.0, "loss": "cross_entropy", "record_every": 1}


@dataclass
class Batch:
    """What one chunk produced: ``values`` name → array whose first axis is the chunk's runs,
    ``dims`` name → the names of the array's further axes (none: one value per run), and
    ``coords`` dimension → its coordinate values (optional per dimension; where chunks differ
    in length, the Dataset takes the longest and pads the shorter records with NaN)."""

    values: dict
    dims: dict = field(default_factory=dict)
    coords: dict = field(default_factory=dict)


def params_of(fn) -> tuple:
    """The names of the keyword-usable arguments of ``fn``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read the arguments of {fn!r}") from exc
    return tuple(p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def call(fn, point: Mapping):
    """``fn`` called with the entries of ``point`` it takes by name."""
    return fn(**{k: point[k] for k in params_of(fn) if k in point})


def source(fn) -> str:
    """The source of ``fn`` (its name where there is none): part of a sweep's identity."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))


class Runner:
    """The protocol a :class:`~dlnfusion.sweep.Sweep` drives (module docstring).

    Subclasses set ``defaults`` and implement :meth:`run`; the rest has defaults: every point
    its own group, chunks of a whole group, no per-point columns.
    """

    #: The runner's own parameters and their defaults.
    defaults: Mapping[str, Any] = {}
    #: Whether a chunk may be sharded over several local devices (the engine then pads it to a
    #: multiple of the device count and passes ``mesh`` to :meth:`run`).
    shardable: bool = False

    def factories(self) -> tuple:
        """The callables whose arguments are parameters of the sweep."""
        return ()

    def parameters(self) -> set:
        """Every name a grid or ``fixed`` may set."""
        names = set(self.defaults)
        for fn in self.factories():
            names |= set(params_of(fn))
        return names

    def check(self, grid: Mapping, fixed: Mapping) -> None:
        """Refuse a grid the runner cannot run (ValueError naming the parameter)."""

    def prepare(self, point: Mapping) -> Any:
        """What the runner builds once per grid point (data, network); checked here."""
        return None

    def group(self, point: Mapping, prepared: Any):
        """The key of the runs that may share one call (default: every point alone)."""
        return json.dumps({k: repr(v) for k, v in sorted(point.items())})

    def chunk_size(self, point: Mapping, prepared: Any, n_runs: int) -> int:
        """Runs per call when the user gives no ``chunk_size`` (default: the whole group)."""
        return n_runs

    def run(self, points: list, prepared: list, seeds: list, mesh=None) -> Batch:
        """Results of the runs (``points[r]``, ``seeds[r]``), as a :class:`Batch`."""
        raise NotImplementedError(f"{type(self).__name__} does not define run()")

    def columns(self, point: Mapping, prepared: Any) -> dict:
        """Values per grid point (no seed axis): a float, bool or str each."""
        return {}

    def labels(self, prepared: Any) -> dict:
        """Variable name → the names its integer codes stand for (``prepared``: the first grid
        point's); the Dataset holds the names (−1 or an unknown code: "none")."""
        return {}

    def describe(self) -> dict:
        """A JSON-able identity (the sources of the factories), to refuse resuming another
        sweep in the same folder."""
        return {"runner": type(self).__name__,
                "factories": [source(fn) for fn in self.factories()]}


# ---------------------------------------------------------------------- networks: train
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
    every run (:func:`dlnfusion.compare.predict_unimodal_phase`).

    Per run: ``status``, ``stop_time``, ``final_loss``; for two modalities the unimodal-phase
    observables ``t_A``, ``t_B``, ``time_ratio``, ``first``, ``misattribution``,
    ``plateau_loss`` (and ``*_predicted`` with ``predict``); with ``record`` the trajectories
    ``loss`` (time), ``eval_loss``, ``map_<modality>`` (time, out, in). Per grid point the
    theory columns of :func:`dlnfusion.compare.theory_columns` (``time_ratio_leading_order``,
    ``time_ratio_gradient_flow``, ``misattribution_theory``, ``plateau_loss_theory``, each with
    ``_valid`` and ``_caveats``).
    """

    stats: Callable[..., Any]
    network: Callable[..., NetworkSpec]
    eval_stats: Callable[..., Stats] | None = None
    record: bool = True
    predict: bool = False

    defaults = TRAIN_KEYS
    shardable = True

    def factories(self):
        return tuple(f for f in (self.stats, self.network, self.eval_stats) if f is not None)

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
        return (spec, shape) + tuple(point[k] for k in _STATIC_TRAIN)

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

    def run(self, points, prepared, seeds, mesh=None):
        p0, (spec, _) = points[0], prepared[0]
        run_data = [d for _, d in prepared]
        params = self._initial(points, prepared, seeds)
        ev = None
        if self.eval_stats is not None:
            evs = [call(self.eval_stats, p) for p in points]
            ev = evs[0]
            if any(e is not ev for e in evs):
                raise ValueError("eval_stats must not vary across a chunk; sweep the data instead")
        lrs = [float(p["lr"]) for p in points]
        traj = train(spec, run_data, params, lr=lrs, method=p0["method"],
                     steps=int(p0["steps"]), record_every=p0["record_every"],
                     stop_loss=p0["stop_loss"], loss=p0["loss"], eval_stats=ev, sharding=mesh)
        out = Batch({"status": traj.status.astype(np.int8), "stop_time": traj.stop_time,
                     "final_loss": traj.final_loss})
        if self.record:
            out.coords["time"] = traj.time
            out.values["loss"], out.dims["loss"] = traj.loss, ("time",)
            if traj.eval_loss is not None:
                out.values["eval_loss"], out.dims["eval_loss"] = traj.eval_loss, ("time",)
            for name, m in zip(spec.names, traj.maps):
                out.values[f"map_{name}"] = m
                out.dims[f"map_{name}"] = ("time", "out", f"in_{name}")
        if spec.n_modalities == 2:
            out.values.update(_phase_values(measure_unimodal_phase(traj)))
            if self.predict and spec.is_linear and isinstance(run_data[0], Stats):
                pred, _ = predict_unimodal_phase(
                    spec, run_data, traj.initial_params, lrs, method=p0["method"],
                    steps=int(p0["steps"]), record_every=p0["record_every"],
                    stop_loss=p0["stop_loss"])
                out.values.update({"t_A_predicted": pred.t_A, "t_B_predicted": pred.t_B,
                                   "time_ratio_predicted": pred.time_ratio})
        return out

    def columns(self, point, prepared):
        spec, data = prepared
        if not isinstance(data, Stats):
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
                "record": self.record, "predict": self.predict}


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
        return (self.stats, self.network)

    def prepare(self, point):
        spec, data = super().prepare(point)
        if not spec.is_linear or not isinstance(data, Stats):
            raise ValueError("Reduced predicts linear networks trained on population "
                             "statistics (a Stats and a linear NetworkSpec)")
        return spec, data

    def run(self, points, prepared, seeds, mesh=None):
        p0, (spec, _) = points[0], prepared[0]
        stats = [d for _, d in prepared]
        params = self._initial(points, prepared, seeds)
        meas, traj = predict_unimodal_phase(
            spec, stats, params, [float(p["lr"]) for p in points], method=p0["method"],
            steps=int(p0["steps"]), record_every=p0["record_every"], stop_loss=p0["stop_loss"])
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
                "network": source(self.network), "record": self.record}


# ---------------------------------------------------------------------- classifiers: fit
@dataclass(frozen=True, eq=False)
class Fit(Runner):
    """Mini-batch SGD of classifiers on samples, :func:`dlnfusion.fit`, all seeds of a grid
    point in one compiled call.

    ``model`` returns the network (:class:`~dlnfusion.FusionMLP`, :class:`~dlnfusion.FusionCNN`,
    ...) and ``task`` the :class:`~dlnfusion.FusionTask` of a grid point, each called with the
    parameters it names; the training parameters are :data:`FIT_KEYS`; ``interventions``, if
    given, is called with the parameters it names and returns the point's windows (in
    epochs). Per run: ``status``, ``final_test_acc``, and the records ``train_loss``,
    ``test_acc`` (epoch) and ``unimodal_acc`` (modality, epoch).
    """

    model: Callable[..., Any]
    task: Callable[..., Any]
    interventions: Callable[..., Any] | None = None

    defaults = FIT_KEYS

    def factories(self):
        return tuple(f for f in (self.model, self.task, self.interventions) if f is not None)

    def prepare(self, point):
        from ..data import FusionTask
        task = call(self.task, point)
        if not isinstance(task, FusionTask):
            raise ValueError(f"task factory returned {type(task).__name__}, not FusionTask")
        return call(self.model, point), task

    def run(self, points, prepared, seeds, mesh=None):
        p0, (model, task) = points[0], prepared[0]
        windows = None if self.interventions is None else call(self.interventions, p0)
        h = fit(model, task, list(seeds), epochs=int(p0["epochs"]),
                batch_size=int(p0["batch_size"]), lr=float(p0["lr"]),
                momentum=float(p0["momentum"]), weight_decay=float(p0["weight_decay"]),
                lr_decay=float(p0["lr_decay"]), loss=p0["loss"],
                record_every=int(p0["record_every"]), interventions=windows)
        return Batch({"status": h.status.astype(np.int8), "final_test_acc": h.test_acc[:, -1],
                      "train_loss": h.train_loss, "test_acc": h.test_acc,
                      "unimodal_acc": h.unimodal_acc},
                     dims={"train_loss": ("epoch",), "test_acc": ("epoch",),
                           "unimodal_acc": ("modality", "epoch")},
                     coords={"epoch": h.epoch, "modality": np.array(task.names)})


# ---------------------------------------------------------------------- matrix completion
#: Parameters of :class:`Completion`, with their defaults (``scale`` None: the paper's σ for
#: the depth; ``record_until`` None: the chunk's largest ``steps``).
COMPLETION_KEYS = {"depth": 3, "steps": 1000, "steps_after": None, "deficit_end": 0, "lr": 0.2,
                   "scale": None, "record_every": 100, "record_until": None,
                   "n_singular": None, "dtype": "float64"}
_STATIC_COMPLETION = ("depth", "lr", "scale", "record_every", "record_until", "n_singular",
                      "dtype")


def _budget(point) -> int:
    """A completion run's step budget: ``steps``, or ``deficit_end + steps_after``."""
    after = point["steps_after"]
    return int(point["steps"]) if after is None else int(point["deficit_end"]) + int(after)


@dataclass(frozen=True, eq=False)
class Completion(Runner):
    """Deep matrix completion, :func:`dlnfusion.train_completion`: the runs of a depth (and
    its other compiled settings) in one call, those that share their deficit simulated once.

    ``target`` and ``mask`` return a run's own task (an (n, n) matrix and an (n, n) boolean
    observed set), ``deficit_target`` and ``deficit_mask`` (optional; default the run's own)
    the task of the deficit window [0, ``deficit_end``) at the start of training; each is
    called with the parameters it names, ``seed`` included (a run's targets and masks may
    depend on its seed). Parameters: :data:`COMPLETION_KEYS` (``steps_after``, if given, sets a
    run's budget to ``deficit_end + steps_after`` in place of ``steps``). Per run: ``status``,
    ``test_error_final``, ``train_loss_final``, and the records ``test_error``, ``train_loss``
    (time) and ``singular_values`` (time, singular), largest first.
    """

    target: Callable[..., Any]
    mask: Callable[..., Any]
    deficit_target: Callable[..., Any] | None = None
    deficit_mask: Callable[..., Any] | None = None

    defaults = COMPLETION_KEYS

    def factories(self):
        return tuple(f for f in (self.target, self.mask, self.deficit_target,
                                 self.deficit_mask) if f is not None)

    def parameters(self):
        return super().parameters() - {"seed"}

    def group(self, point, prepared):
        return tuple(repr(point[k]) for k in _STATIC_COMPLETION)

    def run(self, points, prepared, seeds, mesh=None):
        from ..interventions import Deficit
        from ..training.completion import CompletionTask, train_completion

        mats, masks, index = [], [], {}

        def slot(store, kind, a):
            a = np.asarray(a)
            key = (kind, a.shape, a.dtype.str, hashlib.sha256(a.tobytes()).hexdigest())
            if key not in index:
                index[key] = len(store)
                store.append(a)
            return index[key]

        own_t, own_m, def_t, def_m = [], [], [], []
        for p, s in zip(points, seeds):
            q = {**p, "seed": s}
            own_t.append(slot(mats, "t", call(self.target, q)))
            own_m.append(slot(masks, "m", call(self.mask, q)))
            def_t.append(own_t[-1] if self.deficit_target is None else
                         slot(mats, "t", call(self.deficit_target, q)))
            def_m.append(own_m[-1] if self.deficit_mask is None else
                         slot(masks, "m", call(self.deficit_mask, q)))
        p0 = points[0]
        ends = np.array([int(p["deficit_end"]) for p in points])
        window = Deficit(CompletionTask(target=np.array(def_t), mask=np.array(def_m)), start=0,
                         end=ends)
        r = train_completion(np.stack(mats), np.stack(masks), depth=int(p0["depth"]),
                             seeds=np.array(seeds), steps=np.array([_budget(p) for p in points]),
                             target=np.array(own_t), mask=np.array(own_m),
                             interventions=[window], lr=float(p0["lr"]), scale=p0["scale"],
                             record_every=int(p0["record_every"]),
                             record_until=p0["record_until"], n_singular=p0["n_singular"],
                             dtype=p0["dtype"])
        k = r.singular_values.shape[-1]
        return Batch({"status": r.status.astype(np.int8), "test_error_final": r.test_error_final,
                      "train_loss_final": r.train_loss_final, "test_error": r.test_error,
                      "train_loss": r.train_loss, "singular_values": r.singular_values},
                     dims={"test_error": ("time",), "train_loss": ("time",),
                           "singular_values": ("time", "singular")},
                     coords={"time": r.time, "singular": np.arange(k)})


# ---------------------------------------------------------------------- theory alone
def _flat(value, name=""):
    """A prediction as name → scalar: a mapping's entries, a dataclass's fields (a
    Prediction's value, valid, caveats; a TimePrediction's t_A, t_B, ... and its ratio),
    tuples of strings joined with :data:`CAVEAT_SEPARATOR`."""
    if isinstance(value, Mapping):
        items = value.items()
    elif is_dataclass(value):
        items = [(f.name, getattr(value, f.name)) for f in fields(value)]
        if hasattr(type(value), "ratio"):
            items.append(("ratio", value.ratio))
    else:
        return {name: value}
    out = {}
    for k, v in items:
        key = f"{name}_{k}" if name else str(k)
        if key.endswith("_value") and name:
            key = name
        if isinstance(v, (tuple, list)) and all(isinstance(x, str) for x in v):
            out[key] = CAVEAT_SEPARATOR.join(v)
        elif isinstance(v, Mapping) or is_dataclass(v):
            out.update(_flat(v, key))
        else:
            out[key] = v
    return out


@dataclass(frozen=True, eq=False)
class Predict(Runner):
    """Theory alone: ``fn`` called with the parameters it names (and ``seed``, if it takes one)
    returns a prediction, and every run of the grid is one call, no training.

    The prediction is a number, a mapping of names to numbers, booleans or strings, or a
    result of :mod:`dlnfusion.theory` (a ``Prediction``: ``value``, ``valid``, ``caveats``;
    a ``TimePrediction``: ``t_A``, ``t_B``, ``first``, ``second``, ``valid``, ``caveats``,
    ``ratio``; nested results are prefixed by their key, caveats joined with
    :data:`CAVEAT_SEPARATOR`, a line break). Each
    entry becomes a variable of the Dataset (``value`` for a bare number). ``defaults`` may
    give values to parameters that the grid does not set.
    """

    fn: Callable[..., Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def factories(self):
        return (self.fn,)

    def group(self, point, prepared):
        return "all"

    def run(self, points, prepared, seeds, mesh=None):
        takes_seed = "seed" in params_of(self.fn)
        rows = []
        for p, s in zip(points, seeds):
            res = call(self.fn, {**p, "seed": s} if takes_seed else p)
            rows.append(_flat(res) if (isinstance(res, Mapping) or is_dataclass(res))
                        else {"value": res})
        names = list(dict.fromkeys(k for r in rows for k in r))
        values = {}
        for k in names:
            col = [r.get(k) for r in rows]
            if all(isinstance(v, str) for v in col):
                values[k] = np.array(col, dtype=str)
            elif all(isinstance(v, (bool, np.bool_)) for v in col):
                values[k] = np.array(col, dtype=bool)
            else:
                try:
                    values[k] = np.array([np.nan if v is None else v for v in col], dtype=float)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"prediction entry {k!r} must be a number, a bool or a "
                                     f"string in every run, got {col[:3]!r}") from exc
        return Batch(values)

    def describe(self):
        return {"runner": "Predict", "fn": source(self.fn),
                "defaults": {k: repr(v) for k, v in self.defaults.items()}}


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:16]
