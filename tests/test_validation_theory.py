"""Arguments of the predictors refused with a ValueError that names them: the reduced balancing
runs (reduced.balancing_two_layer, reduced.balancing_deep), theory.pathways.small_init_split
and theory.learning_sequence with random weights; valid calls keep their results."""
import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import reduced as rd
from dlnfusion import theory as th

STATS = dln.Stats.scalar_toy(2.0, 1.0, 0.4)
SPEC = dln.NetworkSpec.fusion(2, 2, width=5)
GRAM = th.initial_gram(SPEC, dln.init_batch(SPEC, [3], scale=0.3))[0]      # (2, 4, 4)

# invalid arguments of the reduced runs (common to both) and the parameter each error names
BAD_RUN = [
    (dict(lr=float("nan")), "lr"), (dict(lr=-0.04), "lr"), (dict(lr=0.0), "lr"),
    (dict(steps=-1), "steps"), (dict(steps=2.5), "steps"), (dict(steps=0), "steps"),
    (dict(balancing="inforeg", K=5.0), "K"), (dict(K=0.0), "K"), (dict(K=float("nan")), "K"),
    (dict(balancing="inforeg", epoch=0), "epoch"), (dict(epoch=2.5), "epoch"),
    (dict(balancing="inforeg", beta=-1.0), "beta"), (dict(beta=float("nan")), "beta"),
    (dict(balancing="ogm", alpha=-1.0), "alpha"), (dict(alpha=float("inf")), "alpha"),
    (dict(average=0), "average"), (dict(balancing="inforeg", prefactors=[1.0, -1.0]),
                                   "prefactors"),
    (dict(prefactors=[1.0, 1.0, 1.0]), "prefactors"),
]


def _two_layer(**kw):
    args = dict(stats=STATS, lr=0.05, init=GRAM, steps=20)
    args.update(kw)
    return rd.balancing_two_layer(**args)


def _deep(**kw):
    args = dict(stats=STATS, depth=3, lr=0.05, scale=0.4, steps=20)
    args.update(kw)
    return rd.balancing_deep(**args)


