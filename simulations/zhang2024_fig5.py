"""Zhang, Latham & Saxe (2024), Figure 5: under- and over-parameterized two-layer networks.

x_A, x_B ∈ R^50 with Σ_A = I, Σ_B = 3I, Σ_AB = 0; y = w*·x + ε, w* = 0.1 (every entry),
ε ~ N(0, 0.5²). Two-layer early (a, c) and late (b, d) fusion networks (width 100, weights
i.i.d. N(0, (1e-9)²), η = 0.04) trained by full-batch gradient descent on 700 samples
(under-parameterized: a, b) and on 70 samples (over-parameterized: c, d).

Full-batch gradient descent of a linear network on a dataset is gradient descent on the
dataset's empirical moments, so the runs are computed at population level on those moments
(identical, tests/test_simulate.py) — hundreds of times faster than touching the samples.
Generalization error = ½(W − w*)Σ(W − w*)ᵀ, the population loss minus its noise floor
½·0.5² (reported without the floor). The dotted gray line is the lowest generalization error
a unimodal network reaches on the same data (best modality, best time).

Every number comes from a sweep (:mod:`dlnfusion.sweep`), saved under
``out/zhang2024-fig5/{quick,full}/<sweep>``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from dlnfusion import NetworkSpec, Stats
from dlnfusion.plot import PALETTE, new_figure, paper_style, save
from dlnfusion.sweep import Sweep, Train

from ._output import write_outputs

ID = "zhang2024-fig5"
TITLE = "Figure 5: over- and under-parameterization, training loss and generalization error"
DIM, VAR_B, TEACHER, NOISE_STD = 50, 3.0, 0.1, 0.5
SAMPLES = {"under": 700, "over": 70}
WIDTH, INIT_STD, LR, MAX_STEPS, STRIDE = 100, 1e-9, 0.04, 40_000, 10
DATA_SEED = 1
ARCHITECTURES = {"early": 1, "late": 2}     # name → fusion layer


def true_stats() -> Stats:
    sigma = np.diag([1.0] * DIM + [VAR_B] * DIM)
    return Stats.from_teacher(sigma, [TEACHER] * (2 * DIM), dims=(DIM, DIM),
                              noise_var=NOISE_STD ** 2)


def _marginal(stats: Stats, m: int, allow_singular: bool) -> Stats:
    sl = stats.slices[m]
    return Stats(stats.sigma[sl, sl], stats.sigma_yx[:, sl], stats.sigma_yy, (stats.dims[m],),
                 (stats.names[m],), allow_singular)


@lru_cache(maxsize=None)
def _true(modality=None) -> Stats:
    """The population statistics (of one modality alone, if named): the evaluation's."""
    true = true_stats()
    return true if modality is None else _marginal(true, true.index(modality), False)


@lru_cache(maxsize=None)
def _empirical(regime, modality=None) -> Stats:
    """The moments of the regime's training samples (of one modality alone, if named)."""
    emp = true_stats().sample(SAMPLES[regime], seed=DATA_SEED).stats(allow_singular=True)
    return emp if modality is None else _marginal(emp, emp.index(modality), True)


def _network(fusion_layer=2, modality=None) -> NetworkSpec:
    if modality is None:
        return NetworkSpec.fusion(2, fusion_layer, width=WIDTH, input_dims=(DIM, DIM))
    return NetworkSpec.fusion(2, 2, width=WIDTH, input_dims=(DIM,), names=(modality,))


def sweeps(quick: bool) -> dict:
    """Every sweep of the figure, by name (quick and full are the same runs)."""
    train = {"lr": LR, "scale": INIT_STD, "steps": MAX_STEPS, "stop_loss": None,
             "record_every": STRIDE}
    runner = Train(_empirical, _network, eval_stats=_true, theory=False)
    return {"fusion": Sweep({"regime": list(SAMPLES), "fusion_layer": list(ARCHITECTURES.values())},
                            runner, train, [0]),
            "unimodal": Sweep({"regime": list(SAMPLES), "modality": list(true_stats().names)},
                              runner, train, [0])}


