"""The records and claims of deficit sweeps on classifiers (Kleinman, Achille & Soatto, CVPR
2023, Figures 4-6 and Section 4.4): one record per grid point of a
:class:`~dlnfusion.sweep.DeficitFit` sweep (accuracies and RSV measures over the seeds), and
the paper's claims answered from the records by paired differences over the seeds (the runs of
one seed share the initialization and batch order at every N, so differences are paired).

A claim holds when its mean paired difference exceeds twice its standard error (None with a
single seed, where there is no standard error).
"""
from __future__ import annotations

import numpy as np

from .rsv import rsv_histogram

__all__ = ["find_point", "rsv_point", "deficit_fit_points", "paired_change", "mean_sd_sample",
           "depth_claim", "deficit_claims", "reconstruction_answers"]


def rsv_point(r, layer, bins: int = 20) -> dict:
    """The RSV measures of the runs (seeds) of one grid point at one layer: the fraction of
    polarized units, the mean RSV, the mean |RSV|, the fraction of dead units (per seed) and
    the histogram of every run's units (``bins`` bins on [−1, 1])."""
    x, rsv = r.sel(layer=layer), r.rsv.sel(layer=layer).values
    return {"polarized": x.polarized.values.tolist(), "mean_rsv": x.mean_rsv.values.tolist(),
            "mean_abs_rsv": np.nanmean(np.abs(rsv), axis=-1).tolist(),
            "dead": x.dead.values.tolist(),
            "rsv_histogram": rsv_histogram(rsv, bins=bins)[0].tolist()}


def deficit_fit_points(ds, budget: int, bins: int = 20, names=None, **labels) -> list:
    """One record per grid point of a :class:`~dlnfusion.sweep.DeficitFit` sweep measured at two
    layers (the last hidden layer, then the fusion layer), in grid order: ``deficit``,
    ``labels``, the other swept parameters (renamed by ``names``), ``N``, the ``seeds``,
    ``budget``, ``test_acc``, each view's ``unimodal_acc_A``/``_B``, ``diverged``, the last
    hidden layer's :func:`rsv_point` measures (``rsv_layer``) and the fusion layer's
    (``fusion_layer``)."""
    last, fusion = ds.layer.values.tolist()
    swept = [d for d in ds.status.dims if d != "seed"]
    out = []
    for idx in np.ndindex(*(ds.sizes[d] for d in swept)):
        at = {d: ds[d].values[i] for d, i in zip(swept, idx)}
        r = ds.sel(at)
        other = {(names or {}).get(d, d): v.item() for d, v in at.items()
                 if d not in ("deficit", "N")}
        out.append({"deficit": str(at["deficit"]), **labels, **other, "N": int(at["N"]),
                    "seeds": r.seed.values.tolist(), "budget": budget,
                    "test_acc": r.test_acc.values.tolist(),
                    "unimodal_acc_A": r.unimodal_acc.isel(modality=0).values.tolist(),
                    "unimodal_acc_B": r.unimodal_acc.isel(modality=1).values.tolist(),
                    "diverged": (r.status == "diverged").values.tolist(), "rsv_layer": last,
                    **rsv_point(r, last, bins),
                    "fusion_layer": {"layer": fusion, **rsv_point(r, fusion, bins)}})
    return out


