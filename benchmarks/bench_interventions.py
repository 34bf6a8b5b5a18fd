"""Speed of a deficit sweep: 100 (gate start, gate length) pairs of the two-pathway network.

The spec's network (two pathways 8 → 100 → … → 15 of D matrices, hierarchical task, learning
rate 0.01, 1000 steps of full-batch gradient descent), pathway b gated during [start,
start + length) with start ∈ {0, 100, …, 900} × length ∈ {0, 50, …, 450}: one batch of 100
runs, one compiled loop. Prints the wall time of the first call (with compilation), of a
second call with new window values (no compilation), and the run-steps per second.
Run: python benchmarks/bench_interventions.py
"""
import time

import numpy as np

import dlnfusion as dln
from dlnfusion.training import mode_strengths


def main():
    task = dln.data.hierarchy(pathways=2)
    starts, lengths = np.meshgrid(np.arange(0, 1000, 100.0), np.arange(0, 500, 50.0))
    starts, lengths = starts.ravel(), lengths.ravel()
    print(f"{starts.size} (start, length) pairs, 1000 steps each, width 100")
    for D in (2, 3, 4):
        spec = dln.NetworkSpec.pathways((D, D), 8, 15, width=100)
        params = dln.init_pathways(spec, task, seeds=[0] * starts.size, strength=0.01)
        times = []
        for shift in (0.0, 7.0):
            t0 = time.perf_counter()
            tr = dln.train(spec, task, params, lr=0.01, steps=1000, record_every=10,
                           stop_loss=None, observe={"K": mode_strengths(task)},
                           interventions=[dln.Gate("b", start=starts + shift,
                                                   end=starts + shift + lengths)])
            np.asarray(tr.records["K"])
            times.append(time.perf_counter() - t0)
        rate = starts.size * 1000 / times[1]
        print(f"D = {D}: first call {times[0]:.2f} s (with compilation), second call "
              f"{times[1]:.2f} s, {rate:,.0f} run-steps/s")


if __name__ == "__main__":
    main()
