"""Statistics over seeds and scales: the one place for means, spreads and standard errors over repetitions, and
log-log slopes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kdwide.validation import check_same_shape

__all__ = ["fitted_slopes", "loglog_slope", "seed_means", "standard_error"]


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
