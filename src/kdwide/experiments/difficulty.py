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
Each seed draws ``max(n_values)`` ordered training angles and ``n_candidates`` new-sample angles, computes
*one* kernel on their union (exact diagonal) and *one* factorization, and evaluates
:func:`kdwide.data_inefficiency.data_inefficiency` for every target column (every frequency, ρ, T and
stopping time) from it. Records are tidy rows (one measurement per row, :mod:`kdwide_book.results`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import spearmanr

from kdwide.data_inefficiency import data_inefficiency_from_kernel
from kdwide.experiments import claim
from kdwide.kernels import analytic_ntk
from kdwide.metrics import classification_error
from kdwide.predict import grid_points, grid_targets
from kdwide.tasks import stream_seeds
from kdwide.validation import check_finite, check_positive_int, check_soft_ratio, check_temperature

__all__ = [
    "GradientFlowTeacher",
    "random_angles",
    "circle_inputs",
    "frequency_task",
    "gradient_flow_teacher",
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


def random_angles(seed: int, n: int, *, stream: int = 0) -> np.ndarray:
    """``n`` angles uniform on ``[0, 2π)``; ``stream`` gives independent draws for the same seed.

    Returns:
      ``(n,)`` float64.
    """
    check_positive_int(n, "n")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)) or stream < 0:
        raise ValueError(f"stream must be an integer >= 0, got {stream!r}")
    return np.random.default_rng(stream_seeds(int(seed), int(stream) + 1)[int(stream)]).uniform(0.0, 2.0 * math.pi, n)


def circle_inputs(angles: np.ndarray) -> np.ndarray:
    """Unit vectors ``(cos θ, sin θ)``: ``(n,)`` angles to ``(n, 2)`` inputs."""
    angles = np.asarray(angles, dtype=np.float64)
    if angles.ndim != 1:
        raise ValueError(f"angles must have shape (n,), got {angles.shape}")
    check_finite(angles, "angles")
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def frequency_task(angles: np.ndarray, *, frequency: int, teacher_scale: float) -> tuple[np.ndarray, np.ndarray]:
    r"""The perfect teacher of difficulty ``frequency``: :math:`z_t = s\cos(k\theta)`, :math:`y_g = 1\{\cos k\theta > 0\}`.

    Args:
      angles: ``(n,)``.
      frequency: :math:`k` ≥ 1 (``2k`` class boundaries on the circle).
      teacher_scale: :math:`s` > 0, the teacher's peak logit.

    Returns:
      ``(z_teacher, y_hard)``, shapes ``(n,)``; ``y_hard`` int in {0, 1} and equal to ``z_teacher > 0``.
    """
    frequency = check_positive_int(frequency, "frequency")
    if not (isinstance(teacher_scale, (int, float, np.integer, np.floating)) and 0 < teacher_scale < math.inf):
        raise ValueError(f"teacher_scale must be a finite number > 0, got {teacher_scale!r}")
    angles = np.asarray(angles, dtype=np.float64)
    check_finite(angles, "angles")
    wave = np.cos(frequency * angles)
    return teacher_scale * wave, (wave > 0).astype(np.int64)


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


def _kernel_options(depth: int, activation: str, w_std: float, b_std: float) -> dict[str, Any]:
    return {"depth": depth, "activation": activation, "w_std": w_std, "b_std": b_std}


def _student_angles(seed: int, n_values: Sequence[int], n_candidates: int) -> tuple[np.ndarray, int]:
    n_values = [check_positive_int(n, "n_values entries") for n in n_values]
    if not n_values:
        raise ValueError("n_values must not be empty")
    check_positive_int(n_candidates, "n_candidates")
    n_train = max(n_values)
    return random_angles(seed, n_train + n_candidates), n_train


def _seed_records(
    seeds: Sequence[int],
    n_values: Sequence[int],
    n_candidates: int,
    options: dict[str, Any],
    targets_and_columns: Callable[[int, np.ndarray, np.ndarray], tuple[np.ndarray, Sequence[dict[str, Any]]]],
) -> list[dict[str, Any]]:
    """The experiments' common loop: per seed, the student's inputs on the circle, their NTK, the targets and
    column labels from ``targets_and_columns(seed, angles, inputs)``, and one data-inefficiency computation."""
    records: list[dict[str, Any]] = []
    for seed in seeds:
        angles, n_train = _student_angles(seed, n_values, n_candidates)
        inputs = circle_inputs(angles)
        kernel = np.asarray(analytic_ntk(inputs, **options))
        targets, columns = targets_and_columns(seed, angles, inputs)
        values = data_inefficiency_from_kernel(kernel, targets, n_train=n_train, n_values=n_values)
        records += _rows(values, n_values, columns, seed)
    return records


