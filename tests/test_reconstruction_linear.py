"""Population-level training of linear fusion networks with cross-source reconstruction."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlnfusion import Deficit, Gate, Lesion, NetworkSpec, Stats, float64, init_batch, simulate
from dlnfusion.interventions import delete
from dlnfusion.training import Moments, reconstruction_loss, train_reconstruction


def _toy(rho=0.5):
    return Stats.scalar_toy(2.0, 1.0, rho)


def test_weight_zero_is_the_toolkits_gradient_descent():
    spec = NetworkSpec.fusion(2, 2, width=20)
    st = _toy()
    seeds = [0, 1]
    p = init_batch(spec, seeds, "normal", 1e-6)
    win = [Deficit(delete(st, "B"), start=0, end=[0.0, 300.0])]
    r = train_reconstruction(spec, st, p, weight=0.0, lr=0.04, steps=1200, record_every=1,
                             interventions=win)
    tr = simulate(spec, st, seeds=seeds, scheme="normal", scale=1e-6, lr=0.04, steps=1200,
                  record_every=1, interventions=win)
    # the same gradient descent in float64: the crossings agree to rounding, interpolated
    # between the same records (the toolkit interpolates within the step as well)
    np.testing.assert_allclose(r.crossing("B"), tr.crossing("B", "global"), rtol=1e-9)
    np.testing.assert_allclose(r.crossing("A"), tr.crossing("A", "global"), rtol=1e-9)
    np.testing.assert_allclose(r.loss[:, :200], tr.loss[:, :200], rtol=1e-9, atol=1e-14)
    assert r.crossing("B")[1] > r.crossing("B")[0] + 250


def test_gates_and_lesions_as_in_the_toolkits_gradient_descent():
    # At weight 0 the objective is the task loss: a gate on branch B (per-run windows), a unit
    # lesion in A's first layer and a mode lesion of B for good must act exactly as they do in
    # dlnfusion.simulate (the kernel's own implementation of the windows).
    spec = NetworkSpec.fusion(3, 2, width=6)
    st = _toy()
    seeds = [0, 1]
    p = init_batch(spec, seeds, "normal", 1e-2)
    win = [Gate("B", start=[0.0, 100.0], end=[150.0, 400.0]),
           Lesion("W_A^1", unit=2, start=50.0, end=500.0), Lesion("B", mode=0, start=900.0)]
    r = train_reconstruction(spec, st, p, weight=0.0, lr=0.04, steps=1200, record_every=1,
                             interventions=win)
    tr = simulate(spec, st, seeds=seeds, scheme="normal", scale=1e-2, lr=0.04, steps=1200,
                  record_every=1, stop_loss=None, interventions=win)
    # float64 gradient descent along the same path, the two codes ordering their sums
    # differently: rounding only (1e-9 relative leaves a margin of ~1e4 over float64's eps
    # accumulated over 1200 steps)
    np.testing.assert_allclose(r.loss, tr.loss[:, :1200], rtol=1e-9, atol=1e-14)
    # both modalities cross before the mode lesion (without windows: A at ~230, B at ~300)
    for m in ("A", "B"):
        assert np.all(np.isfinite(r.crossing(m))) and np.all(r.crossing(m) < 900)
        np.testing.assert_allclose(r.crossing(m), tr.crossing(m, "global"), rtol=1e-9)
    # the mode lesion zeroes B's map (one mode: its whole map) from step 900 on
    assert np.all(np.abs(r.progress[:, 901:, 1]) < 1e-12) and np.all(r.progress[:, 899, 1] > 0.4)


def test_reconstruction_loss_against_exact_samples():
    """The moment formula against the mean over a sample whose moments are exact."""
    spec = NetworkSpec.fusion(3, 3, width=5, input_dims=(2, 3), output_dim=2)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 5))
    st = Stats.from_teacher(A @ A.T / 5 + np.eye(5) * 0.3, rng.standard_normal((2, 5)),
                            dims=(2, 3), noise_var=0.1)
    with float64():
        p = jax.tree_util.tree_map(lambda a: a[0], init_batch(spec, [3], "normal", 0.5))
        dec = (jnp.asarray(rng.standard_normal((3, 5))), jnp.asarray(rng.standard_normal((2, 5))))
        got = float(reconstruction_loss(spec, p, dec, Moments.of(st)))
        ds = st.sample(400, seed=1, exact=True)
        xa, xb = (np.asarray(x) for x in ds.xs)
        ha = xa @ np.asarray(p.branches[0][0]).T @ np.asarray(p.branches[0][1]).T
        hb = xb @ np.asarray(p.branches[1][0]).T @ np.asarray(p.branches[1][1]).T
        want = np.mean(np.sum((ha @ np.asarray(dec[0]).T - xb) ** 2, 1)) / 3 + \
            np.mean(np.sum((hb @ np.asarray(dec[1]).T - xa) ** 2, 1)) / 2
    assert got == pytest.approx(want, rel=1e-10)


def test_reconstruction_reaches_its_optimum_and_speeds_up_b():
    """Scalar toy: the best linear reconstruction of x_B from x_A leaves (1 − ρ²)σ_B², and of
    x_A from x_B (1 − ρ²)σ_A² (hand computation); with ρ ≠ 0 the objective drives branch B
    before the task does, so t_B comes earlier; with ρ = 0 there is no cross-source signal."""
    spec = NetworkSpec.fusion(2, 2, width=10)
    p = init_batch(spec, [0], "normal", 1e-6)
    rho = 0.5
    with_rec = train_reconstruction(spec, _toy(rho), p, weight=1.0, lr=0.04, steps=2000)
    without = train_reconstruction(spec, _toy(rho), p, weight=0.0, lr=0.04, steps=2000)
    assert with_rec.reconstruction[0, -1] == pytest.approx((1 - rho ** 2) * (4.0 + 1.0),
                                                           rel=1e-8)
    assert with_rec.loss[0, -1] < 1e-12
    assert with_rec.crossing("B")[0] < 0.7 * without.crossing("B")[0]
    flat = [train_reconstruction(spec, _toy(0.0), p, weight=w, lr=0.04, steps=2000)
            for w in (0.0, 1.0)]
    assert flat[1].crossing("B")[0] == pytest.approx(flat[0].crossing("B")[0], rel=1e-6)


def test_train_reconstruction_errors():
    st = _toy()
    spec = NetworkSpec.fusion(2, 2, width=4)
    p = init_batch(spec, [0], "normal", 1e-3)
    early = NetworkSpec.fusion(2, 1, width=4)
    for kwargs, match in (
            (dict(spec=early, params=init_batch(early, [0], "normal", 1e-3)), "fusion_layer >= 2"),
            (dict(weight=-1.0), "weight must be finite and >= 0"),
            (dict(lr=0.0), "lr must be positive"),
            (dict(steps=10, record_every=3), "record_every must be a positive integer dividing"),
            (dict(interventions=Gate("A", 0, 1)), "a list of Deficit, Gate and Lesion"),
            (dict(interventions=[Gate("C", 0, 1)]), "group must be one of"),
            (dict(stats=[st, st]), "one Stats or one per run"),
            (dict(decoder_scale=0.0), "decoder_scale"),
            (dict(spec=NetworkSpec.fusion(2, 2, width=4, activation="relu")), "linear")):
        args = dict(spec=spec, stats=st, params=p, weight=1.0, lr=0.04, steps=10)
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            train_reconstruction(args.pop("spec"), args.pop("stats"), args.pop("params"), **args)
