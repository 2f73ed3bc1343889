r"""Finite-width training: full-batch gradient descent on the KD loss (S1) for a real network (S2, C2).

Gradient descent on :math:`\mathcal L_{KD}(w) = \frac1N\sum_n \ell(f(x_n; w))`,

.. math:: w_{k+1} = w_k - \eta\, \nabla_w \mathcal L_{KD}(w_k),

moves the training logits, to first order in :math:`\eta`, by
:math:`z_{k+1} = z_k - \frac{\eta}{N}\hat\Theta\, \ell'(z_k)` with :math:`\hat\Theta` the empirical NTK.
The loss is convex in :math:`z` with :math:`\ell'' \le \kappa = \frac{\rho}{4T^2} + \frac{1-\rho}{4}`
(each sigmoid has slope at most 1/4), so this iteration is stable for
:math:`\eta < 2N / (\kappa\,\lambda_{\max}(\hat\Theta))`; :func:`stable_learning_rate` returns a fraction of that
bound. In NTK parameterization :math:`\hat\Theta` stays O(1) as width grows, so one rule serves every width.

Convergence is judged on C1 itself: training stops when every training point is a per-sample stationary
point, :math:`\max_n |\ell'(z_n)| \le` ``tolerance`` (:func:`kdwide.effective_logit.stationarity_residual`),
i.e. when the student has reached the effective logits.

:func:`linearization_records` runs the comparison of Corollary 2: it trains one finite network per
(ρ, T) and measures how far it ends from the converged linearized student of :mod:`kdwide.linearized`.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from tqdm import tqdm  # the plain bar: tqdm.auto warns inside notebooks without ipywidgets

from kdwide.effective_logit import stationarity_residual
from kdwide.losses import kd_loss
from kdwide.validation import (
    check_finite,
    check_hard_labels,
    check_positive_int,
    check_soft_ratio,
    check_temperature,
)

__all__ = [
    "TrainingResult",
    "check_trainable_soft_ratio",
    "loss_curvature_bound",
    "network_logits",
    "relative_weight_change",
    "squared_norm",
    "stable_learning_rate",
    "train_student",
]


class TrainingResult(NamedTuple):
    """Outcome of :func:`train_student`.

    Attributes:
      params: trained parameters (same pytree structure as the initial ones).
      loss_history: KD loss before each step, shape ``(steps,)``, float64 (NumPy).
      steps: number of gradient steps taken.
      converged: whether ``max |ℓ'(z_n)| <= tolerance`` was reached.
      max_stationarity_residual: ``max_n |ℓ'(z_n)|`` at the returned parameters.
      learning_rate: the step size used.
    """

    params: Any
    loss_history: np.ndarray
    steps: int
    converged: bool
    max_stationarity_residual: float
    learning_rate: float


def loss_curvature_bound(*, rho: float, temperature: float) -> float:
    r"""Upper bound :math:`\kappa = \rho/(4T^2) + (1-\rho)/4` of the per-sample loss curvature :math:`\ell''(z)`."""
    check_soft_ratio(rho)
    check_temperature(temperature)
    return float(rho / (4 * temperature**2) + (1 - rho) / 4)


def stable_learning_rate(kernel_train: jax.Array, *, rho: float, temperature: float, fraction: float = 0.5) -> float:
    r"""A step size safe for gradient descent on the KD loss in NTK parameterization.

    .. math:: \eta = \text{fraction}\cdot \frac{2N}{\kappa\,\lambda_{\max}(\hat\Theta)}

    with :math:`\kappa` from :func:`loss_curvature_bound` and :math:`\hat\Theta` the empirical NTK on the
    ``N`` training inputs (see the module docstring; ``fraction < 1`` leaves room for the finite-width
    change of the kernel during training).

    Args:
      kernel_train: :math:`\hat\Theta(X, X)`, shape ``(N, N)``, symmetric.
      rho, temperature: of the KD loss.
      fraction: in (0, 1).

    Returns:
      The learning rate η (a float).
    """
    kernel_train = np.asarray(kernel_train, np.float64)
    if kernel_train.ndim != 2 or kernel_train.shape[0] != kernel_train.shape[1] or kernel_train.shape[0] == 0:
        raise ValueError(f"kernel_train must be a square (N, N) matrix, got shape {kernel_train.shape}")
    check_finite(kernel_train, "kernel_train")
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ValueError(f"fraction must lie in (0, 1), got {fraction!r}")
    largest = float(np.linalg.eigvalsh(0.5 * (kernel_train + kernel_train.T))[-1])
    if largest <= 0:
        raise ValueError("kernel_train must have a positive largest eigenvalue")
    curvature = loss_curvature_bound(rho=rho, temperature=temperature)
    return fraction * 2 * kernel_train.shape[0] / (curvature * largest)


def network_logits(apply_fn, params, x):
    """The network\'s scalar outputs ``f(x; params)``, shape ``(n,)`` (``apply_fn`` returns ``(n, 1)``)."""
    return jnp.reshape(apply_fn(params, x), (x.shape[0],))


