"""Zhang, Latham & Saxe (2024), Figure 2: early versus late fusion.

Two-layer networks (width 100, weights i.i.d. N(0, (1e-9)²), gradient descent η = 0.04) on
two scalar modalities with Σ = diag(4, 1) and y = x_A + x_B. Early fusion learns both
modalities in one transition; late fusion learns A, sits on the saddle M_A, then learns B.

Panels: (a) early-fusion loss and total weights, (b) early-fusion phase portrait (reduced
flow, fixed points, loss contours, the simulated trajectory), (c), (d) the same for late
fusion. (The paper's panels b, c, e, f; its schematics a, d are not redrawn.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, simulate, theory as th
from dlnfusion.compare import measure_unimodal_phase
from dlnfusion.plot import PALETTE, new_figure, paper_style, phase_portrait, save, trajectory_panel

from ._output import write_outputs

ID = "zhang2024-fig2"
TITLE = "Figure 2: early vs late fusion, trajectories and phase portraits"
SIGMA_A, SIGMA_B, RHO = 2.0, 1.0, 0.0
WIDTH, INIT_STD, LR, MAX_STEPS, STOP_LOSS = 100, 1e-9, 0.04, 2000, 1e-6


def run(out: Path, quick: bool = False) -> dict:
    stats = Stats.scalar_toy(SIGMA_A, SIGMA_B, RHO)
    results, trajs = {}, {}
    for name, Lf in (("early", 1), ("late", 2)):
        spec = NetworkSpec.fusion(2, Lf, width=WIDTH)
        traj = simulate(spec, stats, seeds=[0], scale=INIT_STD, lr=LR, steps=MAX_STEPS,
                        stop_loss=STOP_LOSS, record_every=1)
        m = measure_unimodal_phase(traj)
        fps = th.fixed_points(stats, Lf)
        results[name] = {
            "fusion_layer": Lf, "t_A_sim": float(m.t_A[0]), "t_B_sim": float(m.t_B[0]),
            "t_B_minus_t_A_sim": float(m.t_B[0] - m.t_A[0]),
            "final_total_map_sim": [float(x[0].item()) for x in traj.final_maps],
            "status": str(traj.status_names()[0]),
            "fixed_points": {k: v.to_dict() for k, v in fps.items()},
            "time_ratio_sim": float(m.time_ratio[0]),
        }
        trajs[name] = traj
    results["late"]["time_ratio_theory"] = th.predict_times(
        stats, LR, th.effective_init(NetworkSpec.fusion(2, 2, width=WIDTH),
                                     trajs["late"].initial_params,
                                     th.phase_directions(stats))[0]).ratio
    results["late"]["time_ratio_gradient_flow"] = th.time_ratio_gradient_flow(stats).value
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 2",
               "parameters": {"sigma": stats.sigma.tolist(), "teacher": [1.0, 1.0],
                              "width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS, "seeds": [0]},
               "networks": results}
    result = write_outputs(out, ID, payload, lambda stem: _figure(stats, trajs, stem),
                           results)
    for name in ("early", "late"):
        r = results[name]
        print(f"{name:5s} fusion: t_A = {r['t_A_sim']:.1f}, t_B = {r['t_B_sim']:.1f} steps "
              f"(t_B - t_A = {r['t_B_minus_t_A_sim']:.1f}), final W = "
              f"{np.round(r['final_total_map_sim'], 4).tolist()}")
    return result


def _figure(stats, trajs, stem):
    with paper_style():
        fig, axes = new_figure(ncols=4, width=6.9, height=1.9)
        for k, (name, Lf) in enumerate((("early", 1), ("late", 2))):
            tr = trajs[name]
            stop = int(tr.stop_time[0])
            t = tr.time[: stop + 1]
            wa, wb = tr.maps[0][0, : stop + 1, 0, 0], tr.maps[1][0, : stop + 1, 0, 0]
            ax = axes[0, 2 * k]
            handles = trajectory_panel(ax, t, loss=tr.loss[0, : stop + 1], maps=[wa, wb],
                                       labels=(r"$W_A^{tot}$", r"$W_B^{tot}$"),
                                       colors=(PALETTE[1], PALETTE[2]), panel="ac"[k])
            if k == 0:
                ax.legend(handles=handles, fontsize=6, loc="center right")
            ax.set_title(f"{name} fusion", fontsize=8)
            phase_portrait(stats, 2, Lf, trajectories=[{"wa": wa, "wb": wb, "color": PALETTE[1]}],
                           ax=axes[0, 2 * k + 1], xlim=(-0.2, 1.25), ylim=(-0.2, 1.25),
                           density=0.7, panel="bd"[k], legend=(k == 1))
        return save(fig, stem)
