"""The result contract: Status, the Run base and the one crossing rule."""
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pytest

from dlnfusion.precision import float64
from dlnfusion.results import Run, Status, crossing_update, first_crossing

# Interpolation of a crossing is one division and one multiply-add: agreement to a few ulps.
INTERP_RTOL = 1e-12


def _crossing_loop(t, z, level):
    """Reference written independently: walk the records, interpolate linearly between the
    first record at or above the level and the one before it."""
    for i, v in enumerate(z):
        if np.isfinite(v) and v >= level:
            if i == 0 or not np.isfinite(z[i - 1]):
                return t[i]
            a = z[i - 1]
            return t[i - 1] + (level - a) / (v - a) * (t[i] - t[i - 1])
    return np.nan


def test_first_crossing_matches_a_loop():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.5, 2.0, 40))
    z = np.cumsum(rng.uniform(0.0, 0.05, (6, 3, 40)), axis=-1)
    z[0, 0, 30:] = np.nan                                   # a run that stopped
    z[1, 1] = 0.9                                           # already above at the first record
    levels = np.array([0.2, 0.5, 0.8])
    got = first_crossing(z, t, levels)
    assert got.shape == (6, 3, 3)
    for idx in np.ndindex(6, 3):
        for k, lv in enumerate(levels):
            np.testing.assert_allclose(got[idx + (k,)], _crossing_loop(t, z[idx], lv),
                                       rtol=INTERP_RTOL, equal_nan=True)
    assert got[1, 1, 0] == t[0]
    # a scalar level drops the level axis; the time axis may be any axis
    np.testing.assert_array_equal(first_crossing(z, t, 0.5), got[..., 1])
    np.testing.assert_array_equal(first_crossing(np.moveaxis(z, -1, 0), t, 0.5, axis=0),
                                  got[..., 1])


def test_first_crossing_never_reached_and_bad_time():
    assert np.isnan(first_crossing(np.zeros(5), np.arange(5), 0.5))
    assert np.isnan(first_crossing(np.zeros(0), np.zeros(0), 0.5))
    with pytest.raises(ValueError, match="time"):
        first_crossing(np.zeros((2, 5)), np.arange(4), 0.5)


def test_online_update_agrees_with_recorded_series():
    rng = np.random.default_rng(1)
    t = np.arange(30.0)
    z = np.cumsum(rng.uniform(0, 0.06, (4, 30)), axis=1)
    levels = jnp.asarray([0.25, 0.5])
    with float64():
        times = jnp.full((4, 2), jnp.nan)
        prev = jnp.full((4,), jnp.nan)
        for n in range(30):
            times = crossing_update(times, prev, jnp.asarray(z[:, n]), t[n - 1] if n else 0.0,
                                    t[n], levels)
            prev = jnp.asarray(z[:, n])
        np.testing.assert_allclose(np.asarray(times), first_crossing(z, t, np.asarray(levels)),
                                   rtol=INTERP_RTOL)


def test_status_members_carry_messages():
    assert [int(s) for s in Status] == [0, 1, 2]
    for s in Status:
        assert isinstance(s.message, str) and len(s.message) > 20
    assert list(Status.names([2, 0, 1, 7])) == ["diverged", "max_steps", "converged", "missing"]


@dataclass(frozen=True, eq=False)
class _Toy(Run):
    time: np.ndarray
    x: np.ndarray
    status: np.ndarray
    label: str

    _static = ("label",)


def test_run_batch_operations():
    r = _Toy(np.arange(3), np.arange(24.0).reshape(6, 4), np.array([0, 2, 1, 0, 2, 0]), "toy")
    assert r.batch_shape == (6,) and r.n_runs == 6 and len(r) == 6
    assert list(r.diverged) == [False, True, False, False, True, False]
    assert list(r.status_names()[:3]) == ["max_steps", "diverged", "converged"]
    g = r.reshape(2, 3)
    assert g.batch_shape == (2, 3) and g.x.shape == (2, 3, 4) and g.label == "toy"
    np.testing.assert_array_equal(g[1, 2].x, r.x[5])
    np.testing.assert_array_equal(g[:, 0].status, [0, 0])
    assert g[1, 2].batch_shape == () and bool(g[1, 2])
    np.testing.assert_array_equal(r.time, g.time)
    assert [s.x[0] for s in r] == [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]
    assert r.replace(label="other").label == "other"
    with pytest.raises(ValueError, match="reshape"):
        r.reshape(4, 2)
    with pytest.raises(IndexError, match="too many"):
        r[0, 0]
    with pytest.raises(TypeError, match="single run"):
        len(r[0])
