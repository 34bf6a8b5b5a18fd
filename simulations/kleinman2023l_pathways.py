"""Kleinman, Achille, Soatto & Kao (2023), Figs. 2-3: critical periods of two parallel pathways.

Two deep linear pathways learn the hierarchical task while pathway b is gated (in the lesion
run, with pathway a's largest mode lesioned): the simulated mode strengths against the exact
per-mode gradient-descent map and the closed-form split (:func:`dlnfusion.theory.predicted_split`).
Protocol, panels and numbers: docs/figures/kleinman2023l-pathways.md. Every sweep is saved under
``out/kleinman2023l-pathways/{quick,full}/<sweep>``; a re-run resumes where it stopped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlnfusion import Gate, Lesion, NetworkSpec
from dlnfusion import theory as th
from dlnfusion.data import hierarchy
from dlnfusion.plot import (PALETTE, mode_groups, new_figure, paper_style, pathway_modes_panel,
                            save, style_legend)
from dlnfusion.sweep import Pathways, Predict, ReducedPathways, Sweep

from ._output import run_sweeps, write_outputs

ID = "kleinman2023l-pathways"
TITLE = "Critical periods of two parallel pathways: gating deficits and a lesion"
DEPTHS = (2, 3, 4)
GATE_STARTS, GATE_LENGTH = (0, 400, 750), 150
LESION_DEPTH, LESION_GATE, LESION_MODE = 3, 200, 0
WIDTH, STRENGTH, LR, STEPS, STRIDE = 100, 0.01, 0.01, 1000, 5
JITTER = 0.01
SWEEP_STARTS, QUICK_SWEEP_STARTS = np.arange(0, 900, 50.0), np.arange(0, 900, 150.0)
#: The theory's curve of the final share against the gate start.
THEORY_STARTS = np.arange(0, 900, 10.0)
#: The runs of the trajectory panels by name → their ``gate``: b gated from a start of
#: GATE_STARTS for GATE_LENGTH steps, or "none" (the control).
PANEL = {**{k: f"{t:g}" for k, t in zip(("early", "middle", "late"), GATE_STARTS)},
         "none": "none"}
#: Every run's training: the parameters of the Pathways and ReducedPathways runners.
TRAINING = {"lr": LR, "steps": STEPS, "record_every": STRIDE, "strength": STRENGTH}
GATED = 1          # pathway b


def task():
    """The hierarchical task, its input repeated for the two pathways."""
    return hierarchy(pathways=2)


def network(depth):
    return NetworkSpec.pathways((depth, depth), 8, 15, width=WIDTH)


def gate_window(gate, gate_length=GATE_LENGTH) -> tuple:
    """(start, length) of b's gate: ``gate`` "none" or the start in steps."""
    return (0.0, 0.0) if gate == "none" else (float(gate), float(gate_length))


def windows(gate, gate_length=GATE_LENGTH, lesion=None) -> list:
    """Pathway b gated (:func:`gate_window`); with ``lesion``, that mode of pathway a lesioned
    for good."""
    start, length = gate_window(gate, gate_length)
    out = [Gate("b", start=start, end=start + length)]
    return out + ([] if lesion is None else [Lesion("a", mode=lesion, start=0, end=None)])


def _labels(starts) -> list:
    """The panels' gates and gates from ``starts``, each once."""
    return list(dict.fromkeys([*PANEL.values(), *(f"{t:g}" for t in starts)]))


def _closed_form(depth, gate):
    s = task().modes(0)[1]
    p = th.predicted_split(s, STRENGTH ** (1 / depth), depth, LR, *gate_window(gate), STEPS,
                           gated=GATED)
    return {"K_a": p.K_a, "K_b": p.K_b, "s": s}


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name."""
    panel = {"depth": DEPTHS, "gate": list(PANEL.values())}
    lesion = {**TRAINING, "gate": "0", "gate_length": LESION_GATE, "lesion": LESION_MODE}
    starts = QUICK_SWEEP_STARTS if quick else SWEEP_STARTS
    return {
        "network": Sweep({"depth": DEPTHS, "gate": _labels(starts)},
                         Pathways(task, network, windows), TRAINING),
        "jittered": Sweep(panel, Pathways(task, network, windows),
                          {**TRAINING, "jitter": JITTER}, seeds=[1]),
        "theory": Sweep({"depth": DEPTHS, "gate": _labels(THEORY_STARTS)},
                        ReducedPathways(task, network, windows), TRAINING),
        "closed_form": Sweep(panel, Predict(_closed_form, dims=dict.fromkeys(
            ("K_a", "K_b", "s"), ("mode",)))),
        "lesion": Sweep({"depth": [LESION_DEPTH]}, Pathways(task, network, windows), lesion),
        "lesion_theory": Sweep({"depth": [LESION_DEPTH]},
                               ReducedPathways(task, network, windows), lesion)}


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    res = run_sweeps(sweeps(quick), out, ID, quick)
    if any((res[k].status == "diverged").any() for k in ("network", "jittered", "lesion")):
        raise RuntimeError("a pathway run diverged")
    return res


def _ab(key, K) -> dict:
    """Final K (pathway, mode) of pathways a and b as the JSON's K_a_<key>, K_b_<key>."""
    return {f"K_a_{key}": K[0].tolist(), f"K_b_{key}": K[1].tolist()}