def paired_change(a, b) -> tuple:
    """(mean, standard error) over seeds of the paired difference b − a (NaN standard error
    with one seed)."""
    d = np.asarray(b, float) - np.asarray(a, float)
    se = float(np.std(d, ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")
    return float(np.mean(d)), se


def mean_sd_sample(values) -> tuple:
    """(mean, sample standard deviation) of ``values`` (0 for one value)."""
    v = np.asarray(values, float)
    return float(np.mean(v)), float(np.std(v, ddof=1)) if v.size > 1 else 0.0


def _holds(m, se):
    return bool(m > 2 * se) if np.isfinite(se) else None


def find_point(points, **match) -> dict:
    """The first record of ``points`` whose entries equal ``match`` (e.g. deficit, N)."""
    return next(p for p in points if all(p[k] == v for k, v in match.items()))


def _at(points, deficit, n_pre, N, condition="default"):
    return find_point(points, deficit=deficit, n_pre=n_pre, N=N, condition=condition)


def depth_claim(points, deficit, depths, depth_lengths, condition="default") -> dict:
    """Accuracy lost to ``deficit`` (N = max vs min of ``depth_lengths``) at every n_pre of
    ``depths`` with the change of the polarized fractions (last hidden and fusion layer), and
    whether the loss grows from the shallowest to the deepest stack (``holds``). ``points``:
    :func:`deficit_fit_points` records with ``n_pre`` and ``condition``."""
    drops = {}
    for n_pre in depths:
        a = _at(points, deficit, n_pre, min(depth_lengths), condition)
        b = _at(points, deficit, n_pre, max(depth_lengths), condition)
        m, se = paired_change(b["test_acc"], a["test_acc"])     # accuracy lost to the deficit
        pm, pse = paired_change(a["polarized"], b["polarized"])
        fm, fse = paired_change(a["fusion_layer"]["polarized"], b["fusion_layer"]["polarized"])
        drops[str(n_pre)] = {"accuracy_drop": m, "accuracy_drop_se": se,
                             "polarized_change": pm, "polarized_change_se": pse,
                             "fusion_polarized_change": fm, "fusion_polarized_change_se": fse}
    first, last = drops[str(min(depths))], drops[str(max(depths))]
    diff = last["accuracy_drop"] - first["accuracy_drop"]
    se = float(np.hypot(first["accuracy_drop_se"], last["accuracy_drop_se"]))
    return {"N": list(depth_lengths), "by_n_pre": drops, "drop_difference": diff,
            "drop_difference_se": se, "holds": _holds(diff, se)}


def deficit_claims(points, deficits, n_pre, lengths, depths, depth_lengths) -> dict:
    """The paper's two claims per deficit, from the ``default`` condition's records: a long
    deficit (N = max vs min of ``lengths`` at ``n_pre``) polarizes the units (last hidden
    layer: ``holds``; fusion layer: ``holds_at_fusion_layer``; with the changes of the mean RSV,
    the accuracy and B's unimodal accuracy), and deeper pre-fusion stacks suffer more
    (:func:`depth_claim` over ``depths``)."""
    out = {}
    n0, n1 = min(lengths), max(lengths)
    for d in deficits:
        a, b = _at(points, d, n_pre, n0), _at(points, d, n_pre, n1)
        dp, se_p = paired_change(a["polarized"], b["polarized"])
        dr, se_r = paired_change(a["mean_rsv"], b["mean_rsv"])
        da, se_a = paired_change(a["test_acc"], b["test_acc"])
        dub, se_ub = paired_change(a["unimodal_acc_B"], b["unimodal_acc_B"])
        fp, se_f = paired_change(a["fusion_layer"]["polarized"], b["fusion_layer"]["polarized"])
        out[f"{d}: long deficit polarizes"] = {
            "N": [n0, n1], "polarized_change": dp, "polarized_change_se": se_p,
            "mean_rsv_change": dr, "mean_rsv_change_se": se_r,
            "test_acc_change": da, "test_acc_change_se": se_a,
            "unimodal_B_change": dub, "unimodal_B_change_se": se_ub, "holds": _holds(dp, se_p),
            "fusion_polarized_change": fp, "fusion_polarized_change_se": se_f,
            "holds_at_fusion_layer": _holds(fp, se_f)}
        out[f"{d}: deeper pre-fusion stacks suffer more"] = depth_claim(
            points, d, depths, depth_lengths)
    return out


def reconstruction_answers(points, deficits, lengths, weight,
                           keys=("test_acc", "unimodal_acc_B", "polarized", "mean_rsv")) -> dict:
    """Does an auxiliary objective of weight ``weight`` remove a deficit's effect? Per deficit
    and measure of ``keys``: the effect of the deficit (N = max vs min of ``lengths``) without
    and with the objective (``reconstruction_weight`` 0 and ``weight``) and their paired
    difference; ``removes_polarization`` (the polarized fraction moves without the objective,
    not with it) and ``reduces_accuracy_loss`` (the objective keeps more accuracy)."""
    n0, n1 = min(lengths), max(lengths)

    def at(d, w, N):
        return find_point(points, deficit=d, reconstruction_weight=w, N=N)
    out = {}
    for d in deficits:
        row = {}
        for key in keys:
            eff = {w: paired_change(at(d, w, n0)[key], at(d, w, n1)[key]) for w in (0.0, weight)}
            diff = paired_change(
                np.asarray(at(d, 0.0, n1)[key]) - np.asarray(at(d, 0.0, n0)[key]),
                np.asarray(at(d, weight, n1)[key]) - np.asarray(at(d, weight, n0)[key]))
            row[key] = {"effect_without": eff[0.0][0], "effect_without_se": eff[0.0][1],
                        "effect_with": eff[weight][0], "effect_with_se": eff[weight][1],
                        "difference": diff[0], "difference_se": diff[1]}
        pol, acc = row["polarized"], row["test_acc"]
        row["removes_polarization"] = bool(abs(pol["effect_with"]) < 2 * pol["effect_with_se"]
                                           and pol["effect_without"]
                                           > 2 * pol["effect_without_se"])
        row["reduces_accuracy_loss"] = bool(acc["difference"] > 2 * acc["difference_se"])
        row["N"] = [n0, n1]
        out[d] = row
    return out
