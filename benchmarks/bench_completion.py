"""Speed of dlnfusion.training.completion.train_completion on a representative batch.

The batch is a slice of the kleinman2023l-completion figure's experiment 1 at its time scale
(η = 1.6, steps / 8): n = 100, pre-training rank 10 on 2000 observed entries, three seeds, switch
at T ∈ {0, 2500, 7500, 12500} simulated steps, 3750 steps on the rank-5 target after the switch:
3 prefix groups (seeds) and 12 continuations, one compiled call per (depth, dtype).

Printed per configuration: the compile call (a warm-up with the same shapes and a few steps),
the wall time of the timed call, the run-steps simulated (prefix steps counted once per group,
padding included) and their rate, and the run-steps the batch would cost without prefix sharing.

    python benchmarks/bench_completion.py            # D = 1, 2, 3 (float32), D = 2, 3 (float64)
    python benchmarks/bench_completion.py --quick    # D = 3 float32 only, one seed
    python benchmarks/bench_completion.py --check-scale   # the figure's time-scale check

``--check-scale`` measures what the figure's time scale changes: D = 2 and 3, seed 0, rank 10 →
5 on 2000 entries, switch at T ∈ {0, 20k, 100k} paper steps, 30k steps after, simulated at
η = 0.2·k for k = 1 (the paper's steps, ≈ 4 minutes), 4 and 8, in float32 and (k = 8) float64;
it prints the final test errors and their relative differences to k = 1.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from dlnfusion.data.completion import low_rank_target, nested_masks
from dlnfusion.interventions import Deficit
from dlnfusion.training.completion import CompletionTask, train_completion

N, COUNT, PRE_RANK = 100, 2000, 10
SWITCHES = np.array([0, 2500, 7500, 12500])
AFTER, REC, LR = 3750, 125, 1.6


def batch(seeds):
    targets, masks = [], []
    rows = []
    for i, s in enumerate(seeds):
        targets += [low_rank_target(1000 + s, N, PRE_RANK), low_rank_target(2000 + s, N, 5)]
        masks.append(nested_masks(s, N, (COUNT,))[0])
        rows += [(s, T, 2 * i, i) for T in SWITCHES]
    seeds_a, sw, tb, mb = (np.array(c) for c in zip(*rows))
    return np.stack(targets), np.stack(masks), dict(seeds=seeds_a, end=sw, tb=tb, mb=mb)


def _run(targets, masks, sched, end, after, **kw):
    """Pre-training on target tb until ``end``, then ``after`` steps on target tb + 1."""
    deficit = Deficit(CompletionTask(target=sched["tb"], mask=sched["mb"]), start=0, end=end)
    return train_completion(targets, masks, seeds=sched["seeds"], steps=end + after,
                            target=sched["tb"] + 1, mask=sched["mb"], interventions=[deficit],
                            **kw)


def bench(depth, dtype, seeds):
    targets, masks, sched = batch(seeds)
    kw = dict(depth=depth, lr=LR, record_every=REC, n_singular=20, dtype=dtype,
              record_until=int(SWITCHES.max() + AFTER))
    # Warm-up with the same shapes (same grouping, same horizon) but one block per phase.
    warm_end = np.argsort(np.argsort(sched["end"])) % len(SWITCHES) * REC
    t0 = time.perf_counter()
    _run(targets, masks, sched, warm_end, REC, **kw)
    t1 = time.perf_counter()
    r = _run(targets, masks, sched, sched["end"], AFTER, **kw)
    wall = time.perf_counter() - t1
    print(f"D={depth} {dtype:7s} runs={len(sched['seeds']):3d} groups={r.n_prefix_groups} "
          f"compile+warm-up {t1 - t0:5.1f} s  wall {wall:6.1f} s  "
          f"run-steps {r.simulated_steps:8,d} ({r.requested_steps:8,d} unshared)  "
          f"{r.simulated_steps / wall:8,.0f} run-steps/s  "
          f"final test error {np.mean(r.test_error_final):.3g}", flush=True)


def check_scale():
    targets = np.stack([low_rank_target(1000, N, PRE_RANK), low_rank_target(2000, N, 5)])
    masks = nested_masks(0, N, (COUNT,))
    paper_T = np.array([0, 20_000, 100_000])
    for depth in (3, 2):
        ref = None
        for k, dtype in ((1, "float32"), (4, "float32"), (8, "float32"), (8, "float64")):
            t0 = time.perf_counter()
            deficit = Deficit(CompletionTask(target=0, mask=0), end=paper_T // k)
            r = train_completion(targets, masks, depth=depth, seeds=0,
                                 steps=(paper_T + 30_000) // k, target=1, mask=0,
                                 interventions=[deficit], lr=0.2 * k, record_every=1000 // k,
                                 dtype=dtype)
            err = r.test_error_final
            ref = err if ref is None else ref
            print(f"D={depth} k={k} {dtype:7s} ({time.perf_counter() - t0:5.1f} s) final test "
                  f"error at T = 0, 20k, 100k: " + ", ".join(f"{e:.5g}" for e in err) +
                  "   rel. diff to k=1: " + ", ".join(f"{d:.1e}" for d in np.abs(err / ref - 1)),
                  flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--check-scale", action="store_true")
    args = parser.parse_args(argv)
    if args.check_scale:
        check_scale()
        return
    if args.quick:
        bench(3, "float32", (0,))
        return
    seeds = (0, 1, 2)
    for depth, dtype in ((1, "float32"), (2, "float32"), (3, "float32"), (2, "float64"),
                         (3, "float64")):
        bench(depth, dtype, seeds)


if __name__ == "__main__":
    main()
