r"""Chapter 7, beyond two classes (claims M1–M4): softmax distillation of a wide network with K outputs.

Everything in this module is the book's own extension; the paper (Ji & Zhu, 2020) treats binary classification only.

The student. A wide network with K outputs has the tangent kernel :math:`\Theta\otimes I_K` (the K outputs share
the kernel and do not couple), so the converged student trained on the K columns of effective logits
:math:`Z \in \mathbb R^{n\times K}` (:func:`kdwide.effective_logits`) is the kernel model fitted to each column,

.. math:: f(x) = \Theta(x, X)\,\Theta(X, X)^{-1} Z \in \mathbb R^K ,

with the initial function taken as 0 (its mean, as in chapter 5). One factorization serves every column, every ρ
and every teacher (:func:`kdwide.predict.converged_students`).

The hard-label limit. As :math:`\rho\to0^+` the effective logits of a point with label y satisfy
:math:`z_y - z_k = \log(1/\rho) + \log(T/q_k) + O(\rho^{\min(1, 1/T)})` (module docstring of
:mod:`kdwide.softmax_effective_logits`), so with zero-mean rows
:math:`z = \log(1/\rho)\,(e_y - \mathbf 1/K) + c + o(1)` for a bounded :math:`c`. The student is linear in its
targets, :math:`f = \log(1/\rho)\, f_{\mathrm{hard}} + f_c + o(1)` with :math:`f_{\mathrm{hard}}` the kernel model of
the centred one-hot targets :math:`e_y - \mathbf 1/K`; dividing by :math:`\log(1/\rho)` does not change an argmax,
so wherever :math:`f_{\mathrm{hard}}(x)` has a unique largest entry the ρ → 0⁺ student predicts its argmax. ρ = 0
columns of :func:`student_targets` are therefore :math:`e_y - \mathbf 1/K` (:func:`hard_label_limit`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd

from kdwide.effective_logit import effective_logit
from kdwide.experiments import claim, percent
from kdwide.linearized import factorize_kernel
from kdwide.predict import converged_students
from kdwide.seeds import Streams
from kdwide.softmax_effective_logits import (
    effective_logits,
    effective_logits_rho_derivative,
    softmax_stationarity_residual,
)
from kdwide.stats import loglog_fit, ols_slope, paired_difference, seed_means
from kdwide.validation import check_class_labels, check_finite, check_positive_int, check_soft_ratio, check_temperature

__all__ = [
    "hard_label_limit",
    "student_targets",
    "class_predictions",
    "multiclass_kernel_teacher",
    "relative_stationarity_residual",
    "zero_sum_hessian_eigenvalues",
    "binary_reduction_difference",
    "random_teacher_rows",
    "margin_limit_records",
    "asymptotic_margins",
    "digit_records",
    "soft_label_table",
    "claims",
    "RESIDUAL_TOLERANCE",
    "BINARY_TOLERANCE",
]

RESIDUAL_TOLERANCE = 1e-10
"""M1: the largest stationarity residual, relative to the terms it balances, must stay below this (float64 roots)."""
BINARY_TOLERANCE = 1e-9
"""M1: at K = 2 the margin z_1 − z_0 must equal chapter 1's effective logit to this absolute difference."""


def _labels_and_logits(teacher_logits, labels) -> tuple[np.ndarray, np.ndarray, int]:
    teacher_logits = np.asarray(teacher_logits, float)
    if teacher_logits.ndim != 2 or teacher_logits.shape[1] < 2:
        raise ValueError(f"teacher_logits must have shape (n, K) with K >= 2, got {teacher_logits.shape}")
    check_finite(teacher_logits, "teacher_logits")
    labels = np.asarray(labels)
    if labels.shape != teacher_logits.shape[:1]:
        raise ValueError(f"labels must have shape ({teacher_logits.shape[0]},), got {labels.shape}")
    check_class_labels(labels, teacher_logits.shape[1])
    return teacher_logits, labels.astype(np.int64), teacher_logits.shape[1]


def hard_label_limit(labels, n_classes: int) -> np.ndarray:
    r"""The direction of the ρ → 0⁺ effective logits: centred one-hot rows :math:`e_y - \mathbf 1/K`, ``(n, K)``.

    Example:
      >>> hard_label_limit([2, 0], 3).round(3).tolist()
      [[-0.333, -0.333, 0.667], [0.667, -0.333, -0.333]]
    """
    check_positive_int(n_classes, "n_classes", minimum=2)
    labels = np.asarray(labels)
    check_class_labels(labels, n_classes)
    return np.eye(n_classes)[labels] - 1.0 / n_classes


