"""Three to five modalities: the staircase of plateaus, the order, the transition times.

Two-layer late fusion (M = 3, 4, 5 scalar modalities, Figure 3c's training, random
covariances) and four-layer late fusion from random weights, simulated
(:class:`dlnfusion.sweep.TrainSequence`) against :func:`dlnfusion.theory.learning_sequence`
(:func:`dlnfusion.theory.sequence.sequence_record`); protocol and numbers on
docs/figures/multimodal-sequence.md. Sweeps are saved under
``out/multimodal-sequence/{quick,full}/<sweep>``.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from dlnfusion import NetworkSpec, Stats, theory as th
from dlnfusion.compare import (per_seed_sequence_case, point_sequence, sequence_case,
                               sequence_summary, sequence_time_errors)
from dlnfusion.plot import (PALETTE, error_histogram, new_figure, paper_style, save,
                            sequence_portrait, sequence_times_panel)
from dlnfusion.sweep import Predict, Sweep, TrainSequence

from ._output import run_sweeps, write_outputs

ID = "multimodal-sequence"
TITLE = "Three to five modalities: order, transition times and plateaus"
N_MODALITIES = (3, 4, 5)
N_COV, QUICK_COVARIANCES = 20, (0, 1, 5, 13, 16, 17)
WIDTH, INIT_STD, LR, MAX_STEPS, STOP_LOSS, STRIDE = 100, 1e-9, 0.04, 100_000, 1e-8, 5
SEEDS, QUICK_SEEDS = (0, 1, 2, 3, 4), (0, 1)
#: The last predicted transition must come before this fraction of the step budget.
BUDGET_FRACTION = 0.9
EXAMPLES = ((3, 5), (4, 16))       # (M, covariance seed) drawn in panels a-d
DEEP_CASES = tuple((M, c) for M in (3, 4) for c in range(4))
DEEP_U0, DEEP_MAX_STEPS, DEEP_STOP_LOSS = 0.1, 100_000, 1e-4
DEEP_SEEDS, DEEP_QUICK_SEEDS, DEEP_QUICK_CASES = (0, 1, 2, 3), (0, 1), (0, 2, 3)


def deep_covariance(M: int, seed: int) -> Stats:
    """Random correlations (a Wishart draw normalized, plus 0.3·I before normalizing),
    variances uniform in [0.5, 4], teacher uniform in [0.5, 1.5]."""
    rng = np.random.default_rng(1000 + 10 * M + seed)
    A = rng.normal(size=(M, M))
    S = A @ A.T / M + 0.3 * np.eye(M)
    sd = np.sqrt(rng.uniform(0.5, 4.0, size=M))
    S = S / np.sqrt(np.outer(np.diag(S), np.diag(S))) * np.outer(sd, sd)
    w = rng.uniform(0.5, 1.5, size=M)
    return Stats(S, (S @ w)[None, :], float(w @ S @ w), (1,) * M)


def covariance(n_modalities: int, covariance_seed: int) -> Stats:
    return Stats.random(dim=n_modalities, dims=(1,) * n_modalities, seed=covariance_seed)


def assumptions(seq) -> list:
    """Reasons, from the theory alone, why a covariance lies outside the analysis here."""
    return th.sequence.budget_caveats(seq, MAX_STEPS, BUDGET_FRACTION)


def _network(n_modalities, depth=2):
    return NetworkSpec.fusion(depth, depth, width=WIDTH, input_dims=(1,) * n_modalities)


def _deep_stats(case):
    return deep_covariance(*DEEP_CASES[case])


def _deep_network(case):
    return _network(DEEP_CASES[case][0], 4)


def _theory(n_modalities, covariance_seed):
    """The typical run's sequence, its assumptions and its departure from ‖Σ_yx,m‖."""
    return th.sequence.sequence_record(
        covariance(n_modalities, covariance_seed), scale=INIT_STD, width=WIDTH, lr=LR,
        max_steps=MAX_STEPS, budget_fraction=BUDGET_FRACTION, with_departure=True)


def _deep_theory(case, init=None):
    """From the typical initial norms, or from ``init`` (a run's alignment_seeds)."""
    return th.sequence.sequence_record(_deep_stats(case), 4, 4, scale=DEEP_U0, width=WIDTH,
                                       lr=LR, scheme="frobenius", init=init)


