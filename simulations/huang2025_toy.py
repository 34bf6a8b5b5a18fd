"""Modality-balancing methods on the unimodal-bias toy: t_B/t_A against ρ for joint training,
OGM-GE and InfoReg (Huang et al., CVPR 2025; Peng et al., CVPR 2022) in a two-layer
late-fusion linear network.

Task and training. y = x_A + x_B, σ_A = 2, σ_B = 1 (Stats.scalar_toy), ρ ∈ RHOS (quick:
QUICK_RHOS); two-layer late fusion, width 100, entries N(0, 1e-18) (the unimodal-bias paper's
Figure 3c), population-level gradient descent at η = 0.04 for STEPS steps; 5 seeds (quick: 2),
the same initial weights for every method.

Methods (dlnfusion.transforms chained before optax.sgd, as dlnfusion.sweep.Balancing builds
them): "joint", "unimodal" (the unimodal losses added, λ = UNIMODAL), "ogm_ge" (α = 0.8, noise
of the gradient's own standard deviation), "ogm" (without the noise), "inforeg" (β = 0.9,
K = 0.04, the paper's window, an epoch = EPOCH steps).

Theory: the exact reduced dynamics of each run from its initial weights
(reduced.balancing_two_layer); for OGM-GE the exact law of its noisy training
(reduced.ogm_ge_two_layer, PATHS noise realizations per seed), which also predicts the fraction
of runs that diverge, with its mean field beside (flagged where the leader's coefficient
collapses: every ρ < 0 here). Leading order: InfoReg slows A's escape by κ =
theory.inforeg_slowdown(s_A, η, α = 1, EPOCH), i.e. t_A / κ.

Measured: t_A, t_B (compare.measure_unimodal_phase), their ratio, the final total weights
where a run stops (loss < 1e-4) and whether it converged. Width sweep (last panel, JSON
``width_sweep``): OGM-GE at ρ ∈ WIDTH_RHOS, its law at every width of WIDTHS_LAW (PATHS/4
paths), its mean field, and the networks at WIDTHS_SIM.

Every number comes from sweeps (:mod:`dlnfusion.sweep`: Balance trains, ReducedBalance and
OGMLaw predict, Predict gives κ), saved under ``out/huang2025-toy/{quick,full}/<sweep>``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats
from dlnfusion import theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.sweep import CAVEAT_SEPARATOR, Balance, Balancing, OGMLaw, Predict, ReducedBalance
from dlnfusion.sweep import Sweep

from ._output import write_outputs

ID = "huang2025-toy"
TITLE = "Balancing methods on the toy: t_B/t_A against rho (joint, OGM-GE, InfoReg)"
SIGMA_A, SIGMA_B = 2.0, 1.0
RHOS, QUICK_RHOS = (-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75), (-0.5, 0.0, 0.5)
LR, WIDTH, SCALE = 0.04, 100, 1e-9
STEPS, STRIDE = 8000, 10
STOP_LOSS = 1e-4        # dlnfusion.train's default: a run stops once its loss is below
EPOCH = 10
BETA, K_WINDOW, OGM_ALPHA = 0.9, 0.04, 0.8
SEEDS, QUICK_SEEDS = 5, 2
PATHS, QUICK_PATHS = 256, 64   # noise realizations per seed of OGM-GE's law
# OGM-GE against the width where its noise decides the escape: the law at every width (its
# cost does not depend on it), the network at the smaller ones
WIDTH_RHOS = (-0.1, -0.25)
WIDTHS_LAW, QUICK_WIDTHS_LAW = (25, 100, 400, 1600, 6400, 25600, 102400), (25, 400, 6400)
WIDTHS_SIM, QUICK_WIDTHS_SIM = (25, 100, 400, 1600), (25, 400)
UNIMODAL = 1.0          # λ of the added unimodal losses
METHODS = ("joint", "unimodal", "ogm_ge", "ogm", "inforeg")
BALANCING = {"joint": Balancing("joint"), "unimodal": Balancing("joint", unimodal=UNIMODAL),
             "ogm_ge": Balancing("ogm_ge", alpha=OGM_ALPHA),
             "ogm": Balancing("ogm", alpha=OGM_ALPHA),
             "inforeg": Balancing("inforeg", epoch=EPOCH, beta=BETA, K=K_WINDOW)}
LABELS = {"joint": "joint training", "unimodal": "+ unimodal losses", "ogm_ge": "OGM-GE",
          "ogm": "OGM (no noise)", "inforeg": "InfoReg"}
COLORS = {"joint": PALETTE[0], "unimodal": PALETTE[3], "ogm_ge": PALETTE[4],
          "ogm": PALETTE[1], "inforeg": PALETTE[5]}


def _stats(rho):
    return Stats.scalar_toy(SIGMA_A, SIGMA_B, rho)


def _network(width=WIDTH):
    return NetworkSpec.fusion(2, 2, width=width)


def _kappa(rho):
    """InfoReg's leading-order slowdown of A's escape (α = 1 while the scores are tiny)."""
    return th.inforeg_slowdown(float(_stats(rho).sigma_yx[0, 0]), LR, 1.0, EPOCH)


def _law_seed(rho):
    return int(1000 * rho) % 997


def _width_seed(width):
    return width % 997


def sweeps(quick: bool) -> dict:
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    rhos = QUICK_RHOS if quick else RHOS
    widths = {"rho": WIDTH_RHOS, "width": QUICK_WIDTHS_LAW if quick else WIDTHS_LAW}
    fixed = {"lr": LR, "scale": SCALE, "steps": STEPS, "stop_loss": STOP_LOSS}
    ge = {**fixed, "balancing": "ogm_ge"}
    grid = {"rho": rhos, "balancing": METHODS}
    return {
        "train": Sweep(grid, Balance(_stats, _network, record=False, methods=BALANCING),
                       {**fixed, "record_every": STRIDE}, seeds),
        "theory": Sweep(grid, ReducedBalance(_stats, _network, record=True, methods=BALANCING),
                        fixed, seeds),
        "law": Sweep({"rho": rhos}, OGMLaw(_stats, _network, noise_seed=_law_seed, record=True,
                                           methods=BALANCING),
                     {**ge, "record_every": 1, "paths": QUICK_PATHS if quick else PATHS}, seeds),
        "kappa": Sweep({"rho": rhos}, Predict(_kappa)),
        "width_law": Sweep(widths, OGMLaw(_stats, _network, noise_seed=_width_seed,
                                          methods=BALANCING),
                           {**ge, "record_every": 10,
                            "paths": QUICK_PATHS if quick else PATHS // 4}, seeds),
        "width_mean_field": Sweep(widths, ReducedBalance(_stats, _network, methods=BALANCING),
                                  ge, seeds),
        "width_sim": Sweep({"rho": WIDTH_RHOS,
                            "width": QUICK_WIDTHS_SIM if quick else WIDTHS_SIM},
                           Balance(_stats, _network, record=False, methods=BALANCING),
                           {**ge, "record_every": STRIDE}, seeds)}


def compute(out: Path, quick: bool = False) -> dict:
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def _list(a):
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float).ravel()]


def _caveats(da, ordered=True) -> list:
    """The distinct caveats of a point's runs: in order of appearance, or sorted."""
    got = [c for text in np.ravel(da.values) for c in str(text).split(CAVEAT_SEPARATOR) if c]
    return list(dict.fromkeys(got)) if ordered else sorted(set(got))


