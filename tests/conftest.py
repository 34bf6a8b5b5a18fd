"""Precision policy and shared fixtures for the test suite.

dlnfusion computes in float64 by itself without touching JAX's global flag (tested in a fresh
process by tests/test_precision.py). The tests' own independent computations with jax.numpy
need float64 too, so the suite turns 64-bit mode on for its process here, once, the documented
way. Tolerances used across the tests are named here and justified by precision or by the
order of the theory they check.
"""
import jax.monitoring
import numpy as np
import pytest

import dlnfusion as dln

dln.enable_float64()

#: XLA compilations of this process so far, counted from JAX's own monitoring events.
_COMPILATIONS = [0]


def _count_compilation(event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILATIONS[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count_compilation)


def compilations() -> int:
    """How many XLA compilations this process has done: a difference of two calls counts
    what the code between them compiled (independent of other tests' caches)."""
    return _COMPILATIONS[0]

#: float64 rounding accumulated over a few thousand steps.
RTOL_ROUNDING = 1e-9
#: Adaptive gradient-flow solves use rtol 1e-10 in the exact-solution checks.
RTOL_ODE = 1e-6


@pytest.fixture(scope="session")
def late2():
    """The paper's two-layer late-fusion network (width 100, scalar modalities)."""
    return dln.NetworkSpec.fusion(depth=2, fusion_layer=2, width=100)


@pytest.fixture(scope="session")
def early2():
    return dln.NetworkSpec.fusion(depth=2, fusion_layer=1, width=100)


@pytest.fixture(scope="session")
def toy():
    return dln.Stats.scalar_toy(2.0, 1.0, 0.5)


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))
