"""Metrics computed from logits, labels and weight-change geometry."""

from __future__ import annotations

import numpy as np

from kdwide.validation import check_hard_labels, check_same_shape

__all__ = ["label_change_jumps"]


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
