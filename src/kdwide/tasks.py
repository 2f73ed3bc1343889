"""Tasks: inputs, teachers and ground-truth labels (generated, never downloaded).

Every generator draws from a NumPy generator or the named streams of a :class:`kdwide.seeds.Streams` (the one way
the library turns seeds into draws) and prints nothing; chapters print class balances.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from kdwide.seeds import Streams
from kdwide.validation import check_finite, check_positive_int, check_positive_real

__all__ = [
    "slice_task",
    "sphere_inputs",
    "centred_coefficients",
    "kernel_expansion_logits",
    "expansion_norm",
    "class_balance",
    "PerfectTeacher",
    "perfect_teacher",
]

KernelFn = Callable[..., Any]
"""``kernel_fn(x1, x2=None) -> (n1, n2)`` kernel matrix (``x2=None``: the square kernel with exact diagonal)."""


def _generator(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (e.g. Streams(seed).rng('train')), got {rng!r}")
    return rng


def slice_task(
    n_points: int, *, teacher_peak_logit: float = 6.0, teacher_frequency: float = 1.0, boundary_shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""A 1-D slice of input space with a teacher and a ground-truth boundary.

    :math:`x \in [-1, 1]` on a uniform grid, teacher logit :math:`z_t(x) = s\sin(\pi f x)`, ground truth
    :math:`y_g(x) = 1\{\sin(\pi f (x - \delta)) > 0\}`. With :math:`\delta = 0` the teacher is perfect
    (:math:`y_g = 1\{z_t > 0\}`); :math:`\delta \ne 0` moves the true boundary away from the teacher's.

    Args:
      n_points: grid size (≥ 2).
      teacher_peak_logit: :math:`s`, the teacher's peak logit.
      teacher_frequency: :math:`f` (boundaries at :math:`x = k/f`).
      boundary_shift: :math:`\delta`.

    Returns:
      ``(x, z_teacher, y_hard)``, each of shape ``(n_points,)``; ``y_hard`` is an int array in {0, 1}.
    """
    check_positive_int(n_points, "n_points", minimum=2)
    x = np.linspace(-1.0, 1.0, n_points)
    z_teacher = teacher_peak_logit * np.sin(np.pi * teacher_frequency * x)
    y_hard = (np.sin(np.pi * teacher_frequency * (x - boundary_shift)) > 0).astype(np.int64)
    return x, z_teacher, y_hard


