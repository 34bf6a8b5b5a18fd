"""Kleinman, Achille & Soatto (CVPR 2023, Sections 4.1-4.2) in linear fusion networks: modality B
deleted, blurred or dissociated during the first N steps on the scalar toy of Zhang, Latham &
Saxe (ICML 2024), its transition time t_B simulated and predicted by the reduced network with the
same windows (theory b) and by the delay formula theory.deficit_times (theory a). Two sweeps per
network (``Train``, ``DeficitTheory``) over ρ × deficit × N, saved under
``out/kleinman2023-deficits-linear/{quick,full}/L<depth>_Lf<L_f>[_theory]``; protocol and
numbers in docs/figures/kleinman2023-deficits-linear.md.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.compare import delay_lines, delay_points, delay_summary
from dlnfusion.interventions import Deficit, blur, delete, dissociate
from dlnfusion.plot import PALETTE, new_figure, panel_label, paper_style, save, style_legend
from dlnfusion.sweep import DeficitTheory, Sweep, Train

from ._output import run_sweeps, write_outputs

ID = "kleinman2023-deficits-linear"
TITLE = "Deficits on modality B for the first N steps: delay of t_B, linear fusion networks"

SIGMA_A, SIGMA_B = 2.0, 1.0
RHOS = (0.0, 0.5)
LENGTHS = (0, 250, 500, 1000, 2000)
QUICK_LENGTHS = (0, 500, 2000)
DEFICITS = ("delete", "blur", "dissociate")
#: A 4× downsampling as a projection keeping a quarter of the band (theory.deficits).
BLUR_FRACTION = 0.25
BLUR_ATTENUATION, BLUR_NOISE_STD = th.deficits.projection_blur(BLUR_FRACTION, SIGMA_B)
NETWORKS = ((2, 1), (2, 2), (4, 1), (4, 2), (4, 3), (4, 4))
#: Quick mode: early and late fusion of two layers, intermediate and late fusion of four.
QUICK_NETWORKS = ((2, 1), (2, 2), (4, 2), (4, 4))
WIDTH = 100
LR = 0.04
INIT = {2: ("normal", 1e-9), 4: ("frobenius", 0.1)}
SEEDS, QUICK_SEEDS = 3, 1
STRIDE = 10
#: Runs stop below this loss (t_B happens long before: the loss is O(0.1) until B is learned).
STOP_LOSS = 1e-6
#: Step budget per (depth, L_f): the longest t_B of the grid (late fusion, ρ = 0.5, deletion
#: of 2000 steps, ≈ 11 900 steps at L = 4) plus the seed spread (±10%) and convergence.
BUDGET = {(2, 1): 3000, (2, 2): 3500, (4, 1): 3000, (4, 2): 3000, (4, 3): 4500, (4, 4): 14000}
#: Points of the formula's lines (level a) per panel.
DENSE = 81
#: Lengths at which the reduced network (level b) is integrated for the theory lines, besides
#: the simulated ones (quick mode keeps to the simulated lengths).
THEORY, QUICK_THEORY = 21, 0


def window_stats(stats: Stats, deficit: str) -> Stats:
    """The moments during the deficit window."""
    if deficit == "delete":
        return delete(stats, "B")
    if deficit == "blur":
        return blur(stats, "B", attenuation=BLUR_ATTENUATION, noise_std=BLUR_NOISE_STD)
    if deficit == "dissociate":
        return dissociate(stats)
    raise ValueError(f"deficit must be one of {DEFICITS}, got {deficit!r}")


def _task(rho):
    return Stats.scalar_toy(SIGMA_A, SIGMA_B, rho)


def _network(depth, fusion_layer):
    return NetworkSpec.fusion(depth, fusion_layer, width=WIDTH)


def _windows(rho, deficit, N):
    """Modality B degraded during the first N steps (runs never count as converged inside
    the window: the stopping rule reads the run's own data only)."""
    return [Deficit(window_stats(_task(rho), deficit), start=0, end=N)]


def sweeps(quick: bool) -> dict:
    """Per network: the simulations, and levels (b) and (a) (with (a)'s dense lines), each
    over ρ × deficit × N (N = 0: the undisturbed run, the same for every deficit)."""
    sim = sorted(float(n) for n in (QUICK_LENGTHS if quick else LENGTHS))
    theory = sorted(set(sim) | set(np.linspace(0, max(sim), QUICK_THEORY if quick else THEORY)))
    line = tuple(np.linspace(0.0, max(sim), DENSE))
    seeds = range(QUICK_SEEDS if quick else SEEDS)
    grid = lambda n: {"rho": RHOS, "deficit": DEFICITS, "N": n}  # noqa: E731
    out = {}
    for depth, Lf in QUICK_NETWORKS if quick else NETWORKS:
        scheme, scale = INIT[depth]
        fixed = {"depth": depth, "fusion_layer": Lf, "lr": LR, "scheme": scheme, "scale": scale,
                 "steps": BUDGET[(depth, Lf)], "stop_loss": STOP_LOSS, "record_every": STRIDE}
        name = f"L{depth}_Lf{Lf}"
        out[name] = Sweep(grid(sim), Train(_task, _network, record=False,
                                           interventions=_windows), fixed, seeds)
        out[f"{name}_theory"] = Sweep(grid(theory), DeficitTheory(
            _task, _network, interventions=_windows, line=line), fixed, seeds)
    return out


def compute(out: Path, quick: bool = False) -> dict:
    return run_sweeps(sweeps(quick), out, ID, quick)


def run(out: Path, quick: bool = False) -> dict:
    start = time.perf_counter()
    ds = compute(out, quick)
    lengths = QUICK_LENGTHS if quick else LENGTHS
    networks = QUICK_NETWORKS if quick else NETWORKS
    points = [p for L, Lf in networks for p in delay_points(
        ds[f"L{L}_Lf{Lf}"], ds[f"L{L}_Lf{Lf}_theory"], lengths, closed=L == 2, depth=L,
        fusion_layer=Lf)]
    summary = delay_summary(points)
    summary["wall_time_s"] = time.perf_counter() - start
    payload = {
        "figure": ID,
        "paper": "Kleinman, Achille & Soatto, CVPR 2023 (deficit protocol), in the networks of "
                 "Zhang, Latham & Saxe, ICML 2024 (Figures 3c, 6)",
        "parameters": {
            "sigma_a": SIGMA_A, "sigma_b": SIGMA_B, "rhos": list(RHOS), "teacher": [1.0, 1.0],
            "lengths": list(lengths), "deficits": list(DEFICITS), "modality": "B",
            "blur": {"fraction": BLUR_FRACTION, "attenuation": BLUR_ATTENUATION,
                     "noise_std": BLUR_NOISE_STD,
                     "model": "projection (theory.deficits.projection_blur)"},
            "networks": [list(n) for n in networks], "width": WIDTH, "lr": LR,
            "init": {str(k): {"scheme": v[0], "scale": v[1]} for k, v in INIT.items()},
            "seeds": list(range(QUICK_SEEDS if quick else SEEDS)), "stride": STRIDE,
            "stop_loss": STOP_LOSS, "budget": {f"{k[0]},{k[1]}": v for k, v in BUDGET.items()},
            "method": "gd",
            "t_B_definition": "first step with W_B^tot >= half of the global solution's B "
                              "weight, from the start of training",
            "t_B_theory": "level (b): predict_unimodal_phase with the same windows",
            "t_B_formula": "level (a): theory.deficit_times on the N = 0 prediction of (b)",
            "t_B_formula_closed": "level (a) on the closed-form no-deficit times "
                                  "(theory.predict_times / predict_times_early; two layers)"},
        "points": points, "summary": summary,
    }
    result = write_outputs(out, ID, payload, lambda stem: _figure(ds, networks, stem),
                           summary)
    for key in ("t_B_theory_rel_error", "t_B_formula_rel_error"):
        v = summary[key]
        print(f"{key}: median {v['median']:.2%}, max {v['max']:.2%} over {v['n']} points")
    return result


_LF_COLORS = {1: PALETTE[1], 2: PALETTE[2], 3: PALETTE[3], 4: PALETTE[4]}
_RHO_STYLE = {0.0: "-", 0.5: "--"}
_RHO_MARK = {0.0: "o", 0.5: "s"}


def _figure(ds, networks, stem):
    """Rows t_B and its delay for two layers, then four; columns the deficits; colors L_f,
    line style ρ; thick pale lines theory (b), thin lines theory (a), open markers the
    simulations (mean ± s.d. over seeds)."""
    from matplotlib.ticker import NullFormatter

    titles = {"delete": "deletion of B", "blur": f"blur of B (c = {BLUR_ATTENUATION:g})",
              "dissociate": "dissociation"}
    with paper_style():
        fig, axes = new_figure(ncols=3, nrows=4, width=6.9, height=8.2)
        for L, Lf in networks:
            sim = ds[f"L{L}_Lf{Lf}"]
            for (rho, d), line in delay_lines(ds[f"L{L}_Lf{Lf}_theory"]).items():
                t_b = sim.t_B.sel(rho=rho, deficit=d).values                    # (N, seed)
                for row, (quantity, y) in enumerate((("t_B", t_b), ("delay", t_b - t_b[0]))):
                    ax = axes[{2: 0, 4: 2}[L] + row, DEFICITS.index(d)]
                    style = dict(color=_LF_COLORS[Lf], ls=_RHO_STYLE[rho], zorder=2)
                    ax.plot(line["N_theory"], line[f"{quantity}_theory"], lw=2.2, alpha=0.45,
                            **style)
                    ax.plot(line["N"], line[f"{quantity}_formula"], lw=0.8, **style)
                    ax.errorbar(sim.N.values, np.nanmean(y, axis=1), yerr=np.nanstd(y, axis=1),
                                fmt=_RHO_MARK[rho], mfc="white", mec=style["color"],
                                ecolor=style["color"], mew=0.9, ms=3.5, capsize=1.5,
                                elinewidth=0.6, lw=0, zorder=3)
        for (row, col), ax in np.ndenumerate(axes):
            if row % 2 == 0:
                ax.set_yscale("log")
                ax.yaxis.set_minor_formatter(NullFormatter())
                ax.set_title(f"{titles[DEFICITS[col]]}, L = {(2, 4)[row // 2]}", fontsize=7.5)
            else:
                ax.axhline(0, color="0.8", lw=0.5, zorder=0)
            if col == 0:
                ax.set_ylabel(r"delay $t_B(N) - t_B(0)$" if row % 2 else r"$t_B$ (steps)")
            if row == 3:
                ax.set_xlabel("deficit length N (steps)")
            panel_label(ax, "abcdefghijkl"[3 * row + col], x=-0.2)
        style_legend(fig, [("-", f"$L_f={Lf}$", {"color": c, "lw": 1.2})
                           for Lf, c in _LF_COLORS.items()]
                     + [(_RHO_STYLE[r], fr"$\rho={r:g}$", {"marker": _RHO_MARK[r], "mfc": "white"})
                        for r in RHOS]
                     + [("-", "theory (b): reduced network", {"lw": 2.2, "alpha": 0.45}),
                        ("-", "theory (a): delay formula", 0.8),
                        ("o", "simulation, mean ± s.d.")], ncol=5, fontsize=6.5,
                     handlelength=2.2)
        return save(fig, stem)
