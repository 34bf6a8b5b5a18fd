"""Benchmark: the full Figure 6b sweep through dlnfusion.sweep, executed four ways.

L_f ∈ {1, 2, 3, 4} × 9 values of ρ × 5 seeds = 180 runs; L = 4, width 100, σ_A/σ_B = 2,
u0 = 0.1 (the paper's scheme), η = 0.04, each run until its loss is below 1e-4 (at most
100,000 steps); trajectories recorded every 100 steps. Variants:

  one     one process, one device, each fusion layer's 45 runs in one batch
  chunks  one process, chunks of 15 runs
  shard4  one process, 4 host devices (XLA_FLAGS=--xla_force_host_platform_device_count=4)
  procs2  two processes on loopback under jax.distributed, chunks of 15 runs

Prints the wall time and throughput of each, and the largest difference between the Datasets.

    python benchmarks/bench_fig6b_sweep.py [variant ...]
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("one", "chunks", "shard4", "procs2")


def build_sweep():
    import numpy as np

    import dlnfusion as dln
    from dlnfusion.sweep import Sweep, Train

    def stats(rho):
        return dln.Stats.scalar_toy(2.0, 1.0, rho)

    def network(fusion_layer):
        return dln.NetworkSpec.fusion(4, fusion_layer, width=100)

    return Sweep(grid={"fusion_layer": [1, 2, 3, 4], "rho": np.linspace(-0.9, 0.9, 9)},
                 runner=Train(stats, network),
                 fixed={"lr": 0.04, "scale": 0.1, "scheme": "frobenius", "steps": 100_000,
                        "stop_loss": 1e-4, "record_every": 100},
                 seeds=range(5))


def worker(variant: str, out: str, process_id: int = 0, port: int = 0):
    """Run one variant (called in a subprocess)."""
    if variant == "procs2":
        from dlnfusion.sweep import init_distributed
        init_distributed(f"127.0.0.1:{port}", 2, process_id)
    sweep = build_sweep()
    chunk = {"one": None, "chunks": 15, "shard4": None, "procs2": 15}[variant]
    t0 = time.perf_counter()
    sweep.run(out, chunk_size=chunk, progress=False)
    print(f"elapsed {time.perf_counter() - t0:.2f}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_variant(variant: str, root: Path) -> float:
    out = root / variant
    env = dict(os.environ)
    if variant == "shard4":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    cmd = [sys.executable, __file__, "--worker", variant, str(out)]
    t0 = time.perf_counter()
    if variant == "procs2":
        port = str(_free_port())
        procs = [subprocess.Popen(cmd + [str(i), port], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(2)]
        outs = [p.communicate() for p in procs]
        for p, (_, err) in zip(procs, outs):
            if p.returncode:
                raise RuntimeError(f"{variant} worker failed:\n{err[-3000:]}")
    else:
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(variants):
    import numpy as np

    from dlnfusion.sweep import load

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = {}
        for v in variants:
            wall = run_variant(v, root)
            ds = load(root / v / "sweep.nc")
            results[v] = ds
            steps = float(ds.stop_time.sum())
            print(f"{v:7s}: {wall:6.1f} s wall (process start, compilation and the sweep; "
                  f"target <= 120 s), {steps:,.0f} run-steps, {steps / wall:,.0f} "
                  f"configuration-steps/s; statuses "
                  f"{dict(zip(*np.unique(ds.status.values, return_counts=True)))}")
        ref = results[variants[0]]
        for v in variants[1:]:
            ds = results[v]
            diff = 0.0
            for name in ref.data_vars:
                a, b = ref[name].values, ds[name].values
                if a.dtype.kind == "f":
                    both = np.isfinite(a) & np.isfinite(b)
                    if not np.array_equal(np.isnan(a), np.isnan(b)):
                        diff = np.inf
                    elif both.any():
                        diff = max(diff, float(np.max(np.abs(a[both] - b[both]))))
                elif not np.array_equal(a, b):
                    diff = np.inf
            print(f"{v} vs {variants[0]}: max |difference| over every variable = {diff:.3g}")
        r = ref.time_ratio.mean("seed")
        print("seed-mean t_B/t_A (rows L_f = 1..4, columns rho):")
        print(np.array2string(r.values, precision=3, max_line_width=120))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], *(int(a) for a in sys.argv[4:6]))
    else:
        main(sys.argv[1:] or list(VARIANTS))