def student_targets(teacher_logits, labels, *, rho_values: Sequence[float], temperature: float) -> np.ndarray:
    r"""Training targets of the K-output student for every ρ: effective logits, and the hard-label limit at ρ = 0.

    Args:
      teacher_logits: ``(n, K)`` teacher logits on the training points; labels: ``(n,)`` integers in 0..K−1.
      rho_values: ``(R,)`` soft ratios in [0, 1]; temperature: T > 0.

    Returns:
      ``(n, K, R)`` float64: column r is :func:`kdwide.effective_logits` at ``rho_values[r]`` (one vectorized call
      for all ρ), or :func:`hard_label_limit` where ρ = 0 (module docstring: the ρ → 0⁺ student's argmax).

    Example:
      >>> targets = student_targets([[1.0, 0.0]], [1], rho_values=[0.0, 1.0], temperature=1.0)
      >>> targets[0].round(3).tolist()
      [[-0.5, 0.5], [0.5, -0.5]]
    """
    teacher_logits, labels, n_classes = _labels_and_logits(teacher_logits, labels)
    rho_values = np.asarray(rho_values, float).ravel()
    check_soft_ratio(rho_values, "rho_values")
    check_temperature(temperature)
    n, count = labels.shape[0], rho_values.size
    rho_rows = np.repeat(rho_values, n)  # ρ slow, points fast: one call, one compilation per (n·R, K)
    logits = np.asarray(effective_logits(np.tile(teacher_logits, (count, 1)), np.tile(labels, count), rho=rho_rows,
                                         temperature=temperature)).reshape(count, n, n_classes)
    hard = hard_label_limit(labels, n_classes)
    logits = np.where((rho_values == 0)[:, None, None], hard[None], logits)
    return np.moveaxis(logits, 0, -1)


def class_predictions(outputs) -> np.ndarray:
    """Predicted classes: argmax over axis 1 of ``(m, K, ...)`` outputs, shape ``(m, ...)``."""
    outputs = np.asarray(outputs, float)
    if outputs.ndim < 2:
        raise ValueError(f"outputs must have shape (m, K, ...), got {outputs.shape}")
    return np.argmax(outputs, axis=1)


def multiclass_kernel_teacher(kernel_teacher, kernel_eval_teacher, labels, *, n_classes: int, target_logit: float,
                              ridge: float = 0.0) -> np.ndarray:  # fmt: skip
    r"""A K-output kernel-model teacher trained on its own points: :math:`\Theta(x, X_t)(\Theta_t + \lambda I)^{-1}
    s\,(E_y - \mathbf 1/K)`, the converged wide network on centred one-hot targets whose true-class margin is
    :math:`s` = ``target_logit`` (λ = ``ridge`` × the mean diagonal).

    Args:
      kernel_teacher: ``(n_t, n_t)``; kernel_eval_teacher: ``(m, n_t)``; labels: ``(n_t,)`` in 0..K−1.

    Returns:
      ``(m, n_classes)`` teacher logits.
    """
    kernel_teacher, kernel_eval_teacher = np.asarray(kernel_teacher, float), np.asarray(kernel_eval_teacher, float)
    n = np.shape(labels)[0]
    if kernel_teacher.shape != (n, n) or kernel_eval_teacher.ndim != 2 or kernel_eval_teacher.shape[1] != n:
        raise ValueError(f"kernel_teacher must be ({n}, {n}) and kernel_eval_teacher (m, {n}); got "
                         f"{kernel_teacher.shape} and {kernel_eval_teacher.shape}")  # fmt: skip
    if not (np.isfinite(target_logit) and target_logit > 0):
        raise ValueError(f"target_logit must be a finite number > 0, got {target_logit!r}")
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    targets = target_logit * hard_label_limit(labels, n_classes)
    regularized = kernel_teacher + ridge * np.mean(np.diag(kernel_teacher)) * np.eye(n)
    return kernel_eval_teacher @ np.linalg.solve(regularized, targets)


# ---------------------------------------------------------------------------------------------------------
# M1: existence, uniqueness, K = 2
# ---------------------------------------------------------------------------------------------------------