def sphere_inputs(rng: np.random.Generator, n: int, input_dim: int) -> np.ndarray:
    r"""``n`` points drawn uniformly from the unit sphere :math:`S^{d-1} \subset \mathbb R^d`.

    Args:
      rng: a NumPy generator, e.g. ``streams.rng("train")`` (:class:`kdwide.seeds.Streams`); NumPy, so that draws
        do not depend on JAX's PRNG version.
      n: number of points (≥ 1).
      input_dim: :math:`d` (≥ 2).

    Returns:
      ``(n, input_dim)`` float64 array of unit-norm rows.
    """
    check_positive_int(n, "n")
    check_positive_int(input_dim, "input_dim", minimum=2)
    x = _generator(rng).standard_normal((n, input_dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def centred_coefficients(rng: np.random.Generator, anchors: np.ndarray, *, remove_linear: bool = True) -> np.ndarray:
    r"""Random expansion coefficients :math:`c` for a kernel-expansion teacher, centred (the book's pitfall 1, one-class teachers).

    A ReLU NTK has a large constant component, so :math:`\sum_j c_j \Theta(x, a_j)` with raw random
    :math:`c` has one sign almost everywhere. We project :math:`c` onto :math:`\sum_j c_j = 0` and, with
    ``remove_linear``, also onto :math:`\sum_j c_j a_j = 0` (no linear part: a curved boundary), then
    normalize to unit Euclidean norm.

    Args:
      rng: a NumPy generator (e.g. ``streams.rng("coefficients")``).
      anchors: ``(m, d)`` anchor points :math:`a_j` (m > d + 1 when ``remove_linear``).

    Returns:
      ``(m,)`` coefficients.
    """
    anchors = np.asarray(anchors, float)
    m = anchors.shape[0]
    constraints = np.ones((m, 1)) if not remove_linear else np.concatenate([np.ones((m, 1)), anchors], axis=1)
    if constraints.shape[1] >= m:
        raise ValueError(f"anchors: need more than {constraints.shape[1]} anchors for the centring constraints, got {m}")
    c = _generator(rng).standard_normal(m)
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


def perfect_teacher(
    streams: Streams,
    *,
    kernel_fn: KernelFn,
    input_dim: int,
    n_anchors: int,
    rms_logit: float | None = None,
    peak_logit: float | None = None,
    remove_linear: bool = True,
    n_calibration: int = 4096,
    calibration: np.ndarray | None = None,
) -> PerfectTeacher:
    r"""Draw the perfect teacher of a run in the random-feature space of ``kernel_fn``.

    Anchors are uniform on :math:`S^{d-1}`; coefficients are centred (the book's pitfall 1, one-class teachers: no
    constant and, with ``remove_linear``, no linear part, so both classes occur and the boundary is curved) and then
    scaled on the calibration inputs so that either the root-mean-square teacher logit equals ``rms_logit`` or the
    largest absolute logit equals ``peak_logit`` (give exactly one; the scale matters for ρ < 1 only: the effective
    logits are not scale-equivariant).

    The draws come from ``streams.child("teacher")`` (streams ``anchors``, ``coefficients``, ``calibration``), so
    every experiment that asks for the teacher of the same streams gets the same teacher.

    Args:
      streams: the run's (or repetition's) :class:`kdwide.seeds.Streams`.
      kernel_fn: the student's kernel, ``kernel_fn(x1, x2=None)``.
      input_dim: :math:`d` (≥ 2).
      n_anchors: :math:`m` (> d + 1 with ``remove_linear``, > 1 without).
      rms_logit: RMS teacher logit over the calibration inputs, finite and > 0 ...
      peak_logit: ... or the largest :math:`|z_t|` over them, finite and > 0.
      remove_linear: also remove the linear part of the expansion.
      n_calibration: number of calibration inputs (drawn uniformly on the sphere) ...
      calibration: ... or these inputs, ``(c, d)`` (e.g. a task's training and test inputs).

    Returns:
      :class:`PerfectTeacher`.

    Example:
      >>> from kdwide.architecture import Architecture
      >>> kernel = Architecture(depth=1, activation="relu", w_std=1.0, b_std=0.1).kernel
      >>> teacher = perfect_teacher(Streams(0), kernel_fn=kernel, input_dim=3, n_anchors=8, rms_logit=2.0)
      >>> again = perfect_teacher(Streams(0), kernel_fn=kernel, input_dim=3, n_anchors=8, rms_logit=2.0)
      >>> teacher.anchors.shape, bool(np.array_equal(teacher.coefficients, again.coefficients))
      ((8, 3), True)
    """
    if not isinstance(streams, Streams):
        raise ValueError(f"streams must be a kdwide.seeds.Streams, got {streams!r}")
    check_positive_int(input_dim, "input_dim", minimum=2)
    check_positive_int(n_anchors, "n_anchors", minimum=2)
    check_positive_int(n_calibration, "n_calibration")
    if (rms_logit is None) == (peak_logit is None):
        raise ValueError("give exactly one of rms_logit and peak_logit (the teacher's logit scale)")
    scale_name, scale = ("rms_logit", rms_logit) if rms_logit is not None else ("peak_logit", peak_logit)
    scale = check_positive_real(scale, scale_name)
    teacher_streams = streams.child("teacher")
    anchors = sphere_inputs(teacher_streams.rng("anchors"), n_anchors, input_dim)
    coefficients = centred_coefficients(teacher_streams.rng("coefficients"), anchors, remove_linear=remove_linear)
    if calibration is None:
        calibration = sphere_inputs(teacher_streams.rng("calibration"), n_calibration, input_dim)
    elif np.ndim(calibration) != 2 or np.shape(calibration)[1] != input_dim:
        raise ValueError(f"calibration must have shape (c, {input_dim}), got {np.shape(calibration)}")
    raw = np.abs(kernel_expansion_logits(kernel_fn, calibration, anchors, coefficients))
    size = float(np.sqrt(np.mean(raw**2))) if rms_logit is not None else float(raw.max())
    if not size > 0:
        raise ValueError("the teacher's logits vanish on the calibration inputs: choose other anchors (seed)")
    coefficients = coefficients * (scale / size)
    return PerfectTeacher(anchors, coefficients, expansion_norm(kernel_fn, anchors, coefficients))
