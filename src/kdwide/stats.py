"""Statistics over seeds and scales: the one place for means, spreads and standard errors over repetitions, and
log-log slopes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from kdwide.validation import check_same_shape

__all__ = ["Estimate", "SlopeEstimate", "paired_difference", "wilson_interval", "fitted_slopes", "loglog_fit", "loglog_slope", "ols_slope", "seed_means", "standard_error"]


def standard_error(values) -> float:
    """Standard error of the mean over seeds of a 1-D sample (ddof 1); NaN for fewer than two values (unknown).

    Example:
      >>> standard_error([1.0, 3.0]), standard_error([2.0])
      (1.0, nan)
    """
    values = np.asarray(values, float).ravel()
    return float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


class Estimate(NamedTuple):
    """A mean over repetitions with its standard error (NaN for a single repetition) and the count."""

    mean: float
    standard_error: float
    count: int

    def lower(self, z_score: float = 2.0) -> float:
        """``mean - z_score * standard_error``: the mean is above this with ~97.7% confidence at z = 2."""
        return self.mean - z_score * self.standard_error

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.standard_error:.2g} (n = {self.count})"


def paired_difference(first: Mapping[Any, float], second: Mapping[Any, float]) -> Estimate:
    """Mean and standard error over repetitions of ``first[k] - second[k]``, paired by key (e.g. the repetition).

    Raises ``ValueError`` unless both cover the same keys.

    Example:
      >>> print(paired_difference({0: 0.3, 1: 0.5}, {0: 0.1, 1: 0.2}))
      0.25 ± 0.05 (n = 2)
    """
    if set(first) != set(second) or not first:
        raise ValueError("paired_difference needs the same non-empty set of keys on both sides")
    differences = [first[key] - second[key] for key in sorted(first)]
    return Estimate(float(np.mean(differences)), standard_error(differences), len(differences))


class SlopeEstimate(NamedTuple):
    """A least-squares slope with its standard error (ordinary least squares; NaN error for 2 points)."""

    slope: float
    standard_error: float
    n_points: int

    def upper(self, z_score: float = 2.0) -> float:
        """``slope + z_score * standard_error``: the slope is below this with ~97.7% confidence at z = 2."""
        return self.slope + z_score * self.standard_error


def loglog_fit(x: Sequence[float], y: Sequence[float]) -> SlopeEstimate:
    """Least-squares slope of ``log y`` against ``log x`` and its standard error, over every point given (pass
    every repetition's value, not their means, so that the error includes the spread over repetitions).

    Args:
      x, y: 1-D, the same length ≥ 2, finite and > 0.

    Example:
      >>> fit = loglog_fit([1, 2, 4, 1, 2, 4], [1.0, 0.72, 0.5, 1.0, 0.7, 0.5])
      >>> round(fit.slope, 3), round(fit.standard_error, 3), fit.n_points
      (-0.5, 0.007, 6)
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    check_same_shape(x=x, y=y)
    if x.ndim != 1 or x.size < 2:
        raise ValueError("a log-log fit needs at least 2 points")
    if np.any(~np.isfinite(x)) or np.any(~np.isfinite(y)) or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a log-log fit needs finite values > 0 (log scale)")
    log_x, log_y = np.log(x), np.log(y)
    if np.ptp(log_x) == 0:
        raise ValueError("a log-log fit needs at least two different x")
    slope, intercept = np.polyfit(log_x, log_y, 1)
    residuals = log_y - (slope * log_x + intercept)
    spread = np.sum((log_x - log_x.mean()) ** 2)
    error = float(np.sqrt(np.sum(residuals**2) / (x.size - 2) / spread)) if x.size > 2 else float("nan")
    return SlopeEstimate(float(slope), error, int(x.size))


def ols_slope(x, y) -> float:
    """Least-squares slope of ``y`` against ``x`` (1-D, ≥ 2 points, ``x`` not constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2 or np.ptp(x) == 0:
        raise ValueError(f"x and y must be 1-D of the same length >= 2 with x not constant, got {x.shape}, {y.shape}")
    centred = x - x.mean()
    return float(centred @ (y - y.mean()) / (centred @ centred))


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (≥ 2 points, all values > 0): :func:`loglog_fit`'s slope."""
    return loglog_fit(x, y).slope


STATISTICS = ("mean", "standard_error", "min", "max")
"""The statistics :func:`seed_means` can report per group and column."""


def seed_means(
    records: Sequence[Mapping[str, Any]] | pd.DataFrame,
    keys: Sequence[str],
    columns: Sequence[str],
    *,
    statistics: Sequence[str] = ("mean", "standard_error"),
) -> pd.DataFrame:
    """Means (and spreads) over repetitions of ``columns``, per group of ``keys``: the one grouping of the book.

    Every experiment, claim and chapter that averages over seeds calls this function.

    Args:
      records: tidy rows (dicts or a DataFrame), one measurement per row.
      keys: the columns that define a group (e.g. ``["rho", "n_train"]``); rows of a group are repetitions.
      columns: the measured columns to summarize.
      statistics: any of :data:`STATISTICS` (standard errors: :func:`standard_error`, NaN for a single row).

    Returns:
      A DataFrame sorted by ``keys``, one row per group: the ``keys``, ``count`` (rows in the group) and, per column
      and statistic, ``{column}_{statistic}`` (``{column}_mean``, ``{column}_standard_error``, ...).

    Example:
      >>> rows = [dict(rho=1.0, risk=0.1), dict(rho=1.0, risk=0.3), dict(rho=0.0, risk=0.5)]
      >>> table = seed_means(rows, ["rho"], ["risk"])
      >>> table.round(4).to_dict("records")
      [{'rho': 0.0, 'count': 1, 'risk_mean': 0.5, 'risk_standard_error': nan}, {'rho': 1.0, 'count': 2, 'risk_mean': 0.2, 'risk_standard_error': 0.1}]
    """
    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    keys, columns = list(keys), list(columns)
    missing = [name for name in keys + columns if name not in frame.columns]
    if frame.empty or missing:
        raise ValueError(f"records: missing columns {missing}" if missing else "records must not be empty")
    unknown = [name for name in statistics if name not in STATISTICS]
    if unknown:
        raise ValueError(f"statistics must be among {STATISTICS}, got {unknown}")
    functions = {"mean": "mean", "min": "min", "max": "max", "standard_error": standard_error}
    grouped = frame.groupby(keys, sort=True)
    table = grouped.size().rename("count").to_frame()
    for column in columns:
        values = grouped[column].agg([functions[name] for name in statistics])
        values.columns = [f"{column}_{name}" for name in statistics]
        table = table.join(values)
    return table.reset_index()


def fitted_slopes(records: Sequence[Mapping[str, Any]], key: str) -> dict[float, tuple[float, int]]:
    """Log-log slope of the seed-mean of ``key`` against n, per ρ, over the n where that mean is > 0.

    Returns:
      ``{rho: (slope, number_of_n_used)}``; the slope is NaN where fewer than 2 points are > 0.
    """
    slopes = {}
    means = seed_means(records, ["rho", "n_train"], [key])
    for rho, group in means.groupby("rho"):
        positive = group[group[f"{key}_mean"] > 0]
        slope = loglog_slope(positive.n_train, positive[f"{key}_mean"]) if len(positive) >= 2 else float("nan")
        slopes[float(rho)] = (slope, len(positive))
    return slopes


def wilson_interval(successes: int, trials: int, *, z_score: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% at the default ``z_score``).

    Unlike the normal approximation it stays inside [0, 1] and is informative at 0 or ``trials`` successes, the
    usual case for a claim that holds at every seed (20 of 20 gives [0.839, 1]).

    Example:
      >>> tuple(round(v, 3) for v in wilson_interval(20, 20))
      (0.839, 1.0)
    """
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials!r}")
    if isinstance(successes, bool) or not isinstance(successes, (int, np.integer)) or not 0 <= successes <= trials:
        raise ValueError(f"successes must be an integer in [0, trials = {trials}], got {successes!r}")
    share, z2 = successes / trials, z_score**2
    centre = (share + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z_score * np.sqrt(share * (1 - share) / trials + z2 / (4 * trials**2)) / (1 + z2 / trials)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
