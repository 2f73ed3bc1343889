"""Metrics computed from logits, labels and weight-change geometry."""

from __future__ import annotations

import numpy as np

from kdwide.validation import check_hard_labels, check_same_shape

__all__ = ["label_change_jumps", "discontinuity_records", "transfer_risk", "folded_angle", "classification_error"]


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


def discontinuity_records(
    z_teacher: np.ndarray, y_hard: np.ndarray, *, rho_values, temperature_values
) -> list[dict]:
    r"""C1 on a 1-D slice: for every (ρ, T), the effective logits' jumps at the label changes.

    Args:
      z_teacher, y_hard: teacher logits and labels on an ordered grid, shape ``(m,)``.
      rho_values, temperature_values: sequences of soft ratios in (0, 1] and temperatures > 0.

    Returns:
      One record per (ρ, T): ``rho``, ``temperature``, ``smallest_jump`` (smallest jump at a label
      change), ``largest_other_step`` (largest step elsewhere), ``jump_ratio`` (their ratio) and
      ``max_stationarity_residual`` (max |dℓ/dẑ| at the effective logits, cancellation-free form).
    """
    from kdwide.effective_logit import effective_logit, stationarity_residual

    records = []
    for rho in rho_values:
        for temperature in temperature_values:
            z = np.asarray(effective_logit(z_teacher, y_hard, rho=rho, temperature=temperature))
            _, jumps, other = label_change_jumps(z, y_hard)
            residual = stationarity_residual(z, z_teacher, y_hard, rho=rho, temperature=temperature)
            records.append(
                {
                    "rho": float(rho),
                    "temperature": float(temperature),
                    "smallest_jump": float(jumps.min()) if jumps.size else 0.0,
                    "largest_other_step": other,
                    "jump_ratio": float(jumps.min() / other) if jumps.size and other > 0 else float("inf"),
                    "max_stationarity_residual": float(np.abs(residual).max()),
                }
            )
    return records


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


def classification_error(z: np.ndarray, y_hard: np.ndarray) -> float:
    """Share of inputs where the sign of the logit ``z`` disagrees with the label ``y_hard`` ∈ {0, 1}."""
    z, y_hard = np.asarray(z, float), np.asarray(y_hard)
    check_same_shape(z=z, y_hard=y_hard)
    check_hard_labels(y_hard)
    return float(np.mean((z > 0) != (y_hard == 1)))


def folded_angle(cosine: np.ndarray) -> np.ndarray:
    r"""Folded angle :math:`\bar\alpha = \arccos |\cos\alpha| \in [0, \pi/2]` (R1), elementwise."""
    cosine = np.asarray(cosine, float)
    if np.any(np.isnan(cosine)) or np.any(np.abs(cosine) > 1 + 1e-12):
        raise ValueError("cosine must lie in [-1, 1] (no NaN)")
    return np.arccos(np.clip(np.abs(cosine), 0.0, 1.0))
