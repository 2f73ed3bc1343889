r"""Result 2's experiments: a task family of graded difficulty, early-stopped teachers, and the ρ×T grid.

Task family (our choice, claim D2)
----------------------------------
Inputs lie on the unit circle, :math:`x = (\cos\theta, \sin\theta)`. Every kernel of
:mod:`kdwide.kernels` depends on unit inputs only through :math:`x\cdot x' = \cos(\theta - \theta')`, so it
is rotation invariant and its eigenfunctions are :math:`\cos k\theta, \sin k\theta` (eigenvalues
:math:`\mu_k` falling with the frequency :math:`k`). The teacher of difficulty :math:`k` is

.. math:: z_t(\theta) = s\cos(k\theta), \qquad y_g = 1\{\cos k\theta > 0\},

a *perfect* teacher (R1): it is exactly representable by an oracle weight change
(:math:`\|\Delta w_*\|^2 = s^2 \|\cos k\theta\|^2_{\mathcal H} \propto s^2/\mu_k`) and its sign is the ground
truth. The direction of the knob is known in advance: a higher frequency has :math:`2k` boundaries and
lives further down the kernel's spectrum, so the student needs more samples to resolve it.

Early-stopped teacher (claim D3)
--------------------------------
A teacher is trained on its own inputs :math:`X_T` (``n_teacher`` points) to the scaled ground-truth
labels :math:`y = s(2y_g - 1)` by gradient flow on :math:`\frac1{2N_T}\sum_i (z_i - y_i)^2` in the kernel
regime, from a zero function. With :math:`\Theta_T = U\Lambda U^\top`,

.. math:: z_t(x) = \Theta(x, X_T)\,\Theta_T^{-1}\big(I - e^{-t\Theta_T/N_T}\big)\,y
   = \Theta(x, X_T)\,U\,\mathrm{diag}\Big(\frac{1 - e^{-t\lambda_i/N_T}}{\lambda_i}\Big)U^\top y ,

computed as :math:`-\mathrm{expm1}(-t\lambda/N_T)/\lambda` (no cancellation, finite as :math:`\lambda \to 0`).
Stopping early keeps only the directions with :math:`t\lambda_i/N_T \gtrsim 1`: the teacher is smoother (its
weight-change norm :math:`\|\Delta w_t\|^2 = \sum_i \lambda_i g_i^2 (U^\top y)_i^2` grows with :math:`t`).
At :math:`t = \infty` it interpolates the steps.

Experiments and claims
----------------------
Each repetition (a :class:`kdwide.seeds.Streams`) draws ``max(n_values)`` ordered training angles and ``n_candidates``
new-sample angles from its stream ``"student_angles"`` (:func:`student_angles`; an early-stopped teacher's own inputs
come from ``"teacher_angles"``), computes *one* kernel on their union (exact diagonal) and *one* factorization, and
evaluates
:func:`kdwide.data_inefficiency.data_inefficiency` for every target column (every frequency, ρ, T and
stopping time) from it. Records are tidy rows (one measurement per row, :mod:`kdwide_book.results`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import spearmanr

from kdwide.architecture import Architecture
from kdwide.data_inefficiency import data_inefficiency_from_kernel, one_sample_weight_change
from kdwide.experiments import claim
from kdwide.linearized import factorize_kernel, weight_change_norm
from kdwide.metrics import classification_error
from kdwide.predict import grid_points, grid_targets
from kdwide.seeds import Streams
from kdwide.stats import seed_means
from kdwide.validation import (
    check_finite,
    check_positive_int,
    check_positive_real,
    check_soft_ratio,
    check_temperature,
)

__all__ = [
    "GradientFlowTeacher",
    "ClosedFormCheck",
    "random_angles",
    "student_angles",
    "teacher_angles",
    "circle_inputs",
    "frequency_task",
    "gradient_flow_teacher",
    "closed_form_check",
    "difficulty_records",
    "early_stopping_records",
    "soft_ratio_records",
    "rank_correlations",
    "claims",
]


class GradientFlowTeacher(NamedTuple):
    """A kernel-regime teacher trained by gradient flow, for ``s`` stopping times.

    Attributes:
      coefficients: ``(N_T, s)``; the teacher's logits are ``Θ(x, X_T) @ coefficients``.
      weight_change_norm: ``(s,)``, :math:`\\|\\Delta w_t\\|`, the teacher's distance from its initialization.
    """

    coefficients: np.ndarray
    weight_change_norm: np.ndarray


def random_angles(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` angles uniform on ``[0, 2π)`` drawn with the NumPy generator ``rng`` (e.g. ``streams.rng("student_angles")``).

    Returns:
      ``(n,)`` float64.

    Example:
      >>> random_angles(Streams(0).rng("example"), 3).shape
      (3,)
    """
    check_positive_int(n, "n")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (e.g. Streams(seed).rng('student_angles')), got {rng!r}")
    return rng.uniform(0.0, 2.0 * math.pi, n)


