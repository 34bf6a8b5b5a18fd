"""Modality-balancing methods on the unimodal-bias toy: t_B/t_A against ρ for joint training,
OGM-GE and InfoReg (Huang et al., CVPR 2025; Peng et al., CVPR 2022) in a two-layer
late-fusion linear network.

Task and training. y = x_A + x_B, σ_A = 2, σ_B = 1 (Stats.scalar_toy), ρ ∈ RHOS; two-layer late
fusion, width 100, entries N(0, 1e-18) (the unimodal-bias paper's Figure 3c), population-level
gradient descent at η = 0.04 for STEPS steps; 5 seeds (quick: 2), the same initial weights for
every method.

Methods (dlnfusion.transforms, chained before optax.sgd): "joint" (plain gradient descent),
"unimodal" (joint training with the unimodal losses added, λ = UNIMODAL), "ogm_ge" (α = 0.8, the authors' 1 − tanh(α·ratio), noise of the gradient's own standard
deviation), "ogm" (the same without the noise), "inforeg" (β = 0.9, K = 0.04, the paper's
window, an epoch = EPOCH steps). Scores: the loss reduction of each branch alone (see
dlnfusion.transforms).

Theory (dlnfusion.reduced.balancing_two_layer): the exact reduced dynamics of each run (the
Gram matrix of each branch's two weight vectors and, for InfoReg, their values at the epoch
start), from its initial weights. OGM-GE: the exact law of its noisy training
(dlnfusion.reduced.ogm_ge_two_layer: the Gram entries of each branch's weights and the all-ones
direction as a Markov chain, drawn exactly, PATHS noise realizations per seed, independent of
the network's own noise), which also predicts the fraction of runs the noise makes diverge; its
mean-field approximation (balancing_two_layer, "ogm_ge") beside, flagged where the leader's
coefficient collapses (every ρ < 0 here).
Leading order beside: InfoReg slows A's escape by κ = theory.inforeg_slowdown(s_A, η, α = 1,
EPOCH) (α = e^{β tanh Δ} with Δ ≈ 0 while the scores are tiny), i.e. t_A / κ.

Measured: t_A, t_B as compare.measure_unimodal_phase defines them, their ratio, the final total
weights (the split between the branches, where a run stops: loss < 1e-4) and whether a run
converged within the budget.

Width sweep (last panel, JSON ``width_sweep``): OGM-GE at ρ ∈ WIDTH_RHOS, its law at every
width of WIDTHS_LAW (PATHS/4 paths per seed), its mean field, and the networks at WIDTHS_SIM:
where the mean field becomes right as the width grows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import optax

from dlnfusion import NetworkSpec, Stats, init_batch, train
from dlnfusion import reduced as rd
from dlnfusion import theory as th
from dlnfusion.compare import measure_unimodal_phase
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.transforms import inforeg, ogm_ge, unimodal_losses

from ._output import write_outputs

ID = "huang2025-toy"
TITLE = "Balancing methods on the toy: t_B/t_A against rho (joint, OGM-GE, InfoReg)"
SIGMA_A, SIGMA_B = 2.0, 1.0
RHOS = (-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75)
LR, WIDTH, SCALE = 0.04, 100, 1e-9
STEPS, STRIDE = 8000, 10
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
LABELS = {"joint": "joint training", "unimodal": "+ unimodal losses", "ogm_ge": "OGM-GE",
          "ogm": "OGM (no noise)", "inforeg": "InfoReg"}
COLORS = {"joint": PALETTE[0], "unimodal": PALETTE[3], "ogm_ge": PALETTE[4],
          "ogm": PALETTE[1], "inforeg": PALETTE[5]}
THEORY_METHOD = {"joint": "joint", "unimodal": "joint", "ogm_ge": "ogm_ge", "ogm": "ogm",
                 "inforeg": "inforeg"}


def _optimizer(method, spec):
    if method == "joint":
        return None
    if method == "inforeg":
        tx = inforeg(spec, epoch=EPOCH, beta=BETA, K=K_WINDOW)
    elif method == "unimodal":
        tx = unimodal_losses(spec, UNIMODAL)
    else:
        tx = ogm_ge(spec, alpha=OGM_ALPHA, noise=(method == "ogm_ge"))
    return lambda lr: optax.chain(tx, optax.sgd(lr))


def _theory_kwargs(method):
    if THEORY_METHOD[method] == "inforeg":
        return dict(balancing="inforeg", epoch=EPOCH, beta=BETA, K=K_WINDOW)
    if THEORY_METHOD[method] in ("ogm", "ogm_ge"):
        return dict(balancing=THEORY_METHOD[method], alpha=OGM_ALPHA)
    return dict(balancing="joint", unimodal=UNIMODAL if method == "unimodal" else 0.0)


STOP_LOSS = 1e-4        # dlnfusion.train's default: a run stops once its loss is below


def _stopped(w, stats):
    """The total weights (T, M) of a reduced run at its first step with loss < STOP_LOSS
    (the last step if none)."""
    S = np.asarray(stats.sigma)
    w_star = stats.global_solution()[0]
    floor = float(np.asarray(stats.sigma_yy).reshape(())) - w_star @ S @ w_star
    dev = w - w_star
    loss = 0.5 * (floor + np.einsum("tm,mn,tn->t", dev, S, dev))
    below = np.nonzero(loss < STOP_LOSS)[0]
    return w[below[0]] if below.size else w[-1]


def _list(a):
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float).ravel()]


def run(out: Path, quick: bool = False) -> dict:
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    spec = NetworkSpec.fusion(2, 2, width=WIDTH)
    params = init_batch(spec, seeds, scale=SCALE)
    gram = th.initial_gram(spec, params)
    noisy0 = th.noise_gram(spec, params)
    points, curves = [], {}
    for rho in RHOS:
        stats = Stats.scalar_toy(SIGMA_A, SIGMA_B, rho)
        for method in METHODS:
            traj = train(spec, stats, params, lr=LR, steps=STEPS, record_every=STRIDE,
                         optimizer=_optimizer(method, spec))
            m = measure_unimodal_phase(traj)
            theory = rd.balancing_two_layer(stats, LR, gram, STEPS, **_theory_kwargs(method))
            extra = {}
            if method == "ogm_ge":
                mean_field = theory
                theory = rd.ogm_ge_two_layer(stats, LR, noisy0, WIDTH, STEPS, alpha=OGM_ALPHA,
                                             paths=QUICK_PATHS if quick else PATHS,
                                             seed=int(1000 * rho) % 997, record_every=1)
                ratio_th = np.asarray(theory.ratio_mean)
                extra = {
                    "time_ratio_theory_sem": float(np.sqrt(np.sum(
                        np.square(theory.ratio_sem))) / len(theory)),
                    "time_ratio_mean_field": _list(mean_field.ratio),
                    "mean_field_valid": bool(np.all(mean_field.valid)),
                    "mean_field_caveats": sorted({c for cs in mean_field.caveats for c in cs}),
                    "diverged_theory": float(np.mean(theory.diverged_fraction)),
                    "diverged_sim": int(np.sum(np.asarray(traj.status_names()) == "diverged")),
                    "paths": QUICK_PATHS if quick else PATHS}
            else:
                ratio_th = np.asarray(theory.ratio)
            caveats = sorted({c for cs in theory.caveats for c in cs})
            if method == "unimodal":
                # the fixed point of the fused loss plus λ × the unimodal ones:
                # (Σ + λ diag Σ) w = (1 + λ) s
                S, sv = np.asarray(stats.sigma), np.asarray(stats.sigma_yx)[0]
                w_fix = np.linalg.solve(S + UNIMODAL * np.diag(np.diag(S)), (1 + UNIMODAL) * sv)
                if not np.allclose(w_fix, stats.global_solution()[0], rtol=1e-9):
                    caveats.append(f"the unimodal losses move the fixed point to w = "
                                   f"({w_fix[0]:.3g}, {w_fix[1]:.3g}), off the fused optimum: "
                                   "the fused loss stays above its floor")
                if w_fix[1] < 0.5 * stats.global_solution()[0, 1]:
                    caveats.append("B settles below half of its fused-optimum weight: no t_B")
            if not np.all(np.isfinite(ratio_th)):
                caveats.append(f"no transition within {STEPS} steps in the reduced dynamics")
            point = {
                "method": method, "rho": rho,
                "time_ratio_sim": _list(m.time_ratio),
                "time_ratio_theory": float(np.mean(ratio_th)) if np.all(
                    np.isfinite(ratio_th)) else None,
                "time_ratio_theory_per_seed": _list(ratio_th),
                "t_A_sim": _list(m.t_A), "t_B_sim": _list(m.t_B),
                # OGM-GE: the means over the paths of the law
                "t_A_theory": _list([np.nanmean(r.t_A) if method == "ogm_ge" else r.t_A
                                     for r in theory]),
                "t_B_theory": _list([np.nanmean(r.t_B) if method == "ogm_ge" else r.t_B
                                     for r in theory]),
                "final_w_sim": [[float(np.asarray(fm)[s].reshape(())) for fm in
                                 traj.final_maps] for s in range(len(seeds))],
                # where the run stops, as dlnfusion.train stops it (loss < STOP_LOSS; the law
                # stops every path so): the split between the branches
                "final_w_theory": [(r.w_mean[-1] if method == "ogm_ge" else
                                    _stopped(r.w, stats)).tolist() for r in theory],
                "status": [str(v) for v in traj.status_names()],
                "valid": bool(np.all(theory.valid)) and bool(np.all(np.isfinite(ratio_th))),
                "caveats": caveats,
                **extra,
            }
            if method == "inforeg":
                s_a = float(stats.sigma_yx[0, 0])
                kappa = th.inforeg_slowdown(s_a, LR, 1.0, EPOCH)
                joint = next(p for p in points if p["rho"] == rho and p["method"] == "joint")
                point["leading_order"] = {
                    "kappa": kappa.value,
                    "t_A_theory": float(np.mean(joint["t_A_theory"]) / kappa.value),
                    "valid": kappa.valid, "caveats": list(kappa.caveats)}
            points.append(point)
            if rho == 0.5:
                curves[method] = dict(t=theory.time,
                                      w=theory.w_mean[0] if method == "ogm_ge" else theory.w[0],
                                      t_sim=traj.time, w_sim=np.stack(
                                          [np.asarray(mp)[0].reshape(-1) for mp in
                                           traj.maps], 1))
    sweep = _width_sweep(quick)
    summary = _summary(points)
    summary["width_sweep"] = _width_summary(sweep)
    payload = {"figure": ID, "paper": "Huang et al., CVPR 2025 (InfoReg); Peng et al., CVPR "
                                      "2022 (OGM-GE); the toy of Zhang et al., ICML 2024",
               "quick": quick,
               "parameters": {"sigma_a": SIGMA_A, "sigma_b": SIGMA_B, "rhos": list(RHOS),
                              "lr": LR, "width": WIDTH, "init_std": SCALE, "steps": STEPS,
                              "epoch_steps": EPOCH, "beta": BETA, "K": K_WINDOW,
                              "ogm_alpha": OGM_ALPHA, "unimodal_weight": UNIMODAL,
                              "seeds": seeds},
               "points": points, "width_sweep": sweep, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(points, curves, sweep, stem),
                           summary)
    _print(points, summary)
    return result


def _width_sweep(quick):
    """OGM-GE's t_B/t_A against the width at WIDTH_RHOS: its law, its mean field and the
    networks (same initial weights as the law starts from, each run its own noise)."""
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    paths = QUICK_PATHS if quick else PATHS // 4
    sims = QUICK_WIDTHS_SIM if quick else WIDTHS_SIM
    rows = []
    for rho in WIDTH_RHOS:
        stats = Stats.scalar_toy(SIGMA_A, SIGMA_B, rho)
        for width in (QUICK_WIDTHS_LAW if quick else WIDTHS_LAW):
            spec = NetworkSpec.fusion(2, 2, width=width)
            params = init_batch(spec, seeds, scale=SCALE)
            law = rd.ogm_ge_two_layer(stats, LR, th.noise_gram(spec, params), width, STEPS,
                                      alpha=OGM_ALPHA, paths=paths, seed=width % 997)
            mf = rd.balancing_two_layer(stats, LR, th.initial_gram(spec, params), STEPS,
                                        balancing="ogm_ge", alpha=OGM_ALPHA)
            row = {"rho": rho, "width": width,
                   "time_ratio_theory": _list([np.mean(law.ratio_mean)])[0],
                   "time_ratio_theory_sem": _list([np.sqrt(np.sum(np.square(
                       law.ratio_sem))) / len(law)])[0],
                   "diverged_theory": float(np.mean(law.diverged_fraction)),
                   "time_ratio_mean_field": _list(mf.ratio),
                   "time_ratio_sim": None, "diverged_sim": None}
            if width in sims:
                traj = train(spec, stats, params, lr=LR, steps=STEPS, record_every=STRIDE,
                             optimizer=_optimizer("ogm_ge", spec))
                row["time_ratio_sim"] = _list(measure_unimodal_phase(traj).time_ratio)
                row["diverged_sim"] = int(np.sum(np.asarray(traj.status_names())
                                                 == "diverged"))
            rows.append(row)
    return rows


def _width_summary(rows):
    """Per ρ of the width sweep: the law against the seed mean at every simulated width, and
    the law's ratio to its mean field at the smallest and the largest width."""
    out = {}
    for rho in sorted({r["rho"] for r in rows}):
        sel = [r for r in rows if r["rho"] == rho]
        errs = []
        law = [np.nan if r["time_ratio_theory"] is None else r["time_ratio_theory"]
               for r in sel]
        for r, th_ in zip(sel, law):
            sim = [v for v in (r["time_ratio_sim"] or []) if v is not None]
            if sim and np.isfinite(th_):
                errs.append(abs(th_ / np.mean(sim) - 1))
        mf = [np.mean([v for v in r["time_ratio_mean_field"] if v is not None])
              if any(v is not None for v in r["time_ratio_mean_field"]) else np.nan
              for r in sel]
        out[str(rho)] = {
            "max_rel_error_vs_sim": float(np.max(errs)) if errs else None,
            "law_over_mean_field": _list([law[0] / mf[0], law[-1] / mf[-1]]),
            "widths": [sel[0]["width"], sel[-1]["width"]]}
    return out


