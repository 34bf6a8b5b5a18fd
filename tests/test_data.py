"""Images, IDX files and the noisy two-digit task."""
import gzip
import struct

import jax
import numpy as np
import pytest

from dlnfusion.data import (MNIST_FILES, NOISE_KEEP, NOISE_STD, FusionTask, ImageSet,
                            load_digits, load_mnist, noisy_digits, noisy_pairs, read_idx,
                            train_test_split)


def _write_idx(path, array, code=0x08, gz=False):
    array = np.asarray(array)
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    dt = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    raw = header + array.astype(dt).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _fake_mnist(folder, n_train=30, n_test=12, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        img = rng.integers(0, 256, size=(n, 28, 28))
        lab = np.arange(n) % 10
        names = MNIST_FILES[split]
        sfx = ".gz" if gz else ""
        _write_idx(folder / (names[0] + sfx), img, gz=gz)
        _write_idx(folder / (names[1] + sfx), lab, gz=gz)
        arrays[split] = (img, lab)
    return arrays


@pytest.mark.parametrize("code", [0x08, 0x0C, 0x0D])
def test_read_idx_roundtrip(tmp_path, code):
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4) * (1 if code != 0x0D else 0.5)
    _write_idx(tmp_path / "a.idx", a, code)
    _write_idx(tmp_path / "a.idx.gz", a, code, gz=True)
    for name in ("a.idx", "a.idx.gz"):
        b = read_idx(tmp_path / name)
        assert b.shape == a.shape
        np.testing.assert_array_equal(b, a)


def test_read_idx_malformed(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_idx(tmp_path / "missing")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01abcd")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")
    _write_idx(tmp_path / "cut", np.zeros((4, 5)))
    (tmp_path / "cut").write_bytes((tmp_path / "cut").read_bytes()[:-3])
    with pytest.raises(ValueError, match="announces shape"):
        read_idx(tmp_path / "cut")


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_from_written_files(tmp_path, gz):
    arrays = _fake_mnist(tmp_path / "m", gz=gz)
    train, test = load_mnist(tmp_path / "m")
    assert isinstance(train, ImageSet) and train.name == "mnist"
    assert train.images.shape == (30, 28, 28) and test.images.shape == (12, 28, 28)
    np.testing.assert_allclose(train.images, arrays["train"][0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(test.labels, arrays["test"][1])


def test_load_mnist_errors(tmp_path):
    with pytest.raises(ValueError, match="mnist folder .* does not exist"):
        load_mnist(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no file 'train-images-idx3-ubyte'"):
        load_mnist(tmp_path / "empty")
    _fake_mnist(tmp_path / "bad")
    _write_idx(tmp_path / "bad" / MNIST_FILES["test"][1], np.arange(5))
    with pytest.raises(ValueError, match="do not match"):
        load_mnist(tmp_path / "bad")
    (tmp_path / "bad" / MNIST_FILES["train"][0]).write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="magic"):
        load_mnist(tmp_path / "bad")
    with pytest.raises(ValueError, match="mnist folder"):
        noisy_digits(tmp_path / "nowhere")


def test_digits_and_split():
    d = load_digits()
    assert d.images.shape == (1797, 8, 8) and d.n_classes == 10
    assert d.images.min() == 0.0 and d.images.max() == 1.0
    train, test = train_test_split(d, 0.25, seed=3)
    assert len(train) + len(test) == 1797 and len(test) == 450
    # stratified: every class loses a quarter of its images, rounded
    for c in range(10):
        n_c = np.sum(d.labels == c)
        assert np.sum(test.labels == c) == round(0.25 * n_c)
    again = train_test_split(d, 0.25, seed=3)[1]
    np.testing.assert_array_equal(again.images, test.images)
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(d, 1.0)
    with pytest.raises(ValueError, match="shape"):
        ImageSet(np.zeros((3, 4)), np.zeros(3, int))
    with pytest.raises(ValueError, match="labels"):
        ImageSet(np.zeros((3, 4, 4)), np.zeros(2, int))


def test_noisy_pairs_structure():
    task = noisy_digits(seed=1)
    assert task.n_train == 1347 and task.n_test == 450 and task.n_classes == 10
    xa, xb = task.train_x
    # standardized by the training images' pixel statistics
    assert abs(float(xa.mean())) < 1e-5 and abs(float(xa.std()) - 1.0) < 1e-5
    # B shows another image of the same class
    d = load_digits()
    flat = {img.tobytes(): k for k, img in enumerate(
        ((d.images - task.info["pixel_mean"]) / task.info["pixel_std"]).astype(np.float32))}
    la = [d.labels[flat[x.tobytes()]] for x in xa[:200]]
    lb = [d.labels[flat[x.tobytes()]] for x in xb[:200]]
    assert la == lb == list(task.train_y[:200])
    assert not any(np.array_equal(a, b) for a, b in zip(xa[:200], xb[:200]))
    same = noisy_digits(seed=1, pairing="same")
    np.testing.assert_array_equal(same.train_x[0], same.train_x[1])


def test_corruption_rates_and_level():
    """Frequencies of the three cases match (0.6, 0.2, 0.2) within 5 binomial standard
    deviations for n = 20,000 (σ ≤ 0.0035), and a corrupted image is keep·x + noise of
    standard deviation NOISE_STD (sampling error of the std over 20,000·64 pixels ~ 1e-4)."""
    n = 20_000
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8, 8)).astype(np.float32)
    labels = np.arange(n) % 10
    task = noisy_pairs(ImageSet(np.abs(x[:50]), labels[:50]), ImageSet(np.abs(x[:20]), labels[:20]))
    ya, yb = task.corrupt(jax.random.PRNGKey(0), (x, x))
    ya, yb = np.asarray(ya), np.asarray(yb)
    hit_a = ~np.all(ya == x, axis=(1, 2))
    hit_b = ~np.all(yb == x, axis=(1, 2))
    assert not np.any(hit_a & hit_b)
    tol = 5 * np.sqrt(0.25 / n)
    assert abs(hit_b.mean() - 0.6) < tol and abs(hit_a.mean() - 0.2) < tol
    assert abs((~hit_a & ~hit_b).mean() - 0.2) < tol
    resid = yb[hit_b] - NOISE_KEEP * x[hit_b]
    assert abs(resid.std() - NOISE_STD) < 5 * NOISE_STD / np.sqrt(2 * resid.size)
    assert abs(resid.mean()) < 5 * NOISE_STD / np.sqrt(resid.size)