def _sem(law):
    return float(np.sqrt(np.sum(np.square(law.time_ratio_sem.values))) / law.sizes["seed"])


def _point(ds, rho, method, points, paths):
    sim = ds["train"].sel(rho=rho, balancing=method)
    red = ds["theory"].sel(rho=rho, balancing=method)
    theory = ds["law"].sel(rho=rho) if method == "ogm_ge" else red
    ratio = theory.time_ratio.values
    finite = bool(np.all(np.isfinite(ratio)))
    caveats = _caveats(theory.caveats, ordered=method != "ogm_ge")
    if not finite:
        caveats.append(f"no transition within {STEPS} steps in the reduced dynamics")
    status = [str(v) for v in sim.status.values]
    point = {"method": method, "rho": rho, "time_ratio_sim": _list(sim.time_ratio),
             "time_ratio_theory": float(np.mean(ratio)) if finite else None,
             "time_ratio_theory_per_seed": _list(ratio), "t_A_sim": _list(sim.t_A),
             "t_B_sim": _list(sim.t_B), "t_A_theory": _list(theory.t_A),
             "t_B_theory": _list(theory.t_B),
             "final_w_sim": np.stack([sim.final_map_A.values[:, 0, 0],
                                      sim.final_map_B.values[:, 0, 0]], 1).tolist(),
             "final_w_theory": theory.final_w.values.tolist(), "status": status,
             "valid": bool(np.all(theory.valid.values)) and finite, "caveats": caveats}
    if method == "ogm_ge":
        point.update({"time_ratio_theory_sem": _sem(theory),
                      "time_ratio_mean_field": _list(red.time_ratio),
                      "mean_field_valid": bool(np.all(red.valid.values)),
                      "mean_field_caveats": _caveats(red.caveats, ordered=False),
                      "diverged_theory": float(np.mean(theory.diverged.values)),
                      "diverged_sim": status.count("diverged"), "paths": paths})
    if method == "inforeg":
        kappa = ds["kappa"].sel(rho=rho).isel(seed=0)
        joint = next(p for p in points if p["rho"] == rho and p["method"] == "joint")
        point["leading_order"] = {
            "kappa": float(kappa.value),
            "t_A_theory": float(np.mean(joint["t_A_theory"]) / float(kappa.value)),
            "valid": bool(kappa.valid), "caveats": _caveats(kappa.caveats)}
    return point


