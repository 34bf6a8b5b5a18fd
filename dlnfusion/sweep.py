"""Parameter sweeps: a labeled grid of runs, batched, chunked, sharded, resumable.

A :class:`Sweep` names the swept parameters and two factories, one for the data and one for
the network, whose keyword arguments are drawn from the grid (and from ``fixed``). Training
parameters (``lr``, ``scale``, ``scheme``, ``method``, ``loss``, ``steps``,
``stop_loss``, ``record_every``) can be swept or fixed the same way::

    sweep = Sweep(
        grid={"fusion_layer": [1, 2, 3, 4], "rho": np.linspace(-0.9, 0.9, 9)},
        stats=lambda rho: Stats.scalar_toy(2.0, 1.0, rho),
        network=lambda fusion_layer: NetworkSpec.fusion(4, fusion_layer, width=100),
        fixed={"lr": 0.04, "scale": 0.1, "scheme": "frobenius", "steps": 100_000},
        seeds=range(5))
    ds = sweep.run("out/fig6b")          # an xarray.Dataset, also written to out/fig6b/sweep.nc

How it runs. The runs (grid point × seed) are grouped by everything that changes array
shapes or compiled code (the network, the initialization scheme, method, loss, step budget
and recording interval); each group compiles once. A group is cut into chunks that fit the memory
budget; each chunk is one batched call of :func:`~dlnfusion.train`, spread over the
local devices with ``jax.sharding`` when there are several. Every finished chunk is written to
``out/chunks/`` at once (atomically), so an interrupted sweep resumes where it stopped: a
re-run skips the finished chunks and assembles the same Dataset. Every chunk file records
which runs (grid point and seed) it holds, so the re-run may use another ``chunk_size`` (or
another number of devices): it computes only the runs that no saved chunk holds. Stopped by
Ctrl-C, :meth:`Sweep.run` raises :class:`SweepInterrupted` (a ``KeyboardInterrupt``) whose
message says how many chunks are saved and how to resume. Under JAX's multi-process
runtime (``jax.distributed``; :func:`init_distributed`) each process takes every
``process_count``-th chunk, and process 0 assembles the result after a barrier.

The Dataset has one dimension per swept parameter plus ``seed`` (and ``time`` for the
recorded trajectories). It holds, per run: ``status`` ('converged', 'max_steps',
'diverged'), ``stop_time``, ``final_loss``, the unimodal-phase observables ``t_A``, ``t_B``,
``time_ratio``, ``first``, ``misattribution``, ``plateau_loss`` (two modalities), the
trajectories ``loss`` and ``map_<modality>``, and, with ``predict=True``, the reduced-dynamics
predictions ``time_ratio_predicted``, ``t_A_predicted``, ``t_B_predicted``; per grid point the
theory ``time_ratio_leading_order``, ``time_ratio_gradient_flow``, ``misattribution_theory``,
``plateau_loss_theory``, each the prediction for the network swept at that point
(:func:`~dlnfusion.compare.theory_columns`: early, intermediate and late fusion differ) or NaN,
with ``<column>_valid`` and ``<column>_caveats`` (the reasons, "; "-joined).
"""
from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import os
import sys
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

from .compare import measure_unimodal_phase, predict_unimodal_phase, theory_columns
from .networks import NetworkSpec, init_batch
from .stats import Dataset, Stats
from .results import Status
from .training import train

__all__ = ["Sweep", "load", "SweepInterrupted", "init_distributed", "TRAIN_KEYS"]

#: Training parameters a sweep can set or vary, with their defaults.
TRAIN_KEYS = {"lr": 0.04, "scale": 1e-9, "scheme": "normal", "method": "gd",
              "loss": "squared", "steps": 40_000, "stop_loss": 1e-4, "record_every": 100}
#: Dataset variable of each theory column.
_THEORY_NAMES = {"time_ratio_gradient_flow": "time_ratio_gradient_flow",
                 "misattribution": "misattribution_theory", "plateau_loss": "plateau_loss_theory",
                 "time_ratio_leading_order": "time_ratio_leading_order"}
