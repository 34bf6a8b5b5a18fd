"""Kleinman, Achille, Soatto & Kao (2023), Figs. 2-3: critical periods of two parallel pathways.

Two pathways 8 → 100 → … → 15 with D matrices each see the one-hot items of the hierarchical
task (dlnfusion.data.hierarchy, sum convention) and their outputs are summed. Aligned, balanced
initialization with every mode strength K = 0.01 (dlnfusion.init_pathways); full-batch gradient
descent on ½Σ‖y − ŷ‖², learning rate 0.01, 1000 steps. Deficit: pathway b is gated (no
gradient, still in the output) during [start, start + 150) for start ∈ {0, 400, 750}, D ∈
{2, 3, 4}; a control run has no gate. Lesion experiment (the paper's Fig. 3): D = 3, b gated
during [0, 200) and mode 1 (the largest, index 0) of pathway a lesioned for good.

Measured against predicted: the mode strengths K_{p,α} = (Uᵀ Ω_p V)_{αα} of the simulated
network (width 100, every matrix trained) against the exact per-mode gradient-descent map of
dlnfusion.reduced.reduced_pathways, run from the initial per-layer values alone (theory), and
the closed-form gradient-flow split dlnfusion.theory.predicted_split. A second batch starts
from a jittered initialization (every entry perturbed, jitter 0.01 of the aligned scale; the
spec states a jitter but no value) and reports how far it moves from the aligned theory.
Panels: K of both pathways against steps for every depth and gate start (one colour per
singular value; pathway a solid, b dashed; theory thin black), the lesion run, and pathway b's
final share of each mode against the gate start (a simulated sweep of 18 starts per depth in
one compiled batch, markers, over the theory's curve).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import Gate, Lesion, NetworkSpec, init_pathways, train
from dlnfusion import reduced as rd
from dlnfusion import theory as th
from dlnfusion.data import hierarchy
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.training import mode_strengths

from ._output import write_outputs

ID = "kleinman2023l-pathways"
TITLE = "Critical periods of two parallel pathways: gating deficits and a lesion"
DEPTHS = (2, 3, 4)
GATE_STARTS, GATE_LENGTH = (0, 400, 750), 150
LESION_DEPTH, LESION_GATE, LESION_MODE = 3, 200, 0
WIDTH, STRENGTH, LR, STEPS, STRIDE = 100, 0.01, 0.01, 1000, 5
JITTER = 0.01
SWEEP_STARTS, QUICK_SWEEP_STARTS = np.arange(0, 900, 50.0), np.arange(0, 900, 150.0)
GATED = 1          # pathway b


def _spec(depth):
    return NetworkSpec.pathways((depth, depth), 8, 15, width=WIDTH)


def simulate_gates(depth, starts, lengths, *, lesion=None, jitter=0.0, seed=0):
    """Mode strengths (runs, records, 2, 8) of the full network with pathway b gated during
    [starts, starts + lengths) (one run per entry; a lesion of pathway a's mode ``lesion``
    for good in every run when given)."""
    stats = hierarchy(pathways=2)
    spec = _spec(depth)
    starts = np.asarray(starts, float)
    ends = starts + np.asarray(lengths, float)
    params = init_pathways(spec, stats, seeds=[seed] * starts.size, strength=STRENGTH,
                           jitter=jitter)
    windows = [Gate("b", start=starts, end=ends)]
    if lesion is not None:
        windows.append(Lesion("a", mode=lesion, start=0, end=None))
    tr = train(spec, stats, params, lr=LR, steps=STEPS, record_every=STRIDE, stop_loss=None,
               observe={"K": mode_strengths(stats)}, interventions=windows)
    if np.any(tr.diverged):
        raise RuntimeError("a pathway run diverged")
    return tr.time, np.asarray(tr.records["K"])


def theory_gates(depth, start, length, lesion=None):
    """The exact per-mode GD map from the initial per-layer value K0^{1/D} (no simulation)."""
    s = hierarchy().modes(0)[1]
    gates = [Gate("b", start=float(start), end=float(start + length))] if length > 0 else []
    lesions = [Lesion("a", mode=lesion, start=0, end=None)] if lesion is not None else []
    return rd.reduced_pathways(tuple(s), STRENGTH ** (1 / depth), (depth, depth), LR, STEPS,
                               gates=tuple(gates), lesions=tuple(lesions), method="gd",
                               record_every=STRIDE)


def run(out: Path, quick: bool = False) -> dict:
    s = hierarchy().modes(0)[1]
    runs, curves, errs, jit_errs, closed_errs = [], {}, {}, {}, {}
    sweep = QUICK_SWEEP_STARTS if quick else SWEEP_STARTS
    shares = {}
    for D in DEPTHS:
        starts = np.array(list(GATE_STARTS) + [0.0] + list(sweep))
        lengths = np.array([GATE_LENGTH] * len(GATE_STARTS) + [0.0] + [GATE_LENGTH] * len(sweep))
        time, K = simulate_gates(D, starts, lengths)
        _, K_jit = simulate_gates(D, starts[:4], lengths[:4], jitter=JITTER, seed=1)
        n_main = len(GATE_STARTS) + 1
        dev, jdev, cdev = [], [], []
        for i in range(n_main):
            theo = theory_gates(D, starts[i], lengths[i])
            closed = th.predicted_split(s, STRENGTH ** (1 / D), D, LR, starts[i], lengths[i],
                                        STEPS, gated=GATED)
            dev.append(np.max(np.abs(K[i] - theo.K)))
            jdev.append(np.max(np.abs(K_jit[i] - theo.K)))
            cdev.append(np.max(np.abs(np.stack([closed.K_a, closed.K_b]) - theo.K[-1]) / s))
            runs.append({"depth": D, "gate_start": float(starts[i]),
                         "gate_length": float(lengths[i]), "gated_pathway": "b",
                         "lesion": None, "singular_values": s.tolist(),
                         "K_a_final": K[i, -1, 0].tolist(), "K_b_final": K[i, -1, 1].tolist(),
                         "K_a_theory": theo.K[-1, 0].tolist(),
                         "K_b_theory": theo.K[-1, 1].tolist(),
                         "K_a_closed_form": closed.K_a.tolist(),
                         "K_b_closed_form": closed.K_b.tolist(),
                         "K_a_final_jittered": K_jit[i, -1, 0].tolist(),
                         "K_b_final_jittered": K_jit[i, -1, 1].tolist()})
            curves[(D, i)] = (K[i], theo.K)
        errs[D], jit_errs[D], closed_errs[D] = max(dev), max(jdev), max(cdev)
        share_sim = K[n_main:, -1, 1] / s
        dense = np.arange(0, 900, 10.0)
        share_th = np.array([theory_gates(D, t, GATE_LENGTH).K[-1, 1] / s for t in dense])
        shares[D] = (sweep, share_sim, dense, share_th)
    # the lesion experiment
    time, K_les = simulate_gates(LESION_DEPTH, [0.0], [LESION_GATE], lesion=LESION_MODE)
    theo = theory_gates(LESION_DEPTH, 0.0, LESION_GATE, lesion=LESION_MODE)
    errs["lesion"] = float(np.max(np.abs(K_les[0] - theo.K)))
    runs.append({"depth": LESION_DEPTH, "gate_start": 0.0, "gate_length": float(LESION_GATE),
                 "gated_pathway": "b", "lesion": {"pathway": "a", "mode": LESION_MODE,
                                                  "start": 0, "end": None},
                 "singular_values": s.tolist(), "K_a_final": K_les[0, -1, 0].tolist(),
                 "K_b_final": K_les[0, -1, 1].tolist(), "K_a_theory": theo.K[-1, 0].tolist(),
                 "K_b_theory": theo.K[-1, 1].tolist()})
    summary = {
        "max_abs_error_sim_vs_reduced": {str(k): float(v) for k, v in errs.items()},
        "max_abs_error_jittered_vs_reduced": {str(k): float(v) for k, v in jit_errs.items()},
        "max_rel_error_closed_form_vs_reduced": {str(k): float(v)
                                                 for k, v in closed_errs.items()},
        "share_b_final": {str(D): {"early": float(np.mean(curves[(D, 0)][0][-1, 1] / s)),
                                   "middle": float(np.mean(curves[(D, 1)][0][-1, 1] / s)),
                                   "late": float(np.mean(curves[(D, 2)][0][-1, 1] / s)),
                                   "none": float(np.mean(curves[(D, 3)][0][-1, 1] / s))}
                          for D in DEPTHS},
    }
    payload = {"id": ID, "title": TITLE, "quick": quick,
               "settings": {"width": WIDTH, "strength": STRENGTH, "lr": LR, "steps": STEPS,
                            "gate_length": GATE_LENGTH, "jitter": JITTER,
                            "loss": "0.5 * sum over items of squared error",
                            "theory": "dlnfusion.reduced.reduced_pathways (exact GD map per "
                                      "mode); closed form: dlnfusion.theory.predicted_split "
                                      "(gradient flow)"},
               "runs": runs,
               "sweep": {str(D): {"gate_start": v[0].tolist(), "share_b_sim": v[1].tolist(),
                                  "gate_start_theory": v[2].tolist(),
                                  "share_b_theory": v[3].tolist()} for D, v in shares.items()},
               "summary": summary}

    def draw(stem):
        return _draw(stem, time, s, curves, (K_les[0], theo.K), shares)

    return write_outputs(out, ID, payload, draw, summary)


def _mode_groups(s):
    """Indices of the distinct singular values (the hierarchy's degenerate modes share one)."""
    vals = np.unique(np.round(s, 10))[::-1]
    return [(v, np.nonzero(np.isclose(s, v))[0]) for v in vals]


def _panel(ax, time, K, K_th, s, window=None):
    for c, (v, idx) in enumerate(_mode_groups(s)):
        col = PALETTE[c + 1]
        i = idx[0]
        ax.plot(time, K[:, 0, i], color=col, lw=1.3)
        ax.plot(time, K[:, 1, i], color=col, lw=1.3, ls="--")
        ax.plot(time, K_th[:, 0, i], color="k", lw=0.5, ls=":")
        ax.plot(time, K_th[:, 1, i], color="k", lw=0.5, ls=":")
    if window is not None and window[1] > window[0]:
        ax.axvspan(*window, color="0.85", lw=0)
    ax.set_xlim(0, time[-1])


def _draw(stem, time, s, curves, lesion, shares):
    import matplotlib.lines as mlines

    with paper_style():
        fig, axes = new_figure(len(GATE_STARTS), len(DEPTHS) + 1, height=8.2)
        for r, D in enumerate(DEPTHS):
            for c, start in enumerate(GATE_STARTS):
                K, K_th = curves[(D, c)]
                ax = axes[r, c]
                _panel(ax, time, K, K_th, s, (start, start + GATE_LENGTH))
                ax.set_title(f"D = {D}, b gated [{start}, {start + GATE_LENGTH})", fontsize=8)
                if c == 0:
                    ax.set_ylabel("mode strength K")
        ax = axes[-1, 0]
        _panel(ax, time, lesion[0], lesion[1], s, (0, LESION_GATE))
        ax.set_title(f"D = {LESION_DEPTH}: b gated [0, {LESION_GATE}), a's mode 1 lesioned",
                     fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("mode strength K")
        for j, (ax, label) in enumerate(((axes[-1, 1], "largest mode"),
                                         (axes[-1, 2], "smallest modes"))):
            for c, D in enumerate(DEPTHS):
                starts, sim, dense, theo = shares[D]
                pick = 0 if j == 0 else -1
                ax.plot(dense, theo[:, pick], color=PALETTE[c + 4], lw=1.0, label=f"D = {D}")
                ax.plot(starts, sim[:, pick], "o", ms=3, color=PALETTE[c + 4], mfc="none")
            ax.set_xlabel("gate start (step)")
            ax.set_ylabel("final K_b / s")
            ax.set_title(f"pathway b's share, {label}", fontsize=8)
            ax.set_ylim(-0.03, 0.55)
        axes[-1, 2].legend(fontsize=7, loc="lower right")
        handles = [mlines.Line2D([], [], color=PALETTE[c + 1], label=f"s = {v:.3g}")
                   for c, (v, _) in enumerate(_mode_groups(s))]
        handles += [mlines.Line2D([], [], color="0.3", label="pathway a"),
                    mlines.Line2D([], [], color="0.3", ls="--", label="pathway b (gated)"),
                    mlines.Line2D([], [], color="k", ls=":", lw=0.6, label="theory (reduced)"),
                    mlines.Line2D([], [], color="0.3", marker="o", ls="", mfc="none",
                                  label="simulation sweep")]
        fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=7)
        return save(fig, stem)
