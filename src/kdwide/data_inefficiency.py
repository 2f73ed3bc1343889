r"""Data inefficiency of the converged linearized student (Result 2, claim D1).

Definition (our reading of the paper, which we only know from its poster)
-----------------------------------------------------------------------
A student trained on :math:`n` samples converges to the weight change
:math:`\Delta\hat w_n = \phi(X_n)\Theta_n^{-1}\Delta z_n` (C2). Its *data inefficiency* is

.. math:: I(n) = n\,\mathbb E\big[\ln\|\Delta\hat w_{n+1}\| - \ln\|\Delta\hat w_n\|\big],

the expectation taken over the training set and the added sample. If
:math:`\|\Delta\hat w_n\| \propto n^{a}` then :math:`I(n) \to a`: :math:`I` is the local exponent of the
growth of the weight change with the data. A student that has learned the task needs (almost) no
weight change for a new sample, :math:`I \approx 0`; a target the student's features cannot represent
keeps the weight change growing.

Closed form for one added sample
--------------------------------
Adding one input :math:`x` with target :math:`\Delta z(x)` to a training set :math:`X` (kernel
:math:`\Theta`, factor :math:`L L^\top = \Theta`) grows the squared weight-change norm by

.. math:: \|\Delta\hat w_{n+1}\|^2 - \|\Delta\hat w_n\|^2 = \frac{r(x)^2}{v(x)}, \qquad
   r = \Delta z(x) - \Theta(x, X)\Theta^{-1}\Delta z, \qquad
   v = \Theta(x, x) - \Theta(x, X)\Theta^{-1}\Theta(X, x),

the residual of the current student's prediction on the new point over the kernel's posterior variance
there (a Schur complement). With :math:`w = L^{-1}\Theta(X, x)` and :math:`a = L^{-1}\Delta z` this is
:math:`r = \Delta z(x) - w^\top a`, :math:`v = \Theta(x,x) - \|w\|^2`, and :math:`r/\sqrt v` is exactly the
next entry of :math:`L^{-1}\Delta z` when :math:`x` is appended to the set. Because the Cholesky factor of a
leading block is the leading block of the factor, *one* triangular solve on the largest set gives
:math:`\|\Delta\hat w_n\|^2 = \sum_{i \le n} a_i^2` for every nested prefix and, with
:math:`W = L^{-1}\Theta(X, C)` for a pool :math:`C` of candidate new points, :math:`r` and :math:`v` for every
prefix and every candidate by partial sums over the rows of :math:`W`. The log-difference is then
:math:`\tfrac12\operatorname{log1p}\big(r^2 / (v\,\|\Delta\hat w_n\|^2)\big)`, free of cancellation.

:math:`v` is a difference of two nearly equal numbers when a candidate lies close to a training point,
which is why the kernel diagonal :math:`\Theta(x, x)` must be exact (the book's pitfall 2, exact diagonals,
:func:`kdwide.kernels.analytic_ntk` and :func:`kdwide.kernels.analytic_ntk_diagonal`).

Hard labels
-----------
At :math:`\rho = 0` the effective logits are :math:`\pm\infty`. For small :math:`\rho` they are
:math:`z_{s,\mathrm{eff}} = s\,(\ln(1/\rho) + c(x)) + o(1)` with :math:`s = 2y_g - 1` and a bounded
:math:`c`, so :math:`\Delta z/\ln(1/\rho) \to s`. The log-difference :math:`\ln\|\Delta\hat w_{n+1}\| -
\ln\|\Delta\hat w_n\|` does not change when all targets (the old ones and the new one) are multiplied by
the same factor, and it is continuous in the direction of the target vector, so its :math:`\rho \to 0`
limit is its value for the targets :math:`s = \pm 1` (:func:`kdwide.predict.grid_targets` uses them at
:math:`\rho = 0`). A large fixed logit :math:`\pm M` gives the same numbers; a per-point clipping would not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.linalg

from kdwide.linearized import KernelFactorization, factorize_kernel
from kdwide.validation import check_finite, check_positive_int

__all__ = [
    "OneSampleChange",
    "one_sample_weight_change",
    "nested_weight_change_norms",
    "data_inefficiency",
    "data_inefficiency_from_kernel",
]


class OneSampleChange(NamedTuple):
    """What adding one sample does to the converged student (shapes for ``m`` candidates, ``k`` targets).

    Attributes:
      residual: :math:`r`, the target minus the current student's prediction at the new input, ``(m,)``/``(m, k)``.
      posterior_variance: :math:`v`, the kernel's posterior variance at the new input, ``(m,)``.
      squared_norm_increment: :math:`r^2/v = \\|\\Delta\\hat w_{n+1}\\|^2 - \\|\\Delta\\hat w_n\\|^2`, like ``residual``.
    """

    residual: np.ndarray
    posterior_variance: np.ndarray
    squared_norm_increment: np.ndarray


def _targets(array, rows: int, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim not in (1, 2) or array.shape[0] != rows:
        raise ValueError(f"{name} must have shape ({rows},) or ({rows}, k), got {array.shape}")
    check_finite(array, name)
    return array


def _candidates(factorization: KernelFactorization, kernel_train_new, kernel_new_diagonal):
    kernel_train_new = np.asarray(kernel_train_new, dtype=np.float64)
    if kernel_train_new.ndim != 2 or kernel_train_new.shape[0] != factorization.size:
        raise ValueError(
            f"kernel_train_new must have shape ({factorization.size}, m), got {kernel_train_new.shape}"
        )
    m = kernel_train_new.shape[1]
    kernel_new_diagonal = np.asarray(kernel_new_diagonal, dtype=np.float64)
    if kernel_new_diagonal.shape != (m,):
        raise ValueError(f"kernel_new_diagonal must have shape ({m},), got {kernel_new_diagonal.shape}")
    check_finite(kernel_train_new, "kernel_train_new")
    check_finite(kernel_new_diagonal, "kernel_new_diagonal")
    return kernel_train_new, kernel_new_diagonal


def _lower_solve(factorization: KernelFactorization, rhs: np.ndarray) -> np.ndarray:
    """``L⁻¹ rhs`` (forward substitution); its leading n rows are ``L_n⁻¹ rhs[:n]`` for every n."""
    return scipy.linalg.solve_triangular(np.asarray(factorization.cholesky), rhs, lower=True)


def _check_variance(variance: np.ndarray, diagonal: np.ndarray) -> None:
    if np.any(variance <= 1e-13 * diagonal):
        raise ValueError(
            "posterior variance of a candidate input is not positive (relative "
            f"{float(np.min(variance / diagonal)):.3g}): it duplicates a training input, or the kernel diagonal "
            "is not exact (use kdwide.kernels.analytic_ntk / analytic_ntk_diagonal: the arccos formula is off by ~1e-8 there)"
        )


def one_sample_weight_change(
    factorization: KernelFactorization,
    kernel_train_new: np.ndarray,
    kernel_new_diagonal: np.ndarray,
    delta_train: np.ndarray,
    delta_new: np.ndarray,
) -> OneSampleChange:
    r"""Closed-form change of the converged weight change when one sample is added (module docstring).

    Each of ``m`` candidate inputs is added *alone* to the training set: the result for candidate ``j``
    is what a full solve on ``n + 1`` points (training set plus candidate ``j``) gives.

    Args:
      factorization: of :math:`\Theta(X, X)`, size ``n`` (exact diagonal).
      kernel_train_new: :math:`\Theta(X, x_j)`, shape ``(n, m)``.
      kernel_new_diagonal: exact :math:`\Theta(x_j, x_j)`, shape ``(m,)``.
      delta_train: logit changes :math:`\Delta z` on X, ``(n,)`` or ``(n, k)``.
      delta_new: logit changes at the candidates, ``(m,)`` or ``(m, k)`` (same ``k``).

    Returns:
      :class:`OneSampleChange`.

    Raises:
      ValueError: shapes disagree, values not finite, or a posterior variance is not positive.
    """
    kernel_train_new, diagonal = _candidates(factorization, kernel_train_new, kernel_new_diagonal)
    delta_train = _targets(delta_train, factorization.size, "delta_train")
    delta_new = _targets(delta_new, diagonal.shape[0], "delta_new")
    if delta_new.ndim != delta_train.ndim or delta_new.shape[1:] != delta_train.shape[1:]:
        raise ValueError(f"delta_new {delta_new.shape} and delta_train {delta_train.shape} must have the same k")
    whitened_kernel = _lower_solve(factorization, kernel_train_new)
    whitened_targets = _lower_solve(factorization, delta_train)
    variance = diagonal - np.sum(whitened_kernel**2, axis=0)
    _check_variance(variance, diagonal)
    residual = delta_new - whitened_kernel.T @ whitened_targets
    increment = residual**2 / (variance[:, None] if residual.ndim == 2 else variance)
    return OneSampleChange(residual, variance, increment)


def nested_weight_change_norms(factorization: KernelFactorization, delta_train: np.ndarray) -> np.ndarray:
    r""":math:`\|\Delta\hat w_n\|` for every prefix :math:`n = 1, \dots, N` of the training set, from one solve.

    Args:
      factorization: of :math:`\Theta` on the whole ordered training set, size ``N``.
      delta_train: ``(N,)`` or ``(N, k)``.

    Returns:
      ``(N,)`` or ``(N, k)``; row ``n - 1`` is the norm for the first ``n`` samples.
    """
    delta_train = _targets(delta_train, factorization.size, "delta_train")
    return np.sqrt(np.cumsum(_lower_solve(factorization, delta_train) ** 2, axis=0))


def data_inefficiency(
    factorization: KernelFactorization,
    kernel_train_new: np.ndarray,
    kernel_new_diagonal: np.ndarray,
    delta_train: np.ndarray,
    delta_new: np.ndarray,
    *,
    n_values: Sequence[int],
) -> np.ndarray:
    r"""Data inefficiency :math:`I(n)` for nested prefixes of one training sequence, averaged over new samples.

    For each ``n`` in ``n_values`` the student trained on the first ``n`` training points is given each
    of ``m`` candidate samples in turn (closed form, module docstring), and

    .. math:: I(n) = n \cdot \frac1m \sum_j \tfrac12 \operatorname{log1p}\!\Big(\frac{r_j^2}{v_j\,\|\Delta\hat w_n\|^2}\Big).

    The expectation over training sets is left to the caller (average over seeds,
    ``np.mean`` over seeds, :func:`kdwide.stats.standard_error`). Cost: one factorization (given) and two triangular solves, for all
    ``n`` and all ``k`` target columns.

    Args:
      factorization: of :math:`\Theta` on the ordered training set, size ``N``.
      kernel_train_new: ``(N, m)`` kernel between training inputs and candidates.
      kernel_new_diagonal: ``(m,)`` exact candidate diagonal.
      delta_train: ``(N,)`` or ``(N, k)``; delta_new: ``(m,)`` or ``(m, k)``.
      n_values: prefix sizes, each in ``[1, N]``.

    Returns:
      ``(len(n_values),)`` or ``(len(n_values), k)``.

    Raises:
      ValueError: bad shapes or ``n_values``, a zero weight change :math:`\|\Delta\hat w_n\| = 0`, or a
        non-positive posterior variance.
    """
    kernel_train_new, diagonal = _candidates(factorization, kernel_train_new, kernel_new_diagonal)
    delta_train = _targets(delta_train, factorization.size, "delta_train")
    delta_new = _targets(delta_new, diagonal.shape[0], "delta_new")
    if delta_new.ndim != delta_train.ndim or delta_new.shape[1:] != delta_train.shape[1:]:
        raise ValueError(f"delta_new {delta_new.shape} and delta_train {delta_train.shape} must have the same k")
    n_values = [check_positive_int(n, "n_values entries") for n in n_values]
    if not n_values or max(n_values) > factorization.size:
        raise ValueError(f"n_values must be a non-empty list of integers in [1, {factorization.size}], got {n_values}")
    whitened_kernel = _lower_solve(factorization, kernel_train_new)
    whitened_targets = _lower_solve(factorization, delta_train)
    squared_norms = np.cumsum(whitened_targets**2, axis=0)
    squared_kernel = np.cumsum(whitened_kernel**2, axis=0)
    values = []
    for n in n_values:
        if np.any(squared_norms[n - 1] == 0):
            raise ValueError(f"the weight change for n = {n} is zero: ln‖Δŵ_n‖ is undefined")
        variance = diagonal - squared_kernel[n - 1]
        _check_variance(variance, diagonal)
        residual = delta_new - whitened_kernel[:n].T @ whitened_targets[:n]
        increment = residual**2 / (variance[:, None] if residual.ndim == 2 else variance)
        values.append(n * np.mean(0.5 * np.log1p(increment / squared_norms[n - 1]), axis=0))
    return np.stack(values)


def data_inefficiency_from_kernel(
    kernel: np.ndarray, delta: np.ndarray, *, n_train: int, n_values: Sequence[int]
) -> np.ndarray:
    r""":func:`data_inefficiency` from one kernel on ``[training inputs; candidate inputs]``.

    Computing a single kernel on the union gives the exact candidate diagonal and the train–candidate
    block in one call.

    Args:
      kernel: ``(n_train + m, n_train + m)`` kernel, training inputs first (ordered), exact diagonal.
      delta: ``(n_train + m,)`` or ``(n_train + m, k)`` targets on the same inputs.
      n_train: number of training inputs ``N`` (≥ 1, < rows of ``kernel``).
      n_values: prefix sizes in ``[1, n_train]``.

    Returns:
      ``(len(n_values),)`` or ``(len(n_values), k)``.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must be square, got shape {kernel.shape}")
    n_train = check_positive_int(n_train, "n_train")
    if n_train >= kernel.shape[0]:
        raise ValueError(f"n_train must be smaller than the kernel size {kernel.shape[0]} (candidates needed)")
    delta = _targets(delta, kernel.shape[0], "delta")
    factorization = factorize_kernel(kernel[:n_train, :n_train])
    return data_inefficiency(
        factorization,
        kernel[:n_train, n_train:],
        np.diag(kernel)[n_train:],
        delta[:n_train],
        delta[n_train:],
        n_values=n_values,
    )


