"""Runners of the modality-balancing methods (a :class:`Balancing`): :class:`Balance`,
:class:`ReducedBalance`, :class:`OGMLaw`, :class:`BalanceFit`, and the information amount,
:class:`FisherTrace`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ...compare import measure_unimodal_phase
from ...training import fit, train
from .base import Batch, CAVEAT_SEPARATOR, Runner, call, source
from .networks import TRAIN_KEYS, Train, _phase_values

__all__ = ["Balancing", "BALANCING_METHODS", "Balance", "ReducedBalance", "OGMLaw", "BalanceFit", "BALANCE_FIT_KEYS", "FisherTrace", "FISHER_KEYS"]


#: The methods a :class:`Balancing` names.
BALANCING_METHODS = ("joint", "ogm", "ogm_ge", "inforeg")


@dataclass(frozen=True)
class Balancing:
    """A modality-balancing method and its options, as the runners :class:`Balance`,
    :class:`ReducedBalance`, :class:`OGMLaw` and :class:`BalanceFit` apply it.

    ``method``: "joint" (plain training), "ogm" (OGM, no noise), "ogm_ge" (OGM-GE) or
    "inforeg" (:mod:`dlnfusion.transforms`); ``unimodal`` = λ ≥ 0 adds λ times every branch's
    unimodal loss (joint training*, InfoReg*). ``alpha``: OGM's; ``epoch`` (steps of
    population-level training per epoch), ``beta``, ``K``, ``window`` and, for mini-batch
    training, ``trace``: InfoReg's. The reduced simulators iterate the same rules
    (:func:`dlnfusion.reduced.balancing_two_layer`, :meth:`reduced`).
    """

    method: str = "joint"
    unimodal: float = 0.0
    alpha: float = 0.8
    epoch: int = 10
    beta: float = 0.9
    K: float = 0.04
    window: str = "paper"
    trace: str = "batch"

    def __post_init__(self):
        if self.method not in BALANCING_METHODS:
            raise ValueError(f"method must be one of {BALANCING_METHODS}, got {self.method!r}")

    def transforms(self, spec) -> tuple:
        """The transformations chained before the optimizer in population-level training of
        the linear network ``spec``."""
        from ...transforms import inforeg, ogm_ge, unimodal_losses
        out = (unimodal_losses(spec, self.unimodal),) if self.unimodal else ()
        if self.method == "inforeg":
            out += (inforeg(spec, epoch=self.epoch, beta=self.beta, K=self.K,
                            window=self.window),)
        elif self.method in ("ogm", "ogm_ge"):
            out += (ogm_ge(spec, alpha=self.alpha, noise=self.method == "ogm_ge"),)
        return out

    def optimizer(self, spec):
        """:func:`dlnfusion.train`'s ``optimizer``: None (the hand-written gradient descent)
        for plain joint training, otherwise :meth:`transforms` chained before ``optax.sgd``."""
        import optax
        tx = self.transforms(spec)
        return None if not tx else (lambda lr: optax.chain(*tx, optax.sgd(lr)))

    def batch_transforms(self, model) -> tuple:
        """The transformations chained before the optimizer in mini-batch training of the
        classifier ``model`` with :func:`dlnfusion.fit`."""
        from ...transforms import inforeg_batches, ogm_ge_batches, unimodal_losses_batches
        out = (unimodal_losses_batches(model, self.unimodal),) if self.unimodal else ()
        if self.method == "inforeg":
            out += (inforeg_batches(model, beta=self.beta, K=self.K, window=self.window,
                                    trace=self.trace),)
        elif self.method in ("ogm", "ogm_ge"):
            out += (ogm_ge_batches(model, alpha=self.alpha, noise=self.method == "ogm_ge"),)
        return out

    def reduced(self) -> dict:
        """The keyword arguments of :func:`dlnfusion.reduced.balancing_two_layer`."""
        kw = {"balancing": self.method, "unimodal": float(self.unimodal)}
        if self.method == "inforeg":
            kw.update(epoch=self.epoch, beta=self.beta, K=self.K, window=self.window)
        elif self.method in ("ogm", "ogm_ge"):
            kw.update(alpha=self.alpha)
        return kw


def _default_methods():
    return {m: Balancing(m) for m in BALANCING_METHODS}


def _balanced_fixed_point(stats, lam) -> tuple:
    """Caveats of added unimodal losses of weight λ on the scalar toy: the fixed point of the
    fused loss plus λ × the unimodal ones, (Σ + λ diag Σ) w = (1 + λ) s, against the fused
    optimum."""
    S, sv = np.asarray(stats.sigma), np.asarray(stats.sigma_yx)[0]
    w_fix = np.linalg.solve(S + lam * np.diag(np.diag(S)), (1 + lam) * sv)
    w_star = stats.global_solution()[0]
    notes = []
    if not np.allclose(w_fix, w_star, rtol=1e-9):
        notes.append(f"the unimodal losses move the fixed point to w = ({w_fix[0]:.3g}, "
                     f"{w_fix[1]:.3g}), off the fused optimum: the fused loss stays above its "
                     "floor")
    if w_fix[1] < 0.5 * w_star[1]:
        notes.append("B settles below half of its fused-optimum weight: no t_B")
    return tuple(notes)


def _stopped_weights(w, stats, stop_loss):
    """The total weights (M,) of a reduced run (w: (T, M), every step) at its first step whose
    population loss is below ``stop_loss`` (the last step if none), where dlnfusion.train
    stops the network."""
    if stop_loss is None:
        return w[-1]
    S = np.asarray(stats.sigma)
    w_star = stats.global_solution()[0]
    floor = float(np.asarray(stats.sigma_yy).reshape(())) - w_star @ S @ w_star
    dev = w - w_star
    loss = 0.5 * (floor + np.einsum("tm,mn,tn->t", dev, S, dev))
    below = np.nonzero(loss < stop_loss)[0]
    return w[below[0]] if below.size else w[-1]


def _texts(values, width: int = 4096):
    """Strings as a fixed-width array wide enough for any run's text: the Dataset's string
    variable takes its width from the first chunk, so every chunk uses the same one."""
    values = [str(v) for v in values]
    return np.array(values, dtype=f"U{max([width] + [len(v) for v in values])}")


def _by_point(points) -> list:
    """The chunk's runs grouped by grid point (consecutive runs of one point): index lists."""
    out, last = [], None
    for r, p in enumerate(points):
        if p is not last:
            out.append([])
            last = p
        out[-1].append(r)
    return out