def _width_rows(ds):
    rows = []
    for rho in WIDTH_RHOS:
        for width in ds["width_law"].width.values:
            law = ds["width_law"].sel(rho=rho, width=width)
            sims = ds["width_sim"]
            row = {"rho": rho, "width": int(width),
                   "time_ratio_theory": _list([np.mean(law.time_ratio.values)])[0],
                   "time_ratio_theory_sem": _list([_sem(law)])[0],
                   "diverged_theory": float(np.mean(law.diverged.values)),
                   "time_ratio_mean_field": _list(ds["width_mean_field"].sel(
                       rho=rho, width=width).time_ratio),
                   "time_ratio_sim": None, "diverged_sim": None}
            if width in sims.width.values:
                sim = sims.sel(rho=rho, width=width)
                row["time_ratio_sim"] = _list(sim.time_ratio)
                row["diverged_sim"] = int(np.sum(sim.status.values == "diverged"))
            rows.append(row)
    return rows


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    points = []
    for rho in ds["train"].rho.values.tolist():
        for method in METHODS:
            points.append(_point(ds, rho, method, points, QUICK_PATHS if quick else PATHS))
    at = {"rho": 0.5, "seed": 0}
    curves = {m: {"t": ds["law"].time.values, "w": ds["law"].sel(at).w.values}
              if m == "ogm_ge" else {"t": ds["theory"].step.values,
                                     "w": ds["theory"].sel(balancing=m, **at).w.values}
              for m in METHODS}
    sweep = _width_rows(ds)
    summary = _summary(points)
    summary["width_sweep"] = _width_summary(sweep)
    payload = {"figure": ID, "paper": "Huang et al., CVPR 2025 (InfoReg); Peng et al., CVPR "
                                      "2022 (OGM-GE); the toy of Zhang et al., ICML 2024",
               "quick": quick,
               "parameters": {"sigma_a": SIGMA_A, "sigma_b": SIGMA_B,
                              "rhos": list(QUICK_RHOS if quick else RHOS),
                              "lr": LR, "width": WIDTH, "init_std": SCALE, "steps": STEPS,
                              "epoch_steps": EPOCH, "beta": BETA, "K": K_WINDOW,
                              "ogm_alpha": OGM_ALPHA, "unimodal_weight": UNIMODAL,
                              "seeds": [int(s) for s in ds["train"].seed.values]},
               "points": points, "width_sweep": sweep, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(points, curves, sweep, stem),
                           summary)
    _print(points, summary)
    return result


