"""Zhang, Latham & Saxe (2024), Figure 2: early versus late fusion.

Two-layer networks (width 100, weights i.i.d. N(0, (1e-9)²), gradient descent η = 0.04) on
two scalar modalities with Σ = diag(4, 1) and y = x_A + x_B. Early fusion learns both
modalities in one transition; late fusion learns A, sits on the saddle M_A, then learns B.

Panels: (a) early-fusion loss and total weights, (b) early-fusion phase portrait (reduced
flow, fixed points, loss contours, the simulated trajectory), (c), (d) the same for late
fusion. (The paper's panels b, c, e, f; its schematics a, d are not redrawn.)

Every number comes from a sweep (:mod:`dlnfusion.sweep`), saved under
``out/zhang2024-fig2/{quick,full}/<sweep>``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, phase_portrait, save, trajectory_panel
from dlnfusion.sweep import ClosedFormTimes, Predict, Sweep, TrainFinal

from ._output import write_outputs

ID = "zhang2024-fig2"
TITLE = "Figure 2: early vs late fusion, trajectories and phase portraits"
SIGMA_A, SIGMA_B, RHO = 2.0, 1.0, 0.0
WIDTH, INIT_STD, LR, MAX_STEPS, STOP_LOSS = 100, 1e-9, 0.04, 2000, 1e-6
NETWORKS = {"early": 1, "late": 2}          # name → fusion layer
MANIFOLDS = ("M_0", "M_*", "M_A", "M_B")    # the fixed points theory.fixed_points may hold


def _stats():
    return Stats.scalar_toy(SIGMA_A, SIGMA_B, RHO)


def _network(fusion_layer):
    return NetworkSpec.fusion(2, fusion_layer, width=WIDTH)


def _fixed_point(fusion_layer, manifold):
    """One manifold of theory.fixed_points (``exists`` False where the network has none)."""
    m = th.fixed_points(_stats(), fusion_layer).get(manifold)
    if m is None:
        return {"exists": False, "total_map": None, "loss": None, "stable": False}
    return {"exists": True, "total_map": m.total_map, "loss": m.loss, "stable": m.stable}


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name (quick and full are the same single runs)."""
    train = {"lr": LR, "scale": INIT_STD, "steps": MAX_STEPS, "stop_loss": STOP_LOSS,
             "record_every": 1}
    layers = list(NETWORKS.values())
    return {"sim": Sweep({"fusion_layer": layers}, TrainFinal(_stats, _network), train, [0]),
            "closed_form": Sweep({"fusion_layer": [2]}, ClosedFormTimes(_stats, _network),
                                 train, [0]),
            "fixed_points": Sweep({"fusion_layer": layers, "manifold": MANIFOLDS},
                                  Predict(_fixed_point, dims={"total_map": ("out", "in")}))}


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def _fixed_points(ds, fusion_layer) -> dict:
    fp = ds.sel(fusion_layer=fusion_layer).isel(seed=0)
    return {m: {"name": m, "total_map": fp.total_map.sel(manifold=m).values.tolist(),
                "loss": float(fp.loss.sel(manifold=m)), "stable": bool(fp.stable.sel(manifold=m))}
            for m in MANIFOLDS if bool(fp.exists.sel(manifold=m))}


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    results = {}
    for name, Lf in NETWORKS.items():
        s = ds["sim"].sel(fusion_layer=Lf).isel(seed=0)
        t_a, t_b = float(s.t_A), float(s.t_B)
        results[name] = {
            "fusion_layer": Lf, "t_A_sim": t_a, "t_B_sim": t_b, "t_B_minus_t_A_sim": t_b - t_a,
            "final_total_map_sim": [float(s[f"final_map_{m}"][0, 0]) for m in ("A", "B")],
            "status": str(s.status.item()),
            "fixed_points": _fixed_points(ds["fixed_points"], Lf),
            "time_ratio_sim": float(s.time_ratio)}
    results["late"]["time_ratio_theory"] = float(ds["closed_form"].time_ratio[0, 0])
    results["late"]["time_ratio_gradient_flow"] = float(
        ds["sim"].time_ratio_gradient_flow.sel(fusion_layer=2))
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 2",
               "parameters": {"sigma": _stats().sigma.tolist(), "teacher": [1.0, 1.0],
                              "width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS, "seeds": [0]},
               "networks": results}
    result = write_outputs(out, ID, payload, lambda stem: _figure(ds["sim"], stem), results)
    for name in NETWORKS:
        r = results[name]
        print(f"{name:5s} fusion: t_A = {r['t_A_sim']:.1f}, t_B = {r['t_B_sim']:.1f} steps "
              f"(t_B - t_A = {r['t_B_minus_t_A_sim']:.1f}), final W = "
              f"{np.round(r['final_total_map_sim'], 4).tolist()}")
    return result


def _figure(sim, stem):
    with paper_style():
        fig, axes = new_figure(ncols=4, width=6.9, height=1.9)
        for k, (name, Lf) in enumerate(NETWORKS.items()):
            tr = sim.sel(fusion_layer=Lf).isel(seed=0)
            keep = slice(0, int(tr.stop_time) + 1)
            wa, wb = (tr[f"map_{m}"].values[keep, 0, 0] for m in ("A", "B"))
            ax = axes[0, 2 * k]
            handles = trajectory_panel(ax, tr.time.values[keep], loss=tr.loss.values[keep],
                                       maps=[wa, wb], labels=(r"$W_A^{tot}$", r"$W_B^{tot}$"),
                                       colors=(PALETTE[1], PALETTE[2]), panel="ac"[k])
            if k == 0:
                ax.legend(handles=handles, fontsize=6, loc="center right")
            ax.set_title(f"{name} fusion", fontsize=8)
            phase_portrait(_stats(), 2, Lf,
                           trajectories=[{"wa": wa, "wb": wb, "color": PALETTE[1]}],
                           ax=axes[0, 2 * k + 1], xlim=(-0.2, 1.25), ylim=(-0.2, 1.25),
                           density=0.7, panel="bd"[k], legend=(k == 1))
        return save(fig, stem)
