"""dlnfusion.compare.deficit_records and arm_delays: records of deficit sweeps and the claims
answered from them, against values computed by hand; plot.seed_errorbars."""
import numpy as np
import pytest
import xarray as xr

from dlnfusion.compare import (arm_delays, deficit_claims, deficit_fit_points, depth_claim,
                               find_point, mean_sd_sample, paired_change,
                               reconstruction_answers, rsv_point)


def test_paired_change_and_mean_sd():
    m, se = paired_change([1.0, 2.0, 3.0], [2.0, 4.0, 3.0])         # differences 1, 2, 0
    assert m == pytest.approx(1.0) and se == pytest.approx(np.std([1, 2, 0], ddof=1) / np.sqrt(3))
    assert np.isnan(paired_change([1.0], [2.0])[1])
    assert mean_sd_sample([1.0, 3.0]) == (2.0, pytest.approx(np.sqrt(2.0)))
    assert mean_sd_sample([5.0]) == (5.0, 0.0)


def _fit_sweep():
    """A DeficitFit-like Dataset over weight × deficit × N × seed with two layers (3, 2)."""
    dims, shape = ("weight", "deficit", "N", "seed"), (2, 2, 2, 2)
    rng = np.random.default_rng(0)
    rsv = rng.uniform(-1, 1, shape + (2, 4))
    rsv[..., 1, 3] = np.nan                                       # a dead unit, fusion layer
    status = np.full(shape, "max_steps", dtype=object)
    status[1, 1, 1, 0] = "diverged"
    return xr.Dataset(
        {"test_acc": (dims, rng.uniform(0.5, 1, shape)),
         "unimodal_acc": (dims + ("modality",), rng.uniform(0, 1, shape + (2,))),
         "status": (dims, status.astype(str)), "rsv": (dims + ("layer", "unit"), rsv),
         "polarized": (dims + ("layer",), rng.uniform(0, 1, shape + (2,))),
         "mean_rsv": (dims + ("layer",), rng.uniform(-1, 1, shape + (2,))),
         "dead": (dims + ("layer",), rng.uniform(0, 1, shape + (2,)))},
        {"weight": [0.0, 1.0], "deficit": ["blur", "dissociate"], "N": [0, 5], "seed": [0, 1],
         "modality": ["A", "B"], "layer": [3, 2], "unit": np.arange(4)})


def test_deficit_fit_points_and_rsv_point():
    ds = _fit_sweep()
    pts = deficit_fit_points(ds, 7, 4, {"weight": "reconstruction_weight"}, n_pre=1)
    assert len(pts) == 8
    assert list(pts[0])[:6] == ["deficit", "n_pre", "reconstruction_weight", "N", "seeds",
                                "budget"]
    assert [(p["reconstruction_weight"], p["deficit"], p["N"]) for p in pts[:3]] == [
        (0.0, "blur", 0), (0.0, "blur", 5), (0.0, "dissociate", 0)]
    p = find_point(pts, reconstruction_weight=1.0, deficit="dissociate", N=5)
    r = ds.sel(weight=1.0, deficit="dissociate", N=5)
    assert p["test_acc"] == r.test_acc.values.tolist() and p["budget"] == 7
    assert p["unimodal_acc_B"] == r.unimodal_acc.values[:, 1].tolist()
    assert p["diverged"] == [True, False] and p["rsv_layer"] == 3
    assert p["fusion_layer"]["layer"] == 2
    assert p["polarized"] == r.polarized.values[:, 0].tolist()
    fusion = r.rsv.values[:, 1]                                   # (seed, unit)
    assert p["fusion_layer"]["mean_abs_rsv"] == pytest.approx(
        np.nanmean(np.abs(fusion), axis=-1).tolist())
    hist = rsv_point(r, 2, bins=4)["rsv_histogram"]
    live = fusion[~np.isnan(fusion)]
    assert hist == pytest.approx((np.histogram(live, 4, (-1, 1))[0] / live.size).tolist())


