"""Argument checks of the balancing transforms, the runners (fit, simulate, train's windows)
and the data helpers: an invalid value is refused with a ValueError naming the parameter, and
the valid values next to it are still accepted."""
import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import FusionMLP, FusionTask, Gate, Lesion, NetworkSpec, Stats
from dlnfusion.data.completion import nested_masks
from dlnfusion.interventions import blur
from dlnfusion.transforms import inforeg, inforeg_batches, ogm_ge, ogm_ge_batches

SPEC = NetworkSpec.fusion(2, 2, width=4)
STATS = Stats.scalar_toy(2.0, 1.0, 0.5)
NET = FusionMLP((4, 3), depth=3, fusion_layer=2, width=8, n_out=3)


def _task(n=48, classes=3):
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(n, 4)), rng.normal(size=(n, 3))
    y = np.argmax(xa[:, :classes] + xb[:, :classes], 1).astype(int)
    return FusionTask((xa, xb), y, (xa[:16], xb[:16]), y[:16], n_classes=classes)


# ------------------------------------------------------------------ the balancing transforms
@pytest.mark.parametrize("prefactors", [
    {"A": float("nan")}, {"B": float("inf")}, {"A": -1.0}, {"A": "1"}, {"A": True},
])
def test_inforeg_refuses_bad_prefactors(prefactors):
    with pytest.raises(ValueError, match="prefactors"):
        inforeg(SPEC, prefactors=prefactors)
    with pytest.raises(ValueError, match="prefactors"):
        inforeg_batches(NET, prefactors=prefactors)


@pytest.mark.parametrize("prefactors", [None, {"A": 0.0}, {"A": 2.5, "B": np.float32(1.0)}])
def test_inforeg_accepts_finite_nonnegative_prefactors(prefactors):
    inforeg(SPEC, prefactors=prefactors)
    inforeg_batches(NET, prefactors=prefactors)


@pytest.mark.parametrize("seed", [1.5, 2.0, float("nan"), True, "0", None])
def test_ogm_ge_refuses_a_seed_that_is_not_an_integer(seed):
    with pytest.raises(ValueError, match="seed"):
        ogm_ge(SPEC, seed=seed)
    with pytest.raises(ValueError, match="seed"):
        ogm_ge_batches(NET, seed=seed)


@pytest.mark.parametrize("seed", [0, 7, np.int64(3)])
def test_ogm_ge_accepts_integer_seeds(seed):
    ogm_ge(SPEC, seed=seed)
    ogm_ge_batches(NET, seed=seed)


# ------------------------------------------------------------------ fit and simulate
@pytest.mark.parametrize("seeds", [[1.7], [0, 2.0], [True], 1.0, [np.float64(1.0)], "0"])
def test_fit_refuses_seeds_that_are_not_integers(seeds):
    with pytest.raises(ValueError, match="seeds"):
        dln.fit(NET, _task(), seeds=seeds, epochs=1, batch_size=8)


@pytest.mark.parametrize("stop", [3, "never", True, [lambda h: True]])
def test_fit_refuses_a_stop_that_is_not_a_function(stop):
    with pytest.raises(ValueError, match=r"stop must be None .* or a function"):
        dln.fit(NET, _task(), epochs=1, batch_size=8, stop=stop)


@pytest.mark.parametrize("seeds", [[1.7], [0, 2.5], [True], 1.5])
def test_simulate_refuses_seeds_that_are_not_integers(seeds):
    with pytest.raises(ValueError, match="seeds"):
        dln.simulate(SPEC, STATS, seeds, steps=10)


# ------------------------------------------------------------------ data helpers
@pytest.mark.parametrize("counts", [(50, 20), (20, 20), (10, 30, 25), (0, 20), (20, 101),
                                    (2.5, 20), 20])
def test_nested_masks_refuses_counts_that_are_not_increasing_entry_counts(counts):
    with pytest.raises(ValueError, match="counts"):
        nested_masks(0, 10, counts)


def test_nested_masks_are_nested():
    masks = nested_masks(0, 10, (20, 50, 100))
    assert [int(m.sum()) for m in masks] == [20, 50, 100]
    assert np.all(masks[0] <= masks[1]) and np.all(masks[1] <= masks[2])


@pytest.mark.parametrize("attenuation", [5.0, 1.0001, -0.1, float("nan"), float("inf"), True])
def test_blur_refuses_attenuation_outside_0_1(attenuation):
    with pytest.raises(ValueError, match="attenuation"):
        blur(STATS, "B", attenuation=attenuation)


@pytest.mark.parametrize("attenuation", [0.0, 0.3, 1.0])
def test_blur_accepts_attenuation_in_0_1(attenuation):
    b = blur(STATS, "B", attenuation=attenuation, noise_std=0.5)
    # Σ̃_BB = c² Σ_BB + σ² (module docstring of dlnfusion.interventions.deficits); the
    # entries are one or two float64 operations, so 1e-14 relative holds with margin
    s = STATS.slices[1]
    expected = attenuation ** 2 * STATS.sigma[s, s] + 0.25
    np.testing.assert_allclose(b.sigma[s, s], expected, rtol=1e-14)


# ------------------------------------------------------------------ windows of gradient descent
@pytest.mark.parametrize("window, bound", [
    (Gate("A", start=2.5, end=10), "start"),
    (Gate("A", start=2, end=np.array([10.5])), "end"),
    (Lesion("W_B^1", unit=0, start=0.25), "start"),
])
def test_gradient_descent_windows_take_whole_steps(window, bound):
    params = dln.init_batch(SPEC, [0], scale=0.1)
    with pytest.raises(ValueError, match=f"window 0: {bound} must be a whole number of steps"):
        dln.train(SPEC, STATS, params, steps=20, interventions=[window])
    with pytest.raises(ValueError, match=f"window 0: {bound} must be a whole number of steps"):
        dln.simulate(SPEC, STATS, [0], scale=0.1, steps=20, interventions=[window])


def test_whole_valued_float_bounds_are_the_same_steps():
    params = dln.init_batch(SPEC, [0, 1], scale=0.1)
    kw = dict(steps=20, record_every=5, stop_loss=None)
    a = dln.train(SPEC, STATS, params, interventions=[Gate("A", start=2, end=10)], **kw)
    b = dln.train(SPEC, STATS, params, interventions=[Gate("A", start=2.0, end=10.0)], **kw)
    np.testing.assert_array_equal(a.final_loss, b.final_loss)
    for x, y in zip(a.final_params.matrices(), b.final_params.matrices()):
        np.testing.assert_array_equal(x, y)