def relative_stationarity_residual(student_logits, teacher_logits, labels, *, rho, temperature) -> np.ndarray:
    r"""|F_k| of the stationarity condition over the size of the terms it balances, ``(n, K)`` (0 at the true class).

    For k ≠ y the condition balances :math:`\frac\rho T q_k` against :math:`\frac\rho T p^T_k + (1-\rho)p_k`; the
    ratio :math:`|F_k| / (\frac\rho T(p^T_k + q_k) + (1-\rho)p_k)` is the residual in units of those terms, a few ulps
    at a float64 root. (Component y is minus the sum of the others, so it adds nothing.) ``rho`` and ``temperature``:
    scalars or ``(n,)``.
    """
    student_logits = np.asarray(student_logits, float)
    teacher_logits, labels, n_classes = _labels_and_logits(teacher_logits, labels)
    residual = np.asarray(softmax_stationarity_residual(student_logits, teacher_logits, labels, rho=rho,
                                                        temperature=temperature))  # fmt: skip
    rho = np.broadcast_to(np.asarray(rho, float), labels.shape)[:, None]
    temperature = np.broadcast_to(np.asarray(temperature, float), labels.shape)[:, None]
    softmax = lambda z: np.exp(z - np.max(z, axis=1, keepdims=True)) / np.sum(np.exp(z - np.max(z, axis=1, keepdims=True)), axis=1, keepdims=True)  # noqa: E731,E501
    scale = rho / temperature * (softmax(student_logits / temperature) + softmax(teacher_logits / temperature))
    scale = scale + (1 - rho) * softmax(student_logits)
    others = np.arange(n_classes)[None, :] != labels[:, None]
    return np.where(others, np.abs(residual) / np.where(others, scale, 1.0), 0.0)


def zero_sum_hessian_eigenvalues(student_logits, *, rho, temperature) -> np.ndarray:
    r"""Eigenvalues of the potential's Hessian on the zero-sum plane, ``(n, K−1)`` ascending.

    :math:`H = \frac{\rho}{T^2}(\mathrm{diag}\,p^T - p^Tp^{T\top}) + (1-\rho)(\mathrm{diag}\,p - pp^\top)` at the
    student's logits, restricted to an orthonormal basis of :math:`\mathbf 1^\perp` (``rho``, ``temperature``:
    scalars or ``(n,)``). All positive: the potential is strictly convex there, so its minimiser is unique.
    """
    z = np.asarray(student_logits, float)
    n, k = z.shape
    rho = np.broadcast_to(np.asarray(rho, float), (n,))[:, None, None]
    temperature = np.broadcast_to(np.asarray(temperature, float), (n,))[:, None, None]

    def covariance(logits):
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = shifted / shifted.sum(axis=1, keepdims=True)
        return np.einsum("ij,jk->ijk", p, np.eye(k)) - p[:, :, None] * p[:, None, :]

    hessian = rho / temperature**2 * covariance(z / temperature[:, :, 0]) + (1 - rho) * covariance(z)
    basis = np.linalg.qr(np.eye(k) - 1.0 / k)[0][:, : k - 1]  # orthonormal columns spanning the zero-sum plane
    return np.linalg.eigvalsh(basis.T @ hessian @ basis)


def binary_reduction_difference(teacher_margins, labels, *, rho, temperature) -> float:
    r"""Largest :math:`|(z_1 - z_0) - z_{s,\mathrm{eff}}(z_{t,1} - z_{t,0}, y)|` at K = 2: softmax against chapter 1.

    ``teacher_margins``: ``(n,)`` binary teacher logits, used as the two-class rows ``(0, margin)``; labels ``(n,)``
    in {0, 1}; ``rho`` in (0, 1], temperature > 0 (scalars or ``(n,)``).
    """
    margins = np.asarray(teacher_margins, float)
    rows = np.stack([np.zeros_like(margins), margins], axis=1)
    softmax_logits = np.asarray(effective_logits(rows, labels, rho=rho, temperature=temperature))
    binary = np.asarray(effective_logit(margins, np.asarray(labels), rho=rho, temperature=temperature))
    return float(np.max(np.abs(softmax_logits[:, 1] - softmax_logits[:, 0] - binary)))


# ---------------------------------------------------------------------------------------------------------
# M2: the limit ρ → 0⁺
# ---------------------------------------------------------------------------------------------------------


