"""Zhang, Latham & Saxe (2024), Figure 11: two-layer ReLU networks on a linear task.

Figure 2's task learned by two-layer early- and late-fusion ReLU networks, each against the
linear network from the same initial weights: the slow-down of the half-way times and the factor
of the final total weights, simulated and predicted (theory.relu.relu_and_linear_times). Sweeps
under ``out/zhang2024-fig11/{quick,full}``; protocol and numbers: docs/figures/zhang2024-fig11.md.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, init_batch, theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, save, style_legend, trajectory_panel
from dlnfusion.sweep import Predict, Sweep, TrainFinal

from ._output import run_sweeps, write_outputs

ID = "zhang2024-fig11"
TITLE = "Figure 11: two-layer ReLU networks on a linear task, early and late fusion"
SIGMA_A, SIGMA_B, RHO = 2.0, 1.0, 0.0
WIDTH, INIT_STD, LR = 100, 1e-9, 0.04
# Stopping at loss 1e-10 pins every total weight to √(2·1e-10/σ_B²) ≈ 1.4e-5 of its limit (the
# loss is quadratic in the function's odd part): the weight factor is measured to ~3e-5.
MAX_STEPS, STOP_LOSS = 20_000, 1e-10
SEEDS, QUICK_SEEDS = 5, 1
NETWORKS = (("early", 1), ("late", 2))
MODALITIES = ("A", "B")
#: Half-way: level ½ of the linear plateau, level 1 of it (½ of twice it) for ReLU.
LEVELS = {"linear": 0.5, "relu": 1.0}


def _stats():
    return Stats.scalar_toy(SIGMA_A, SIGMA_B, RHO)


def _network(fusion_layer, activation):
    return NetworkSpec.fusion(2, fusion_layer, width=WIDTH, activation=activation)


def _predicted(fusion_layer, seed):
    """The linear and the ReLU network's predicted times from the seed's initial weights."""
    spec = _network(fusion_layer, "linear")
    pred = th.relu.relu_and_linear_times(_stats(), LR, spec,
                                         init_batch(spec, [seed], "normal", INIT_STD))
    return {**{f"w0_{i}": float(w) for i, w in enumerate(pred.pop("w0"))}, **pred}


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name: the ReLU and linear networks, and the predictions."""
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    layers = [Lf for _, Lf in NETWORKS]
    return {"train": Sweep({"fusion_layer": layers, "activation": list(LEVELS)[::-1]},
                           TrainFinal(_stats, _network),
                           {"scale": INIT_STD, "lr": LR, "steps": MAX_STEPS,
                            "stop_loss": STOP_LOSS, "record_every": 1,
                            "levels": tuple(sorted(LEVELS.values()))}, seeds),
            "theory": Sweep({"fusion_layer": layers}, Predict(_predicted), {}, seeds)}


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    return run_sweeps(sweeps(quick), out, ID, quick)


def _times(run, Lf, kind):
    """(seeds, 2) half-way times in modality order: late fusion A half of its plateau and B
    half of its final value (A must be learned first), early fusion each modality half of
    its final value."""
    at = {"level": LEVELS[kind]}
    uni, glob = run.crossing_unimodal.sel(at).values, run.crossing_global.sel(at).values
    if Lf == 1:
        return glob
    if not np.all(np.nan_to_num(uni[:, 0], nan=np.inf) < np.nan_to_num(uni[:, 1], nan=np.inf)):
        raise RuntimeError("modality A is expected to be learned first")
    return np.stack([uni[:, 0], glob[:, 1]], axis=-1)


def _per_modality(a) -> dict:
    return {f"t_{n}": np.asarray(a, dtype=float)[:, k].tolist() for k, n in enumerate(MODALITIES)}


def _network_result(runs, pred, Lf) -> dict:
    for kind in ("relu", "linear"):
        if not (pred[f"{kind}_valid"] & (pred[f"{kind}_first"] == MODALITIES[0])).all():
            raise RuntimeError(f"the {kind} prediction must be valid, with A learned first")
    t = {kind: _times(runs[kind], Lf, kind) for kind in ("relu", "linear")}
    p = {kind: np.stack([pred[f"{kind}_t_{n}"].values for n in MODALITIES], axis=-1)
         for kind in ("relu", "linear")}
    slow_sim, slow_th = t["relu"] / t["linear"], p["relu"] / p["linear"]
    slow_err = np.max(np.abs(slow_th / slow_sim - 1), axis=0)               # per modality
    W = {kind: np.concatenate([runs[kind][f"final_map_{n}"].values[:, 0] for n in MODALITIES],
                              axis=-1) for kind in ("relu", "linear")}       # (seeds, 2)
    wf = W["relu"] / W["linear"]
    return {
        "fusion_layer": Lf,
        "initial_mode_w0": (pred.w0_0.values if Lf == 1 else
                            np.stack([pred.w0_0.values, pred.w0_1.values], -1)).tolist(),
        "times_sim": {k: _per_modality(t[k]) for k in ("relu", "linear")},
        "times_theory": {k: _per_modality(p[k]) for k in ("relu", "linear")},
        "slowdown_sim": _per_modality(slow_sim), "slowdown_theory": _per_modality(slow_th),
        "slowdown_rel_error": {f"t_{n}": float(slow_err[k]) for k, n in enumerate(MODALITIES)},
        "final_total_map_relu": W["relu"].tolist(), "final_total_map_linear": W["linear"].tolist(),
        "weight_factor_sim": {n: wf[:, k].tolist() for k, n in enumerate(MODALITIES)},
        "weight_factor_theory": th.relu.RELU_WEIGHT_FACTOR,
        "final_loss": {k: runs[k].final_loss.values.tolist() for k in ("relu", "linear")},
        "status": {k: [str(s) for s in runs[k].status.values] for k in ("relu", "linear")}}


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    tr = ds["train"]
    runs = {name: {kind: tr.sel(fusion_layer=Lf, activation=kind) for kind in LEVELS}
            for name, Lf in NETWORKS}
    results = {name: _network_result(runs[name], ds["theory"].sel(fusion_layer=Lf), Lf)
               for name, Lf in NETWORKS}
    summary = _summary(results)
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 11 (Appendix H.1)",
               "parameters": {"sigma": _stats().sigma.tolist(), "teacher": [1.0, 1.0],
                              "width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS,
                              "seeds": [int(s) for s in tr.seed.values],
                              "method": "gd", "activation": "relu (linear for comparison)"},
               "networks": results, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(runs, results, stem), summary)
    _print(summary)
    return result


