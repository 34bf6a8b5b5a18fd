"""Kleinman, Achille, Soatto & Kao (arXiv 2308.12221): deep matrix completion after T steps of
pre-training on a rank-r matrix (experiment 1) or of an early deficit of observed entries
(experiment 2), final test error against T. One :class:`~dlnfusion.sweep.CompletionSeries`
sweep per depth, saved under ``out/kleinman2023l-completion/{quick,full}/D<depth>``; the
protocol, the time scale and the JSON: docs/figures/kleinman2023l-completion.md.
"""
from __future__ import annotations

import time as _time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dlnfusion.compare import completion_curves, completion_entries, switch_claims
from dlnfusion.plot import (curve_family, errorbar_row, new_figure, panel_label, paper_style,
                            save, spectrum_panel)
from dlnfusion.sweep import Completion, CompletionSeries, Sweep

from ._output import run_sweeps, write_outputs

ID = "kleinman2023l-completion"
TITLE = ("Deep matrix completion: pre-training on a higher-rank task and an early deficit "
         "(Kleinman et al. 2023)")
PAPER = "Kleinman, Achille, Soatto & Kao, arXiv 2308.12221, matrix-completion experiments"


class Config(NamedTuple):
    """A grid. Step counts are the paper's at learning rate ``lr``, simulated at
    ``lr·steps_scale`` with each divided by ``steps_scale`` (which must divide them)."""

    n: int = 100
    frobenius: float = 100.0
    depths: tuple = (1, 2, 3)
    seeds: tuple = (0, 1, 2)
    ranks: tuple = (2, 5, 10, 15)
    counts: tuple = (1000, 2000, 3000, 4000)
    switch_steps: tuple = (0, 1_000, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 100_000)
    steps_after: int = 30_000
    deficit_count: int = 1000
    exp2_counts: tuple = (1250, 1500, 1750, 2000)
    record_every: int = 1000
    lr: float = 0.2
    steps_scale: int = 8
    default_rank: int = 10
    default_count: int = 2000
    sv_run: dict = {"depth": 3, "rank": 10, "switch_step": 40_000}
    dtype: str = "float32"
    final_rank: int = 5


FULL = Config()
#: One seed, two ranks, the first and a late switch step (the damage has saturated by 40k in
#: full mode): the direction of the effects, no estimate of their size.
QUICK = Config(seeds=(0,), ranks=(5, 10), counts=(2000,), exp2_counts=(1250, 2000),
               switch_steps=(0, 40_000))


def _check(cfg: Config):
    """Step counts the time scale divides, increasing switch steps, sv_run in the grid."""
    k, sv = cfg.steps_scale, cfg.sv_run
    if any(t % k for t in (cfg.steps_after, cfg.record_every, *cfg.switch_steps)):
        raise ValueError(f"steps_scale ({k}) must divide every step count")
    if list(cfg.switch_steps) != sorted(set(cfg.switch_steps)):
        raise ValueError("the switch steps must increase")
    if sv["depth"] not in cfg.depths or sv["switch_step"] not in cfg.switch_steps or \
            sv["rank"] not in set(cfg.ranks) | {cfg.default_rank}:
        raise ValueError("sv_run must name a depth, rank and switch step of the grid")


def rows(cfg: Config) -> list:
    """The figure's rows (experiment, [(pre-training rank, observed count, label)], title):
    experiment 1's ranks at the default count and counts at the default rank, experiment 2."""
    return [(1, [(r, cfg.default_count, f"r = {r}") for r in cfg.ranks],
             f"exp. 1, {cfg.default_count} observed"),
            (1, [(cfg.default_rank, c, f"{c} obs.") for c in cfg.counts],
             f"exp. 1, pre-train rank {cfg.default_rank}"),
            (2, [(cfg.final_rank, c, f"n = {c}") for c in cfg.exp2_counts],
             f"exp. 2, first {cfg.deficit_count} during deficit")]


def series(cfg: Config) -> list:
    """Every curve's (experiment, pre-training rank, observed count): :func:`rows`' once each."""
    return list(dict.fromkeys((exp, r, c) for exp, row, _ in rows(cfg) for r, c, _ in row))


