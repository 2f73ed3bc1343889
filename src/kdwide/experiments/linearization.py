r"""Chapter 2 (C2): finite networks trained by gradient descent against their linearization, and the claim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from kdwide import linearized
from kdwide.architecture import Architecture
from kdwide.experiments import claim
from kdwide.predict import converged_students, grid_points, grid_targets
from kdwide.seeds import Streams
from kdwide.stats import SlopeEstimate, loglog_fit, seed_means
from kdwide.tasks import perfect_teacher, sphere_inputs
from kdwide.training import (
    check_trainable_soft_ratio,
    network_logits,
    relative_weight_change,
    squared_norm,
    stable_learning_rate,
    train_student,
)
from kdwide.validation import check_positive_int

__all__ = ["LinearizationTask", "claims", "empirical_kernel_at_initialization", "initial_network",
           "linearization_records", "linearization_task", "width_slope_table", "width_slopes"]


def _root_mean_square(values) -> float:
    return float(jnp.sqrt(jnp.mean(jnp.square(values))))


class LinearizationTask(NamedTuple):
    """Chapter 2's task: inputs, the perfect teacher's logits and labels.

    Attributes:
      x_train: ``(N, d)``; x_test: ``(M, d)`` inputs on the sphere.
      z_teacher: ``(N,)`` teacher logits on ``x_train``; y_hard: ``(N,)`` labels ``1{z_t > 0}``.
      z_teacher_test: ``(M,)`` teacher logits on ``x_test``.
    """

    x_train: np.ndarray
    x_test: np.ndarray
    z_teacher: np.ndarray
    y_hard: np.ndarray
    z_teacher_test: np.ndarray


def linearization_task(
    streams: Streams, *, architecture: Architecture, n_train: int, n_test: int, input_dim: int, n_anchors: int,
    teacher_peak_logit: float,
) -> LinearizationTask:
    """The task of chapter 2: training and test inputs on the sphere (streams ``train``, ``test``) and the perfect
    teacher of ``streams`` (:func:`kdwide.tasks.perfect_teacher`, a centred kernel expansion of the student's NTK),
    scaled so that its largest |logit| over both sets is ``teacher_peak_logit``.

    Example:
      >>> from kdwide.seeds import Streams
      >>> architecture = Architecture(depth=1, activation="relu", w_std=1.4, b_std=0.1)
      >>> task = linearization_task(Streams(0), architecture=architecture, n_train=8, n_test=4, input_dim=3,
      ...                           n_anchors=6, teacher_peak_logit=3.0)
      >>> task.x_train.shape, round(float(max(abs(task.z_teacher).max(), abs(task.z_teacher_test).max())), 12)
      ((8, 3), 3.0)
    """
    x_train = sphere_inputs(streams.rng("train"), n_train, input_dim)
    x_test = sphere_inputs(streams.rng("test"), n_test, input_dim)
    teacher = perfect_teacher(
        streams, kernel_fn=architecture.kernel, input_dim=input_dim, n_anchors=n_anchors,
        peak_logit=teacher_peak_logit, calibration=np.concatenate([x_train, x_test]),
    )
    z_teacher = teacher.logits(architecture.kernel, x_train)
    return LinearizationTask(x_train, x_test, z_teacher, (z_teacher > 0).astype(np.int64),
                             teacher.logits(architecture.kernel, x_test))


def initial_network(
    streams: Streams, *, architecture: Architecture, width: int, input_dim: int
) -> tuple[Callable[..., Any], Any]:
    """The network of width ``width`` at its initialization :math:`w_0` (stream ``network`` of ``streams``).

    Returns:
      ``(apply_fn, params)``.
    """
    init_fn, apply_fn = architecture.network(width=width)
    return apply_fn, init_fn(streams.key("network"), (-1, check_positive_int(input_dim, "input_dim")))[1]


def empirical_kernel_at_initialization(
    streams: Streams, x: np.ndarray, *, architecture: Architecture, width: int
) -> jax.Array:
    r"""The empirical NTK :math:`\hat\Theta(x, x)` of :func:`initial_network` on ``x`` of shape ``(n, d)``; ``(n, n)``."""
    apply_fn, params = initial_network(streams, architecture=architecture, width=width, input_dim=np.shape(x)[1])
    return architecture.empirical_kernel(apply_fn, params, x)


def linearization_records(
    task: LinearizationTask,
    *,
    streams: Streams,
    architecture: Architecture,
    width: int,
    rho_values: list[float],
    temperature_values: list[float],
    tolerance: float = 1e-6,
    max_steps: int = 100_000,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    r"""Train one finite network per (ρ, T) on the KD loss and compare it with its linearization (claim C2).

    The network (:func:`initial_network`, stream ``network`` of ``streams``) starts from one :math:`w_0` for every
    (ρ, T). For each pair it is trained by :func:`kdwide.training.train_student` (step size
    :func:`kdwide.training.stable_learning_rate` of the empirical NTK at :math:`w_0`) until C1 holds to
    ``tolerance``, and compared on ``x_test`` with the converged linearized student
    :math:`f(x; w_0) + \Theta(x, X)\Theta^{-1}(z_{s,\mathrm{eff}} - f(X; w_0))` built from the empirical NTK
    :math:`\hat\Theta` at :math:`w_0` and from the analytic NTK :math:`\Theta` (same :math:`f(\cdot; w_0)`).

    Args:
      task: the inputs, teacher logits and labels (:func:`linearization_task`).
      streams: the repetition's :class:`kdwide.seeds.Streams` (the initialization).
      architecture: the network; width: its hidden width.
      rho_values, temperature_values: the (ρ, T) grid (every pair is trained); ρ in (0, 1].
      tolerance, max_steps, progress: passed to :func:`kdwide.training.train_student`.

    Returns:
      One record (dict) per (ρ, T) with keys ``width``, the architecture's fields, ``seed, repetition, rho,
      temperature, steps, converged, max_stationarity_residual, test_gap_empirical, test_gap_analytic``
      (root-mean-square difference of test logits between the trained network and the two linearized
      predictions), ``test_change_scale`` (RMS of the predicted test-logit change, for scale), ``train_gap``
      (max |f(X; w) − z_eff|), ``relative_weight_change`` (:math:`\|\Delta w\|/\|w_0\|`),
      ``weight_change_norm`` (measured :math:`\|\Delta w\|`), ``predicted_weight_change_norm``
      (:math:`\sqrt{\Delta z^\top\hat\Theta^{-1}\Delta z}`) and ``kernel_distance``
      (:math:`\|\hat\Theta - \Theta\|_F / \|\Theta\|_F` on the training inputs).
    """
    check_trainable_soft_ratio(rho_values, "rho_values")  # before any kernel is computed
    x_train, x_test = jnp.asarray(task.x_train, jnp.float64), jnp.asarray(task.x_test, jnp.float64)
    apply_fn, initial = initial_network(streams, architecture=architecture, width=width, input_dim=x_train.shape[1])
    rho_grid, temperature_grid = grid_points(rho_values, temperature_values)
    targets = grid_targets(task.z_teacher, task.y_hard, rho=rho_grid, temperature=temperature_grid)
    students, kernel_distance, empirical_train = _linearized_students(apply_fn, initial, x_train, x_test, targets, architecture)
    records = []
    for column, (rho, temperature) in enumerate(zip(rho_grid.tolist(), temperature_grid.tolist())):
        result = train_student(
            apply_fn, initial, x_train, task.z_teacher, task.y_hard, rho=rho, temperature=temperature,
            learning_rate=stable_learning_rate(empirical_train, rho=rho, temperature=temperature),
            tolerance=tolerance, max_steps=max_steps, progress=progress,
        )
        trained_test = network_logits(apply_fn, result.params, x_test)
        change = jax.tree_util.tree_map(lambda a, b: a - b, result.params, initial)
        records.append(dict(
            width=int(width), **architecture.record(), **streams.record(), rho=rho, temperature=temperature,
            steps=result.steps, converged=result.converged,
            max_stationarity_residual=result.max_stationarity_residual,
            test_gap_empirical=_root_mean_square(trained_test - students["empirical"].test_outputs[:, column]),
            test_gap_analytic=_root_mean_square(trained_test - students["analytic"].test_outputs[:, column]),
            test_change_scale=_root_mean_square(students["empirical"].test_outputs[:, column] - students["initial_test"]),
            train_gap=float(jnp.max(jnp.abs(network_logits(apply_fn, result.params, x_train) - targets[:, column]))),
            relative_weight_change=relative_weight_change(result.params, initial),
            weight_change_norm=float(jnp.sqrt(squared_norm(change))),
            predicted_weight_change_norm=float(students["empirical"].weight_change_norms[column]),
            kernel_distance=kernel_distance,
        ))
    return records


def _linearized_students(apply_fn, initial, x_train, x_test, targets, architecture: Architecture):
    """The converged linearized students of every target column, with the empirical and the analytic NTK."""
    initial_train, initial_test = network_logits(apply_fn, initial, x_train), network_logits(apply_fn, initial, x_test)
    empirical_train = architecture.empirical_kernel(apply_fn, initial, x_train)
    analytic_train = architecture.kernel(x_train)
    initial_values = dict(initial_train=initial_train, initial_test=initial_test)
    students = {
        "empirical": converged_students(
            linearized.factorize_kernel(empirical_train), targets,
            kernel_test_train=architecture.empirical_kernel(apply_fn, initial, x_test, x_train), **initial_values),
        "analytic": converged_students(
            linearized.factorize_kernel(analytic_train), targets,
            kernel_test_train=architecture.kernel(x_test, x_train), **initial_values),
        "initial_test": initial_test,
    }
    kernel_distance = float(jnp.linalg.norm(empirical_train - analytic_train) / jnp.linalg.norm(analytic_train))
    return students, kernel_distance, empirical_train


SHRINKING_COLUMNS = ("test_gap_empirical", "test_gap_analytic", "relative_weight_change", "kernel_distance")
"""C2: the record columns that must shrink with width."""
Z_SCORE = 2.0
"""C2: a slope counts as negative when ``slope + Z_SCORE * standard_error < 0`` (one-sided, about 97.7%): the
standard error of the log-log fit over every (repetition, width) point, so a trend must stand out from the spread
over repetitions (with one repetition per width it is the scatter about the line)."""


def width_slopes(records: list[dict]) -> dict[tuple[float, float], dict[str, SlopeEstimate]]:
    """Log-log fit against width of each :data:`SHRINKING_COLUMNS`, per (ρ, T), over every repetition's value.

    Returns:
      ``{(rho, temperature): {column: SlopeEstimate}}``, sorted by (ρ, T).
    """
    frame = pd.DataFrame(records)
    return {
        (float(rho), float(temperature)): {c: loglog_fit(group.width, group[c]) for c in SHRINKING_COLUMNS}
        for (rho, temperature), group in frame.groupby(["rho", "temperature"], sort=True)
    }


def width_slope_table(records: list[dict]) -> pd.DataFrame:
    """:func:`width_slopes` as a tidy table: one row per (ρ, T), a ``{column}`` slope and ``{column}_se`` per column.

    Example:
      >>> rows = [dict(rho=1.0, temperature=1.0, width=w, **{c: w ** -0.5 for c in SHRINKING_COLUMNS})
      ...         for w in (64, 256, 1024)]
      >>> round(float(width_slope_table(rows).kernel_distance.iloc[0]), 3)
      -0.5
    """
    rows = []
    for (rho, temperature), by_column in width_slopes(records).items():
        row = {"rho": rho, "temperature": temperature}
        for column, fit in by_column.items():
            row[column], row[f"{column}_se"] = fit.slope, fit.standard_error
        rows.append(row)
    return pd.DataFrame(rows)


def claims(records: list[dict]) -> dict[str, dict]:
    """C2 from :func:`linearization_records` over several widths: every training converged (C1 reached) and every
    :data:`SHRINKING_COLUMNS` shrinks with width at every (ρ, T): its log-log slope against width is negative with
    its upper :data:`Z_SCORE` bound below 0.

    Returns:
      ``{"C2": {"holds", "evidence"}}``: the evidence gives, per column, the largest slope ± its standard error.
    """
    converged = all(bool(r["converged"]) for r in records)
    slopes = width_slopes(records)
    shrinking = all(fit.upper(Z_SCORE) < 0 for by_column in slopes.values() for fit in by_column.values())
    widest = max(r["width"] for r in records)
    gaps = seed_means([r for r in records if r["width"] == widest], ["rho", "temperature"], ["test_gap_empirical"])
    largest = []
    for column in SHRINKING_COLUMNS:
        fit = max((by_column[column] for by_column in slopes.values()), key=lambda f: f.upper(Z_SCORE))
        largest.append(f"{column} {fit.slope:.3f} ± {fit.standard_error:.3f}")
    return {"C2": claim(
        converged and shrinking,
        f"all {len(records)} trainings converged: {converged}; least negative slope against width (± standard "
        f"error; rule: slope + {Z_SCORE:g} SE < 0): {'; '.join(largest)}; test gap (empirical NTK) at width "
        f"{widest}: {gaps.test_gap_empirical_mean.max():.4g}",
    )}