def _by_depth(values) -> dict:
    return dict(zip(map(str, DEPTHS), np.asarray(values).tolist()))


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    cf = ds["closed_form"].isel(seed=0)
    s = cf.s.isel(depth=0, gate=0).values
    gates = list(PANEL.values())
    K, K_th, K_jit = (ds[k].K.isel(seed=0).sel(gate=gates) for k in
                      ("network", "theory", "jittered"))
    closed = np.stack([cf.K_a.values, cf.K_b.values], axis=2)   # (depth, gate, pathway, mode)
    rest = ("gate", "time", "pathway", "mode")
    K_les, K_les_th = (ds[k].K.isel(seed=0, depth=0).values for k in ("lesion", "lesion_theory"))
    runs = [{"depth": D, **dict(zip(("gate_start", "gate_length"), gate_window(g))),
             "gated_pathway": "b", "lesion": None, "singular_values": s.tolist(),
             **_ab("final", K.sel(depth=D, gate=g).values[-1]),
             **_ab("theory", K_th.sel(depth=D, gate=g).values[-1]),
             **_ab("closed_form", closed[d, r]),
             **_ab("final_jittered", K_jit.sel(depth=D, gate=g).values[-1])}
            for d, D in enumerate(DEPTHS) for r, g in enumerate(gates)]
    runs.append({"depth": LESION_DEPTH, "gate_start": 0.0, "gate_length": float(LESION_GATE),
                 "gated_pathway": "b", "lesion": {"pathway": "a", "mode": LESION_MODE,
                                                  "start": 0, "end": None},
                 "singular_values": s.tolist(), **_ab("final", K_les[-1]),
                 **_ab("theory", K_les_th[-1])})
    summary = {
        "max_abs_error_sim_vs_reduced": {**_by_depth(abs(K - K_th).max(rest)),
                                         "lesion": float(np.max(np.abs(K_les - K_les_th)))},
        "max_abs_error_jittered_vs_reduced": _by_depth(abs(K_jit - K_th).max(rest)),
        "max_rel_error_closed_form_vs_reduced": _by_depth(np.max(
            np.abs(closed - K_th.isel(time=-1).values) / s, axis=(1, 2, 3))),
        "share_b_final": {str(D): {n: float(np.mean(K.sel(depth=D, gate=g).values[-1, 1] / s))
                                   for n, g in PANEL.items()} for D in DEPTHS}}
    starts = QUICK_SWEEP_STARTS if quick else SWEEP_STARTS
    shares = {D: (starts, *(ds[k].K.isel(seed=0, time=-1).sel(
        depth=D, pathway="b", gate=[f"{t:g}" for t in x]).values / s for k, x in (
            ("network", starts), ("theory", THEORY_STARTS)))) for D in DEPTHS}
    payload = {"id": ID, "title": TITLE, "quick": quick,
               "settings": {"width": WIDTH, "strength": STRENGTH, "lr": LR, "steps": STEPS,
                            "gate_length": GATE_LENGTH, "jitter": JITTER,
                            "loss": "0.5 * sum over items of squared error",
                            "theory": "dlnfusion.reduced.reduced_pathways (exact GD map per "
                                      "mode); closed form: dlnfusion.theory.predicted_split "
                                      "(gradient flow)"},
               "runs": runs,
               "sweep": {str(D): {"gate_start": v[0].tolist(), "share_b_sim": v[1].tolist(),
                                  "gate_start_theory": THEORY_STARTS.tolist(),
                                  "share_b_theory": v[2].tolist()} for D, v in shares.items()},
               "summary": summary}
    return write_outputs(out, ID, payload, lambda stem: _draw(
        stem, s, K, K_th, (K_les, K_les_th), shares), summary)


def _draw(stem, s, K_sim, K_theory, lesion, shares):
    time = K_sim.time.values
    with paper_style():
        fig, axes = new_figure(len(GATE_STARTS), len(DEPTHS) + 1, height=8.2)
        for r, D in enumerate(DEPTHS):
            for c, t in enumerate(GATE_STARTS):
                pathway_modes_panel(axes[r, c], time, *(k.sel(depth=D, gate=f"{t:g}").values
                                                        for k in (K_sim, K_theory)), s,
                                    (t, t + GATE_LENGTH))
                axes[r, c].set_title(f"D = {D}, b gated [{t}, {t + GATE_LENGTH})", fontsize=8)
        pathway_modes_panel(axes[-1, 0], time, *lesion, s, (0, LESION_GATE))
        axes[-1, 0].set_title(f"D = {LESION_DEPTH}: b gated [0, {LESION_GATE}), a's mode 1 "
                              "lesioned", fontsize=8)
        axes[-1, 0].set_xlabel("step")
        for ax in axes[:, 0]:
            ax.set_ylabel("mode strength K")
        for ax, pick, label in ((axes[-1, 1], 0, "largest mode"),
                                (axes[-1, 2], -1, "smallest modes")):
            for c, D in enumerate(DEPTHS):
                starts, sim, theo = shares[D]
                ax.plot(THEORY_STARTS, theo[:, pick], color=PALETTE[c + 4], lw=1.0,
                        label=f"D = {D}")
                ax.plot(starts, sim[:, pick], "o", ms=3, color=PALETTE[c + 4], mfc="none")
            ax.set(xlabel="gate start (step)", ylabel="final K_b / s", ylim=(-0.03, 0.55))
            ax.set_title(f"pathway b's share, {label}", fontsize=8)
        axes[-1, 2].legend(fontsize=7, loc="lower right")
        style_legend(fig, [("-", f"s = {v:.3g}", {"color": PALETTE[c + 1]})
                           for c, (v, _) in enumerate(mode_groups(s))]
                     + [("-", "pathway a"), ("--", "pathway b (gated)"),
                        (":", "theory (reduced)", {"color": "k", "lw": 0.6}),
                        ("o", "simulation sweep")], ncol=4, fontsize=7)
        return save(fig, stem)
