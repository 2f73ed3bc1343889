"""Real-data loaders: bundled digits (offline) and MNIST from tiny local IDX / npz files."""

import gzip
import socket

import numpy as np
import pytest

from kdwide import datasets
from kdwide.seeds import Streams


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_digits_load_offline(no_network):
    images, labels = datasets.load_digits()
    assert images.shape == (1797, 64) and images.dtype == np.float64
    assert images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(np.unique(labels), np.arange(10))
    loaded, _ = datasets.load_dataset("digits")
    np.testing.assert_array_equal(loaded, images)


def _write_idx(path, array, *, compress=False):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.array(array.shape, ">i4").tobytes()
    data = header + array.tobytes()
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def _tiny_mnist(rng, n):
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_local_idx_files(tmp_path, no_network, compress):
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    for split, stems, n in (("train", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), 7),
                            ("t10k", ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), 3)):  # fmt: skip
        images, labels = _tiny_mnist(rng, n)
        _write_idx(tmp_path / (stems[0] + suffix), images, compress=compress)
        _write_idx(tmp_path / (stems[1] + suffix), labels, compress=compress)
        expected = (images, labels)
        split_name = "train" if split == "train" else "test"
        loaded_images, loaded_labels = datasets.load_mnist(tmp_path, split=split_name)
        assert loaded_images.shape == (n, 784) and loaded_images.dtype == np.float64
        np.testing.assert_allclose(loaded_images, expected[0].reshape(n, -1) / 255.0)
        np.testing.assert_array_equal(loaded_labels, expected[1])
    images, labels = datasets.load_dataset("mnist", mnist_directory=tmp_path)
    assert images.shape == (7, 784) and labels.shape == (7,)


def test_mnist_from_local_npz(tmp_path):
    rng = np.random.default_rng(1)
    train, test = _tiny_mnist(rng, 5), _tiny_mnist(rng, 2)
    np.savez(tmp_path / "mnist.npz", x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
    images, labels = datasets.load_mnist(tmp_path, split="test")
    np.testing.assert_allclose(images, test[0].reshape(2, -1) / 255.0)
    np.testing.assert_array_equal(labels, test[1])


def test_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        datasets.load_mnist(tmp_path)
    with pytest.raises(ValueError, match="split"):
        datasets.load_mnist(tmp_path, split="validation")
    with pytest.raises(ValueError, match="mnist_directory"):
        datasets.load_dataset("mnist")
    with pytest.raises(ValueError, match="dataset"):
        datasets.load_dataset("cifar")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        datasets.read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros((2, 3), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="bytes"):
        datasets.read_idx(tmp_path / "short")


def test_read_idx_keeps_big_endian_integers(tmp_path):
    array = (np.arange(6).reshape(2, 3) * 100000).astype(">i4")
    _write_idx(tmp_path / "ints", array)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "ints"), array)


def test_binary_labels_sphere_features_split_and_subsample():
    labels = np.array([0, 5, 9, 3, 5])
    np.testing.assert_array_equal(datasets.binary_labels(labels, positive_classes=[5, 6, 7, 8, 9]), [0, 1, 1, 0, 1])
    with pytest.raises(ValueError, match="positive_classes"):
        datasets.binary_labels(labels, positive_classes=[1])
    rng = np.random.default_rng(2)
    images = rng.uniform(size=(6, 4))
    features = datasets.sphere_features(images)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0)
    centred = images - images[:3].mean(axis=0)
    np.testing.assert_allclose(
        datasets.sphere_features(images, mean=images[:3].mean(axis=0)),
        centred / np.linalg.norm(centred, axis=1, keepdims=True),
    )
    with pytest.raises(ValueError, match="zero"):
        datasets.sphere_features(np.ones((3, 4)))
    streams = Streams(0)
    parts = datasets.disjoint_split(streams.rng("split"), 20, [5, 7, 3])
    assert [p.size for p in parts] == [5, 7, 3]
    assert np.unique(np.concatenate(parts)).size == 15
    np.testing.assert_array_equal(parts[1], datasets.disjoint_split(Streams(0).rng("split"), 20, [5, 7, 3])[1])
    with pytest.raises(ValueError, match="n_points"):
        datasets.disjoint_split(streams.rng("split"), 10, [6, 6])
    with pytest.raises(ValueError, match="rng"):
        datasets.disjoint_split(0, 20, [5, 7, 3])
    sub_images, sub_labels = datasets.subsample(streams.rng("subsample"), images, np.arange(6), 4)
    assert sub_images.shape == (4, 4)
    np.testing.assert_array_equal(sub_images, images[sub_labels])
    with pytest.raises(ValueError, match="n_points"):
        datasets.subsample(streams.rng("subsample"), images, np.arange(6), 7)
    with pytest.raises(ValueError, match="rng"):
        datasets.subsample(0, images, np.arange(6), 4)
