r"""Chapter 2 (C2): finite networks trained by gradient descent against their linearization, and the claim."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from kdwide import linearized
from kdwide.experiments import claim
from kdwide.kernels import analytic_ntk, empirical_ntk
from kdwide.networks import fully_connected_network
from kdwide.predict import converged_students, grid_points, grid_targets
from kdwide.stats import loglog_slope
from kdwide.training import (
    check_trainable_soft_ratio,
    network_logits,
    relative_weight_change,
    squared_norm,
    stable_learning_rate,
    train_student,
)
from kdwide.validation import check_positive_int

__all__ = ["claims", "linearization_records", "width_slopes"]


def _root_mean_square(values) -> float:
    return float(jnp.sqrt(jnp.mean(jnp.square(values))))


def linearization_records(
    *,
    x_train: jax.Array,
    x_test: jax.Array,
    z_teacher: jax.Array,
    y_hard: jax.Array,
    width: int,
    depth: int,
    activation: str,
    w_std: float,
    b_std: float,
    seed: int,
    rho_values: list[float],
    temperature_values: list[float],
    tolerance: float = 1e-6,
    max_steps: int = 100_000,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    r"""Train one finite network per (ρ, T) on the KD loss and compare it with its linearization (claim C2).

    The network of :func:`kdwide.networks.fully_connected_network` is initialized with
    ``jax.random.PRNGKey(seed)``; the same :math:`w_0` serves every (ρ, T). For each pair it is trained by
    :func:`kdwide.training.train_student` (step size :func:`kdwide.training.stable_learning_rate` of the empirical NTK at :math:`w_0`) until
    C1 holds to ``tolerance``, and compared on ``x_test`` with the converged linearized student
    :math:`f(x; w_0) + \Theta(x, X)\Theta^{-1}(z_{s,\mathrm{eff}} - f(X; w_0))` built from the empirical NTK
    :math:`\hat\Theta` at :math:`w_0` and from the analytic NTK :math:`\Theta` (same :math:`f(\cdot; w_0)`).

    Args:
      x_train: ``(N, d)``; x_test: ``(M, d)``; z_teacher, y_hard: ``(N,)`` teacher logits and labels.
      width, depth, activation, w_std, b_std: the network.
      seed: integer ≥ 0 for the initialization.
      rho_values, temperature_values: the (ρ, T) grid (every pair is trained); ρ in (0, 1].
      tolerance, max_steps, progress: passed to :func:`kdwide.training.train_student`.

    Returns:
      One record (dict) per (ρ, T) with keys ``width, depth, seed, rho, temperature, steps, converged,
      max_stationarity_residual, test_gap_empirical, test_gap_analytic`` (root-mean-square difference of
      test logits between the trained network and the two linearized predictions), ``test_change_scale``
      (RMS of the predicted test-logit change, for scale), ``train_gap`` (max |f(X; w) − z_eff|),
      ``relative_weight_change`` (:math:`\|\Delta w\|/\|w_0\|`), ``weight_change_norm`` (measured
      :math:`\|\Delta w\|`), ``predicted_weight_change_norm`` (:math:`\sqrt{\Delta z^\top\hat\Theta^{-1}\Delta z}`) and
      ``kernel_distance`` (:math:`\|\hat\Theta - \Theta\|_F / \|\Theta\|_F` on the training inputs).
    """
    check_positive_int(seed, "seed", minimum=0)
    check_trainable_soft_ratio(rho_values, "rho_values")  # before any kernel is computed
    architecture = dict(activation=activation, w_std=w_std, b_std=b_std)
    init_fn, apply_fn, _ = fully_connected_network(depth=depth, width=width, **architecture)
    x_train, x_test = jnp.asarray(x_train, jnp.float64), jnp.asarray(x_test, jnp.float64)
    _, initial = init_fn(jax.random.PRNGKey(int(seed)), x_train.shape)
    rho_grid, temperature_grid = grid_points(rho_values, temperature_values)
    targets = grid_targets(z_teacher, y_hard, rho=rho_grid, temperature=temperature_grid)
    initial_train, initial_test = network_logits(apply_fn, initial, x_train), network_logits(apply_fn, initial, x_test)
    empirical_train = empirical_ntk(apply_fn, initial, x_train, **architecture)
    analytic_train = analytic_ntk(x_train, depth=depth, **architecture)
    initial_values = dict(initial_train=initial_train, initial_test=initial_test)
    empirical = converged_students(
        linearized.factorize_kernel(empirical_train), targets,
        kernel_test_train=empirical_ntk(apply_fn, initial, x_test, x_train, **architecture), **initial_values,
    )
    analytic = converged_students(
        linearized.factorize_kernel(analytic_train), targets,
        kernel_test_train=analytic_ntk(x_test, x_train, depth=depth, **architecture), **initial_values,
    )
    predictions = {"empirical": empirical.test_outputs, "analytic": analytic.test_outputs}
    predicted_norms = empirical.weight_change_norms
    kernel_distance = float(jnp.linalg.norm(empirical_train - analytic_train) / jnp.linalg.norm(analytic_train))
    records = []
    for column, (rho, temperature) in enumerate(zip(rho_grid.tolist(), temperature_grid.tolist())):
        rate = stable_learning_rate(empirical_train, rho=rho, temperature=temperature)
        result = train_student(
            apply_fn, initial, x_train, z_teacher, y_hard, rho=rho, temperature=temperature, learning_rate=rate,
            tolerance=tolerance, max_steps=max_steps, progress=progress,
        )
        trained_test = network_logits(apply_fn, result.params, x_test)
        change = jax.tree_util.tree_map(lambda a, b: a - b, result.params, initial)
        records.append(dict(
            width=int(width), depth=int(depth), seed=int(seed), rho=rho, temperature=temperature,
            steps=result.steps, converged=result.converged,
            max_stationarity_residual=result.max_stationarity_residual,
            test_gap_empirical=_root_mean_square(trained_test - predictions["empirical"][:, column]),
            test_gap_analytic=_root_mean_square(trained_test - predictions["analytic"][:, column]),
            test_change_scale=_root_mean_square(predictions["empirical"][:, column] - initial_test),
            train_gap=float(jnp.max(jnp.abs(network_logits(apply_fn, result.params, x_train) - targets[:, column]))),
            relative_weight_change=relative_weight_change(result.params, initial),
            weight_change_norm=float(jnp.sqrt(squared_norm(change))),
            predicted_weight_change_norm=float(predicted_norms[column]),
            kernel_distance=kernel_distance,
        ))
    return records


SHRINKING_COLUMNS = ("test_gap_empirical", "test_gap_analytic", "relative_weight_change", "kernel_distance")
"""C2: the record columns that must shrink with width."""
MAX_SLOPE = -0.25
"""C2: every fitted log-log slope against width must lie below this (half the -1/2 of 1/sqrt(width) fluctuations),
so that noise over a few seeds cannot pass for a trend."""


def _mean_over_seeds(records: list[dict], column: str) -> dict[tuple[float, float], dict[int, float]]:
    groups: dict[tuple[float, float], dict[int, list[float]]] = {}
    for r in records:
        groups.setdefault((r["rho"], r["temperature"]), {}).setdefault(r["width"], []).append(r[column])
    return {key: {w: float(np.mean(v)) for w, v in sorted(by_width.items())} for key, by_width in groups.items()}


def width_slopes(records: list[dict]) -> dict[tuple[float, float], dict[str, float]]:
    """Log-log slope against width of each :data:`SHRINKING_COLUMNS` (mean over seeds), per (ρ, T).

    Returns:
      ``{(rho, temperature): {column: slope}}`` in the order the records first name each (ρ, T).
    """
    means = {column: _mean_over_seeds(records, column) for column in SHRINKING_COLUMNS}
    return {
        key: {c: loglog_slope(list(means[c][key]), list(means[c][key].values())) for c in SHRINKING_COLUMNS}
        for key in means[SHRINKING_COLUMNS[0]]
    }


def claims(records: list[dict]) -> dict[str, dict]:
    """C2 from :func:`linearization_records` over several widths: every training converged (C1 reached) and every
    :data:`SHRINKING_COLUMNS` shrinks with width (slope below :data:`MAX_SLOPE`) at every (ρ, T).

    Returns:
      ``{"C2": {"holds", "evidence"}}``.
    """
    converged = all(bool(r["converged"]) for r in records)
    slopes = width_slopes(records)
    shrinking = all(s < MAX_SLOPE for by_column in slopes.values() for s in by_column.values())
    widest = max(r["width"] for r in records)
    gap = max(by_width[widest] for by_width in _mean_over_seeds(records, "test_gap_empirical").values())
    largest = ", ".join(f"{c} {max(s[c] for s in slopes.values()):.3f}" for c in SHRINKING_COLUMNS)
    return {"C2": claim(
        converged and shrinking,
        f"all {len(records)} trainings converged: {converged}; largest (least negative) slope against width: "
        f"{largest}; test gap (empirical NTK) at width {widest}: {gap:.4g}",
    )}