def sweeps(cfg: Config) -> dict:
    """One sweep per depth over (curve of :func:`series`, switch step T) and the seeds."""
    k = cfg.steps_scale
    runner = CompletionSeries(table=series(cfg), n=cfg.n, frobenius=cfg.frobenius,
                              final_rank=cfg.final_rank, deficit_count=cfg.deficit_count)
    fixed = {"steps_after": cfg.steps_after // k, "lr": cfg.lr * k, "dtype": cfg.dtype,
             "record_every": cfg.record_every // k, "n_singular": min(20, cfg.n),
             "record_until": (max(cfg.switch_steps) + cfg.steps_after) // k}
    grid = {"series": list(range(len(runner.table))),
            "deficit_end": [t // k for t in cfg.switch_steps]}
    return {f"D{D}": Sweep(grid, runner, {**fixed, "depth": D}, cfg.seeds) for D in cfg.depths}


def compute(out: Path, cfg: Config, quick: bool) -> tuple:
    """Run (or resume) every sweep: their Datasets by name, and each depth's seconds."""
    data, timing = {}, {}
    for name, sw in sweeps(cfg).items():
        start = _time.perf_counter()
        data.update(run_sweeps({name: sw}, out, ID, quick))
        timing[name[1:]] = _time.perf_counter() - start
    return data, timing


def run(out: Path, quick: bool = False, config: Config | None = None) -> dict:
    cfg = config if config is not None else (QUICK if quick else FULL)
    _check(cfg)
    data, timing = compute(out, cfg, quick)
    k, table, sv = cfg.steps_scale, series(cfg), cfg.sv_run
    time_paper = next(iter(data.values())).time.values * k     # in the paper's η = 0.2 steps
    # the first seed's records of the default curves; claims of the rank sweep and experiment 2
    shown = [(1, cfg.default_rank, cfg.default_count), (2, cfg.final_rank, max(cfg.exp2_counts))]
    entries, curves = [], []
    for D in cfg.depths:
        entries += completion_entries(data[f"D{D}"], table, k, cfg.steps_after // k,
                                      cfg.deficit_count, depth=D)
        curves += completion_curves(data[f"D{D}"], table, shown, k, depth=D)
    claims = switch_claims(entries, table[:len(cfg.ranks)] + [r for r in table if r[0] == 2])
    first = data[f"D{sv['depth']}"].sel(series=table.index((1, sv["rank"], cfg.default_count)),
                                        deficit_end=sv["switch_step"] // k).isel(seed=0)
    sv_run = {"depth": sv["depth"], "pretrain_rank": sv["rank"], "n_observed": cfg.default_count,
              "switch_step": sv["switch_step"], "seed": cfg.seeds[0], "time": time_paper.tolist(),
              "singular_values": first.singular_values.values.T.tolist(),
              "test_error": first.test_error.values.tolist()}
    payload = {
        "figure": ID, "paper": PAPER,
        "parameters": {
            "n": cfg.n, "frobenius": cfg.frobenius, "depths": list(cfg.depths),
            "seeds": list(cfg.seeds), "pretrain_ranks": list(cfg.ranks),
            "counts": list(cfg.counts), "default_rank": cfg.default_rank,
            "default_count": cfg.default_count, "final_rank": cfg.final_rank,
            "switch_steps": list(cfg.switch_steps), "steps_after": cfg.steps_after,
            "deficit_count": cfg.deficit_count, "exp2_counts": list(cfg.exp2_counts),
            "lr_paper": cfg.lr, "steps_scale": k, "lr_simulated": cfg.lr * k,
            "init_std": {str(D): Completion.default_scale(D) for D in cfg.depths},
            "dtype": cfg.dtype, "quick": quick},
        "timing_s": timing, "runs": entries, "curves_time": time_paper.tolist(),
        "curves": curves, "singular_values_run": sv_run, "claims": claims,
        "summary": claims["summary"]}
    for key, line in claims["summary"].items():
        print(f"  {key}: {line}")
    return write_outputs(out, ID, payload, lambda stem: _figure(
        cfg, entries, curves, time_paper, sv_run, stem), claims["summary"])


def _steps(t) -> str:
    return f"{t // 1000}k" if t % 1000 == 0 and t else f"{t}"


def _curve(entries, **match):
    """Mean and s.d. (0 for one seed) of the final test error against T of one table row."""
    sel = [e for e in entries if all(e[k] == v for k, v in match.items())]
    return [e["test_error_mean"] for e in sel], [e["test_error_sd"] or 0.0 for e in sel]


def _figure(cfg, entries, curves, time_paper, sv_run, stem):
    depths, x = list(cfg.depths), np.asarray(cfg.switch_steps) / 1000.0
    deep = sorted(depths, reverse=True)[:2]
    with paper_style():
        fig, axes = new_figure(ncols=max(len(depths), 3), nrows=4, height=8.2)
        for ax in [*axes[:3, len(depths):].flat, *axes[3, 1 + len(deep):]]:
            ax.set_visible(False)
        for row, (exp, curves_of_row, title) in enumerate(rows(cfg)):
            stats = [[_curve(entries, experiment=exp, depth=D, pretrain_rank=r, n_observed=c)
                      for r, c, _ in curves_of_row] for D in depths]
            errorbar_row(axes[row], x, stats, [label for *_, label in curves_of_row],
                         [f"D = {D}: {title}" for D in depths], ylabel="final test error",
                         xlabel=("switch step" if exp == 1 else "deficit length") +
                         " T (thousands)")
        # bottom row: singular values across the switch; test-error curves
        top = cfg.final_rank
        spectrum_panel(axes[3, 0], np.asarray(sv_run["time"]) / 1000,
                       sv_run["singular_values"], top, switch=sv_run["switch_step"] / 1000.0,
                       ylabel="singular values of the product")
        axes[3, 0].set_title(f"D = {sv_run['depth']}, rank {sv_run['pretrain_rank']} → {top} "
                             f"at T = {_steps(sv_run['switch_step'])}", fontsize=7)
        for ax, D in zip(axes[3, 1:], deep):
            sel = [c for c in curves if c["experiment"] == 1 and c["depth"] == D]
            curve_family(ax, time_paper / 1000, [c["test_error"] for c in sel],
                         [f"T = {_steps(c['switch_step'])}" for c in sel])
            ax.set(yscale="log", xlabel="step (thousands)", ylabel="test error (final target)")
            ax.set_title(f"D = {D}, rank {cfg.default_rank} → 5, {cfg.default_count} obs.",
                         fontsize=7)
        axes[3, 1].legend(fontsize=5.5, ncols=2, handlelength=1.2)
        for ax, letter in zip([a for a in axes.flat if a.get_visible()], "abcdefghijklmnop"):
            panel_label(ax, letter, -0.22, 1.04)
        fig.suptitle(f"Deep matrix completion (steps at η = {cfg.lr:g}; simulated at "
                     f"η = {cfg.lr * cfg.steps_scale:g}, steps / {cfg.steps_scale})",
                     fontsize=8)
        return save(fig, stem)
