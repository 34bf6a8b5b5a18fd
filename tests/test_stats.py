import dataclasses

import numpy as np
import pytest

from dlnfusion import Dataset, Stats


def test_scalar_toy_moments_match_exact_samples():
    st = Stats.scalar_toy(1.5, 0.7, -0.3, w_a=2.0, w_b=-1.0, noise_var=0.25)
    # Independent construction: draw x with the target covariance, y from the teacher.
    rng = np.random.default_rng(1)
    z = rng.standard_normal((5000, 2))
    q, r = np.linalg.qr(z)
    z = q * np.sqrt(5000) * np.sign(np.diag(r))  # exactly white
    cov = np.array([[1.5 ** 2, -0.3 * 1.5 * 0.7], [-0.3 * 1.5 * 0.7, 0.7 ** 2]])
    x = z @ np.linalg.cholesky(cov).T
    sig = x.T @ x / 5000
    assert np.allclose(st.sigma, cov)
    assert np.allclose(st.sigma_yx, np.array([[2.0, -1.0]]) @ sig)
    assert np.isclose(st.sigma_yy[0, 0], np.array([2.0, -1.0]) @ cov @ np.array([2.0, -1.0]) + 0.25)
    assert st.dims == (1, 1) and st.names == ("A", "B")


def test_sample_exact_reproduces_moments():
    st = Stats.random(dim=6, seed=3, noise_var=0.1)
    ds = st.sample(200, seed=5, exact=True)
    emp = Stats.from_samples(list(ds.xs), ds.y)
    assert np.allclose(emp.sigma, st.sigma, rtol=1e-10, atol=1e-12)
    assert np.allclose(emp.sigma_yx, st.sigma_yx, rtol=1e-10, atol=1e-12)
    assert np.allclose(emp.sigma_yy, st.sigma_yy, rtol=1e-10, atol=1e-12)
    assert ds.dims == st.dims and ds.n_samples == 200


def test_sample_fluctuates_at_sqrt_n():
    st = Stats.scalar_toy(1.0, 1.0, 0.4)
    ds = st.sample(40_000, seed=0)
    emp = ds.stats()
    # Sampling error of a second moment of unit-variance Gaussians: ~sqrt(2/n) = 0.007.
    assert np.max(np.abs(emp.sigma - st.sigma)) < 0.04
    assert np.max(np.abs(emp.sigma_yx - st.sigma_yx)) < 0.05


def test_from_samples_is_the_empirical_second_moment():
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(50, 2)), rng.normal(size=(50, 3))
    y = rng.normal(size=50)
    st = Stats.from_samples([xa, xb], y)
    X = np.hstack([xa, xb])
    assert np.allclose(st.sigma, np.einsum("pi,pj->ij", X, X) / 50)
    assert np.allclose(st.sigma_yx[0], np.einsum("p,pi->i", y, X) / 50)
    assert np.isclose(st.sigma_yy[0, 0], np.mean(y ** 2))
    assert st.dims == (2, 3)


def test_random_inverse_wishart_mean():
    # E[Σ] = Ψ/(df − d − 1) for an inverse-Wishart; Ψ has its first half scaled by 2.
    d, df, n = 4, 30.0, 3000
    acc = np.zeros((d, d))
    for s in range(n):
        acc += Stats.random(dim=d, seed=s, df=df).sigma
    psi = np.diag([2.0, 2.0, 1.0, 1.0])
    expected = psi / (df - d - 1)
    assert np.allclose(acc / n, expected, atol=0.01)


def test_random_default_convention():
    st = Stats.random(dim=20, seed=7)
    assert st.dims == (10, 10)
    teacher = st.sigma_yx @ np.linalg.inv(st.sigma)
    assert np.all(np.abs(teacher) <= 1.0 + 1e-9)
    assert np.all(np.linalg.eigvalsh(st.sigma) > 0)


def test_solutions_and_loss():
    st = Stats.random(dim=6, seed=1, noise_var=0.3)
    ds = st.sample(500, seed=2, exact=True)
    X, y = np.hstack(ds.xs), ds.y
    w_ls = np.linalg.lstsq(X, y, rcond=None)[0].T
    assert np.allclose(st.global_solution(), w_ls, atol=1e-9)
    xa = ds.xs[0]
    assert np.allclose(st.unimodal_solution("A"), np.linalg.lstsq(xa, y, rcond=None)[0].T,
                       atol=1e-9)
    W = np.random.default_rng(0).normal(size=(1, 6))
    assert np.isclose(st.loss(W), 0.5 * np.mean((y - X @ W.T) ** 2))
    assert np.isclose(st.min_loss(), 0.5 * np.mean((y - X @ w_ls.T) ** 2))
    assert np.isclose(st.min_loss(), 0.15, rtol=1e-9)  # half the noise variance
    assert st.mean_sq_output == pytest.approx(np.mean(y ** 2))


