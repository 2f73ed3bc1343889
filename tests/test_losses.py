"""The KD loss of S1: definition, stability for large logits, transformations, input errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kdwide
from kdwide import kd_loss, kd_loss_gradient, kd_loss_per_sample


def naive_loss(zs, zt, y, rho, t):
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    h = lambda p, q: -p * np.log(q) - (1 - p) * np.log(1 - q)  # noqa: E731
    return rho * h(sig(zt / t), sig(zs / t)) + (1 - rho) * h(y, sig(zs))


def test_matches_the_definition_for_moderate_logits():
    rng = np.random.default_rng(0)
    zs, zt, y = rng.normal(size=50), rng.normal(size=50) * 3, rng.integers(0, 2, 50)
    np.testing.assert_allclose(kd_loss_per_sample(zs, zt, y, rho=0.3, temperature=2.0), naive_loss(zs, zt, y, 0.3, 2.0), rtol=1e-12)
    assert float(kd_loss(zs, zt, y, rho=0.3, temperature=2.0)) == pytest.approx(naive_loss(zs, zt, y, 0.3, 2.0).mean(), rel=1e-12)


def test_hard_term_has_no_temperature_and_soft_term_no_t_squared():
    zs, zt, y = np.array([1.3]), np.array([-0.4]), np.array([1])
    hard = float(kd_loss(zs, zt, y, rho=0.0, temperature=7.0))
    assert hard == pytest.approx(float(np.log1p(np.exp(-1.3))), rel=1e-12)
    grad = float(jax.grad(lambda s: kd_loss(s, zt, y, rho=1.0, temperature=4.0))(zs)[0])
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert grad == pytest.approx((sig(1.3 / 4) - sig(-0.4 / 4)) / 4, rel=1e-12)


def test_finite_for_huge_logits():
    zs = np.array([-800.0, 800.0, 0.0])
    zt = np.array([900.0, -900.0, 1000.0])
    y = np.array([1, 0, 1])
    loss = kd_loss_per_sample(zs, zt, y, rho=0.5, temperature=0.5)
    grad = jax.grad(lambda s: kd_loss(s, zt, y, rho=0.5, temperature=0.5))(zs)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    assert float(loss[0]) == pytest.approx(0.5 * 1600 + 0.5 * 800, rel=1e-9)


def test_gradient_equals_the_c1_left_side_and_works_under_jit_and_vmap():
    rng = np.random.default_rng(1)
    zs, zt, y = rng.normal(size=8) * 4, rng.normal(size=8) * 4, rng.integers(0, 2, 8)
    grad = jax.jit(jax.grad(lambda s: kd_loss(s, zt, y, rho=0.7, temperature=3.0)))(zs)
    np.testing.assert_allclose(grad * len(zs), kd_loss_gradient(zs, zt, y, rho=0.7, temperature=3.0), rtol=1e-12)
    per_row = jax.vmap(lambda s: kd_loss(s, zt, y, rho=0.7, temperature=3.0))(jnp.stack([zs, -zs]))
    assert per_row.shape == (2,)


@pytest.mark.parametrize(
    "kwargs, name", [(dict(rho=2.0, temperature=1.0), "rho"), (dict(rho=0.5, temperature=0.0), "temperature")]
)
def test_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        kd_loss(np.zeros(2), np.zeros(2), np.zeros(2, int), **kwargs)


def test_bad_shapes_and_labels():
    with pytest.raises(ValueError, match="shapes"):
        kd_loss(np.zeros(2), np.zeros(3), np.zeros(2, int), rho=0.5, temperature=1.0)
    with pytest.raises(ValueError, match="y_hard"):
        kd_loss(np.zeros(2), np.zeros(2), np.array([0, 3]), rho=0.5, temperature=1.0)
    with pytest.raises(ValueError, match="z_student"):
        kd_loss(np.array([np.nan, 0.0]), np.zeros(2), np.zeros(2, int), rho=0.5, temperature=1.0)
    assert kdwide.binary_cross_entropy_with_logits(0.5, 0.0) == pytest.approx(np.log(2))
