"""Kleinman, Achille & Soatto (CVPR 2023), Section 4.4 on real data: does a cross-source
reconstruction objective remove the permanent effect of an early deficit?

The setting of kleinman2023-deficits-relu (digit halves, FusionMLP with n_pre = 2 layers per
view, width 128, SGD 0.05 with momentum 0.9, batches of 64, a deficit on view B for N epochs,
then a budget of normal training; RSV of the last hidden layer's units), trained twice from the
same seeds: once on the cross-entropy alone, once with the auxiliary objective of
dlnfusion.CrossReconstruction of weight λ = 1 (each view reconstructed by a linear decoder
from the other view's pre-fusion representation; mean squared error per pixel of the
standardized image, so λ = 1 weighs an error the size of the pixel variance like one nat of
cross-entropy). The two arms share the network initialization and the batch order of every
seed, so differences are paired. The reconstruction objective is on throughout, also during
the deficit (where, under dissociation, the views it pairs are unrelated images).

The paper pre-trains a multi-view transformer with masked cross-view reconstruction and then
fine-tunes it; the auxiliary loss here is the simplest objective with the same aim, trained
jointly with the task.

Full: 5 seeds, N ∈ {0, 10, 25, 50, 100}, 100-epoch budget. Quick: 2 seeds, N ∈ {0, 25},
40-epoch budget.

Linear fusion networks (the setting of kleinman2023-deficits-linear, every network with a layer
before fusion: L = 2 with L_f = 2, L = 4 with L_f = 2, 3, 4; scalar toy σ_A/σ_B = 2,
ρ ∈ {0, 0.5}; deletion, blur and dissociation of B for the first N ∈ {0, 250, 500, 1000, 2000}
steps; width 100, learning rate 0.04, the same initializations and step budgets), trained at
population level with and without the reconstruction objective of weight λ = 1
(dlnfusion.training.train_reconstruction; linear decoders, started i.i.d. normal at the scale
of the network's own entries: 1e-9 for L = 2, 0.01 for L = 4, i.e. a Frobenius norm of 0.1 as
every layer of the four-layer networks). Measured: t_B (the step at which W_B^tot reaches
half of its global-solution value), its delay against N = 0 of the same arm, and the task loss at
the end of the budget. Quick: one seed, L = 2 and L = 4 with L_f = 2, N ∈ {0, 1000}.

Every number comes from a sweep (:mod:`dlnfusion.sweep`: ``DeficitFit`` for the ReLU networks,
``Reconstruction`` per linear network), saved under
``out/kleinman2023-reconstruction/{quick,full}/<sweep>``; a re-run resumes where it stopped.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dlnfusion import CrossReconstruction, Deficit, NetworkSpec, Stats
from dlnfusion.compare import POLARIZED
from dlnfusion.data import digit_halves
from dlnfusion.plot import PALETTE, color_style_legend, paper_style, save
from dlnfusion.sweep import DeficitFit, Reconstruction, Sweep

from . import kleinman2023_deficits_linear as lin
from . import kleinman2023_deficits_relu as relu
from ._output import write_outputs
from .kleinman2023_deficits_relu import BINS, DEFICITS, N_PRE, _delta, _ms, _rsv_point, network

ID = "kleinman2023-reconstruction"
TITLE = "Sec. 4.4: cross-source reconstruction against blur and dissociation deficits"
WEIGHT = 1.0
FULL = dict(seeds=5, lengths=(0, 10, 25, 50, 100), budget=100)
QUICK = dict(seeds=2, lengths=(0, 25), budget=40)
LINEAR_NETWORKS = ((2, 2), (4, 2), (4, 3), (4, 4))
LINEAR_FULL = dict(seeds=3, lengths=lin.LENGTHS, networks=LINEAR_NETWORKS)
LINEAR_QUICK = dict(seeds=1, lengths=(0, 1000), networks=((2, 2), (4, 2)))
#: Decoder entries' standard deviation: the scale of the network's own initial entries.
DECODER_SCALE = {2: 1e-9, 4: 0.01}


def _nanmean(values) -> float:
    """Mean over the finite values (NaN: a run that never reached the level), NaN if none."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _task(rho):
    return Stats.scalar_toy(lin.SIGMA_A, lin.SIGMA_B, rho)


def _network(depth, fusion_layer):
    return NetworkSpec.fusion(depth, fusion_layer, width=lin.WIDTH)


def _windows(rho, deficit, N):
    """B degraded during the first N steps (N = 0: the undisturbed run, the same for every
    deficit: the runner trains it once)."""
    return [Deficit(lin.window_stats(_task(rho), deficit), start=0, end=N)]


