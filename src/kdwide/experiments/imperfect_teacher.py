r"""Result 3: the imperfect teacher (claims I1–I3), through kernel algebra.

Setting. The ground truth is representable: an oracle weight change :math:`\Delta w_g` in the random-feature
space of the tangent kernel :math:`\Theta`, with logits :math:`z_g(x) = \Delta w_g^\top\phi(x)` and labels
:math:`y_g = 1\{z_g > 0\}`. The teacher's logits :math:`z_t` disagree with :math:`z_g` on part of input
space. We take the initial function :math:`f(x; w_0) = 0` (**our choice**: the mean of the random initial
function; an antisymmetric initialization realizes it exactly), so every logit change is the logit itself,
:math:`\Delta z = z`, and the converged student trained on :math:`X` (``n`` points) has

.. math:: \Delta\hat w = \phi(X)\Theta_n^{-1} z_{s,\mathrm{eff}}(z_t(X), y_g(X)),\qquad
          z_s(x) = \Theta(x, X)\Theta_n^{-1} z_{s,\mathrm{eff}} .

Local view (I2). On a training point where the teacher is wrong, the effective logit has the correct sign
exactly when :math:`\rho < \rho^*` with the closed form (:func:`flip_soft_ratio`)

.. math:: \rho^*(z_t, T) = \frac{T}{T + \tanh(|z_t|/2T)} \in \Big[\frac{T}{T+1}, 1\Big],

obtained by asking when C1's left side vanishes at :math:`\hat z = 0` (it is increasing in :math:`\hat z`):
:math:`\frac\rho T\big(\tfrac12 - \sigma(z_t/T)\big) = (1-\rho)\big(y_g - \tfrac12\big)`.

Global view (I3). With :math:`\langle a, b\rangle_{\Theta_n} = a^\top\Theta_n^{-1}b` and
:math:`\Delta z_g = z_g(X)` the oracle's logits on the training set,
:math:`\langle\Delta\hat w, \Delta w_g\rangle = \langle\Delta z, \Delta z_g\rangle_{\Theta_n}` (the oracle is
representable, so :math:`\phi(X)^\top\Delta w_g = \Delta z_g`) and

.. math:: \cos\alpha(\rho) = \frac{\langle z_{s,\mathrm{eff}}(\rho), \Delta z_g\rangle_{\Theta_n}}
          {\|z_{s,\mathrm{eff}}(\rho)\|_{\Theta_n}\,\|\Delta w_g\|} .

With :math:`\delta z_h = \partial z_{s,\mathrm{eff}}/\partial(1-\rho) = -\partial z_{s,\mathrm{eff}}/\partial\rho`
at :math:`\rho = 1` (where :math:`z_{s,\mathrm{eff}} = z_t`), the quotient rule gives the exact constant of
claim I3:

.. math:: \frac{\partial\cos\alpha}{\partial(1-\rho)}\Big|_{\rho=1}
   = \frac{1}{\|\Delta z_t\|_{\Theta_n}\,\|\Delta w_g\|}\Big(\langle\Delta z_g, \delta z_h\rangle_{\Theta_n}
   - \frac{\langle\Delta z_g, \Delta z_t\rangle_{\Theta_n}}{\langle\Delta z_t, \Delta z_t\rangle_{\Theta_n}}
     \langle\Delta z_t, \delta z_h\rangle_{\Theta_n}\Big)
   = \frac{\langle\delta\hat w_h, \Delta\hat w_c\rangle}{\|\Delta\hat w_t\|\,\|\Delta w_g\|},

where :math:`\Delta\hat w_c` is the part of the projected oracle :math:`P_\Phi\Delta w_g` orthogonal to the
ρ = 1 student :math:`\Delta\hat w_t`, and :math:`\|\Delta\hat w_t\| = \|\Delta z_t\|_{\Theta_n}`.
:math:`\delta z_h` grows like :math:`T^2 e^{|z_t|/T}` on confidently wrong points (the book's pitfall 3, stiff ρ-derivative), which
is why :func:`cosine_slope_finite_difference` picks its step from the largest :math:`|\delta z_h|`.

Hard labels alone (ρ = 0) give infinite effective logits; as :math:`\rho\to 0` they grow like
:math:`\log(1/\rho)\,(2y_g - 1) + O(1)`, so their direction tends to the ±1 vector. The sign of a linearized
student's outputs and its angle to the oracle depend only on that direction, so ρ = 0 is represented by the
±1 kernel interpolant (:func:`kdwide.predict.grid_targets`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd

from kdwide.effective_logit import effective_logit, effective_logit_rho_derivative
from kdwide.experiments import claim, percent
from kdwide.linearized import (
    KernelFactorization,
    factorize_kernel,
    student_oracle_cosine,
    weight_change_inner,
    weight_change_norm,
)
from kdwide.metrics import best_soft_ratio, classification_error, sign_errors
from kdwide.predict import converged_students, grid_points, grid_targets
from kdwide.seeds import Streams
from kdwide.stats import seed_means
from kdwide.tasks import perfect_teacher, sphere_inputs
from kdwide.validation import (
    check_finite,
    check_hard_labels,
    check_positive_int,
    check_same_shape,
    check_temperature,
)

__all__ = [
    "SyntheticTask",
    "synthetic_task",
    "corrupted_teacher_logits",
    "kernel_regression_teacher",
    "flip_soft_ratio",
    "corrected_share",
    "hard_label_change",
    "oracle_cosine",
    "CosineSlope",
    "cosine_slope_at_soft_limit",
    "cosine_slope_finite_difference",
    "synthetic_records",
    "real_data_records",
    "soft_ratio_table",
    "claims",
    "SLOPE_RELATIVE_TOLERANCE",
    "PERFECT_SLOPE_TOLERANCE",
    "CONFIGURATION",
    "REPETITION",
]


def _effective_logit_array(z_teacher, y_hard, *, rho, temperature) -> np.ndarray:
    return np.asarray(effective_logit(z_teacher, y_hard, rho=rho, temperature=temperature))


# ---------------------------------------------------------------------------------------------------------
# Teachers with controlled disagreement
# ---------------------------------------------------------------------------------------------------------


class SyntheticTask(NamedTuple):
    """A representable oracle and an independent corruption function, on training and held-out inputs.

    Attributes:
      x_train: ``(n, d)`` training inputs on the unit sphere.
      x_test: ``(m, d)`` held-out inputs.
      oracle_train, oracle_test: oracle logits :math:`z_g`, ``(n,)`` and ``(m,)``; root mean square
        ``teacher_rms_logit`` on the held-out inputs.
      y_train, y_test: ground truth :math:`y_g = 1\\{z_g > 0\\}`, int arrays ``(n,)`` and ``(m,)``.
      corruption_train, corruption_test: an independent kernel expansion, normalized to the same root mean
        square as the oracle on the held-out inputs; ``(n,)`` and ``(m,)``.
      oracle_norm: :math:`\\|\\Delta w_g\\| = \\sqrt{c^\\top\\Theta(A, A)\\,c}` (float).
    """

    x_train: np.ndarray
    x_test: np.ndarray
    oracle_train: np.ndarray
    oracle_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    corruption_train: np.ndarray
    corruption_test: np.ndarray
    oracle_norm: float


def synthetic_task(
    kernel_fn: Callable[..., np.ndarray],
    *,
    streams: Streams,
    n_train: int,
    n_test: int,
    input_dim: int,
    n_anchors: int,
    teacher_rms_logit: float,
) -> SyntheticTask:
    r"""Oracle :math:`z_g = \sum_j c_j\Theta(\cdot, a_j)` and corruption :math:`\sum_j c'_j\Theta(\cdot, a'_j)`.

    Both are :func:`kdwide.tasks.perfect_teacher` expansions (``n_anchors`` random anchors on the sphere, centred
    coefficients without linear part: the book's pitfall 1, one-class teachers) of the streams
    ``streams.child("oracle")`` and ``streams.child("corruption")``, both scaled to root mean square
    ``teacher_rms_logit`` over ``x_test`` (a fixed normalization of the task; the held-out set is large). The inputs
    come from ``streams.rng("inputs")``. Teachers are :func:`corrupted_teacher_logits` of the two.

    Args:
      kernel_fn: ``kernel_fn(x1, x2=None) -> (n1, n2)`` tangent kernel (float64; ``x2=None`` means ``x1``,
        as :attr:`kdwide.architecture.Architecture.kernel`, whose diagonal is then exact).
      streams: the repetition's :class:`kdwide.seeds.Streams`.
      n_train, n_test: numbers of training and held-out inputs (≥ 1).
      input_dim: d (≥ 2).
      n_anchors: anchors per expansion (> input_dim + 1).
      teacher_rms_logit: root mean square of the oracle logits (> 0), the perfect teacher's RMS logit.

    Returns:
      :class:`SyntheticTask`.
    """
    check_positive_int(n_train, "n_train")
    check_positive_int(n_test, "n_test")
    check_positive_int(n_anchors, "n_anchors", minimum=input_dim + 2)
    if not isinstance(streams, Streams):
        raise ValueError(f"streams must be a kdwide.seeds.Streams, got {streams!r}")
    x = sphere_inputs(streams.rng("inputs"), n_train + n_test, input_dim)
    expansion = dict(kernel_fn=kernel_fn, input_dim=input_dim, n_anchors=n_anchors, rms_logit=teacher_rms_logit,
                     calibration=x[n_train:])  # fmt: skip
    oracle_teacher = perfect_teacher(streams.child("oracle"), **expansion)
    oracle = oracle_teacher.logits(kernel_fn, x)
    corruption = perfect_teacher(streams.child("corruption"), **expansion).logits(kernel_fn, x)
    labels = (oracle > 0).astype(np.int64)
    return SyntheticTask(
        x[:n_train], x[n_train:], oracle[:n_train], oracle[n_train:], labels[:n_train], labels[n_train:],
        corruption[:n_train], corruption[n_train:], oracle_teacher.oracle_norm,
    )  # fmt: skip


def corrupted_teacher_logits(oracle: np.ndarray, corruption: np.ndarray, *, corruption_scale: float) -> np.ndarray:
    r"""Imperfect teacher :math:`z_t = z_g + \epsilon\, z_c` (``corruption_scale`` = :math:`\epsilon \ge 0`).

    With :math:`z_g` and :math:`z_c` of equal size and independent, the disagreement rate grows from 0
    (:math:`\epsilon = 0`: the perfect teacher) to about 1/2 (:math:`\epsilon\to\infty`); measure it with
    :func:`kdwide.metrics.classification_error` on held-out inputs. Shapes ``(m,)`` in and out.
    """
    oracle, corruption = np.asarray(oracle, float), np.asarray(corruption, float)
    check_same_shape(oracle=oracle, corruption=corruption)
    if not (np.isfinite(corruption_scale) and corruption_scale >= 0):
        raise ValueError(f"corruption_scale must be a finite number >= 0, got {corruption_scale!r}")
    return oracle + corruption_scale * corruption


def kernel_regression_teacher(
    kernel_teacher: np.ndarray, kernel_eval_teacher: np.ndarray, y_teacher: np.ndarray, *, target_logit: float,
    ridge: float,
) -> np.ndarray:  # fmt: skip
    r"""A kernel-model teacher trained on its own data: logits :math:`\Theta(x, X_t)(\Theta_t + \lambda I)^{-1}
    s\,(2y_t - 1)` on new inputs.

    It is the converged wide network trained on ±``target_logit`` targets (squared loss), with a ridge
    :math:`\lambda` = ``ridge`` × mean diagonal of :math:`\Theta_t` standing in for early stopping.

    Args:
      kernel_teacher: ``(n_t, n_t)`` kernel on the teacher's training inputs.
      kernel_eval_teacher: ``(m, n_t)`` kernel between evaluation inputs and the teacher's inputs.
      y_teacher: ``(n_t,)`` labels in {0, 1}.
      target_logit: s > 0, the size of the targets (sets how confident the teacher is).
      ridge: λ relative to the mean diagonal, ≥ 0.

    Returns:
      ``(m,)`` teacher logits.
    """
    kernel_teacher = np.asarray(kernel_teacher, float)
    kernel_eval_teacher = np.asarray(kernel_eval_teacher, float)
    y_teacher = np.asarray(y_teacher)
    check_hard_labels(y_teacher, "y_teacher")
    n = y_teacher.shape[0]
    if kernel_teacher.shape != (n, n) or kernel_eval_teacher.ndim != 2 or kernel_eval_teacher.shape[1] != n:
        raise ValueError(
            f"kernel_teacher must be ({n}, {n}) and kernel_eval_teacher (m, {n}); got {kernel_teacher.shape} "
            f"and {kernel_eval_teacher.shape}"
        )
    if not (np.isfinite(target_logit) and target_logit > 0):
        raise ValueError(f"target_logit must be a finite number > 0, got {target_logit!r}")
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    regularized = kernel_teacher + ridge * np.mean(np.diag(kernel_teacher)) * np.eye(n)
    coefficients = np.linalg.solve(regularized, target_logit * (2.0 * y_teacher - 1.0))
    return kernel_eval_teacher @ coefficients


# ---------------------------------------------------------------------------------------------------------
# Local view (I2)
# ---------------------------------------------------------------------------------------------------------


def flip_soft_ratio(z_teacher: np.ndarray, *, temperature) -> np.ndarray:
    r"""Soft ratio :math:`\rho^* = T / (T + \tanh(|z_t|/2T))` below which a teacher-wrong point is corrected.

    On a point where the teacher's sign is wrong, the effective logit has the correct sign for
    :math:`\rho < \rho^*`, is 0 at :math:`\rho^*` and keeps the teacher's sign above (derivation in the module
    docstring). Points where the teacher is right keep the correct sign for every ρ. ``z_teacher`` and
    ``temperature`` broadcast; returns float64 in :math:`[T/(T+1), 1]`.
    """
    check_temperature(temperature)
    check_finite(z_teacher, "z_teacher")
    z_teacher, temperature = np.asarray(z_teacher, float), np.asarray(temperature, float)
    return temperature / (temperature + np.tanh(np.abs(z_teacher) / (2.0 * temperature)))


def corrected_share(z_teacher: np.ndarray, y_hard: np.ndarray, *, rho, temperature) -> np.ndarray:
    r"""I2: among points where the teacher is wrong, the share whose effective logit has the correct sign.

    Computed from :func:`kdwide.effective_logit` itself (not from :func:`flip_soft_ratio`).

    Args:
      z_teacher: ``(n,)`` teacher logits; y_hard: ``(n,)`` ground-truth labels.
      rho, temperature: broadcastable arrays (e.g. ``rho[:, None]``, ``temperature[None, :]`` for a grid).

    Returns:
      Array of the broadcast shape of ``rho`` and ``temperature``.

    Raises:
      ValueError: the teacher makes no mistake on these points (the share is undefined), or bad inputs.
    """
    wrong = sign_errors(z_teacher, y_hard)
    if not wrong.any():
        raise ValueError("z_teacher: the teacher makes no mistake on these points; the corrected share is undefined")
    rho, temperature = np.asarray(rho, float), np.asarray(temperature, float)
    grid = np.broadcast_shapes(rho.shape, temperature.shape)
    points = (-1,) + (1,) * len(grid)  # all points (a fixed shape: one compilation), then the wrong ones
    y_column = np.asarray(y_hard).reshape(points)
    z_eff = _effective_logit_array(np.reshape(z_teacher, points), y_column, rho=rho[None], temperature=temperature[None])
    return _corrected_share_of(z_eff, y_column, wrong)


def _corrected_share_of(student_targets, y_column, wrong):
    """Share of the teacher-wrong points whose targets (first axis: points) have the label's sign."""
    correct = (student_targets > 0) == (y_column == 1)
    return np.mean(correct[wrong], axis=0)


