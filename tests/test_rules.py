"""dlnfusion.rules against the plain-numpy references of tests/helpers/rules_reference.py,
written from the papers (OGM-GE: Peng et al. 2022; InfoReg and Tr F: Huang et al. 2025), on
random inputs. The rules are what both the transforms and the reduced simulators apply, so a
rule is only checked where it is compared with code that does not share it: here.

Tolerances come from float64 rounding (ε = 2.2e-16) and are stated where they are set."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dlnfusion as dln
from dlnfusion import rules
from helpers import rules_reference as ref

EPS = np.finfo(float).eps


def _scores(rng, n, M):
    """Random scores of M modalities: mostly positive, some zero, negative or tied, the
    cases where the rules branch."""
    s = rng.uniform(-0.5, 3.0, size=(n, M))
    s[rng.random((n, M)) < 0.05] = 0.0
    ties = rng.random(n) < 0.05
    s[ties, 1] = s[ties, 0]
    return s


@pytest.mark.parametrize("continuous", [False, True])
def test_ogm_coefficients_match_the_reference(continuous):
    rng = np.random.default_rng(1)
    scores = _scores(rng, 3000, 2)
    for alpha in (0.0, 0.3, 0.8, 2.0):
        got = np.asarray(jax.vmap(lambda sc: rules.ogm_coefficients(sc, alpha, continuous))(
            jnp.asarray(scores)))
        want = np.array([ref.ogm_coefficient(sc, alpha, continuous) for sc in scores])
        # a value in [0, 1] from one division and one tanh: a few ulp of 1 apart at most
        np.testing.assert_allclose(got, want, rtol=0, atol=8 * EPS)
    # the leader is modulated, the other branch never
    lead = np.argmax(scores, axis=-1)
    assert np.all(want[np.arange(len(scores)), 1 - lead] == 1.0)


def test_score_gaps_match_the_reference():
    rng = np.random.default_rng(2)
    for M in (2, 3, 5):
        scores = _scores(rng, 500, M)
        got = np.asarray(rules.score_gaps(jnp.asarray(scores)))
        want = np.array([ref.performance_gaps(sc) for sc in scores])
        # a mean of at most M − 1 differences of numbers below 3.5: rounding of M terms
        np.testing.assert_allclose(got, want, rtol=0, atol=4 * M * 3.5 * EPS)
        assert np.all((want > 0).sum(axis=-1) <= M - 1)


@pytest.mark.parametrize("window", rules.WINDOWS)
def test_inforeg_regulation_matches_the_reference(window):
    """push_trace builds the history, window_test and inforeg_regulation read it, at every
    epoch of random trace sequences (positive traces, random K, β, prefactors)."""
    rng = np.random.default_rng(3)
    M = 3
    checked = regulated_seen = 0
    for trial in range(40):
        average = int(rng.integers(1, 5))
        K, beta = float(rng.uniform(0.01, 0.3)), float(rng.uniform(0.0, 2.0))
        pref = rng.uniform(0.1, 1.5, M)
        traces = np.exp(np.cumsum(rng.normal(0.05, 0.2, size=(12, M)), axis=0))
        hist_len = average + 1 if window == "moving_average" else 2
        history, count = jnp.zeros((hist_len, M)), jnp.zeros((), jnp.int32)
        for t in range(traces.shape[0] + 1):
            scores = _scores(rng, 1, M)[0]
            gaps = rules.score_gaps(jnp.asarray(scores))
            reg, coef = rules.inforeg_regulation(history, count, gaps, window=window, K=K,
                                                 average=average, beta=beta, prefactors=pref)
            want_reg, want_coef = ref.inforeg_step(scores, traces[:t], t, K=K, beta=beta,
                                                   rule=window, average=average,
                                                   prefactors=pref)
            np.testing.assert_array_equal(np.asarray(reg), want_reg, err_msg=f"epoch {t}")
            # Δ agrees to a few ulp of the scores (≤ 3.5) and exp(β tanh Δ) ≤ e² amplifies
            # an error of Δ by at most β ≤ 2 relative: 1e-13 relative covers both
            np.testing.assert_allclose(np.asarray(coef), want_coef, rtol=1e-13, atol=0)
            checked += 1
            regulated_seen += int(want_reg.any())
            if t < traces.shape[0]:
                history, count = rules.push_trace(history, count, jnp.asarray(traces[t]),
                                                  jnp.asarray(True))
        # a step where nothing new is pushed leaves the history alone
        same, same_count = rules.push_trace(history, count, jnp.asarray(traces[0]),
                                            jnp.asarray(False))
        np.testing.assert_array_equal(np.asarray(same), np.asarray(history))
        assert int(same_count) == int(count)
    assert checked == 40 * 13
    if window != "never":
        assert regulated_seen > 0


@pytest.mark.parametrize("rule", rules.WINDOW_RULES)
def test_prime_window_matches_the_reference(rule):
    rng = np.random.default_rng(4)
    for average in (1, 3, 10):
        F = np.exp(np.cumsum(rng.normal(0.02, 0.1, size=(4, 40)), axis=-1))
        K = float(rng.uniform(0.01, 0.1))
        got = rules.prime_window(F, K=K, rule=rule, average=average)
        want = np.array([[ref.in_window(row, t, K, rule, average) for t in range(F.shape[1])]
                         for row in F])
        np.testing.assert_array_equal(got, want)
        assert want.any() and not want.all()


CASES = [  # (depth, fusion_layer, stats)
    (2, 2, dln.Stats.scalar_toy(2.0, 1.0, 0.5)),
    (3, 2, dln.Stats.scalar_toy(2.0, 1.0, -0.3)),
    (3, 1, dln.Stats.random(dim=4, seed=2)),
    (4, 2, dln.Stats.random(dim=4, seed=5)),
]


@pytest.mark.parametrize("depth, fusion_layer, stats", CASES)
def test_fisher_trace_matches_the_reference(depth, fusion_layer, stats):
    """Per layer and per branch, per-sample and per-batch, for several random weights of late,
    intermediate and early fusion networks, vector modalities and outputs with noise."""
    spec = dln.NetworkSpec.fusion(depth, fusion_layer, width=5, input_dims=stats.dims,
                                  output_dim=stats.output_dim)
    params = dln.init_batch(spec, [0, 1, 2], scale=0.6)
    for b in (None, 1, 7):
        by_layer = rules.fisher_trace(spec, params, stats, by="layer", batch_size=b)
        by_branch = rules.fisher_trace(spec, params, stats, batch_size=b)
        for r in range(3):
            branches = [[np.asarray(W)[r] for W in layers] for layers in params.branches]
            post = [np.asarray(W)[r] for W in params.post]
            layer, branch = ref.fisher_trace(branches, post, stats.sigma, stats.sigma_yx,
                                             stats.sigma_yy, batch_size=b)
            # products of ≤ 5 matrices and traces of sums over ≤ 10 entries in two different
            # arrangements (around W* in the library, around (y, x) here): float64
            # round-off, measured ≤ 4 ε; 1e-13 (450 ε) leaves room for other weights
            np.testing.assert_allclose(by_layer[r], layer, rtol=1e-13)
            np.testing.assert_allclose(by_branch[r], branch, rtol=1e-13)