def _model(weight, mnist=None):
    base = network(digit_halves(mnist), N_PRE)
    return CrossReconstruction(base, weight) if weight else base


def sweeps(quick: bool, mnist=None) -> dict:
    """Every sweep, by name: the ReLU networks' (every weight, deficit and N), and per linear
    network every ρ, deficit, N and weight."""
    c = QUICK if quick else FULL
    relu_sweep = Sweep({"weight": [0.0, WEIGHT], "deficit": DEFICITS, "N": c["lengths"]},
                       DeficitFit(_model, lambda mnist=None: digit_halves(mnist),
                                  relu.transform, lambda weight: relu.rsv_layers(_model(weight))),
                       {"budget": c["budget"], "lr": relu.LR, "momentum": relu.MOMENTUM,
                        "batch_size": relu.BATCH, "n_rsv": relu.N_RSV, "mnist": mnist},
                       range(c["seeds"]))
    cfg = LINEAR_QUICK if quick else LINEAR_FULL
    grid = {"rho": lin.RHOS, "deficit": lin.DEFICITS, "N": cfg["lengths"],
            "weight": [0.0, WEIGHT]}
    return {"relu": relu_sweep, **{f"linear_L{depth}_Lf{Lf}": Sweep(
        grid, Reconstruction(_task, _network, _windows),
        {"depth": depth, "fusion_layer": Lf, "lr": lin.LR, "scheme": lin.INIT[depth][0],
         "scale": lin.INIT[depth][1], "steps": lin.BUDGET[(depth, Lf)],
         "decoder_scale": DECODER_SCALE[depth]}, range(cfg["seeds"]))
        for depth, Lf in cfg["networks"]}}


def compute(out: Path, quick: bool = False, mnist=None) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False)
            for name, sw in sweeps(quick, mnist).items()}


def relu_points(ds, cfg) -> list:
    """One JSON point per weight, deficit and N of the ReLU networks."""
    last, fusion = ds.layer.values.tolist()
    return [{"deficit": d, "n_pre": N_PRE, "reconstruction_weight": w, "N": int(N),
             "seeds": r.seed.values.tolist(), "budget": cfg["budget"],
             "test_acc": r.test_acc.values.tolist(),
             "unimodal_acc_A": r.unimodal_acc.isel(modality=0).values.tolist(),
             "unimodal_acc_B": r.unimodal_acc.isel(modality=1).values.tolist(),
             "diverged": (r.status == "diverged").values.tolist(), "rsv_layer": last,
             **_rsv_point(r, last), "fusion_layer": {"layer": fusion, **_rsv_point(r, fusion)}}
            for w in (0.0, WEIGHT) for d in DEFICITS for N in cfg["lengths"]
            for r in [ds.sel(weight=w, deficit=d, N=N)]]


def linear_points(ds, cfg) -> list:
    """t_A, t_B and the final task loss of the linear networks, with and without
    reconstruction, every deficit, ρ and N (N = 0 once per ρ, listed under every deficit)."""
    first = lin.DEFICITS[0]
    return [{"depth": depth, "fusion_layer": Lf, "rho": rho, "deficit": dd, "N": int(n),
             "reconstruction_weight": w, "seeds": r.seed.values.tolist(),
             "shared": n == 0 and dd != first, "t_A_sim": r.t_A.values.tolist(),
             "t_B_sim": r.t_B.values.tolist(), "final_loss": r.final_loss.values.tolist(),
             "diverged": (r.status == "diverged").values.tolist()}
            for depth, Lf in cfg["networks"] for w in (0.0, WEIGHT) for rho in lin.RHOS
            for d in lin.DEFICITS for n in cfg["lengths"] if n > 0 or d == first
            for dd in (lin.DEFICITS if n == 0 else (d,))
            for r in [ds[f"linear_L{depth}_Lf{Lf}"].sel(rho=rho, deficit=dd, N=n, weight=w)]]