@partial(jax.jit, static_argnames=("apply_fn", "steps"))
def _run_chunk(params, x, z_teacher, y_hard, rho, temperature, learning_rate, *, apply_fn, steps):
    """``steps`` gradient steps in one compiled ``lax.scan``; returns params, losses and the final residual."""

    def loss(p):
        return kd_loss(network_logits(apply_fn, p, x), z_teacher, y_hard, rho=rho, temperature=temperature)

    def step(p, _):
        value, gradient = jax.value_and_grad(loss)(p)
        return jax.tree_util.tree_map(lambda w, g: w - learning_rate * g, p, gradient), value

    params, losses = lax.scan(step, params, None, length=steps)
    residual = stationarity_residual(network_logits(apply_fn, params, x), z_teacher, y_hard, rho=rho, temperature=temperature)
    return params, losses, jnp.max(jnp.abs(residual))


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def check_trainable_soft_ratio(rho, name: str) -> None:
    """ρ (scalar or values) in (0, 1]: at ρ = 0 the per-sample minima are at infinity, nothing to train towards."""
    check_soft_ratio(rho, name)
    if np.any(np.asarray(rho) == 0):
        raise ValueError(f"{name} must lie in (0, 1] for training: at rho = 0 the per-sample minima are at infinity")


def _checked_training_inputs(x_train, z_teacher, y_hard, rho, temperature):
    """Validated float64 ``(x_train, z_teacher, y_hard)`` of :func:`train_student` (labels as floats)."""
    check_trainable_soft_ratio(rho, "rho")
    check_temperature(temperature)
    x_train = jnp.asarray(x_train, jnp.float64)
    z_teacher = jnp.asarray(z_teacher, jnp.float64)
    y_hard = jnp.asarray(y_hard)
    if x_train.ndim != 2:
        raise ValueError(f"x_train must have shape (N, d), got {x_train.shape}")
    if z_teacher.shape != (x_train.shape[0],) or y_hard.shape != (x_train.shape[0],):
        raise ValueError(
            f"z_teacher and y_hard must have shape ({x_train.shape[0]},), got {z_teacher.shape} and {y_hard.shape}"
        )
    check_finite(x_train, "x_train")
    check_finite(z_teacher, "z_teacher")
    check_hard_labels(y_hard)
    return x_train, z_teacher, y_hard.astype(jnp.float64)