def random_teacher_rows(streams: Streams, *, n_rows: int, n_classes: int, logit_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``n_rows`` teacher logit rows ``logit_scale`` × standard normal and uniform labels (stream ``"teacher_rows"``)."""
    check_positive_int(n_rows, "n_rows")
    check_positive_int(n_classes, "n_classes", minimum=2)
    rng = streams.rng("teacher_rows")
    return logit_scale * rng.standard_normal((n_rows, n_classes)), rng.integers(0, n_classes, n_rows)


def margin_limit_records(teacher_logits, labels, *, rho_values: Sequence[float], temperature_values: Sequence[float],
                         repetition: dict[str, int] | None = None) -> list[dict]:  # fmt: skip
    r"""M2's measurements: per (row, class k ≠ y, T, ρ), the margin :math:`m = z_y - z_k`, its remainder
    :math:`m - \log(1/\rho) - \log(T/q_k)` and the exact local slope :math:`dm/d\log(1/\rho) = -\rho\,\partial m/\partial\rho`.

    Returns:
      Records with ``row``, ``k``, ``temperature``, ``rho``, ``margin``, ``remainder``, ``local_slope``, plus the
      fields of ``repetition`` (e.g. :meth:`kdwide.seeds.Streams.record`).
    """
    teacher_logits, labels, n_classes = _labels_and_logits(teacher_logits, labels)
    rho_values = np.asarray(rho_values, float)
    if np.any(rho_values <= 0) or np.any(rho_values >= 1):
        raise ValueError(f"rho_values must lie in (0, 1) for the limit, got {rho_values.tolist()}")
    records, n = [], labels.shape[0]
    others = np.arange(n_classes)[None, :] != labels[:, None]
    for temperature in temperature_values:
        check_temperature(temperature)
        rows = np.tile(teacher_logits, (rho_values.size, 1))
        rho_rows, label_rows = np.repeat(rho_values, n), np.tile(labels, rho_values.size)
        z = np.asarray(effective_logits(rows, label_rows, rho=rho_rows, temperature=temperature))
        dz = np.asarray(effective_logits_rho_derivative(rows, label_rows, rho=rho_rows, temperature=temperature))
        true = np.arange(rows.shape[0]), label_rows
        margin, slope = z[true][:, None] - z, -rho_rows[:, None] * (dz[true][:, None] - dz)
        log_q = rows / temperature - np.logaddexp.reduce(rows / temperature, axis=1, keepdims=True)
        remainder = margin - np.log(1 / rho_rows)[:, None] - np.log(temperature) + log_q
        for index in zip(*np.nonzero(np.tile(others, (rho_values.size, 1)))):
            records.append({**(repetition or {}), "row": int(index[0] % n), "k": int(index[1]),
                            "temperature": float(temperature), "rho": float(rho_rows[index[0]]),
                            "margin": float(margin[index]), "remainder": float(remainder[index]),
                            "local_slope": float(slope[index])})  # fmt: skip
    return records


def asymptotic_margins(teacher_logits, labels, *, rho: float, temperature: float) -> np.ndarray:
    r"""The small-ρ law of the margins: :math:`\log(1/\rho) + \log(T/q_k)` for k ≠ y, 0 at the true class, ``(n, K)``.

    :math:`q = \mathrm{softmax}(z_t/T)`, computed as a log-softmax (exact for large logits). The effective logits'
    margins :math:`z_y - z_k` differ from it by :math:`O(\rho^{\min(1, 1/T)})` (module docstring).

    Example:
      >>> asymptotic_margins([[0.0, 0.0]], [0], rho=1e-4, temperature=1.0).round(4).tolist()
      [[0.0, 9.9035]]
    """
    teacher_logits, labels, n_classes = _labels_and_logits(teacher_logits, labels)
    if not (np.isfinite(rho) and 0 < rho < 1):
        raise ValueError(f"rho must lie in (0, 1), got {rho!r}")
    check_temperature(temperature)
    scaled = teacher_logits / temperature
    log_q = scaled - np.logaddexp.reduce(scaled, axis=1, keepdims=True)
    margins = np.log(1.0 / rho) + np.log(temperature) - log_q
    return np.where(np.arange(n_classes)[None, :] == labels[:, None], 0.0, margins)


# ---------------------------------------------------------------------------------------------------------
# M3, M4: distillation on the digits
# ---------------------------------------------------------------------------------------------------------


def _split_kernels(kernel_fn, images, split: Streams, sizes: Sequence[int]) -> dict[str, Any]:
    """Student, teacher pool (random order) and held-out indices of one split, and the kernels the split needs."""
    from kdwide.datasets import disjoint_split, sphere_features  # noqa: PLC0415

    student, pool, test = disjoint_split(split.rng("split"), images.shape[0], sizes)
    pool = split.rng("teacher_order").permutation(pool)  # nested teachers: the first k points of a random order
    features = sphere_features(images, mean=images[np.concatenate([student, pool])].mean(axis=0))
    evaluation = np.concatenate([student, test])
    return {
        "student": student, "pool": pool, "test": test,
        "pool_kernel": np.asarray(kernel_fn(features[pool]), float),
        "evaluation_pool_kernel": np.asarray(kernel_fn(features[evaluation], features[pool]), float),
        "factorization": factorize_kernel(kernel_fn(features[student])),
        "test_student_kernel": np.asarray(kernel_fn(features[test], features[student]), float),
    }  # fmt: skip


def _split_records(split_data, labels, *, n_classes, teacher_sizes, rho_values, temperature, teacher_target_logit,
                   common) -> list[dict]:  # fmt: skip
    """Records of one split: every teacher size × ρ (one solve for all teachers, ρ and classes)."""
    student, pool, test = split_data["student"], split_data["pool"], split_data["test"]
    n_student, records = student.size, []
    for per_class in teacher_sizes:
        size = per_class * n_classes
        teacher = multiclass_kernel_teacher(
            split_data["pool_kernel"][:size, :size], split_data["evaluation_pool_kernel"][:, :size], labels[pool[:size]],
            n_classes=n_classes, target_logit=teacher_target_logit)  # fmt: skip
        targets = student_targets(teacher[:n_student], labels[student], rho_values=rho_values, temperature=temperature)
        outputs = converged_students(split_data["factorization"], targets.reshape(n_student, -1),
                                     kernel_test_train=split_data["test_student_kernel"]).test_outputs  # fmt: skip
        errors = np.mean(class_predictions(outputs.reshape(test.size, n_classes, -1)) != labels[test][:, None], axis=0)
        teacher_error = float(np.mean(class_predictions(teacher[n_student:]) != labels[test]))
        teacher_train_error = float(np.mean(class_predictions(teacher[:n_student]) != labels[student]))
        for rho, error in zip(rho_values, errors):
            records.append({**common, "teacher_size": int(per_class), "rho": float(rho), "temperature": float(temperature),
                            "teacher_error": teacher_error, "teacher_train_error": teacher_train_error,
                            "student_error": float(error), "hard_student_error": float(errors[list(rho_values).index(0.0)])})  # fmt: skip
    return records


def digit_records(
    kernel_fn: Callable[..., np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    class_counts: Sequence[int],
    splits: Sequence[Streams],
    n_student_per_class: int,
    teacher_sizes_per_class: Sequence[int],
    rho_values: Sequence[float],
    temperature: float,
    teacher_target_logit: float,
) -> list[dict]:
    r"""M3 and M4: K-class students distilled from kernel-model teachers that saw more data, on the first K digits.

    For every K in ``class_counts`` the task is the images of classes 0..K−1. Per split (a :class:`kdwide.seeds.Streams`):
    ``n_student_per_class`` × K student images, a teacher pool of ``max(teacher_sizes_per_class)`` × K other images
    (stream ``"split"``, not stratified), the rest held out; features centred by the mean of the student's and pool's
    images. A teacher of size s is :func:`multiclass_kernel_teacher` on the first s × K pool images (stream
    ``"teacher_order"``: nested teachers). Students distil on the ρ grid; errors are argmax errors on held-out images.

    Args:
      kernel_fn: ``kernel_fn(x1, x2=None)`` tangent kernel; images ``(N, p)``; labels ``(N,)`` digits 0..9.
      rho_values: must contain 0.0 (the hard-label student, ``hard_student_error``) and 1.0.

    Returns:
      Records with ``n_classes``, ``seed``, ``repetition``, ``teacher_size`` (per class), ``rho``, ``temperature``,
      ``n_student``, ``teacher_error``, ``teacher_train_error``, ``student_error``, ``hard_student_error``.
    """
    images, labels = np.asarray(images, float), np.asarray(labels).astype(np.int64)
    rho_values = [float(r) for r in rho_values]
    if 0.0 not in rho_values or 1.0 not in rho_values:
        raise ValueError(f"rho_values must contain 0.0 (hard labels) and 1.0 (pure distillation), got {rho_values}")
    records = []
    for n_classes in class_counts:
        check_positive_int(n_classes, "class_counts", minimum=2)
        chosen = labels < n_classes
        subset_images, subset_labels = images[chosen], labels[chosen]
        sizes = [n_student_per_class * n_classes, max(teacher_sizes_per_class) * n_classes]
        if sum(sizes) >= subset_labels.size:
            raise ValueError(f"n_student_per_class + max(teacher_sizes_per_class) leaves no held-out image at K = {n_classes}")
        sizes.append(subset_labels.size - sum(sizes))
        for split in splits:
            split_data = _split_kernels(kernel_fn, subset_images, split, sizes)
            common = {"n_classes": int(n_classes), **split.record(), "n_student": int(sizes[0])}
            records += _split_records(split_data, subset_labels, n_classes=n_classes,
                                      teacher_sizes=teacher_sizes_per_class,
                                      rho_values=rho_values, temperature=temperature,
                                      teacher_target_logit=teacher_target_logit, common=common)  # fmt: skip
    return records


# ---------------------------------------------------------------------------------------------------------
# Summaries and claims
# ---------------------------------------------------------------------------------------------------------


def _errors_by_split(frame: pd.DataFrame, rho: float) -> dict[int, float]:
    rows = frame[frame.rho == rho]
    return dict(zip(rows.repetition.astype(int), rows.student_error.astype(float)))


def soft_label_table(records: Sequence[dict]) -> list[dict]:
    """M3/M4 summary: one row per (K, teacher size), over splits.

    Row fields: ``n_classes``, ``teacher_size``, ``splits``, ``teacher_error``, ``hard_student_error`` (ρ = 0),
    ``soft_student_error`` (ρ = 1), ``best_rho`` (argmin of the mean curve over splits, ties to the larger ρ),
    ``best_student_error``, ``best_rho_per_split_mean`` and ``_standard_error``, ``gain`` and
    ``gain_standard_error`` (hard minus best, paired within splits: :func:`kdwide.stats.paired_difference`),
    ``relative_gain`` (gain / hard error), ``margin_over_soft`` and its standard error (ρ = 1 minus best, paired).
    """
    from kdwide.metrics import best_soft_ratio  # noqa: PLC0415

    frame = pd.DataFrame(list(records))
    if frame.empty:
        raise ValueError("records must not be empty")
    if frame.duplicated(["n_classes", "teacher_size", "repetition", "rho"]).any():
        raise ValueError("records must hold one row per (K, teacher size, split, rho)")
    rows = []
    for (n_classes, size), group in frame.groupby(["n_classes", "teacher_size"], sort=True):
        curve = seed_means(group, ["rho"], ["student_error", "teacher_error"]).set_index("rho").sort_index()
        if 0.0 not in curve.index or 1.0 not in curve.index:
            raise ValueError("rho_values must contain 0.0 and 1.0")
        best = float(best_soft_ratio(curve.index.to_numpy(), curve.student_error_mean.to_numpy()))
        descending = group.sort_values("rho", ascending=False, kind="stable")
        per_split = descending.loc[descending.groupby("repetition").student_error.idxmin()]
        per_split_rho = seed_means(per_split.assign(key=0), ["key"], ["rho"]).iloc[0]
        gain = paired_difference(_errors_by_split(group, 0.0), _errors_by_split(group, best))
        over_soft = paired_difference(_errors_by_split(group, 1.0), _errors_by_split(group, best))
        hard = float(curve.student_error_mean.loc[0.0])
        rows.append({
            "n_classes": int(n_classes), "teacher_size": int(size), "splits": int(gain.count),
            "teacher_error": float(curve.teacher_error_mean.loc[0.0]), "hard_student_error": hard,
            "soft_student_error": float(curve.student_error_mean.loc[1.0]), "best_rho": best,
            "best_student_error": float(curve.student_error_mean.loc[best]),
            "best_rho_per_split_mean": float(per_split_rho.rho_mean),
            "best_rho_per_split_standard_error": float(per_split_rho.rho_standard_error),
            "gain": gain.mean, "gain_standard_error": gain.standard_error,
            "relative_gain": gain.mean / hard if hard > 0 else float("nan"),
            "margin_over_soft": over_soft.mean, "margin_over_soft_standard_error": over_soft.standard_error,
        })  # fmt: skip
    return rows


def _existence_claim(residuals: np.ndarray, eigenvalues: np.ndarray, binary_difference: float) -> dict[str, Any]:
    residual, smallest = float(np.max(residuals)), float(np.min(eigenvalues))
    holds = residual <= RESIDUAL_TOLERANCE and smallest > 0 and binary_difference <= BINARY_TOLERANCE
    return claim(holds, f"max relative stationarity residual {residual:.3g} over {residuals.shape[0]} rows "
                        f"(tolerance {RESIDUAL_TOLERANCE:g}); smallest Hessian eigenvalue on the zero-sum plane "
                        f"{smallest:.3g} (> 0: strictly convex, unique root); K = 2 against chapter 1: max |difference| "
                        f"{binary_difference:.3g} (tolerance {BINARY_TOLERANCE:g})")  # fmt: skip


def _limit_claim(limit_records: Sequence[dict]) -> dict[str, Any]:
    """M2 from :func:`margin_limit_records` (rules in :func:`claims`)."""
    frame = pd.DataFrame(list(limit_records))
    holds, evidence = True, []
    keys = ["seed", "repetition", "row", "k"] if "repetition" in frame else ["row", "k"]
    for temperature, group in frame.groupby("temperature", sort=True):
        slopes, first_rates, last_rates, bounds = [], [], [], []
        for _, curve in group.groupby(keys, sort=True):
            curve = curve.sort_values("rho", ascending=False)
            x = np.log(1.0 / curve.rho.to_numpy())
            slopes.append(ols_slope(x, curve.margin))
            centred = np.abs(x - x.mean())
            bounds.append(float(np.max(np.abs(curve.remainder)) * centred.sum() / (centred @ centred)))
            local = np.diff(np.log(np.abs(curve.remainder.to_numpy()))) / np.diff(np.log(curve.rho.to_numpy()))
            first_rates.append(local[0])
            last_rates.append(local[-1])
        table = pd.DataFrame({"key": 0, "slope": slopes, "first": first_rates, "last": last_rates})
        slope = seed_means(table, ["key"], ["slope", "first", "last"]).iloc[0]
        predicted = min(1.0, 1.0 / temperature)
        slope_ok = abs(slope.slope_mean - 1) <= 2 * slope.slope_standard_error + max(bounds)
        # The next order of the expansion bends the log-log line on a finite grid, so the rate is checked as a trend:
        # the local rate on the two smallest rho is within 2 SE of min(1, 1/T), or at most half as far from it as on
        # the two largest (the bend shrinks like a positive power of rho).
        first_gap, last_gap = abs(slope.first_mean - predicted), abs(slope.last_mean - predicted)
        rate_ok = last_gap <= 2 * slope.last_standard_error or last_gap <= 0.5 * first_gap
        holds &= bool(slope_ok and rate_ok)
        evidence.append(f"T={temperature:g}: margin slope against log(1/rho) {slope.slope_mean:.6f} +- "
                        f"{slope.slope_standard_error:.2g} (remainder's bound {max(bounds):.2g}); local rate of the "
                        f"remainder {slope.first_mean:.4f} on the largest rho, {slope.last_mean:.4f} +- "
                        f"{slope.last_standard_error:.2g} on the smallest, predicted {predicted:.3g} over "
                        f"{len(slopes)} (row, class) curves")  # fmt: skip
    return claim(holds, "; ".join(evidence))


def _soft_beats_hard_claim(table: Sequence[dict], *, significance: float) -> dict[str, Any]:
    """M3 from :func:`soft_label_table` at the largest K (rules in :func:`claims`)."""
    largest = max(row["n_classes"] for row in table)
    rows = sorted((row for row in table if row["n_classes"] == largest), key=lambda row: row["teacher_size"])
    weakest = rows[0]
    holds = all(row["gain"] > significance * row["gain_standard_error"] for row in rows)
    holds &= weakest["best_rho"] < 1 and weakest["margin_over_soft"] > significance * weakest["margin_over_soft_standard_error"]
    evidence = [f"K={largest}, teacher on {row['teacher_size']} images per class (error {percent(row['teacher_error'])}): "
                f"hard {percent(row['hard_student_error'])}, best rho {row['best_rho']:g} "
                f"({percent(row['best_student_error'])}, per split {row['best_rho_per_split_mean']:.3g} +- "
                f"{row['best_rho_per_split_standard_error']:.2g}), soft labels gain {percent(row['gain'])} +- "
                f"{percent(row['gain_standard_error'])}, best beats rho=1 by {percent(row['margin_over_soft'])} +- "
                f"{percent(row['margin_over_soft_standard_error'])}" for row in rows]  # fmt: skip
    return claim(holds, "; ".join(evidence))


def _gain_with_classes_claim(records: Sequence[dict], table: Sequence[dict], *, significance: float) -> dict[str, Any]:
    """M4 from the records and :func:`soft_label_table` (rules in :func:`claims`)."""
    frame = pd.DataFrame(list(records))
    size = max(row["teacher_size"] for row in table)
    best = {row["n_classes"]: row["best_rho"] for row in table if row["teacher_size"] == size}
    fewest, most = min(best), max(best)

    def gains(n_classes: int) -> dict[int, float]:
        group = frame[(frame.n_classes == n_classes) & (frame.teacher_size == size)]
        hard, soft = _errors_by_split(group, 0.0), _errors_by_split(group, best[n_classes])
        return {key: hard[key] - soft[key] for key in hard}

    difference = paired_difference(gains(most), gains(fewest))
    rows = {row["n_classes"]: row for row in table if row["teacher_size"] == size}
    per_class = ", ".join(f"K={k}: {percent(rows[k]['gain'])} +- {percent(rows[k]['gain_standard_error'])} "
                          f"(relative {rows[k]['relative_gain']:.2g})" for k in sorted(rows))  # fmt: skip
    return claim(difference.mean > significance * difference.standard_error,
                 f"teacher on {size} images per class, gain of the best rho over hard labels: {per_class}; "
                 f"K={most} minus K={fewest}: {percent(difference.mean)} +- {percent(difference.standard_error)}")


def claims(
    *,
    residuals: np.ndarray,
    eigenvalues: np.ndarray,
    binary_difference: float,
    limit_records: Sequence[dict],
    records: Sequence[dict],
    significance: float = 2.0,
) -> dict[str, dict]:
    r"""Claims M1–M4 (the book's own; the paper is binary).

    Args:
      residuals: :func:`relative_stationarity_residual` of the chapter's effective logits, ``(n, K)``.
      eigenvalues: :func:`zero_sum_hessian_eigenvalues` at the same logits, ``(n, K−1)``.
      binary_difference: :func:`binary_reduction_difference` on the chapter's K = 2 inputs.
      limit_records: :func:`margin_limit_records`; records: :func:`digit_records`.

    - **M1** holds if the largest :func:`relative_stationarity_residual` in ``residuals`` is at most
      :data:`RESIDUAL_TOLERANCE`, every :func:`zero_sum_hessian_eigenvalues` is > 0, and ``binary_difference``
      (:func:`binary_reduction_difference`) is at most :data:`BINARY_TOLERANCE`.
    - **M2** holds if, at every temperature, the mean over (row, class) curves of the least-squares slope of the
      margin against :math:`\log(1/\rho)` is 1 within 2 standard errors plus the largest bias the measured remainder
      can cause (:math:`\max|R|\sum|x-\bar x|/\sum(x-\bar x)^2`), and the mean log-log slope of |remainder| against ρ is
      :math:`\min(1, 1/T)` as a trend: on the two smallest ρ it is within 2 standard errors of the prediction, or at
      most half as far from it as on the two largest ρ.
    - **M3** holds if, at the largest K, soft labels beat hard ones for every teacher (error at ρ = 0 minus error at
      the best ρ, paired over splits, above ``significance`` standard errors), and for the weakest teacher the best ρ
      is below 1 and beats ρ = 1 by ``significance`` standard errors.
    - **M4** holds if the gain of soft labels (as in M3, for the strongest teacher) is larger at the largest K than at
      the smallest, paired over splits, by ``significance`` standard errors.
    """
    table = soft_label_table(records)
    return {
        "M1": _existence_claim(residuals, eigenvalues, binary_difference),
        "M2": _limit_claim(limit_records),
        "M3": _soft_beats_hard_claim(table, significance=significance),
        "M4": _gain_with_classes_claim(records, table, significance=significance),
    }
