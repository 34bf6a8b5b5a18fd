import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlnfusion import NetworkSpec, Params, Stats, forward, init_params, layer_norms, total_maps


@pytest.mark.parametrize("L, Lf", [(2, 1), (2, 2), (4, 1), (4, 2), (4, 3), (4, 4), (3, 2)])
def test_fusion_shapes(L, Lf):
    spec = NetworkSpec.fusion(L, Lf, width=7, input_dims=(2, 3), output_dim=2)
    assert spec.depth == L and spec.fusion_layer == Lf and spec.post_depth == L - Lf
    assert spec.n_layers == 2 * Lf + (L - Lf)
    for m, d in enumerate((2, 3)):
        chain = spec.branch_dims[m]
        assert chain[0] == d and len(chain) == Lf + 1
    assert spec.post_dims[-1] == 2
    shapes = spec.layer_shapes
    assert shapes[0] == (7 if L > 1 else 2, 2)
    assert len(spec.layer_labels) == spec.n_layers
    assert spec.layer_labels[0] == "W_A^1"


def test_late_fusion_layout_matches_paper():
    spec = NetworkSpec.fusion(2, 2, width=100)
    assert spec.layer_shapes == ((100, 1), (1, 100), (100, 1), (1, 100))
    assert spec.layer_labels == ("W_A^1", "W_A^2", "W_B^1", "W_B^2")
    early = NetworkSpec.fusion(2, 1, width=100)
    assert early.layer_shapes == ((100, 1), (100, 1), (1, 100))
    assert early.layer_labels == ("W_A^1", "W_B^1", "W^2")


def test_unequal_depths():
    spec = NetworkSpec.unequal((3, 5), post_depth=2, width=4)
    assert spec.branch_depths == (3, 5) and spec.post_depth == 2
    with pytest.raises(ValueError, match="unequal"):
        spec.fusion_layer
    late = NetworkSpec.unequal((2, 3), post_depth=0, width=4)
    assert late.post_dims == (1,)


@pytest.mark.parametrize("kwargs, match", [
    (dict(depth=2, fusion_layer=3), "fusion_layer"),
    (dict(depth=0, fusion_layer=1), "depth"),
    (dict(depth=3, fusion_layer=2, width=(5,)), "width"),
    (dict(depth=2, fusion_layer=2, width=-3), "width"),
    (dict(depth=2, fusion_layer=2, activation="swish"), "activation"),
    (dict(depth=2, fusion_layer=2, output_dim=0), "output_dim"),
    (dict(depth=2, fusion_layer=2, names=("A", "A")), "names"),
])
def test_spec_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NetworkSpec.fusion(**kwargs)


def test_spec_chain_errors():
    with pytest.raises(ValueError, match="fused width"):
        NetworkSpec(((1, 4), (1, 5)), (4, 1))
    with pytest.raises(ValueError, match="chain"):
        NetworkSpec(((1,),), (1,))
    with pytest.raises(ValueError, match="branch_dims"):
        NetworkSpec((), (1,))
    with pytest.raises(ValueError, match="post_depth"):
        NetworkSpec.unequal((2, 2), post_depth=-1)
    with pytest.raises(ValueError, match="branch_depths"):
        NetworkSpec.unequal((2, 2, 2), post_depth=1)


def test_normal_init_statistics():
    spec = NetworkSpec.fusion(2, 2, width=2000)
    p = init_params(spec, jax.random.PRNGKey(0), "normal", 0.3)
    for W in [W for layers in p.branches for W in layers]:
        assert abs(float(jnp.std(W)) / 0.3 - 1) < 0.05


