"""Zhang, Latham & Saxe (2024), Figure 4: superficial modality preference.

Two-layer late fusion (width 100, N(0, (1e-9)²) weights, η = 0.04), uncorrelated scalar
modalities. (a) Σ = diag(9, 1), y = x_A + 4x_B: A is learned first (‖Σ_yxA‖ = 9 > 4) although
B reduces the loss more — the plateau (dotted black, L(M_A)) lies above the loss the network
would have had on M_B (dotted gray). (b) Σ = diag(16, 1), y = x_A + 3x_B: A is first and also
contributes more. (c) Regions of eq. (11) in the (σ_B/σ_A, w_A*/w_B*) plane: I A first and
more useful, II B first but A more useful, III A first but B more useful (eq. 11), IV B first
and more useful; II and III (shaded) are superficial preference.

Every number comes from a sweep (:mod:`dlnfusion.sweep`), saved under
``out/zhang2024-fig4/{quick,full}/<sweep>``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, trajectory_panel
from dlnfusion.sweep import Predict, Sweep, Train

from ._output import write_outputs

ID = "zhang2024-fig4"
TITLE = "Figure 4: superficial modality preference"
EXAMPLES = {"a": (9.0, (1.0, 4.0)), "b": (16.0, (1.0, 3.0))}   # σ_A² (σ_B² = 1), teacher
WIDTH, INIT_STD, LR, MAX_STEPS, STOP_LOSS = 100, 1e-9, 0.04, 4000, 1e-6
REGION_GRID = 400      # points per axis of panel c's map of eq. (11)


def _stats(panel):
    var_a, teacher = EXAMPLES[panel]
    return Stats.from_teacher(np.diag([var_a, 1.0]), teacher, dims=(1, 1))


def _network():
    return NetworkSpec.fusion(2, 2, width=WIDTH)


def _preference(panel):
    """theory.superficial_preference of an example and its region of eq. (11)."""
    var_a, (w_a, w_b) = EXAMPLES[panel]
    return {**th.superficial_preference(_stats(panel)),
            "region": int(th.landscape.preference_regions(np.sqrt(1.0 / var_a), w_a / w_b))}


def _regions(resolution):
    """The regions of eq. (11) on a grid of (σ_B/σ_A, w_A*/w_B*)."""
    r, q = np.linspace(0.02, 1.6, resolution), np.linspace(0.02, 2.0, resolution)
    return {"sigma_ratio": r, "teacher_ratio": q,
            "region": th.landscape.preference_regions(*np.meshgrid(r, q))}


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name (quick and full are the same single runs)."""
    train = {"lr": LR, "scale": INIT_STD, "steps": MAX_STEPS, "stop_loss": STOP_LOSS,
             "record_every": 1}
    dims = {"sigma_ratio": ("r",), "teacher_ratio": ("q",), "region": ("q", "r")}
    return {"sim": Sweep({"panel": list(EXAMPLES)}, Train(_stats, _network, theory=False), train,
                         [0]),
            "theory": Sweep({"panel": list(EXAMPLES)}, Predict(_preference)),
            "regions": Sweep({"resolution": [REGION_GRID]}, Predict(_regions, dims=dims))}


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    results = {}
    for panel, (var_a, teacher) in EXAMPLES.items():
        s = ds["sim"].sel(panel=panel).isel(seed=0)
        t = ds["theory"].sel(panel=panel).isel(seed=0)
        results[panel] = {
            "sigma": _stats(panel).sigma.tolist(), "teacher": list(teacher),
            "first_theory": str(t.first.item()), "first_sim": str(s.first.item()),
            "larger_contribution": str(t.larger_contribution.item()),
            "superficial": bool(t.superficial),
            "plateau_loss_theory": {m: float(t[f"plateau_loss_{m}"]) for m in ("A", "B")},
            "plateau_loss_sim": float(s.plateau_loss), "region_eq11": int(t.region),
            "status": str(s.status.item()),
        }
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 4",
               "parameters": {"width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS, "seeds": [0]},
               "examples": results}
    regions = ds["regions"].isel(resolution=0, seed=0)
    result = write_outputs(out, ID, payload,
                           lambda stem: _figure(ds["sim"], regions, results, stem), results)
    for panel, r in results.items():
        print(f"({panel}) first: theory {r['first_theory']}, simulation {r['first_sim']}; "
              f"larger contribution: {r['larger_contribution']}; superficial: "
              f"{r['superficial']}; plateau loss {r['plateau_loss_sim']:.4f} "
              f"(theory {r['plateau_loss_theory'][r['first_theory']]:.4f})")
    return result


def _figure(sim, regions, results, stem):
    with paper_style():
        fig, axes = new_figure(ncols=3, width=6.9, height=2.1)
        for k, panel in enumerate(EXAMPLES):
            tr = sim.sel(panel=panel).isel(seed=0)
            keep = slice(0, int(tr.stop_time) + 1)
            ax = axes[0, k]
            h = trajectory_panel(ax, tr.time.values[keep], loss=tr.loss.values[keep],
                                 maps=[tr[f"map_{m}"].values[keep, 0, 0] for m in ("A", "B")],
                                 labels=(r"$W_A^{tot}$", r"$W_B^{tot}$"),
                                 colors=(PALETTE[1], PALETTE[2]), panel=panel)
            pl = results[panel]["plateau_loss_theory"]
            ax.axhline(pl["A"], color="black", ls=":", lw=0.9)
            ax.axhline(pl["B"], color="0.6", ls=":", lw=0.9)
            if k == 0:
                ax.legend(handles=h, fontsize=6, loc="center right")
        ax = axes[0, 2]
        r, q = regions.sigma_ratio.values, regions.teacher_ratio.values
        ax.contourf(*np.meshgrid(r, q), np.isin(regions.region.values, (2, 3)).astype(float),
                    levels=[0.5, 1.5], colors=[PALETTE[4]], alpha=0.25)
        ax.plot(r, r ** 2, color="black", lw=1.0, label=r"$w_A^*/w_B^*=(\sigma_B/\sigma_A)^2$")
        ax.plot(r, r, color="black", lw=1.0, ls="--", label=r"$w_A^*/w_B^*=\sigma_B/\sigma_A$")
        for name, (xy, lab) in {"I": ((0.3, 1.5), "I"), "II": ((1.25, 1.4), "II"),
                                "III": ((0.66, 0.52), "III"), "IV": ((1.25, 0.4), "IV")}.items():
            ax.text(*xy, lab, fontsize=8, ha="center", va="center")
        for panel, (var_a, teacher) in EXAMPLES.items():
            ax.plot(np.sqrt(1 / var_a), teacher[0] / teacher[1], "o", mfc="white",
                    mec="black", ms=4)
            ax.annotate(f"({panel})", (np.sqrt(1 / var_a), teacher[0] / teacher[1]),
                        textcoords="offset points", xytext=(4, 3), fontsize=6)
        ax.set_xlim(0, 1.6)
        ax.set_ylim(0, 2.0)
        ax.set_xlabel(r"$\sigma_B/\sigma_A$")
        ax.set_ylabel(r"$w_A^*/w_B^*$")
        ax.legend(fontsize=5.5, loc="upper left")
        ax.text(-0.24, 1.02, "c", transform=ax.transAxes, fontweight="bold", fontsize=9)
        return save(fig, stem)
