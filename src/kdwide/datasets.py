r"""Real data for Result 3 (claim I1): scikit-learn's bundled ``digits`` and MNIST from local files.

Nothing here downloads. ``digits`` (1797 images of 8×8 pixels, 10 classes) ships inside scikit-learn;
MNIST is read from files the reader already has, either the four IDX files of the original distribution
(``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, optionally gzipped) or a Keras-style ``mnist.npz`` (arrays ``x_train``,
``y_train``, ``x_test``, ``y_test``).

Binary tasks group classes (:func:`binary_labels`); inputs go onto the unit sphere after centring
(:func:`sphere_features`), where the tangent kernels of :mod:`kdwide.kernels` are at home.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kdwide.validation import check_positive_int

__all__ = [
    "DATASETS",
    "load_digits",
    "read_idx",
    "load_mnist",
    "load_dataset",
    "binary_labels",
    "sphere_features",
    "disjoint_split",
    "subsample",
]

DATASETS: tuple[str, ...] = ("digits", "mnist")
"""Names accepted by :func:`load_dataset`."""

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (no download).

    Returns:
      ``(images, labels)``: ``(1797, 64)`` float64 pixel intensities scaled to [0, 1], ``(1797,)`` int labels 0–9.
    """
    from sklearn.datasets import load_digits as _sklearn_digits  # noqa: PLC0415  (bundled data, local file)

    bunch = _sklearn_digits()
    return np.asarray(bunch.data, np.float64) / 16.0, np.asarray(bunch.target, np.int64)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the MNIST format; ``.gz`` is decompressed). Returns the array with its stored shape.

    Raises:
      FileNotFoundError: no such file. ValueError: not an IDX file, or its size does not match its header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtype = np.dtype(_IDX_TYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(data, ">i4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX body has {len(data) - header} bytes, header says {expected}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape)


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def load_mnist(directory: str | os.PathLike, *, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST from local files in ``directory`` (IDX files or ``mnist.npz``); never downloads.

    Args:
      directory: folder holding the files (see the module docstring).
      split: ``"train"`` or ``"test"``.

    Returns:
      ``(images, labels)``: ``(N, 784)`` float64 in [0, 1] and ``(N,)`` int labels 0–9.

    Raises:
      ValueError: bad ``split``. FileNotFoundError: the files are not there (the message lists what was
        looked for).
    """
    if split not in _MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    directory = Path(directory)
    image_file, label_file = (_find(directory, stem) for stem in _MNIST_FILES[split])
    if image_file is not None and label_file is not None:
        images, labels = read_idx(image_file), read_idx(label_file)
    elif (directory / "mnist.npz").is_file():
        with np.load(directory / "mnist.npz") as archive:
            images, labels = archive[f"x_{split}"], archive[f"y_{split}"]
    else:
        raise FileNotFoundError(
            f"MNIST files not found in {directory}: expected {' and '.join(_MNIST_FILES[split])} (optionally .gz) "
            "or mnist.npz. kdwide never downloads; place the files there first."
        )
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"MNIST {split}: images {images.shape} and labels {labels.shape} do not match")
    return images.reshape(images.shape[0], -1).astype(np.float64) / 255.0, labels.astype(np.int64)


def load_dataset(name: str, *, mnist_directory: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of ``name`` in :data:`DATASETS` (MNIST: the training split from ``mnist_directory``)."""
    if name == "digits":
        return load_digits()
    if name == "mnist":
        if mnist_directory is None:
            raise ValueError("mnist_directory must be given for dataset 'mnist' (a folder with local MNIST files)")
        return load_mnist(mnist_directory, split="train")
    raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")


def binary_labels(labels: np.ndarray, *, positive_classes: Sequence[int]) -> np.ndarray:
    """Binary task: 1 where ``labels`` is in ``positive_classes``, else 0. ``(N,)`` int in, ``(N,)`` int out.

    Raises ``ValueError`` if either side of the split would be empty.
    """
    labels = np.asarray(labels)
    positive = np.isin(labels, np.asarray(list(positive_classes)))
    if positive.all() or not positive.any():
        raise ValueError(f"positive_classes {list(positive_classes)!r} must leave both classes non-empty")
    return positive.astype(np.int64)


def sphere_features(images: np.ndarray, *, mean: np.ndarray | None = None) -> np.ndarray:
    """Centre the pixels (by ``mean``, default the images' own mean image) and scale each row to unit norm.

    Args:
      images: ``(N, p)``; mean: ``(p,)`` or None.

    Returns:
      ``(N, p)`` float64 rows on the unit sphere. Raises ``ValueError`` if a centred row is zero.
    """
    images = np.asarray(images, np.float64)
    if images.ndim != 2:
        raise ValueError(f"images must have shape (N, p), got {images.shape}")
    centred = images - (images.mean(axis=0) if mean is None else np.asarray(mean, np.float64))
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("images: a centred image is zero and has no direction")
    return centred / norms


def _generator(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (e.g. Streams(seed).rng('split')), got {rng!r}")
    return rng


def disjoint_split(rng: np.random.Generator, n_points: int, sizes: Sequence[int]) -> list[np.ndarray]:
    """Random disjoint index sets of the given ``sizes`` from ``range(n_points)`` (e.g. teacher, student, test).

    ``rng`` is a NumPy generator, e.g. ``streams.rng("split")`` (:class:`kdwide.seeds.Streams`). Raises ``ValueError`` if the sizes add up to more than ``n_points``.
    """
    check_positive_int(n_points, "n_points")
    for size in sizes:
        check_positive_int(size, "sizes")
    if sum(sizes) > n_points:
        raise ValueError(f"sizes {list(sizes)} add up to more than n_points = {n_points}")
    order = _generator(rng).permutation(n_points)
    bounds = np.cumsum([0, *sizes])
    return [np.sort(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def subsample(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, n_points: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A random subset of ``n_points`` rows of ``images`` and ``labels`` (all of them, in order, if None), drawn
    with the NumPy generator ``rng`` (e.g. ``streams.rng("subsample")``).

    Keeps kernels of large sets such as MNIST (60000 images) within a CPU budget.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.shape[:1] != labels.shape:
        raise ValueError(f"images {images.shape} and labels {labels.shape} must have the same number of rows")
    if n_points is None:
        return images, labels
    check_positive_int(n_points, "n_points")
    if n_points > labels.shape[0]:
        raise ValueError(f"n_points must be at most {labels.shape[0]}, got {n_points}")
    rows = np.sort(_generator(rng).choice(labels.shape[0], n_points, replace=False))
    return images[rows], labels[rows]