def test_task_errors():
    d = load_digits()
    tr, te = train_test_split(d)
    with pytest.raises(ValueError, match="p_b"):
        noisy_pairs(tr, te, p_b=1.5)
    with pytest.raises(ValueError, match="p_a \\+ p_b"):
        noisy_pairs(tr, te, p_b=0.7, p_a=0.4)
    with pytest.raises(ValueError, match="noise_std"):
        noisy_pairs(tr, te, noise_std=float("nan"))
    with pytest.raises(ValueError, match="pairing"):
        noisy_pairs(tr, te, pairing="random")
    big = ImageSet(np.zeros((10, 28, 28)), np.arange(10))
    with pytest.raises(ValueError, match="one image size"):
        noisy_pairs(tr, big)
    x8, x28 = np.zeros((10, 8, 8)), np.zeros((10, 28, 28))
    y = np.arange(10)
    with pytest.raises(ValueError, match="train_x: the images of the modalities must have the "
                                         "same size, got 8×8 and 28×28"):
        FusionTask((x8, x28), y, (x8, x28), y, n_classes=10)
    with pytest.raises(ValueError, match="same number of samples"):
        FusionTask((x8, x8[:5]), y, (x8, x8), y, n_classes=10)
    with pytest.raises(ValueError, match="train_y must hold integer labels"):
        FusionTask((x8, x8), y + 5, (x8, x8), y, n_classes=10)
    with pytest.raises(ValueError, match="test_x inputs"):
        FusionTask((x8, x8), y, (x28, x28), y, n_classes=10)
    with pytest.raises(ValueError, match="non-finite"):
        FusionTask((x8 * np.nan, x8), y, (x8, x8), y, n_classes=10)
