"""Tasks: inputs, teachers and ground-truth labels (generated, never downloaded).

Every generator takes explicit seeds or PRNG keys and prints nothing; chapters print class balances.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from kdwide.validation import check_finite, check_positive_int

__all__ = [
    "slice_task",
    "sphere_inputs",
    "centred_coefficients",
    "kernel_expansion_logits",
    "expansion_norm",
    "class_balance",
    "PerfectTeacher",
    "perfect_teacher",
    "repetition_seeds",
    "stream_seeds",
]

KernelFn = Callable[..., Any]
"""``kernel_fn(x1, x2=None) -> (n1, n2)`` kernel matrix (``x2=None``: the square kernel with exact diagonal)."""


def repetition_seeds(seed: int, n_seeds: int) -> list[int]:
    """The seeds of ``n_seeds`` repetitions of an experiment from the base ``seed``: ``seed, seed + 1, ...``.

    Every chapter derives its repetitions so (parameters ``seed`` and ``n_seeds``). Consecutive integers keep the
    runs easy to name and to repeat one by one; sweeping ``seed`` over a range therefore overlaps repetitions unless
    the swept seeds are at least ``n_seeds`` apart (or ``n_seeds`` is 1).

    Example:
      >>> repetition_seeds(10, 3)
      [10, 11, 12]
    """
    seed = check_positive_int(seed, "seed", minimum=0)
    return list(range(seed, seed + check_positive_int(n_seeds, "n_seeds")))


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


def sphere_inputs(seed: int, n: int, input_dim: int) -> np.ndarray:
    r"""``n`` points drawn uniformly from the unit sphere :math:`S^{d-1} \subset \mathbb R^d`.

    Args:
      seed: integer seed (NumPy ``default_rng``), so draws do not depend on JAX's PRNG version.
      n: number of points (≥ 1).
      input_dim: :math:`d` (≥ 2).

    Returns:
      ``(n, input_dim)`` float64 array of unit-norm rows.
    """
    check_positive_int(n, "n")
    check_positive_int(input_dim, "input_dim", minimum=2)
    x = np.random.default_rng(seed).standard_normal((n, input_dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def centred_coefficients(seed: int, anchors: np.ndarray, *, remove_linear: bool = True) -> np.ndarray:
    r"""Random expansion coefficients :math:`c` for a kernel-expansion teacher, centred (the book's pitfall 1, one-class teachers).

    A ReLU NTK has a large constant component, so :math:`\sum_j c_j \Theta(x, a_j)` with raw random
    :math:`c` has one sign almost everywhere. We project :math:`c` onto :math:`\sum_j c_j = 0` and, with
    ``remove_linear``, also onto :math:`\sum_j c_j a_j = 0` (no linear part: a curved boundary), then
    normalize to unit Euclidean norm.

    Args:
      seed: integer seed.
      anchors: ``(m, d)`` anchor points :math:`a_j` (m > d + 1 when ``remove_linear``).

    Returns:
      ``(m,)`` coefficients.
    """
    anchors = np.asarray(anchors, float)
    m = anchors.shape[0]
    constraints = np.ones((m, 1)) if not remove_linear else np.concatenate([np.ones((m, 1)), anchors], axis=1)
    if constraints.shape[1] >= m:
        raise ValueError(f"anchors: need more than {constraints.shape[1]} anchors for the centring constraints, got {m}")
    c = np.random.default_rng(seed).standard_normal(m)
    basis, _ = np.linalg.qr(constraints)
    c = c - basis @ (basis.T @ c)
    return c / np.linalg.norm(c)


def kernel_expansion_logits(
    kernel_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray, anchors: np.ndarray, coefficients: np.ndarray
) -> np.ndarray:
    r"""Teacher logits :math:`z_t(x) = \sum_j c_j\,\Theta(x, a_j)`: exactly representable by the oracle weight
    change :math:`\Delta w_* = \phi(A)c` in the random-feature space of the kernel :math:`\Theta`.

    Args:
      kernel_fn: ``kernel_fn(x1, x2) -> (n1, n2)``.
      x: ``(n, d)`` inputs; anchors: ``(m, d)``; coefficients: ``(m,)``.

    Returns:
      ``(n,)`` logits.
    """
    coefficients = np.asarray(coefficients, float)
    if coefficients.shape != (np.shape(anchors)[0],):
        raise ValueError(f"coefficients must have shape ({np.shape(anchors)[0]},), got {coefficients.shape}")
    check_finite(coefficients, "coefficients")
    return np.asarray(kernel_fn(x, anchors)) @ coefficients


def expansion_norm(kernel_fn: Callable[[np.ndarray], np.ndarray], anchors: np.ndarray, coefficients: np.ndarray) -> float:
    r"""Norm :math:`\|\Delta w_*\| = \sqrt{c^\top\Theta(A, A)c}` of the oracle weight change of a kernel expansion.

    Args:
      kernel_fn: ``kernel_fn(x1) -> (m, m)`` (``x2`` defaults to ``x1``); anchors: ``(m, d)``; coefficients: ``(m,)``.

    Raises:
      ValueError: :math:`c^\top K c \le 0` (``kernel_fn`` not positive definite on the anchors, or ``c = 0``).
    """
    coefficients = np.asarray(coefficients, float)
    norm_squared = float(coefficients @ np.asarray(kernel_fn(anchors), float) @ coefficients)
    if not norm_squared > 0:
        raise ValueError("kernel_fn is not positive definite on the anchors (c^T K c <= 0)")
    return float(np.sqrt(norm_squared))


def class_balance(y_hard: np.ndarray) -> float:
    """Share of label 1 in ``y_hard`` (print it for every generated task: the book's pitfall 1, one-class teachers)."""
    y_hard = np.asarray(y_hard)
    if y_hard.size == 0:
        raise ValueError("y_hard must not be empty")
    return float(np.mean(y_hard == 1))



class PerfectTeacher(NamedTuple):
    """A kernel-expansion teacher :math:`z_t(x) = \\sum_j c_j\\Theta(x, a_j)` (oracle :math:`\\Delta w_* - \\Delta w_z = \\phi(A)c`).

    Attributes:
      anchors: ``(m, d)`` anchor points on the sphere.
      coefficients: ``(m,)`` expansion coefficients ``c`` (centred, scaled to the requested logit scale).
      oracle_norm: :math:`\\|\\Delta w_* - \\Delta w_z\\| = \\sqrt{c^\\top\\Theta(A, A)c}`.
    """

    anchors: np.ndarray
    coefficients: np.ndarray
    oracle_norm: float

    def logits(self, kernel_fn: KernelFn, x: np.ndarray) -> np.ndarray:
        """Teacher logits :math:`z_t(x)` on ``x`` of shape ``(n, d)``; returns ``(n,)``."""
        return kernel_expansion_logits(kernel_fn, x, self.anchors, self.coefficients)


def stream_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent integer seeds derived from ``seed``: the one way an experiment splits its seed into
    streams (inputs, anchors, coefficients, ...). NumPy's ``SeedSequence``; stream ``k`` is the same for every
    ``count`` > k.

    Example:
      >>> stream_seeds(0, 3)[:2] == stream_seeds(0, 2)
      True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(count)]


def perfect_teacher(
    seed: int,
    *,
    kernel_fn: KernelFn,
    input_dim: int,
    n_anchors: int,
    logit_scale: float,
    remove_linear: bool = True,
    n_calibration: int = 4096,
    calibration: np.ndarray | None = None,
) -> PerfectTeacher:
    r"""Draw a perfect teacher in the random-feature space of ``kernel_fn``.

    Anchors are uniform on :math:`S^{d-1}`; coefficients are centred (the book's pitfall 1, one-class teachers: no constant and, with
    ``remove_linear``, no linear part, so both classes occur and the boundary is curved) and then scaled so that the
    root-mean-square teacher logit over ``n_calibration`` uniform inputs equals ``logit_scale`` (the scale matters for
    ρ < 1 only: the effective logits are not scale-equivariant).

    Args:
      seed: integer seed (anchors, coefficients and calibration inputs get independent streams).
      kernel_fn: the student's kernel, ``kernel_fn(x1, x2=None)``.
      input_dim: :math:`d` (≥ 2).
      n_anchors: :math:`m` (> d + 1 with ``remove_linear``, > 1 without).
      logit_scale: RMS teacher logit, finite and > 0.
      remove_linear: also remove the linear part of the expansion.
      n_calibration: number of inputs for the scale (drawn uniformly on the sphere) ...
      calibration: ... or these inputs, ``(c, d)`` (e.g. a task's held-out set).

    Returns:
      :class:`PerfectTeacher`.
    """
    check_positive_int(input_dim, "input_dim", minimum=2)
    check_positive_int(n_anchors, "n_anchors", minimum=2)
    check_positive_int(n_calibration, "n_calibration")
    if not (np.isfinite(logit_scale) and logit_scale > 0):
        raise ValueError(f"logit_scale must be finite and > 0, got {logit_scale!r}")
    anchor_seed, coefficient_seed, calibration_seed = stream_seeds(seed, 3)
    anchors = sphere_inputs(anchor_seed, n_anchors, input_dim)
    coefficients = centred_coefficients(coefficient_seed, anchors, remove_linear=remove_linear)
    if calibration is None:
        calibration = sphere_inputs(calibration_seed, n_calibration, input_dim)
    elif np.ndim(calibration) != 2 or np.shape(calibration)[1] != input_dim:
        raise ValueError(f"calibration must have shape (c, {input_dim}), got {np.shape(calibration)}")
    rms = float(np.sqrt(np.mean(kernel_expansion_logits(kernel_fn, calibration, anchors, coefficients) ** 2)))
    if not rms > 0:
        raise ValueError("the teacher's logits vanish on the calibration inputs: choose other anchors (seed)")
    coefficients = coefficients * (logit_scale / rms)
    return PerfectTeacher(anchors, coefficients, expansion_norm(kernel_fn, anchors, coefficients))