@pytest.mark.parametrize("kw,name", BAD_RUN)
def test_balancing_two_layer_refuses(kw, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        _two_layer(**kw)


def _asymmetric():
    G = GRAM.copy()
    G[0, 0, 1] += 0.1
    return G


@pytest.mark.parametrize("gram", [
    GRAM * np.nan, -GRAM, _asymmetric(),
    # symmetric with a positive diagonal but indefinite: u·v larger than |u||v|
    np.broadcast_to(np.array([[1.0, 2.0, 0, 0], [2.0, 1.0, 0, 0], [0, 0, 1.0, 0],
                              [0, 0, 0, 1.0]]), (2, 4, 4)),
], ids=["nan", "negated", "asymmetric", "indefinite"])
def test_balancing_two_layer_refuses_gram(gram):
    with pytest.raises(ValueError, match=r"\binit\b"):
        _two_layer(init=gram)
    with pytest.raises(ValueError, match=r"\binit\b"):
        _two_layer(init=np.stack([GRAM, gram]))                 # one bad run in a batch


@pytest.mark.parametrize("kw,name", BAD_RUN)
def test_balancing_deep_refuses(kw, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        _deep(**kw)


def test_balancing_two_layer_valid_call_unchanged():
    """The edges of the accepted ranges still run, and joint training follows the vector
    updates u' = u + η g v, v' = v + η g u iterated here in numpy from the same weights (the
    Gram map reproduces them to round-off: measured 6e-15 relative, tested at 5e-14)."""
    p = dln.init_batch(SPEC, [3], scale=0.3)
    us = [np.asarray(p.branches[m][0])[0, :, 0] for m in range(2)]
    vs = [np.asarray(p.branches[m][1])[0, 0, :] for m in range(2)]
    S = np.asarray(STATS.sigma)
    s = np.asarray(STATS.sigma_yx).reshape(-1)
    eta, steps = 0.05, 6
    run = _two_layer(lr=eta, steps=steps, epoch=1, beta=0.0, K=1e-9, alpha=0.0, average=1,
                     prefactors=[0.0, 2.0])
    assert run.valid and run.w.shape == (steps + 1, 2)
    for n in range(steps + 1):
        w = np.array([us[m] @ vs[m] for m in range(2)])
        np.testing.assert_allclose(run.w[n], w, rtol=5e-14, err_msg=f"step {n}")
        g = s - S @ w
        us, vs = ([us[m] + eta * g[m] * vs[m] for m in range(2)],
                  [vs[m] + eta * g[m] * us[m] for m in range(2)])
    # an exactly singular Gram matrix (u = u_p, v = v_p) and the zero one are accepted
    assert _two_layer(init=np.zeros((2, 4, 4))).w[-1].tolist() == [0.0, 0.0]


def test_balancing_deep_valid_call_unchanged():
    """Joint training of three-layer late fusion from balanced aligned weights of norm u0: every
    layer of branch m keeps one norm a_m, a_m' = a_m + η d_m a_m² (sgn Σ_yx,m = +1 here), w_m =
    a_m³; iterated here in numpy (round-off only: measured 6e-16 relative, tested at 5e-15)."""
    eta, steps = 0.05, 8
    run = _deep(lr=eta, steps=steps, epoch=1, beta=0.0, K=0.999, alpha=0.0)
    assert run.valid
    S = np.asarray(STATS.sigma)
    s = np.asarray(STATS.sigma_yx).reshape(-1)
    a = np.full(2, 0.4)
    for n in range(steps + 1):
        np.testing.assert_allclose(run.w[n], a ** 3, rtol=5e-15, err_msg=f"step {n}")
        a = a + eta * (s - S @ a ** 3) * a ** 2


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf")])
def test_small_init_split_refuses_lr(lr):
    with pytest.raises(ValueError, match=r"\blr\b"):
        th.pathways.small_init_split([1.0, 2.0], 0.1, 3, lr, 0.0, np.inf)


def test_small_init_split_valid_call_unchanged():
    """Two closed-form cases of the approximation (its docstring): a gate after the mode is
    learned leaves the symmetric split (s/2, s/2) exactly; a gate from t = 0 that never ends
    leaves the gated pathway at its initial K = p0^D and gives the rest, s − p0^D, to the
    other (split_limit of a point on the solution line: round-off, 1e-18 absolute measured,
    tested at 1e-15)."""
    s = np.array([1.0, 2.0])
    late = th.pathways.small_init_split(s, 0.1, 3, 0.1, 1000.0, 50.0)
    np.testing.assert_array_equal(late, (s / 2, s / 2))
    trained, gated = th.pathways.small_init_split(s, 0.1, 3, 0.1, 0.0, np.inf)
    np.testing.assert_allclose(gated, 0.1 ** 3, rtol=0, atol=1e-15)
    np.testing.assert_allclose(trained, s - 0.1 ** 3, rtol=0, atol=1e-15)


@pytest.mark.parametrize("width", [1, 100.0, 0, 2.5])
def test_learning_sequence_random_weights_refuses_width_as_random_init_times(width):
    """scheme="frobenius" (random weights) takes the widths random_init_times takes; where
    only the random-weight check refuses (1, 100.0) the error is the same word for word."""
    st = dln.Stats.scalar_toy(2.0, 1.0, 0.4)
    with pytest.raises(ValueError, match=r"\bwidth\b") as ref:
        th.random_init_times(st, 4, 4, 0.1, width, 0.04)
    with pytest.raises(ValueError, match=r"\bwidth\b") as got:
        th.learning_sequence(st, 4, 4, scale=0.1, scheme="frobenius", width=width, lr=0.04)
    if width in (1, 100.0):
        assert str(got.value) == str(ref.value)


def test_learning_sequence_random_weights_valid_call_unchanged():
    """The smallest accepted width runs, and the default width gives the times of the
    two-modality closed form with one run's seeds (random_init_times with the typical seeds
    m0 = u0/√(2·width), a = b = u0 that learning_sequence uses without init; the M-modality
    bookkeeping reduces to it at M = 2: measured equal to 2e-16 relative, tested at 1e-14)."""
    st = dln.Stats.scalar_toy(2.0, 1.0, 0.4)
    assert np.all(np.isfinite(th.learning_sequence(st, 4, 4, scale=0.1, scheme="frobenius",
                                                   width=2).times))
    u0, width = 0.1, 100
    seq = th.learning_sequence(st, 4, 4, scale=u0, scheme="frobenius", width=width)
    m0 = u0 / np.sqrt(2 * width)
    seeds = np.tile([m0, m0, u0, u0], (2, 1))
    ref = th.random_init_times(st, 4, 4, u0, width, 0.04, weights=seeds)
    assert seq.order == (0, 1) and ref.first == "A"
    np.testing.assert_allclose(seq.times, (ref.t_A, ref.t_B), rtol=1e-14)