def _summary(points):
    errs = {}
    for p in points:
        if not p["valid"]:
            continue
        sim = np.array([v for v in p["time_ratio_sim"] if v is not None])
        if sim.size and p["time_ratio_theory"] is not None:
            errs.setdefault(p["method"], []).append(abs(p["time_ratio_theory"] / sim.mean() - 1))
    out = {m: {"median_rel_error": float(np.median(e)), "max_rel_error": float(np.max(e)),
               "n": len(e)} for m, e in errs.items()}
    out["flagged"] = [[p["method"], p["rho"]] for p in points if not p["valid"]]
    # the final split: theory (mean over seeds) against the seed mean of the runs that did not
    # diverge, largest absolute error over both branches and every ρ
    split = {}
    for p in points:
        ok = [w for w, s in zip(p["final_w_sim"], p["status"]) if s != "diverged"]
        if ok:
            err = np.max(np.abs(np.mean(p["final_w_theory"], 0) - np.mean(ok, 0)))
            split[p["method"]] = max(split.get(p["method"], 0.0), float(err))
    out["final_w_max_abs_error"] = split
    # flagged because the theory has no transition, and no simulated run has one either
    out["no_transition_agreed"] = [
        [p["method"], p["rho"]] for p in points
        if p["time_ratio_theory"] is None and all(v is None for v in p["time_ratio_sim"])]
    stalled = [(p["method"], p["rho"]) for p in points
               if not any(s == "converged" for s in p["status"])]
    out["never_converged"] = [list(x) for x in stalled]
    return out