def _summary(results) -> dict:
    slow_err, wf_err, slow_all = [], [], []
    for r in results.values():
        for n in MODALITIES:
            slow_err.append(r["slowdown_rel_error"][f"t_{n}"])
            slow_all.extend(r["slowdown_sim"][f"t_{n}"])
            wf = np.array(r["weight_factor_sim"][n])
            wf_err.append(np.max(np.abs(r["weight_factor_theory"] / wf - 1)))
    return {
        "slowdown_max_rel_deviation": float(np.max(slow_err)),
        "weight_factor_max_rel_deviation": float(np.max(wf_err)),
        "slowdown_sim_range": [float(np.min(slow_all)), float(np.max(slow_all))],
        "slowdown_max_deviation_from_2": float(np.max(np.abs(np.array(slow_all) / 2 - 1))),
        "all_converged": all(s == "converged" for r in results.values()
                             for v in r["status"].values() for s in v)}


def _figure(runs, results, stem):
    colors = (PALETTE[1], PALETTE[2])
    with paper_style():
        fig, axes = new_figure(ncols=2, width=6.9, height=2.5)
        for k, (name, Lf) in enumerate(NETWORKS):
            lin, relu = (runs[name][kind].isel(seed=0) for kind in ("linear", "relu"))
            ax = axes[0, k]
            stop = int(relu.stop_time)
            t = relu.time.values[: stop + 1]
            h = trajectory_panel(ax, t, loss=relu.loss.values[: stop + 1],
                                 maps=[relu[f"map_{n}"].values[: stop + 1, 0, 0]
                                       for n in MODALITIES], colors=colors, panel="ab"[k])
            ax2 = h[-1].axes                                    # the total-weight axis
            stop_l = int(lin.stop_time)
            tl = lin.time.values[: stop_l + 1]
            ax.plot(tl, lin.loss.values[: stop_l + 1], color="0.45", lw=0.8, ls="--", zorder=1)
            for m, n in enumerate(MODALITIES):
                ax2.plot(tl, lin[f"map_{n}"].values[: stop_l + 1, 0, 0], color=colors[m],
                         lw=0.8, ls="--", alpha=0.9)
            r = results[name]
            ax.set_xlim(0, min((1.8, 1.45)[k] * r["times_sim"]["relu"]["t_B"][0], stop))
            ax.set_ylim(-0.05, 2.65)
            ax2.set_ylim(-0.05 / 2.65 * 2.25, 2.25)           # zero level with the loss axis
            ax.set_title(f"{name} fusion ($L_f={Lf}$)", fontsize=8)
            s_a, s_b = (np.mean(r["slowdown_sim"][f"t_{n}"]) for n in MODALITIES)
            p_a, p_b = (np.mean(r["slowdown_theory"][f"t_{n}"]) for n in MODALITIES)
            # Where no curve passes (weight axis, above the loss axis): early fusion below the
            # ReLU weights after the linear run has ended, late fusion between A's plateaus.
            x, y, ha = ((0.98, 0.27, "right"), (0.23, 0.68, "left"))[k]
            ax2.text(x, y, "$t_{\\mathrm{ReLU}}/t_{\\mathrm{lin}}$: sim, theory\n"
                     f"A: {s_a:.3f}, {p_a:.3f}\nB: {s_b:.3f}, {p_b:.3f}",
                     transform=ax2.transAxes, ha=ha, va="center", ma="left", fontsize=6,
                     zorder=5, bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.8", lw=0.5))
        style_legend(fig, [("-", "loss", {"color": PALETTE[0], "lw": 1.2}),
                           ("-", r"$W_A^{tot}$", {"color": colors[0], "lw": 1.2}),
                           ("-", r"$W_B^{tot}$", {"color": colors[1], "lw": 1.2}),
                           ("-", "ReLU network", 1.2), ("--", "linear network", 0.8)],
                     ncol=5, fontsize=6.5, handlelength=2.2)
        return save(fig, stem)


def _print(s):
    print(f"slow-down, theory vs simulation: max relative deviation "
          f"{s['slowdown_max_rel_deviation']:.2e}; simulated range "
          f"{s['slowdown_sim_range'][0]:.3f}-{s['slowdown_sim_range'][1]:.3f} (max "
          f"{s['slowdown_max_deviation_from_2']:.1%} from the paper's 2)")
    print(f"weight factor, theory (2) vs simulation: max relative deviation "
          f"{s['weight_factor_max_rel_deviation']:.2e}; all converged: {s['all_converged']}")