def _points(acc_drop, pol_gain):
    """Records of two depths and conditions: the deficit (N = 5) lowers the accuracy by
    ``acc_drop[n_pre]`` and raises the polarized fraction by ``pol_gain`` in both seeds, with a
    seed-to-seed spread of 0.01 in the change."""
    out = []
    for c in ("default", "other"):
        for n_pre in (1, 2):
            for N in (0, 5):
                k = N / 5
                out.append({"deficit": "blur", "n_pre": n_pre, "condition": c, "N": N,
                            "test_acc": [0.9 - k * acc_drop[n_pre], 0.9 - k * (acc_drop[n_pre]
                                                                               + 0.01)],
                            "polarized": [0.1 + k * pol_gain, 0.1 + k * (pol_gain + 0.01)],
                            "mean_rsv": [0.0, 0.0], "unimodal_acc_B": [0.5, 0.5],
                            "fusion_layer": {"polarized": [0.2, 0.2]}})
    return out


def test_depth_and_deficit_claims():
    pts = _points({1: 0.02, 2: 0.10}, 0.3)
    c = depth_claim(pts, "blur", (1, 2), (0, 5))
    assert c["by_n_pre"]["1"]["accuracy_drop"] == pytest.approx(0.025)
    assert c["by_n_pre"]["2"]["accuracy_drop_se"] == pytest.approx(0.005)
    assert c["drop_difference"] == pytest.approx(0.08)
    assert c["drop_difference_se"] == pytest.approx(np.hypot(0.005, 0.005)) and c["holds"]
    claims = deficit_claims(pts, ("blur",), 2, (0, 5), (1, 2), (0, 5))
    pol = claims["blur: long deficit polarizes"]
    assert pol["polarized_change"] == pytest.approx(0.305) and pol["holds"]
    assert pol["fusion_polarized_change"] == 0 and pol["holds_at_fusion_layer"] is False
    assert pol["test_acc_change"] == pytest.approx(-0.105) and pol["N"] == [0, 5]
    assert claims["blur: deeper pre-fusion stacks suffer more"] == c
    assert not depth_claim(_points({1: 0.05, 2: 0.05}, 0.3), "blur", (1, 2), (0, 5),
                           "other")["holds"]


def test_reconstruction_answers():
    pts = []
    for w, drop in ((0.0, 0.2), (1.0, 0.05)):
        for N in (0, 5):
            k = N / 5
            pts.append({"deficit": "blur", "reconstruction_weight": w, "N": N,
                        "test_acc": [0.9 - k * drop, 0.9 - k * (drop + 0.02)],
                        "polarized": [0.1 + k * 4 * drop, 0.1 + k * 4 * drop * 1.1],
                        "unimodal_acc_B": [0.5, 0.5], "mean_rsv": [0.0, 0.1]})
    a = reconstruction_answers(pts, ("blur",), (0, 5), 1.0)["blur"]
    assert a["test_acc"]["effect_without"] == pytest.approx(-0.21)
    assert a["test_acc"]["effect_with"] == pytest.approx(-0.06)
    assert a["test_acc"]["difference"] == pytest.approx(0.15)
    assert a["test_acc"]["difference_se"] == pytest.approx(0.0, abs=1e-15)
    assert a["reduces_accuracy_loss"] is True                   # 0.15 > 2 s.e. (no spread)
    # the polarized fraction moves with the objective too (0.21 ± 0.01): not removed
    assert a["polarized"]["effect_with"] == pytest.approx(0.21)
    assert a["removes_polarization"] is False
    assert a["N"] == [0, 5]


def test_arm_delays():
    pts = []
    for w, delay in ((0.0, 100.0), (1.0, 40.0)):
        for N in (0, 50):
            pts.append({"depth": 2, "fusion_layer": 2, "rho": 0.5, "deficit": "delete", "N": N,
                        "reconstruction_weight": w,
                        "t_B_sim": [500.0 + delay * N / 50, np.nan], "final_loss": [1e-7, 3e-7]})
    row = arm_delays(pts, (0, 50))["L=2,L_f=2,delete,rho=0.5"]
    assert row["delay_without"] == 100.0 and row["delay_with"] == 40.0
    assert row["t_B0_with"] == 500.0 and row["delay_ratio"] == pytest.approx(0.4)
    assert row["final_loss_with"] == pytest.approx(2e-7) and row["N"] == 50


def test_seed_errorbars():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlnfusion.plot import seed_errorbars

    fig, ax = plt.subplots()
    seed_errorbars(ax, [0, 1], [([[1.0, 3.0], [2.0]], "-", "o")], "red", ms=3)
    line = ax.lines[0]
    assert line.get_ydata().tolist() == [2.0, 2.0] and line.get_linestyle() == "-"
    plt.close(fig)
