"""The sweep engine: a labeled grid of runs, batched, chunked, sharded, resumable.

A :class:`Sweep` names the swept parameters and a runner (:mod:`dlnfusion.sweep.runners`:
:class:`~dlnfusion.sweep.Train` for the network simulators, :class:`~dlnfusion.sweep.Fit` for
mini-batch training, :class:`~dlnfusion.sweep.Predict` for theory alone, or your own
:class:`~dlnfusion.sweep.Runner`). The runner's factories take their keyword arguments from the
grid and from ``fixed``, and its own parameters (``Train``: ``lr``, ``scale``, ``scheme``,
``method``, ``loss``, ``steps``, ``stop_loss``, ``record_every``) can be swept or fixed the
same way::

    sweep = Sweep(
        grid={"fusion_layer": [1, 2, 3, 4], "rho": np.linspace(-0.9, 0.9, 9)},
        runner=Train(stats=lambda rho: Stats.scalar_toy(2.0, 1.0, rho),
                     network=lambda fusion_layer: NetworkSpec.fusion(4, fusion_layer, width=100)),
        fixed={"lr": 0.04, "scale": 0.1, "scheme": "frobenius", "steps": 100_000},
        seeds=range(5))
    ds = sweep.run("out/fig6b")          # an xarray.Dataset, also written to out/fig6b/sweep.nc

How it runs. The runs (grid point × seed) are grouped by the runner (``Train``: by everything
that changes array shapes or compiled code: the network, the initialization scheme, method,
loss, step budget and recording interval); each group compiles once. A group is cut into
chunks (``Train``: what fits the memory budget); each chunk is one call of the runner, spread
over the local devices with ``jax.sharding`` when there are several and the runner is
shardable. Every finished chunk is written to ``out/chunks/`` at once (atomically), so an
interrupted sweep resumes where it stopped: a re-run skips the finished chunks and assembles
the same Dataset. Every chunk file records which runs (grid point and seed) it holds, so the
re-run may use another ``chunk_size`` (or another number of devices): it computes only the
runs that no saved chunk holds. Stopped by Ctrl-C, :meth:`Sweep.run` raises
:class:`SweepInterrupted` (a ``KeyboardInterrupt``) whose message says how many chunks are
saved and how to resume. Under JAX's multi-process runtime (``jax.distributed``;
:func:`init_distributed`) each process takes every ``process_count``-th chunk, and process 0
assembles the result after a barrier.

The Dataset has one dimension per swept parameter plus ``seed``, and the runner's further
dimensions (``time``, ``epoch``, ``modality``, ...) for its records. What it holds is the
runner's (see each runner); a ``status`` variable holds the names of
:class:`~dlnfusion.results.Status` ('converged', 'max_steps', 'diverged').
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from ..checks import seeds as checks_seeds
from ..results import Status
from .runners.base import Batch, Runner, fingerprint

__all__ = ["Sweep", "load", "SweepInterrupted", "init_distributed"]


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


@dataclass(frozen=True, eq=False)
class Sweep:
    """A grid of runs with labeled results (see the module docstring).

    Parameters
    ----------
    grid : mapping name → values. The names become the Dataset's dimensions, in this order.
    runner : what runs a grid point (:class:`~dlnfusion.sweep.Runner`): ``Train``, ``Fit``,
        ``Predict`` or your own.
    fixed : other parameters for the runner and its factories.
    seeds : seeds; every grid point is run once per seed.
    """

    grid: Mapping[str, Sequence]
    runner: Runner
    fixed: Mapping[str, Any] = field(default_factory=dict)
    seeds: Sequence[int] = (0,)

    def __post_init__(self):
        if not isinstance(self.runner, Runner):
            raise ValueError("runner must be a dlnfusion.sweep.Runner (Train, Fit, Predict or "
                             f"a subclass), got {type(self.runner).__name__}")
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
        seeds = checks_seeds(self.seeds)
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct integers")
        object.__setattr__(self, "seeds", list(seeds))
        overlap = set(grid) & set(self.fixed)
        if overlap:
            raise ValueError(f"parameters both swept and fixed: {sorted(overlap)}")
        self.runner.check(grid, self.fixed)
        known = self.runner.parameters()
        unknown = (set(grid) | set(self.fixed)) - known
        if unknown:
            raise ValueError(
                f"parameters {sorted(unknown)} are neither arguments of the runner's factories "
                f"nor its parameters {sorted(self.runner.defaults)}")

    # ------------------------------------------------------------------ planning
    @property
    def shape(self) -> tuple:
        return tuple(len(v) for v in self.grid.values())

    def points(self) -> list:
        """Every grid point as a dict of all parameters (swept, fixed and defaults)."""
        names = list(self.grid)
        out = []
        for combo in itertools.product(*self.grid.values()):
            p = dict(self.runner.defaults)
            p.update(self.fixed)
            p.update(dict(zip(names, combo)))
            out.append(p)
        return out

    def definition(self) -> dict:
        """A JSON-able description, used to check that a resumed sweep is the same sweep."""
        return {"grid": {k: [repr(x) for x in v] for k, v in self.grid.items()},
                "fixed": {k: repr(v) for k, v in self.fixed.items()}, "seeds": self.seeds,
                "runner": self.runner.describe()}

    def _plan(self, chunk_size, n_dev):
        """Group the runs as the runner batches them and cut the groups into chunks."""
        points = self.points()
        prepared = [self.runner.prepare(p) for p in points]
        groups = {}
        for i, (p, prep) in enumerate(zip(points, prepared)):
            groups.setdefault(self.runner.group(p, prep), []).append(i)
        chunks = []
        for g, (key, idx) in enumerate(groups.items()):
            runs = [(i, si) for i in idx for si in range(len(self.seeds))]
            size = chunk_size or self.runner.chunk_size(points[idx[0]], prepared[idx[0]],
                                                        len(runs))
            size = max(n_dev, (size // n_dev) * n_dev)
            for c in range(0, len(runs), size):
                # The id names the runs (positions c to c + size in the group): a chunk file
                # with this id holds these runs whatever chunk size made it.
                stop = min(c + size, len(runs))
                chunks.append({"id": f"{g:03d}-{c:05d}-{stop:05d}", "group": g,
                               "runs": runs[c:stop]})
        return points, prepared, chunks

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
        if not self.runner.shardable:
            devices = devices[:1]
        n_dev = len(devices)
        mesh = None
        if n_dev > 1:
            from jax.sharding import Mesh
            mesh = Mesh(np.array(devices), ("runs",))
        points, prepared, chunks = self._plan(chunk_size, n_dev)
        (out / "chunks").mkdir(parents=True, exist_ok=True)
        # The chunking is not part of the sweep's identity: a resumed run may cut it otherwise.
        definition = json.loads(json.dumps(self.definition()))
        fp = fingerprint(definition)
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
                res = self._run_chunk(c, points, prepared, mesh, n_dev)
                _atomic_save(out / "chunks" / f"{c['id']}.npz", res)
                bar = "#" * round(20 * done_n / len(todo))
                log(f"[{bar:<20}] chunk {c['id']} ({len(c['runs'])} runs) done in "
                    f"{_time.perf_counter() - t0:.1f} s [{done_n}/{len(todo)}"
                    + (f", process {pid}/{nproc}" if nproc > 1 else "") + "]")
            if nproc > 1:
                multihost_utils.sync_global_devices(f"dlnfusion-sweep-{fp}-computed")
            if pid == 0:
                ds = self._assemble(points, prepared, out)
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

    def _run_chunk(self, chunk, points, prepared, mesh, n_dev) -> dict:
        """The runner's batch of one chunk as the arrays of its file: ``index`` and ``seed``
        (which runs), the values, ``dims:<name>`` and ``coord:<dim>``."""
        runs = chunk["runs"]
        n_real = len(runs)
        padded = runs + [runs[-1]] * ((-n_real) % n_dev)    # sharding needs a multiple
        batch = self.runner.run([points[i] for i, _ in padded],
                                [prepared[i] for i, _ in padded],
                                [self.seeds[s] for _, s in padded], mesh)
        if not isinstance(batch, Batch):
            raise ValueError(f"{type(self.runner).__name__}.run must return a Batch, got "
                             f"{type(batch).__name__}")
        res = {"index": np.array([i for i, _ in runs]), "seed": np.array([s for _, s in runs])}
        for k, v in batch.values.items():
            v = np.asarray(v)
            dims = tuple(batch.dims.get(k, ()))
            if v.ndim != 1 + len(dims) or v.shape[0] != len(padded):
                raise ValueError(f"{type(self.runner).__name__}.run: {k!r} has shape {v.shape}; "
                                 f"expected ({len(padded)} runs, {', '.join(dims)})")
            for d, n in zip(dims, v.shape[1:]):
                if d in batch.coords and len(batch.coords[d]) != n:
                    raise ValueError(f"{type(self.runner).__name__}.run: dimension {d!r} of "
                                     f"{k!r} has length {n} but its coordinate "
                                     f"{len(batch.coords[d])}")
            res[k] = v[:n_real]
            if dims:
                res[f"dims:{k}"] = np.array(dims, dtype=str)
        for d, c in batch.coords.items():
            res[f"coord:{d}"] = np.asarray(c)
        return res

    # ------------------------------------------------------------------ assembly
    def _assemble(self, points, prepared, out):
        import xarray as xr

        shape = self.shape + (len(self.seeds),)
        dims = tuple(self.grid) + ("seed",)
        missing = len(points) * len(self.seeds) - len(_saved_runs(out / "chunks"))
        if missing:
            raise RuntimeError(f"{missing} runs of the sweep have no saved chunk in "
                               f"{out / 'chunks'}; run the sweep again to compute them")
        per_run, records, var_dims, coords_seen = {}, {}, {}, {}
        # Read every saved chunk, whatever chunking wrote it: each names its runs.
        for path in _chunk_files(out / "chunks"):
            with np.load(path, allow_pickle=False) as z:
                pos = [np.unravel_index(i, self.shape) + (s,)
                       for i, s in zip(z["index"], z["seed"])]
                for k in z.files:
                    if k.startswith("coord:"):
                        d = k[6:]
                        if d not in coords_seen or len(z[k]) > len(coords_seen[d]):
                            coords_seen[d] = z[k]
                for k in z.files:
                    if k in ("index", "seed") or ":" in k:
                        continue
                    v = z[k]
                    if f"dims:{k}" in z.files:
                        var_dims[k] = tuple(z[f"dims:{k}"].tolist())
                        records.setdefault(k, []).append((pos, v))
                        continue
                    if k not in per_run:
                        per_run[k] = np.full(shape, _blank(v.dtype), dtype=_kept(v.dtype))
                    for p, val in zip(pos, v):
                        per_run[k][p] = val
        data_vars = {}
        labels = self.runner.labels(prepared[0])
        for k, arr in per_run.items():
            if k == "status":
                data_vars[k] = (dims, Status.names(arr).astype(str))
            elif k in labels:
                names = labels[k]
                data_vars[k] = (dims, np.vectorize(
                    lambda s: names[int(s)] if 0 <= s < len(names) else "none",
                    otypes=[str])(arr))
            else:
                data_vars[k] = (dims, _final(arr))
        coords = {k: _coord(v) for k, v in self.grid.items()}
        coords["seed"] = np.array(self.seeds)
        sizes = {}           # every further dimension's length: the longest seen
        for k, items in records.items():
            for j, d in enumerate(var_dims[k]):
                longest = max(np.shape(v)[1 + j] for _, v in items)
                sizes[d] = max(sizes.get(d, 0), longest, len(coords_seen.get(d, ())))
        for k, items in records.items():
            edims = var_dims[k]
            full = tuple(sizes[d] for d in edims)
            sample = items[0][1]
            arr = np.full(shape + full, _blank(sample.dtype), dtype=_kept(sample.dtype))
            for pos, v in items:
                for p, val in zip(pos, v):
                    arr[p][tuple(slice(0, n) for n in val.shape)] = val
            data_vars[k] = (dims + edims, _final(arr))
        for d in {d for e in var_dims.values() for d in e} & set(coords_seen):
            coords[d] = np.asarray(coords_seen[d])
        columns = {}
        for i, p in enumerate(points):
            for k, v in self.runner.columns(p, prepared[i]).items():
                if k not in columns:
                    columns[k] = np.full(self.shape, _blank_of(v),
                                         dtype=object if isinstance(v, str) else type(v))
                columns[k][np.unravel_index(i, self.shape)] = v
        for k, arr in columns.items():
            data_vars[k] = (tuple(self.grid), arr.astype(str) if arr.dtype == object else arr)
        ds = xr.Dataset(data_vars, coords=coords)
        ds.attrs["dlnfusion_sweep"] = json.dumps(self.definition())
        ds.attrs["fixed"] = json.dumps({k: repr(v) for k, v in self.fixed.items()})
        return ds


def _blank(dtype):
    """The fill of a run no chunk wrote into (records shorter than the longest: NaN)."""
    return {"i": -1, "u": 0, "b": False, "U": "", "S": b""}.get(np.dtype(dtype).kind, np.nan)


def _kept(dtype):
    """The Dataset's dtype for values of ``dtype`` while chunks are read: integers and
    booleans kept, strings as objects (chunks may hold longer strings than the first; they
    become str once all are read, :func:`_final`), other numbers as float."""
    kind = np.dtype(dtype).kind
    return object if kind in "US" else dtype if kind in "iub" else float


def _final(arr):
    """A variable read from the chunks as the Dataset holds it (strings as str, as long as
    the longest)."""
    return arr.astype(str) if arr.dtype == object else arr


def _blank_of(value):
    return {float: np.nan, bool: False, str: "", int: -1}.get(type(value), np.nan)


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
