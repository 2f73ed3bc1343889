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
    "COSINE_SLACK",
    "KernelFactorization",
    "factorize_kernel",
    "leading_block",
    "solve",
    "weight_change_inner",
    "weight_change_norm",
    "weight_change_cosine",
    "ZeroWeightChange",
    "student_oracle_cosine",
]

COSINE_SLACK = 1e-8
"""Cosines may exceed 1 by round-off only; more than this means inconsistent inputs (ValueError)."""


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


class ZeroWeightChange(NamedTuple):
    r"""A non-zero :math:`\Delta w_z` (random initial function), through the three numbers the kernel algebra needs.

    Attributes:
      initial_train: :math:`f(X; w_0) = -\phi(X)^\top\Delta w_z` on the training inputs, shape ``(n,)``.
      oracle_inner: :math:`\langle \Delta w_* - \Delta w_z, \Delta w_z\rangle` (for a kernel-expansion oracle
        :math:`\phi(A)c` this is :math:`-c^\top f(A; w_0)`).
      norm_squared: :math:`\|\Delta w_z\|^2`.
    """

    initial_train: np.ndarray
    oracle_inner: float
    norm_squared: float


def student_oracle_cosine(
    factorization: KernelFactorization,
    teacher_train: np.ndarray,
    target_train: np.ndarray,
    *,
    oracle_norm: float,
    zero_change: ZeroWeightChange | None = None,
) -> np.ndarray:
    r"""Cosine of the unfolded angle :math:`\alpha_n` between :math:`\Delta w_* - \Delta w_z` and :math:`\Delta\hat w - \Delta w_z`.

    With :math:`\Delta w_z = 0` (default; :math:`f(\cdot; w_0) = 0`):
    :math:`\cos\alpha_n = z_t(X)^\top\Theta^{-1}z / (\|\Delta w_* \|\sqrt{z^\top\Theta^{-1}z})`, ``z`` the targets.
    With a :class:`ZeroWeightChange`, :math:`\Delta z = z - f(X; w_0)` and

    .. math::

        \langle u, v\rangle = z_t(X)^\top\Theta^{-1}\Delta z - \langle u, \Delta w_z\rangle, \qquad
        \|v\|^2 = \Delta z^\top\Theta^{-1}\Delta z + 2 f(X; w_0)^\top\Theta^{-1}\Delta z + \|\Delta w_z\|^2 .

    Args:
      factorization: of Θ(X, X), size n.
      teacher_train: :math:`z_t(X) = \phi(X)^\top(\Delta w_* - \Delta w_z)`, shape ``(n,)``.
      target_train: the student's targets (effective logits, or the hard-label direction), ``(n,)`` or ``(n, k)``.
      oracle_norm: :math:`\|\Delta w_* - \Delta w_z\|` > 0.
      zero_change: optional :class:`ZeroWeightChange`.

    Returns:
      Scalar or ``(k,)`` cosines in [-1, 1].

    Raises:
      ValueError: shapes, a zero student weight change, or a cosine beyond ±1 by more than round-off (inconsistent
        ``oracle_norm``).
    """
    teacher_train = jnp.asarray(teacher_train, jnp.float64)
    target_train = jnp.asarray(target_train, jnp.float64)
    if teacher_train.shape != (factorization.size,):
        raise ValueError(f"teacher_train must have shape ({factorization.size},), got {teacher_train.shape}")
    if target_train.ndim not in (1, 2) or target_train.shape[0] != factorization.size:
        raise ValueError(
            f"target_train must have shape ({factorization.size},) or ({factorization.size}, k), got {target_train.shape}"
        )
    check_finite(teacher_train, "teacher_train")
    check_finite(target_train, "target_train")
    if not (np.isfinite(oracle_norm) and oracle_norm > 0):
        raise ValueError(f"oracle_norm must be finite and > 0, got {oracle_norm!r}")
    initial = jnp.zeros(factorization.size) if zero_change is None else jnp.asarray(zero_change.initial_train, float)
    if initial.shape != (factorization.size,):
        raise ValueError(f"zero_change.initial_train must have shape ({factorization.size},), got {initial.shape}")
    residual = target_train - (initial[:, None] if target_train.ndim == 2 else initial)
    coefficients = solve(factorization, residual)
    inner = teacher_train @ coefficients
    norm_squared = jnp.sum(residual * coefficients, axis=0)
    if zero_change is not None:
        if not (np.isfinite(zero_change.norm_squared) and zero_change.norm_squared >= 0):
            raise ValueError("zero_change.norm_squared must be finite and >= 0")
        inner = inner - zero_change.oracle_inner
        norm_squared = norm_squared + 2 * (initial @ coefficients) + zero_change.norm_squared
    norm_squared = np.asarray(norm_squared, float)
    if np.any(norm_squared <= 0):
        raise ValueError("the student's weight change (minus the zero weight change) is zero: alpha_n is undefined")
    cosine = np.asarray(inner, float) / (oracle_norm * np.sqrt(norm_squared))
    if np.any(np.abs(cosine) > 1 + COSINE_SLACK):
        raise ValueError(f"|cos alpha_n| = {np.abs(cosine).max():.6g} > 1: oracle_norm is inconsistent with the kernel")
    return np.clip(cosine, -1.0, 1.0)
