r"""The knowledge-distillation loss of the paper (claim S1).

.. math::

    \mathcal L_{KD} = \frac1N \sum_n \rho\, H\big(\sigma(z_{t,n}/T), \sigma(z_{s,n}/T)\big)
                      + (1-\rho)\, H\big(y_{g,n}, \sigma(z_{s,n})\big)

with :math:`H(p, q) = -p\log q - (1-p)\log(1-q)` the binary cross-entropy. The hard term uses
:math:`\sigma(z_s)` *without* temperature, and the soft term has no :math:`T^2` factor (unlike
Hinton et al.), so its gradient carries :math:`\rho/T`.

All forms use ``log_sigmoid`` so that logits of any size give finite losses and gradients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kdwide.validation import (
    check_finite,
    check_hard_labels,
    check_same_shape,
    check_soft_ratio,
    check_temperature,
)

__all__ = ["binary_cross_entropy_with_logits", "kd_loss_per_sample", "kd_loss", "kd_loss_gradient"]


def binary_cross_entropy_with_logits(p: jax.Array, logits: jax.Array) -> jax.Array:
    r"""``H(p, σ(logits))`` elementwise, stable for large ``|logits|``.

    Args:
      p: target probabilities, any shape.
      logits: same shape as ``p``.

    Returns:
      ``-p·log σ(logits) − (1−p)·log σ(−logits)``, same shape.
    """
    return -p * jax.nn.log_sigmoid(logits) - (1.0 - p) * jax.nn.log_sigmoid(-logits)


def _check(z_student, z_teacher, y_hard, rho, temperature) -> None:
    check_soft_ratio(rho)
    check_temperature(temperature)
    check_hard_labels(y_hard)
    check_finite(z_student, "z_student")
    check_finite(z_teacher, "z_teacher")
    check_same_shape(z_student=z_student, z_teacher=z_teacher, y_hard=y_hard)


def kd_loss_per_sample(
    z_student: jax.Array, z_teacher: jax.Array, y_hard: jax.Array, *, rho: float, temperature: float
) -> jax.Array:
    r"""Per-sample KD loss :math:`\ell_n` of S1.

    Args:
      z_student: student logits, shape ``(N,)`` (any shape works elementwise).
      z_teacher: teacher logits, same shape.
      y_hard: ground-truth labels in {0, 1}, same shape.
      rho: soft ratio in [0, 1].
      temperature: T > 0.

    Returns:
      Array of the same shape with :math:`\rho H(\sigma(z_t/T), \sigma(z_s/T)) + (1-\rho) H(y_g, \sigma(z_s))`.
    """
    _check(z_student, z_teacher, y_hard, rho, temperature)
    soft_target = jax.nn.sigmoid(z_teacher / temperature)
    soft = binary_cross_entropy_with_logits(soft_target, z_student / temperature)
    hard = binary_cross_entropy_with_logits(jnp.asarray(y_hard, soft.dtype), z_student)
    return rho * soft + (1.0 - rho) * hard


def kd_loss(
    z_student: jax.Array, z_teacher: jax.Array, y_hard: jax.Array, *, rho: float, temperature: float
) -> jax.Array:
    """Mean KD loss of S1 over the samples (a scalar). Shapes as in :func:`kd_loss_per_sample`.

    Works under ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

    Example:
      >>> import jax, numpy as np
      >>> z_teacher, y_hard = np.array([2.0, -1.0]), np.array([1, 0])
      >>> round(float(kd_loss(z_teacher, z_teacher, y_hard, rho=0.5, temperature=2.0)), 4)
      0.4213
      >>> # at the effective logits every per-sample gradient vanishes (C1)
      >>> from kdwide import effective_logit
      >>> root = effective_logit(z_teacher, y_hard, rho=0.5, temperature=2.0)
      >>> bool(np.abs(jax.grad(kd_loss)(root, z_teacher, y_hard, rho=0.5, temperature=2.0)).max() < 1e-12)
      True
    """
    return jnp.mean(kd_loss_per_sample(z_student, z_teacher, y_hard, rho=rho, temperature=temperature))


def kd_loss_gradient(
    z_student: jax.Array, z_teacher: jax.Array, y_hard: jax.Array, *, rho: float, temperature: float
) -> jax.Array:
    r"""Derivative of the per-sample loss with respect to the student logit (C1's left side).

    .. math:: \frac{d\ell}{dz_s} = \frac{\rho}{T}\big(\sigma(z_s/T) - \sigma(z_t/T)\big) + (1-\rho)\big(\sigma(z_s) - y_g\big)

    Shapes as in :func:`kd_loss_per_sample`; returns the same shape.
    """
    _check(z_student, z_teacher, y_hard, rho, temperature)
    soft = (jax.nn.sigmoid(z_student / temperature) - jax.nn.sigmoid(z_teacher / temperature)) / temperature
    hard = jax.nn.sigmoid(z_student) - jnp.asarray(y_hard, soft.dtype)
    return rho * soft + (1.0 - rho) * hard
