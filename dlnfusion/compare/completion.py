"""Summaries of deep matrix-completion sweeps (:class:`~dlnfusion.sweep.CompletionSeries` over
``series`` and ``deficit_end``): the table of final test errors per curve and switch step, the
first seed's records of chosen curves, and the damage of a late switch."""
from __future__ import annotations

import numpy as np

__all__ = ["completion_entries", "completion_curves", "switch_claims"]


def _head(experiment, rank, count, end, steps_scale, labels) -> dict:
    return {"experiment": experiment, **labels, "pretrain_rank": rank, "n_observed": count,
            "switch_step": int(end) * steps_scale}


def completion_entries(ds, table, steps_scale: int = 1, steps_after: int = 0,
                       deficit_count: int | None = None, **labels) -> list:
    """One entry per curve of ``table`` (its rows (experiment, pre-training rank, observed
    count), indexed by ``series``) and switch step, in that order: ``experiment``, the
    ``labels`` (e.g. ``depth=3``), ``pretrain_rank``, ``n_observed``, ``switch_step``
    (``deficit_end · steps_scale``), ``seeds``, every seed's ``test_error_final``, their mean
    ``test_error_mean`` and standard deviation ``test_error_sd`` (ddof 1; None for one seed),
    ``train_loss_final``, ``status`` and ``singular_values_final_top10`` (the ten largest at
    each run's last step, ``deficit_end + steps_after``); experiment 2's entries also hold
    ``n_observed_deficit`` (``deficit_count``, if given)."""
    seeds, out = [int(s) for s in ds.seed.values], []
    for i, (experiment, rank, count) in enumerate(table):
        for end in ds.deficit_end.values:
            run = ds.sel(series=i, deficit_end=end)
            errs = run.test_error_final.values
            out.append({
                **_head(experiment, rank, count, end, steps_scale, labels), "seeds": seeds,
                "test_error_final": errs.tolist(), "test_error_mean": float(np.mean(errs)),
                "test_error_sd": float(np.std(errs, ddof=1)) if len(seeds) > 1 else None,
                "train_loss_final": run.train_loss_final.values.tolist(),
                "status": [str(v) for v in run.status.values],
                "singular_values_final_top10": run.singular_values.sel(
                    time=end + steps_after).values[:, :10].tolist(),
                **({"n_observed_deficit": deficit_count}
                   if experiment == 2 and deficit_count is not None else {})})
    return out


def completion_curves(ds, table, rows, steps_scale: int = 1, **labels) -> list:
    """The first seed's records of the curves of ``table`` that ``rows`` names, at every switch
    step, in the order of :func:`completion_entries`: its keys up to ``switch_step``, ``seed``,
    ``test_error``, ``train_loss`` (time) and ``singular_values_top10`` (10, time)."""
    out = []
    for i, row in enumerate(table):
        if tuple(row) not in {tuple(r) for r in rows}:
            continue
        for end in ds.deficit_end.values:
            run = ds.sel(series=i, deficit_end=end).isel(seed=0)
            out.append({**_head(*row, end, steps_scale, labels), "seed": int(run.seed),
                        "test_error": run.test_error.values.tolist(),
                        "train_loss": run.train_loss.values.tolist(),
                        "singular_values_top10": run.singular_values.values[:, :10].T.tolist()})
    return out


def switch_claims(entries, summarized=None) -> dict:
    """The damage of a late switch, from the entries of :func:`completion_entries` (each with a
    ``depth`` label): per curve the mean final test error switching at the first switch step
    (``T0``), at the last (``Tmax``) and ``ratio`` = Tmax / T0, under ``experiment1`` (keys
    ``D=<depth>/rank=<rank>/count=<count>``) or ``experiment2`` (``D=<depth>/n=<count>``);
    ``summary``: per experiment and depth one line of "T0 -> Tmax" over the curves
    (experiment, rank, count) in ``summarized`` (default: all), and their ``definition``."""
    curves = {}
    for e in entries:
        key = (e["experiment"], e["depth"], e["pretrain_rank"], e["n_observed"])
        curves.setdefault(key, []).append(e)
    damage, summary, steps = {1: {}, 2: {}}, {}, set()
    for (exp, depth, rank, count), sel in curves.items():
        sel = sorted(sel, key=lambda e: e["switch_step"])
        steps |= {sel[0]["switch_step"], sel[-1]["switch_step"]}
        a, b = sel[0]["test_error_mean"], sel[-1]["test_error_mean"]
        damage[exp][f"D={depth}/rank={rank}/count={count}" if exp == 1 else
                    f"D={depth}/n={count}"] = {"T0": a, "Tmax": b, "ratio": b / a}
        if summarized is None or (exp, rank, count) in summarized:
            summary.setdefault(f"exp{exp} D={depth}", []).append(
                f"{'r' if exp == 1 else 'n'}={rank if exp == 1 else count}: {a:.3g} -> {b:.3g}")
    T0, T1 = min(steps), max(steps)
    return {"definition": f"final test error (mean over seeds) switching at T={T0} -> at "
                          f"T={T1} (paper steps); ratio = damage",
            "experiment1": damage[1], "experiment2": damage[2],
            "summary": {key: ", ".join(v) for key, v in summary.items()}}
