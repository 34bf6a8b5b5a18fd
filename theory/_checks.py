"""Helpers shared by the derivation scripts: comparing the library with a derivation.

Not a derivation itself (tests/test_derivations.py skips files whose name starts with "_").
The scripts import it by name: their own folder is on the path when one runs as a script, and
tests/test_derivations.py puts it there.
"""
import numpy as np
import sympy as sp


def close_each(got, want, rtol, what, scale=1e-300):
    """Every entry's relative error below ``rtol``; ``scale`` bounds the denominator below for
    values that vanish."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    err = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), scale)))
    assert err <= rtol, f"{what}: library {got}, derivation {want} (relative error {err:.2e})"


def close_max(got, want, rtol, what, scale=None):
    """Max |got − want| relative to ``scale`` (default: the largest |want|) below ``rtol``."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    scale = np.max(np.abs(want)) if scale is None else scale
    err = float(np.max(np.abs(got - want)) / max(scale, 1e-300))
    assert err <= rtol, f"{what}: library {got}, derivation {want} (relative error {err:.2e})"


def random_params(spec, seed, scale):
    """i.i.d. N(0, scale²) weights for one run (leading batch axis of 1), drawn with numpy."""
    import dlnfusion as dln

    rng = np.random.default_rng(seed)
    mats = [scale * rng.normal(size=(1,) + shape) for shape in spec.layer_shapes]
    return dln.Params.from_matrices(spec, mats)


def toy_symbols():
    """Moments of two scalar modalities: Σ_A, Σ_B, Σ_AB, Σ_yxA, Σ_yxB, ⟨y²⟩."""
    return sp.symbols("Sigma_A Sigma_B Sigma_AB s_A s_B yy", real=True)


def toy_loss(WA, WB, m):
    """½⟨(y − W_A x_A − W_B x_B)²⟩ for scalar modalities, expanded by linearity."""
    sa2, sb2, sab, ya, yb, yy = m
    return sp.Rational(1, 2) * (yy - 2 * WA * ya - 2 * WB * yb + WA ** 2 * sa2
                                + 2 * WA * WB * sab + WB ** 2 * sb2)


def gauss_expect(expr, variables):
    """E[expr] for independent standard normals ``variables`` (expr a polynomial in them):
    E z^{2j} = (2j − 1)!!, odd powers 0."""
    poly = sp.Poly(sp.expand(expr), *variables)
    total = 0
    for powers, coeff in poly.terms():
        m = 1
        for k in powers:
            m *= 0 if k % 2 else sp.factorial2(k - 1)
        total += coeff * m
    return sp.expand(total)