@dataclass(frozen=True, eq=False)
class Balance(Train):
    """Population-level training (:func:`dlnfusion.train`) with a modality-balancing method:
    the parameter ``balancing`` names one of ``methods`` (name → :class:`Balancing`; default
    every method of :data:`BALANCING_METHODS` with its default options), whose transformations
    are chained before ``optax.sgd`` (plain joint training: the hand-written gradient
    descent). The other parameters and factories are :class:`Train`'s; the runs of one method
    share one compiled call.

    Per run: as :class:`Train` (without ``predict`` and the theory columns), and the final
    total maps ``final_map_<modality>`` (out, in), where the run stopped.
    """

    methods: Mapping[str, Balancing] = field(default_factory=_default_methods)

    defaults = {**TRAIN_KEYS, "balancing": "joint"}

    def check(self, grid, fixed):
        super().check(grid, fixed)
        names = grid.get("balancing", [fixed.get("balancing", self.defaults["balancing"])])
        unknown = [n for n in names if n not in self.methods]
        if unknown:
            raise ValueError(f"balancing {unknown} not among the runner's methods "
                             f"{sorted(self.methods)}")

    def group(self, point, prepared):
        return super().group(point, prepared) + (point["balancing"],)

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
        traj = train(spec, run_data, params, lr=[float(p["lr"]) for p in points],
                     method=p0["method"], steps=int(p0["steps"]),
                     record_every=p0["record_every"], stop_loss=p0["stop_loss"],
                     loss=p0["loss"], eval_stats=ev, sharding=mesh,
                     optimizer=self.methods[p0["balancing"]].optimizer(spec))
        out = Batch({"status": traj.status.astype(np.int8), "stop_time": traj.stop_time,
                     "final_loss": traj.final_loss})
        for name, m in zip(spec.names, traj.final_maps):
            out.values[f"final_map_{name}"] = np.asarray(m)
            out.dims[f"final_map_{name}"] = ("out", f"in_{name}")
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
        return out

    def columns(self, point, prepared):
        return {}

    def describe(self):
        return {**super().describe(), "runner": type(self).__name__,
                "methods": {k: repr(v) for k, v in self.methods.items()}}


