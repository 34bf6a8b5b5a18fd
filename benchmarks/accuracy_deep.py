"""Accuracy report for deep fusion networks (numbers quoted in docs/deep_networks.md).

    python benchmarks/accuracy_deep.py

1. Leading-order formulas against simulations inside their assumptions (balanced, aligned,
   small weights): four layers, fusion at 2, 3, 4.
2. Unequal branch depths: eq. (59) (roles by escape order, sign-corrected) against balanced
   simulations; the signal-subspace reduction against random-initialization simulations.
3. Balancing invariants: conservation under gradient flow, drift order under gradient descent.
(Figure 6 itself: `dlnfusion reproduce zhang2024-fig6 --out DIR` prints its error table.)
"""
from __future__ import annotations

import numpy as np

from dlnfusion import NetworkSpec, Stats, init_batch, simulate, theory as th, train
from dlnfusion.compare import measure_unimodal_phase, predict_unimodal_phase


def leading_order():
    print("1. leading order vs balanced aligned weights (L = 4, sigma ratio 2, rho = 0.3, GF)")
    st = Stats.scalar_toy(2.0, 1.0, 0.3)
    for Lf in (2, 3, 4):
        spec = NetworkSpec.fusion(4, Lf, width=20)
        for u0 in (0.1, 0.03):
            traj = simulate(spec, st, seeds=[0], scheme="balanced", scale=u0, method="gf",
                            lr=1.0, steps=2000, record_every=0.02, stop_loss=1e-6)
            m = measure_unimodal_phase(traj)
            t = th.deep_times(st, 4, Lf, u0, lr=1.0)
            r = th.time_ratio_leading_order(st, 4, Lf, u0).value
            print(f"   L_f={Lf} u0={u0:<5}: t_A {m.t_A[0]:9.3f} vs {t.t_A:9.3f} "
                  f"({t.t_A / m.t_A[0] - 1:+.1%}), ratio {m.time_ratio[0]:6.3f} vs {r:6.3f} "
                  f"({r / m.time_ratio[0] - 1:+.1%})")


def unequal():
    print("2. unequal branch depths (sigma ratio 2, rho = 0.3, GD eta = 0.04)")
    st = Stats.scalar_toy(2.0, 1.0, 0.3)
    for depths, post in (((3, 4), 1), ((4, 3), 1), ((3, 4), 0), ((3, 5), 0)):
        spec = NetworkSpec.unequal(depths, post_depth=post, width=100)
        for u0 in (0.1, 0.05):
            bal = simulate(spec, st, seeds=[0], scheme="balanced", scale=u0, steps=400_000)
            mb = measure_unimodal_phase(bal)
            p59 = th.time_ratio_unequal(st, *depths, post, u0).value
            line = (f"   (L_A, L_B, L_c)=({depths[0]},{depths[1]},{post}) u0={u0:<4}: balanced sim "
                    f"{mb.time_ratio[0]:8.3f}, eq. (59) {p59:8.3f} ({p59 / mb.time_ratio[0] - 1:+.1%})")
            if u0 == 0.1:
                rnd = simulate(spec, st, seeds=[0, 1], scheme="frobenius", scale=u0,
                               steps=400_000)
                mr = measure_unimodal_phase(rnd)
                pr, _ = predict_unimodal_phase(spec, st, rnd.initial_params, 0.04,
                                                  steps=400_000)
                err = np.max(np.abs(pr.time_ratio / mr.time_ratio - 1))
                line += (f" | random init: sim {np.round(mr.time_ratio, 2)}, reduction "
                         f"{np.round(pr.time_ratio, 2)} (max error {err:.1%})")
            print(line)


def invariants():
    st = Stats.scalar_toy(2.0, 1.0, 0.5)
    spec = NetworkSpec.fusion(4, 2, width=5)
    p0 = init_batch(spec, [2], "normal", 0.3)

    def drift(params):
        a, b = th.balance_invariants(spec, p0), th.balance_invariants(spec, params)
        return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)

    gf = train(spec, st, p0, method="gf", lr=1.0, steps=8, record_every=8, stop_loss=None,
               rtol=1e-11, atol=1e-14)
    etas = np.array([0.02, 0.01, 0.005, 0.0025])
    drifts = []
    for eta in etas:
        n = int(round(8 / eta))
        drifts.append(drift(train(spec, st, p0, lr=eta, steps=n, record_every=n,
                                  stop_loss=None).final_params))
    slope = np.polyfit(np.log(etas), np.log(drifts), 1)[0]
    print(f"3. invariants: gradient flow drift {drift(gf.final_params):.1e}; gradient descent "
          f"drift at t = 8 tau ∝ eta^{slope:.3f} (derived: order 1)")


if __name__ == "__main__":
    leading_order()
    unequal()
    invariants()
