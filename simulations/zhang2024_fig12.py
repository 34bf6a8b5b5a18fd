"""Zhang, Latham & Saxe (2024), Figure 12 (Appendix H.2): ReLU networks on y = x_A + XOR(x_B).

Two-layer ReLU networks, early and late fusion, σ_A = 1, 2, 3 (a variance), 20 seeds (quick: 4,
on 1024 samples), each drawing its own samples and initial weights: the success rate per
(fusion, σ_A) and seed 0's first-layer weights. Sweeps under ``out/zhang2024-fig12/{quick,full}``;
the protocol, its measured choices and the numbers: docs/figures/zhang2024-fig12.md.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec
from dlnfusion.data import xor_task
from dlnfusion.data.xor import linear_share, xa_only_loss, xor_alignment
from dlnfusion.plot import PALETTE, paper_style, save, weight_scatter
from dlnfusion.sweep import Predict, Sweep, TrainFinal

from ._output import run_sweeps, write_outputs

ID = "zhang2024-fig12"
TITLE = "Figure 12: early vs late fusion ReLU networks on x_A + XOR(x_B)"
SIGMA_AS = (1.0, 2.0, 3.0)
WIDTH, INIT_STD, LR, DTYPE = 100, 1e-9, 0.2, "float32"
N_SAMPLES, QUICK_N_SAMPLES = 4096, 1024
SEEDS, QUICK_SEEDS = tuple(range(20)), tuple(range(4))
MAX_STEPS, STRIDE, STOP_LOSS = 1000, 5, 1e-3
#: Success: final loss below a tenth of ½⟨XOR²⟩ = 0.5, the x_A-only loss.
XA_ONLY_LOSS = 0.5
SUCCESS_LOSS = 0.1 * XA_ONLY_LOSS
#: A failed run is on the x_A-only plateau when its loss is within this fraction of L_A.
PLATEAU_RTOL = 0.02
FUSIONS = (("early", 1), ("late", 2))
CRITERION = (f"success: final training loss (0.5 * mean squared error, after at most {MAX_STEPS} "
             f"steps of full-batch gradient descent) below {SUCCESS_LOSS:g}, a tenth of "
             f"0.5 * Var(XOR) = {XA_ONLY_LOSS:g}, the loss of the best predictor that uses x_A "
             f"alone")


def spec_for(fusion_layer: int) -> NetworkSpec:
    """The two-layer ReLU network: early fusion (L_f = 1) or late fusion (L_f = 2)."""
    return NetworkSpec.fusion(2, fusion_layer, width=WIDTH, input_dims=(1, 2),
                              activation="relu")


def _data(sigma_a, n_samples, seed):
    return xor_task(sigma_a, n_samples=n_samples, seed=seed)


def _xa_only(sigma_a, n_samples, seed):
    return xa_only_loss(_data(sigma_a, n_samples, seed))


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name: the training and each sample's x_A-only loss."""
    seeds = QUICK_SEEDS if quick else SEEDS
    n = {"n_samples": QUICK_N_SAMPLES if quick else N_SAMPLES}
    return {"train": Sweep({"sigma_a": SIGMA_AS, "fusion_layer": [Lf for _, Lf in FUSIONS]},
                           TrainFinal(_data, spec_for, phase=False),
                           {**n, "scale": INIT_STD, "lr": LR, "steps": MAX_STEPS,
                            "record_every": STRIDE, "stop_loss": STOP_LOSS, "dtype": DTYPE},
                           seeds),
            "xa_only": Sweep({"sigma_a": SIGMA_AS}, Predict(_xa_only), n, seeds)}


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    return run_sweeps(sweeps(quick), out, ID, quick)


def _below(time, loss, level):
    """The first recorded time at which the loss is below ``level`` (None if never)."""
    below = np.nonzero(loss < level)[0]
    return float(time[below[0]]) if below.size else None


