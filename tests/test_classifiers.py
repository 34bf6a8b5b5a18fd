"""Fully connected and convolutional fusion networks with biases, checked against numpy."""
import jax
import numpy as np
import pytest

from dlnfusion import FusionCNN, FusionMLP


def _np(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def test_mlp_init_is_pytorch_default():
    """Every weight and bias of a layer is uniform on ±1/√fan_in, fan_in the layer's input width
    (the fusion layer's: the sum of the branch widths). Empirical std of a uniform sample of
    size n: bound/√3 with relative sampling error ~ 1/√(1.25 n); 5σ."""
    net = FusionMLP((64, 32), depth=4, fusion_layer=3, width=200, n_out=10)
    p = _np(net.init(jax.random.PRNGKey(0)))
    layers = [(W, b, W.shape[1]) for br in p["branches"] for W, b in br]
    layers += [(W, p["fused_b"], 400) for W in p["fused"]]
    layers += [(W, b, W.shape[1]) for W, b in p["post"]]
    assert [W.shape for br in p["branches"] for W, _ in br] == [(200, 64), (200, 200),
                                                                 (200, 32), (200, 200)]
    assert [W.shape for W in p["fused"]] == [(200, 200), (200, 200)]
    assert [W.shape for W, _ in p["post"]] == [(10, 200)]
    for W, b, fan in layers:
        bound = 1 / np.sqrt(fan)
        assert np.abs(W).max() <= bound and np.abs(b).max() <= bound
        rel = 5 / np.sqrt(1.25 * W.size)
        assert abs(W.std() / (bound / np.sqrt(3)) - 1) < rel


def _mlp_numpy(p, xs, relu=True):
    act = (lambda h: np.maximum(h, 0)) if relu else (lambda h: h)
    feats = []
    for x, layers in zip(xs, p["branches"]):
        h = x.reshape(len(x), -1)
        for W, b in layers:
            h = act(h @ W.T + b)
        feats.append(h)
    z = np.concatenate(feats, 1) @ np.concatenate(p["fused"], 1).T + p["fused_b"]
    for W, b in p["post"]:
        z = act(z) @ W.T + b
    return z


@pytest.mark.parametrize("Lf", [1, 2, 3])
def test_mlp_forward_matches_concatenation(Lf):
    """Summing per-branch parts of the fusion layer is concatenation (float32 round-off)."""
    net = FusionMLP((5, 3), depth=3, fusion_layer=Lf, width=7, n_out=4)
    p = net.init(jax.random.PRNGKey(Lf))
    rng = np.random.default_rng(0)
    xs = (rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32))
    np.testing.assert_allclose(np.asarray(net.apply(p, xs)), _mlp_numpy(_np(p), xs),
                               rtol=1e-5, atol=1e-6)
    lin = FusionMLP((5, 3), depth=3, fusion_layer=Lf, width=7, n_out=4, activation="linear")
    np.testing.assert_allclose(np.asarray(lin.apply(p, xs)), _mlp_numpy(_np(p), xs, relu=False),
                               rtol=1e-5, atol=1e-6)


def _conv_numpy(x, W, b, same):
    """Cross-correlation (NHWC input, HWIO kernel), stride 1, as PyTorch's Conv2d."""
    k = W.shape[0]
    if same:
        x = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    N, H, Wd, _ = x.shape
    out = np.zeros((N, H - k + 1, Wd - k + 1, W.shape[3]))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            patch = x[:, i:i + k, j:j + k, :]
            out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, W)
    return out + b


