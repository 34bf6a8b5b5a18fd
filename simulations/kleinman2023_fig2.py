"""Kleinman, Achille & Soatto (CVPR 2023), Fig. 2: disabling a source changes when the other
sources are learned by a deep linear network, not by a shallow one.

Task. Five scalar sources A-E (one input column each, as in the paper's Section 2: "each
component x_k of x as coming from a different sensor"), whitened input Σ = I, four outputs,

    Σ^{yx} = [[3, 1, 0,   0,   0  ],
              [1, 2, 0,   0,   0  ],
              [0, 0, 1.5, 0.6, 0.8],
              [0, 0, 0.6, 1,   2  ]]

(chosen here; the paper does not print its matrix): A and B share two modes, C, D and E the
other two. E is disabled (dlnfusion.interventions.delete: x_E = 0, so its column of Σ^{yx} and
its entry of Σ vanish) for the whole run, "green" in the paper; D plays its "gray" feature.

Networks. Deep: y = W² W¹ x, hidden width 6 ≥ rank 4, NetworkSpec.fusion(2, 1) with one branch
per source, initialized aligned and balanced on the modes of the task it trains on with every
mode strength a₀ = 1e-4 (dlnfusion.theory.sources.aligned_params), on which the closed form
(paper eq. 3 per mode, dlnfusion.theory.sources.deep_total_map) is exact for gradient flow. Shallow:
y = W x, NetworkSpec.fusion(1, 1), started from the full task's aligned map U diag(a₀) Vᵀ with
and without the source (the same weights). Training on ½⟨‖y − ŷ‖²⟩ at population level:
gradient descent at η = 5e-4 (τ = 1/η = 2000 steps; the simulation markers), and in full
mode also gradient flow (method="gf", Tsit5, rtol 1e-9). Times are in steps, the toolkit's
unit; the figure and the JSON's ``time`` show t/τ.

Feature strength: the paper's "total weight attributed to each feature", a feature being a
source: w_m = ⟨W_m, Σ^{yx}_m⟩/‖Σ^{yx}_m‖ (its limit ‖Σ^{yx}_m‖ when the source is on);
plotted as the fraction learned w_m/‖Σ^{yx}_m‖. Half-learning time: the first time that
fraction reaches ½ (theory: exact root of the closed form; simulation: the toolkit's "global"
crossing, evaluated at every gradient-descent step and interpolated within the step). Mode
strengths u_αᵀ W v_α on the full task's modes are compared as well (JSON only).

Error measure (acceptance: ≤ 1 %): for each feature f (every enabled source, every mode of the
full task), network and run, max over the recorded times t of |sim_f(t) − theory_f(t)|
divided by |theory_f(∞)|, the feature's final value; the disabled source (final value 0 in the
deep network, its initial value in the shallow one) is reported as an absolute deviation.

Result: gradient flow matches the closed form to the solver tolerance (~1e-9 relative);
gradient descent at η = 5e-4 to 1.9e-3 (the O(η s) discretization error: the GD map grows a
mode by (1 + η(s − a))² per step against e^{2η(s − a)}). In the deep network disabling E
delays C (half-learning at 2.01 τ → 2.62 τ) and D (1.86 τ → 2.71 τ): the singular values of
the C-D-E block drop from (2.753, 1.015) to (1.9, 0.6) and its vectors rotate; 18 % of D's
weight then lies in the weakest mode, learned only at ~7 τ, after the initial
transient — the paper's "gray feature". A and B, whose modes (3.618, 1.382) do not involve E,
keep their times to rounding (2e-16 τ). In the shallow network every enabled source is
half-learned at τ ln 2 with and without E (shift exactly 0: the same initial weights and
per-entry dynamics).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats, train
from dlnfusion import theory as th
from dlnfusion.interventions import delete
from dlnfusion.plot import PALETTE, new_figure, paper_style, save

from ._output import write_outputs

ID = "kleinman2023-fig2"
TITLE = "Fig. 2: a disabled source changes when other sources are learned, deep vs shallow"
SIGMA_YX = np.array([[3.0, 1.0, 0.0, 0.0, 0.0],
                     [1.0, 2.0, 0.0, 0.0, 0.0],
                     [0.0, 0.0, 1.5, 0.6, 0.8],
                     [0.0, 0.0, 0.6, 1.0, 2.0]])
NAMES = ("A", "B", "C", "D", "E")
DISABLED = "E"
A0, WIDTH = 1e-4, 6
# Gradient descent at η = 5e-4 (τ = 1/η = 2000 steps) is the flow to O(η s_max): measured
# ≤ 2e-3 relative deviation from the closed form (3.6e-3 at η = 1e-3, 7.2e-3 at 2e-3: first
# order), five times inside the 1 % acceptance.
LR = 5e-4
TAU = 1.0 / LR
# 15 τ: the slowest mode (s = 0.6 without E) passes half-way at τ ln(s/a₀ − 1)/(2s) ≈ 7.3 τ
# and is within 1e-3 of s by ~13 τ.
STEPS = 30_000
# Records every τ/200 (quick: τ/100); the half-way times of gradient descent come from the
# crossing recorded at every step, not from the records.
STRIDE, QUICK_STRIDE = 10, 20
# Full mode also integrates the gradient flow (adaptive Tsit5, rtol 1e-9): the closed form is
# its exact solution, so the two agree to the solver's tolerance. Quick mode skips it (each
# flow solve compiles for ~8 s on 2 CPU cores).
GF_RTOL = 1e-9
ACCEPT = 0.01
NETWORKS = ("deep", "shallow")
CASES = ("all", "disabled")
COLORS = {"A": PALETTE[1], "B": PALETTE[2], "C": PALETTE[4], "D": "0.45", "E": PALETTE[3]}


def task() -> Stats:
    """The full task: whitened sources A-E and Σ^{yx} = SIGMA_YX (zero-noise teacher)."""
    return Stats.from_teacher(np.eye(SIGMA_YX.shape[1]), SIGMA_YX, dims=(1,) * len(NAMES),
                              names=NAMES)


def _spec(network):
    depth = 2 if network == "deep" else 1
    return NetworkSpec.fusion(depth, 1, width=WIDTH, input_dims=(1,) * len(NAMES),
                              output_dim=SIGMA_YX.shape[0], names=NAMES)


def _params(network, full, off):
    """Both runs of one network in one batch: all sources, then E disabled."""
    spec = _spec(network)
    init = (full, off) if network == "deep" else (full, full)   # shallow: the same weights
    ps = [th.sources.aligned_params(spec, st, A0, seeds=[0]) for st in init]
    mats = [np.concatenate([a.matrices()[i] for a in ps]) for i in range(spec.n_layers)]
    return spec, type(ps[0]).from_matrices(spec, mats)


def _rel_errors(sim, theory, limit, disabled_mask):
    """Per feature: max_t |sim − theory| / |limit| (enabled), max_t |sim − theory| (disabled)."""
    dev = np.max(np.abs(sim - theory), axis=0)
    rel = np.where(disabled_mask, np.nan, dev / np.where(disabled_mask, 1.0, np.abs(limit)))
    return rel, np.where(disabled_mask, dev, np.nan)


def _compare(traj, full, network, c, dis):
    """Closed form at the record times against run ``c`` of ``traj``."""
    t = traj.time
    W = np.concatenate(traj.maps, axis=-1)[c]                    # (T, d_out, D)
    dyn = th.source_dynamics(full, t, A0, lr=LR, network=network, disabled=dis)
    sim_src = th.sources.source_strengths(W, full)
    sim_mode = th.sources.mode_projections(W, full)
    mask = np.array([n == dis for n in NAMES])
    rel_s, abs_s = _rel_errors(sim_src, dyn.source_strength, dyn.source_limit, mask)
    rel_m, _ = _rel_errors(sim_mode, dyn.mode_strength, dyn.mode_limit,
                           np.zeros(sim_mode.shape[1], bool))
    t_sim = np.array([traj.crossing(m, "global", 0.5)[c] for m in range(len(NAMES))])
    rel_half = np.abs(t_sim - dyn.half_time) / dyn.half_time
    return dyn, sim_src, {
        "half_time_sim": _list(t_sim),
        "max_rel_error_sources": _list(rel_s),
        "max_abs_error_disabled_source": _list(abs_s),
        "max_rel_error_modes": rel_m.tolist(),
        "rel_error_half_times": _list(rel_half),
        "status": str(traj.status_names()[c]),
    }


def run(out: Path, quick: bool = False) -> dict:
    full = task()
    off = delete(full, DISABLED)
    stride = QUICK_STRIDE if quick else STRIDE
    norms = np.linalg.norm(SIGMA_YX, axis=0)
    fine = np.linspace(0.0, STEPS, 1201)
    results, curves = {}, {}
    for network in NETWORKS:
        spec, params = _params(network, full, off)
        gd = train(spec, [full, off], params, lr=LR, method="gd", steps=STEPS,
                   record_every=stride, stop_loss=None)
        gf = None if quick else train(spec, [full, off], params, lr=LR, method="gf",
                                      rtol=GF_RTOL, steps=float(STEPS),
                                      record_every=float(stride), stop_loss=None)
        # The JSON keeps the curves every τ/20 (301 points; the errors use every record).
        keep = slice(None, None, max(1, int(round(TAU / 20 / stride))))
        res = {"time": (gd.time[keep] / TAU).tolist()}
        for c, case in enumerate(CASES):
            dis = None if case == "all" else DISABLED
            dyn, sim_src, cmp_gd = _compare(gd, full, network, c, dis)
            line = th.source_dynamics(full, fine, A0, lr=LR, network=network, disabled=dis)
            res[case] = {
                "singular_values": th.sources.task_modes(full if dis is None else off)[1].tolist(),
                "half_time_theory": _list(dyn.half_time),
                "source_limit": dyn.source_limit.tolist(),
                "mode_limit": dyn.mode_limit.tolist(),
                "fraction_theory": (dyn.source_strength[keep] / norms).tolist(),
                "fraction_sim": (sim_src[keep] / norms).tolist(),
                "gradient_descent": cmp_gd,
            }
            if gf is not None:
                res[case]["gradient_flow"] = _compare(gf, full, network, c, dis)[2]
            curves[(network, case)] = dict(t=gd.time, sim=sim_src / norms, fine=fine,
                                           line=line.source_strength / norms,
                                           half=dyn.half_time,
                                           half_sim=np.array(cmp_gd["half_time_sim"], float))
        res["half_time_shift_theory"] = _list(np.array(res["disabled"]["half_time_theory"],
                                                       float)
                                              - np.array(res["all"]["half_time_theory"], float))
        results[network] = res
    summary = _summary(results)
    payload = {"figure": ID, "paper": "Kleinman, Achille & Soatto, CVPR 2023, Fig. 2 (Section 2)",
               "parameters": {"sigma_yx": SIGMA_YX.tolist(), "sigma": "identity",
                              "sources": list(NAMES), "disabled": DISABLED, "a0": A0, "lr": LR,
                              "tau_steps": TAU, "width": WIDTH, "steps": STEPS, "stride": stride,
                              "methods": ["gd"] + ([] if quick else ["gf"]),
                              "gf_rtol": GF_RTOL, "time_unit": "steps (time in JSON: t/tau)",
                              "feature_strength": "<W_m, Sigma_yx_m>/||Sigma_yx_m|| (fraction: "
                                                  "divided by ||Sigma_yx_m||)",
                              "error": "max over record times of |sim - theory| / "
                                       "|theory(t = inf)|, per feature"},
               "networks": results, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(curves, results, stem), summary)
    _print(results, summary)
    return result


def _list(a):
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float)]


def _summary(results) -> dict:
    out = {}
    for method in ("gradient_descent", "gradient_flow"):
        rel, rel_modes, dis, half = [], [], [], []
        for r in results.values():
            for case in CASES:
                if method not in r[case]:
                    continue
                m = r[case][method]
                rel += [v for v in m["max_rel_error_sources"] if v is not None]
                rel_modes += m["max_rel_error_modes"]
                dis += [v for v in m["max_abs_error_disabled_source"] if v is not None]
                half += [v for v in m["rel_error_half_times"] if v is not None]
        if rel:
            out[method] = {"max_rel_error_sources": float(max(rel)),
                           "max_rel_error_modes": float(max(rel_modes)),
                           "max_abs_error_disabled_source": float(max(dis)),
                           "max_rel_error_half_times": float(max(half)),
                           "within_acceptance": bool(max(max(rel), max(rel_modes)) <= ACCEPT)}
    shift = {n: {name: v / TAU for name, v in zip(NAMES, results[n]["half_time_shift_theory"])
                 if v is not None} for n in NETWORKS}
    out.update({
        "half_time_shift_deep_tau": shift["deep"],
        "half_time_shift_shallow_tau": shift["shallow"],
        "max_abs_shift_shallow_tau": float(max(abs(v) for v in shift["shallow"].values())),
        "all_finished": all(r[c][m]["status"] == "max_steps" for r in results.values()
                            for c in CASES for m in ("gradient_descent", "gradient_flow")
                            if m in r[c]),
    })
    return out


def _figure(curves, results, stem):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    with paper_style():
        fig, axes = new_figure(ncols=4, width=6.9, height=2.3)
        ax = axes[0, 0]
        vmax = np.max(np.abs(SIGMA_YX))
        ax.imshow(SIGMA_YX, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="equal")
        for (i, j), v in np.ndenumerate(SIGMA_YX):
            if v:
                ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=6)
        k = NAMES.index(DISABLED)
        ax.add_patch(Rectangle((k - 0.5, -0.5), 1, SIGMA_YX.shape[0], fill=False,
                               ec=COLORS[DISABLED], lw=2))
        ax.set_xticks(range(len(NAMES)), NAMES)
        for lbl, n in zip(ax.get_xticklabels(), NAMES):
            lbl.set_color(COLORS[n] if n != "D" else "0.3")
        ax.set_yticks(range(SIGMA_YX.shape[0]), [f"$y_{i + 1}$" for i in range(4)])
        ax.set_title(r"$\Sigma^{yx}$ (source E disabled)", fontsize=8)
        ax.tick_params(length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.text(-0.3, 1.02, "a", transform=ax.transAxes, fontweight="bold", fontsize=9,
                va="bottom")
        xmax = {"deep": 12.0, "shallow": 4.0}                  # in units of τ
        for p, network in enumerate(NETWORKS):
            ax = axes[0, p + 1]
            for case, ls, mk in (("all", "-", "o"), ("disabled", "--", "^")):
                c = curves[(network, case)]
                t = c["t"] / TAU
                every = max(1, int(round(0.2 / (t[1] - t[0]))))      # a marker every τ/5
                for m, n in enumerate(NAMES):
                    ax.plot(c["fine"] / TAU, c["line"][:, m], ls=ls, color=COLORS[n], lw=1.1,
                            zorder=2)
                    ax.plot(t[::every], c["sim"][::every, m], ls="", marker=mk, ms=2.6,
                            mfc="white", mec=COLORS[n], mew=0.6, zorder=3)
            ax.axhline(0.5, color="0.8", lw=0.5, zorder=1)
            ax.set_xlim(0, xmax[network])
            ax.set_ylim(-0.03, 1.05)
            ax.set_xlabel(r"time $t/\tau$")
            if p == 0:
                ax.set_ylabel(r"fraction learned $w_m/\|\Sigma^{yx}_m\|$")
            ax.set_title(("deep: $y = W^2W^1x$" if network == "deep" else "shallow: $y = Wx$"),
                         fontsize=8)
            ax.text(-0.16, 1.02, "bc"[p], transform=ax.transAxes, fontweight="bold",
                    fontsize=9, va="bottom")
        axes[0, 1].annotate("C, D later\nwithout E", xy=(2.75, 0.5), xytext=(5.0, 0.3),
                            fontsize=6.5, arrowprops=dict(arrowstyle="->", lw=0.6, color="0.3"))
        axes[0, 1].annotate("D, E off: rest in\nweakest mode\n($s$ = 0.6)",
                            xy=(7.3, 0.9), xytext=(6.3, 0.52), fontsize=6.5,
                            arrowprops=dict(arrowstyle="->", lw=0.6, color="0.3"))
        axes[0, 2].text(0.97, 0.35, "A-D overlap,\nwith and\nwithout E", ha="right",
                        transform=axes[0, 2].transAxes, fontsize=6.5)
        ax = axes[0, 3]
        xs = np.arange(len(NAMES) - 1)
        for network, off_x, mk in (("deep", -0.15, "o"), ("shallow", 0.15, "s")):
            for case, filled in (("all", True), ("disabled", False)):
                c = curves[(network, case)]
                for m, n in enumerate(NAMES[:-1]):
                    ax.plot(xs[m] + off_x, c["half"][m] / TAU, ls="", marker=mk, ms=4.5,
                            mfc=COLORS[n] if filled else "white", mec=COLORS[n], mew=0.9,
                            zorder=3)
                    ax.plot(xs[m] + off_x, c["half_sim"][m] / TAU, ls="", marker="+", ms=4,
                            color="black", mew=0.6, zorder=4)
        ax.set_xticks(xs, NAMES[:-1])
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_ylabel(r"half-learning time $t_{1/2}/\tau$")
        ax.set_title("half-learning times", fontsize=8)
        ax.text(-0.2, 1.02, "d", transform=ax.transAxes, fontweight="bold", fontsize=9,
                va="bottom")
        handles = [Line2D([], [], color="0.3", ls="-", label="all sources (theory)"),
                   Line2D([], [], color="0.3", ls="--", label=f"{DISABLED} disabled (theory)"),
                   Line2D([], [], color="0.3", ls="", marker="o", mfc="white", ms=3,
                          label="simulation (all)"),
                   Line2D([], [], color="0.3", ls="", marker="^", mfc="white", ms=3,
                          label=f"simulation ({DISABLED} disabled)"),
                   Line2D([], [], color="0.3", ls="", marker="o", ms=4, label="(d) deep, all"),
                   Line2D([], [], color="0.3", ls="", marker="o", mfc="white", ms=4,
                          label=f"(d) deep, {DISABLED} off"),
                   Line2D([], [], color="0.3", ls="", marker="s", ms=4, label="(d) shallow"),
                   Line2D([], [], color="black", ls="", marker="+", ms=4, label="(d) simulated")]
        fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=6.5,
                   handlelength=2.0)
        return save(fig, stem)


def _print(results, summary):
    for network in NETWORKS:
        r = results[network]
        for case in CASES:
            ht = ", ".join(f"{n} {v / TAU:.4f}" if v is not None else f"{n} -"
                           for n, v in zip(NAMES, r[case]["half_time_theory"]))
            print(f"{network:7s} {case:8s} half-learning times (t/tau): {ht}")
    s = summary
    print("half-time shift when E is disabled (tau), deep: "
          + ", ".join(f"{n} {v:+.4f}" for n, v in s["half_time_shift_deep_tau"].items())
          + f"; shallow: max |shift| {s['max_abs_shift_shallow_tau']:.2e}")
    for method in ("gradient_descent", "gradient_flow"):
        if method in s:
            m = s[method]
            print(f"closed form vs {method.replace('_', ' ')}: max relative error "
                  f"{m['max_rel_error_sources']:.2e} (sources), {m['max_rel_error_modes']:.2e} "
                  f"(modes); disabled source max |dev| {m['max_abs_error_disabled_source']:.2e};"
                  f" half-way times {m['max_rel_error_half_times']:.2e} relative; within 1 %: "
                  f"{m['within_acceptance']}")