@dataclass(frozen=True, eq=False)
class ReducedBalance(Balance):
    """The exact reduced dynamics of the runs :class:`Balance` would train (the same
    factories, parameters and initial weights), without the networks:
    :func:`dlnfusion.reduced.balancing_two_layer` from each run's
    :func:`dlnfusion.theory.initial_gram` (two-layer late fusion, scalar modalities and
    output, :class:`~dlnfusion.Stats`; OGM-GE in mean field). Every step is iterated (the
    budget ``steps``).

    Per run: ``status``, ``t_A``, ``t_B``, ``time_ratio`` (NaN without a transition),
    ``valid`` (the simulator's) and ``caveats`` (the simulator's, then those of added unimodal
    losses that move the fixed point), ``final_w`` (modality)
    the total weights at the first step whose loss is below ``stop_loss``, where the network
    would stop; with ``record`` the total weights ``w`` (step, modality) at every step.
    """

    record: bool = False

    def run(self, points, prepared, seeds, mesh=None):
        from ...reduced import balancing_two_layer
        from ...theory import initial_gram

        p0, (spec, _) = points[0], prepared[0]
        gram = initial_gram(spec, self._initial(points, prepared, seeds))
        method = self.methods[p0["balancing"]]
        n, M, steps = len(points), spec.n_modalities, int(p0["steps"])
        vals = {"status": np.zeros(n, np.int8), "t_A": np.full(n, np.nan),
                "t_B": np.full(n, np.nan), "time_ratio": np.full(n, np.nan),
                "valid": np.zeros(n, bool), "caveats": np.full(n, "", dtype=object),
                "final_w": np.full((n, M), np.nan)}
        if self.record:
            vals["w"] = np.full((n, steps + 1, M), np.nan)
        for idx in _by_point(points):
            stats = prepared[idx[0]][1]
            res = balancing_two_layer(stats, float(points[idx[0]]["lr"]), gram[idx], steps,
                                      **method.reduced())
            extra = _balanced_fixed_point(stats, method.unimodal) if method.unimodal else ()
            for j, r in enumerate(idx):
                vals["status"][r] = res.status[j]
                vals["t_A"][r], vals["t_B"][r] = res.t_A[j], res.t_B[j]
                vals["time_ratio"][r] = res.ratio[j]
                vals["valid"][r] = bool(res.valid[j])
                vals["caveats"][r] = CAVEAT_SEPARATOR.join(tuple(res.caveats[j]) + extra)
                vals["final_w"][r] = _stopped_weights(res.w[j], stats, p0["stop_loss"])
                if self.record:
                    vals["w"][r] = res.w[j]
        vals["caveats"] = _texts(vals["caveats"])
        dims = {"final_w": ("modality",), "w": ("step", "modality")}
        coords = {"modality": np.array(spec.names)}
        if self.record:
            coords["step"] = np.arange(steps + 1)
        return Batch(vals, {k: v for k, v in dims.items() if k in vals}, coords)