def student_angles(streams: Streams, n: int) -> np.ndarray:
    """The student's ``n`` angles of a repetition (stream ``"student_angles"``): the first ``max(n_values)`` are the
    ordered training set of :func:`difficulty_records` and its siblings, the rest the candidate new samples.

    Returns:
      ``(n,)`` float64; the same ``streams`` give the same angles (a prefix of a longer draw is the shorter one).
    """
    return random_angles(_streams(streams).rng("student_angles"), n)


def teacher_angles(streams: Streams, n: int) -> np.ndarray:
    """An early-stopped teacher's own ``n`` training angles (stream ``"teacher_angles"``, independent of the student's)."""
    return random_angles(_streams(streams).rng("teacher_angles"), n)


def _streams(streams: Any) -> Streams:
    if not isinstance(streams, Streams):
        raise ValueError(f"streams must be a kdwide.seeds.Streams, got {streams!r}")
    return streams


def circle_inputs(angles: np.ndarray) -> np.ndarray:
    """Unit vectors ``(cos θ, sin θ)``: ``(n,)`` angles to ``(n, 2)`` inputs."""
    angles = np.asarray(angles, dtype=np.float64)
    if angles.ndim != 1:
        raise ValueError(f"angles must have shape (n,), got {angles.shape}")
    check_finite(angles, "angles")
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def frequency_task(angles: np.ndarray, *, frequency: int, teacher_peak_logit: float) -> tuple[np.ndarray, np.ndarray]:
    r"""The perfect teacher of difficulty ``frequency``: :math:`z_t = s\cos(k\theta)`, :math:`y_g = 1\{\cos k\theta > 0\}`.

    Args:
      angles: ``(n,)``.
      frequency: :math:`k` ≥ 1 (``2k`` class boundaries on the circle).
      teacher_peak_logit: :math:`s` > 0, the teacher's peak logit (largest :math:`|z_t|`).

    Returns:
      ``(z_teacher, y_hard)``, shapes ``(n,)``; ``y_hard`` int in {0, 1} and equal to ``z_teacher > 0``.

    Example:
      >>> z_teacher, y_hard = frequency_task(np.array([0.0, np.pi]), frequency=1, teacher_peak_logit=2.0)
      >>> z_teacher.tolist(), y_hard.tolist()
      ([2.0, -2.0], [1, 0])
    """
    frequency = check_positive_int(frequency, "frequency")
    teacher_peak_logit = check_positive_real(teacher_peak_logit, "teacher_peak_logit")
    angles = np.asarray(angles, dtype=np.float64)
    check_finite(angles, "angles")
    wave = np.cos(frequency * angles)
    return teacher_peak_logit * wave, (wave > 0).astype(np.int64)


def _stopping_times(stopping_times: Sequence[float]) -> np.ndarray:
    times = np.atleast_1d(np.asarray(stopping_times, dtype=np.float64))
    if times.ndim != 1 or times.size == 0 or np.any(np.isnan(times)) or np.any(times <= 0):
        raise ValueError(f"stopping_times must be a non-empty list of numbers > 0 (math.inf: converged), got {stopping_times!r}")
    return times


