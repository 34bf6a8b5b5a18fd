"""Benchmark: the full Table 1 on the embedded digits (MLP and CNN, L_f = 1 … 5, five seeds).

Runs the figure module exactly as ``dlnfusion reproduce zhang2024-table1`` does (into a
temporary folder) and prints, per (network, L_f), the epochs run, the wall-clock time including
compilation, and the throughput in training samples per second (seeds × samples × epochs over
seconds), then the totals.

    python benchmarks/bench_table1.py [--quick]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time

import jax

from dlnfusion.simulations import zhang2024_table1 as table1


def main():
    quick = "--quick" in sys.argv[1:]
    print(f"devices: {jax.devices()}")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = table1.run(out, quick=quick)
        wall = time.perf_counter() - t0
        with open(result["json"]) as f:
            payload = json.load(f)
    n_train = payload["task"]["n_train"]
    n_seeds = len(payload["parameters"]["seeds"])
    print(f"\n{'network':8s}{'L_f':>4s}{'epochs':>8s}{'seconds':>9s}{'samples/s':>11s}")
    for r in payload["rows"]:
        rate = n_seeds * n_train * r["epochs_run"] / r["seconds"]
        print(f"{r['network']:8s}{r['fusion_layer']:4d}{r['epochs_run']:8d}"
              f"{r['seconds']:9.1f}{rate:11.0f}")
    s = payload["summary"]
    print(f"\ntraining {s['train_seconds']:.0f} s ({s['samples_per_second']:.0f} samples/s), "
          f"whole command {wall:.0f} s ({wall / 60:.1f} min), target 15 min")


if __name__ == "__main__":
    main()