@dataclass(frozen=True, eq=False)
class OGMLaw(Balance):
    """The exact law of OGM-GE's noisy training of the runs :class:`Balance` would train with
    ``balancing`` "ogm_ge" (same factories, parameters and initial weights):
    :func:`dlnfusion.reduced.ogm_ge_two_layer` from each run's
    :func:`dlnfusion.theory.noise_gram`, ``paths`` noise realizations per run, recorded every
    ``record_every`` steps, its stop and divergence those of ``stop_loss``. The law's own
    noise is drawn from ``noise_seed`` (a factory, called with the parameters it names),
    split over the seeds of a grid point (a grid point's seeds run together).

    Per run: ``status`` (max_steps), ``time_ratio`` and ``time_ratio_sem`` (the mean of t_B/t_A
    over the paths that reach both transitions and its standard error), ``t_A``, ``t_B`` (their
    means over the paths), ``diverged`` (the fraction of diverged paths), ``valid``,
    ``caveats``, ``final_w`` (modality: the paths' mean at the end); with ``record`` the mean
    total weights ``w`` (time, modality).
    """

    noise_seed: Callable[..., int] = lambda: 0
    record: bool = False

    defaults = {**TRAIN_KEYS, "balancing": "ogm_ge", "paths": 256}

    def factories(self):
        return super().factories() + (self.noise_seed,)

    def check(self, grid, fixed):
        super().check(grid, fixed)
        if self.eval_stats is not None:
            raise ValueError("OGMLaw takes no eval_stats (give noise_seed by keyword)")
        for n in grid.get("balancing", [fixed.get("balancing", self.defaults["balancing"])]):
            if self.methods[n].method != "ogm_ge":
                raise ValueError(f"OGMLaw samples OGM-GE's law; balancing {n!r} is "
                                 f"{self.methods[n].method!r}")

    def group(self, point, prepared):
        return json.dumps({k: repr(v) for k, v in sorted(point.items())})

    def chunk_size(self, point, prepared, n_runs):
        return n_runs

    def run(self, points, prepared, seeds, mesh=None):
        from ...reduced import ogm_ge_two_layer
        from ...theory import noise_gram

        p0, (spec, stats) = points[0], prepared[0]
        method = self.methods[p0["balancing"]]
        law = ogm_ge_two_layer(
            stats, float(p0["lr"]), noise_gram(spec, self._initial(points, prepared, seeds)),
            _width(spec),
            int(p0["steps"]), alpha=method.alpha, unimodal=float(method.unimodal),
            paths=int(p0["paths"]), seed=int(call(self.noise_seed, p0)),
            record_every=int(p0["record_every"]), stop_loss=p0["stop_loss"])
        n = len(points)
        from ...results import Status

        vals = {"status": np.full(n, int(Status.MAX_STEPS), np.int8),
                "time_ratio": law.ratio_mean, "time_ratio_sem": law.ratio_sem,
                "t_A": np.nanmean(law.t_A, axis=-1), "t_B": np.nanmean(law.t_B, axis=-1),
                "diverged": law.diverged_fraction, "valid": np.asarray(law.valid, bool),
                "caveats": _texts([CAVEAT_SEPARATOR.join(c) for c in law.caveats]),
                "final_w": law.w_mean[:, -1]}
        dims = {"final_w": ("modality",)}
        coords = {"modality": np.array(spec.names)}
        if self.record:
            vals["w"], dims["w"], coords["time"] = law.w_mean, ("time", "modality"), law.time
        return Batch(vals, dims, coords)

    def describe(self):
        return {**super().describe(), "noise_seed": source(self.noise_seed)}


def _width(spec) -> int:
    """The hidden width of a two-layer late-fusion network (its first layer's rows)."""
    return int(spec.layer_shapes[0][0])


#: Training parameters of :class:`BalanceFit`, with their defaults: those of :class:`Fit`'s
#: SGD with momentum and weight decay, the learning rate × ``decay`` from epoch ``decay_at``
#: on (None: constant), and the method's name.
BALANCE_FIT_KEYS = {"epochs": 10, "batch_size": 1000, "lr": 0.04, "momentum": 0.0,
                    "weight_decay": 0.0, "decay_at": None, "decay": 0.1,
                    "loss": "cross_entropy", "record_every": 1, "balancing": "joint"}