def gradient_flow_teacher(kernel: np.ndarray, targets: np.ndarray, *, stopping_times: Sequence[float]) -> GradientFlowTeacher:
    r"""Teacher trained by kernel gradient flow for each stopping time (closed form, module docstring).

    Args:
      kernel: ``(N_T, N_T)`` positive-definite kernel on the teacher's training inputs.
      targets: ``(N_T,)`` regression targets (e.g. :math:`s(2y_g - 1)`).
      stopping_times: ``(s,)`` times :math:`t > 0` in units of the learning rate × epochs; ``math.inf``
        gives the converged (interpolating) teacher.

    Returns:
      :class:`GradientFlowTeacher`.

    Raises:
      ValueError: bad shapes, non-finite values, ``stopping_times`` ≤ 0, or a kernel that is not
        positive definite.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or targets.shape != (kernel.shape[0],):
        raise ValueError(f"kernel must be (N, N) and targets (N,), got {kernel.shape} and {targets.shape}")
    check_finite(kernel, "kernel")
    check_finite(targets, "targets")
    times = _stopping_times(stopping_times)
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (kernel + kernel.T))
    if eigenvalues[0] <= 0:
        raise ValueError("kernel must be positive definite (smallest eigenvalue <= 0)")
    size = kernel.shape[0]
    projected = eigenvectors.T @ targets
    exponent = times[None, :] * eigenvalues[:, None] / size
    gains = -np.expm1(-exponent) / eigenvalues[:, None]  # t = inf: -expm1(-inf) = 1, the converged teacher
    coefficients = eigenvectors @ (gains * projected[:, None])
    norms = np.sqrt(np.sum(eigenvalues[:, None] * (gains * projected[:, None]) ** 2, axis=0))
    return GradientFlowTeacher(coefficients, norms)


class ClosedFormCheck(NamedTuple):
    r"""D1's check of the one-sample closed form against two full solves (:func:`closed_form_check`).

    Attributes:
      closed_form: the squared-norm increment :math:`r^2/v` of the closed form.
      full_solves: :math:`\|\Delta\hat w_{n+1}\|^2 - \|\Delta\hat w_n\|^2` from two factorizations.
      relative_error: ``|closed_form - full_solves| / full_solves``.
    """

    closed_form: float
    full_solves: float
    relative_error: float


def closed_form_check(
    streams: Streams,
    *,
    architecture: Architecture,
    frequency: int,
    teacher_peak_logit: float,
    rho: float,
    temperature: float,
    n_train: int = 40,
    n_candidates: int = 8,
) -> ClosedFormCheck:
    """D1's first part: the closed-form increment of one added sample against two full solves.

    On the first ``n_train`` of the repetition's :func:`student_angles` (the training set) and the next
    ``n_candidates`` (candidate new samples), with the targets of the frequency task at soft ratio ``rho`` and
    ``temperature``. The full solves add the candidate of the largest closed-form increment: a tiny increment is
    the difference of two nearly equal squared norms, and the full solves would lose it to rounding.

    Example:
      >>> architecture = Architecture(depth=1, activation="relu", w_std=1.4, b_std=0.1)
      >>> check = closed_form_check(Streams(0), architecture=architecture, frequency=2, teacher_peak_logit=4.0,
      ...                           rho=0.5, temperature=1.0, n_train=10)
      >>> bool(check.relative_error < 1e-8)
      True
    """
    check_positive_int(n_train, "n_train")
    check_positive_int(n_candidates, "n_candidates")
    check_soft_ratio(rho)
    check_temperature(temperature)
    angles = student_angles(streams, n_train + n_candidates)
    kernel = np.asarray(architecture.kernel(circle_inputs(angles)))
    z_teacher, y_hard = frequency_task(angles, frequency=frequency, teacher_peak_logit=teacher_peak_logit)
    target = grid_targets(z_teacher, y_hard, rho=rho, temperature=temperature)[:, 0]
    factorization = factorize_kernel(kernel[:n_train, :n_train])
    increments = one_sample_weight_change(
        factorization, kernel[:n_train, n_train:], np.diag(kernel)[n_train:], target[:n_train], target[n_train:]
    ).squared_norm_increment
    largest = int(np.argmax(increments))
    added = np.r_[np.arange(n_train), n_train + largest]
    after = float(weight_change_norm(factorize_kernel(kernel[np.ix_(added, added)]), target[added]) ** 2)
    full = after - float(weight_change_norm(factorization, target[:n_train]) ** 2)
    closed_form = float(increments[largest])
    return ClosedFormCheck(closed_form, full, abs(closed_form - full) / full)


TargetsAndColumns = Callable[[Streams, np.ndarray, np.ndarray], tuple[np.ndarray, Sequence[dict[str, Any]]]]
"""``targets_and_columns(streams, angles, inputs) -> (targets (n, k), k column labels)`` of one experiment."""


def _repetition_records(
    repetitions: Sequence[Streams],
    n_values: Sequence[int],
    n_candidates: int,
    architecture: Architecture,
    targets_and_columns: TargetsAndColumns,
) -> list[dict[str, Any]]:
    """The experiments' common loop: per repetition, the student's inputs on the circle, their NTK, the targets and
    column labels from ``targets_and_columns``, and one data-inefficiency computation."""
    n_values = [check_positive_int(n, "n_values entries") for n in n_values]
    if not n_values:
        raise ValueError("n_values must not be empty")
    check_positive_int(n_candidates, "n_candidates")
    if not isinstance(architecture, Architecture):
        raise ValueError(f"architecture must be a kdwide.architecture.Architecture, got {architecture!r}")
    n_train = max(n_values)
    records: list[dict[str, Any]] = []
    for streams in repetitions:
        angles = student_angles(streams, n_train + n_candidates)
        inputs = circle_inputs(angles)
        targets, columns = targets_and_columns(streams, angles, inputs)
        values = data_inefficiency_from_kernel(
            np.asarray(architecture.kernel(inputs)), targets, n_train=n_train, n_values=n_values
        )
        records += [
            {**labels, "n_train": int(n), **streams.record(), "data_inefficiency": float(values[row, column])}
            for column, labels in enumerate(columns)
            for row, n in enumerate(n_values)
        ]
    return records


def _columns(experiment: str, frequency: int, rho_values, temperature_values) -> list[dict[str, Any]]:
    return [
        {"experiment": experiment, "teacher": "exact", "frequency": int(frequency), "rho": float(rho),
         "temperature": float(temperature), "stopping_time": None}
        for rho, temperature in zip(rho_values, temperature_values)
    ]  # fmt: skip


def difficulty_records(
    *,
    repetitions: Sequence[Streams],
    architecture: Architecture,
    frequencies: Sequence[int],
    rho_values: Sequence[float],
    temperature: float,
    teacher_peak_logit: float,
    n_values: Sequence[int],
    n_candidates: int,
) -> list[dict[str, Any]]:
    """D2: data inefficiency of students of the frequency tasks, for each frequency, ρ, n and repetition.

    Returns:
      Records ``{"experiment": "difficulty", "teacher": "exact", "frequency", "rho", "temperature",
      "stopping_time": None, "n_train", "seed", "repetition", "data_inefficiency"}``.
    """
    check_soft_ratio(list(rho_values), "rho_values")
    rho_values = [float(r) for r in rho_values]
    check_temperature(temperature)

    def targets_and_columns(streams, angles, inputs):
        targets, columns = [], []
        for frequency in frequencies:
            z_teacher, y_hard = frequency_task(angles, frequency=frequency, teacher_peak_logit=teacher_peak_logit)
            targets.append(grid_targets(z_teacher, y_hard, rho=rho_values, temperature=temperature))
            columns += _columns("difficulty", frequency, rho_values, [temperature] * len(rho_values))
        return np.concatenate(targets, axis=1), columns

    return _repetition_records(repetitions, n_values, n_candidates, architecture, targets_and_columns)


def soft_ratio_records(
    *,
    repetitions: Sequence[Streams],
    architecture: Architecture,
    frequency: int,
    rho_values: Sequence[float],
    temperature_values: Sequence[float],
    teacher_peak_logit: float,
    n_values: Sequence[int],
    n_candidates: int,
) -> list[dict[str, Any]]:
    """D3 (soft ratio): data inefficiency over the ρ×T grid: one factorization per repetition, one column per grid point.

    Returns:
      Records ``{"experiment": "soft_ratio", "teacher": "exact", "frequency", "rho", "temperature",
      "stopping_time": None, "n_train", "seed", "repetition", "data_inefficiency"}``.
    """
    rho_grid, temperature_grid = grid_points(rho_values, temperature_values)
    columns = _columns("soft_ratio", frequency, rho_grid, temperature_grid)

    def targets_and_columns(streams, angles, inputs):
        z_teacher, y_hard = frequency_task(angles, frequency=frequency, teacher_peak_logit=teacher_peak_logit)
        return grid_targets(z_teacher, y_hard, rho=rho_grid, temperature=temperature_grid), columns

    return _repetition_records(repetitions, n_values, n_candidates, architecture, targets_and_columns)


def early_stopping_records(
    *,
    repetitions: Sequence[Streams],
    architecture: Architecture,
    frequency: int,
    stopping_times: Sequence[float],
    rho_values: Sequence[float],
    temperature: float,
    teacher_peak_logit: float,
    n_teacher: int,
    n_values: Sequence[int],
    n_candidates: int,
) -> list[dict[str, Any]]:
    r"""D3 (early stopping): students of gradient-flow teachers stopped at each time (``math.inf``: converged).

    The teacher learns the frequency task's labels :math:`s(2y_g - 1)` (:math:`s` = ``teacher_peak_logit``) on
    ``n_teacher`` inputs of its own (:func:`teacher_angles`, independent of the student's); the student's hard labels
    are the ground truth :math:`y_g`. Every (stopping time, ρ) pair is one target column of the same factorization.

    Returns:
      Records ``{"experiment": "early_stopping", "teacher": "early_stopped" | "converged", "frequency",
      "rho", "temperature", "stopping_time" (None when converged), "teacher_weight_change_norm",
      "teacher_error" (share of the student's inputs where the teacher's sign disagrees with y_g),
      "n_train", "seed", "repetition", "data_inefficiency"}``.
    """
    check_soft_ratio(list(rho_values), "rho_values")
    check_temperature(temperature)
    check_positive_int(n_teacher, "n_teacher")
    times = _stopping_times(stopping_times)
    rho_values = [float(r) for r in rho_values]

    def targets_and_columns(streams, angles, inputs):
        own_angles = teacher_angles(streams, n_teacher)
        own_inputs = circle_inputs(own_angles)
        _, own_labels = frequency_task(own_angles, frequency=frequency, teacher_peak_logit=teacher_peak_logit)
        teacher = gradient_flow_teacher(
            np.asarray(architecture.kernel(own_inputs)), teacher_peak_logit * (2.0 * own_labels - 1.0), stopping_times=times
        )
        z_teacher = np.asarray(architecture.kernel(inputs, own_inputs)) @ teacher.coefficients
        _, y_hard = frequency_task(angles, frequency=frequency, teacher_peak_logit=teacher_peak_logit)
        targets = grid_targets(
            np.repeat(z_teacher, len(rho_values), axis=1), y_hard, rho=np.tile(rho_values, times.size), temperature=temperature
        )
        errors = classification_error(z_teacher, y_hard)
        columns = [
            {"experiment": "early_stopping", "teacher": "converged" if math.isinf(t) else "early_stopped",
             "frequency": int(frequency), "rho": rho, "temperature": float(temperature),
             "stopping_time": None if math.isinf(t) else float(t),
             "teacher_weight_change_norm": float(teacher.weight_change_norm[j]), "teacher_error": float(errors[j])}
            for j, t in enumerate(times)
            for rho in rho_values
        ]  # fmt: skip
        return targets, columns

    return _repetition_records(repetitions, n_values, n_candidates, architecture, targets_and_columns)


def rank_correlations(records: Sequence[dict[str, Any]], *, knob: str, **where: Any) -> dict[int, tuple[float, float]]:
    r"""Spearman rank correlation between ``knob`` and the data inefficiency, pooled over repetitions, per ``n_train``.

    Args:
      records: tidy records (this module's).
      knob: record key to correlate with (``"frequency"``, ``"rho"``, ``"stopping_time"``; a missing
        ``stopping_time`` counts as :math:`+\infty`, the converged teacher).
      where: only records whose keys equal these values (e.g. ``rho=1.0``, ``experiment="difficulty"``).

    Returns:
      ``{n_train: (spearman, p_value)}``; ``(nan, nan)`` where the data inefficiency is constant (no claim holds
      on such a cell).
    """
    selected = [r for r in records if all(r.get(k) == v for k, v in where.items())]
    if not selected:
        raise ValueError(f"no records match {where!r}")
    result = {}
    for n in sorted({r["n_train"] for r in selected}):
        rows = [r for r in selected if r["n_train"] == n]
        knobs = [math.inf if r[knob] is None else r[knob] for r in rows]
        if len(set(knobs)) < 2:
            raise ValueError(f"knob {knob!r} takes a single value in the selected records")
        values = [r["data_inefficiency"] for r in rows]
        if len(set(values)) < 2:  # a constant sample has no rank correlation (spearmanr would warn)
            result[int(n)] = (math.nan, math.nan)
            continue
        statistic, p_value = spearmanr(knobs, values)
        result[int(n)] = (float(statistic), float(p_value))
    return result


def _correlation_claim(correlations: dict[int, tuple[float, float]], sign: int, what: str, significance: float):
    holds = all(sign * s > 0 and p < significance for s, p in correlations.values())
    listed = ", ".join(f"n={n}: {s:+.3f} (p={p:.2g})" for n, (s, p) in correlations.items())
    return claim(holds, f"Spearman({what}, I(n)) pooled over repetitions: {listed}")


def _difficulty_claim(records: Sequence[dict[str, Any]], *, rho: float, significance: float = 0.05) -> dict[str, Any]:
    """D2 holds if, at soft ratio ``rho``, I(n) rises with the frequency at every n (Spearman > 0, p < ``significance``)."""
    correlations = rank_correlations(records, knob="frequency", experiment="difficulty", rho=rho)
    return _correlation_claim(correlations, +1, f"frequency, at rho={rho:g}", significance)


def _early_stopping_claim(records: Sequence[dict[str, Any]], *, rho: float, significance: float = 0.05) -> dict[str, Any]:
    """D3 (first part) holds if, at soft ratio ``rho``, I(n) rises with the teacher's stopping time at every n
    (Spearman > 0, p < ``significance``)."""
    correlations = rank_correlations(records, knob="stopping_time", experiment="early_stopping", rho=rho)
    return _correlation_claim(correlations, +1, f"teacher stopping time, at rho={rho:g}", significance)


def _soft_ratio_claim(records: Sequence[dict[str, Any]], *, significance: float = 0.05) -> dict[str, Any]:
    """D3 (second part) holds if I(n) falls as ρ rises, at every temperature and n (Spearman < 0, p < ``significance``)."""
    temperatures = sorted({r["temperature"] for r in records if r["experiment"] == "soft_ratio"})
    correlations = {}
    for temperature in temperatures:
        for n, value in rank_correlations(records, knob="rho", experiment="soft_ratio", temperature=temperature).items():
            correlations[(temperature, n)] = value
    holds = all(s < 0 and p < significance for s, p in correlations.values())
    worst = max(correlations, key=lambda key: correlations[key][0])
    s, p = correlations[worst]
    return claim(
        holds,
        f"Spearman(rho, I(n)) pooled over repetitions, over {len(correlations)} (T, n) cells: "
        f"largest {s:+.3f} (p={p:.2g}) at T={worst[0]:g}, n={worst[1]}",
    )


CLOSED_FORM_TOLERANCE = 1e-8
"""D1: the closed-form one-sample increment must equal two full solves to this relative difference."""
EFFICIENT_SOFT = 0.01
"""D1: at ρ = 1 the data inefficiency at the largest n must fall below this (the oracle is recovered) ..."""
INEFFICIENT_HARD = 0.1
"""D1: ... while with hard labels (ρ = 0) it stays above this (every new sample still moves the weights)."""
SIGNIFICANCE = 0.05
"""D2, D3: rank correlations must have p below this."""


def _hard_and_soft_at_largest_n(records: Sequence[dict[str, Any]], frequency: int) -> tuple[int | None, dict[float, float]]:
    """``(largest n, {ρ: mean I over repetitions at that n})`` of the frequency-``frequency`` difficulty task, ρ in {0, 1}."""
    task = [r for r in records if r.get("experiment") == "difficulty" and r["frequency"] == frequency]
    if not task:
        return None, {}
    n_max = max(r["n_train"] for r in task)
    final = [r for r in task if r["n_train"] == n_max and r["rho"] in (0.0, 1.0)]
    if not final:
        return n_max, {}
    means = seed_means(final, ["rho"], ["data_inefficiency"])
    return n_max, dict(zip(means.rho.astype(float), means.data_inefficiency_mean.astype(float)))


def claims(
    records: Sequence[dict[str, Any]], *, rho: float, frequency: int, closed_form: ClosedFormCheck
) -> dict[str, dict[str, Any]]:
    """D1–D3 from the chapter's records (difficulty, early-stopping and soft-ratio experiments together).

    - D1: the metric is computed right (``closed_form``, from :func:`closed_form_check`, has a relative error at most
      :data:`CLOSED_FORM_TOLERANCE`) and separates pure soft from hard labels on the frequency-``frequency`` task at
      the largest n (mean over repetitions below :data:`EFFICIENT_SOFT` at ρ = 1, above :data:`INEFFICIENT_HARD` at
      ρ = 0; both ρ must have been run).
    - D2: at soft ratio ``rho`` I(n) rises with the task's frequency at every n.
    - D3: I(n) rises with the teacher's stopping time (at ``rho``) and falls as ρ rises, at every T and n.

    Returns:
      ``{"D1": ..., "D2": ..., "D3": ...}``, each ``{"holds", "evidence"}``.
    """
    closed_form_ok = bool(closed_form.relative_error < CLOSED_FORM_TOLERANCE)
    n_max, final = _hard_and_soft_at_largest_n(records, frequency)
    if not {0.0, 1.0} <= set(final):
        d1 = claim(False, f"closed form = full solves: {closed_form_ok}; D1 needs rho = 0 and rho = 1 on the "
                          f"frequency-{frequency} task")
    else:
        d1 = claim(closed_form_ok and final[1.0] < EFFICIENT_SOFT and final[0.0] > INEFFICIENT_HARD,
                   f"closed form = full solves: {closed_form_ok}; "
                   f"frequency {frequency}, n={n_max}: I = {final[1.0]:.3g} at rho=1, {final[0.0]:.3g} for hard labels")
    early = _early_stopping_claim(records, rho=rho, significance=SIGNIFICANCE)
    ratio = _soft_ratio_claim(records, significance=SIGNIFICANCE)
    return {
        "D1": d1,
        "D2": _difficulty_claim(records, rho=rho, significance=SIGNIFICANCE),
        "D3": claim(early["holds"] and ratio["holds"], f"early stopping: {early['evidence']}. Soft ratio: {ratio['evidence']}"),
    }
