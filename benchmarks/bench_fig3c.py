"""Benchmark: the full Figure 3c linear simulation (4 σ ratios × 9 ρ × 5 seeds = 180 runs).

Two-layer late fusion, width 100, init std 1e-9, gradient descent with η = 0.04, each run
until its loss is below 1e-4 (the authors' rule) or 40,000 steps. Prints wall-clock times
with and without compilation, throughput, and checks that the results do not depend on how
the runs are batched (one batch of 180, chunks of 36, chunks of 5).

    python benchmarks/bench_fig3c.py
"""
from __future__ import annotations

import time

import jax
import numpy as np

import dlnfusion as dln

RATIOS = (1.0, 1.5, 2.0, 3.0)
RHOS = np.linspace(-0.9, 0.9, 9)
SEEDS = range(5)
KW = dict(scale=1e-9, lr=0.04, steps=40_000, stop_loss=1e-4, record_every=10)


def _run(spec, stats):
    t0 = time.perf_counter()
    traj = dln.simulate(spec, stats, seeds=SEEDS, **KW)
    return traj, time.perf_counter() - t0


def main():
    print(f"devices: {jax.devices()}")
    spec = dln.NetworkSpec.fusion(depth=2, fusion_layer=2, width=100)
    stats = [dln.Stats.scalar_toy(r, 1.0, rho) for r in RATIOS for rho in RHOS]
    n_runs = len(stats) * len(SEEDS)

    traj, t_first = _run(spec, stats)      # includes tracing and compilation
    _, t_second = _run(spec, stats)        # same shapes: cached executable
    iters = int(traj.stop_time.max()) + 1  # loop iterations (the slowest run sets it)
    useful = float(np.sum(traj.stop_time))
    print(f"Figure 3c: {n_runs} runs, slowest run {iters - 1} steps, "
          f"{useful:.0f} run-steps until the runs stopped")
    print(f"  including compilation: {t_first:6.2f} s   (target <= 30 s)")
    print(f"  after compilation:     {t_second:6.2f} s   (target <= 10 s)")
    print(f"  throughput: {n_runs * iters / t_second:,.0f} run-steps/s "
          f"({useful / t_second:,.0f} useful run-steps/s)")
    print(f"  statuses: {dict(zip(*np.unique(traj.status_names(), return_counts=True)))}")

    # Batching independence.
    ratio_all = traj.crossing(1, "global") / traj.crossing(0, "unimodal")
    for chunk in (9, 1):  # configurations per call: 9 x 5 = 45 runs, 1 x 5 = 5 runs
        parts = [dln.simulate(spec, stats[i:i + chunk], seeds=SEEDS, **KW)
                 for i in range(0, len(stats), chunk)]
        ratio = np.concatenate([p.crossing(1, "global") / p.crossing(0, "unimodal")
                                for p in parts])
        loss = np.concatenate([p.loss for p in parts])
        same = np.array_equal(ratio, ratio_all, equal_nan=True) and np.array_equal(
            loss, traj.loss, equal_nan=True)
        diff = np.nanmax(np.abs(ratio - ratio_all))
        print(f"  batches of {chunk * len(SEEDS):3d} runs vs one batch of {n_runs}: "
              f"bitwise identical = {same}, max |Δ time ratio| = {diff:.2e}")


if __name__ == "__main__":
    main()
