"""Kleinman, Achille, Soatto & Kao (arXiv 2308.12221): deep matrix completion, pre-training on
a higher-rank task (experiment 1) and an early deficit of observed entries (experiment 2).

Setting (``shared/specs/critical_periods.md``): n = 100, targets W = U Vᵀ/√r rescaled to
‖W‖_F = 100 (:func:`dlnfusion.data.completion.low_rank_target`; entries of mean square 1, so a
test error of 1 is that of predicting 0), products of D ∈ {1, 2, 3} bias-free n×n matrices
with Gaussian entries of s.d. (1e-3)^{1/D}/10, loss ½·mean squared error over the observed
entries, full-batch gradient descent; test error = mean squared error over all n² entries of
the final (rank-5) target. Everything is one call of
:func:`dlnfusion.training.completion.train_completion` per depth.

* Experiment 1: pre-train on a rank-r matrix for T steps, then switch to an independent rank-5
  matrix observed on the same entries and train 30 000 steps more. Rank sweep
  r ∈ {2, 5, 10, 15} at 2000 observed entries, and count sweep {1000, 2000, 3000, 4000} at
  r = 10 (the two sweeps share the point r = 10, 2000; the full product of ranks and counts is
  not run). T ∈ {0, 1k, 5k, 10k, 20k, 40k, 60k, 80k, 100k}.
* Experiment 2: one rank-5 matrix (the final target of experiment 1); during the first T steps
  only the first 1000 observed entries are seen, afterwards all n ∈ {1250, 1500, 1750, 2000}
  of them (nested sets from one order), again for 30 000 steps.

Seeds: seed s draws the initial weights (``seeds``), the order of the observed entries, the
pre-training targets (``low_rank_target(1000 + s, rank=r)``) and the final target
(``low_rank_target(2000 + s, rank=5)``). Full mode: 3 seeds.

Departures (measured on docs/figures/kleinman2023l-completion.md, with the full mode's numbers):
steps are simulated at η = 0.2·k with every step count divided by k (``steps_scale`` k = 8,
the same gradient-flow time η·t; ≤ 1 % on the final test errors, checked by
``benchmarks/bench_completion.py --check-scale``; ``steps_scale=1`` runs the paper's step
counts), and in float32 (the same final errors to five digits as float64).

Quick mode: one seed, ranks {5, 10}, counts {2000}, n ∈ {1250, 2000}, T ∈ {0, 20k, 60k} (the
damage has saturated by 40k in full mode), the same time scale: it checks the pipeline and
shows the direction of the effects, it is no estimate of their size.

Panels: (a–c) experiment 1 rank sweep, final test error against T, one panel per depth, mean ±
s.d. over seeds; (d–f) experiment 1 count sweep at r = 10; (g–i) experiment 2, per depth and n;
(j) the singular values of the learned product over time for one D = 3 run across the switch;
(k, l) test-error curves of the D = 3 and D = 2 runs at r = 10, 2000 entries.
"""
from __future__ import annotations

import time as _time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dlnfusion.data.completion import low_rank_target, nested_masks
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.sweep import Completion, Sweep
from dlnfusion.training.completion import default_scale

from ._output import write_outputs

ID = "kleinman2023l-completion"
TITLE = ("Deep matrix completion: pre-training on a higher-rank task and an early deficit "
         "(Kleinman et al. 2023)")
PAPER = "Kleinman, Achille, Soatto & Kao, arXiv 2308.12221, matrix-completion experiments"
PAPER_SWITCH_STEPS = (0, 1_000, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 100_000)


class Config(NamedTuple):
    """A grid. Step counts (``switch_steps``, ``steps_after``, ``record_every``) are in the
    paper's steps at learning rate ``lr``; they are simulated at ``lr·steps_scale`` with each
    divided by ``steps_scale`` (which must divide them)."""

    n: int = 100
    frobenius: float = 100.0
    depths: tuple = (1, 2, 3)
    seeds: tuple = (0, 1, 2)
    ranks: tuple = (2, 5, 10, 15)
    counts: tuple = (1000, 2000, 3000, 4000)
    switch_steps: tuple = PAPER_SWITCH_STEPS
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
QUICK = Config(seeds=(0,), ranks=(5, 10), counts=(2000,), exp2_counts=(1250, 2000),
               switch_steps=(0, 20_000, 60_000), sv_run={"depth": 3, "rank": 10,
                                                         "switch_step": 20_000})