#: The ones that change compiled code or shapes (runs are grouped by them).
_STATIC_TRAIN = ("scheme", "method", "loss", "steps", "record_every")


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by Ctrl-C (a ``KeyboardInterrupt`` while :meth:`Sweep.run` ran).

    The chunks finished before the interruption stay saved in ``folder``/chunks; running the
    same sweep on the same folder again resumes (any ``chunk_size``). The message says so;
    ``saved`` and ``total`` count the chunks of the interrupted run's plan that are complete
    and ``folder`` is the run folder.
    """

    def __init__(self, message: str, saved: int, total: int, folder):
        super().__init__(message)
        self.saved, self.total, self.folder = saved, total, Path(folder)

    def __str__(self) -> str:
        return self.args[0]


def init_distributed(coordinator: str | None = None, num_processes: int | None = None,
                     process_id: int | None = None) -> None:
    """Start JAX's multi-process runtime for a sweep spread over several processes.

    Arguments default to the environment variables ``DLNFUSION_COORDINATOR`` (host:port of
    process 0), ``DLNFUSION_NUM_PROCESSES`` and ``DLNFUSION_PROCESS_ID``. Call it before any
    other JAX work in every process, then run the same :class:`Sweep` in each.
    """
    coordinator = coordinator or os.environ.get("DLNFUSION_COORDINATOR")
    num_processes = num_processes or int(os.environ.get("DLNFUSION_NUM_PROCESSES", "0"))
    if process_id is None:
        process_id = int(os.environ.get("DLNFUSION_PROCESS_ID", "-1"))
    if not coordinator or num_processes < 1 or process_id < 0:
        raise ValueError("init_distributed needs coordinator, num_processes and process_id "
                         "(or the DLNFUSION_* environment variables)")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)
    # Leave the runtime explicitly when the process ends (before interpreter teardown): left
    # to the teardown, the processes' shutdown barrier was seen to time out after sweeps of
    # about two minutes, failing processes whose work had succeeded.
    import atexit
    atexit.register(jax.distributed.shutdown)


def _params_of(fn) -> tuple:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read the arguments of {fn!r}") from exc
    return tuple(p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def _source(fn) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))


@dataclass(frozen=True, eq=False)
class Sweep:
    """A grid of training runs with labeled results (see the module docstring).

    Parameters
    ----------
    grid : mapping name → values. The names become the Dataset's dimensions, in this order.
    stats : factory returning the data (:class:`Stats` or :class:`Dataset`) of a grid point;
        its arguments are looked up in the grid and in ``fixed``.
    network : factory returning the :class:`NetworkSpec` of a grid point.
    fixed : other parameters for the factories and the training (see :data:`TRAIN_KEYS`).
    seeds : initialization seeds; every grid point is run once per seed.
    eval_stats : optional factory for the population statistics under which the loss is also
        recorded (generalization error), e.g. when ``stats`` returns a finite Dataset.
    record : keep the loss and total-map trajectories (every ``record_every`` steps).
    predict : also integrate the reduced-dynamics prediction of every run
        (:func:`dlnfusion.compare.predict_unimodal_phase`).
    """

    grid: Mapping[str, Sequence]
    stats: Callable[..., Any]
    network: Callable[..., NetworkSpec]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    seeds: Sequence[int] = (0,)
    eval_stats: Callable[..., Stats] | None = None
    record: bool = True
    predict: bool = False

    def __post_init__(self):
        if not self.grid:
            raise ValueError("grid must name at least one swept parameter")
        grid = {}
        for k, v in self.grid.items():
            vals = list(np.atleast_1d(np.asarray(v, dtype=object)))
            if not vals:
                raise ValueError(f"grid[{k!r}] has no values")
            if len(set(map(repr, vals))) != len(vals):
                raise ValueError(f"grid[{k!r}] has repeated values")
            grid[k] = [v.item() if isinstance(v, np.generic) else v for v in vals]
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "fixed", dict(self.fixed))
        seeds = [int(s) for s in self.seeds]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct integers")
        object.__setattr__(self, "seeds", seeds)
        overlap = set(grid) & set(self.fixed)
        if overlap:
            raise ValueError(f"parameters both swept and fixed: {sorted(overlap)}")
        if "record_every" in grid and self.record:
            raise ValueError("record_every cannot be swept when trajectories are recorded")
        known = set(TRAIN_KEYS) | set(_params_of(self.stats)) | set(_params_of(self.network))
        if self.eval_stats is not None:
            known |= set(_params_of(self.eval_stats))
        unknown = (set(grid) | set(self.fixed)) - known
        if unknown:
            raise ValueError(
                f"parameters {sorted(unknown)} are neither arguments of the stats/network "
                f"factories nor training parameters {sorted(TRAIN_KEYS)}")

    # ------------------------------------------------------------------ planning
    @property
    def shape(self) -> tuple:
        return tuple(len(v) for v in self.grid.values())

    def points(self) -> list:
        """Every grid point as a dict of all parameters (swept, fixed and defaults)."""
        names = list(self.grid)
        out = []
        for combo in itertools.product(*self.grid.values()):
            p = dict(TRAIN_KEYS)
            p.update(self.fixed)
            p.update(dict(zip(names, combo)))
            out.append(p)
        return out

    @staticmethod
    def _call(fn, point):
        return fn(**{k: point[k] for k in _params_of(fn) if k in point})

    def definition(self) -> dict:
        """A JSON-able description, used to check that a resumed sweep is the same sweep."""
        return {"grid": {k: [repr(x) for x in v] for k, v in self.grid.items()},
                "fixed": {k: repr(v) for k, v in self.fixed.items()}, "seeds": self.seeds,
                "stats": _source(self.stats), "network": _source(self.network),
                "eval_stats": None if self.eval_stats is None else _source(self.eval_stats),
                "record": self.record, "predict": self.predict}

    def _plan(self, chunk_size, n_dev):
        """Group the runs by compiled shape and cut the groups into chunks."""
        points = self.points()
        specs = [self._call(self.network, p) for p in points]
        data = [self._call(self.stats, p) for p in points]
        for i, (s, d) in enumerate(zip(specs, data)):
            if not isinstance(s, NetworkSpec):
                raise ValueError(f"network factory returned {type(s).__name__}, not NetworkSpec")
            if not isinstance(d, (Stats, Dataset)):
                raise ValueError(f"stats factory returned {type(d).__name__}, not Stats/Dataset")
        groups = {}
        for i, (p, s, d) in enumerate(zip(points, specs, data)):
            shape = (type(d).__name__, tuple(d.dims),
                     d.output_dim if isinstance(d, Stats) else d.y.shape)
            key = (s, shape) + tuple(p[k] for k in _STATIC_TRAIN)
            groups.setdefault(key, []).append(i)
        chunks = []
        for g, (key, idx) in enumerate(groups.items()):
            runs = [(i, si) for i in idx for si in range(len(self.seeds))]
            size = chunk_size or _auto_chunk(specs[idx[0]], points[idx[0]], len(runs))
            size = max(n_dev, (size // n_dev) * n_dev)
            for c in range(0, len(runs), size):
                # The id names the runs (positions c to c + size in the group): a chunk file
                # with this id holds these runs whatever chunk size made it.
                stop = min(c + size, len(runs))
                chunks.append({"id": f"{g:03d}-{c:05d}-{stop:05d}", "group": g,
                               "runs": runs[c:stop]})
        return points, specs, data, chunks

    # ------------------------------------------------------------------ running
    def run(self, out, chunk_size: int | None = None, devices=None, progress: bool = True):
        """Run (or resume) the sweep, write ``out``/sweep.nc and return the xarray Dataset.

        ``chunk_size`` caps the runs per batched call (default: what fits in ~1 GB of
        records); ``devices`` the local devices to shard each chunk over (default: all local
        devices). Under ``jax.distributed`` every process must call ``run`` with the same
        arguments; the chunks are split between the processes.

        ``out`` may hold an earlier, unfinished run of the same sweep: only the runs that its
        saved chunks do not hold are computed, whatever ``chunk_size`` and ``devices`` were
        then. A folder holding a different sweep is refused (ValueError naming what differs).
        Interrupted (Ctrl-C), it raises :class:`SweepInterrupted` after the chunks finished so
        far have been saved; call ``run`` again the same way to resume.
        """
        out = Path(out)
        devices = list(jax.local_devices() if devices is None else devices)
        n_dev = len(devices)
        mesh = None
        if n_dev > 1:
            from jax.sharding import Mesh
            mesh = Mesh(np.array(devices), ("runs",))
        points, specs, data, chunks = self._plan(chunk_size, n_dev)
        (out / "chunks").mkdir(parents=True, exist_ok=True)
        # The chunking is not part of the sweep's identity: a resumed run may cut it otherwise.
        definition = json.loads(json.dumps(self.definition()))
        fp = _fingerprint(definition)
        pid, nproc = jax.process_index(), jax.process_count()
        manifest = out / "manifest.json"
        if pid == 0:
            if manifest.exists():
                old = json.loads(manifest.read_text())
                differ = sorted(k for k in definition if old.get(k) != definition[k])
                if differ:
                    raise ValueError(f"{out} holds a different sweep (it differs in "
                                     f"{', '.join(differ)}); use another directory")
            else:
                _atomic_write_text(manifest, json.dumps({"fingerprint": fp, **definition},
                                                        indent=1))
        log = _Log(progress)
        if nproc > 1:
            # Meet once before any work: the first collective sets up the processes' channel
            # and gives up if they do not all arrive within its deadline (30 s), which the
            # barrier after an unevenly split computation would exceed.
            from jax.experimental import multihost_utils
            multihost_utils.sync_global_devices(f"dlnfusion-sweep-{fp}-start")
        # Every process reads what is saved before any chunk of this run is written (the
        # barrier above), so all of them plan the same remaining work.
        saved = _saved_runs(out / "chunks")
        mine = [c for k, c in enumerate(chunks) if k % nproc == pid]
        todo = []
        for c in mine:
            rest = [r for r in c["runs"] if r not in saved]
            if rest:
                todo.append({**c, "runs": rest})
            else:
                log(f"chunk {c['id']} already finished: skipped")
        try:
            for done_n, c in enumerate(todo, 1):
                t0 = _time.perf_counter()
                res = self._run_chunk(c, points, specs, data, mesh, n_dev)
                _atomic_save(out / "chunks" / f"{c['id']}.npz", res)
                bar = "#" * round(20 * done_n / len(todo))
                log(f"[{bar:<20}] chunk {c['id']} ({len(c['runs'])} runs) done in "
                    f"{_time.perf_counter() - t0:.1f} s [{done_n}/{len(todo)}"
                    + (f", process {pid}/{nproc}" if nproc > 1 else "") + "]")
            if nproc > 1:
                multihost_utils.sync_global_devices(f"dlnfusion-sweep-{fp}-computed")
            if pid == 0:
                ds = self._assemble(points, specs, out)
                tmp = out / "sweep.nc.tmp"
                ds.to_netcdf(tmp, engine="h5netcdf")
                os.replace(tmp, out / "sweep.nc")
                log(f"wrote {out / 'sweep.nc'}")
        except KeyboardInterrupt:
            saved = _saved_runs(out / "chunks")
            n_saved = sum(all(r in saved for r in c["runs"]) for c in chunks)
            n_runs = sum(len(c["runs"]) for c in chunks)
            raise SweepInterrupted(
                f"sweep interrupted: {n_saved} of {len(chunks)} chunks ({len(saved)} of "
                f"{n_runs} runs) are saved in {out / 'chunks'}. To resume, run the same sweep "
                f"on the same folder again (Sweep.run({str(out)!r}, ...)): the saved runs are "
                "skipped and only the rest is computed, with any chunk_size.",
                n_saved, len(chunks), out) from None
        if nproc > 1:
            multihost_utils.sync_global_devices(f"dlnfusion-sweep-{fp}-written")
        return load(out / "sweep.nc")

    def _run_chunk(self, chunk, points, specs, data, mesh, n_dev) -> dict:
        runs = chunk["runs"]
        n_real = len(runs)
        padded = runs + [runs[-1]] * ((-n_real) % n_dev)    # sharding needs a multiple
        p0 = points[runs[0][0]]
        spec = specs[runs[0][0]]
        run_data = [data[i] for i, _ in padded]
        scales = np.array([float(points[i]["scale"]) for i, _ in padded])
        if p0["scheme"] == "balanced":
            scales = np.repeat(scales[:, None], spec.n_modalities, axis=1)
        params = init_batch(spec, [self.seeds[s] for _, s in padded], p0["scheme"], scales,
                            stats=[d if isinstance(d, Stats) else None for d in run_data])
        ev = None
        if self.eval_stats is not None:
            evs = [self._call(self.eval_stats, points[i]) for i, _ in padded]
            ev = evs[0]
            if any(e is not ev for e in evs):
                raise ValueError("eval_stats must not vary across a chunk; sweep the data instead")
        traj = train(spec, run_data, params, lr=[float(points[i]["lr"]) for i, _ in padded],
                     method=p0["method"], steps=int(p0["steps"]),
                     record_every=p0["record_every"], stop_loss=points[runs[0][0]]["stop_loss"],
                     loss=p0["loss"], eval_stats=ev, sharding=mesh)
        traj = traj[:n_real]
        res = {"index": np.array([i for i, _ in runs]), "seed": np.array([s for _, s in runs]),
               "status": traj.status.astype(np.int8), "stop_time": traj.stop_time,
               "final_loss": traj.final_loss}
        if self.record:
            res["time"] = traj.time
            res["loss"] = traj.loss
            if traj.eval_loss is not None:
                res["eval_loss"] = traj.eval_loss
            for name, m in zip(spec.names, traj.maps):
                res[f"map_{name}"] = m
        if spec.n_modalities == 2:
            meas = measure_unimodal_phase(traj)
            res.update({"t_A": meas.t_A, "t_B": meas.t_B, "time_ratio": meas.time_ratio,
                        "first": meas.first.astype(np.int8),
                        "misattribution": meas.misattribution,
                        "plateau_loss": meas.plateau_loss})
            if self.predict and spec.is_linear and isinstance(run_data[0], Stats):
                pred, _ = predict_unimodal_phase(
                    spec, run_data[:n_real], traj.initial_params, [float(points[i]["lr"])
                                                                  for i, _ in runs],
                    method=p0["method"], steps=int(p0["steps"]), record_every=p0["record_every"],
                    stop_loss=points[runs[0][0]]["stop_loss"])
                res.update({"t_A_predicted": pred.t_A, "t_B_predicted": pred.t_B,
                            "time_ratio_predicted": pred.time_ratio})
        return res

    # ------------------------------------------------------------------ assembly
    @staticmethod
    def _theory(point, spec, data) -> dict:
        """The theory columns of one grid point (:func:`dlnfusion.compare.theory_columns`)."""
        if not isinstance(data, Stats):
            return {}
        cols = theory_columns(data, spec, point["scale"], point["scheme"])
        out = {}
        for k, p in cols.items():
            name = _THEORY_NAMES[k]
            out[name] = float(p.value)
            out[name + "_valid"] = bool(p.valid)
            out[name + "_caveats"] = "; ".join(p.caveats)
        return out

    def _assemble(self, points, specs, out):
        import xarray as xr

        shape = self.shape + (len(self.seeds),)
        dims = tuple(self.grid) + ("seed",)
        missing = len(points) * len(self.seeds) - len(_saved_runs(out / "chunks"))
        if missing:
            raise RuntimeError(f"{missing} runs of the sweep have no saved chunk in "
                               f"{out / 'chunks'}; run the sweep again to compute them")
        per_run, traj_vars, times = {}, {}, None
        # Read every saved chunk, whatever chunking wrote it: each names its runs.
        for path in _chunk_files(out / "chunks"):
            with np.load(path, allow_pickle=False) as z:
                flat_idx = z["index"]
                seeds = z["seed"]
                pos = [np.unravel_index(i, self.shape) + (s,) for i, s in zip(flat_idx, seeds)]
                for k in z.files:
                    if k in ("index", "seed", "time"):
                        continue
                    v = z[k]
                    if k == "loss" or k == "eval_loss" or k.startswith("map_"):
                        if times is None or len(z["time"]) > len(times):
                            times = z["time"]
                        traj_vars.setdefault(k, []).append((pos, v))
                    else:
                        if k not in per_run:
                            fill = -1 if v.dtype.kind in "iu" else np.nan
                            per_run[k] = np.full(shape, fill, dtype=v.dtype if
                                                 v.dtype.kind in "iu" else float)
                        for p, val in zip(pos, v):
                            per_run[k][p] = val
        data_vars = {}
        names = specs[0].names
        for k, arr in per_run.items():
            if k == "status":
                data_vars[k] = (dims, Status.names(arr).astype(str))
            elif k == "first":
                data_vars[k] = (dims, np.vectorize(
                    lambda s: names[int(s)] if 0 <= s < len(names) else "none",
                    otypes=[str])(arr))
            else:
                data_vars[k] = (dims, arr)
        coords = {k: _coord(v) for k, v in self.grid.items()}
        coords["seed"] = np.array(self.seeds)
        if times is not None:
            coords["time"] = np.asarray(times)
            for k, items in traj_vars.items():
                extra = items[0][1].shape[2:]
                arr = np.full(shape + (len(times),) + extra, np.nan)
                for pos, v in items:
                    for p, val in zip(pos, v):
                        arr[p][: val.shape[0]] = val
                edims = () if not extra else (("out", f"in_{k[4:]}") if k.startswith("map_")
                                              else tuple(f"{k}_{j}" for j in range(len(extra))))
                data_vars[k] = (dims + ("time",) + edims, arr)
        theory = {}
        blank = {float: np.nan, bool: False, str: ""}
        for i, p in enumerate(points):
            for k, v in self._theory(p, specs[i], self._call(self.stats, p)).items():
                if k not in theory:
                    theory[k] = np.full(self.shape, blank[type(v)],
                                        dtype=object if isinstance(v, str) else type(v))
                theory[k][np.unravel_index(i, self.shape)] = v
        theory = {k: (a.astype(str) if a.dtype == object else a) for k, a in theory.items()}
        for k, arr in theory.items():
            data_vars[k] = (tuple(self.grid), arr)
        ds = xr.Dataset(data_vars, coords=coords)
        ds.attrs["dlnfusion_sweep"] = json.dumps(self.definition())
        ds.attrs["fixed"] = json.dumps({k: repr(v) for k, v in self.fixed.items()})
        return ds


def _coord(values):
    arr = np.asarray(values)
    if arr.dtype == object:
        return np.array([str(v) for v in values])
    return arr


def load(path):
    """Open a sweep result written by :meth:`Sweep.run` (fully loaded into memory).

    ``path`` is the run folder given to :meth:`Sweep.run` or the ``sweep.nc`` file in it.
    A folder whose sweep has not finished is refused with how far it got and how to finish.
    """
    import xarray as xr

    path = Path(path)
    if path.is_dir():
        folder, path = path, path / "sweep.nc"
        if not path.exists():
            if (folder / "manifest.json").exists():
                n = len(_saved_runs(folder / "chunks"))
                raise FileNotFoundError(
                    f"{folder} holds an unfinished sweep ({n} runs saved, no sweep.nc yet); "
                    f"run the same sweep on it again (Sweep.run({str(folder)!r}, ...)) to "
                    "finish it")
            raise FileNotFoundError(f"{folder} holds no sweep result: load takes the folder "
                                    "given to Sweep.run or the sweep.nc file in it")
    elif not path.exists():
        raise FileNotFoundError(f"no sweep result at {path}: load takes the folder given to "
                                "Sweep.run or the sweep.nc file in it")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def _chunk_files(folder: Path) -> list:
    """The finished chunk files of a run folder (not the temporary files of a write)."""
    return sorted(p for p in folder.glob("*.npz") if not p.name.endswith(".tmp.npz"))


def _saved_runs(folder: Path) -> set:
    """(grid point index, seed index) of every run that a finished chunk file holds."""
    done = set()
    for path in _chunk_files(folder):
        with np.load(path, allow_pickle=False) as z:
            done.update(zip(z["index"].tolist(), z["seed"].tolist()))
    return done


def _auto_chunk(spec, point, n_runs, budget=1 << 30):
    R = int(point["steps"]) // int(point["record_every"]) + 1
    per_record = 2 + sum(spec.input_dims) * spec.output_dim + spec.n_layers
    params = sum(a * b for a, b in spec.layer_shapes)
    per_run = 8 * (R * per_record + 6 * params)
    return int(max(1, min(n_runs, budget // max(per_run, 1))))


def _atomic_save(path: Path, arrays: dict):
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _Log:
    """One line per chunk on stderr: the sweep's progress report."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, msg: str):
        if self.enabled:
            print(f"[dlnfusion sweep] {msg}", file=sys.stderr, flush=True)
