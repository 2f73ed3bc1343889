"""Statistics over seeds and scales: the one place for means, spreads and standard errors over repetitions, and
log-log slopes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from kdwide.validation import check_finite, check_same_shape

__all__ = ["SeedAverage", "fitted_slopes", "loglog_slope", "seed_average", "seed_summary", "standard_error"]



class SeedAverage(NamedTuple):
    """Mean over seeds with its spread: ``mean``, ``std`` (ddof 1), ``standard_error``, ``count``."""

    mean: np.ndarray
    std: np.ndarray
    standard_error: np.ndarray
    count: int


def seed_average(values: np.ndarray, axis: int = 0) -> SeedAverage:
    """Mean over seeds (``axis``) with standard deviation and standard error (NaN for a single seed: unknown).

    Args:
      values: array with the seeds along ``axis`` (at least one seed); must be finite.

    Returns:
      :class:`SeedAverage` whose arrays have ``axis`` removed.

    Example:
      >>> seed_average(np.array([[1.0, 2.0], [3.0, 6.0]])).standard_error
      array([1., 2.])
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0 or values.shape[axis] < 1:
        raise ValueError("values must have at least one seed along axis")
    check_finite(values, "values")
    count = values.shape[axis]
    mean = values.mean(axis=axis)
    std = values.std(axis=axis, ddof=1) if count > 1 else np.full_like(mean, np.nan)
    return SeedAverage(mean, std, std / np.sqrt(count), int(count))


def standard_error(values) -> float:
    """Standard error of the mean of a 1-D sample (ddof 1); NaN for fewer than two values."""
    values = np.asarray(values, float).ravel()
    return float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (≥ 2 points, all values > 0)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    check_same_shape(x=x, y=y)
    if x.ndim != 1 or x.size < 2:
        raise ValueError("loglog_slope needs at least 2 points")
    if np.any(~np.isfinite(x)) or np.any(~np.isfinite(y)) or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("loglog_slope needs finite values > 0 (log scale)")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def seed_summary(records: Sequence[Mapping[str, Any]], key: str) -> dict[tuple[float, int], dict[str, float]]:
    """Mean, minimum and maximum of ``records[key]`` over seeds, per (ρ, n).

    Returns:
      ``{(rho, n_train): {"mean": ..., "min": ..., "max": ..., "count": ...}}``.
    """
    groups: dict[tuple[float, int], list[float]] = {}
    for record in records:
        groups.setdefault((float(record["rho"]), int(record["n_train"])), []).append(float(record[key]))
    return {
        group: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v)), "count": len(v)}
        for group, v in sorted(groups.items())
    }


def fitted_slopes(records: Sequence[Mapping[str, Any]], key: str) -> dict[float, tuple[float, int]]:
    """Log-log slope of the seed-mean of ``key`` against n, per ρ, over the n where that mean is > 0.

    Returns:
      ``{rho: (slope, number_of_n_used)}``; the slope is NaN where fewer than 2 points are > 0.
    """
    slopes = {}
    summary = seed_summary(records, key)
    for rho in sorted({rho for rho, _ in summary}):
        points = [(n, v["mean"]) for (r, n), v in summary.items() if r == rho and v["mean"] > 0]
        slope = loglog_slope(*zip(*points)) if len(points) >= 2 else float("nan")
        slopes[rho] = (slope, len(points))
    return slopes
