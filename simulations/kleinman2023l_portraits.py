"""Kleinman, Achille, Soatto & Kao (2023): phase portraits of two competing pathways.

One mode of strength s = 10 learned by two pathways of depth D ∈ {2, 3, 4}, per-layer initial
value p0 = 0.005 (K0 = p0^D), learning rate 0.01, time in steps. The plane is (K_a, K_b); the
solution line K_a + K_b = s is the set of fixed points; the streamlines are the ungated field
dK_q/dt = η D K_q^{2−2/D}(s − K_a − K_b) (dlnfusion.theory.pathways.pathway_flow). Two deficits gate
pathway b: an early one, [0, t½), and a late one, [2t½, 3t½), with t½ the ungated time to reach
K_a + K_b = s/2 (dlnfusion.reduced.pathway_portrait). Theory: the gradient-flow trajectories
(lines). Simulation: the full network (two pathways 1 → 10 → … → 1 of D matrices, aligned and
balanced, every matrix trained) integrated as gradient flow with the same windows (markers).
Gradient flow, not gradient descent: at ηs = 0.1 gradient descent is a few steps late on a
transition that lasts ~1/(ηs) = 10 steps, and a gate that freezes b in mid-transition then
freezes a visibly different K_b (measured: share 0.21 instead of 0.25 at D = 2, 0.03 instead of
0.25 at D = 4 for the middle gate); the reduced gradient-descent map tracks that exactly
(kleinman2023l-pathways).

What it shows: an early deficit sends the state to the K_a end of the solution line
(winner-take-all, for good: the line is made of fixed points), a late one leaves it on the
diagonal; the deeper the pathways, the flatter the field near the origin and the more
complete the early winner's victory.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import Gate, NetworkSpec, Stats, init_pathways, train
from dlnfusion import reduced as rd
from dlnfusion import theory as th
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.training import mode_strengths

from ._output import write_outputs

ID = "kleinman2023l-portraits"
TITLE = "Phase portraits of two pathways competing for one mode, early and late deficits"
DEPTHS, S, P0, LR = (2, 3, 4), 10.0, 0.005, 0.01
WIDTH = 10
#: Early gates [0, T), T in steps (0: no deficit). The split is decided within the first
#: ~1/(ηs) = 10 steps at every depth (see the module docstring), so these lengths are absolute,
#: not fractions of the learning time t½ (61, 1995 and 199 999 steps at D = 2, 3, 4).
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


def one_mode_task() -> Stats:
    """Scalar input and output with Σ = 1, Σ_yx = s, Σ_yy = s² (noise-free), for two pathways."""
    return Stats(np.eye(1), np.array([[S]]), np.array([[S * S]]), (1,)).repeated(2, ("a", "b"))


def simulate(depth: int, windows, steps: int, record_every: int = 1):
    """(time, K (runs, R, 2)) of the full network, integrated as gradient flow (time in steps,
    τ = 1/η), with b gated in each window (start, end); the solver steps onto every window
    boundary."""
    stats = one_mode_task()
    spec = NetworkSpec.pathways((depth, depth), 1, 1, width=WIDTH)
    starts = np.array([w[0] for w in windows])
    ends = np.array([w[1] for w in windows])
    params = init_pathways(spec, stats, seeds=[0] * len(windows), strength=P0 ** depth)
    tr = train(spec, stats, params, lr=LR, steps=float(steps), record_every=float(record_every),
               stop_loss=None, method="gf", rtol=RTOL, atol=ATOL,
               observe={"K": mode_strengths(stats)},
               interventions=[Gate("b", start=starts, end=ends)])
    return tr.time, np.asarray(tr.records["K"])[..., 0]


def windows_for(t_half: float, quick: bool = False) -> list:
    """Gates of pathway b: early ones [0, T) for T in EARLY_LENGTHS, a middle one [t½, 2t½) (b
    frozen half-way through learning) and a late one [2t½, 2.5t½) (after it)."""
    lengths = QUICK_EARLY_LENGTHS if quick else EARLY_LENGTHS
    return ([("early", 0.0, T) for T in lengths]
            + [("middle", t_half, 2 * t_half), ("late", 2 * t_half, 2.5 * t_half)])


def run(out: Path, quick: bool = False) -> dict:
    panels, rows, traj = [], [], []
    for D in DEPTHS:
        th_half = rd.pathway_portrait(D, s=S, init=P0, lr=LR, n_points=10).t_half
        wins = windows_for(th_half, quick)
        steps = int(np.ceil(BUDGET * th_half))
        every = max(1, steps // N_RECORDS)
        # the theory's line at every step: the transitions last ~10 steps
        theory = [rd.reduced_pathways((S,), P0, (D, D), LR, steps, gates=((1, w[1], w[2]),),
                                      method="gf", record_every=1) for w in wins]
        if quick and D in QUICK_THEORY_ONLY:
            K = None
        else:
            _, K = simulate(D, [(w[1], w[2]) for w in wins], steps, record_every=every)
        for k, (w, tr) in enumerate(zip(wins, theory)):
            rows.append({"depth": D, "deficit": w[0], "gate": [w[1], w[2]],
                         "gate_over_t_half": [w[1] / th_half, w[2] / th_half],
                         "K_final_theory_gf": tr.K[-1, :, 0].tolist(),
                         "K_final_sim": None if K is None else K[k, -1].tolist(),
                         "share_b_theory": float(tr.K[-1, 1, 0] / S),
                         "share_b_sim": None if K is None else float(K[k, -1, 1] / S)})
            traj.append({"depth": D, "gate": [w[1], w[2]], "time": tr.time[::every].tolist(),
                         "K": tr.K[::every, :, 0].tolist()})
        panels.append((D, th_half, wins, theory, K))
    summary = {"share_b (theory, simulation)": {
        f"D={r['depth']} {r['deficit']} [{r['gate'][0]:.0f}, {r['gate'][1]:.0f})": [round(r["share_b_theory"], 4),
                                                    r["share_b_sim"] and round(r["share_b_sim"], 4)]
        for r in rows},
        "max_abs_share_difference_sim_vs_theory": float(max(
            abs(r["share_b_theory"] - r["share_b_sim"]) for r in rows
            if r["share_b_sim"] is not None))}
    payload = {"id": ID, "title": TITLE, "quick": quick,
               "settings": {"s": S, "p0": P0, "lr": LR, "width": WIDTH, "budget_t_half": BUDGET},
               "line": [[ka, S - ka] for ka in np.linspace(0, S, 11)],
               "trajectories": traj, "runs": rows, "summary": summary}

    def draw(stem):
        return _draw(stem, panels)

    return write_outputs(out, ID, payload, draw, summary)


def _draw(stem, panels):
    from matplotlib import cm

    with paper_style():
        fig, axes = new_figure(len(panels), 1, height=2.7)
        grid = np.linspace(1e-3, 1.05 * S, 40)
        Ka, Kb = np.meshgrid(grid, grid)
        for ax, (D, th_half, wins, theory, K) in zip(axes[0], panels):
            u, v = th.pathways.pathway_flow(Ka, Kb, S, D)
            ax.streamplot(Ka, Kb, u, v, color="0.8", linewidth=0.5, density=0.8,
                          arrowsize=0.6)
            ax.plot([0, S], [S, 0], color="k", lw=1.0)
            n_early = sum(w[0] == "early" for w in wins)
            for k, (w, tr) in enumerate(zip(wins, theory)):
                if w[0] == "early":
                    col = cm.viridis(0.9 * k / max(n_early - 1, 1))
                else:
                    col = PALETTE[4] if w[0] == "middle" else PALETTE[6]
                ax.plot(tr.K[:, 0, 0], tr.K[:, 1, 0], color=col, lw=1.3)
                if K is None:
                    continue
                every = max(1, K.shape[1] // 30)
                ax.plot(K[k, ::every, 0], K[k, ::every, 1], "o", ms=2.2, mfc="none", mew=0.6,
                        color=col)
            ax.set_xlim(0, 1.05 * S)
            ax.set_ylim(0, 1.05 * S)
            ax.set_aspect("equal")
            ax.set_xlabel("$K_a$")
            ax.set_title(f"D = {D} ($t_{{1/2}}$ = {th_half:,.0f} steps)", fontsize=8)
        axes[0, 0].set_ylabel("$K_b$ (gated pathway)")
        import matplotlib.lines as mlines
        wins = panels[0][2]
        fr = [w[2] for w in wins if w[0] == "early"]
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