def test_structure_helpers():
    st = Stats.random(dim=5, seed=0, dims=(2, 3))
    assert st.slices == (slice(0, 2), slice(2, 5))
    assert np.array_equal(st.block("A", "B"), st.sigma[:2, 2:])
    assert np.array_equal(st.sigma_m(1), st.sigma[2:, 2:])
    assert np.array_equal(st.sigma_yx_m("B"), st.sigma_yx[:, 2:])
    a, b = st.split(np.arange(5.0)[None])
    assert a.shape == (1, 2) and b.shape == (1, 3)
    assert st.index("B") == 1 and st.index(0) == 0
    assert st.n_modalities == 2 and st.input_dim == 5 and st.output_dim == 1
    assert not st.is_singular
    assert "dims=(2, 3)" in repr(st)


def test_collinear_needs_allow_singular():
    sigma = np.array([[4.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="positive definite"):
        Stats.from_teacher(sigma, [1.0, 1.0], dims=(1, 1))
    st = Stats.from_teacher(sigma, [1.0, 1.0], dims=(1, 1), allow_singular=True)
    assert st.is_singular
    W = st.global_solution()
    assert np.isclose(st.loss(W), 0.0, atol=1e-12)
    assert np.allclose(W @ st.sigma, st.sigma_yx)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sigma_a=0.0), "sigma_a"),
    (dict(sigma_b=-1.0), "sigma_b"),
    (dict(rho=1.0), "rho"),
    (dict(rho=-1.2), "rho"),
    (dict(rho=float("nan")), "rho"),
    (dict(w_a=float("inf")), "w_a"),
    (dict(noise_var=-0.1), "noise_var"),
])
def test_scalar_toy_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Stats.scalar_toy(**kwargs)


def test_invalid_moments():
    good = np.eye(2)
    with pytest.raises(ValueError, match="symmetric"):
        Stats(np.array([[1.0, 0.5], [0.2, 1.0]]), [[1.0, 1.0]], [[2.0]], (1, 1))
    with pytest.raises(ValueError, match="positive definite"):
        Stats(np.array([[1.0, 2.0], [2.0, 1.0]]), [[1.0, 1.0]], [[10.0]], (1, 1))
    with pytest.raises(ValueError, match="square"):
        Stats(np.ones((2, 3)), [[1.0, 1.0]], [[2.0]], (1, 1))
    with pytest.raises(ValueError, match="NaN"):
        Stats(np.array([[1.0, np.nan], [np.nan, 1.0]]), [[1.0, 1.0]], [[2.0]], (1, 1))
    with pytest.raises(ValueError, match="sigma_yx"):
        Stats(good, [[1.0, 1.0, 1.0]], [[2.0]], (1, 1))
    with pytest.raises(ValueError, match="sigma_yy"):
        Stats(good, [[1.0, 1.0]], [[2.0, 0.0]], (1, 1))
    with pytest.raises(ValueError, match="dims"):
        Stats(good, [[1.0, 1.0]], [[2.0]], (1, 2))
    with pytest.raises(ValueError, match="dims"):
        Stats(good, [[1.0, 1.0]], [[2.0]], (2, 0))
    with pytest.raises(ValueError, match="names"):
        Stats(good, [[1.0, 1.0]], [[2.0]], (1, 1), names=("A", "A"))
    with pytest.raises(ValueError, match="semi-definite"):
        Stats(good, [[1.0, 1.0]], [[1.0]], (1, 1))  # ⟨y²⟩ below what Σ_yx implies
    with pytest.raises(ValueError, match="null direction"):
        Stats(np.array([[1.0, 1.0], [1.0, 1.0]]), [[1.0, -1.0]], [[5.0]], (1, 1),
              allow_singular=True)
    with pytest.raises(ValueError, match="teacher"):
        Stats.from_teacher(good, [1.0, 1.0, 1.0], dims=(1, 1))
    with pytest.raises(ValueError, match="numeric"):
        Stats(good, "abc", [[1.0]], (1, 1))


def test_other_errors():
    st = Stats.scalar_toy()
    with pytest.raises(ValueError, match="unknown modality"):
        st.index("C")
    with pytest.raises(ValueError, match="modality index"):
        st.index(5)
    with pytest.raises(ValueError, match="n must"):
        st.sample(0)
    with pytest.raises(ValueError, match="exact sampling"):
        st.sample(2, exact=True)
    with pytest.raises(ValueError, match="dim"):
        Stats.random(dim=1)
    with pytest.raises(ValueError, match="df"):
        Stats.random(dim=6, df=3)
    with pytest.raises(ValueError, match="scale_factor"):
        Stats.random(dim=4, scale_factor=0)
    with pytest.raises(ValueError, match="list or tuple"):
        Stats.from_samples(np.ones((5, 2)), np.ones(5))
    with pytest.raises(ValueError, match="samples"):
        Stats.from_samples([np.ones((5, 1)), np.ones((4, 1))], np.ones(5))
    with pytest.raises(ValueError, match="samples"):
        Dataset((np.ones((5, 1)),), np.ones(4))
    with pytest.raises(ValueError, match="non-empty"):
        Dataset((), np.ones(4))
    with pytest.raises(ValueError, match="names"):
        Dataset((np.ones((4, 1)),), np.ones(4), names=("A", "B"))


def test_stats_is_immutable():
    st = Stats.scalar_toy()
    with pytest.raises(ValueError, match="read-only"):
        st.sigma[0, 0] = 5.0
    with pytest.raises(dataclasses.FrozenInstanceError, match="'dims'"):
        st.dims = (2,)
