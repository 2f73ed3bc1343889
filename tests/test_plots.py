"""Chapter plot helpers: curves of means over repetitions, and panels of them."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from kdwide.stats import seed_means  # noqa: E402
from kdwide_book import plots  # noqa: E402


def _means():
    rows = [dict(temperature=t, quality=q, rho=r, repetition=k, error=q * (1 - r) + 0.01 * k + t)
            for t in (1.0, 2.0) for q in (0.0, 0.5) for r in (1.0, 0.0, 0.5) for k in range(3)]  # fmt: skip
    return seed_means(rows, ["temperature", "quality", "rho"], ["error"])


def test_mean_curves_draw_each_curve_sorted_along_x_with_its_mean():
    means = _means()
    ax = plots.mean_curves(means[means.temperature == 1.0], x="rho", column="error", curve="quality",
                           label=lambda q: f"quality {q:g}", errorbars=False, colormap="viridis")  # fmt: skip
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["quality 0", "quality 0.5"]
    np.testing.assert_allclose(lines[1].get_xdata(), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(lines[1].get_ydata(), [1.51, 1.26, 1.01])  # 0.5 (1 - rho) + 0.01 + T
    assert lines[0].get_color() != lines[1].get_color()
    plt.close("all")


def test_panels_one_per_value_with_error_bars():
    figure = plots.mean_curve_panels(_means(), panel="temperature", title="T = {:g}", xlabel="rho", ylabel="error",
                                     x="rho", column="error", curve="quality", label="quality {:g}")  # fmt: skip
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == ["T = 1", "T = 2"]
    assert axes[0].get_legend() is not None and axes[0].get_ylabel() == "error"
    assert len(axes[1].containers) == 2  # one errorbar container per curve
    plt.close("all")
