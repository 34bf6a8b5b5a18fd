"""Zhang, Latham & Saxe (2024), Figure 8: collinear modalities — B is never learned.

Σ = [[4, 2], [2, 1]] (x_B = x_A/2: ρ = 1), y = x_A + x_B; two-layer late fusion, width 100,
N(0, (1e-9)²) weights, η = 0.04. Modality A alone explains the target (W_A = 1.5 reaches zero
loss), so once A is learned nothing drives B: s̃_B = Σ_yxB − Σ_yxAΣ_A⁻¹Σ_AB = 0 and eq. (9)
gives t_B/t_A = ∞. The run converges to zero loss with W_B^tot ≈ 0.

Every number comes from a sweep (:mod:`dlnfusion.sweep`), saved under
``out/zhang2024-fig8/{quick,full}/<sweep>``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, trajectory_panel
from dlnfusion.sweep import CAVEAT_SEPARATOR, Predict, Sweep, TrainFinal

from ._output import write_outputs

ID = "zhang2024-fig8"
TITLE = "Figure 8: collinear modalities, B is never learned"
SIGMA = [[4.0, 2.0], [2.0, 1.0]]
WIDTH, INIT_STD, LR, MAX_STEPS = 100, 1e-9, 0.04, 4000
SEEDS, QUICK_SEEDS = 5, 2


def _stats(sigma_ab):
    """Σ with the cross-covariance ``sigma_ab`` (SIGMA's: collinear modalities)."""
    sigma = [[SIGMA[0][0], sigma_ab], [sigma_ab, SIGMA[1][1]]]
    return Stats.from_teacher(sigma, [1.0, 1.0], dims=(1, 1), allow_singular=True)


def _network():
    return NetworkSpec.fusion(2, 2, width=WIDTH)


def _theory(sigma_ab):
    """Eq. (9) corrected, the part of Σ_yxB that A does not explain, and A's plateau."""
    st = _stats(sigma_ab)
    return {"time_ratio": th.time_ratio_gradient_flow(st),
            "s_B_tilde": float(th.roles(st).s_b_tilde.item()),
            "unimodal_plateau_A": float(st.unimodal_solution(0).item())}


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name."""
    grid = {"sigma_ab": [SIGMA[0][1]]}
    train = {"lr": LR, "scale": INIT_STD, "steps": MAX_STEPS, "stop_loss": None,
             "record_every": 1}
    return {"sim": Sweep(grid, TrainFinal(_stats, _network), train,
                         list(range(QUICK_SEEDS if quick else SEEDS))),
            "theory": Sweep(grid, Predict(_theory))}


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    sim, t = ds["sim"].isel(sigma_ab=0), ds["theory"].isel(sigma_ab=0, seed=0)
    t_b = sim.t_B.values
    w_a, w_b = (sim[f"final_map_{m}"].values[:, 0, 0] for m in ("A", "B"))
    res = {
        "sigma": SIGMA, "teacher": [1.0, 1.0], "seeds": [int(s) for s in sim.seed.values],
        "time_ratio_theory": {"value": float(t.time_ratio), "valid": bool(t.time_ratio_valid),
                              "caveats": str(t.time_ratio_caveats.item()).split(CAVEAT_SEPARATOR)},
        "s_B_tilde": float(t.s_B_tilde),
        "t_A_sim": sim.t_A.values.tolist(),
        "t_B_sim": [None if np.isnan(v) else float(v) for v in t_b],
        "final_W_A_sim": w_a.tolist(), "final_W_B_sim": w_b.tolist(),
        "final_loss_sim": sim.final_loss.values.tolist(),
        "unimodal_plateau_A": float(t.unimodal_plateau_A),
        "B_never_learned": bool(np.all(np.isnan(t_b)) and np.all(np.abs(w_b) < 1e-3)),
    }
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 8",
               "parameters": {"width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS}, "result": res}
    result = write_outputs(out, ID, payload, lambda stem: _figure(sim.isel(seed=0), stem), res)
    ratio = res["time_ratio_theory"]
    print(f"theory: t_B/t_A = {ratio['value']} ({ratio['caveats'][0]})")
    print(f"simulation: t_A = {np.round(sim.t_A.values, 1).tolist()}, t_B never reached: "
          f"{bool(np.all(np.isnan(t_b)))}; final W_A = {np.round(w_a, 4).tolist()}, W_B = "
          f"{np.round(w_b, 8).tolist()}, loss = {sim.final_loss.values.max():.2e}")
    return result


def _figure(tr, stem):
    with paper_style():
        fig, axes = new_figure(ncols=1, width=3.35, height=2.1)
        h = trajectory_panel(axes[0, 0], tr.time.values, loss=tr.loss.values,
                             maps=[tr[f"map_{m}"].values[:, 0, 0] for m in ("A", "B")],
                             labels=(r"$W_A^{tot}$", r"$W_B^{tot}$"),
                             colors=(PALETTE[1], PALETTE[2]))
        axes[0, 0].legend(handles=h, fontsize=6, loc="center right")
        return save(fig, stem)