def _check(cfg: Config):
    k = cfg.steps_scale
    for name in ("steps_after", "record_every"):
        if getattr(cfg, name) % k:
            raise ValueError(f"steps_scale ({k}) must divide {name}")
    for t in cfg.switch_steps:
        if t % cfg.record_every or t % k:
            raise ValueError("every switch step must be a multiple of record_every and of "
                             "steps_scale")
    if cfg.steps_after % cfg.record_every:
        raise ValueError("steps_after must be a multiple of record_every")
    sv = cfg.sv_run
    if sv["depth"] not in cfg.depths or sv["switch_step"] not in cfg.switch_steps or \
            sv["rank"] not in set(cfg.ranks) | {cfg.default_rank}:
        raise ValueError("sv_run must name a depth, rank and switch step of the grid")


def combos(cfg: Config):
    """Experiment 1's (pre-training rank, observed count) pairs: the rank sweep at the default
    count, then the count sweep at the default rank (the shared point once)."""
    out = [(r, cfg.default_count) for r in cfg.ranks]
    out += [(cfg.default_rank, c) for c in cfg.counts if (cfg.default_rank, c) not in out]
    return out


def sweeps(cfg: Config) -> dict:
    """The sweeps of one depth each: experiment 1's rank sweep (at the default count) and count
    sweep (at the default rank, without the rank sweep's point), experiment 2's count sweep.
    Every run is a seed; targets and masks are drawn from it as in the paper's setting."""
    k = cfg.steps_scale
    counts = sorted(set(cfg.counts) | set(cfg.exp2_counts) | {cfg.deficit_count,
                                                              cfg.default_count})

    def final(seed):
        return low_rank_target(2000 + seed, cfg.n, cfg.final_rank, cfg.frobenius)

    def mask(count, seed):
        return nested_masks(seed, cfg.n, counts)[counts.index(count)]

    def pretrain(rank, seed):
        return low_rank_target(1000 + seed, cfg.n, rank, cfg.frobenius)

    def deficit(seed):
        return mask(cfg.deficit_count, seed)

    ends = [t // k for t in cfg.switch_steps]
    fixed = {"steps_after": cfg.steps_after // k, "lr": cfg.lr * k,
             "record_every": cfg.record_every // k, "dtype": cfg.dtype,
             "n_singular": min(20, cfg.n), "record_until": (max(cfg.switch_steps)
                                                            + cfg.steps_after) // k}
    exp1 = Completion(final, mask, deficit_target=pretrain)
    count_sweep = [c for c in cfg.counts if (cfg.default_rank, c) not in combos(cfg)[:len(
        cfg.ranks)]]
    out = {}
    for D in cfg.depths:
        f = {**fixed, "depth": D}
        out[f"D{D}_rank"] = Sweep({"rank": list(cfg.ranks), "deficit_end": ends}, exp1,
                                  {**f, "count": cfg.default_count}, cfg.seeds)
        if count_sweep:
            out[f"D{D}_count"] = Sweep({"count": count_sweep, "deficit_end": ends}, exp1,
                                       {**f, "rank": cfg.default_rank}, cfg.seeds)
        out[f"D{D}_deficit"] = Sweep({"count": list(cfg.exp2_counts), "deficit_end": ends},
                                     Completion(final, mask, deficit_mask=deficit), f,
                                     cfg.seeds)
    return out


def compute(out: Path, cfg: Config, quick: bool) -> tuple:
    """Run (or resume) every sweep: their Datasets by name, and each depth's seconds."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    data, timing = {}, {}
    for name, sw in sweeps(cfg).items():
        start = _time.perf_counter()
        data[name] = sw.run(folder / name, progress=False)
        D = name.split("_")[0][1:]
        timing[D] = timing.get(D, 0.0) + _time.perf_counter() - start
    return data, timing


def _runs(cfg, data):
    """(experiment, depth, rank, count, switch step, Dataset selection) of every table entry,
    in the order of the paper's table."""
    k = cfg.steps_scale
    for D in cfg.depths:
        for r, c in combos(cfg):
            name = f"D{D}_rank" if c == cfg.default_count and r in cfg.ranks else f"D{D}_count"
            at = {"rank": r} if name.endswith("rank") else {"count": c}
            for T in cfg.switch_steps:
                yield 1, D, r, c, T, data[name].sel(**at, deficit_end=T // k)
        for c in cfg.exp2_counts:
            for T in cfg.switch_steps:
                yield 2, D, cfg.final_rank, c, T, data[f"D{D}_deficit"].sel(count=c,
                                                                             deficit_end=T // k)


def run(out: Path, quick: bool = False, config: Config | None = None) -> dict:
    cfg = config if config is not None else (QUICK if quick else FULL)
    _check(cfg)
    k = cfg.steps_scale
    data, timing = compute(out, cfg, quick)
    seeds = list(cfg.seeds)
    entries, curves = [], []
    sv = cfg.sv_run
    time_paper = next(iter(data.values())).time.values * k     # in the paper's η = 0.2 steps
    for exp, D, rank, count, T, ds in _runs(cfg, data):
        errs = ds.test_error_final.values
        last = ds.singular_values.sel(time=(T + cfg.steps_after) // k)
        e = {"experiment": exp, "depth": D, "pretrain_rank": rank, "n_observed": count,
             "switch_step": T, "seeds": seeds, "test_error_final": errs.tolist(),
             "test_error_mean": float(np.mean(errs)),
             "test_error_sd": float(np.std(errs, ddof=1)) if len(seeds) > 1 else None,
             "train_loss_final": ds.train_loss_final.values.tolist(),
             "status": [str(v) for v in ds.status.values],
             "singular_values_final_top10": last.values[:, :10].tolist()}
        if exp == 2:
            e["n_observed_deficit"] = cfg.deficit_count
            e["pretrain_rank_note"] = "experiment 2: one rank-5 target in both phases"
        entries.append(e)
        first = ds.sel(seed=seeds[0])
        if (exp == 1 and rank == cfg.default_rank and count == cfg.default_count) or \
                (exp == 2 and count == max(cfg.exp2_counts)):
            curves.append((D, exp, T, {
                "experiment": exp, "depth": D, "pretrain_rank": rank, "n_observed": count,
                "switch_step": T, "seed": seeds[0],
                "test_error": first.test_error.values.tolist(),
                "train_loss": first.train_loss.values.tolist(),
                "singular_values_top10": first.singular_values.values[:, :10].T.tolist()}))
        if exp == 1 and D == sv["depth"] and rank == sv["rank"] and \
                count == cfg.default_count and T == sv["switch_step"]:
            sv_run = {"depth": D, "pretrain_rank": rank, "n_observed": count,
                      "switch_step": T, "seed": seeds[0], "time": time_paper.tolist(),
                      "singular_values": first.singular_values.values.T.tolist(),
                      "test_error": first.test_error.values.tolist()}
    # the paper's order of the curves: depth, then experiment, then switch step
    curves = [c for _, _, _, c in sorted(curves, key=lambda x: x[:3])]

    claims = _claims(cfg, entries)
    payload = {
        "figure": ID, "paper": PAPER,
        "parameters": {
            "n": cfg.n, "frobenius": cfg.frobenius, "depths": list(cfg.depths),
            "seeds": seeds, "pretrain_ranks": list(cfg.ranks), "counts": list(cfg.counts),
            "default_rank": cfg.default_rank, "default_count": cfg.default_count,
            "final_rank": cfg.final_rank, "switch_steps": list(cfg.switch_steps),
            "steps_after": cfg.steps_after, "deficit_count": cfg.deficit_count,
            "exp2_counts": list(cfg.exp2_counts), "lr_paper": cfg.lr,
            "steps_scale": k, "lr_simulated": cfg.lr * k,
            "steps_unit": f"paper steps at lr {cfg.lr:g}; simulated steps = these / {k}",
            "init_std": {str(D): default_scale(D) for D in cfg.depths},
            "loss": "0.5 * mean squared error over the observed entries",
            "test_error": "mean squared error over all n^2 entries of the final target",
            "dtype": cfg.dtype, "quick": quick,
            "grid_reduction": "rank sweep at the default count and count sweep at the default "
                              "rank, not their full product",
            "seed_draws": "initial weights, order of observed entries, targets "
                          "(pre-training: seed 1000+s, final: seed 2000+s)"},
        "timing_s": {str(D): timing[str(D)] for D in cfg.depths},
        "runs": entries, "curves_time": time_paper.tolist(), "curves": curves,
        "singular_values_run": sv_run, "claims": claims,
        "summary": claims["summary"]}
    result = write_outputs(out, ID, payload,
                           lambda stem: _figure(cfg, entries, curves, time_paper, sv_run, stem),
                           claims["summary"])
    _print(cfg, entries, claims)
    return result


def _mean(entries, **match):
    sel = [e for e in entries if all(e[k] == v for k, v in match.items())]
    if not sel:
        return None
    assert len(sel) == 1
    return sel[0]["test_error_mean"]


def _claims(cfg: Config, entries) -> dict:
    """Damage = mean final test error after switching at the last T over that at T = 0."""
    T0, T1 = min(cfg.switch_steps), max(cfg.switch_steps)
    damage1 = {}
    for D in cfg.depths:
        for r, c in combos(cfg):
            a = _mean(entries, experiment=1, depth=D, pretrain_rank=r, n_observed=c,
                      switch_step=T0)
            b = _mean(entries, experiment=1, depth=D, pretrain_rank=r, n_observed=c,
                      switch_step=T1)
            damage1[f"D={D}/rank={r}/count={c}"] = {"T0": a, "Tmax": b, "ratio": b / a}
    damage2 = {}
    for D in cfg.depths:
        for c in cfg.exp2_counts:
            a = _mean(entries, experiment=2, depth=D, n_observed=c, switch_step=T0)
            b = _mean(entries, experiment=2, depth=D, n_observed=c, switch_step=T1)
            damage2[f"D={D}/n={c}"] = {"T0": a, "Tmax": b, "ratio": b / a}
    summary = {}
    for D in cfg.depths:
        summary[f"exp1 D={D}"] = ", ".join(
            f"r={r}: {damage1[f'D={D}/rank={r}/count={cfg.default_count}']['T0']:.3g} -> "
            f"{damage1[f'D={D}/rank={r}/count={cfg.default_count}']['Tmax']:.3g}"
            for r in cfg.ranks)
        summary[f"exp2 D={D}"] = ", ".join(
            f"n={c}: {damage2[f'D={D}/n={c}']['T0']:.3g} -> "
            f"{damage2[f'D={D}/n={c}']['Tmax']:.3g}" for c in cfg.exp2_counts)
    return {"definition": f"final test error (mean over seeds) switching at T={T0} -> at "
                          f"T={T1} (paper steps); ratio = damage",
            "experiment1": damage1, "experiment2": damage2, "summary": summary}


def _print(cfg, entries, claims):
    print("final test error (mean over seeds), switch at T = " +
          ", ".join(_steps(t) for t in cfg.switch_steps))
    for exp in (1, 2):
        for D in cfg.depths:
            for e0 in [e for e in entries if e["experiment"] == exp and e["depth"] == D
                       and e["switch_step"] == min(cfg.switch_steps)]:
                vals = [_mean(entries, experiment=exp, depth=D,
                              pretrain_rank=e0["pretrain_rank"], n_observed=e0["n_observed"],
                              switch_step=t) for t in cfg.switch_steps]
                tag = (f"rank {e0['pretrain_rank']:2d}" if exp == 1 else "deficit")
                print(f"  exp {exp} D={D} {tag} n={e0['n_observed']:4d}: " +
                      " ".join(f"{v:.3g}" for v in vals))


def _steps(t) -> str:
    return f"{t // 1000}k" if t % 1000 == 0 and t else f"{t}"


def _figure(cfg, entries, curves, time_paper, sv_run, stem):
    import matplotlib.pyplot as plt

    depths = list(cfg.depths)
    nd = len(depths)
    cols = max(nd, 3)
    with paper_style():
        fig, axes = new_figure(ncols=cols, nrows=4, height=8.2)
        x_of = lambda t: np.asarray(t) / 1000.0  # noqa: E731
        rows_spec = [
            ("rank", [(r, cfg.default_count) for r in cfg.ranks], 1,
             lambda r, c: f"r = {r}", f"exp. 1, {cfg.default_count} observed"),
            ("count", [(cfg.default_rank, c) for c in cfg.counts], 1,
             lambda r, c: f"{c} obs.", f"exp. 1, pre-train rank {cfg.default_rank}"),
            ("exp2", [(cfg.final_rank, c) for c in cfg.exp2_counts], 2,
             lambda r, c: f"n = {c}", f"exp. 2, first {cfg.deficit_count} during deficit"),
        ]
        letters = iter("abcdefghijklmnopqrstuvwxyz")

        def row_limits(exp, pairs):
            # One y range per row, shared by the depths, so that depths compare by eye.
            vals = [e["test_error_mean"] for e in entries if e["experiment"] == exp
                    and (e["pretrain_rank"], e["n_observed"]) in pairs
                    and np.isfinite(e["test_error_mean"]) and e["test_error_mean"] > 0]
            return (min(vals) / 3, max(vals) * 3) if vals else None

        for row, (_, pairs, exp, label, title) in enumerate(rows_spec):
            lim = row_limits(exp, pairs)
            for col in range(cols):
                ax = axes[row, col]
                if col >= nd:
                    ax.set_visible(False)
                    continue
                D = depths[col]
                for k, (r, c) in enumerate(pairs):
                    sel = sorted([e for e in entries if e["experiment"] == exp
                                  and e["depth"] == D and e["pretrain_rank"] == r
                                  and e["n_observed"] == c], key=lambda e: e["switch_step"])
                    m = np.array([e["test_error_mean"] for e in sel])
                    sd = np.array([e["test_error_sd"] if e["test_error_sd"] is not None
                                   else 0.0 for e in sel])
                    ax.errorbar(x_of([e["switch_step"] for e in sel]), m, yerr=sd,
                                color=PALETTE[(k + 1) % len(PALETTE)], marker="o", ms=2.5,
                                lw=1.0, capsize=1.5, elinewidth=0.6, label=label(r, c))
                ax.set_yscale("log", nonpositive="clip")
                if lim is not None:
                    ax.set_ylim(*lim)
                ax.set_title(f"D = {D}: {title}", fontsize=7)
                ax.set_xlabel("switch step T (thousands)" if exp == 1
                              else "deficit length T (thousands)")
                if col == 0:
                    ax.set_ylabel("final test error")
                    ax.legend(fontsize=6, handlelength=1.5)
                ax.text(-0.22, 1.04, next(letters), transform=ax.transAxes,
                        fontweight="bold", fontsize=9, va="bottom")
        # Row 4: singular values across the switch; test-error curves.
        ax = axes[3, 0]
        svs = np.asarray(sv_run["singular_values"], float)
        shown = min(svs.shape[0], 15)
        for i in range(shown):
            ax.plot(x_of(sv_run["time"]), svs[i], lw=0.8,
                    color=PALETTE[5] if i < cfg.final_rank else "0.55",
                    label=(f"top {cfg.final_rank}" if i == 0 else
                           f"next {shown - cfg.final_rank}" if i == cfg.final_rank else None))
        ax.legend(fontsize=6, handlelength=1.2, loc="lower right")
        ax.axvline(sv_run["switch_step"] / 1000.0, color=PALETTE[4], ls="--", lw=0.7)
        ax.set_yscale("log", nonpositive="clip")
        ax.set_ylim(1e-3, 2e2)
        ax.set_xlabel("step (thousands)")
        ax.set_ylabel("singular values of the product")
        ax.set_title(f"D = {sv_run['depth']}, rank {sv_run['pretrain_rank']} → "
                     f"{cfg.final_rank} at T = {_steps(sv_run['switch_step'])}", fontsize=7)
        ax.text(-0.22, 1.04, next(letters), transform=ax.transAxes, fontweight="bold",
                fontsize=9, va="bottom")
        deep = sorted(depths, reverse=True)[:2]
        for col, D in enumerate(deep, start=1):
            ax = axes[3, col]
            sel = [c for c in curves if c["experiment"] == 1 and c["depth"] == D]
            cmap = plt.get_cmap("viridis")
            for k, c in enumerate(sorted(sel, key=lambda c: c["switch_step"])):
                ax.plot(x_of(time_paper), c["test_error"], lw=0.8,
                        color=cmap(k / max(len(sel) - 1, 1)),
                        label=f"T = {_steps(c['switch_step'])}")
            ax.set_yscale("log", nonpositive="clip")
            ax.set_xlabel("step (thousands)")
            ax.set_ylabel("test error (final target)")
            ax.set_title(f"D = {D}, rank {cfg.default_rank} → 5, {cfg.default_count} obs.",
                         fontsize=7)
            if col == 1:
                ax.legend(fontsize=5.5, ncols=2, handlelength=1.2)
            ax.text(-0.22, 1.04, next(letters), transform=ax.transAxes, fontweight="bold",
                    fontsize=9, va="bottom")
        for col in range(1 + len(deep), cols):
            axes[3, col].set_visible(False)
        fig.suptitle(f"Deep matrix completion (steps at η = {cfg.lr:g}; simulated at "
                     f"η = {cfg.lr * cfg.steps_scale:g}, steps / {cfg.steps_scale})",
                     fontsize=8)
        return save(fig, stem)