def _deep_per_seed(case, seed):
    init = th.sequence.seed_sequence_init(_deep_network(case), seed, "frobenius", DEEP_U0)
    return _deep_theory(case, init)


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name."""
    seeds, deep_seeds = (QUICK_SEEDS, DEEP_QUICK_SEEDS) if quick else (SEEDS, DEEP_SEEDS)
    grid = {"n_modalities": N_MODALITIES,
            "covariance_seed": list(QUICK_COVARIANCES if quick else range(N_COV))}
    cases = {"case": list(DEEP_QUICK_CASES if quick else range(len(DEEP_CASES)))}
    train = {"lr": LR, "scale": INIT_STD, "steps": MAX_STEPS, "stop_loss": STOP_LOSS,
             "record_every": STRIDE}
    deep = {**train, "scale": DEEP_U0, "scheme": "frobenius", "steps": DEEP_MAX_STEPS,
            "stop_loss": DEEP_STOP_LOSS}
    theory = lambda fn: Predict(fn, dims=th.sequence.SEQUENCE_DIMS)  # noqa: E731
    out = {"shallow": Sweep(grid, TrainSequence(covariance, _network), train, seeds),
           "shallow_theory": Sweep(grid, theory(_theory)),
           "deep": Sweep(cases, TrainSequence(_deep_stats, _deep_network), deep, deep_seeds),
           "deep_theory": Sweep(cases, theory(_deep_theory)),
           "deep_theory_per_seed": Sweep(cases, theory(_deep_per_seed), seeds=deep_seeds)}
    for M, c in EXAMPLES:
        out[f"example_{M}"] = Sweep({"covariance_seed": [c]}, TrainSequence(
            covariance, _network, record=True), {**train, "n_modalities": M}, seeds)
        out[f"example_{M}_theory"] = Sweep({"covariance_seed": [c]}, theory(_theory),
                                           {"n_modalities": M})
    return out


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    return run_sweeps(sweeps(quick), out, ID, quick)


def _cases(ds) -> list:
    sim, theory = ds["shallow"], ds["shallow_theory"].isel(seed=0)
    return [{"n_modalities": M, "covariance_seed": c, **sequence_case(
                 *(d.sel(n_modalities=M, covariance_seed=c) for d in (sim, theory)),
                 covariance(M, c).names)}
            for M in sim.n_modalities.values.tolist()
            for c in sim.covariance_seed.values.tolist()]


def _deep_cases(ds) -> list:
    typical = ds["deep_theory"].isel(seed=0)
    return [{"n_modalities": DEEP_CASES[k][0], "covariance_seed": DEEP_CASES[k][1],
             **per_seed_sequence_case(*(d.sel(case=k) for d in (
                 ds["deep"], typical, ds["deep_theory_per_seed"])),
                 deep_covariance(*DEEP_CASES[k]).names)}
            for k in ds["deep"].case.values.tolist()]


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    cases, deep = _cases(ds), _deep_cases(ds)
    summary = sequence_summary(cases, deep, N_MODALITIES)
    payload = {"figure": ID, "title": TITLE,
               "parameters": {"n_modalities": list(N_MODALITIES),
                              "covariances_per_M": ds["shallow"].sizes["covariance_seed"],
                              "width": WIDTH, "init_std": INIT_STD, "lr": LR,
                              "max_steps": MAX_STEPS, "stop_loss": STOP_LOSS, "stride": STRIDE,
                              "seeds": ds["shallow"].seed.values.tolist()},
               "deep_parameters": {"depth": 4, "fusion_layer": 4, "width": WIDTH,
                                   "init": "frobenius", "u0": DEEP_U0, "lr": LR,
                                   "max_steps": DEEP_MAX_STEPS, "stop_loss": DEEP_STOP_LOSS,
                                   "seeds": ds["deep"].seed.values.tolist()},
               "cases": cases, "deep_cases": deep, "summary": summary}
    result = write_outputs(out, ID, payload, lambda stem: _figure(cases, deep, ds, stem),
                           summary)
    s, t, d = summary, summary["theory"], summary["deep"]
    print(f"{s['inside']} of {len(cases)} covariances inside the assumptions; order = every "
          f"seed's in {s['order_match_inside']}; departs from ||Sigma_yx|| in "
          f"{s['departs_from_norm']} ({s['departure_mechanisms']})\n  times: median relative "
          f"error {t['median']:.2%}, max {t['max']:.2%} over {t['n']} transitions (leading "
          f"order: median {s['leading_order']['median']:.2%})\n  deep, per seed: order in "
          f"{d['order_match']} of {d['inside']}, times median {d['per_seed']['median']:.2%}, "
          f"max {d['per_seed']['max']:.2%}")
    return result


def _figure(cases, deep, ds, stem):
    err = lambda cs, k: sequence_time_errors(cs, k)["errors"]  # noqa: E731
    with paper_style():
        fig, axes = new_figure(ncols=2, nrows=4, width=6.9, height=10.0)
        for row, (M, c) in enumerate(EXAMPLES):
            e, st = ds[f"example_{M}"].isel(covariance_seed=0), covariance(M, c)
            traj = SimpleNamespace(time=e.time.values, loss=e.loss.values,
                                   maps=[e[f"map_{n}"].values for n in st.names])
            seq = point_sequence(ds[f"example_{M}_theory"].isel(covariance_seed=0, seed=0),
                                 st.names)
            sequence_portrait(st, seq, traj, axes=tuple(axes[row]), panels="abcd"[2 * row:][:2])
        sequence_times_panel(axes[2, 0], cases, lims=(10, 1e5), panel="e")
        sequence_times_panel(axes[3, 0], deep, per_seed=True, lims=(100, 2e5), panel="g")
        axes[3, 0].set_title("four layers, random weights (u0 = 0.1)", fontsize=7)
        error_histogram(axes[2, 1], [
            (err(cases, "times_leading_order"), dict(color="0.75", median="0.5",
                                                     label="leading order")),
            (err(cases, "times_theory"), dict(histtype="step", color=PALETTE[0], lw=1.2,
                                              median=PALETTE[0], label="finite init., GD rates"))],
            "f")
        error_histogram(axes[3, 1], [
            (err(deep, "times_leading_order"), dict(color="0.75", label="leading order")),
            (err(deep, "times_theory"), dict(histtype="step", color=PALETTE[3], lw=1.0,
                                             label="closed form, typical init.")),
            (err(deep, "times_theory_per_seed"), dict(histtype="step", color=PALETTE[0], lw=1.2,
                                                      label="closed form per seed"))], "h")
        return save(fig, stem)