def _cnn_numpy(p, xs, same):
    relu = lambda h: np.maximum(h, 0)  # noqa: E731
    hs = []
    for x, layers in zip(xs, p["branches"]):
        h = x[..., None]
        for W, b in layers:
            h = relu(_conv_numpy(h, W, b, same))
        hs.append(h)
    h = relu(_conv_numpy(np.concatenate(hs, -1), *p["fused"], same))
    for W, b in p["post"]:
        h = relu(_conv_numpy(h, W, b, same))
    N, H, Wd, C = h.shape
    h = h[:, :H // 2 * 2, :Wd // 2 * 2].reshape(N, H // 2, 2, Wd // 2, 2, C).max(axis=(2, 4))
    W, b = p["dense"]
    return h.reshape(N, -1) @ W.T + b


@pytest.mark.parametrize("Lf,padding", [(1, "VALID"), (2, "VALID"), (3, "SAME")])
def test_cnn_forward_matches_numpy(Lf, padding):
    net = FusionCNN((9, 9), fusion_layer=Lf, n_conv=3, channels=4, n_out=5, padding=padding)
    p = net.init(jax.random.PRNGKey(Lf))
    rng = np.random.default_rng(1)
    xs = tuple(rng.normal(size=(3, 9, 9)).astype(np.float32) for _ in range(2))
    ref = _cnn_numpy(_np(p), xs, padding == "SAME")
    np.testing.assert_allclose(np.asarray(net.apply(p, xs)), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("padding,k", [("SAME", 3), ("VALID", 3), ("SAME", 4)])
def test_conv_matches_lax_convolution(padding, k):
    """The shifted-product convolution equals JAX's own convolution primitive."""
    from dlnfusion.networks.classifiers import _conv

    rng = np.random.default_rng(k)
    x = rng.normal(size=(2, 7, 6, 3)).astype(np.float32)
    W = rng.normal(size=(k, k, 3, 5)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    ref = jax.lax.conv_general_dilated(x, W, (1, 1), padding,
                                       dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
    np.testing.assert_allclose(np.asarray(_conv(x, W, b, padding)), np.asarray(ref),
                               rtol=1e-5, atol=1e-5)


def test_cnn_shapes_and_init():
    digits = FusionCNN((8, 8), fusion_layer=3)
    assert digits.padding == "SAME" and digits.dense_in == 4 * 4 * 32
    mnist = FusionCNN((28, 28), fusion_layer=3)
    assert mnist.padding == "VALID" and mnist.feature_shape == (18, 18)
    assert mnist.dense_in == 9 * 9 * 32
    p = _np(mnist.init(jax.random.PRNGKey(0)))
    assert [W.shape for br in p["branches"] for W, _ in br] == [(3, 3, 1, 32), (3, 3, 32, 32)] * 2
    assert p["fused"][0].shape == (3, 3, 64, 32) and len(p["post"]) == 2
    assert np.abs(p["fused"][0]).max() <= 1 / np.sqrt(64 * 9)
    assert np.abs(p["dense"][0]).max() <= 1 / np.sqrt(2592)
    early = _np(FusionCNN((28, 28), fusion_layer=1).init(jax.random.PRNGKey(0)))
    assert early["fused"][0].shape == (3, 3, 2, 32) and early["branches"] == ((), ())


def test_network_errors():
    with pytest.raises(ValueError, match="fusion_layer"):
        FusionCNN((8, 8), fusion_layer=6)
    with pytest.raises(ValueError, match="padding 'VALID'"):
        FusionCNN((8, 8), padding="VALID")
    with pytest.raises(ValueError, match="padding must be"):
        FusionCNN((8, 8), padding="full")
    with pytest.raises(ValueError, match="image_shape"):
        FusionCNN((8,))
    with pytest.raises(ValueError, match="channels"):
        FusionCNN((8, 8), channels=0)
    with pytest.raises(ValueError, match="fusion_layer"):
        FusionMLP((4, 4), depth=3, fusion_layer=4)
    with pytest.raises(ValueError, match="activation"):
        FusionMLP((4, 4), depth=3, fusion_layer=1, activation="swish2")
    with pytest.raises(ValueError, match="input_dims"):
        FusionMLP((4, 0), depth=3, fusion_layer=1)
