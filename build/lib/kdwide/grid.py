r"""The fast ρ×T grid path: every grid point of a sweep as one column on one factorized kernel.

For a fixed training set the kernel :math:`\Theta(X, X)` does not depend on the soft ratio or the
temperature; only the targets (the effective logits of C1) do. So a whole grid costs one Cholesky
factorization and one triangular solve with many right-hand sides:

.. math:: Z_{\mathrm{eff}} = \big[z_{s,\mathrm{eff}}(z_t(X), y_g; \rho_i, T_j)\big]_{(i, j)} \in \mathbb R^{n\times (|\rho||T|)},
   \qquad F(X_*) = f_0(X_*) + \Theta(X_*, X)\,\Theta^{-1}\big(Z_{\mathrm{eff}} - f_0(X)\big).

Grid points with ρ = 0 (pure hard labels) have infinite effective logits; the sign of the linearized
student then depends only on the direction of its weight change, which tends to the kernel interpolant of
the ±1 labels as ρ → 0 (see chapter 3). Those columns use the ±1 targets, flagged in the result.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from kdwide.effective_logit import student_targets
from kdwide.linearized import KernelFactorization, converged_outputs, factorize_kernel, weight_change_norm
from kdwide.validation import check_hard_labels, check_soft_ratio, check_temperature

__all__ = ["GridSolution", "effective_logit_grid", "solve_grid"]


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


def effective_logit_grid(z_teacher, y_hard, *, rho_values, temperature_values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effective logits of every (ρ, T) grid point as columns.

    Args:
      z_teacher: ``(n,)`` teacher logits; y_hard: ``(n,)`` labels in {0, 1}.
      rho_values: ``(a,)`` soft ratios in [0, 1]; temperature_values: ``(b,)`` temperatures > 0.

    Returns:
      ``(targets, rho, temperature)``: ``targets`` of shape ``(n, a·b)`` (ρ slow, T fast), with ±1 in the
      ρ = 0 columns (hard-label limit direction), and the ``(a·b,)`` ρ and T of each column.
    """
    rho_values = np.asarray(rho_values, float).ravel()
    temperature_values = np.asarray(temperature_values, float).ravel()
    check_soft_ratio(rho_values, "rho_values")
    check_temperature(temperature_values, "temperature_values")
    check_hard_labels(y_hard)
    rho, temperature = (a.ravel() for a in np.meshgrid(rho_values, temperature_values, indexing="ij"))
    targets = student_targets(np.asarray(z_teacher)[:, None], np.asarray(y_hard)[:, None], rho=rho, temperature=temperature)
    return targets, rho, temperature


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
    n, m = factorization.size, np.shape(kernel_test_train)[0]
    initial_train = np.zeros(n) if initial_train is None else np.asarray(initial_train, float)
    initial_test = np.zeros(m) if initial_test is None else np.asarray(initial_test, float)
    targets, rho, temperature = effective_logit_grid(z_teacher, y_hard, rho_values=rho_values, temperature_values=temperature_values)
    outputs = converged_outputs(factorization, kernel_test_train, initial_train, initial_test, targets)
    norms = weight_change_norm(factorization, jnp.asarray(targets) - initial_train[:, None])
    return GridSolution(rho, temperature, targets, rho == 0, np.asarray(outputs), np.asarray(norms))
