"""Kleinman, Achille & Soatto (CVPR 2023), Fig. 2: disabling a source changes when the other
sources are learned by a deep linear network, not by a shallow one.

Task: five scalar whitened sources A-E (Σ = I), four outputs, Σ^{yx} = SIGMA_YX (chosen here;
the paper prints none): A, B share two modes, C, D, E the other two. E is disabled for the
whole run (dlnfusion.interventions.delete), the paper's "green" feature; D is its "gray" one.
Networks: deep y = W²W¹x (width 6, NetworkSpec.fusion(2, 1)), started aligned and balanced on
the modes of the task it trains on with mode strengths a₀ = 1e-4
(dlnfusion.theory.sources.aligned_params: the closed form, paper eq. 3 per mode, is exact for
gradient flow); shallow y = Wx, started from the full task's aligned map in both cases.
Training: ½⟨‖y − ŷ‖²⟩ at population level, gradient descent at η = 5e-4 (τ = 1/η = 2000 steps)
and, in full mode, gradient flow (Tsit5, rtol 1e-9). JSON times are t/τ.

Feature strength: w_m = ⟨W_m, Σ^{yx}_m⟩/‖Σ^{yx}_m‖, plotted as the fraction w_m/‖Σ^{yx}_m‖;
half-learning time: its first crossing of ½ (theory: exact root; simulation: the "global"
crossing at every step). Mode strengths u_αᵀ W v_α go to the JSON. Error
(dlnfusion.compare.source_errors; acceptance ≤ 1 %): per feature, max over the records of
|sim − theory|/|theory(∞)|; absolute for the disabled source.

Result: gradient flow matches to ~1e-9, gradient descent to 1.9e-3 (O(η s)). Deep: disabling
E delays C (2.01 τ → 2.62 τ) and D (1.86 τ → 2.71 τ), whose C-D-E block loses strength and
rotates (18 % of D then lies in the weakest mode, s = 0.6, learned at ~7 τ: the "gray"
feature); A and B keep their times. Shallow: every source at τ ln 2 with and without E.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats
from dlnfusion import theory as th
from dlnfusion.compare import source_errors, worst_source_errors
from dlnfusion.interventions import delete
from dlnfusion.plot import PALETTE, matrix_panel, new_figure, paper_style, save
from dlnfusion.sweep import Predict, Sweep, Train

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
# GD at η = 5e-4 is the flow to O(η s_max): ≤ 2e-3 relative (first order in η), five times
# inside the 1 % acceptance. 15 τ: the slowest mode (s = 0.6) is half-way at ≈ 7.3 τ.
LR, STEPS = 5e-4, 30_000
TAU = 1.0 / LR
# Records every τ/200 (quick: τ/100); half-way times come from the every-step crossing.
STRIDE, QUICK_STRIDE = 10, 20
# Full mode only (each flow solve compiles for ~8 s): gradient flow, exact to its tolerance.
GF_RTOL = 1e-9
ACCEPT = 0.01
NETWORKS = ("deep", "shallow")
CASES = ("all", "disabled")
FINE = np.linspace(0.0, STEPS, 1201)                    # the theory lines' times (steps)
COLORS = {"A": PALETTE[1], "B": PALETTE[2], "C": PALETTE[4], "D": "0.45", "E": PALETTE[3]}


def task(case: str = "all") -> Stats:
    """The full task (whitened sources A-E, Σ^{yx} = SIGMA_YX, zero-noise teacher), or with
    the source DISABLED deleted (case "disabled")."""
    full = Stats.from_teacher(np.eye(SIGMA_YX.shape[1]), SIGMA_YX, dims=(1,) * len(NAMES),
                              names=NAMES)
    return full if case == "all" else delete(full, DISABLED)


def spec(network: str) -> NetworkSpec:
    return NetworkSpec.fusion(2 if network == "deep" else 1, 1, width=WIDTH,
                              input_dims=(1,) * len(NAMES), output_dim=SIGMA_YX.shape[0],
                              names=NAMES)


def initial(network: str, case: str, seed: int):
    """Aligned, balanced weights on the modes of the task the deep network trains on; the
    shallow one starts from the full task's map in both cases (the same weights)."""
    st = task(case if network == "deep" else "all")
    return th.sources.aligned_params(spec(network), st, A0, seeds=[seed])


def closed_form(network: str, case: str, lr: float, steps: int, record_every) -> dict:
    """The closed form at the record times and at FINE, with the task's singular values."""
    dis = None if case == "all" else DISABLED
    t = np.arange(0, int(steps) + 1, int(record_every), dtype=float)
    dyn, line = (th.source_dynamics(task(), x, A0, lr=lr, network=network, disabled=dis)
                 for x in (t, FINE))
    return {**{k: getattr(dyn, k) for k in _DIMS if hasattr(dyn, k)},
            "line": line.source_strength, "singular_values": th.sources.task_modes(task(case))[1]}


