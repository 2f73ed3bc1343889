"""Kernel algebra of the converged linearized student against explicit weight-space computations."""

import numpy as np
import pytest

import kdwide  # noqa: F401  (float64)
from kdwide import linearized as lin


def _features(rng, n, p=200):
    return rng.standard_normal((p, n)) / np.sqrt(p)


def test_inner_products_norms_and_angles_equal_weight_space_values():
    rng = np.random.default_rng(1)
    phi = _features(rng, 25)
    factorization = lin.factorize_kernel(phi.T @ phi)
    delta_a, delta_b = rng.standard_normal(25), rng.standard_normal(25)
    weights_a = phi @ np.linalg.solve(phi.T @ phi, delta_a)
    weights_b = phi @ np.linalg.solve(phi.T @ phi, delta_b)
    inner = float(lin.weight_change_inner(factorization, delta_a, delta_b))
    assert inner == pytest.approx(weights_a @ weights_b, rel=1e-8)
    assert float(lin.weight_change_norm(factorization, delta_a)) == pytest.approx(np.linalg.norm(weights_a), rel=1e-8)
    cosine = weights_a @ weights_b / np.linalg.norm(weights_a) / np.linalg.norm(weights_b)
    assert float(lin.weight_change_cosine(factorization, delta_a, delta_b)) == pytest.approx(cosine, rel=1e-8)


def test_leading_block_is_the_factorization_of_the_nested_set():
    rng = np.random.default_rng(3)
    phi = _features(rng, 40)
    kernel = phi.T @ phi
    full = lin.factorize_kernel(kernel)
    nested = lin.leading_block(full, 15)
    direct = lin.factorize_kernel(kernel[:15, :15])
    np.testing.assert_allclose(nested.cholesky, direct.cholesky, rtol=1e-10, atol=1e-12)
    rhs = rng.standard_normal(15)
    np.testing.assert_allclose(lin.solve(nested, rhs), np.linalg.solve(kernel[:15, :15], rhs), rtol=1e-8)


def test_many_right_hand_sides_match_one_at_a_time():
    rng = np.random.default_rng(4)
    phi = _features(rng, 20)
    factorization = lin.factorize_kernel(phi.T @ phi)
    rhs = rng.standard_normal((20, 6))
    together = lin.solve(factorization, rhs)
    for k in range(6):
        np.testing.assert_allclose(together[:, k], lin.solve(factorization, rhs[:, k]), rtol=1e-12)


def test_singular_kernel_raises_a_clear_error_and_jitter_fixes_it():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10, 3))
    kernel = x @ x.T  # rank 3 < 10
    with pytest.raises(ValueError, match="not positive definite"):
        lin.factorize_kernel(kernel)
    factorization = lin.factorize_kernel(kernel, jitter=1e-6)
    assert np.all(np.isfinite(factorization.cholesky))
    assert factorization.condition_number > 1e3


@pytest.mark.parametrize(
    "kernel, message",
    [(np.ones((3, 4)), "square"), (np.array([[1.0, np.nan], [np.nan, 1.0]]), "finite"), (np.array([[1.0, 0.5], [0.0, 1.0]]), "symmetric")],
)
def test_bad_kernels_are_rejected(kernel, message):
    with pytest.raises(ValueError, match=message):
        lin.factorize_kernel(kernel)


def test_shape_errors_name_the_argument():
    factorization = lin.factorize_kernel(np.eye(3))
    with pytest.raises(ValueError, match="rhs"):
        lin.solve(factorization, np.ones(4))
    with pytest.raises(ValueError, match="jitter"):
        lin.factorize_kernel(np.eye(3), jitter=-1.0)
    with pytest.raises(ValueError, match="zero"):
        lin.weight_change_cosine(factorization, np.zeros(3), np.ones(3))
