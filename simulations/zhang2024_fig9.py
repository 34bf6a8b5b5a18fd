"""Zhang, Latham & Saxe (2024), Figure 9: logistic loss ln(1 + e^{−yŷ}).

Two-layer early and late fusion (width 100, N(0, (1e-9)²) weights, gradient descent
η = 0.04) on the scalar toy (y = x_A + x_B, σ_B = 1) with the logistic loss instead of the
squared loss. The inputs are Gaussian, so the expected logistic loss is a function of the
covariance of (y, ŷ) alone and is computed exactly (dlnfusion's population-level logistic
loss; the paper used 8192 samples, which agree with it to a few per cent).

(a, b) Loss and total weights of early and late fusion for Σ = diag(4, 1). (c) t_B/t_A of late
fusion against ρ (nine values, every second one in quick mode) for σ_A/σ_B = 2 (and 3 in full
mode), with eq. (9) (line) and the
squared-loss simulation (gray markers). t_A and t_B use the squared-loss references
(half of Σ_yxAΣ_A⁻¹ and of the global solution), as the logistic loss has no finite optimum.

Finding: the first transition is the squared-loss one at half the rate (eq. 35–37: the
logistic gradient at ŷ = 0 is −½ y x), so t_A doubles; the second is much slower, because once
A classifies most samples the logistic loss's sigmoid factor suppresses what drives B. The time
ratio is therefore larger than eq. (9) (about 2.4× at ρ = 0, σ_A/σ_B = 2) rather than equal to it.

Every number comes from a sweep (:mod:`dlnfusion.sweep`), saved under
``out/zhang2024-fig9/{quick,full}/<sweep>``: the trajectories, the logistic and squared-loss
grids, and the theory at the grid's points and along the lines.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, theory_vs_sim, trajectory_panel
from dlnfusion.sweep import Predict, Sweep, Train

from ._output import write_outputs

ID = "zhang2024-fig9"
TITLE = "Figure 9: logistic loss, trajectories and time ratio against eq. (9)"
WIDTH, INIT_STD, LR = 100, 1e-9, 0.04
RHOS, QUICK_RHOS = np.linspace(-0.9, 0.9, 9), np.linspace(-0.9, 0.9, 9)[::2]
RATIOS, QUICK_RATIOS = (2.0, 3.0), (2.0,)
SEEDS, QUICK_SEEDS = (0, 1, 2), (0,)
# The logistic runs never stop (no finite optimum): their steps are most of the cost. Quick:
# one seed, and 32,000 steps, past the latest t_B of its grid (2.95e4 at ρ = −0.9).
MAX_STEPS, QUICK_MAX_STEPS = 120_000, 32_000
TRAJ_STEPS = 3000
#: The theory lines of panel c: eq. (9) at every ρ, the logistic drives at every fourth.
RHO_LINE = np.linspace(-0.92, 0.92, 93)


def _stats(sigma_ratio, rho):
    return Stats.scalar_toy(sigma_ratio, 1.0, rho)


def _network(fusion_layer):
    return NetworkSpec.fusion(2, fusion_layer, width=WIDTH)


def _eq9(sigma_ratio, rho):
    return th.time_ratio_gradient_flow(_stats(sigma_ratio, rho)).value


def _drives(sigma_ratio, rho):
    return th.timescales.time_ratio_from_drives(_stats(sigma_ratio, rho), "logistic", LR).value


def _theory(sigma_ratio, rho):
    return {"eq9": _eq9(sigma_ratio, rho), "logistic_drives": _drives(sigma_ratio, rho)}


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name."""
    seeds = QUICK_SEEDS if quick else SEEDS
    grid = {"sigma_ratio": QUICK_RATIOS if quick else RATIOS,
            "rho": QUICK_RHOS if quick else RHOS}
    base = {"scale": INIT_STD, "lr": LR}
    late = {**base, "fusion_layer": 2, "steps": QUICK_MAX_STEPS if quick else MAX_STEPS,
            "record_every": 100}
    return {
        "trajectories": Sweep({"fusion_layer": (1, 2)}, Train(_stats, _network, theory=False),
                              {**base, "sigma_ratio": 2.0, "rho": 0.0, "loss": "logistic",
                               "steps": TRAJ_STEPS, "stop_loss": None, "record_every": 1}, [0]),
        "logistic": Sweep(grid, Train(_stats, _network, record=False, theory=False),
                          {**late, "loss": "logistic", "stop_loss": None}, seeds),
        "squared": Sweep(grid, Train(_stats, _network, record=False, theory=False),
                         {**late, "stop_loss": 1e-8}, seeds),
        "theory": Sweep(grid, Predict(_theory)),
        "eq9_line": Sweep({**grid, "rho": RHO_LINE}, Predict(_eq9)),
        "drives_line": Sweep({**grid, "rho": RHO_LINE[::4]}, Predict(_drives)),
    }


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def _list(da):
    return [float(v) for v in da.values]


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    logi, mse, theory = ds["logistic"], ds["squared"], ds["theory"].isel(seed=0)
    ratios, rhos = [float(r) for r in logi.sigma_ratio.values], logi.rho.values
    points = []
    for r in ratios:
        for rho in rhos:
            at = {"sigma_ratio": r, "rho": rho}
            lg, sq, t = logi.sel(at), mse.sel(at), theory.sel(at)
            points.append({
                "sigma_ratio": r, "rho": float(rho), "time_ratio_eq9": float(t.eq9),
                "time_ratio_logistic_drives": float(t.logistic_drives),
                "time_ratio_logistic_sim": _list(lg.time_ratio),
                "time_ratio_squared_sim": _list(sq.time_ratio),
                "t_A_logistic_sim": _list(lg.t_A), "t_A_squared_sim": _list(sq.t_A),
                "t_B_logistic_sim": _list(lg.t_B)})
    summary = {
        "t_A_logistic_over_squared_median": float(np.nanmedian(
            [np.mean(p["t_A_logistic_sim"]) / np.mean(p["t_A_squared_sim"]) for p in points])),
        "ratio_logistic_over_eq9": {f"{p['sigma_ratio']:g}/{p['rho']:+.3f}":
                                    float(np.mean(p["time_ratio_logistic_sim"])
                                          / p["time_ratio_eq9"]) for p in points},
        "points_without_t_B": sum(int(np.any(np.isnan(p["t_B_logistic_sim"]))) for p in points),
        "logistic_drives_rel_error": {f"{p['sigma_ratio']:g}/{p['rho']:+.3f}":
                                      float(p["time_ratio_logistic_drives"]
                                            / np.nanmean(p["time_ratio_logistic_sim"]) - 1)
                                      for p in points},
    }
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 9",
               "parameters": {"width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": QUICK_MAX_STEPS if quick else MAX_STEPS,
                              "seeds": [int(s) for s in logi.seed.values],
                              "loss": "logistic, exact expectation for Gaussian inputs"},
               "points": points, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(ds, points, ratios, rhos, stem),
                           summary)
    print(f"t_A(logistic)/t_A(squared), median over the grid: "
          f"{summary['t_A_logistic_over_squared_median']:.2f} (leading order: 2)")
    for p in points:
        lg = np.mean(p["time_ratio_logistic_sim"])
        print(f"  sA/sB={p['sigma_ratio']:g} rho={p['rho']:+.3f}: logistic {lg:8.3f} (drives "
              f"{p['time_ratio_logistic_drives']:8.3f})  squared "
              f"{np.mean(p['time_ratio_squared_sim']):7.3f}  eq.(9) {p['time_ratio_eq9']:7.3f}")
    return result


