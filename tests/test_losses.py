import jax
import numpy as np
import pytest
from scipy import integrate

import dlnfusion as dln
from dlnfusion.losses import gaussian_logistic


def _reference(st, W):
    """The same expectation by adaptive 2-D quadrature of the density (independent)."""
    W = np.asarray(W, float)
    var_y = st.sigma_yy[0, 0]
    var_h = (W @ st.sigma @ W.T)[0, 0]
    cov = (W @ st.sigma_yx.T)[0, 0]
    C = np.array([[var_y, cov], [cov, var_h]])
    Lc = np.linalg.cholesky(C + 1e-300 * np.eye(2))

    def f(z2, z1):
        y, h = Lc @ np.array([z1, z2])
        return np.logaddexp(0, -y * h) * np.exp(-(z1 * z1 + z2 * z2) / 2) / (2 * np.pi)

    return integrate.dblquad(f, -9, 9, -9, 9, epsabs=1e-12, epsrel=1e-10)[0]


@pytest.mark.parametrize("W", [[[0.7, -0.3]], [[1.0, 0.5]], [[4.0, 2.0]], [[0.0, 0.0]]])
def test_gaussian_logistic_against_quadrature(W):
    st = dln.Stats.scalar_toy(2.0, 1.0, 0.5)
    got = float(gaussian_logistic(np.array(W), st.sigma, st.sigma_yx, st.sigma_yy))
    assert got == pytest.approx(_reference(st, W), rel=1e-7, abs=1e-10)


def test_gaussian_logistic_against_samples_and_gradient_at_zero():
    st = dln.Stats.scalar_toy(1.5, 1.0, -0.4, w_a=1.0, w_b=-0.5)
    ds = st.sample(400_000, seed=0)
    X, y = np.hstack(ds.xs), ds.y[:, 0]
    W = np.array([[0.8, -0.6]])
    mc = np.mean(np.logaddexp(0, -y * (X @ W[0])))
    got = float(gaussian_logistic(W, st.sigma, st.sigma_yx, st.sigma_yy))
    assert got == pytest.approx(mc, abs=4e-3)  # Monte Carlo error ~1e-3
    # The paper's eq. (35)–(37): at ŷ = 0 the logistic gradient is −½⟨y x⟩ = −½ Σ_yx.
    g = jax.grad(lambda w: gaussian_logistic(w, st.sigma, st.sigma_yx, st.sigma_yy))
    assert np.allclose(g(np.zeros((1, 2))), -0.5 * st.sigma_yx, atol=1e-12)
    assert float(gaussian_logistic(np.zeros((1, 2)), st.sigma, st.sigma_yx, st.sigma_yy)) == \
        pytest.approx(np.log(2), abs=1e-12)
    # Finite differences where ŷ is perfectly correlated with y (a singular corner).
    W = 3.0 * np.array([[1.0, -0.5]])
    f = lambda w: float(gaussian_logistic(w, st.sigma, st.sigma_yx, st.sigma_yy))  # noqa: E731
    fd = [(f(W + 1e-6 * e) - f(W - 1e-6 * e)) / 2e-6 for e in np.eye(2)[:, None, :]]
    assert np.allclose(np.asarray(g(W)).ravel(), fd, atol=1e-7)


def test_population_logistic_training_matches_samples():
    st = dln.Stats.scalar_toy(2.0, 1.0, 0.3)
    spec = dln.NetworkSpec.fusion(2, 2, width=20)
    ds = st.sample(100_000, seed=2)
    pop = dln.simulate(spec, st, seeds=[0], scale=1e-3, loss="logistic", steps=600,
                       stop_loss=None, record_every=100)
    smp = dln.simulate(spec, ds, seeds=[0], scale=1e-3, loss="logistic", steps=600,
                       stop_loss=None, record_every=100, eval_stats=st)
    # Same trajectory up to the sampling error of 1e5 samples.
    assert np.allclose(pop.loss[0], smp.loss[0], rtol=0.02)
    for a, b in zip(pop.final_maps, smp.final_maps):
        assert np.allclose(a, b, rtol=0.05)