_TEXT = {"time_unit": "steps (time in JSON: t/tau)",
         "feature_strength": "<W_m, Sigma_yx_m>/||Sigma_yx_m|| (fraction: divided by "
                             "||Sigma_yx_m||)",
         "error": "max over record times of |sim - theory| / |theory(t = inf)|, per feature"}
_DIMS = {"source_strength": ("time", "source"), "mode_strength": ("time", "mode"),
         "source_limit": ("source",), "mode_limit": ("mode",), "half_time": ("source",),
         "line": ("fine", "source"), "singular_values": ("mode",)}


def sweeps(quick: bool = False) -> dict:
    """The closed form at the record times, gradient descent (and, full mode, gradient flow)
    of both networks in both cases."""
    grid = {"network": list(NETWORKS), "case": list(CASES)}
    fixed = {"lr": LR, "steps": STEPS, "record_every": QUICK_STRIDE if quick else STRIDE}
    methods = {"gd": {"method": "gd"}} if quick else \
        {"gd": {"method": "gd"}, "gf": {"method": "gf", "record_every": float(STRIDE)}}
    return {"theory": Sweep(grid, Predict(closed_form, dims=_DIMS), fixed, seeds=[0]),
            **{name: Sweep(grid, Train(task, spec, init=initial, half_times=True, theory=False,
                                       rtol=GF_RTOL if name == "gf" else None),
                           {**fixed, "stop_loss": None, **kw}, seeds=[0])
               for name, kw in methods.items()}}


def compute(out: Path, quick: bool = False) -> dict:
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name) for name, sw in sweeps(quick).items()}


def compare(ds, cf, network: str, case: str) -> tuple:
    """One run of a training Dataset against the closed form ``cf`` of that run (its row of
    the theory sweep): dlnfusion.compare.source_errors and the JSON's entries."""
    run = ds.sel(network=network, case=case, seed=0)
    W = np.concatenate([run[f"map_{n}"].values for n in NAMES], axis=-1)
    t_sim = run["t_half"].values
    err = source_errors(W, task(), cf, t_sim, () if case == "all" else DISABLED)
    keys = ("max_rel_error_sources", "max_abs_error_disabled_source", "rel_error_half_times")
    return err, {"half_time_sim": _list(t_sim), **{k: _list(err[k]) for k in keys},
                 "max_rel_error_modes": err["max_rel_error_modes"].tolist(),
                 "status": str(run["status"].values)}


def run(out: Path, quick: bool = False) -> dict:
    data = compute(out, quick)
    gd, theory = data["gd"], data["theory"]
    stride = QUICK_STRIDE if quick else STRIDE
    norms = np.linalg.norm(SIGMA_YX, axis=0)
    keep = slice(None, None, max(1, int(round(TAU / 20 / stride))))   # the JSON's curves: τ/20
    results, curves = {}, {}
    for network in NETWORKS:
        res = {"time": (gd["time"].values[keep] / TAU).tolist()}
        for case in CASES:
            cf = theory.sel(network=network, case=case, seed=0)
            err, cmp_gd = compare(gd, cf, network, case)
            half = cf["half_time"].values
            res[case] = {**{k: cf[k].values.tolist() for k in ("singular_values",
                                                               "source_limit", "mode_limit")},
                         "half_time_theory": _list(half),
                         "fraction_theory": (cf["source_strength"].values[keep] / norms).tolist(),
                         "fraction_sim": (err["source_strength"][keep] / norms).tolist(),
                         "gradient_descent": cmp_gd}
            if "gf" in data:
                res[case]["gradient_flow"] = compare(data["gf"], cf, network, case)[1]
            curves[(network, case)] = dict(t=gd["time"].values, sim=err["source_strength"] / norms,
                                           fine=FINE, line=cf["line"].values / norms, half=half,
                                           half_sim=np.array(cmp_gd["half_time_sim"], float))
        res["half_time_shift_theory"] = _list(np.array(res["disabled"]["half_time_theory"], float)
                                              - np.array(res["all"]["half_time_theory"], float))
        results[network] = res
    summary = _summary(results)
    payload = {"figure": ID, "paper": "Kleinman, Achille & Soatto, CVPR 2023, Fig. 2 (Section 2)",
               "parameters": {"sigma_yx": SIGMA_YX.tolist(), "sigma": "identity",
                              "sources": list(NAMES), "disabled": DISABLED, "a0": A0, "lr": LR,
                              "tau_steps": TAU, "width": WIDTH, "steps": STEPS, "stride": stride,
                              "methods": list(data)[1:], "gf_rtol": GF_RTOL, **_TEXT},
               "networks": results, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(curves, results, stem), summary)
    _print(results, summary)
    return result