def _figure(ds, points, ratios, rhos, stem):
    with paper_style():
        fig, axes = new_figure(ncols=3, width=6.9, height=2.1)
        for k, name in enumerate(("early", "late")):
            tr = ds["trajectories"].sel(fusion_layer=k + 1).isel(seed=0)
            h = trajectory_panel(axes[0, k], tr.time.values, loss=tr.loss.values,
                                 maps=[tr.map_A.values[:, 0, 0], tr.map_B.values[:, 0, 0]],
                                 labels=(r"$W_A^{tot}$", r"$W_B^{tot}$"),
                                 colors=(PALETTE[1], PALETTE[2]), panel="ab"[k],
                                 loss_label="Logistic loss")
            axes[0, k].set_title(f"{name} fusion", fontsize=8)
            if k == 0:
                axes[0, k].legend(handles=h, fontsize=6, loc="center right")
        ax = axes[0, 2]
        lines, pts_l, pts_s = [], [], []
        for i, r in enumerate(ratios):
            col = PALETTE[3 + i]
            lines.append({"y": ds["eq9_line"].value.sel(sigma_ratio=r).isel(seed=0).values,
                          "color": col, "label": fr"eq. (9), $\sigma_A/\sigma_B={r:g}$"})
            lines.append({"y": ds["drives_line"].value.sel(sigma_ratio=r).isel(seed=0).values,
                          "x": RHO_LINE[::4], "color": col, "style": "--", "width": 0.9})
            sel = [p for p in points if p["sigma_ratio"] == r]
            pts_l.append({"mean": [np.nanmean(p["time_ratio_logistic_sim"]) for p in sel],
                          "color": col, "marker": "o"})
            pts_s.append({"mean": [np.nanmean(p["time_ratio_squared_sim"]) for p in sel],
                          "color": "0.55", "marker": "s"})
        theory_vs_sim(ax, RHO_LINE, lines, rhos, pts_s + pts_l,
                      r"Correlation coefficient $\rho$", r"Time ratio $t_B/t_A$", logy=True,
                      panel="c")
        from matplotlib.lines import Line2D
        ax.legend(handles=[Line2D([], [], color=PALETTE[3 + i], label=fr"eq. (9), "
                                  fr"$\sigma_A/\sigma_B={r:g}$") for i, r in enumerate(ratios)]
                  + [Line2D([], [], color="0.3", ls="--", label="two phases, logistic drives"),
                     Line2D([], [], ls="", marker="o", mfc="white", mec="0.2",
                            label="logistic loss"),
                     Line2D([], [], ls="", marker="s", mfc="white", mec="0.55",
                            label="squared loss")], fontsize=5.5, loc="upper center")
        return save(fig, stem)
