"""Tests for kdwide.kernels: analytic NTK/NNGP (exact diagonal) and the fast empirical NTK."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import kdwide  # noqa: F401  (float64)
from kdwide.kernels import (
    JACOBIAN_CONTRACTION,
    analytic_nngp,
    analytic_ntk,
    analytic_ntk_diagonal,
    empirical_ntk,
)
from kdwide.networks import fully_connected_network

ARCHITECTURES = [
    dict(depth=1, activation="relu", w_std=1.4, b_std=0.3),
    dict(depth=3, activation="relu", w_std=1.2, b_std=0.0),
    dict(depth=2, activation="erf", w_std=1.5, b_std=0.5),
]


def _inputs(n, d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_analytic_kernels_blocked_and_symmetric(architecture):
    """Blocking and padding change nothing; the symmetric kernel is symmetric. (Equality with neural-tangents'
    kernel_fn is in tests/test_reference.py, where it is installed.)"""
    x1, x2 = _inputs(13), _inputs(9, seed=1)
    ntk = analytic_ntk(x1, x2, batch_size=4, **architecture)  # 4 blocks, the last one padded
    assert ntk.shape == (13, 9) and ntk.dtype == np.float64
    np.testing.assert_allclose(ntk, analytic_ntk(x1, x2, **architecture), rtol=1e-14)
    np.testing.assert_allclose(analytic_nngp(x1, x2, batch_size=5, **architecture),
                               analytic_nngp(x1, x2, **architecture), rtol=1e-14)
    symmetric = analytic_ntk(x1, batch_size=5, **architecture)
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
    generic = np.diag(analytic_ntk(x, x, **architecture))
    np.testing.assert_allclose(analytic_ntk_diagonal(x, **architecture), generic, rtol=1e-12)


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


def _network(width, seed=0, d=4, **architecture):
    init_fn, apply_fn, _ = fully_connected_network(width=width, **architecture)
    _, params = init_fn(jax.random.PRNGKey(seed), (-1, d))
    hyper = {k: architecture[k] for k in ("activation", "w_std", "b_std")}
    return apply_fn, params, hyper


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("second_set", [False, True])
def test_structured_empirical_ntk_equals_jacobian_contraction(architecture, second_set):
    apply_fn, params, hyper = _network(16, **architecture)
    x1, x2 = _inputs(11), (_inputs(6, seed=1) if second_set else None)
    reference = np.asarray(empirical_ntk(apply_fn, params, x1, x2, method=JACOBIAN_CONTRACTION, **hyper))
    fast = np.asarray(empirical_ntk(apply_fn, params, x1, x2, **hyper))
    blocked = np.asarray(empirical_ntk(apply_fn, params, x1, x2, batch_size=4, **hyper))
    assert fast.shape == reference.shape == (11, 6 if second_set else 11) and fast.dtype == np.float64
    assert np.max(np.abs(fast - reference)) <= 1e-10 * np.max(np.abs(reference))
    np.testing.assert_allclose(blocked, fast, rtol=1e-13, atol=0)


@pytest.mark.slow  # several seconds on 2 cores: left out of make test-fast
def test_empirical_ntk_approaches_the_analytic_ntk_as_width_grows():
    architecture = dict(depth=2, activation="relu", w_std=1.4, b_std=0.1)
    x = _inputs(16, seed=5)
    analytic = np.asarray(analytic_ntk(x, **architecture))
    distances = []
    for width in (16, 128, 1024):
        per_seed = []
        for seed in range(2):
            apply_fn, params, hyper = _network(width, seed=seed, **architecture)
            empirical = np.asarray(empirical_ntk(apply_fn, params, x, **hyper))
            per_seed.append(np.linalg.norm(empirical - analytic) / np.linalg.norm(analytic))
        distances.append(np.mean(per_seed))
    assert distances[0] > distances[1] > distances[2]
    assert distances[0] / distances[2] > 3  # ~ sqrt(64) = 8 expected from the 1/sqrt(width) fluctuations


def test_empirical_ntk_rejects_mismatched_hyperparameters_and_bad_input():
    apply_fn, params, hyper = _network(8, depth=1, activation="relu", w_std=1.0, b_std=0.5)
    x = _inputs(5)
    with pytest.raises(ValueError, match="apply_fn"):
        empirical_ntk(apply_fn, params, x, **{**hyper, "w_std": 2.0})
    with pytest.raises(ValueError, match="apply_fn"):
        empirical_ntk(apply_fn, params, x, **{**hyper, "activation": "erf"})
    with pytest.raises(ValueError, match="method"):
        empirical_ntk(apply_fn, params, x, method="structured_derivatives", **hyper)
    with pytest.raises(ValueError, match="params"):
        empirical_ntk(apply_fn, params[:2], x, **hyper)
    with pytest.raises(ValueError, match="input dimension"):
        empirical_ntk(apply_fn, params, _inputs(5, d=3), **hyper)
    with pytest.raises(ValueError, match="batch_size"):
        empirical_ntk(apply_fn, params, x, batch_size=0, **hyper)
