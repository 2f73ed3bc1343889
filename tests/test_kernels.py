"""Tests for kdwide.kernels: analytic NTK/NNGP (exact diagonal) and the fast empirical NTK."""

from __future__ import annotations

import numpy as np
import pytest

import kdwide  # noqa: F401  (float64)
from kdwide.kernels import analytic_nngp, analytic_ntk, analytic_ntk_diagonal
from kdwide.networks import fully_connected_network

ARCHITECTURES = [
    dict(depth=1, activation="relu", w_std=1.4, b_std=0.3),
    dict(depth=3, activation="relu", w_std=1.2, b_std=0.0),
    dict(depth=2, activation="erf", w_std=1.5, b_std=0.5),
]


def _inputs(n, d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_analytic_kernels_match_neural_tangents_off_the_diagonal(architecture):
    x1, x2 = _inputs(13), _inputs(9, seed=1)
    _, _, kernel_fn = fully_connected_network(width=8, **architecture)
    reference = kernel_fn(x1, x2, ("ntk", "nngp"))
    ntk = analytic_ntk(x1, x2, batch_size=4, **architecture)  # 4 blocks, the last one padded
    assert ntk.shape == (13, 9) and ntk.dtype == np.float64
    np.testing.assert_allclose(ntk, reference.ntk, rtol=1e-11)
    np.testing.assert_allclose(analytic_nngp(x1, x2, **architecture), reference.nngp, rtol=1e-11)
    symmetric = analytic_ntk(x1, batch_size=5, **architecture)
    off_diagonal = ~np.eye(13, dtype=bool)
    np.testing.assert_allclose(np.asarray(symmetric)[off_diagonal], np.asarray(kernel_fn(x1, None, "ntk"))[off_diagonal], rtol=1e-11)
    np.testing.assert_allclose(symmetric, symmetric.T, rtol=1e-13)


def _relu_diagonal_by_hand(x, depth, w_std, b_std):
    q = w_std**2 * np.sum(x * x, axis=1) / x.shape[1] + b_std**2
    ntk = q
    for _ in range(depth):
        q = w_std**2 * q / 2 + b_std**2
        ntk = q + w_std**2 * ntk / 2
    return ntk, q


def test_diagonal_is_exact_where_the_arccos_path_is_not():
    """Science note 2: the diagonal by the cosine-1 recursion, to float64 roundoff."""
    architecture = dict(depth=2, activation="relu", w_std=1.4, b_std=0.1)
    x = _inputs(200, d=10, seed=2)
    exact_ntk, exact_nngp = _relu_diagonal_by_hand(x, 2, 1.4, 0.1)
    np.testing.assert_allclose(analytic_ntk_diagonal(x, **architecture), exact_ntk, rtol=1e-14)
    np.testing.assert_allclose(np.diag(analytic_ntk(x, **architecture)), exact_ntk, rtol=1e-14)
    np.testing.assert_allclose(np.diag(analytic_nngp(x, **architecture)), exact_nngp, rtol=1e-14)
    # The generic off-diagonal formula (what x2 = x gives) loses ~1e-8 there: the trap is real.
    generic = np.diag(analytic_ntk(x, x.copy(), **architecture))
    assert np.max(np.abs(generic - exact_ntk) / exact_ntk) > 1e-10


def test_erf_diagonal_matches_the_off_diagonal_formula():
    architecture = dict(depth=2, activation="erf", w_std=1.5, b_std=0.5)
    x = _inputs(20, seed=3)
    np.testing.assert_allclose(analytic_ntk_diagonal(x, **architecture), np.diag(analytic_ntk(x, x, **architecture)), rtol=1e-12)


def test_analytic_ntk_is_positive_definite_on_distinct_points():
    architecture = dict(depth=2, activation="relu", w_std=1.4, b_std=0.1)
    eigenvalues = np.linalg.eigvalsh(np.asarray(analytic_ntk(_inputs(50, seed=4), **architecture)))
    assert eigenvalues.min() > 0


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        (dict(depth=0), "depth"),
        (dict(activation="gelu"), "activation"),
        (dict(w_std=-1.0), "w_std"),
        (dict(b_std=float("inf")), "b_std"),
        (dict(batch_size=0), "batch_size"),
        (dict(x1=np.zeros(3)), "x1"),
        (dict(x1=np.full((2, 3), np.nan)), "x1"),
        (dict(x2=np.zeros((2, 5))), "input dimension"),
    ],
)
def test_analytic_ntk_rejects_bad_input(arguments, name):
    good = dict(x1=np.ones((2, 3)), x2=None, depth=1, activation="relu", w_std=1.0, b_std=0.0, batch_size=None)
    with pytest.raises(ValueError, match=name):
        analytic_ntk(**{**good, **arguments})
