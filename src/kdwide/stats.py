"""Statistics over seeds and scales: the one place for means, spreads and standard errors over repetitions, and
log-log slopes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kdwide.validation import check_same_shape

__all__ = ["fitted_slopes", "loglog_slope", "seed_summary", "standard_error"]


def standard_error(values) -> float:
    """Standard error of the mean over seeds of a 1-D sample (ddof 1); NaN for fewer than two values (unknown).

    Example:
      >>> standard_error([1.0, 3.0]), standard_error([2.0])
      (1.0, nan)
    """
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
