"""Zhang, Latham & Saxe (2024), Figure 8: collinear modalities — B is never learned.

Σ = [[4, 2], [2, 1]] (x_B = x_A/2: ρ = 1), y = x_A + x_B; two-layer late fusion, width 100,
N(0, (1e-9)²) weights, η = 0.04. Modality A alone explains the target (W_A = 1.5 reaches zero
loss), so once A is learned nothing drives B: s̃_B = Σ_yxB − Σ_yxAΣ_A⁻¹Σ_AB = 0 and eq. (9)
gives t_B/t_A = ∞. The run converges to zero loss with W_B^tot ≈ 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, simulate, theory as th
from dlnfusion.compare import measure_unimodal_phase
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, trajectory_panel

from ._output import write_outputs

ID = "zhang2024-fig8"
TITLE = "Figure 8: collinear modalities, B is never learned"
SIGMA = [[4.0, 2.0], [2.0, 1.0]]
WIDTH, INIT_STD, LR, MAX_STEPS = 100, 1e-9, 0.04, 4000


def run(out: Path, quick: bool = False) -> dict:
    st = Stats.from_teacher(SIGMA, [1.0, 1.0], dims=(1, 1), allow_singular=True)
    spec = NetworkSpec.fusion(2, 2, width=WIDTH)
    seeds = [0, 1] if quick else [0, 1, 2, 3, 4]
    traj = simulate(spec, st, seeds=seeds, scale=INIT_STD, lr=LR, steps=MAX_STEPS,
                    stop_loss=None, record_every=1)
    m = measure_unimodal_phase(traj)
    ratio = th.time_ratio_gradient_flow(st)
    res = {
        "sigma": SIGMA, "teacher": [1.0, 1.0], "seeds": seeds,
        "time_ratio_theory": ratio.to_dict(),
        "s_B_tilde": float(th.roles(st).s_b_tilde.item()),
        "t_A_sim": m.t_A.tolist(), "t_B_sim": [None if np.isnan(v) else float(v) for v in m.t_B],
        "final_W_A_sim": traj.final_maps[0][:, 0, 0].tolist(),
        "final_W_B_sim": traj.final_maps[1][:, 0, 0].tolist(),
        "final_loss_sim": traj.final_loss.tolist(),
        "unimodal_plateau_A": float(st.unimodal_solution(0).item()),
        "B_never_learned": bool(np.all(np.isnan(m.t_B))
                                and np.all(np.abs(traj.final_maps[1]) < 1e-3)),
    }
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 8",
               "parameters": {"width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS}, "result": res}
    result = write_outputs(out, ID, payload, lambda stem: _figure(traj, stem), res)
    print(f"theory: t_B/t_A = {ratio.value} ({ratio.caveats[0]})")
    print(f"simulation: t_A = {np.round(m.t_A, 1).tolist()}, t_B never reached: "
          f"{bool(np.all(np.isnan(m.t_B)))}; final W_A = "
          f"{np.round(res['final_W_A_sim'], 4).tolist()}, W_B = "
          f"{np.round(res['final_W_B_sim'], 8).tolist()}, loss = "
          f"{np.array(res['final_loss_sim']).max():.2e}")
    return result


def _figure(traj, stem):
    with paper_style():
        fig, axes = new_figure(ncols=1, width=3.35, height=2.1)
        h = trajectory_panel(axes[0, 0], traj.time, loss=traj.loss[0],
                             maps=[traj.maps[0][0, :, 0, 0], traj.maps[1][0, :, 0, 0]],
                             labels=(r"$W_A^{tot}$", r"$W_B^{tot}$"),
                             colors=(PALETTE[1], PALETTE[2]))
        axes[0, 0].legend(handles=h, fontsize=6, loc="center right")
        return save(fig, stem)