def _mean(values):
    """The mean of the values that are not None (NaN if none)."""
    v = [x for x in (values or []) if x is not None]
    return float(np.mean(v)) if v else np.nan


def _width_summary(rows):
    """Per ρ of the width sweep: the law against the seed mean at every simulated width, and
    the law's ratio to its mean field at the smallest and the largest width."""
    out = {}
    for rho in sorted({r["rho"] for r in rows}):
        sel = [r for r in rows if r["rho"] == rho]
        law = [_mean([r["time_ratio_theory"]]) for r in sel]
        errs = [abs(th_ / _mean(r["time_ratio_sim"]) - 1) for r, th_ in zip(sel, law)
                if np.isfinite(_mean(r["time_ratio_sim"])) and np.isfinite(th_)]
        mf = [_mean(r["time_ratio_mean_field"]) for r in sel]
        out[str(rho)] = {"max_rel_error_vs_sim": float(np.max(errs)) if errs else None,
                         "law_over_mean_field": _list([law[0] / mf[0], law[-1] / mf[-1]]),
                         "widths": [sel[0]["width"], sel[-1]["width"]]}
    return out


def _summary(points):
    errs, split = {}, {}
    for p in points:
        if p["valid"] and np.isfinite(_mean(p["time_ratio_sim"])) and \
                p["time_ratio_theory"] is not None:
            errs.setdefault(p["method"], []).append(
                abs(p["time_ratio_theory"] / _mean(p["time_ratio_sim"]) - 1))
        # the final split: theory (mean over seeds) against the seed mean of the runs that did
        # not diverge, largest absolute error over both branches and every ρ
        ok = [w for w, s in zip(p["final_w_sim"], p["status"]) if s != "diverged"]
        if ok:
            err = float(np.max(np.abs(np.mean(p["final_w_theory"], 0) - np.mean(ok, 0))))
            split[p["method"]] = max(split.get(p["method"], 0.0), err)
    out = {m: {"median_rel_error": float(np.median(e)), "max_rel_error": float(np.max(e)),
               "n": len(e)} for m, e in errs.items()}
    out["flagged"] = [[p["method"], p["rho"]] for p in points if not p["valid"]]
    out["final_w_max_abs_error"] = split
    # flagged because the theory has no transition, and no simulated run has one either
    out["no_transition_agreed"] = [
        [p["method"], p["rho"]] for p in points
        if p["time_ratio_theory"] is None and all(v is None for v in p["time_ratio_sim"])]
    out["never_converged"] = [[p["method"], p["rho"]] for p in points
                              if "converged" not in p["status"]]
    return out


def _print(points, summary):
    for method in METHODS:
        print(f"  {LABELS[method]:17s} t_B/t_A sim (theory): " + "; ".join(
            f"ρ={p['rho']:+.2f}: {_mean(p['time_ratio_sim']):.3f} "
            f"({_mean([p['time_ratio_theory']]):.3f})" for p in points if p["method"] == method))
    for m, v in summary.items():
        if isinstance(v, dict) and "n" in v:
            print(f"  {LABELS[m]}: theory vs seed mean, median {100 * v['median_rel_error']:.2g} "
                  f"%, max {100 * v['max_rel_error']:.2g} % over {v['n']} values of ρ")
    print(f"  never converged (method, ρ): {summary['never_converged']}; no transition in theory"
          f" and in every run: {summary['no_transition_agreed']}")
    print("  final split (w_A, w_B where the run stops), theory vs seed mean, max abs error: "
          + ", ".join(f"{LABELS[m]} {e:.1e}" for m, e in summary["final_w_max_abs_error"].items()))
    for rho, v in summary["width_sweep"].items():
        print(f"  OGM-GE at ρ = {rho} against the width: law vs networks max rel "
              f"{v['max_rel_error_vs_sim']}; law / mean field {v['law_over_mean_field']} at "
              f"widths {v['widths']}")