def _print(points, summary):
    for method in METHODS:
        row = []
        for p in points:
            if p["method"] != method:
                continue
            sim = [v for v in p["time_ratio_sim"] if v is not None]
            th_ = p["time_ratio_theory"]
            row.append(f"ρ={p['rho']:+.2f}: " + (f"{np.mean(sim):.3f}" if sim else "—")
                       + (f" ({th_:.3f})" if th_ is not None else " (—)"))
        print(f"  {LABELS[method]:17s} t_B/t_A sim (theory): " + "; ".join(row))
    for m, v in summary.items():
        if isinstance(v, dict) and "n" in v:
            print(f"  {LABELS[m]}: theory vs seed mean, median {100 * v['median_rel_error']:.2g} "
                  f"%, max {100 * v['max_rel_error']:.2g} % over {v['n']} values of ρ")
    print(f"  never converged (method, ρ): {summary['never_converged']}")
    print("  final split (w_A, w_B where the run stops), theory vs seed mean, max abs error: "
          + ", ".join(f"{LABELS[m]} {e:.1e}" for m, e in summary["final_w_max_abs_error"].items()))
    for rho, v in summary.get("width_sweep", {}).items():
        err = v["max_rel_error_vs_sim"]
        print(f"  OGM-GE at ρ = {rho} against the width: law vs networks max "
              + (f"{100 * err:.2g} %" if err is not None else "—")
              + "; law / mean field " + " and ".join(
                  f"{x:.3f} at width {w}" if x is not None else f"— at width {w}"
                  for x, w in zip(v["law_over_mean_field"], v["widths"])))
    print(f"  no transition in theory and in every run (method, ρ): "
          f"{summary['no_transition_agreed']}")