def train_student(
    apply_fn: Callable,
    params: Any,
    x_train: jax.Array,
    z_teacher: jax.Array,
    y_hard: jax.Array,
    *,
    rho: float,
    temperature: float,
    learning_rate: float,
    tolerance: float = 1e-6,
    max_steps: int = 100_000,
    chunk_size: int = 1000,
    progress: bool | None = None,
) -> TrainingResult:
    r"""Train a finite network by full-batch gradient descent on the KD loss until C1 holds on every point.

    Args:
      apply_fn: ``apply_fn(params, x) -> (N, 1)`` (e.g. from :func:`kdwide.networks.fully_connected_network`).
        Pass the same function object across calls to reuse the compiled steps.
      params: initial parameters :math:`w_0` (any pytree of float arrays).
      x_train: inputs, shape ``(N, d)``.
      z_teacher: teacher logits on ``x_train``, shape ``(N,)``.
      y_hard: ground-truth labels in {0, 1}, shape ``(N,)``.
      rho: soft ratio in (0, 1] (ρ = 0 has no finite minimum).
      temperature: T > 0.
      learning_rate: η > 0, e.g. :func:`stable_learning_rate` of the empirical NTK at :math:`w_0`.
      tolerance: stop when :math:`\max_n |\ell'(z_n)| \le` tolerance (> 0).
      max_steps: upper bound on gradient steps (≥ 1); a ``RuntimeWarning`` says so if it is reached.
      chunk_size: steps per compiled ``lax.scan`` between convergence checks (≥ 1).
      progress: show a tqdm bar (``None``: only when stderr is a terminal, so never inside notebooks).

    Returns:
      :class:`TrainingResult` (parameters, loss history, steps, convergence flag, final residual, η).

    Raises:
      ValueError: bad arguments, or the loss became non-finite (learning rate too large).
    """
    x_train, z_teacher, y_hard = _checked_training_inputs(x_train, z_teacher, y_hard, rho, temperature)
    for value, name in ((learning_rate, "learning_rate"), (tolerance, "tolerance")):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    max_steps = check_positive_int(max_steps, "max_steps")
    chunk_size = min(check_positive_int(chunk_size, "chunk_size"), max_steps)
    params = jax.tree_util.tree_map(lambda w: jnp.asarray(w, jnp.float64), params)
    arguments = (x_train, z_teacher, y_hard, jnp.float64(rho), jnp.float64(temperature), jnp.float64(learning_rate))

    residual = float(jnp.max(jnp.abs(stationarity_residual(
        network_logits(apply_fn, params, x_train), z_teacher, y_hard, rho=rho, temperature=temperature
    ))))
    histories, steps = [], 0
    with tqdm(total=max_steps, desc="gradient descent", disable=not _progress_enabled(progress), leave=False) as bar:
        while residual > tolerance and steps < max_steps:
            length = min(chunk_size, max_steps - steps)
            params, losses, residual_array = _run_chunk(params, *arguments, apply_fn=apply_fn, steps=length)
            losses, residual = np.asarray(losses), float(residual_array)
            if not (np.all(np.isfinite(losses)) and np.isfinite(residual)):
                raise ValueError(
                    f"training diverged (non-finite loss) at learning_rate={learning_rate!r}: use a smaller "
                    "learning rate, e.g. kdwide.training.stable_learning_rate"
                )
            histories.append(losses)
            steps += length
            bar.update(length)
            bar.set_postfix(residual=f"{residual:.2e}")
    converged = residual <= tolerance
    if not converged:
        warnings.warn(
            f"train_student stopped at max_steps={max_steps} with max |dl/dz| = {residual:.3e} > tolerance "
            f"{tolerance:.1e}: raise max_steps or the learning rate",
            RuntimeWarning,
            stacklevel=2,
        )
    history = np.concatenate(histories) if histories else np.zeros(0)
    return TrainingResult(params, history, steps, converged, residual, float(learning_rate))


def squared_norm(tree) -> jax.Array:
    """Sum of the squares of every entry of a parameter pytree (the squared norm of the weights)."""
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(tree))


def relative_weight_change(params: Any, initial_params: Any) -> float:
    r""":math:`\|w - w_0\| / \|w_0\|` over all parameters (Euclidean norm of the flattened pytrees).

    Args:
      params: trained parameters; initial_params: :math:`w_0`, the same pytree structure.

    Returns:
      A float ≥ 0.
    """
    if jax.tree_util.tree_structure(params) != jax.tree_util.tree_structure(initial_params):
        raise ValueError("params and initial_params must have the same pytree structure")
    change = jax.tree_util.tree_map(lambda a, b: a - b, params, initial_params)
    return float(jnp.sqrt(squared_norm(change) / squared_norm(initial_params)))