@dataclass(frozen=True, eq=False)
class BalanceFit(Runner):
    """Mini-batch training of classifiers (:func:`dlnfusion.fit`) with a modality-balancing
    method: ``balancing`` names one of ``methods`` (name → :class:`Balancing`), whose
    mini-batch transformations (:meth:`Balancing.batch_transforms`) are chained before
    optax's weight decay and SGD with momentum (the learning rate × ``decay`` from epoch
    ``decay_at`` on). ``model`` and ``task`` as for :class:`Fit`; the parameters are
    :data:`BALANCE_FIT_KEYS`; all seeds of a grid point train in one compiled call.

    Per run: ``status``, ``final_test_acc``, and the records ``train_loss``, ``test_acc``
    (epoch) and ``unimodal_acc`` (modality, epoch).
    """

    model: Callable[..., Any]
    task: Callable[..., Any]
    methods: Mapping[str, Balancing] = field(default_factory=_default_methods)

    defaults = BALANCE_FIT_KEYS

    def factories(self):
        return (self.model, self.task)

    def check(self, grid, fixed):
        names = grid.get("balancing", [fixed.get("balancing", "joint")])
        unknown = [n for n in names if n not in self.methods]
        if unknown:
            raise ValueError(f"balancing {unknown} not among the runner's methods "
                             f"{sorted(self.methods)}")

    def prepare(self, point):
        from ...data import FusionTask
        task = call(self.task, point)
        if not isinstance(task, FusionTask):
            raise ValueError(f"task factory returned {type(task).__name__}, not FusionTask")
        return call(self.model, point), task

    def run(self, points, prepared, seeds, mesh=None):
        import optax

        p0, (model, task) = points[0], prepared[0]
        batch = int(p0["batch_size"])
        per_epoch = -(-task.n_train // batch)
        pre = self.methods[p0["balancing"]].batch_transforms(model)

        def optimizer(lr):
            sched = lr if p0["decay_at"] is None else optax.piecewise_constant_schedule(
                lr, {int(p0["decay_at"]) * per_epoch: float(p0["decay"])})
            base = optax.chain(optax.add_decayed_weights(float(p0["weight_decay"])),
                               optax.sgd(sched, momentum=float(p0["momentum"])))
            return optax.chain(*pre, base)

        h = fit(model, task, list(seeds), epochs=int(p0["epochs"]), batch_size=batch,
                lr=float(p0["lr"]), optimizer=optimizer, loss=p0["loss"],
                record_every=int(p0["record_every"]))
        return Batch({"status": h.status.astype(np.int8), "final_test_acc": h.test_acc[:, -1],
                      "train_loss": h.train_loss, "test_acc": h.test_acc,
                      "unimodal_acc": h.unimodal_acc},
                     dims={"train_loss": ("epoch",), "test_acc": ("epoch",),
                           "unimodal_acc": ("modality", "epoch")},
                     coords={"epoch": h.epoch, "modality": np.array(task.names)})

    def describe(self):
        return {**super().describe(), "methods": {k: repr(v) for k, v in self.methods.items()}}


#: Parameters of :class:`FisherTrace`, with their defaults: :data:`TRAIN_KEYS` (an epoch is
#: ``record_every`` steps), the prime-window thresholds of the paper's rule (``K``) and of the
#: moving average (``K_average``, over ``average`` epochs), and the Monte Carlo check.
FISHER_KEYS = {**TRAIN_KEYS, "stop_loss": None, "record_every": 10, "K": 0.04,
               "K_average": 0.05, "average": 10, "mc_samples": 100_000, "mc_stride": 200,
               "mc_data_seed": 1234, "mc_seed": 0, "resolvable": 1e-12}


def _chain_state(spec, params):
    """(w0, p0) (runs, M): every branch's initial total weight and, for two-layer branches, its
    ‖W^1‖² + ‖W^2‖² (scalar modalities and output; late fusion)."""
    mats = [np.asarray(W) for W in params.matrices()]
    L = spec.depth
    w0, p0 = [], []
    for m in range(spec.n_modalities):
        layers = mats[m * L:(m + 1) * L]
        P = layers[0]
        for W in layers[1:]:
            P = W @ P
        w0.append(P[:, 0, 0])
        p0.append(sum(np.sum(W ** 2, axis=(1, 2)) for W in layers))
    return np.stack(w0, 1), np.stack(p0, 1)


def _gaussian_samples(stats, n, seed):
    """x ~ N(0, Σ) split by modality and the exact teacher y = W* x (no noise, so no rounding
    floor near convergence)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, stats.input_dim)) @ np.linalg.cholesky(stats.sigma).T
    return tuple(x[:, sl] for sl in stats.slices), x @ stats.global_solution().T


def _monte_carlo(spec, stats, P, F, point):
    """The closed-form traces F (T, M) of one run against per-sample gradients
    (:func:`dlnfusion.compare.fisher_sampled`) at every ``mc_stride`` steps: relative error,
    z-score, and whether the weights are far enough from the solution (relative deviation
    above ``resolvable``) for float64 per-sample residuals to resolve them."""
    from ...compare import fisher_sampled
    from ...networks import Params, total_maps

    xs, y = _gaussian_samples(stats, int(point["mc_samples"]), int(point["mc_data_seed"]))
    w_star = stats.global_solution().reshape(-1)
    rel, z, ok = [], [], []
    ks = range(0, F.shape[0], max(1, int(point["mc_stride"]) // int(point["record_every"])))
    for k in ks:
        pk = Params.from_matrices(spec, [np.asarray(W)[k] for W in P])
        mean, se = fisher_sampled(spec, pk, xs, y, stderr=True)
        rel.append(np.abs(mean / F[k] - 1.0))
        z.append(np.abs(mean - F[k]) / se)
        W = np.concatenate([np.asarray(m) for m in total_maps(spec, pk)], axis=1).reshape(-1)
        ok.append(bool(np.max(np.abs(W - w_star) / np.abs(w_star)) > float(point["resolvable"])))
    return np.array(list(ks)), np.array(rel), np.array(z), np.array(ok)


@dataclass(frozen=True, eq=False)
class FisherTrace(Train):
    """The information amount Tr F_m = E‖∇_{θ_m} ℓ‖² of every branch of a late-fusion linear
    network (scalar modalities and output) during population-level training, against its exact
    reduced prediction, with the prime learning window it defines.

    ``stats`` and ``network`` as for :class:`Train`; ``init`` (optional) returns the runs'
    batched initial :class:`~dlnfusion.Params`, called with the parameters it names and
    ``seeds`` (default: :class:`Train`'s initialization). Parameters :data:`FISHER_KEYS`.
    Training records the closed form (:func:`dlnfusion.compare.fisher_observable`) every
    ``record_every`` steps (an epoch); the theory is :func:`dlnfusion.reduced.fisher_late_fusion`
    from each run's initial weights (every step); the windows are
    :func:`dlnfusion.rules.prime_window`'s ("paper" with ``K``, "moving_average" with
    ``K_average``) on both; the runs with seed ``mc_seed`` are checked by Monte Carlo.

    Per run: ``trace`` and ``trace_theory`` (time, modality) at the records, ``w`` (time,
    modality) the total weights, ``rel_error_theory`` (the largest relative error of the
    theory where the trace is above 1e-12 of its maximum: float64 round-off below),
    ``t_sim``, ``t_theory`` (modality: the step at which w_m reaches half of its global value),
    ``peak_sim``, ``peak_theory`` (modality: the step of Tr F_m's maximum), the windows
    ``window_paper``, ``window_moving_average`` and their ``*_theory`` (modality, time), the
    theory at every step ``trace_fine`` and ``w_fine`` (step, modality); for the checked
    runs ``mc_rel_error``, ``mc_z`` (check, modality) and ``mc_resolvable`` (check).
    """

    init: Callable[..., Any] | None = None

    defaults = FISHER_KEYS

    def factories(self):
        return super().factories() + ((self.init,) if self.init is not None else ())

    def parameters(self):
        return super().parameters() - {"seeds"}

    def chunk_size(self, point, prepared, n_runs):
        return n_runs

    def _initial(self, points, prepared, seeds):
        if self.init is None:
            return Train._initial(points, prepared, seeds)
        return call(self.init, {**points[0], "seeds": list(seeds)})

    def run(self, points, prepared, seeds, mesh=None):
        from ...compare import fisher_observable
        from ...reduced import fisher_late_fusion
        from ...results import first_crossing
        from ...rules import prime_window

        p0, (spec, stats) = points[0], prepared[0]
        E, steps, lr = int(p0["record_every"]), int(p0["steps"]), float(p0["lr"])
        traj = train(spec, stats, self._initial(points, prepared, seeds), lr=lr, steps=steps,
                     record_every=E, stop_loss=p0["stop_loss"],
                     observe={"fisher": fisher_observable(spec=spec),
                              "params": lambda snap: snap.params})
        F, t = np.asarray(traj.records["fisher"]), np.asarray(traj.time)     # (S, T, M)
        w0, n0 = _chain_state(spec, traj.initial_params)
        theory = [fisher_late_fusion(stats, spec.depth, lr, w0[s], steps,
                                     **(dict(init_norms=n0[s]) if spec.depth == 2 else {}))
                  for s in range(len(seeds))]
        fine = np.stack([r.trace for r in theory])
        th_trace = fine[:, ::E]
        big = F > 1e-12 * F.max(axis=1, keepdims=True)
        M = spec.n_modalities
        vals = {"status": traj.status.astype(np.int8), "trace": F, "trace_theory": th_trace,
                "rel_error_theory": np.where(big, np.abs(th_trace / F - 1.0), 0.0).max((1, 2)),
                "t_sim": np.stack([traj.crossing(m, "global", 0.5) for m in range(M)], 1),
                "t_theory": np.array([[float(first_crossing(r.w[:, m], r.time, 0.5))
                                       for m in range(M)] for r in theory]),
                "peak_sim": t[np.argmax(F, axis=1)],
                "peak_theory": np.array([r.time[np.argmax(r.trace, axis=0)] for r in theory]),
                "w": np.stack([np.asarray(mp).reshape(len(seeds), len(t))
                               for mp in traj.records["maps"]], -1),
                "trace_fine": fine, "w_fine": np.stack([r.w for r in theory])}
        for rule, K in (("paper", p0["K"]), ("moving_average", p0["K_average"])):
            for suffix, tr in (("", F), ("_theory", th_trace)):
                vals[f"window_{rule}{suffix}"] = prime_window(
                    np.swapaxes(tr, 1, 2), K=float(K), rule=rule, average=int(p0["average"]))
        dims = {k: ("time", "modality") for k in ("trace", "trace_theory", "w")}
        dims.update({k: ("modality",) for k in ("t_sim", "t_theory", "peak_sim", "peak_theory")})
        dims.update({k: ("step", "modality") for k in ("trace_fine", "w_fine")})
        dims.update({k: ("modality", "time") for k in vals if k.startswith("window_")})
        coords = {"time": t, "step": theory[0].time, "modality": np.array(spec.names)}
        checked = [i for i, s in enumerate(seeds) if s == int(p0["mc_seed"])]
        if checked:
            P = [np.asarray(W)[checked[0]] for W in traj.records["params"].matrices()]
            ks, rel, z, ok = _monte_carlo(spec, stats, P, F[checked[0]], p0)
            vals["mc_rel_error"] = np.full((len(seeds),) + rel.shape, np.nan)
            vals["mc_z"] = np.full((len(seeds),) + z.shape, np.nan)
            vals["mc_resolvable"] = np.zeros((len(seeds), len(ok)), bool)
            for i in checked:
                vals["mc_rel_error"][i], vals["mc_z"][i], vals["mc_resolvable"][i] = rel, z, ok
            dims.update(mc_rel_error=("check", "modality"), mc_z=("check", "modality"),
                        mc_resolvable=("check",))
            coords["check"] = t[ks]
        return Batch(vals, dims, coords)

    def columns(self, point, prepared):
        return {}

    def describe(self):
        return {**super().describe(), "runner": "FisherTrace",
                "init": None if self.init is None else source(self.init)}
