"""OGM-GE's exact law against the noisy network it predicts (numbers quoted in the README).

    python benchmarks/bench_ogm_ge_law.py

The toy of huang2025-toy at ρ = −0.25 (σ_A/σ_B = 2, two-layer late fusion, entries
N(0, 1e-18), η = 0.04, 4000 steps): the seed mean of t_B/t_A over 16 noisy networks at widths
100 and 1600 (dlnfusion.train with transforms.ogm_ge), and reduced.ogm_ge_two_layer from the
same initial weights with 64 noise paths per seed, whose cost does not depend on the width.
Wall-clock times include compilation (first call) and are printed beside each result.
"""
from __future__ import annotations

import time

import numpy as np
import optax

from dlnfusion import NetworkSpec, Stats, init_batch, reduced as rd, theory as th, train
from dlnfusion.compare import measure_unimodal_phase
from dlnfusion.transforms import ogm_ge

STEPS, SEEDS, PATHS = 4000, 16, 64


def main():
    stats = Stats.scalar_toy(2.0, 1.0, -0.25)
    print(f"OGM-GE on the toy at rho = -0.25, {SEEDS} seeds, {STEPS} steps")
    for width in (100, 1600):
        spec = NetworkSpec.fusion(2, 2, width=width)
        params = init_batch(spec, list(range(SEEDS)), scale=1e-9)
        tx = ogm_ge(spec, noise=True, seed=0)
        t0 = time.perf_counter()
        traj = train(spec, stats, params, lr=0.04, steps=STEPS, record_every=10,
                     optimizer=lambda lr: optax.chain(tx, optax.sgd(lr)))
        sim = np.asarray(measure_unimodal_phase(traj).time_ratio)
        t_sim = time.perf_counter() - t0
        t0 = time.perf_counter()
        law = rd.ogm_ge_two_layer(stats, 0.04, th.noise_gram(spec, params), width, STEPS,
                                  paths=PATHS)
        t_law = time.perf_counter() - t0
        pred = np.mean(law.ratio_mean)
        se_sim = np.nanstd(sim, ddof=1) / np.sqrt(np.sum(np.isfinite(sim)))
        diverged = int(np.sum(np.asarray(traj.status_names()) == "diverged"))
        print(f"  width {width:5d}: network {np.nanmean(sim):.4f} ± {se_sim:.4f} "
              f"({diverged}/{SEEDS} diverged) in {t_sim:5.1f} s; law {pred:.4f} "
              f"({100 * np.mean(law.diverged_fraction):.1f} % of paths diverge) in "
              f"{t_law:5.1f} s ({SEEDS} x {PATHS} paths)")


if __name__ == "__main__":
    main()
