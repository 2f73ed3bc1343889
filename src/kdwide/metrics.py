"""Metrics computed from logits, labels and weight-change geometry."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kdwide.validation import check_hard_labels, check_same_shape

__all__ = ["best_soft_ratio", "classification_error", "folded_angle", "label_change_jumps", "sign_errors", "transfer_risk"]


def label_change_jumps(z: np.ndarray, y_hard: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    r"""Jumps of an output function sampled on a 1-D grid, at the ground-truth label changes (C1).

    Args:
      z: output (e.g. effective logits) on an ordered grid, shape ``(m,)``.
      y_hard: ground-truth labels on the same grid, shape ``(m,)``.

    Returns:
      ``(indices, jumps, largest_other_step)``: ``indices[k]`` is the grid index ``i`` where
      ``y_hard[i] != y_hard[i+1]``, ``jumps[k] = |z[i+1] - z[i]|`` there, and ``largest_other_step`` is
      the largest ``|z[i+1] - z[i]|`` between neighbours with equal labels (the grid's continuity scale).
    """
    z, y_hard = np.asarray(z, float), np.asarray(y_hard)
    check_same_shape(z=z, y_hard=y_hard)
    check_hard_labels(y_hard)
    steps = np.abs(np.diff(z))
    changes = y_hard[1:] != y_hard[:-1]
    indices = np.flatnonzero(changes)
    other = steps[~changes]
    return indices, steps[indices], float(other.max()) if other.size else 0.0


def transfer_risk(z_teacher: np.ndarray, z_student: np.ndarray) -> float:
    r"""Transfer risk :math:`R = P_x[z_t z_s < 0]` estimated on a sample (R1).

    Args:
      z_teacher, z_student: logits on the same test inputs, shape ``(m,)``.

    Returns:
      Share of test inputs where teacher and student logits have strictly opposite signs.
    """
    z_teacher, z_student = np.asarray(z_teacher, float), np.asarray(z_student, float)
    check_same_shape(z_teacher=z_teacher, z_student=z_student)
    if z_teacher.size == 0:
        raise ValueError("z_teacher must not be empty")
    return float(np.mean(z_teacher * z_student < 0))


def sign_errors(z: np.ndarray, y_hard: np.ndarray) -> np.ndarray:
    """Where the sign of the logit disagrees with the label (``z = 0`` predicts 0): the one rule for a wrong sign.

    Args:
      z: logits, shape ``(m, ...)`` (e.g. one column per student).
      y_hard: labels in {0, 1}, shape ``(m,)``.

    Returns:
      Boolean array of the shape of ``z``.
    """
    z, y_hard = np.asarray(z, float), np.asarray(y_hard)
    check_hard_labels(y_hard)
    if y_hard.ndim != 1 or z.shape[:1] != y_hard.shape:
        raise ValueError(f"z must have shape ({y_hard.size}, ...) for y_hard of shape {y_hard.shape}, got {z.shape}")
    return (z > 0) != (y_hard == 1).reshape(y_hard.shape + (1,) * (z.ndim - 1))


def classification_error(z: np.ndarray, y_hard: np.ndarray):
    """Share of inputs (axis 0) where the sign of the logit ``z`` disagrees with the label ``y_hard`` ∈ {0, 1}.

    Returns a float for ``z`` of shape ``(m,)``, an array of shape ``z.shape[1:]`` otherwise.

    Example:
      >>> classification_error(np.array([2.0, -1.0, 0.5]), np.array([1, 1, 0]))
      0.6666666666666666
    """
    errors = np.mean(sign_errors(z, y_hard), axis=0)
    return float(errors) if np.ndim(errors) == 0 else errors


def folded_angle(cosine: np.ndarray) -> np.ndarray:
    r"""Folded angle :math:`\bar\alpha = \arccos |\cos\alpha| \in [0, \pi/2]` (R1), elementwise."""
    cosine = np.asarray(cosine, float)
    if np.any(np.isnan(cosine)) or np.any(np.abs(cosine) > 1 + 1e-12):
        raise ValueError("cosine must lie in [-1, 1] (no NaN)")
    return np.arccos(np.clip(np.abs(cosine), 0.0, 1.0))


def best_soft_ratio(rho_values: Sequence[float], errors: np.ndarray) -> np.ndarray:
    """ρ with the smallest error along axis 0 of ``errors`` (``(R, ...)``); ties go to the largest ρ.

    Returns an array of shape ``errors.shape[1:]`` (a float for 1-D ``errors``).
    """
    rho_values = np.asarray(rho_values, float)
    errors = np.asarray(errors, float)
    if rho_values.ndim != 1 or errors.shape[:1] != rho_values.shape:
        raise ValueError(f"errors must have shape ({rho_values.size}, ...), got {errors.shape}")
    order = np.argsort(-rho_values, kind="stable")  # largest ρ first, so argmin's first hit wins ties
    best = rho_values[order][np.argmin(errors[order], axis=0)]
    return best