def _entry(tr, l_a, fusion, sa, seeds) -> dict:
    final = np.asarray(tr.final_loss.values, float)
    ok = final < SUCCESS_LOSS
    plateau = ~ok & (np.abs(final - l_a) <= PLATEAU_RTOL * l_a)
    time, loss = tr.time.values, tr.loss.values
    l0 = loss[:, 0]
    w_a, w_b = tr.first_layer_A.values[:, :, 0], tr.first_layer_B.values
    cross = lambda level: [_below(time, loss[i], level[i]) for i in range(len(seeds))]  # noqa: E731
    return {
        "fusion": fusion, "sigma_a": sa, "seeds": seeds, "success_rate": float(np.mean(ok)),
        "n_success": int(ok.sum()), "n_plateau": int(plateau.sum()),
        "n_partial": int((~ok & ~plateau).sum()),
        "final_loss": final.tolist(), "success_per_seed": ok.tolist(),
        "plateau_per_seed": plateau.tolist(), "xa_only_loss": l_a.tolist(),
        "initial_loss": l0.tolist(), "steps_to_success": cross([SUCCESS_LOSS] * len(seeds)),
        # First transition: the loss halfway from its start to L_A; second: halfway from L_A to
        # 0 (for late fusion, learning A and learning B, in either order).
        "steps_first_transition": cross(0.5 * (l0 + l_a)),
        "steps_second_transition": cross(0.5 * l_a),
        "stop_step": np.asarray(tr.stop_time.values, float).tolist(),
        "status": [str(s) for s in tr.status.values],
        "xor_alignment": [xor_alignment(wb) for wb in w_b],
        "linear_share": [linear_share(wa, wb) for wa, wb in zip(w_a, w_b)]}


def _representative(tr):
    keep = ~np.isnan(tr.loss.values[0])
    return {"time": tr.time.values[keep].tolist(), "loss": tr.loss.values[0][keep].tolist(),
            "W_A1": tr.first_layer_A.values[0, :, 0].tolist(),
            "W_B1": tr.first_layer_B.values[0].tolist()}


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    tr, xa = ds["train"], ds["xa_only"].value
    seeds = [int(s) for s in tr.seed.values]
    n = QUICK_N_SAMPLES if quick else N_SAMPLES
    runs = {(f, sa): tr.sel(sigma_a=sa, fusion_layer=Lf) for sa in SIGMA_AS for f, Lf in FUSIONS}
    success = [_entry(runs[f, sa], xa.sel(sigma_a=sa).values, f, sa, seeds)
               for sa in SIGMA_AS for f, _ in FUSIONS]
    reps = {f"{f}/{sa:g}": _representative(runs[f, sa]) for sa in SIGMA_AS for f, _ in FUSIONS}
    summary = {f"{r['fusion']}/sigma_a={r['sigma_a']:g}":
               f"{r['n_success']}/{len(seeds)} (plateau {r['n_plateau']}, partial "
               f"{r['n_partial']})" for r in success}
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 12 (Appendix H.2)",
               "parameters": {"width": WIDTH, "init_std": INIT_STD, "lr": LR, "dtype": DTYPE,
                              "n_samples": n, "max_steps": MAX_STEPS, "stride": STRIDE,
                              "stop_loss": STOP_LOSS, "sigma_a": list(SIGMA_AS),
                              "sigma_a_is": "variance of x_A", "seeds": seeds,
                              "seed_draws": "samples and initial weights",
                              "loss": "0.5 * mean squared error", "quick": quick},
               "criterion": {"text": CRITERION, "success_loss": SUCCESS_LOSS,
                             "xa_only_loss_population": XA_ONLY_LOSS,
                             "plateau": f"failed and final loss within {PLATEAU_RTOL:.0%} of "
                                        f"the sample's x_A-only optimum L_A"},
               "success": success, "representative_seed": seeds[0], "representative": reps,
               "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(runs, success, stem),
                           summary)
    print(CRITERION)
    for r in success:
        fl = np.asarray(r["final_loss"])
        print(f"  {r['fusion']:5s} sigma_A={r['sigma_a']:g}: success {r['n_success']:2d}/"
              f"{len(seeds)}  plateau {r['n_plateau']:2d}  partial {r['n_partial']:2d}  final "
              f"loss median {np.median(fl):.3g} max {fl.max():.3g}  XOR alignment (seed "
              f"{seeds[0]}) {r['xor_alignment'][0]:.2f}")
    return result