# ---------------------------------------------------------------------------------------------------------
# Global view (I3)
# ---------------------------------------------------------------------------------------------------------


def hard_label_change(z_teacher: np.ndarray, y_hard: np.ndarray, *, temperature) -> np.ndarray:
    r""":math:`\delta z_h = -\partial z_{s,\mathrm{eff}}/\partial\rho|_{\rho=1} = T^2(y_g - \sigma(z_t)) /
    (\sigma(z_t/T)\sigma(-z_t/T))`: the change of the effective logits per unit of added hard label
    (exact, from :func:`kdwide.effective_logit_rho_derivative`). Shape of ``z_teacher``."""
    return -np.asarray(effective_logit_rho_derivative(z_teacher, y_hard, rho=1.0, temperature=temperature))


def _check_oracle_norm(factorization: KernelFactorization, oracle_train: jnp.ndarray, oracle_norm: float) -> None:
    if not (np.isfinite(oracle_norm) and oracle_norm > 0):
        raise ValueError(f"oracle_norm must be a finite number > 0, got {oracle_norm!r}")
    projected = float(weight_change_norm(factorization, oracle_train))
    if projected > oracle_norm * (1.0 + 1e-6):
        raise ValueError(
            f"oracle_norm ({oracle_norm:.6g}) is below the norm of the oracle's projection ({projected:.6g}): "
            "is the oracle representable with this kernel (z_g = sum_j c_j Theta(x, a_j))?"
        )