def linear_answers(points, lengths) -> dict:
    """Per network, deficit and ρ: the delay of t_B at the longest N without and with
    reconstruction (seed means), and the no-deficit t_B of each arm."""
    out = {}
    n1 = max(lengths)
    for p in points:
        if p["N"] != n1:
            continue
        key = f"L={p['depth']},L_f={p['fusion_layer']},{p['deficit']},rho={p['rho']}"
        arm = "with" if p["reconstruction_weight"] else "without"
        zero = next(q for q in points if q["N"] == 0 and q["depth"] == p["depth"]
                    and q["fusion_layer"] == p["fusion_layer"] and q["rho"] == p["rho"]
                    and q["deficit"] == p["deficit"]
                    and q["reconstruction_weight"] == p["reconstruction_weight"])
        row = out.setdefault(key, {"N": n1})
        row[f"t_B_{arm}"] = float(_nanmean(p["t_B_sim"]))
        row[f"t_B0_{arm}"] = float(_nanmean(zero["t_B_sim"]))
        row[f"delay_{arm}"] = row[f"t_B_{arm}"] - row[f"t_B0_{arm}"]
        row[f"final_loss_{arm}"] = float(_nanmean(p["final_loss"]))
    for row in out.values():
        if "delay_with" in row and "delay_without" in row:
            row["delay_ratio"] = row["delay_with"] / row["delay_without"] \
                if row["delay_without"] else float("nan")
    return out


def _answers(points, lengths) -> dict:
    n0, n1 = min(lengths), max(lengths)

    def at(d, w, N):
        return next(p for p in points if p["deficit"] == d and p["reconstruction_weight"] == w
                    and p["N"] == N)
    out = {}
    for d in DEFICITS:
        row = {}
        for key in ("test_acc", "unimodal_acc_B", "polarized", "mean_rsv"):
            eff = {}
            for w in (0.0, WEIGHT):
                eff[str(w)] = _delta(at(d, w, n0)[key], at(d, w, n1)[key])
            # the deficit's effect with reconstruction minus without, paired over seeds
            diff = _delta(np.asarray(at(d, 0.0, n1)[key]) - np.asarray(at(d, 0.0, n0)[key]),
                          np.asarray(at(d, WEIGHT, n1)[key]) - np.asarray(at(d, WEIGHT, n0)[key]))
            row[key] = {"effect_without": eff["0.0"][0], "effect_without_se": eff["0.0"][1],
                        "effect_with": eff[str(WEIGHT)][0],
                        "effect_with_se": eff[str(WEIGHT)][1],
                        "difference": diff[0], "difference_se": diff[1]}
        pol = row["polarized"]
        acc = row["test_acc"]
        row["removes_polarization"] = bool(abs(pol["effect_with"]) < 2 * pol["effect_with_se"]
                                           and pol["effect_without"] > 2 *
                                           pol["effect_without_se"])
        row["reduces_accuracy_loss"] = bool(acc["difference"] > 2 * acc["difference_se"])
        row["N"] = [n0, n1]
        out[d] = row
    return out


def run(out: Path, quick: bool = False, mnist=None) -> dict:
    t0 = time.perf_counter()
    cfg, lcfg = (QUICK, LINEAR_QUICK) if quick else (FULL, LINEAR_FULL)
    ds = compute(out, quick, mnist)
    points, lpoints = relu_points(ds["relu"], cfg), linear_points(ds, lcfg)
    answers = _answers(points, cfg["lengths"])
    lanswers = linear_answers(lpoints, lcfg["lengths"])
    payload = {"id": ID, "title": TITLE, "quick": quick, "task": digit_halves(mnist).info,
               "reconstruction_weight": WEIGHT, "polarized_threshold": POLARIZED,
               "budget": cfg["budget"], "points": points, "answers": answers,
               "linear": {"points": lpoints, "answers": lanswers,
                          "decoder_scale": {str(k): v for k, v in DECODER_SCALE.items()},
                          "lr": lin.LR, "width": lin.WIDTH,
                          "budget": {f"{k[0]},{k[1]}": v for k, v in lin.BUDGET.items()}},
               "seconds": time.perf_counter() - t0}
    summary = {d: {k: answers[d][k] for k in ("removes_polarization", "reduces_accuracy_loss")}
               for d in DEFICITS}
    return write_outputs(out, ID, payload, lambda stem: figure(points, lpoints, cfg, lcfg, stem),
                         summary)


