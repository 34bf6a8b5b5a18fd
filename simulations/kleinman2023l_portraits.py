"""Kleinman, Achille, Soatto & Kao (2023): phase portraits of two competing pathways.

One mode of strength s = 10 learned by two pathways of depth D ∈ {2, 3, 4}, pathway b gated
early, in the middle or late: the (K_a, K_b) plane with the ungated field
(:func:`dlnfusion.theory.pathways.pathway_flow`), the trajectories of the gradient-flow theory
(:class:`~dlnfusion.sweep.ReducedPathways`, lines) and of the full network
(:class:`~dlnfusion.sweep.Pathways`, markers). Protocol and caveats:
docs/figures/kleinman2023l-portraits.md. Every sweep is saved under
``out/kleinman2023l-portraits/{quick,full}/<sweep>``; a re-run resumes where it stopped.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from dlnfusion import Gate, NetworkSpec, Stats, reduced as rd, theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.sweep import Pathways, Predict, ReducedPathways, Sweep

from ._output import run_sweeps, write_outputs

ID = "kleinman2023l-portraits"
TITLE = "Phase portraits of two pathways competing for one mode, early and late deficits"
DEPTHS, S, P0, LR = (2, 3, 4), 10.0, 0.005, 0.01
WIDTH = 10
#: Early gates [0, T), T in steps (0: no deficit). The split is decided within the first
#: ~1/(ηs) = 10 steps at every depth (docs/figures/kleinman2023l-portraits.md), so these
#: lengths are absolute, not fractions of the learning time t½ (61, 1995 and 199 999 steps at
#: D = 2, 3, 4).
EARLY_LENGTHS, QUICK_EARLY_LENGTHS = (0.0, 1.0, 3.0, 10.0, 30.0), (0.0, 3.0, 30.0)
#: Every run lasts BUDGET·t½; the solver's tolerances (relative, absolute) for the network.
BUDGET = 3.0
RTOL, ATOL = 1e-8, 1e-14
#: Records per run (the simulation's markers and the theory's line).
N_RECORDS = 600
#: Quick mode draws these depths from theory alone: the network's gradient flow at D = 4 is
#: stiff once learned (relaxation rate ~0.9 per step against t½ = 2·10⁵ steps) and takes a
#: minute on a 2-core CPU.
QUICK_THEORY_ONLY = (4,)
#: The streamlines' grid on each axis.
FLOW_GRID = np.linspace(1e-3, 1.05 * S, 40)


def one_mode_task() -> Stats:
    """Scalar input and output with Σ = 1, Σ_yx = s, Σ_yy = s² (noise-free), for two pathways."""
    return Stats(np.eye(1), np.array([[S]]), np.array([[S * S]]), (1,)).repeated(2, ("a", "b"))


def _network(depth):
    return NetworkSpec.pathways((depth, depth), 1, 1, width=WIDTH)


@lru_cache(maxsize=None)
def t_half(depth) -> float:
    """The ungated time (steps) to reach K_a + K_b = s/2."""
    return rd.pathway_portrait(depth, s=S, init=P0, lr=LR, n_points=10).t_half


def deficits(quick: bool = False) -> list:
    """Gates of pathway b by name: early ones [0, T) for T in EARLY_LENGTHS, a middle one
    [t½, 2t½) (b frozen half-way through learning) and a late one [2t½, 2.5t½) (after it)."""
    return [f"early {T:g}" for T in (QUICK_EARLY_LENGTHS if quick else EARLY_LENGTHS)] \
        + ["middle", "late"]


def window(depth, deficit) -> dict:
    """A deficit's kind, gate [start, end) and the depth's t½."""
    kind, _, T = deficit.partition(" ")
    h = t_half(depth)
    start, end = {"early": (0.0, float(T or 0)), "middle": (h, 2 * h),
                  "late": (2 * h, 2.5 * h)}[kind]
    return {"kind": kind, "start": start, "end": end, "t_half": h}


def _gates(depth, deficit):
    return [Gate("b", *(window(depth, deficit)[k] for k in ("start", "end")))]


def _flow(depth, K_a, K_b):
    u, v = th.pathways.pathway_flow(K_a, K_b, S, depth)
    return {"dK_a": u, "dK_b": v}


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name."""
    names = deficits(quick)
    out = {"windows": Sweep({"depth": DEPTHS, "deficit": names}, Predict(window)),
           "flow": Sweep({"depth": DEPTHS, "K_a": FLOW_GRID, "K_b": FLOW_GRID}, Predict(_flow))}
    for D in DEPTHS:
        steps = int(np.ceil(BUDGET * t_half(D)))
        grid = {"depth": [D], "deficit": names}
        # the theory's line at every step: the transitions last ~10 steps
        out[f"theory_{D}"] = Sweep(grid, ReducedPathways(one_mode_task, _network, _gates),
                                   {"init": P0, "lr": LR, "steps": steps, "method": "gf"})
        if not (quick and D in QUICK_THEORY_ONLY):
            out[f"network_{D}"] = Sweep(grid, Pathways(one_mode_task, _network, _gates), {
                "strength": P0 ** D, "lr": LR, "steps": float(steps), "method": "gf",
                "record_every": float(max(1, steps // N_RECORDS)), "rtol": RTOL, "atol": ATOL})
    return out


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    return run_sweeps(sweeps(quick), out, ID, quick)


def _panels(ds) -> list:
    """Per depth: t½, windows (kind, start, end), time, K (deficit, time, pathway) of the
    theory and of the network (or None)."""
    panels = []
    for D in DEPTHS:
        w = ds["windows"].sel(depth=D).isel(seed=0)
        wins = list(zip(*(w[k].values.tolist() for k in ("kind", "start", "end"))))
        Kth, net = ds[f"theory_{D}"].sel(depth=D).isel(seed=0, mode=0), ds.get(f"network_{D}")
        K = None if net is None else net.K.sel(depth=D).isel(seed=0, mode=0).values
        panels.append((D, float(w.t_half[0]), wins, Kth.time.values, Kth.K.values, K))
    return panels


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    panels = _panels(ds)
    rows, traj = [], []
    for D, th_half, wins, time, Kth, K in panels:
        every = max(1, int(time[-1]) // N_RECORDS)
        for k, w in enumerate(wins):
            rows.append({"depth": D, "deficit": w[0], "gate": [w[1], w[2]],
                         "gate_over_t_half": [w[1] / th_half, w[2] / th_half],
                         "K_final_theory_gf": Kth[k, -1].tolist(),
                         "K_final_sim": None if K is None else K[k, -1].tolist(),
                         "share_b_theory": float(Kth[k, -1, 1] / S),
                         "share_b_sim": None if K is None else float(K[k, -1, 1] / S)})
            traj.append({"depth": D, "gate": [w[1], w[2]], "time": time[::every].tolist(),
                         "K": Kth[k, ::every].tolist()})
    summary = {"share_b (theory, simulation)": {
        f"D={r['depth']} {r['deficit']} [{r['gate'][0]:.0f}, {r['gate'][1]:.0f})":
            [round(r["share_b_theory"], 4), r["share_b_sim"] and round(r["share_b_sim"], 4)]
        for r in rows},
        "max_abs_share_difference_sim_vs_theory": float(max(
            abs(r["share_b_theory"] - r["share_b_sim"]) for r in rows
            if r["share_b_sim"] is not None))}
    payload = {"id": ID, "title": TITLE, "quick": quick,
               "settings": {"s": S, "p0": P0, "lr": LR, "width": WIDTH, "budget_t_half": BUDGET},
               "line": [[ka, S - ka] for ka in np.linspace(0, S, 11)],
               "trajectories": traj, "runs": rows, "summary": summary}
    return write_outputs(out, ID, payload, lambda stem: _draw(stem, panels, ds["flow"]), summary)


def _draw(stem, panels, flow):
    import matplotlib.lines as mlines
    from matplotlib import cm

    with paper_style():
        fig, axes = new_figure(len(panels), 1, height=2.7)
        for ax, (D, th_half, wins, _, Kth, K) in zip(axes[0], panels):
            f = flow.sel(depth=D).isel(seed=0).transpose("K_b", "K_a")
            ax.streamplot(f.K_a.values, f.K_b.values, f.dK_a.values, f.dK_b.values,
                          color="0.8", linewidth=0.5, density=0.8, arrowsize=0.6)
            ax.plot([0, S], [S, 0], color="k", lw=1.0)
            n_early = sum(w[0] == "early" for w in wins)
            for k, w in enumerate(wins):
                if w[0] == "early":
                    col = cm.viridis(0.9 * k / max(n_early - 1, 1))
                else:
                    col = PALETTE[4] if w[0] == "middle" else PALETTE[6]
                ax.plot(Kth[k, :, 0], Kth[k, :, 1], color=col, lw=1.3)
                if K is not None:
                    every = max(1, K.shape[1] // 30)
                    ax.plot(K[k, ::every, 0], K[k, ::every, 1], "o", ms=2.2, mfc="none",
                            mew=0.6, color=col)
            ax.set(xlim=(0, 1.05 * S), ylim=(0, 1.05 * S), aspect="equal", xlabel="$K_a$")
            ax.set_title(f"D = {D} ($t_{{1/2}}$ = {th_half:,.0f} steps)", fontsize=8)
        axes[0, 0].set_ylabel("$K_b$ (gated pathway)")
        fr = [w[2] for w in panels[0][2] if w[0] == "early"]
        handles = [mlines.Line2D([], [], color="k", label="solution line $K_a + K_b = s$")]
        handles += [mlines.Line2D([], [], color=cm.viridis(0.9 * i / max(len(fr) - 1, 1)),
                                  label=f"b gated [0, {f:g}) steps" if f else "no deficit")
                    for i, f in enumerate(fr)]
        handles += [mlines.Line2D([], [], color=PALETTE[4], label="[$t_{1/2}$, 2$t_{1/2}$)"),
                    mlines.Line2D([], [], color=PALETTE[6],
                                  label="[2$t_{1/2}$, 2.5$t_{1/2}$) (late)"),
                    mlines.Line2D([], [], color="0.3", label="theory (gradient flow)"),
                    mlines.Line2D([], [], color="0.3", marker="o", ls="", mfc="none",
                                  label="simulation (full network)")]
        fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=7)
        return save(fig, stem)