def _slope_inputs(factorization, teacher_train, oracle_train, temperature, oracle_norm) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The checked ``(teacher_train, oracle_train)`` of the two slope computations (float64 arrays)."""
    check_temperature(temperature)
    oracle_train = jnp.asarray(oracle_train, jnp.float64)
    _check_oracle_norm(factorization, oracle_train, oracle_norm)
    return jnp.asarray(teacher_train, jnp.float64), oracle_train


def oracle_cosine(
    factorization: KernelFactorization, student_change: jnp.ndarray, oracle_train: jnp.ndarray, *, oracle_norm: float
) -> jnp.ndarray:
    r""":math:`\cos\alpha(\Delta\hat w, \Delta w_g) = \langle\Delta z, \Delta z_g\rangle_{\Theta_n} /
    (\|\Delta z\|_{\Theta_n}\|\Delta w_g\|)`.

    Args:
      factorization: of :math:`\Theta_n = \Theta(X, X)`.
      student_change: the student's training targets :math:`\Delta z`, ``(n,)`` or ``(n, k)`` (columns:
        e.g. a ρ×T grid); any positive multiple gives the same cosine.
      oracle_train: :math:`\Delta z_g = z_g(X)`, ``(n,)``.
      oracle_norm: :math:`\|\Delta w_g\|` (the full oracle, not its projection).

    Returns:
      Scalar or ``(k,)``.
    """
    oracle_train = jnp.asarray(oracle_train, jnp.float64)
    _check_oracle_norm(factorization, oracle_train, oracle_norm)
    # The same kernel algebra as Result 1's student-oracle angle (there the oracle is the perfect teacher).
    return student_oracle_cosine(factorization, oracle_train, student_change, oracle_norm=oracle_norm)


class CosineSlope(NamedTuple):
    r""":math:`\partial\cos\alpha/\partial(1-\rho)` at ρ = 1 and its parts (floats).

    Attributes:
      slope: the derivative, ``scale * alignment``.
      alignment: the poster's bracket :math:`\langle\delta\hat w_h, \Delta\hat w_c\rangle`.
      scale: the exact proportionality constant :math:`1/(\|\Delta\hat w_t\|\,\|\Delta w_g\|)`.
    """

    slope: float
    alignment: float
    scale: float


def cosine_slope_at_soft_limit(
    factorization: KernelFactorization,
    teacher_train: jnp.ndarray,
    y_train: jnp.ndarray,
    oracle_train: jnp.ndarray,
    *,
    temperature: float,
    oracle_norm: float,
) -> CosineSlope:
    r"""Closed form of claim I3: :math:`\partial\cos\alpha(\Delta\hat w, \Delta w_g)/\partial(1-\rho)` at ρ = 1.

    Args:
      factorization: of :math:`\Theta_n`.
      teacher_train, y_train, oracle_train: :math:`\Delta z_t`, :math:`y_g`, :math:`\Delta z_g` on X, ``(n,)``.
      temperature: T > 0 (scalar).
      oracle_norm: :math:`\|\Delta w_g\|`.

    Returns:
      :class:`CosineSlope` (see the module docstring for the formula).
    """
    teacher_train, oracle_train = _slope_inputs(factorization, teacher_train, oracle_train, temperature, oracle_norm)
    hard = jnp.asarray(hard_label_change(teacher_train, y_train, temperature=temperature))
    both = jnp.stack([oracle_train, teacher_train], axis=1)
    gram = np.asarray(weight_change_inner(factorization, both, jnp.stack([hard, teacher_train], axis=1)))
    oracle_hard, oracle_teacher = gram[0]
    teacher_hard, teacher_teacher = gram[1]
    if teacher_teacher <= 0:
        raise ValueError("teacher_train: the teacher's weight change is zero; its angle is undefined")
    alignment = oracle_hard - oracle_teacher / teacher_teacher * teacher_hard
    scale = 1.0 / (np.sqrt(teacher_teacher) * oracle_norm)
    return CosineSlope(float(scale * alignment), float(alignment), float(scale))


def _cosine_change(factorization, teacher_train, change, oracle_train, oracle_norm):
    """cos α(Δz_t + change) − cos α(Δz_t) without cancellation (change small)."""
    vectors = jnp.stack([teacher_train, change], axis=1)
    gram = np.asarray(weight_change_inner(factorization, vectors, jnp.stack([oracle_train, teacher_train, change], 1)))
    a, p2, b, td, dd = gram[0, 0], gram[0, 1], gram[1, 0], gram[1, 1], gram[1, 2]
    p = np.sqrt(p2)
    q = np.sqrt(p2 + 2.0 * td + dd)
    return (b / q - a * (2.0 * td + dd) / (p * q * (p + q))) / oracle_norm


def cosine_slope_finite_difference(
    factorization: KernelFactorization, teacher_train: jnp.ndarray, y_train: jnp.ndarray, oracle_train: jnp.ndarray,
    *, temperature: float, oracle_norm: float, step: float | None = None,
) -> float:  # fmt: skip
    r"""One-sided finite difference of :math:`\cos\alpha` in :math:`1-\rho` at ρ = 1, Richardson-extrapolated.

    With :math:`D(h) = (\cos\alpha(1-h) - \cos\alpha(1))/h` (the difference computed without cancellation from
    :math:`z_{s,\mathrm{eff}}(1-h) - z_t`), returns :math:`2D(h/2) - D(h)`, whose error is :math:`O(h^2)`.
    :math:`z_{s,\mathrm{eff}}(\rho)` is analytic at ρ = 1, but its derivative is stiff (the book's pitfall 3, stiff ρ-derivative), so the
    default step is the power of two below :math:`10^{-3}\min(T, 1)/\max_i|\delta z_{h,i}|`: the largest
    effective-logit change stays far inside the linear regime. Reliable for moderate :math:`|z_t|/T` (≲ 15).

    Args: as :func:`cosine_slope_at_soft_limit`, plus ``step`` h in (0, 1/2] (a power of two keeps
    :math:`1-h` exact).
    """
    teacher_train, oracle_train = _slope_inputs(factorization, teacher_train, oracle_train, temperature, oracle_norm)
    if step is None:
        largest = float(np.max(np.abs(hard_label_change(teacher_train, y_train, temperature=temperature))))
        step = 2.0 ** np.floor(np.log2(1e-3 * min(temperature, 1.0) / max(largest, 1e-300)))
        step = float(min(step, 0.5))
    if not (np.isfinite(step) and 0 < step <= 0.5):
        raise ValueError(f"step must lie in (0, 0.5], got {step!r}")

    rho = 1.0 - np.array([step, step / 2.0])
    teacher_column = np.asarray(teacher_train)[:, None]
    changes = _effective_logit_array(teacher_column, np.asarray(y_train)[:, None], rho=rho[None], temperature=temperature)
    changes = changes - teacher_column
    quotients = [
        _cosine_change(factorization, teacher_train, jnp.asarray(changes[:, k]), oracle_train, oracle_norm) / (1.0 - rho[k])
        for k in range(2)
    ]
    return float(2.0 * quotients[1] - quotients[0])


# ---------------------------------------------------------------------------------------------------------
# The optimal soft ratio (I1)
# ---------------------------------------------------------------------------------------------------------


CONFIGURATION = ["dataset", "teacher_quality", "temperature"]
"""The fields of one I1 configuration (a dataset, a teacher, a temperature); its records differ in ρ and repetition."""
REPETITION = ["seed", "repetition"]
"""The fields that name a repetition (:meth:`kdwide.seeds.Streams.record`): paired differences match on both."""


# ---------------------------------------------------------------------------------------------------------
# Experiments: tidy records per (dataset, teacher quality, ρ, T, seed), summaries and claims
# ---------------------------------------------------------------------------------------------------------


def _progress(iterable, enabled: bool, description: str):
    if not enabled:
        return iterable
    from tqdm import tqdm  # noqa: PLC0415  (the plain bar: tqdm.auto warns inside notebooks without ipywidgets)

    return tqdm(iterable, desc=description)


def _grid_records(common: dict, rho_values, temperature_values, columns: dict) -> list[dict]:
    """One record per (ρ, T): ``common`` fields plus ``columns[name][i, k]`` (or a per-T / scalar value)."""
    records = []
    for i, rho in enumerate(rho_values):
        for k, temperature in enumerate(temperature_values):
            record = dict(common, rho=float(rho), temperature=float(temperature))
            for name, value in columns.items():
                value = None if value is None else np.asarray(value, float)
                if value is None:
                    record[name] = None
                elif value.ndim == 2:
                    record[name] = float(value[i, k])
                elif value.ndim == 1:
                    record[name] = float(value[k])
                else:
                    record[name] = float(value)
            records.append(record)
    return records


def _student_columns(factorization, kernel_test_train, teacher_train, y_train, y_test, rho_values, temperature_values):
    """Held-out errors, corrected shares (computed and closed form) on the ρ×T grid."""
    grid_shape = (len(rho_values), len(temperature_values))
    rho_grid, temperature_grid = grid_points(rho_values, temperature_values)
    targets = grid_targets(teacher_train, y_train, rho=rho_grid, temperature=temperature_grid)
    logits = converged_students(factorization, targets, kernel_test_train=kernel_test_train).test_outputs
    targets = targets.reshape((-1, *grid_shape))
    errors = classification_error(logits.reshape((-1, *grid_shape)), y_test)
    wrong = sign_errors(teacher_train, y_train)
    hard = errors[rho_values.index(0.0), 0] if 0.0 in rho_values else None  # ρ = 0 does not depend on T
    columns = {
        "student_error": errors,
        "hard_student_error": hard,
        "teacher_wrong_share_train": float(wrong.mean()),
        "corrected_share": None,
        "corrected_share_closed_form": None,
    }
    if wrong.any():
        rho = np.asarray(rho_values, float)[:, None]
        temperature = np.asarray(temperature_values, float)[None, :]
        # from the targets already solved (at ρ = 0 the ±1 direction has the sign of ±∞): no second solve
        y_column = np.asarray(y_train).reshape(-1, 1, 1)
        columns["corrected_share"] = _corrected_share_of(targets, y_column, wrong)
        flips = flip_soft_ratio(np.asarray(teacher_train)[wrong][:, None, None], temperature=temperature[None])
        columns["corrected_share_closed_form"] = np.mean(rho[None] < flips, axis=0)
    return targets, columns


def synthetic_records(
    kernel_fn: Callable[..., np.ndarray],
    *,
    repetitions: Sequence[Streams],
    corruption_scales: Sequence[float],
    rho_values: Sequence[float],
    temperature_values: Sequence[float],
    n_train: int,
    n_test: int,
    input_dim: int,
    n_anchors: int,
    teacher_rms_logit: float,
    progress: bool = False,
) -> list[dict]:
    r"""Result 3 on a representable synthetic task: one record per (teacher quality, ρ, T, repetition).

    Per repetition (a :class:`kdwide.seeds.Streams`): a :func:`synthetic_task` of its streams, one kernel factorization, and for every ``corruption_scale`` a teacher
    :math:`z_g + \epsilon z_c`, students on the ρ×T grid (ρ = 0: the ±1 direction), their held-out errors
    against the ground truth, :math:`\cos\alpha(\Delta\hat w, \Delta w_g)`, the corrected share of I2 and the
    slope of I3 at ρ = 1 (closed form and finite difference; repeated on every ρ of its (teacher, T, repetition)).

    Returns:
      Records with fields ``dataset`` ("synthetic"), ``teacher_quality`` (the corruption scale),
      ``teacher_quality_name``, ``seed``, ``repetition``, ``rho``, ``temperature``, ``n_train``, ``teacher_error``,
      ``student_error``, ``hard_student_error``, ``teacher_wrong_share_train``, ``corrected_share``,
      ``corrected_share_closed_form`` (None for a teacher without mistakes on X), ``cos_alpha``,
      ``cos_alpha_slope``, ``cos_alpha_slope_finite_difference``.
    """
    rho_values = [float(r) for r in rho_values]
    temperature_values = [float(t) for t in temperature_values]
    records = []
    for streams in _progress(list(repetitions), progress, "synthetic repetitions"):
        task = synthetic_task(
            kernel_fn, streams=streams, n_train=n_train, n_test=n_test, input_dim=input_dim, n_anchors=n_anchors,
            teacher_rms_logit=teacher_rms_logit,
        )  # fmt: skip
        factorization = factorize_kernel(kernel_fn(task.x_train))
        kernel_test_train = np.asarray(kernel_fn(task.x_test, task.x_train), float)
        for scale in corruption_scales:
            teacher_train = corrupted_teacher_logits(task.oracle_train, task.corruption_train, corruption_scale=scale)
            teacher_test = corrupted_teacher_logits(task.oracle_test, task.corruption_test, corruption_scale=scale)
            targets, columns = _student_columns(
                factorization, kernel_test_train, teacher_train, task.y_train, task.y_test, rho_values,
                temperature_values,
            )  # fmt: skip
            flat = targets.reshape(n_train, -1)
            cosines = oracle_cosine(factorization, flat, task.oracle_train, oracle_norm=task.oracle_norm)
            columns["cos_alpha"] = np.asarray(cosines).reshape(targets.shape[1:])
            arguments = (factorization, teacher_train, task.y_train, task.oracle_train)
            columns["cos_alpha_slope"] = [
                cosine_slope_at_soft_limit(*arguments, temperature=t, oracle_norm=task.oracle_norm).slope
                for t in temperature_values
            ]
            columns["cos_alpha_slope_finite_difference"] = [
                cosine_slope_finite_difference(*arguments, temperature=t, oracle_norm=task.oracle_norm)
                for t in temperature_values
            ]
            common = {
                "dataset": "synthetic", "teacher_quality": float(scale), "teacher_quality_name": "corruption_scale",
                **streams.record(), "n_train": int(n_train),
                "teacher_error": classification_error(teacher_test, task.y_test),
            }  # fmt: skip
            records += _grid_records(common, rho_values, temperature_values, columns)
    return records


def real_data_records(
    kernel_fn: Callable[..., np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    dataset: str,
    splits: Sequence[Streams],
    teacher_sizes: Sequence[int],
    n_student: int,
    rho_values: Sequence[float],
    temperature_values: Sequence[float],
    teacher_target_logit: float,
    teacher_ridge: float,
    progress: bool = False,
) -> list[dict]:
    r"""Result 3 on real data: kernel-model teachers that saw data the student did not (the book's pitfall 7, real data and imperfect teachers).

    Per split (a :class:`kdwide.seeds.Streams`, e.g. of ``Streams(seed).child("splits").repetitions(n_splits)``):
    ``n_student`` student points, a teacher pool of ``max(teacher_sizes)`` other points and every remaining point
    held out (stream ``"split"``), the pool in a random order (stream ``"teacher_order"``). A teacher of size k is :func:`kernel_regression_teacher`
    on the first k points of the pool (nested teachers, so sizes compare on the same split). Students
    distil on the ρ×T grid from the teacher's logits and the true labels; errors are on the held-out points.

    Args:
      kernel_fn: tangent kernel ``kernel_fn(x1, x2=None)`` (see :func:`synthetic_task`).
      images: ``(N, p)`` raw inputs; per split they are centred by the mean image of the student's and the
        teacher pool's points (never the held-out ones) and put on the unit sphere
        (:func:`kdwide.datasets.sphere_features`).
      labels: ``(N,)`` binary labels in {0, 1}.
      dataset: name stored in the records.
      splits, teacher_sizes, n_student, rho_values, temperature_values: the design.
      teacher_target_logit, teacher_ridge: the teachers' ``target_logit`` and ``ridge``
        (:func:`kernel_regression_teacher`).

    Returns:
      Records with the fields of :func:`synthetic_records` (``teacher_quality`` = teacher size,
      ``teacher_quality_name`` = "teacher_train_size", ``seed`` and ``repetition`` those of the split);
      ``cos_alpha`` and the slopes are None (no oracle).
    """
    from kdwide.datasets import disjoint_split, sphere_features  # noqa: PLC0415

    images, labels = np.asarray(images, float), np.asarray(labels)
    check_hard_labels(labels, "labels")
    rho_values, temperature_values = [float(r) for r in rho_values], [float(t) for t in temperature_values]
    pool_size, n_points = max(teacher_sizes), images.shape[0]
    if labels.shape != (n_points,):
        raise ValueError(f"labels must have shape ({n_points},), got {labels.shape}")
    if n_student + pool_size >= n_points:
        raise ValueError(f"n_student + max(teacher_sizes) must be below the {n_points} points (some must be held out)")
    records = []
    for split in _progress(list(splits), progress, f"{dataset} splits"):
        sizes = [n_student, pool_size, n_points - n_student - pool_size]
        student, pool, test = disjoint_split(split.rng("split"), n_points, sizes)
        pool = split.rng("teacher_order").permutation(pool)  # nested teachers: first k points of a random order
        evaluation = np.concatenate([student, test])
        features = sphere_features(images, mean=images[np.concatenate([student, pool])].mean(axis=0))
        kernel_pool = np.asarray(kernel_fn(features[pool]), float)
        kernel_evaluation_pool = np.asarray(kernel_fn(features[evaluation], features[pool]), float)
        factorization = factorize_kernel(kernel_fn(features[student]))
        kernel_test_student = np.asarray(kernel_fn(features[test], features[student]), float)
        for size in teacher_sizes:
            teacher = kernel_regression_teacher(
                kernel_pool[:size, :size], kernel_evaluation_pool[:, :size], labels[pool[:size]],
                target_logit=teacher_target_logit, ridge=teacher_ridge,
            )  # fmt: skip
            teacher_train, teacher_test = teacher[:n_student], teacher[n_student:]
            _, columns = _student_columns(
                factorization, kernel_test_student, teacher_train, labels[student], labels[test], rho_values,
                temperature_values,
            )  # fmt: skip
            columns.update(cos_alpha=None, cos_alpha_slope=None, cos_alpha_slope_finite_difference=None)
            common = {
                "dataset": dataset, "teacher_quality": float(size), "teacher_quality_name": "teacher_train_size",
                **split.record(), "n_train": int(n_student),
                "teacher_error": classification_error(teacher_test, labels[test]),
            }  # fmt: skip
            records += _grid_records(common, rho_values, temperature_values, columns)
    return records


def _repetition_frame(records: Sequence[dict]) -> pd.DataFrame:
    """The records as a DataFrame, with each row's paired margin: student error at ρ = 1 of the same configuration
    and repetition minus its own (``margin``); ``cos_alpha`` as float (NaN without an oracle)."""
    frame = pd.DataFrame(list(records))
    if frame.empty:
        raise ValueError("records must not be empty")
    pair = CONFIGURATION + REPETITION
    if frame.duplicated([*pair, "rho"]).any():
        raise ValueError("records must hold exactly one row per (repetition, rho) in each (dataset, teacher, T) group")
    soft = frame[frame.rho == 1.0].set_index(pair).student_error.rename("soft_student_error")
    frame = frame.join(soft, on=pair)
    if frame.soft_student_error.isna().any():
        raise ValueError("rho_values must contain 1.0 (pure distillation) in every configuration and repetition")
    return frame.assign(margin=frame.soft_student_error - frame.student_error, cos_alpha=frame.cos_alpha.astype(float))


def _best_rho_per_repetition(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over repetitions of each repetition's best ρ (ties to the largest ρ), per configuration."""
    descending = frame.sort_values("rho", ascending=False, kind="stable")  # idxmin keeps the first: the largest ρ
    best = descending.loc[descending.groupby(CONFIGURATION + REPETITION, sort=False).student_error.idxmin()]
    return seed_means(best, CONFIGURATION, ["rho"]).set_index(CONFIGURATION)


def soft_ratio_table(records: Sequence[dict], *, significance: float = 2.0) -> list[dict]:
    r"""I1 summary: one row per (dataset, teacher quality, T), over repetitions (seeds or splits).

    Every mean over repetitions is :func:`kdwide.stats.seed_means`. Row fields: ``dataset``, ``teacher_quality``,
    ``temperature``, ``repetitions``, ``teacher_error``, ``hard_student_error`` (ρ = 0), ``soft_student_error``
    (ρ = 1), ``best_student_error`` (minimum of the mean curve over repetitions), ``best_rho`` (its argmin, ties to
    larger ρ), ``best_rho_per_repetition_mean``, ``best_rho_per_repetition_standard_error``, ``margin`` and
    ``margin_standard_error`` (paired within repetitions: error at ρ = 1 minus error at ``best_rho``),
    ``margin_significant`` (margin > ``significance`` × its standard error), ``cos_alpha_soft`` and
    ``cos_alpha_best`` (means at ρ = 1 and at the ρ maximizing the mean cos α; None without an oracle),
    ``best_cos_alpha_rho``.
    """
    frame = _repetition_frame(records)
    curves = seed_means(frame, [*CONFIGURATION, "rho"], ["student_error", "teacher_error", "margin", "cos_alpha"])
    best_per_repetition = _best_rho_per_repetition(frame)
    rows = []
    for configuration, curve in curves.groupby(CONFIGURATION, sort=True):
        curve = curve.set_index("rho").sort_index()
        best_rho = float(best_soft_ratio(curve.index.to_numpy(), curve.student_error_mean.to_numpy()))
        best, soft = curve.loc[best_rho], curve.loc[1.0]
        row = dict(zip(CONFIGURATION, configuration))
        row.update({
            "repetitions": int(soft["count"]), "teacher_error": float(soft.teacher_error_mean),
            "hard_student_error": float(curve.student_error_mean.loc[0.0]) if 0.0 in curve.index else None,
            "soft_student_error": float(soft.student_error_mean), "best_student_error": float(best.student_error_mean),
            "best_rho": best_rho,
            "best_rho_per_repetition_mean": float(best_per_repetition.loc[configuration, "rho_mean"]),
            "best_rho_per_repetition_standard_error": float(best_per_repetition.loc[configuration, "rho_standard_error"]),
            "margin": float(best.margin_mean), "margin_standard_error": float(best.margin_standard_error),
            "margin_significant": bool(best.margin_mean > significance * best.margin_standard_error),
            "cos_alpha_soft": None, "cos_alpha_best": None, "best_cos_alpha_rho": None,
        })  # fmt: skip
        if curve.cos_alpha_mean.notna().all():
            best_cosine = curve.cos_alpha_mean.idxmax()
            row.update(cos_alpha_soft=float(soft.cos_alpha_mean), cos_alpha_best=float(curve.cos_alpha_mean.max()),
                       best_cos_alpha_rho=float(best_cosine))  # fmt: skip
        rows.append(row)
    return rows


SLOPE_RELATIVE_TOLERANCE = 1e-4
"""I3: the closed-form slope of cos α at ρ = 1 must equal the finite difference to this relative difference."""
PERFECT_SLOPE_TOLERANCE = 1e-9
"""I3: for a perfect teacher the slope must vanish: |slope| below this."""


def _optimal_soft_ratio_claim(table: Sequence[dict], *, flat_tolerance: float) -> dict[str, Any]:
    """I1 from :func:`soft_ratio_table`'s rows (rules in :func:`claims`)."""
    holds, evidence = True, []
    for (dataset, temperature), rows in pd.DataFrame(list(table)).groupby(["dataset", "temperature"], sort=True):
        rows = rows.to_dict("records")
        usual = [r for r in rows if r["hard_student_error"] is not None and 0 < r["teacher_error"] < r["hard_student_error"]]
        winners = [r for r in usual if r["best_rho"] < 1 and r["margin_significant"]]
        perfect = [r for r in rows if r["teacher_error"] == 0]
        flat = all(r["margin"] <= flat_tolerance for r in perfect)
        holds &= bool(winners) and flat
        if winners:
            r = max(winners, key=lambda r: r["margin"] / max(r["margin_standard_error"], 1e-300))
            text = (
                f"{dataset} T={temperature:g}: teacher {r['teacher_quality']:g} (error {percent(r['teacher_error'])} < "
                f"hard-label {percent(r['hard_student_error'])}) best rho {r['best_rho']:g}, margin "
                f"{percent(r['margin'])} +- {percent(r['margin_standard_error'])}"
            )  # fmt: skip
        else:
            text = f"{dataset} T={temperature:g}: no teacher better than hard labels with a significant best rho < 1"
        if perfect:
            text += f"; perfect teacher margin {percent(max(r['margin'] for r in perfect))} (flat: {flat})"
        evidence.append(text)
    return claim(holds, "; ".join(evidence))


def _local_correction_claim(records: Sequence[dict]) -> dict[str, Any]:
    """I2 from the records' corrected shares (rules in :func:`claims`)."""
    frame = pd.DataFrame(list(records))
    shares = frame[frame.corrected_share.notna()]
    configurations = shares.groupby(CONFIGURATION + REPETITION, sort=True)
    ok = configurations.ngroups > 0
    for _, group in configurations:
        group = group.sort_values("rho")
        values, closed = group.corrected_share.to_numpy(float), group.corrected_share_closed_form.to_numpy(float)
        rho, temperature = group.rho.to_numpy(float), float(group.temperature.iloc[0])
        ok &= bool(np.all(np.diff(values) <= 0) and np.array_equal(values, closed))
        ok &= bool(np.all(values[rho < temperature / (temperature + 1)] == 1) and np.all(values[rho == 1] == 0))
    return claim(
        ok,
        f"{configurations.ngroups} (teacher, T, repetition) configurations with teacher mistakes on the training set: "
        f"corrected share 0 at rho=1, 1 below T/(T+1), monotone in rho and equal to the closed-form flip ratio: {ok}",
    )


def _cosine_slope_claim(records: Sequence[dict], *, slope_tolerance: float) -> dict[str, Any]:
    """I3 from the records' slopes of cos α at ρ = 1 (rules in :func:`claims`)."""
    slopes = [r for r in records if r["cos_alpha_slope"] is not None and r["rho"] == 1.0]
    worse = [r for r in slopes if r["teacher_error"] > r["hard_student_error"]]
    nonzero = [r for r in slopes if r["teacher_error"] > 0]
    relative = [
        abs(r["cos_alpha_slope_finite_difference"] - r["cos_alpha_slope"]) / abs(r["cos_alpha_slope"]) for r in nonzero
    ]
    perfect_slopes = [abs(r["cos_alpha_slope"]) for r in slopes if r["teacher_error"] == 0]
    positive_worse = all(r["cos_alpha_slope"] > 0 for r in worse)
    better = [r for r in nonzero if r not in worse]
    holds = (
        bool(nonzero) and bool(worse) and max(relative) <= slope_tolerance and positive_worse
        and all(v < PERFECT_SLOPE_TOLERANCE for v in perfect_slopes)
    )  # fmt: skip
    return claim(
        holds,
        f"max relative |closed form - finite difference| = {max(relative, default=float('nan')):.3g} over "
        f"{len(nonzero)} imperfect configurations; max |slope| for perfect teachers = "
        f"{max(perfect_slopes, default=float('nan')):.3g}; slope > 0 in {sum(r['cos_alpha_slope'] > 0 for r in worse)}"
        f"/{len(worse)} configurations where the teacher errs more than the hard-label student, and in "
        f"{sum(r['cos_alpha_slope'] > 0 for r in better)}/{len(better)} where it errs less",
    )


def claims(
    records: Sequence[dict],
    *,
    significance: float = 2.0,
    flat_tolerance: float = 0.0025,
    slope_tolerance: float = SLOPE_RELATIVE_TOLERANCE,
) -> dict[str, dict]:
    r"""Claims I1–I3 computed from the records of :func:`synthetic_records` and :func:`real_data_records`.

    - **I1** holds if, on every dataset and at every temperature, (a) some teacher that beats the hard-label
      student (held-out error below the ρ = 0 student's) still has its best ρ below 1 with a margin above
      ``significance`` standard errors, and (b) every perfect teacher (held-out error 0) is flat at ρ = 1:
      its margin is at most ``flat_tolerance``.
    - **I2** holds if, on every (teacher, T, repetition) with teacher mistakes on the training set, the corrected
      share is 0 at ρ = 1, 1 for every ρ < T/(T+1), non-increasing in ρ, and equal to the closed-form share
      :math:`P[\rho < \rho^*]` of :func:`flip_soft_ratio`.
    - **I3** holds if the closed-form slope of cos α at ρ = 1 equals the finite difference within relative
      ``slope_tolerance`` wherever it is non-zero, vanishes (|slope| < :data:`PERFECT_SLOPE_TOLERANCE`) for perfect
      teachers, and is positive in every configuration where the teacher makes more held-out mistakes than the
      hard-label student.

    Returns:
      ``{"I1": claim, "I2": claim, "I3": claim}`` (:func:`kdwide.experiments.claim` entries).
    """
    table = soft_ratio_table(records, significance=significance)
    return {
        "I1": _optimal_soft_ratio_claim(table, flat_tolerance=flat_tolerance),
        "I2": _local_correction_claim(records),
        "I3": _cosine_slope_claim(records, slope_tolerance=slope_tolerance),
    }
