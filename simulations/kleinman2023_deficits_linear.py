"""Sensory deficits during the first N steps in linear fusion networks: the delay of t_B.

Kleinman, Achille & Soatto (CVPR 2023, Sections 4.1-4.2, Figs. 4-6) degrade one source for
the first N epochs -- blur, or dissociation of the two sources -- then train normally. Here
the same protocol on the scalar toy of Zhang, Latham & Saxe (ICML 2024): σ_A/σ_B = 2 (σ_B = 1),
ρ ∈ {0, 0.5}, y = x_A + x_B; modality B (the second-learned) is degraded during steps [0, N),
N ∈ {0, 250, 500, 1000, 2000}; population-level full-batch gradient descent, η = 0.04.

Networks, with the initialization of the paper's figures: two layers (L_f ∈ {1, 2}), width
100, entries N(0, (1e-9)²) (Figure 3c); four layers (L_f ∈ {1, 2, 3, 4}), width 100, the
"frobenius" scheme with u0 = 0.1 (pre-fusion matrices of Frobenius norm ≈ u0, post-fusion
≈ √2 u0; Figure 6).

Deficits (the moments in force during the window, dlnfusion.interventions):
* delete: x_B = 0.
* blur: x̃_B = c x_B + σ_n ξ. The paper blurs by 4× downsampling, a linear low-pass filter,
  i.e. a projection onto a band. For a projection the blurred feature is x̃ = f x_B + noise with
  noise variance f(1 − f)σ_B² (f the fraction of the feature's energy kept;
  theory.deficits.projection_blur, derived in theory/deficits.py). We take f = 1/4 -- a 4× downsampling
  keeps a quarter of the band along an axis -- so c = 0.25, σ_n = 0.433 σ_B. (The library's
  default 0.1/0.15 is the noisy-digit task's corruption, not a blur.) This blur keeps B's
  regression weight (ρ = 0): it slows B by c without moving its plateau much.
* dissociate: the two sources from independent samples, the target from one of them at random:
  Σ_AB = 0, Σ_yx halved (population level).

Measured (every seed): t_A = first step at which W_A^tot reaches half of its unimodal plateau,
t_B = first step at which W_B^tot reaches half of its global-solution value (from the start of
training), the final loss and the steps to reach the stopping loss within a fixed budget per
network. All lengths N of one network (and every ρ and deficit) are one batch: the window ends
are arrays.

Theory (never from simulation numbers):
(b) "t_B_theory": dlnfusion.compare.predict_unimodal_phase with the same windows: the signal
    subspace reduction of each seed's initial weights, trained with the same rule.
(a) "t_B_formula": the leading-order delay of dlnfusion.theory.deficit_times (derived in
    theory/deficits.py), added to the no-deficit prediction of (b) (its N = 0 runs): it uses
    the stats, the window's moments, η, the architecture and the initial post-fusion norm.
    For two layers also "t_B_formula_closed": the same delay on the closed-form no-deficit
    times (theory.predict_times, predict_times_early of each seed's growing modes), which
    integrates no network at all. Points outside a formula's assumptions keep their value and
    carry the reasons in "flags" (knife-edges of dissociation, crossings inside the window,
    the shared-layer clock estimate); summary.flagged_points lists them.

Figure: rows t_B and its delay t_B(N) − t_B(0) against N for two layers, then for four;
columns deletion, blur, dissociation; colors L_f, line style ρ; thick pale lines theory (b)
(dense in N), thin lines theory (a), open markers the simulations (mean ± s.d. over seeds).
Quick mode: one seed, N ∈ {0, 500, 2000}, theory (b) at those N only.

Every number comes from two sweeps per network (:mod:`dlnfusion.sweep`), saved under
``out/kleinman2023-deficits-linear/{quick,full}/L<depth>_Lf<L_f>[_theory]``: the simulations
(``Train``) and both levels of theory (``DeficitTheory``: (b), and (a) on (b)'s N = 0 runs),
each over ρ × deficit × N with the window from the ``interventions`` factory (N = 0 is the
undisturbed run, the same for every deficit).

What to expect (full mode, 3 seeds, 156 distinct points): theory (b) against the seed-mean
t_B median 0.15 %, max 0.31 % (exact for two layers); theory (a) median 0.23 %, max 4.7 %
(the worst: blur inside the window at L = 4, L_f = 2, ρ = 0.5); on two layers with the
closed-form baseline median 0.08 %, max 2.2 %. Late fusion: deletion delays B by
N s_B/s̃_B before A's transition (N at ρ = 0, 2.67 N at ρ = 0.5) and by N + (s_B/s̃_B − 1)t_A
after; blur by (1 − c) of that; dissociation by N/2 while the network is small, and at
ρ = 0.5 two-layer late fusion learns B inside the window (no delay). Intermediate and early
fusion pay far less: B's branch restarts after the window but is pulled up by the shared
layers that A has trained. Every run converges within its budget: the deficits cost time,
not final loss.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.interventions import Deficit, blur, delete, dissociate
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.sweep import CAVEAT_SEPARATOR, DeficitTheory, Sweep, Train

from ._output import write_outputs

ID = "kleinman2023-deficits-linear"
TITLE = "Deficits on modality B for the first N steps: delay of t_B, linear fusion networks"

SIGMA_A, SIGMA_B = 2.0, 1.0
RHOS = (0.0, 0.5)
LENGTHS = (0, 250, 500, 1000, 2000)
QUICK_LENGTHS = (0, 500, 2000)
DEFICITS = ("delete", "blur", "dissociate")
BLUR_FRACTION = 0.25
BLUR_ATTENUATION, BLUR_NOISE_STD = th.deficits.projection_blur(BLUR_FRACTION, SIGMA_B)
NETWORKS = ((2, 1), (2, 2), (4, 1), (4, 2), (4, 3), (4, 4))
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


def _lengths(quick, extra):
    lengths = QUICK_LENGTHS if quick else LENGTHS
    return sorted({float(n) for n in lengths} | {float(n) for n in np.linspace(
        0, max(lengths), extra)})


def sweeps(quick: bool) -> dict:
    """Per network: the simulations, and levels (b) and (a) (with (a)'s dense lines), each
    over ρ × deficit × N."""
    seeds = list(range(QUICK_SEEDS if quick else SEEDS))
    grid = lambda n: {"rho": RHOS, "deficit": DEFICITS, "N": n}  # noqa: E731
    sim, theory = _lengths(quick, 0), _lengths(quick, QUICK_THEORY if quick else THEORY)
    out = {}
    for depth, Lf in NETWORKS:
        scheme, scale = INIT[depth]
        fixed = {"depth": depth, "fusion_layer": Lf, "lr": LR, "scheme": scheme, "scale": scale,
                 "steps": BUDGET[(depth, Lf)], "stop_loss": STOP_LOSS, "record_every": STRIDE}
        name = f"L{depth}_Lf{Lf}"
        out[name] = Sweep(grid(sim), Train(_task, _network, record=False,
                                           interventions=_windows), fixed, seeds)
        line = tuple(np.linspace(0.0, max(sim), DENSE))
        out[f"{name}_theory"] = Sweep(grid(theory), DeficitTheory(
            _task, _network, interventions=_windows, line=line), fixed, seeds)
    return out


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def run(out: Path, quick: bool = False) -> dict:
    start = time.perf_counter()
    ds = compute(out, quick)
    lengths = QUICK_LENGTHS if quick else LENGTHS
    points, lines = [], {}
    for depth, Lf in NETWORKS:
        name = f"L{depth}_Lf{Lf}"
        sim, red = ds[name], ds[f"{name}_theory"]
        for rho in RHOS:
            for d in DEFICITS:
                at = lambda x, n=None: x.sel(rho=rho, deficit=d) if n is None else \
                    x.sel(rho=rho, deficit=d, N=float(n))  # noqa: E731
                tb_red, red0 = at(red).t_B.values, at(red, 0)              # (N, seed)
                lines[(depth, Lf, rho, d)] = {
                    "N": red.length.values, "t_B_formula": red0.t_B_line.values.mean(axis=0),
                    "delay_formula": red0.delay_line.values.mean(axis=0),
                    "N_theory": red.N.values, "t_B_theory": tb_red.mean(axis=1),
                    "delay_theory": tb_red.mean(axis=1) - red0.t_B.values.mean()}
                points += [_point(d, n, depth, Lf, rho, at(sim, n), at(sim, 0), at(red, n),
                                  red0) for n in lengths]
    summary = _summary(points)
    summary["wall_time_s"] = time.perf_counter() - start
    payload = {
        "figure": ID,
        "paper": "Kleinman, Achille & Soatto, CVPR 2023 (deficit protocol), in the networks of "
                 "Zhang, Latham & Saxe, ICML 2024 (Figures 3c, 6)",
        "parameters": {
            "sigma_a": SIGMA_A, "sigma_b": SIGMA_B, "rhos": list(RHOS), "teacher": [1.0, 1.0],
            "lengths": list(lengths), "deficits": list(DEFICITS), "modality": "B",
            "blur": {"fraction": BLUR_FRACTION, "attenuation": BLUR_ATTENUATION,
                     "noise_std": BLUR_NOISE_STD, "model": "projection (theory.deficits.projection_blur)"},
            "networks": [list(n) for n in NETWORKS], "width": WIDTH, "lr": LR,
            "init": {str(k): {"scheme": v[0], "scale": v[1]} for k, v in INIT.items()},
            "seeds": [int(s) for s in ds[name].seed.values], "stride": STRIDE,
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
    result = write_outputs(out, ID, payload, lambda stem: _figure(points, lines, stem), summary)
    _print(points, summary)
    return result


def _f(v):
    return [float(x) for x in np.atleast_1d(v)]


def _point(d, n, depth, Lf, rho, sim, sim0, red, red0):
    """The JSON point of one (deficit, N): Dataset rows of the simulations and the theory at
    N and at N = 0, each over the seeds."""
    tb_sim = np.asarray(sim.t_B.values, float)
    flags = sorted({f for text in red.formula_caveats.values for f in str(text).split(
        CAVEAT_SEPARATOR) if f})
    if np.any(np.isnan(tb_sim)):
        flags.append("B does not reach half of its final value within the budget in some seed")
    mean_sim = float(np.nanmean(tb_sim)) if np.any(np.isfinite(tb_sim)) else float("nan")
    tb_th, tb_fo = float(np.mean(red.t_B.values)), float(np.mean(red.t_B_formula.values))
    pt = {
        "deficit": d, "N": int(n), "depth": depth, "fusion_layer": Lf, "rho": rho,
        "t_A_sim": _f(sim.t_A.values), "t_B_sim": _f(tb_sim),
        "t_B_theory": tb_th, "t_B_theory_per_seed": _f(red.t_B.values),
        "t_A_theory": float(np.mean(red.t_A.values)),
        "t_B_formula": tb_fo, "t_B_formula_per_seed": _f(red.t_B_formula.values),
        "t_A_formula": float(np.mean(red.t_A_formula.values)),
        "delay_sim": mean_sim - float(np.mean(sim0.t_B.values)),
        "delay_theory": tb_th - float(np.mean(red0.t_B.values)),
        "delay_formula": float(np.mean(red.delay_formula.values)),
        "rel_error_theory": tb_th / mean_sim - 1, "rel_error_formula": tb_fo / mean_sim - 1,
        "final_loss_sim": _f(sim.final_loss.values), "stop_step_sim": _f(sim.stop_time.values),
        "status": [str(s) for s in sim.status.values],
        "formula_regime": sorted(set(str(r) for r in red.formula_regime.values)),
        "formula_valid": bool(np.all(red.formula_valid.values)), "flags": flags,
        "undisturbed_run": n == 0,
    }
    if depth == 2:
        pt["t_B_formula_closed"] = float(np.mean(red.t_B_closed.values))
        pt["rel_error_formula_closed"] = pt["t_B_formula_closed"] / np.nanmean(tb_sim) - 1
    return pt


def _stats(errs):
    e = np.abs(np.asarray(errs, float))
    e = e[np.isfinite(e)]
    if e.size == 0:
        return {"median": None, "max": None, "n": 0}
    return {"median": float(np.median(e)), "max": float(np.max(e)), "n": int(e.size)}


def _summary(points) -> dict:
    # each N = 0 point appears once per deficit; count the undisturbed runs once
    uniq = [p for p in points if p["N"] > 0 or p["deficit"] == DEFICITS[0]]
    out = {"t_B_theory_rel_error": _stats([p["rel_error_theory"] for p in uniq]),
           "t_B_formula_rel_error": _stats([p["rel_error_formula"] for p in uniq]),
           "t_B_formula_rel_error_unflagged": _stats([p["rel_error_formula"] for p in uniq
                                                      if not p["flags"]]),
           "t_B_formula_closed_rel_error_two_layer": _stats(
               [p["rel_error_formula_closed"] for p in uniq if "rel_error_formula_closed" in p]),
           "acceptance_theory": None, "by_network": {}, "by_deficit": {}}
    e = out["t_B_theory_rel_error"]
    out["acceptance_theory"] = bool(e["median"] <= 0.03 and e["max"] <= 0.08)
    f = out["t_B_formula_rel_error"]
    out["acceptance_formula"] = bool(f["median"] <= 0.03 and f["max"] <= 0.08)
    for depth, Lf in NETWORKS:
        sel = [p for p in uniq if (p["depth"], p["fusion_layer"]) == (depth, Lf)]
        out["by_network"][f"L={depth},L_f={Lf}"] = {
            "theory": _stats([p["rel_error_theory"] for p in sel]),
            "formula": _stats([p["rel_error_formula"] for p in sel])}
    for d in DEFICITS:
        sel = [p for p in uniq if p["deficit"] == d and p["N"] > 0]
        out["by_deficit"][d] = {"theory": _stats([p["rel_error_theory"] for p in sel]),
                                "formula": _stats([p["rel_error_formula"] for p in sel])}
    out["flagged_points"] = [
        {k: p[k] for k in ("deficit", "N", "depth", "fusion_layer", "rho", "flags",
                           "rel_error_formula", "rel_error_theory")}
        for p in uniq if p["flags"]]
    out["all_converged"] = all(s == "converged" for p in points for s in p["status"])
    return out


_LF_COLORS = {1: PALETTE[1], 2: PALETTE[2], 3: PALETTE[3], 4: PALETTE[4]}
_RHO_STYLE = {0.0: "-", 0.5: "--"}
_RHO_MARK = {0.0: "o", 0.5: "s"}


def _figure(points, lines, stem):
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    titles = {"delete": "deletion of B", "blur": f"blur of B (c = {BLUR_ATTENUATION:g})",
              "dissociate": "dissociation"}
    with paper_style():
        fig, axes = new_figure(ncols=3, nrows=4, width=6.9, height=8.2)
        for row, (depth, quantity) in enumerate(((2, "t_B"), (2, "delay"), (4, "t_B"),
                                                 (4, "delay"))):
            for col, d in enumerate(DEFICITS):
                ax = axes[row, col]
                for (L, Lf) in NETWORKS:
                    if L != depth:
                        continue
                    color = _LF_COLORS[Lf]
                    for rho in RHOS:
                        sel = sorted((p for p in points if p["deficit"] == d and p["depth"] == L
                                      and p["fusion_layer"] == Lf and p["rho"] == rho),
                                     key=lambda p: p["N"])
                        Ns = [p["N"] for p in sel]
                        if quantity == "t_B":
                            sim = [np.array(p["t_B_sim"]) for p in sel]
                        else:
                            b0 = np.array(sel[0]["t_B_sim"])
                            sim = [np.array(p["t_B_sim"]) - b0 for p in sel]
                        ln = lines[(L, Lf, rho, d)]
                        ax.plot(ln["N_theory"], ln[f"{quantity}_theory"], color=color,
                                ls=_RHO_STYLE[rho], lw=2.2, alpha=0.45, zorder=2)
                        ax.plot(ln["N"], ln[f"{quantity}_formula"], color=color,
                                ls=_RHO_STYLE[rho], lw=0.8, zorder=2)
                        ax.errorbar(Ns, [np.nanmean(s) for s in sim],
                                    yerr=[np.nanstd(s) for s in sim], fmt=_RHO_MARK[rho],
                                    mfc="white", mec=color, ecolor=color, mew=0.9, ms=3.5,
                                    capsize=1.5, elinewidth=0.6, lw=0, zorder=3)
                if quantity == "t_B":
                    ax.set_yscale("log")
                    ax.yaxis.set_minor_formatter(NullFormatter())
                    ax.set_title(f"{titles[d]}, L = {depth}", fontsize=7.5)
                else:
                    ax.axhline(0, color="0.8", lw=0.5, zorder=0)
                if col == 0:
                    ax.set_ylabel(r"$t_B$ (steps)" if quantity == "t_B"
                                  else r"delay $t_B(N) - t_B(0)$")
                if row == 3:
                    ax.set_xlabel("deficit length N (steps)")
                ax.text(-0.2, 1.02, "abcdefghijkl"[3 * row + col], transform=ax.transAxes,
                        fontweight="bold", fontsize=9, va="bottom")
        handles = [Line2D([], [], color=_LF_COLORS[Lf], lw=1.2, label=f"$L_f={Lf}$")
                   for Lf in (1, 2, 3, 4)]
        handles += [Line2D([], [], color="0.3", ls=_RHO_STYLE[r], marker=_RHO_MARK[r],
                           mfc="white", label=fr"$\rho={r:g}$") for r in RHOS]
        handles += [Line2D([], [], color="0.3", lw=2.2, alpha=0.45,
                           label="theory (b): reduced network"),
                    Line2D([], [], color="0.3", lw=0.8, label="theory (a): delay formula"),
                    Line2D([], [], color="0.3", ls="", marker="o", mfc="white",
                           label="simulation, mean ± s.d.")]
        fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=6.5,
                   handlelength=2.2)
        return save(fig, stem)


def _print(points, summary):
    print(f"{'deficit':>10} {'L':>2} {'Lf':>2} {'rho':>4} {'N':>5} | {'t_B sim':>16} | "
          f"{'(b)':>8} {'err':>7} | {'(a)':>8} {'err':>7} | flags")
    for p in points:
        if p["N"] == 0 and p["deficit"] != DEFICITS[0]:
            continue
        s = np.array(p["t_B_sim"])
        print(f"{p['deficit'] if p['N'] else 'none':>10} {p['depth']:2d} {p['fusion_layer']:2d} "
              f"{p['rho']:4.1f} {p['N']:5d} | {np.nanmean(s):9.1f} ±{np.nanstd(s):6.1f} | "
              f"{p['t_B_theory']:8.1f} {p['rel_error_theory']:+7.2%} | {p['t_B_formula']:8.1f} "
              f"{p['rel_error_formula']:+7.2%} | {len(p['flags'])}")
    for key in ("t_B_theory_rel_error", "t_B_formula_rel_error",
                "t_B_formula_rel_error_unflagged", "t_B_formula_closed_rel_error_two_layer"):
        v = summary[key]
        if not v["n"]:
            continue
        print(f"{key}: median {v['median']:.2%}, max {v['max']:.2%} over {v['n']} points")
    print(f"acceptance (median <= 3%, max <= 8%): theory (b) {summary['acceptance_theory']}, "
          f"formula (a) {summary['acceptance_formula']}; wall time {summary['wall_time_s']:.0f} s")