def _figure(points, curves, sweep, stem):
    with paper_style():
        fig, axes = new_figure(ncols=4, width=9.0, height=2.4)
        ax = axes[0, 0]
        for method in METHODS:
            sel = [p for p in points if p["method"] == method]
            rho = [p["rho"] for p in sel]
            sims = [[v for v in p["time_ratio_sim"] if v is not None] for p in sel]
            # a flagged theory point is not drawn (OGM-GE where its noise decides the escape)
            ax.plot(rho, [_mean([p["time_ratio_theory"]]) if p["valid"] else np.nan
                          for p in sel], color=COLORS[method], lw=1.2, label=LABELS[method])
            ax.errorbar(rho, [_mean(v) for v in sims], yerr=[np.std(v) if v else np.nan
                                                             for v in sims],
                        fmt="o", ms=3, mfc="none", color=COLORS[method], capsize=1.5,
                        elinewidth=0.6)
            if method == "ogm_ge":    # its noise in mean field (wrong for ρ < 0)
                ax.plot(rho, [_mean(p["time_ratio_mean_field"]) for p in sel],
                        color=COLORS[method], lw=0.8, ls=":", label="OGM-GE, mean field")
            for key, ls in (("t_A_sim", "--"), ("t_B_sim", "-")):
                axes[0, 1].plot(rho, [_mean(p[key]) for p in sel], ls=ls, marker="o", ms=2.5,
                                mfc="none", lw=0.9, color=COLORS[method])
            for m, ls in ((0, "--"), (1, "-")):
                axes[0, 2].plot(curves[method]["t"], curves[method]["w"][:, m], ls=ls,
                                color=COLORS[method], lw=1.0)
        ax.set(xlabel=r"correlation $\rho$", ylabel=r"time ratio $t_B/t_A$", yscale="log")
        ax.set_yticks([1, 2, 4, 8], ["1", "2", "4", "8"])
        ax.minorticks_off()
        ax.set_title("lines: theory where valid, markers: simulation", fontsize=7)
        ax = axes[0, 1]
        ax.plot([], [], "k--", lw=0.9, label="$t_A$")
        ax.plot([], [], "k-", lw=0.9, label="$t_B$")
        ax.set(yscale="log", xlabel=r"correlation $\rho$", ylabel="step (simulation)")
        ax.legend(frameon=False, fontsize=6)
        ax = axes[0, 2]
        ax.set(xlim=(0, 1400), xlabel="step", ylabel=r"total weight ($\rho$ = 0.5, theory)")
        ax.set_title(r"dashed: $W_A^{tot}$, solid: $W_B^{tot}$", fontsize=7)
        # the methods' legend for all panels, in this panel's empty lower right
        ax.legend(*axes[0, 0].get_legend_handles_labels(), frameon=False, fontsize=5.5,
                  loc="lower right")
        ax = axes[0, 3]
        for rho, color in zip(WIDTH_RHOS, (PALETTE[4], PALETTE[2])):
            sel = [r for r in sweep if r["rho"] == rho]
            w = [r["width"] for r in sel]
            ax.plot(w, [_mean([r["time_ratio_theory"]]) for r in sel], color=color, lw=1.2,
                    label=rf"$\rho$ = {rho}: law")
            ax.plot(w, [_mean(r["time_ratio_mean_field"]) for r in sel], color=color, lw=0.8,
                    ls=":", label="mean field")
            sims = [(r["width"], [v for v in r["time_ratio_sim"] if v is not None])
                    for r in sel if r["time_ratio_sim"]]
            ax.errorbar([x for x, _ in sims], [np.mean(v) for _, v in sims],
                        yerr=[np.std(v) for _, v in sims], fmt="o", ms=3, mfc="none",
                        color=color, capsize=1.5, elinewidth=0.6)
        ax.set(xscale="log", xlabel="width $h$", ylabel=r"OGM-GE $t_B/t_A$")
        ax.set_title("OGM-GE: noise against width", fontsize=7)
        ax.legend(frameon=False, fontsize=5.5, loc="center left", ncol=2)
        return [str(p) for p in save(fig, stem)]
