"""Tasks: inputs, teachers and ground-truth labels (generated, never downloaded).

Every generator takes explicit seeds or PRNG keys and prints nothing; chapters print class balances.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from kdwide.validation import check_positive_int

__all__ = ["slice_task"]


def slice_task(
    n_points: int, *, teacher_scale: float = 6.0, teacher_frequency: float = 1.0, boundary_shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""A 1-D slice of input space with a teacher and a ground-truth boundary.

    :math:`x \in [-1, 1]` on a uniform grid, teacher logit :math:`z_t(x) = s\sin(\pi f x)`, ground truth
    :math:`y_g(x) = 1\{\sin(\pi f (x - \delta)) > 0\}`. With :math:`\delta = 0` the teacher is perfect
    (:math:`y_g = 1\{z_t > 0\}`); :math:`\delta \ne 0` moves the true boundary away from the teacher's.

    Args:
      n_points: grid size (≥ 2).
      teacher_scale: :math:`s`, the teacher's peak logit.
      teacher_frequency: :math:`f` (boundaries at :math:`x = k/f`).
      boundary_shift: :math:`\delta`.

    Returns:
      ``(x, z_teacher, y_hard)``, each of shape ``(n_points,)``; ``y_hard`` is an int array in {0, 1}.
    """
    check_positive_int(n_points, "n_points", minimum=2)
    x = np.linspace(-1.0, 1.0, n_points)
    z_teacher = teacher_scale * np.sin(np.pi * teacher_frequency * x)
    y_hard = (np.sin(np.pi * teacher_frequency * (x - boundary_shift)) > 0).astype(np.int64)
    return x, z_teacher, y_hard