def figure(points, lpoints, cfg, lcfg, stem):
    import matplotlib.pyplot as plt

    lengths = sorted({p["N"] for p in points})
    colors = {0.0: PALETTE[0], WEIGHT: PALETTE[3]}
    names = {0.0: "task loss only", WEIGHT: f"+ reconstruction (λ = {WEIGHT:g})"}
    titles = {"blur": "blur of B", "dissociate": "dissociation"}
    edges = np.linspace(-1, 1, BINS + 1)
    with paper_style():
        fig = plt.figure(figsize=(7.0, 6.6))
        outer = fig.add_gridspec(2, 1, height_ratios=(2, 1), hspace=0.4)
        top = outer[0].subgridspec(2, 3, wspace=0.45, hspace=0.6)
        axes = np.array([[fig.add_subplot(top[r, c]) for c in range(3)] for r in range(2)])
        for r, d in enumerate(DEFICITS):
            ax_acc, ax_pol, ax_hist = axes[r]
            for w in (0.0, WEIGHT):
                sel = [next(p for p in points if p["deficit"] == d and
                            p["reconstruction_weight"] == w and p["N"] == N) for N in lengths]
                for key, ls, mark in (("test_acc", "-", "o"), ("unimodal_acc_B", ":", "v")):
                    ms = np.array([_ms(p[key]) for p in sel])
                    ax_acc.errorbar(lengths, ms[:, 0], yerr=ms[:, 1], color=colors[w], ls=ls,
                                    marker=mark, ms=3, capsize=1.5, lw=0.9, elinewidth=0.6)
                for key, ls, mark in (("polarized", "-", "o"), ("mean_rsv", "--", "s")):
                    ms = np.array([_ms(p[key]) for p in sel])
                    ax_pol.errorbar(lengths, ms[:, 0], yerr=ms[:, 1], color=colors[w], ls=ls,
                                    marker=mark, ms=3, capsize=1.5, lw=0.9, elinewidth=0.6)
                last = sel[-1]
                ax_hist.stairs(last["rsv_histogram"], edges, color=colors[w], lw=1.1,
                               fill=False)
            ax_acc.set_title(f"{titles[d]}: accuracy", fontsize=7.5)
            ax_pol.set_title(f"{titles[d]}: polarization", fontsize=7.5)
            ax_hist.set_title(f"{titles[d]}: RSV after N = {lengths[-1]}", fontsize=7.5)
            ax_acc.set_ylabel("final test accuracy")
            ax_pol.set_ylabel("RSV measure")
            ax_pol.axhline(0, color="0.8", lw=0.5, zorder=0)
            ax_hist.set_ylabel("fraction of units")
            ax_hist.set_xlim(-1, 1)
            for ax in (ax_acc, ax_pol):
                ax.set_xlabel("deficit length N (epochs)")
            ax_hist.set_xlabel("RSV (+1: A only, −1: B only)")
        color_style_legend(axes[0, 2], (), colors, names, loc="upper left")
        color_style_legend(axes[0, 0], (("-", "o", "both views"), (":", "v", "B alone")),
                           loc="center right")
        color_style_legend(axes[0, 1], (("-", "o", "fraction |RSV| > 0.9"),
                                        ("--", "s", "mean RSV")), loc="center right")
        _linear_row(fig, outer[1], lpoints, lcfg, colors, names)
        return save(fig, stem)


def _linear_row(fig, cell, lpoints, lcfg, colors, names):
    """The delay of t_B against N in the linear networks, one panel per deficit: without
    (black) and with (green) reconstruction, one line style per network, ρ = 0.5 filled and
    ρ = 0 open markers."""
    from matplotlib.lines import Line2D

    row = cell.subgridspec(1, 3, wspace=0.4)
    styles = dict(zip(lcfg["networks"], ("-", "--", "-.", ":")))
    lengths = sorted(lcfg["lengths"])
    for c, d in enumerate(lin.DEFICITS):
        ax = fig.add_subplot(row[c])
        for (L, Lf) in lcfg["networks"]:
            for rho in lin.RHOS:
                for w in (0.0, WEIGHT):
                    sel = [next(p for p in lpoints if p["depth"] == L and p["fusion_layer"] == Lf
                                and p["rho"] == rho and p["deficit"] == d and p["N"] == N
                                and p["reconstruction_weight"] == w) for N in lengths]
                    tb = np.array([_nanmean(p["t_B_sim"]) for p in sel])
                    ax.plot(lengths, tb - tb[0], color=colors[w], ls=styles[(L, Lf)], lw=0.9,
                            marker="o", ms=3, mfc=colors[w] if rho else "white")
        ax.plot(lengths, lengths, color="0.75", lw=0.6, zorder=0)
        ax.set_title(f"linear networks: {d} of B", fontsize=7.5)
        ax.set_xlabel("deficit length N (steps)")
        ax.set_ylabel("delay of t_B (steps)")
    handles = [Line2D([], [], color="0.3", ls=styles[k], lw=0.9, label=f"L = {k[0]}, L_f = {k[1]}")
               for k in lcfg["networks"]]
    handles += [Line2D([], [], color=colors[w], lw=1.2, label=names[w]) for w in colors]
    handles += [Line2D([], [], color="0.3", marker="o", ls="", ms=3, mfc=m, label=lab)
                for m, lab in (("0.3", "ρ = 0.5"), ("white", "ρ = 0"))]
    ax.legend(handles=handles, fontsize=5, loc="upper left", handlelength=2.2)