def _figure(runs, success, stem):
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rate = {(r["fusion"], r["sigma_a"]): r for r in success}
    ok_col, bad_col = PALETTE[5], PALETTE[4]
    rows = len(SIGMA_AS)
    with paper_style():
        fig, axes = plt.subplots(rows, 4, figsize=(6.9, 1.62 * rows + 0.3), squeeze=False,
                                 constrained_layout=True,
                                 gridspec_kw={"width_ratios": (1.25, 1.0, 1.25, 1.0)})
        for row, sa in enumerate(SIGMA_AS):
            for k, (fusion, _) in enumerate(FUSIONS):
                tr, r = runs[fusion, sa], rate[fusion, sa]
                time, loss = tr.time.values, tr.loss.values
                ax = axes[row, 2 * k]
                for i in range(loss.shape[0] - 1, -1, -1):
                    keep = ~np.isnan(loss[i])
                    if i == 0:
                        ax.plot(time[keep], loss[i][keep], color=PALETTE[0], lw=1.1, zorder=4)
                    else:
                        ax.plot(time[keep], loss[i][keep], lw=0.5, alpha=0.6, zorder=2,
                                color=ok_col if r["success_per_seed"][i] else bad_col)
                ax.axhline(XA_ONLY_LOSS, color="0.5", ls=":", lw=0.7, zorder=1)
                ax.axhline(SUCCESS_LOSS, color="0.5", ls="--", lw=0.5, zorder=1)
                ax.set_xlim(0, MAX_STEPS)
                top = 0.5 * (sa + 1)
                ax.set_ylim(-0.04 * top, 1.08 * top)
                ax.set_ylabel("Loss", labelpad=1)
                if row == rows - 1:
                    ax.set_xlabel(rf"Step ($\eta$ = {LR:g})")
                ax.set_title(rf"{fusion} fusion, $\sigma_A$ = {sa:g}", fontsize=8)
                ax.text(0.97, 0.93, f"success {r['n_success']}/{len(r['seeds'])}",
                        transform=ax.transAxes, ha="right", va="top", fontsize=7,
                        color=ok_col if r["n_success"] == len(r["seeds"]) else bad_col)
                ax.text(-0.24, 1.03, "acebdf"[k * rows + row], transform=ax.transAxes,
                        fontweight="bold", fontsize=9, va="bottom")
                weight_scatter(fig, axes[row, 2 * k + 1], tr.first_layer_A.values[0, :, 0],
                               tr.first_layer_B.values[0], xlabel=row == rows - 1)
        handles = [Line2D([], [], color=PALETTE[0], lw=1.1, label="seed 0 (weights shown)"),
                   Line2D([], [], color=ok_col, lw=0.8, label="other seeds: success"),
                   Line2D([], [], color=bad_col, lw=0.8, label="other seeds: failure"),
                   Line2D([], [], color="0.5", ls=":", lw=0.8,
                          label=r"$x_A$ only: $\frac{1}{2}$Var(XOR) = 0.5"),
                   Line2D([], [], color="0.5", ls="--", lw=0.6,
                          label=f"success threshold {SUCCESS_LOSS:g}")]
        fig.legend(handles=handles, loc="outside lower center", ncols=5, fontsize=6.5,
                   handlelength=1.6, columnspacing=1.2)
        return save(fig, stem)
