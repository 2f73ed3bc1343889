"""Plotting in chapters: curves of means over repetitions, one helper instead of a loop per figure.

The tables come from :func:`kdwide.stats.seed_means` (columns ``{column}_mean`` and ``{column}_standard_error``).
Only matplotlib; the chapters set axis scales, ticks and titles themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["mean_curves", "mean_curve_panels"]

Label = str | Callable[[Any], str]
"""A curve's legend label: a format string (``"T = {:g}"``) or a function of the curve's value."""


def _label(label: Label, value: Any) -> str:
    return label(value) if callable(label) else label.format(value)


def mean_curves(
    means: pd.DataFrame,
    *,
    x: str,
    column: str,
    curve: str,
    label: Label = "{}",
    errorbars: bool = True,
    colormap: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One line per value of ``curve``: the mean of ``column`` against ``x`` (with standard-error bars).

    Args:
      means: a :func:`kdwide.stats.seed_means` table with the columns ``x``, ``curve``, ``{column}_mean`` (and
        ``{column}_standard_error`` for ``errorbars``).
      x, column, curve: the x axis, the measured column and the column whose values make separate curves (sorted).
      label: legend label of each curve.
      errorbars: draw ± one standard error.
      colormap: a matplotlib colormap name spread over the curves (default: the color cycle).
      ax: the axes to draw on (default: a new figure of 6 × 3.8 inches).

    Returns:
      The axes (legend, scales and titles are the caller's).

    Example:
      >>> import matplotlib
      >>> matplotlib.use("Agg")
      >>> means = pd.DataFrame({"n": [1, 2, 1, 2], "k": [1, 1, 2, 2], "risk_mean": [0.3, 0.2, 0.5, 0.4],
      ...                       "risk_standard_error": [0.01] * 4})
      >>> ax = mean_curves(means, x="n", column="risk", curve="k", label="k = {}")
      >>> ax.get_legend_handles_labels()[1]
      ['k = 1', 'k = 2']
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    values = sorted(means[curve].unique())
    cmap = plt.get_cmap(colormap) if colormap is not None else None
    for index, value in enumerate(values):
        rows = means[means[curve] == value].sort_values(x)
        style: dict[str, Any] = {"label": _label(label, value), "marker": "o", "ms": 3}
        if cmap is not None:
            style["color"] = cmap(index / max(len(values) - 1, 1))
        if errorbars:
            ax.errorbar(rows[x], rows[f"{column}_mean"], yerr=rows[f"{column}_standard_error"], capsize=2, **style)
        else:
            ax.plot(rows[x], rows[f"{column}_mean"], "-", **style)
    return ax


def mean_curve_panels(
    means: pd.DataFrame,
    *,
    panel: str,
    title: Label,
    xlabel: str,
    ylabel: str,
    panels: Sequence[Any] | None = None,
    **curves: Any,
) -> Figure:
    """One panel per value of ``panel`` (side by side, shared y axis), each with :func:`mean_curves` of its rows.

    Args:
      means: a :func:`kdwide.stats.seed_means` table with a ``panel`` column.
      panel: the column whose values make the panels; ``panels``: those values, in order (default: sorted).
      title: each panel's title; xlabel, ylabel: axis labels.
      curves: the keyword arguments of :func:`mean_curves` (``x``, ``column``, ``curve``, ``label``, ...).

    Returns:
      The figure; the first panel carries the y label and the legend.
    """
    panels = sorted(means[panel].unique()) if panels is None else list(panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, value in zip(axes[0], panels):
        mean_curves(means[means[panel] == value], ax=ax, **curves)
        ax.set(xlabel=xlabel, title=_label(title, value))
    axes[0, 0].set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=8)
    return fig