def _rows(values: np.ndarray, n_values: Sequence[int], columns: Sequence[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rows = []
    for column, labels in enumerate(columns):
        for row, n in enumerate(n_values):
            rows.append({**labels, "n_train": int(n), "seed": int(seed), "data_inefficiency": float(values[row, column])})
    return rows


def difficulty_records(
    *,
    seeds: Sequence[int],
    frequencies: Sequence[int],
    rho_values: Sequence[float],
    temperature: float,
    teacher_scale: float,
    n_values: Sequence[int],
    n_candidates: int,
    depth: int,
    activation: str,
    w_std: float,
    b_std: float,
) -> list[dict[str, Any]]:
    """D2: data inefficiency of students of the frequency tasks, for each frequency, ρ, n and seed.

    Returns:
      Records ``{"experiment": "difficulty", "teacher": "exact", "frequency", "rho", "temperature",
      "stopping_time": None, "n_train", "seed", "data_inefficiency"}``.
    """
    check_soft_ratio(list(rho_values), "rho_values")
    check_temperature(temperature)

    def targets_and_columns(seed, angles, inputs):
        targets, columns = [], []
        for frequency in frequencies:
            z_teacher, y_hard = frequency_task(angles, frequency=frequency, teacher_scale=teacher_scale)
            targets.append(grid_targets(z_teacher, y_hard, rho=list(rho_values), temperature=temperature))
            columns += [
                {"experiment": "difficulty", "teacher": "exact", "frequency": int(frequency), "rho": float(rho),
                 "temperature": float(temperature), "stopping_time": None}
                for rho in rho_values
            ]
        return np.concatenate(targets, axis=1), columns

    options = _kernel_options(depth, activation, w_std, b_std)
    return _seed_records(seeds, n_values, n_candidates, options, targets_and_columns)


def soft_ratio_records(
    *,
    seeds: Sequence[int],
    frequency: int,
    rho_values: Sequence[float],
    temperature_values: Sequence[float],
    teacher_scale: float,
    n_values: Sequence[int],
    n_candidates: int,
    depth: int,
    activation: str,
    w_std: float,
    b_std: float,
) -> list[dict[str, Any]]:
    """D3 (soft ratio): data inefficiency over the ρ×T grid: one factorization per seed, one column per grid point.

    Returns:
      Records ``{"experiment": "soft_ratio", "teacher": "exact", "frequency", "rho", "temperature",
      "stopping_time": None, "n_train", "seed", "data_inefficiency"}``.
    """
    rho_grid, temperature_grid = grid_points(rho_values, temperature_values)
    columns = [
        {"experiment": "soft_ratio", "teacher": "exact", "frequency": int(frequency), "rho": float(r),
         "temperature": float(t), "stopping_time": None}
        for r, t in zip(rho_grid, temperature_grid)
    ]

    def targets_and_columns(seed, angles, inputs):
        z_teacher, y_hard = frequency_task(angles, frequency=frequency, teacher_scale=teacher_scale)
        return grid_targets(z_teacher, y_hard, rho=rho_grid, temperature=temperature_grid), columns

    options = _kernel_options(depth, activation, w_std, b_std)
    return _seed_records(seeds, n_values, n_candidates, options, targets_and_columns)


def early_stopping_records(
    *,
    seeds: Sequence[int],
    frequency: int,
    stopping_times: Sequence[float],
    rho_values: Sequence[float],
    temperature: float,
    teacher_scale: float,
    n_teacher: int,
    n_values: Sequence[int],
    n_candidates: int,
    depth: int,
    activation: str,
    w_std: float,
    b_std: float,
) -> list[dict[str, Any]]:
    r"""D3 (early stopping): students of gradient-flow teachers stopped at each time (``math.inf``: converged).

    The teacher learns the frequency task's labels :math:`s(2y_g - 1)` on ``n_teacher`` inputs of its own
    (independent of the student's); the student's hard labels are the ground truth :math:`y_g`. Every
    (stopping time, ρ) pair is one target column of the same factorization.

    Returns:
      Records ``{"experiment": "early_stopping", "teacher": "early_stopped" | "converged", "frequency",
      "rho", "temperature", "stopping_time" (None when converged), "teacher_weight_change_norm",
      "teacher_error" (share of the student's inputs where the teacher's sign disagrees with y_g),
      "n_train", "seed", "data_inefficiency"}``.
    """
    check_soft_ratio(list(rho_values), "rho_values")
    check_temperature(temperature)
    check_positive_int(n_teacher, "n_teacher")
    times = _stopping_times(stopping_times)
    rho_values = [float(r) for r in rho_values]
    options = _kernel_options(depth, activation, w_std, b_std)

    def targets_and_columns(seed, angles, inputs):
        teacher_angles = random_angles(seed, n_teacher, stream=1)
        teacher_inputs = circle_inputs(teacher_angles)
        _, teacher_labels = frequency_task(teacher_angles, frequency=frequency, teacher_scale=teacher_scale)
        teacher = gradient_flow_teacher(
            np.asarray(analytic_ntk(teacher_inputs, **options)),
            teacher_scale * (2.0 * teacher_labels - 1.0),
            stopping_times=times,
        )
        z_teacher = np.asarray(analytic_ntk(inputs, teacher_inputs, **options)) @ teacher.coefficients
        _, y_hard = frequency_task(angles, frequency=frequency, teacher_scale=teacher_scale)
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
        ]
        return targets, columns

    return _seed_records(seeds, n_values, n_candidates, options, targets_and_columns)


def rank_correlations(records: Sequence[dict[str, Any]], *, knob: str, **where: Any) -> dict[int, tuple[float, float]]:
    r"""Spearman rank correlation between ``knob`` and the data inefficiency, pooled over seeds, per ``n_train``.

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
    return claim(holds, f"Spearman({what}, I(n)) pooled over seeds: {listed}")


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
        f"Spearman(rho, I(n)) pooled over seeds, over {len(correlations)} (T, n) cells: "
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


def claims(
    records: Sequence[dict[str, Any]], *, rho: float, frequency: int, closed_form_relative_error: float
) -> dict[str, dict[str, Any]]:
    """D1–D3 from the chapter's records (difficulty, early-stopping and soft-ratio experiments together).

    - D1: the metric is computed right (``closed_form_relative_error`` ≤ :data:`CLOSED_FORM_TOLERANCE`) and separates
      pure soft from hard labels on the frequency-``frequency`` task at the largest n (mean over seeds below
      :data:`EFFICIENT_SOFT` at ρ = 1, above :data:`INEFFICIENT_HARD` at ρ = 0; both ρ must have been run).
    - D2: at soft ratio ``rho`` I(n) rises with the task's frequency at every n.
    - D3: I(n) rises with the teacher's stopping time (at ``rho``) and falls as ρ rises, at every T and n.

    Returns:
      ``{"D1": ..., "D2": ..., "D3": ...}``, each ``{"holds", "evidence"}``.
    """
    closed_form_ok = bool(closed_form_relative_error < CLOSED_FORM_TOLERANCE)
    task = [r for r in records if r.get("experiment") == "difficulty" and r["frequency"] == frequency]
    n_max = max(r["n_train"] for r in task) if task else None
    final = {}
    for value in (0.0, 1.0):
        rows = [r["data_inefficiency"] for r in task if r["rho"] == value and r["n_train"] == n_max]
        final[value] = float(np.mean(rows)) if rows else None
    if None in final.values():
        d1 = claim(False, f"closed form = full solves: {closed_form_ok}; D1 needs rho = 0 and rho = 1 on the "
                          f"frequency-{frequency} task")
    else:
        d1 = claim(closed_form_ok and final[1.0] < EFFICIENT_SOFT and final[0.0] > INEFFICIENT_HARD,
                   f"closed form = full solves: {closed_form_ok}; frequency {frequency}, n={n_max}: "
                   f"I = {final[1.0]:.3g} at rho=1, {final[0.0]:.3g} for hard labels")
    early = _early_stopping_claim(records, rho=rho, significance=SIGNIFICANCE)
    ratio = _soft_ratio_claim(records, significance=SIGNIFICANCE)
    return {
        "D1": d1,
        "D2": _difficulty_claim(records, rho=rho, significance=SIGNIFICANCE),
        "D3": claim(early["holds"] and ratio["holds"], f"early stopping: {early['evidence']}. Soft ratio: {ratio['evidence']}"),
    }
