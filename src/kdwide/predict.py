r"""Converged students: one predictor for any set of targets, and the ρ×T grid on one factorization.

A wide student trained to convergence on targets :math:`z` (the effective logits of C1) is the kernel model

.. math:: f(x) = f(x; w_0) + \Theta(x, X)\,\Theta^{-1}\big(z - f(X; w_0)\big), \qquad
   \|\Delta\hat w\| = \sqrt{\Delta z^\top\Theta^{-1}\Delta z},\ \Delta z = z - f(X; w_0)

(chapter 2). For a fixed training set the kernel does not depend on the soft ratio or the temperature; only the
targets do. So any number of students, e.g. a whole ρ×T grid, costs one Cholesky factorization and one triangular
solve with many right-hand sides: :func:`grid_targets` builds the target columns, :func:`converged_students`
returns the students' outputs and weight-change norms from that one solve, and :func:`solve_grid` does both for a
ρ×T product grid.

Grid points with ρ = 0 (pure hard labels) have infinite effective logits; the sign of the linearized student then
depends only on the direction of its weight change, which tends to the kernel interpolant of the ±1 labels as
ρ → 0 (chapter 3). Those columns use the ±1 targets (:func:`kdwide.student_targets`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from kdwide.effective_logit import student_targets
from kdwide.linearized import KernelFactorization, factorize_kernel, solve
from kdwide.validation import check_finite, check_hard_labels, check_soft_ratio, check_temperature

__all__ = ["ConvergedStudents", "GridSolution", "converged_students", "grid_points", "grid_targets", "solve_grid"]


def grid_points(rho_values, temperature_values) -> tuple[np.ndarray, np.ndarray]:
    """The points of the ρ×T product grid, flattened with ρ slow and T fast.

    Args:
      rho_values: ``(a,)`` soft ratios in [0, 1]; temperature_values: ``(b,)`` temperatures > 0.

    Returns:
      ``(rho, temperature)``, each of shape ``(a·b,)``.

    Example:
      >>> grid_points([0.5, 1.0], [1.0, 2.0])
      (array([0.5, 0.5, 1. , 1. ]), array([1., 2., 1., 2.]))
    """
    rho_values = np.asarray(rho_values, float).ravel()
    temperature_values = np.asarray(temperature_values, float).ravel()
    check_soft_ratio(rho_values, "rho_values")
    check_temperature(temperature_values, "temperature_values")
    rho, temperature = (a.ravel() for a in np.meshgrid(rho_values, temperature_values, indexing="ij"))
    return rho, temperature


def grid_targets(z_teacher, y_hard, *, rho, temperature) -> np.ndarray:
    r"""Student targets for a list of (ρ, T) grid points: one column per point, one factorization serves all (the one target builder).

    Column ``j`` is :func:`kdwide.effective_logit` at ``(rho[j], temperature[j])``; where ``rho[j] = 0`` it is
    the hard-label direction :math:`2y_g - 1` (the :math:`\rho \to 0` limit of every scale-free quantity,
    module docstring).

    Args:
      z_teacher: ``(n,)`` teacher logits, or ``(n, k)`` (one teacher per column, e.g. stopping times).
      y_hard: ``(n,)`` labels in {0, 1}.
      rho: ``(k,)`` soft ratios in [0, 1] (or a scalar).
      temperature: ``(k,)`` temperatures > 0 (or a scalar); ``rho``, ``temperature`` and the columns of
        ``z_teacher`` broadcast together to ``k`` columns.

    Returns:
      ``(n, k)`` float64.

    Example:
      >>> grid_targets([2.0, -1.0], [1, 0], rho=[1.0, 0.0], temperature=1.0)
      array([[ 2.,  1.],
             [-1., -1.]])
    """
    check_soft_ratio(rho)
    check_temperature(temperature)
    check_hard_labels(y_hard)
    check_finite(z_teacher, "z_teacher")
    z_teacher = np.asarray(z_teacher, dtype=np.float64)
    y_hard = np.asarray(y_hard)
    if y_hard.ndim != 1 or z_teacher.ndim not in (1, 2) or z_teacher.shape[0] != y_hard.shape[0]:
        raise ValueError(f"z_teacher must be (n,) or (n, k) and y_hard (n,), got {z_teacher.shape} and {y_hard.shape}")
    columns = z_teacher.T if z_teacher.ndim == 2 else z_teacher[None, :]
    try:
        rho, temperature, _ = np.broadcast_arrays(
            np.atleast_1d(np.asarray(rho, float)), np.atleast_1d(np.asarray(temperature, float)), columns[:, :1].ravel()
        )
    except ValueError:
        raise ValueError(
            f"rho {np.shape(rho)}, temperature {np.shape(temperature)} and the columns of z_teacher {z_teacher.shape} "
            "must broadcast to one list of k grid points"
        ) from None
    if rho.ndim != 1:
        raise ValueError(f"rho and temperature must be scalars or 1-D lists of grid points, got shape {rho.shape}")
    teacher = np.broadcast_to(columns.T, (y_hard.shape[0], rho.shape[0]))
    return student_targets(teacher, y_hard[:, None], rho=rho[None, :], temperature=temperature[None, :])


class ConvergedStudents(NamedTuple):
    r"""Result of :func:`converged_students` (``k`` target columns).

    Attributes:
      test_outputs: ``(m, k)`` outputs on the test inputs, or ``None`` without ``kernel_test_train``.
      weight_change_norms: ``(k,)`` :math:`\|\Delta\hat w\|` of each column.
    """

    test_outputs: np.ndarray | None
    weight_change_norms: np.ndarray


def converged_students(
    factorization: KernelFactorization,
    targets,
    *,
    kernel_test_train=None,
    initial_train=None,
    initial_test=None,
) -> ConvergedStudents:
    r"""The converged linearized students for every target column, from one solve with the factorized kernel.

    Args:
      factorization: of :math:`\Theta(X, X)`, size ``n`` (:func:`kdwide.linearized.factorize_kernel`).
      targets: ``(n, k)`` training targets, e.g. from :func:`grid_targets`.
      kernel_test_train: :math:`\Theta(X_*, X)`, ``(m, n)``; without it only the norms are computed.
      initial_train, initial_test: :math:`f(X; w_0)` ``(n,)`` and :math:`f(X_*; w_0)` ``(m,)``; zeros by default
        (the infinite-width mean predictor).

    Returns:
      :class:`ConvergedStudents`.

    Example:
      >>> import numpy as np
      >>> from kdwide.kernels import analytic_ntk
      >>> from kdwide.linearized import factorize_kernel
      >>> from kdwide.seeds import Streams
      >>> x = Streams(0).rng("inputs").normal(size=(6, 3))
      >>> kernel = analytic_ntk(x, depth=1, w_std=1.4, b_std=0.1)
      >>> targets = grid_targets(np.linspace(-2, 2, 6), np.arange(6) % 2, rho=[1.0, 0.5], temperature=2.0)
      >>> students = converged_students(factorize_kernel(kernel), targets, kernel_test_train=kernel)
      >>> bool(np.allclose(students.test_outputs, targets)), students.weight_change_norms.shape
      (True, (2,))
    """
    targets = jnp.asarray(targets, jnp.float64)
    if targets.ndim != 2 or targets.shape[0] != factorization.size:
        raise ValueError(f"targets must have shape ({factorization.size}, k), got {targets.shape}")
    initial_train = jnp.zeros(factorization.size) if initial_train is None else jnp.asarray(initial_train, jnp.float64)
    if initial_train.shape != (factorization.size,):
        raise ValueError(f"initial_train must have shape ({factorization.size},), got {initial_train.shape}")
    residual = targets - initial_train[:, None]
    coefficients = solve(factorization, residual)
    norms = np.asarray(jnp.sqrt(jnp.maximum(jnp.sum(residual * coefficients, axis=0), 0.0)))
    if kernel_test_train is None:
        return ConvergedStudents(None, norms)
    kernel_test_train = jnp.asarray(kernel_test_train, jnp.float64)
    if kernel_test_train.ndim != 2 or kernel_test_train.shape[1] != factorization.size:
        raise ValueError(f"kernel_test_train must have shape (m, {factorization.size}), got {kernel_test_train.shape}")
    m = kernel_test_train.shape[0]
    initial_test = jnp.zeros(m) if initial_test is None else jnp.asarray(initial_test, jnp.float64)
    if initial_test.shape != (m,):
        raise ValueError(f"initial_test must have shape ({m},), got {initial_test.shape}")
    check_finite(initial_test, "initial_test")
    return ConvergedStudents(np.asarray(initial_test[:, None] + kernel_test_train @ coefficients), norms)


class GridSolution(NamedTuple):
    """Result of :func:`solve_grid`.

    Attributes:
      rho: ``(k,)`` soft ratio of each column (grid flattened with ρ slow, T fast).
      temperature: ``(k,)`` temperature of each column.
      targets: ``(n, k)`` training targets (effective logits; ±1 for ρ = 0 columns).
      hard_label_limit: ``(k,)`` bool, True where ρ = 0 (targets are the ±1 labels).
      test_outputs: ``(m, k)`` converged linearized student outputs on the test inputs.
      weight_change_norms: ``(k,)`` ‖Δŵ‖ of each column.
    """

    rho: np.ndarray
    temperature: np.ndarray
    targets: np.ndarray
    hard_label_limit: np.ndarray
    test_outputs: np.ndarray
    weight_change_norms: np.ndarray


def solve_grid(
    kernel_train_train,
    kernel_test_train,
    z_teacher,
    y_hard,
    *,
    rho_values,
    temperature_values,
    initial_train=None,
    initial_test=None,
    factorization: KernelFactorization | None = None,
) -> GridSolution:
    """The converged linearized student for a whole ρ×T grid on one factorization.

    Args:
      kernel_train_train: ``(n, n)`` Θ(X, X) (ignored if ``factorization`` is given).
      kernel_test_train: ``(m, n)`` Θ(X_test, X).
      z_teacher: ``(n,)`` teacher logits on X; y_hard: ``(n,)`` labels.
      rho_values, temperature_values: the grid axes.
      initial_train, initial_test: f(X; w₀) ``(n,)`` and f(X_test; w₀) ``(m,)`` (zeros by default: the
        infinite-width mean predictor).
      factorization: a precomputed factorization of Θ(X, X), to share it across calls.

    Returns:
      :class:`GridSolution` with ``k = len(rho_values) · len(temperature_values)`` columns.
    """
    if factorization is None:
        factorization = factorize_kernel(kernel_train_train)
    rho, temperature = grid_points(rho_values, temperature_values)
    targets = grid_targets(z_teacher, y_hard, rho=rho, temperature=temperature)
    students = converged_students(
        factorization, targets, kernel_test_train=kernel_test_train, initial_train=initial_train, initial_test=initial_test
    )
    return GridSolution(rho, temperature, targets, rho == 0, students.test_outputs, students.weight_change_norms)
