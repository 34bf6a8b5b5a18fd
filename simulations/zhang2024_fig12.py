"""Zhang, Latham & Saxe (2024), Figure 12 (Appendix H.2): ReLU networks on y = x_A + XOR(x_B).

Modality A is a linear feature x_A ~ N(0, σ_A) (σ_A is a variance, as in the paper and the
authors' code), modality B a point of {±1}² that enters only through XOR(x_B) = −x_B1·x_B2
(:func:`dlnfusion.data.xor_task`, balanced over the four points). Two-layer ReLU networks
without biases, width 100: early fusion (x_A, x_B) ∈ R³ → 100 ReLU → 1, and late fusion with
a 1 → 100 ReLU branch for A and a 2 → 100 ReLU branch for B whose outputs are summed (the
authors' concatenation followed by one output layer). Every weight is N(0, (1e-9)²); full-batch
gradient descent on ½·mean (y − ŷ)², the toolkit's squared loss; σ_A = 1, 2, 3; 20 seeds per
(fusion, σ_A), trained in one vmapped call per configuration.

Seeds. Seed s draws the samples (``xor_task(σ_A, seed=s)``) as well as the initial weights,
so a rate is over data sets and initializations. This matters for early fusion. Runs that get
stuck sit where the network fits x_A alone, with every first-layer row pointing along x_A.
There ⟨XOR(x_B) x_B⟩ = 0 leaves the XOR directions without a first-order pull, and whether a
run escapes depends on the particular sample. With one data set and 8 initializations
(σ_A = 3) all 8 succeeded on one 2048-sample set and none on one 4096-sample set; with the
same x_A values at each of the four points (no imbalance between them; 1024 samples) none of
16 runs at σ_A = 2, 3 escaped.

Choices, measured before they were fixed (early-fusion rates with a data set per seed):

* Initialization 1e-9, the paper's (rich regime, features in the first layer). Late fusion
  then has two separate transitions: A at ≈ 200/σ_A steps, B at 275–285 steps for every σ_A;
  it has converged by ~300 steps.
* Learning rate η = 0.2 instead of the paper's 0.04, for run time. In gradient-flow time η·t,
  late fusion converged at 62–68 (η = 0.04), 63–69 (0.1) and 64–71 (0.2) on the same 8 seeds
  (1024 samples, σ_A = 1 and 3); η = 0.4 is ~10 % late and η = 0.6 no longer converges.
  Early-fusion successes at 2048 samples, 20 seeds, η = 0.2 / 0.1 / 0.04: 7 / 7 / 11 of 20 at
  σ_A = 2 and 3 / 1 / 4 of 20 at σ_A = 3. The differences are of the size of the binomial
  scatter (±2 per count), not certainly zero.
* Budget 1000 steps (η·t = 200), three times what late fusion needs; runs stop below 1e-3.
  Early-fusion runs that leave the plateau late are counted as failures if they are still
  above the threshold at the end (σ_A = 2 shows such slow, multi-stage runs).
* 4096 samples (the paper used 8192) halve the cost. With 8 seeds, early-fusion successes at
  2048 / 4096 / 8192 samples: 4 / 5 / 6 of 8 at σ_A = 2 and 3 / 2 / 2 of 8 at σ_A = 3.
* float32: float64 runs give the same outcomes and final losses (0.1458 against 0.1457 after
  12 000 steps for a run in the partial state).
* Success: final training loss below 0.05, a tenth of 0.5 = ½⟨XOR²⟩, the loss of the best
  predictor that uses x_A alone (ŷ = x_A; ½·Var(XOR) in the ½·MSE convention). Below it the
  network has fitted ≳ 90 % of the variance of the XOR part. Failed runs sit either on the
  x_A-only plateau (final loss within 2 % of the sample's x_A-only optimum L_A: ``plateau``)
  or in a partial state at 0.15–0.19 where the XOR is fitted on two of the four points only
  (``partial``).

Measured (full run): late fusion succeeds in 20/20 seeds at every σ_A, its W_B¹ rows on the
four XOR directions (``xor_alignment`` 1.00). Early fusion: 20/20 at σ_A = 1, 11/20 at
σ_A = 2 (5 on the plateau, 4 partial), 5/20 at σ_A = 3 (15 on the plateau, where the first
layer reads x_A only: ``linear_share`` 1.00).

Quick mode: 4 seeds and 1024 samples, the same budget. It checks the pipeline and the
late-fusion result; its early-fusion rates rest on four small data sets and are no estimate.

Panels (paper 12a–f): one row per σ_A, early fusion (a, c, e) and late fusion (b, d, f). Each
has the loss of every seed (thin; blue = success, vermillion = failure; seed 0 black) and the
first-layer weights of seed 0 at the end: the two components of W_B¹ of each hidden unit as its
position, W_A¹ as its color. Late-fusion units of the two branches are different neurons,
paired by index as in the authors' plots.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, init_batch, train
from dlnfusion.data import xor_task
from dlnfusion.plot import PALETTE, paper_style, save

from ._output import write_outputs

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


def xa_only_loss(data) -> float:
    """L_A: the least ½·MSE a network can reach using x_A alone on this sample.

    Without biases every ReLU function of the scalar x_A is c₊ relu(x_A) + c₋ relu(−x_A), so
    L_A is the least-squares fit of y on these two features (≈ 0.5, the population value)."""
    xa = data.xs[0][:, 0]
    F = np.stack([np.maximum(xa, 0.0), np.maximum(-xa, 0.0)], axis=1)
    c = np.linalg.lstsq(F, data.y[:, 0], rcond=None)[0]
    return float(0.5 * np.mean((data.y[:, 0] - F @ c) ** 2))


def first_layer(traj, run: int):
    """Final W_A¹ (H,) and W_B¹ (H, 2) of one run; late-fusion units paired by index."""
    branches = traj.final_params.branches
    return np.asarray(branches[0][0][run, :, 0], float), np.asarray(branches[1][0][run], float)


def xor_alignment(w_b, max_angle_deg: float = 10.0) -> float:
    """Share of Σ‖w_B,i‖² carried by units whose W_B¹ row lies within ``max_angle_deg`` of one of
    the four XOR directions (±1, ±1)/√2."""
    sq = np.sum(w_b ** 2, axis=1)
    ang = np.degrees(np.arctan2(w_b[:, 1], w_b[:, 0]))
    off = np.abs(ang % 90.0 - 45.0)          # angle to the nearest diagonal
    return float(np.sum(sq[off <= max_angle_deg]) / np.sum(sq))


def linear_share(w_a, w_b) -> float:
    """Σ W_A¹² / (Σ W_A¹² + Σ ‖W_B¹‖²): how much of the first layer reads the linear modality."""
    a, b = np.sum(w_a ** 2), np.sum(w_b ** 2)
    return float(a / (a + b))


def _crossing(time, loss, level):
    below = np.nonzero(loss < level)[0]
    return float(time[below[0]]) if below.size else None


def run(out: Path, quick: bool = False) -> dict:
    seeds = list(QUICK_SEEDS if quick else SEEDS)
    n = QUICK_N_SAMPLES if quick else N_SAMPLES
    success, trajs = [], {}
    for sa in SIGMA_AS:
        data = [xor_task(sa, n_samples=n, seed=s) for s in seeds]
        l_a = np.array([xa_only_loss(d) for d in data])
        for fusion, Lf in FUSIONS:
            spec = spec_for(Lf)
            params = init_batch(spec, seeds, "normal", INIT_STD)
            tr = train(spec, data, params, lr=LR, steps=MAX_STEPS, record_every=STRIDE,
                       stop_loss=STOP_LOSS, dtype=DTYPE)
            trajs[fusion, sa] = tr
            final = np.asarray(tr.final_loss, float)
            ok = final < SUCCESS_LOSS
            plateau = ~ok & (np.abs(final - l_a) <= PLATEAU_RTOL * l_a)
            layers = [first_layer(tr, i) for i in range(len(seeds))]
            l0 = tr.loss[:, 0]
            success.append({
                "fusion": fusion, "sigma_a": sa, "seeds": seeds,
                "success_rate": float(np.mean(ok)),
                "n_success": int(ok.sum()), "n_plateau": int(plateau.sum()),
                "n_partial": int((~ok & ~plateau).sum()),
                "final_loss": final.tolist(), "success_per_seed": ok.tolist(),
                "plateau_per_seed": plateau.tolist(), "xa_only_loss": l_a.tolist(),
                "initial_loss": l0.tolist(),
                "steps_to_success": [_crossing(tr.time, tr.loss[i], SUCCESS_LOSS)
                                     for i in range(len(seeds))],
                # First transition: the loss halfway from its start to L_A; second: halfway
                # from L_A to 0 (for late fusion, learning A and learning B, in either order).
                "steps_first_transition": [_crossing(tr.time, tr.loss[i], 0.5 * (l0[i] + l_a[i]))
                                           for i in range(len(seeds))],
                "steps_second_transition": [_crossing(tr.time, tr.loss[i], 0.5 * l_a[i])
                                            for i in range(len(seeds))],
                "stop_step": np.asarray(tr.stop_time, float).tolist(),
                "status": [str(s) for s in tr.status_names()],
                "xor_alignment": [xor_alignment(wb) for _, wb in layers],
                "linear_share": [linear_share(wa, wb) for wa, wb in layers],
            })
    reps = {f"{f}/{sa:g}": _representative(trajs[f, sa]) for sa in SIGMA_AS
            for f, _ in FUSIONS}
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
    result = write_outputs(out, ID, payload, lambda stem: _figure(trajs, success, stem),
                           summary)
    print(CRITERION)
    for r in success:
        fl = np.asarray(r["final_loss"])
        print(f"  {r['fusion']:5s} sigma_A={r['sigma_a']:g}: success {r['n_success']:2d}/"
              f"{len(seeds)}  plateau {r['n_plateau']:2d}  partial {r['n_partial']:2d}  final "
              f"loss median {np.median(fl):.3g} max {fl.max():.3g}  XOR alignment (seed "
              f"{seeds[0]}) {r['xor_alignment'][0]:.2f}")
    return result


def _representative(tr):
    wa, wb = first_layer(tr, 0)
    keep = ~np.isnan(tr.loss[0])
    return {"time": tr.time[keep].tolist(), "loss": tr.loss[0][keep].tolist(),
            "W_A1": wa.tolist(), "W_B1": wb.tolist()}


def _figure(trajs, success, stem):
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
                tr, r = trajs[fusion, sa], rate[fusion, sa]
                ax = axes[row, 2 * k]
                for i in range(tr.loss.shape[0] - 1, -1, -1):
                    keep = ~np.isnan(tr.loss[i])
                    if i == 0:
                        ax.plot(tr.time[keep], tr.loss[i][keep], color=PALETTE[0], lw=1.1,
                                zorder=4)
                    else:
                        ax.plot(tr.time[keep], tr.loss[i][keep], lw=0.5, alpha=0.6, zorder=2,
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
                _weights(fig, axes[row, 2 * k + 1], *first_layer(tr, 0),
                         xlabel=row == rows - 1)
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


def _weights(fig, ax, w_a, w_b, xlabel=True):
    """First-layer weights: W_B¹ rows as positions, W_A¹ as color (symmetric diverging map)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:g}".replace("-", "\u2212"))

    lim = 1.15 * max(np.max(np.abs(w_b)), 1e-12)
    tick = float(f"{0.75 * lim:.1g}")
    vmax = max(np.max(np.abs(w_a)), 1e-12)
    for d in (1, -1):
        ax.plot([-lim, lim], [-d * lim, d * lim], color="0.88", lw=0.5, zorder=0)
    ax.axhline(0, color="0.75", lw=0.4, zorder=0)
    ax.axvline(0, color="0.75", lw=0.4, zorder=0)
    sc = ax.scatter(w_b[:, 0], w_b[:, 1], c=w_a, cmap="RdBu_r", vmin=-vmax, vmax=vmax, s=8,
                    edgecolors="0.3", linewidths=0.25, zorder=3)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_box_aspect(1)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(FixedLocator([-tick, 0.0, tick]))
        axis.set_major_formatter(fmt)
    ax.tick_params(labelsize=6)
    if xlabel:
        ax.set_xlabel(r"$(W_B^1)_1$", labelpad=1)
    ax.set_ylabel(r"$(W_B^1)_2$", labelpad=1)
    cb = fig.colorbar(sc, ax=ax, fraction=0.08, pad=0.03, aspect=14, shrink=0.9)
    cb.set_label(r"$W_A^1$", labelpad=1)
    vt = float(f"{0.8 * vmax:.1g}")
    cb.set_ticks([-vt, 0.0, vt])
    cb.ax.yaxis.set_major_formatter(fmt)
    cb.ax.tick_params(labelsize=6, width=0.5, length=2)
    cb.outline.set_linewidth(0.4)