def compute(out: Path, quick: bool = False) -> dict:
    """Run (or resume) every sweep; their Datasets by name."""
    folder = Path(out) / ID / ("quick" if quick else "full")
    return {name: sw.run(folder / name, progress=False) for name, sw in sweeps(quick).items()}


def run(out: Path, quick: bool = False) -> dict:
    ds = compute(out, quick)
    floor = _true().min_loss()
    results, curves = {}, {}
    for regime, P in SAMPLES.items():
        uni = ds["unimodal"].sel(regime=regime).isel(seed=0)
        base = {str(m): float(np.nanmin(uni.eval_loss.sel(modality=m).values) - floor)
                for m in uni.modality.values}
        baseline = min(base.values())
        for arch, Lf in ARCHITECTURES.items():
            tr = ds["fusion"].sel(regime=regime, fusion_layer=Lf).isel(seed=0)
            gen = tr.eval_loss.values - floor
            i_min = int(np.nanargmin(gen))
            results[f"{regime}/{arch}"] = {
                "samples": P, "fusion_layer": Lf,
                "train_loss_final": float(tr.loss.values[-1]),
                "generalization_error_final": float(gen[-1]),
                "generalization_error_min": float(gen[i_min]),
                "time_of_min": float(tr.time.values[i_min]),
                "unimodal_baseline": baseline, "unimodal_baseline_per_modality": base,
                "final_worse_than_early_stopping": bool(gen[-1] > gen[i_min]),
                "final_below_unimodal_baseline": bool(gen[-1] < baseline),
                "status": str(tr.status.item()),
            }
            curves[f"{regime}/{arch}"] = (tr.time.values, tr.loss.values, gen, baseline)
    payload = {"figure": ID, "paper": "Zhang, Latham & Saxe, ICML 2024, Figure 5",
               "parameters": {"dim_per_modality": DIM, "sigma_A": 1.0, "sigma_B": VAR_B,
                              "teacher": TEACHER, "noise_std": NOISE_STD,
                              "samples": SAMPLES, "data_seed": DATA_SEED, "width": WIDTH,
                              "init_std": INIT_STD, "lr": LR, "max_steps": MAX_STEPS,
                              "generalization_error": "population loss minus noise floor"},
               "runs": results}
    result = write_outputs(out, ID, payload, lambda stem: _figure(curves, stem),
                           results)
    for key, r in results.items():
        print(f"{key:12s}: final train {r['train_loss_final']:.3g}, generalization final "
              f"{r['generalization_error_final']:.3f}, min {r['generalization_error_min']:.3f} "
              f"at step {r['time_of_min']:.0f}; unimodal baseline {r['unimodal_baseline']:.3f}")
    return result


def _figure(curves, stem):
    with paper_style():
        fig, axes = new_figure(ncols=4, width=6.9, height=2.0)
        order = ("under/early", "under/late", "over/early", "over/late")
        for k, key in enumerate(order):
            t, train, gen, baseline = curves[key]
            ax = axes[0, k]
            ax.plot(t[1:], train[1:], color=PALETTE[0], label="training loss")
            ax.plot(t[1:], gen[1:], color=PALETTE[4], label="generalization error")
            ax.axhline(baseline, color="0.5", ls=":", lw=1.0, label="best unimodal")
            ax.set_xscale("log")
            ax.set_xlabel("Step")
            regime, arch = key.split("/")
            n = SAMPLES[regime]
            ax.set_title(f"{arch} fusion, {n} samples", fontsize=7)
            ax.text(-0.2, 1.02, "abcd"[k], transform=ax.transAxes, fontweight="bold",
                    fontsize=9)
            ax.set_ylim(0, None)
            if k == 0:
                ax.set_ylabel("Loss")
                ax.legend(fontsize=5.5, loc="upper right")
        return save(fig, stem)