def _figure(points, curves, sweep, stem):
    with paper_style():
        fig, axes = new_figure(ncols=4, width=9.0, height=2.4)
        ax = axes[0, 0]
        for method in METHODS:
            sel = [p for p in points if p["method"] == method]
            rho = np.array([p["rho"] for p in sel])
            th_ = np.array([np.nan if p["time_ratio_theory"] is None else p["time_ratio_theory"]
                            for p in sel])
            sims = [np.array([v for v in p["time_ratio_sim"] if v is not None]) for p in sel]
            mean = np.array([s.mean() if s.size else np.nan for s in sims])
            sd = np.array([s.std() if s.size else np.nan for s in sims])
            # a flagged theory point is not drawn (OGM-GE where its noise decides the escape)
            valid = np.array([p["valid"] for p in sel])
            ax.plot(rho, np.where(valid, th_, np.nan), color=COLORS[method], lw=1.2,
                    label=LABELS[method])
            ax.errorbar(rho, mean, yerr=sd, fmt="o", ms=3, mfc="none", color=COLORS[method],
                        capsize=1.5, elinewidth=0.6)
            if method == "ogm_ge":
                # its noise in mean field, where it has a transition (wrong for ρ < 0)
                mf = np.array([np.mean([v for v in p["time_ratio_mean_field"] if v is not None])
                               if any(v is not None for v in p["time_ratio_mean_field"])
                               else np.nan for p in sel])
                ax.plot(rho, mf, color=COLORS[method], lw=0.8, ls=":",
                        label="OGM-GE, mean field")
        ax.set_xlabel(r"correlation $\rho$")
        ax.set_ylabel(r"time ratio $t_B/t_A$")
        ax.set_yscale("log")
        ax.set_yticks([1, 2, 4, 8], ["1", "2", "4", "8"])
        ax.minorticks_off()
        handles, labels = ax.get_legend_handles_labels()
        ax.set_title("lines: theory where valid, markers: simulation", fontsize=7)
        ax = axes[0, 1]
        for method in METHODS:
            sel = [p for p in points if p["method"] == method]
            rho = np.array([p["rho"] for p in sel])
            for key, ls in (("t_A_sim", "--"), ("t_B_sim", "-")):
                vals = np.array([np.mean([v for v in p[key] if v is not None])
                                 if any(v is not None for v in p[key]) else np.nan
                                 for p in sel])
                ax.plot(rho, vals, ls=ls, marker="o", ms=2.5, mfc="none", lw=0.9,
                        color=COLORS[method])
        ax.plot([], [], "k--", lw=0.9, label="$t_A$")
        ax.plot([], [], "k-", lw=0.9, label="$t_B$")
        ax.set_yscale("log")
        ax.set_xlabel(r"correlation $\rho$")
        ax.set_ylabel("step (simulation)")
        ax.legend(frameon=False, fontsize=6)
        ax = axes[0, 2]
        for method, c in curves.items():
            for m, ls in ((0, "--"), (1, "-")):
                ax.plot(c["t"], c["w"][:, m], ls=ls, color=COLORS[method], lw=1.0)
        ax.set_xlim(0, 1400)
        ax.set_xlabel("step")
        ax.set_ylabel(r"total weight ($\rho$ = 0.5, theory)")
        ax.set_title(r"dashed: $W_A^{tot}$, solid: $W_B^{tot}$", fontsize=7)
        # the methods' legend for all panels, in this panel's empty lower right
        ax.legend(handles, labels, frameon=False, fontsize=5.5, loc="lower right")
        ax = axes[0, 3]
        for rho, color in zip(WIDTH_RHOS, (PALETTE[4], PALETTE[2])):
            sel = [r for r in sweep if r["rho"] == rho]
            w = np.array([r["width"] for r in sel], float)
            ax.plot(w, [np.nan if r["time_ratio_theory"] is None else r["time_ratio_theory"]
                        for r in sel], color=color, lw=1.2,
                    label=rf"$\rho$ = {rho}: law")
            mf = [np.mean([v for v in r["time_ratio_mean_field"] if v is not None])
                  if any(v is not None for v in r["time_ratio_mean_field"]) else np.nan
                  for r in sel]
            ax.plot(w, mf, color=color, lw=0.8, ls=":", label="mean field")
            sims = [(r["width"], [v for v in r["time_ratio_sim"] if v is not None])
                    for r in sel if r["time_ratio_sim"]]
            if sims:
                ax.errorbar([x for x, _ in sims], [np.mean(v) for _, v in sims],
                            yerr=[np.std(v) for _, v in sims], fmt="o", ms=3, mfc="none",
                            color=color, capsize=1.5, elinewidth=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("width $h$")
        ax.set_ylabel(r"OGM-GE $t_B/t_A$")
        ax.set_title("OGM-GE: noise against width", fontsize=7)
        ax.legend(frameon=False, fontsize=5.5, loc="center left", ncol=2)
        paths = save(fig, stem)
    return [str(p) for p in paths]
