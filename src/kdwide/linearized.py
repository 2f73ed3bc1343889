r"""The converged linearized student (Corollary 2, claim C2), through kernel algebra.

A wide student is close to its linearization :math:`f(x; w) \approx f(x; w_0) + \Delta w^\top \phi(x)`
with random features :math:`\phi(x) = \partial_w f(x; w_0)`. Trained to the per-sample minima of C1 it
converges to the minimum-norm weight change that fits the effective logits:

.. math:: \Delta\hat w = \phi(X)\,\Theta^{-1}\Delta z, \qquad \Delta z = z_{s,\mathrm{eff}}(X) - f(X; w_0),

with :math:`\Theta = \phi(X)^\top\phi(X)` the (empirical or analytic) tangent kernel. Everything the paper
measures about :math:`\Delta\hat w` is an inner product of such weight changes, so it needs only kernels:

.. math:: \langle \Delta w_a, \Delta w_b\rangle = \Delta z_a^\top \Theta^{-1} \Delta z_b
   \quad\text{(same inputs)},\qquad
   \langle \Delta w_a, \Delta w_b\rangle = \Delta z_a^\top \Theta_{aa}^{-1}\Theta_{ab}\Theta_{bb}^{-1} \Delta z_b
   \quad\text{(inputs } X_a, X_b).

Never a parameter-sized vector. The kernel is factorized once (Cholesky, float64) and reused for many
right-hand sides (a ρ×T grid: one column per grid point) and for nested training sets: the Cholesky
factor of the leading :math:`n\times n` block of :math:`\Theta` is the leading block of the factor of the
whole matrix, so an n-sweep factorizes only the largest set (:func:`leading_block`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from kdwide.validation import check_finite

__all__ = [
    "KernelFactorization",
    "factorize_kernel",
    "leading_block",
    "solve",
    "converged_outputs",
    "weight_change_inner",
    "weight_change_norm",
    "weight_change_cosine",
]


class KernelFactorization(NamedTuple):
    """Cholesky factorization of a training-set kernel.

    Attributes:
      cholesky: lower-triangular factor ``L`` with ``L Lᵀ = Θ + jitter·I``, shape ``(n, n)``, float64.
      jitter: the diagonal shift that was added (0.0 unless asked for).
      condition_number: estimate ``(max diag L / min diag L)²`` of the condition number of Θ + jitter·I
        (a cheap lower bound of the 2-norm condition number).
    """

    cholesky: jnp.ndarray
    jitter: float
    condition_number: float

    @property
    def size(self) -> int:
        """Number of training points n."""
        return int(self.cholesky.shape[0])


@jax.jit
def _checked_cholesky(kernel, jitter):
    """One compiled pass: finiteness, scale, asymmetry and the Cholesky factor of the symmetrized kernel."""
    matrix = 0.5 * (kernel + kernel.T) + jitter * jnp.eye(kernel.shape[0], dtype=kernel.dtype)
    return (
        jnp.all(jnp.isfinite(kernel)),
        jnp.max(jnp.abs(kernel)),
        jnp.max(jnp.abs(kernel - kernel.T)),
        jnp.linalg.cholesky(matrix),
    )


def factorize_kernel(kernel: jnp.ndarray, *, jitter: float = 0.0) -> KernelFactorization:
    """Cholesky-factorize a symmetric positive-definite kernel matrix in float64.

    Args:
      kernel: ``(n, n)`` kernel on the training inputs.
      jitter: non-negative value added to the diagonal before factorizing (documented regularization;
        0 by default: the converged student interpolates exactly).

    Returns:
      :class:`KernelFactorization`.

    Raises:
      ValueError: ``kernel`` not square, not finite or not symmetric, ``jitter`` < 0, or the matrix is
        not numerically positive definite (Cholesky failed): the message suggests a jitter.
    """
    kernel = jnp.asarray(kernel, jnp.float64)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must be a square (n, n) matrix, got shape {kernel.shape}")
    if not (np.isfinite(jitter) and jitter >= 0):
        raise ValueError(f"jitter must be a finite number >= 0, got {jitter!r}")
    finite, scale, asymmetry, factor = _checked_cholesky(kernel, jitter)
    if not bool(finite):
        raise ValueError("kernel must be finite (no NaN or infinity)")
    if float(asymmetry) > 1e-10 * max(float(scale), 1e-300):
        raise ValueError("kernel must be symmetric")
    diagonal = np.asarray(jnp.diag(factor))
    if not np.all(np.isfinite(diagonal)) or np.any(diagonal <= 0):
        raise ValueError(
            "kernel is not positive definite in float64 (Cholesky failed): are there duplicate training "
            "inputs? Pass jitter > 0 (e.g. 1e-10 * mean diagonal) to regularize explicitly."
        )
    condition = float((diagonal.max() / diagonal.min()) ** 2)
    return KernelFactorization(factor, float(jitter), condition)


def leading_block(factorization: KernelFactorization, n: int) -> KernelFactorization:
    """Factorization of the leading ``n×n`` block of the kernel (nested training sets), at no cost.

    Args:
      factorization: factorization of the kernel on the largest set, size ``N``.
      n: ``1 <= n <= N``.
    """
    if not (isinstance(n, (int, np.integer)) and 1 <= n <= factorization.size):
        raise ValueError(f"n must be an integer in [1, {factorization.size}], got {n!r}")
    factor = factorization.cholesky[:n, :n]
    diagonal = np.asarray(jnp.diag(factor))
    return KernelFactorization(factor, factorization.jitter, float((diagonal.max() / diagonal.min()) ** 2))


def _check_rows(factorization: KernelFactorization, array: jnp.ndarray, name: str) -> jnp.ndarray:
    array = jnp.asarray(array, jnp.float64)
    if array.ndim not in (1, 2) or array.shape[0] != factorization.size:
        raise ValueError(
            f"{name} must have shape ({factorization.size},) or ({factorization.size}, k), got {array.shape}"
        )
    check_finite(array, name)
    return array


def solve(factorization: KernelFactorization, rhs: jnp.ndarray) -> jnp.ndarray:
    """``Θ⁻¹ rhs`` for ``rhs`` of shape ``(n,)`` or ``(n, k)`` (k right-hand sides share the factor)."""
    rhs = _check_rows(factorization, rhs, "rhs")
    return jsl.cho_solve((factorization.cholesky, True), rhs)


def converged_outputs(
    factorization: KernelFactorization,
    kernel_test_train: jnp.ndarray,
    initial_train: jnp.ndarray,
    initial_test: jnp.ndarray,
    target_train: jnp.ndarray,
) -> jnp.ndarray:
    r"""Outputs of the converged linearized student on new inputs.

    .. math:: f(x) = f(x; w_0) + \Theta(x, X)\,\Theta^{-1}\big(z_{\mathrm{target}} - f(X; w_0)\big)

    Args:
      factorization: of Θ(X, X), size n.
      kernel_test_train: Θ(X_test, X), shape ``(m, n)``.
      initial_train: f(X; w₀), shape ``(n,)`` (zeros for the infinite-width mean predictor).
      initial_test: f(X_test; w₀), shape ``(m,)``.
      target_train: effective logits on X, shape ``(n,)`` or ``(n, k)`` (k targets, e.g. a ρ×T grid).

    Returns:
      ``(m,)`` or ``(m, k)``. On the training inputs themselves (``kernel_test_train = Θ(X, X)``) it
      returns ``target_train`` up to round-off.
    """
    target_train = _check_rows(factorization, target_train, "target_train")
    initial_train = _check_rows(factorization, initial_train, "initial_train")
    kernel_test_train = jnp.asarray(kernel_test_train, jnp.float64)
    if kernel_test_train.ndim != 2 or kernel_test_train.shape[1] != factorization.size:
        raise ValueError(f"kernel_test_train must have shape (m, {factorization.size}), got {kernel_test_train.shape}")
    initial_test = jnp.asarray(initial_test, jnp.float64)
    if initial_test.shape != (kernel_test_train.shape[0],):
        raise ValueError(f"initial_test must have shape ({kernel_test_train.shape[0]},), got {initial_test.shape}")
    residual = target_train - (initial_train[:, None] if target_train.ndim == 2 else initial_train)
    change = kernel_test_train @ solve(factorization, residual)
    return (initial_test[:, None] if change.ndim == 2 else initial_test) + change


def weight_change_inner(
    factorization: KernelFactorization, delta_a: jnp.ndarray, delta_b: jnp.ndarray
) -> jnp.ndarray:
    r"""``⟨Δw_a, Δw_b⟩ = Δz_aᵀ Θ⁻¹ Δz_b`` for weight changes fitted on the same inputs.

    Args:
      factorization: of Θ(X, X), size n.
      delta_a: logit changes Δz_a on X, ``(n,)`` or ``(n, k)``.
      delta_b: ``(n,)`` or ``(n, l)``.

    Returns:
      Scalar, or ``(k,)``/``(l,)``/``(k, l)`` matrix of inner products.
    """
    delta_a = _check_rows(factorization, delta_a, "delta_a")
    delta_b = _check_rows(factorization, delta_b, "delta_b")
    return delta_a.T @ solve(factorization, delta_b)


def weight_change_norm(factorization: KernelFactorization, delta: jnp.ndarray) -> jnp.ndarray:
    """``‖Δw‖ = sqrt(Δzᵀ Θ⁻¹ Δz)``; ``delta`` of shape ``(n,)`` (scalar out) or ``(n, k)`` (``(k,)`` out)."""
    delta = _check_rows(factorization, delta, "delta")
    coefficients = solve(factorization, delta)
    squared = jnp.sum(delta * coefficients, axis=0)
    return jnp.sqrt(jnp.maximum(squared, 0.0))


def weight_change_cosine(factorization: KernelFactorization, delta_a: jnp.ndarray, delta_b: jnp.ndarray) -> jnp.ndarray:
    """Cosine of the angle between two weight changes fitted on the same inputs.

    ``delta_a``, ``delta_b``: ``(n,)`` or ``(n, k)`` (columns paired). Raises ``ValueError`` if either
    weight change is zero (the angle is undefined).
    """
    delta_a = _check_rows(factorization, delta_a, "delta_a")
    delta_b = _check_rows(factorization, delta_b, "delta_b")
    coefficients_b = solve(factorization, delta_b)
    inner = jnp.sum(delta_a * coefficients_b, axis=0)
    norm_a = weight_change_norm(factorization, delta_a)
    norm_b = jnp.sqrt(jnp.maximum(jnp.sum(delta_b * coefficients_b, axis=0), 0.0))
    if np.any(np.asarray(norm_a) == 0) or np.any(np.asarray(norm_b) == 0):
        raise ValueError("a weight change is zero: its angle is undefined")
    return jnp.clip(inner / (norm_a * norm_b), -1.0, 1.0)