def _list(a):
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float)]


def _summary(results) -> dict:
    runs = {m: [r[c][m] for r in results.values() for c in CASES if m in r[c]]
            for m in ("gradient_descent", "gradient_flow")}
    out = {m: worst_source_errors(ms, ACCEPT) for m, ms in runs.items() if ms}
    shift = {n: {name: v / TAU for name, v in zip(NAMES, results[n]["half_time_shift_theory"])
                 if v is not None} for n in NETWORKS}
    return {**out, "half_time_shift_deep_tau": shift["deep"],
            "half_time_shift_shallow_tau": shift["shallow"],
            "max_abs_shift_shallow_tau": float(max(abs(v) for v in shift["shallow"].values())),
            "all_finished": all(r[c][m]["status"] == "max_steps" for r in results.values()
                                for c in CASES for m in ("gradient_descent", "gradient_flow")
                                if m in r[c])}


def _figure(curves, results, stem):
    from matplotlib.lines import Line2D

    with paper_style():
        fig, axes = new_figure(ncols=4, width=6.9, height=2.3)
        ax = axes[0, 0]
        matrix_panel(ax, SIGMA_YX, NAMES, [f"$y_{i + 1}$" for i in range(4)],
                     r"$\Sigma^{yx}$ (source E disabled)", NAMES.index(DISABLED),
                     [COLORS[n] if n != "D" else "0.3" for n in NAMES])
        label = lambda ax, x, s: ax.text(x, 1.02, s, transform=ax.transAxes, fontweight="bold",
                                         fontsize=9, va="bottom")
        label(ax, -0.3, "a")
        for p, (network, xmax) in enumerate(zip(NETWORKS, (12.0, 4.0))):       # xmax in τ
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
            ax.set(xlim=(0, xmax), ylim=(-0.03, 1.05))
            ax.set_xlabel(r"time $t/\tau$")
            if p == 0:
                ax.set_ylabel(r"fraction learned $w_m/\|\Sigma^{yx}_m\|$")
            ax.set_title(("deep: $y = W^2W^1x$" if network == "deep" else "shallow: $y = Wx$"),
                         fontsize=8)
            label(ax, -0.16, "bc"[p])
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
        ax.set(xlim=(-0.5, len(xs) - 0.5), ylabel=r"half-learning time $t_{1/2}/\tau$")
        ax.set_title("half-learning times", fontsize=8)
        label(ax, -0.2, "d")
        L = lambda label, **kw: Line2D([], [], color=kw.pop("c", "0.3"), label=label, **kw)
        handles = [L("all sources (theory)", ls="-"), L(f"{DISABLED} disabled (theory)", ls="--"),
                   L("simulation (all)", ls="", marker="o", mfc="white", ms=3),
                   L(f"simulation ({DISABLED} disabled)", ls="", marker="^", mfc="white", ms=3),
                   L("(d) deep, all", ls="", marker="o", ms=4),
                   L(f"(d) deep, {DISABLED} off", ls="", marker="o", mfc="white", ms=4),
                   L("(d) shallow", ls="", marker="s", ms=4),
                   L("(d) simulated", c="black", ls="", marker="+", ms=4)]
        fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=6.5,
                   handlelength=2.0)
        return save(fig, stem)


def _print(results, summary):
    for network in NETWORKS:
        for case in CASES:
            print(f"{network:7s} {case:8s} half-learning times (t/tau): " + ", ".join(
                f"{n} {v / TAU:.4f}" if v is not None else f"{n} -"
                for n, v in zip(NAMES, results[network][case]["half_time_theory"])))
    s = summary
    print("half-time shift when E is disabled (tau), deep: "
          + ", ".join(f"{n} {v:+.4f}" for n, v in s["half_time_shift_deep_tau"].items())
          + f"; shallow: max |shift| {s['max_abs_shift_shallow_tau']:.2e}")
    for method, m in ((k, s[k]) for k in ("gradient_descent", "gradient_flow") if k in s):
        print(f"closed form vs {method.replace('_', ' ')}: max relative error "
              f"{m['max_rel_error_sources']:.2e} (sources), {m['max_rel_error_modes']:.2e} "
              f"(modes); disabled source max |dev| {m['max_abs_error_disabled_source']:.2e};"
              f" half-way times {m['max_rel_error_half_times']:.2e} relative; within 1 %: "
              f"{m['within_acceptance']}")