def test_frobenius_init_norms():
    spec = NetworkSpec.fusion(4, 2, width=100)
    p = init_params(spec, jax.random.PRNGKey(1), "frobenius", 0.1)
    norms = np.asarray(layer_norms(p))
    n_pre = sum(spec.branch_depths)
    # ‖W‖_F² is a sum of n i.i.d. (u0²/n) χ²_1 terms: relative spread ~ sqrt(2/n).
    assert np.allclose(norms[:n_pre], 0.1, rtol=0.2)
    assert np.allclose(norms[n_pre:], np.sqrt(2) * 0.1, rtol=0.2)


@pytest.mark.parametrize("L, Lf", [(2, 2), (4, 1), (4, 2), (4, 4), (3, 2)])
def test_balanced_init_is_balanced_and_aligned(L, Lf):
    st = Stats.random(dim=5, seed=2, dims=(2, 3))
    spec = NetworkSpec.fusion(L, Lf, width=6, input_dims=(2, 3))
    p = init_params(spec, jax.random.PRNGKey(3), "balanced", 0.7, stats=st)
    for layers in p.branches:
        for a, b in zip(layers[:-1], layers[1:]):
            assert np.allclose(a @ a.T, b.T @ b, atol=1e-12)
    post = p.post
    if post:
        fused = sum(layers[-1] @ layers[-1].T for layers in p.branches)
        assert np.allclose(fused, post[0].T @ post[0], atol=1e-12)
        for a, b in zip(post[:-1], post[1:]):
            assert np.allclose(a @ a.T, b.T @ b, atol=1e-12)
    maps = total_maps(spec, p)
    for m, W in enumerate(maps):
        s = st.sigma_yx_m(m)
        cos = float(np.sum(W * s) / (np.linalg.norm(W) * np.linalg.norm(s)))
        assert cos == pytest.approx(1.0, abs=1e-12)


def test_init_errors():
    spec = NetworkSpec.fusion(2, 2, width=3)
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="scheme"):
        init_params(spec, key, "xavier")
    with pytest.raises(ValueError, match="needs stats"):
        init_params(spec, key, "balanced", 0.1)
    with pytest.raises(ValueError, match="scale"):
        init_params(spec, key, "normal", -1.0)
    with pytest.raises(ValueError, match="do not match"):
        init_params(spec, key, "balanced", 0.1, stats=Stats.random(dim=4, seed=0))


def test_forward_equals_total_maps_for_linear_networks():
    spec = NetworkSpec.fusion(4, 3, width=5, input_dims=(2, 3), output_dim=2)
    p = init_params(spec, jax.random.PRNGKey(4), "normal", 0.5)
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(9, 2)), rng.normal(size=(9, 3))
    y = forward(spec, p, [xa, xb])
    Wa, Wb = total_maps(spec, p)
    assert np.allclose(y, xa @ Wa.T + xb @ Wb.T, atol=1e-12)
    # Independent: multiply the chain by hand.
    ha = xa @ p.branches[0][0].T @ p.branches[0][1].T @ p.branches[0][2].T
    hb = xb @ p.branches[1][0].T @ p.branches[1][1].T @ p.branches[1][2].T
    assert np.allclose(y, (ha + hb) @ p.post[0].T, atol=1e-12)


def test_relu_forward_by_hand():
    spec = NetworkSpec.fusion(3, 2, width=4, activation="relu")
    p = init_params(spec, jax.random.PRNGKey(5), "normal", 1.0)
    rng = np.random.default_rng(1)
    xa, xb = rng.normal(size=(6, 1)), rng.normal(size=(6, 1))
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    (a1, a2), (b1, b2) = [[np.asarray(W) for W in layers] for layers in p.branches]
    z = relu(xa @ a1.T) @ a2.T + relu(xb @ b1.T) @ b2.T
    expected = relu(z) @ np.asarray(p.post[0]).T
    assert np.allclose(forward(spec, p, [xa, xb]), expected, atol=1e-12)


def test_layer_norms():
    p = Params(((jnp.ones((2, 2)),), (3 * jnp.ones((1, 1)),)), ())
    assert np.allclose(layer_norms(p), [2.0, 3.0])
