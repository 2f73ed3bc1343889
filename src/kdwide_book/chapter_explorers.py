"""The chapters' interactive figures, one builder per figure, from the data the chapter computed.

Each builder returns a :class:`kdwide_book.explorers.Explorer`; a chapter displays it in one short cell. Builders
take the chapter's tables or arrays (nothing is recomputed here, except the effective logit, which is cheap) and
choose what the sliders move. Element ids are fixed per figure so that the stored outputs are stable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from kdwide.effective_logit import effective_logit
from kdwide.softmax_effective_logits import effective_logits
from kdwide.experiments.discontinuity import flip_teacher_logit
from kdwide.stats import seed_means
from kdwide_book.explorers import Explorer, Slider, explorer

__all__ = [
    "effective_logit_explorer",
    "slice_explorer",
    "kernel_scatter_explorer",
    "risk_explorer",
    "inefficiency_explorer",
    "soft_ratio_error_explorer",
    "landscape_explorer",
    "multiclass_logits_explorer",
]

_LINE = dict(type="scatter", mode="lines")
_POINTS = dict(type="scatter", mode="lines+markers", marker=dict(size=6))


def _nearest(values: Sequence[float], target: float) -> int:
    return int(np.argmin(np.abs(np.asarray(values, float) - target)))


def _rho_temperature_sliders(rho_values, temperature_values, rho: float, temperature: float) -> list[Slider]:
    """The ρ and T sliders, starting at the values nearest ``rho`` and ``temperature``."""
    return [Slider("ρ", list(rho_values), _nearest(rho_values, rho)),
            Slider("T", list(temperature_values), _nearest(temperature_values, temperature))]


def effective_logit_explorer(
    *, rho_values: Sequence[float], temperature_values: Sequence[float], rho: float, temperature: float,
    z_limit: float = 8.0, n_points: int = 161, element_id: str = "effective-logit-explorer",
) -> Explorer:
    """Chapter 1: the effective logit against the teacher's logit, sliders for ρ, T and the label.

    The flip point (where a disagreeing label stops winning, :func:`flip_teacher_logit`) is marked when it lies in
    the plotted range. Starts at the slider values nearest to ``rho`` and ``temperature``, label 0.
    """
    z_teacher = np.linspace(-z_limit, z_limit, n_points)

    def state(r: float, t: float, label: int) -> list[dict]:
        curve = np.asarray(effective_logit(z_teacher, np.full(n_points, label), rho=r, temperature=t))
        flip = float(flip_teacher_logit(rho=r, temperature=t)) * (1.0 if label == 0 else -1.0)
        shown = abs(flip) <= z_limit
        return [{}, {"y": curve}, {"x": [flip] if shown else [], "y": [0.0] if shown else []}]

    def state_layout(r: float, t: float, label: int) -> dict:
        flip = float(flip_teacher_logit(rho=r, temperature=t))
        text = ("no flip: the label wins for every teacher logit (ρ ≤ T/(T+1))" if not np.isfinite(flip)
                else f"flip point |z_t| = {flip:.3g}: beyond it the teacher wins against the label")
        return {"title.text": text}

    return explorer(
        element_id,
        [Slider("ρ", list(rho_values), _nearest(rho_values, rho)),
         Slider("T", list(temperature_values), _nearest(temperature_values, temperature)),
         Slider("label y_g", [0, 1])],
        state,
        traces=[dict(_LINE, x=z_teacher, y=z_teacher, name="teacher's logit (ρ = 1)", line=dict(color="grey", dash="dot")),
                dict(_LINE, x=z_teacher, name="effective logit", line=dict(color="#1f77b4", width=3)),
                dict(type="scatter", mode="markers", name="flip point", marker=dict(size=12, symbol="x", color="#d62728"))],
        state_layout=state_layout,
        caption="The effective logit against the teacher's logit. Move ρ down from 1 and the curve leaves the diagonal "
                "toward the label's side; the cross marks where a disagreeing teacher starts to win.",
        x_label="teacher logit z_t", y_label="effective logit z_s,eff",
        layout=dict(yaxis_range=[-20, 20]),
    )


def slice_explorer(
    x: np.ndarray, z_teacher: np.ndarray, y_hard: np.ndarray, *, rho_values: Sequence[float],
    temperature_values: Sequence[float], rho: float, temperature: float, element_id: str = "slice-explorer",
    caption: str | None = None,
) -> Explorer:
    """Chapter 1 (and the introduction): the student's output along a 1-D slice, with sliders for ρ and T.

    Args:
      x, z_teacher, y_hard: the slice ``(m,)``: ordered inputs, teacher logits, ground-truth labels.
      rho_values, temperature_values: slider values; rho, temperature: where the sliders start (nearest values).

    The curve is broken (not drawn across) at every label change, so the jump is visible as a gap.
    """
    x, z_teacher, y_hard = np.asarray(x, float), np.asarray(z_teacher, float), np.asarray(y_hard)
    breaks = np.flatnonzero(np.diff(y_hard)) + 1
    x_broken = np.insert(x, breaks, np.nan)

    def state(r: float, t: float) -> list[dict]:
        z = np.asarray(effective_logit(z_teacher, y_hard, rho=r, temperature=t))
        return [{}, {"y": np.insert(z, breaks, np.nan)}]

    def state_layout(r: float, t: float) -> dict:
        z = np.asarray(effective_logit(z_teacher, y_hard, rho=r, temperature=t))
        jump = np.abs(z[breaks] - z[breaks - 1]).min() if breaks.size else 0.0
        return {"title.text": f"jump of the student's output at the label change: {jump:.3g}"}

    return explorer(
        element_id,
        _rho_temperature_sliders(rho_values, temperature_values, rho, temperature),
        state,
        traces=[dict(_LINE, x=x, y=z_teacher, name="teacher z_t(x)", line=dict(color="black", width=2)),
                dict(_LINE, x=x_broken, name="student (effective logit)", line=dict(color="#2ca02c", width=3))],
        state_layout=state_layout,
        caption=caption or ("A wide student's output along a line through input space. The teacher is smooth; "
                            "with hard labels mixed in (ρ < 1) the student jumps where the true label changes."),
        x_label="input x", y_label="logit",
        layout=dict(yaxis_range=[-15, 15]),
    )


def kernel_scatter_explorer(
    analytic: np.ndarray, empirical_by_width: Mapping[int, np.ndarray], *, max_points: int = 2000,
    element_id: str = "kernel-scatter-explorer",
) -> Explorer:
    """Chapter 2: entries of the empirical NTK against the analytic NTK, a slider over the width.

    Args:
      analytic: ``(n, n)`` analytic NTK on the training inputs.
      empirical_by_width: width → ``(n, n)`` empirical NTK at initialization, same inputs.
      max_points: at most this many entries are drawn (evenly spaced in row-major order), to keep the page light;
        the distance printed for each width uses every entry.
    """
    analytic_all = np.asarray(analytic, float).ravel()
    shown = np.unique(np.linspace(0, analytic_all.size - 1, min(max_points, analytic_all.size)).astype(int))
    analytic = analytic_all[shown]
    widths = sorted(empirical_by_width)
    limits = [float(analytic_all.min()), float(analytic_all.max())]

    def state(width: int) -> list[dict]:
        return [{"y": np.asarray(empirical_by_width[width], float).ravel()[shown]}, {}]

    def state_layout(width: int) -> dict:
        empirical = np.asarray(empirical_by_width[width], float).ravel()
        distance = np.linalg.norm(empirical - analytic_all) / np.linalg.norm(analytic_all)
        return {"title.text": f"width {width}: relative distance {distance:.3g}"}

    return explorer(
        element_id, [Slider("width", widths, 0)], state,
        traces=[dict(type="scatter", mode="markers", x=analytic, name="kernel entries", marker=dict(size=4, opacity=0.6)),
                dict(_LINE, x=limits, y=limits, name="empirical = analytic", line=dict(color="black", width=1))],
        state_layout=state_layout,
        caption="Each dot is one entry of the training-set kernel: empirical NTK at initialization against the "
                "analytic (infinite-width) NTK. Widen the network and the cloud contracts onto the diagonal.",
        x_label="analytic Θ(x, x')", y_label="empirical Θ̂(x, x')",
            )


def _means(frame: pd.DataFrame, keys: list[str], columns: list[str], *, error: bool = False) -> pd.DataFrame:
    """:func:`kdwide.stats.seed_means` indexed by ``keys``: a column per measured column (its mean), or, with
    ``error`` and one column, ``mean`` and ``standard_error``."""
    table = seed_means(frame, keys, columns).set_index(keys)
    if error:
        (column,) = columns
        return table.rename(columns={f"{column}_mean": "mean", f"{column}_standard_error": "standard_error"})
    return table.rename(columns={f"{c}_mean": c for c in columns})


def risk_explorer(table: pd.DataFrame, *, n_test: int, element_id: str = "risk-explorer") -> Explorer:
    """Chapter 3: transfer risk and ᾱ_n against n, one curve per ρ (click the legend to hide one), a slider that
    shows the mean over repetitions or any single repetition.

    Args:
      table: records with columns ``rho``, ``n_train``, ``repetition``, ``transfer_risk``, ``alpha_n``.
      n_test: test points behind each risk; a risk of 0 is drawn at half a test point (log axis).
    """
    rho_values = sorted(table.rho.unique(), reverse=True)
    repetitions = sorted(table.repetition.unique())
    n_values = sorted(table.n_train.unique())
    floor = 0.5 / n_test
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    def state(which: str) -> list[dict]:
        rows = table if which == "mean" else table[table.repetition == int(which.split()[-1])]
        means = _means(rows, ["rho", "n_train"], ["transfer_risk", "alpha_n"])
        updates = []
        for rho in rho_values:
            values = means.xs(rho, level="rho").reindex(n_values)
            updates += [{"y": np.maximum(values.transfer_risk.to_numpy(), floor)}, {"y": values.alpha_n.to_numpy()}]
        return updates

    traces = []
    for k, rho in enumerate(rho_values):
        name = "hard (ρ → 0)" if rho == 0 else f"ρ = {rho:g}"
        style = dict(_POINTS, x=n_values, name=name, legendgroup=name, line=dict(color=colours[k % len(colours)]))
        traces += [dict(style), dict(style, xaxis="x2", yaxis="y2", showlegend=False)]
    return explorer(
        element_id, [Slider("repetitions", ["mean"] + [f"repetition {r}" for r in repetitions], 0)], state, traces=traces,
        caption="Transfer risk (left) and the student–oracle angle ᾱ_n (right) against the number of training "
                "samples, one curve per soft ratio; click a legend entry to hide or show a ρ. The slider moves from "
                "the mean over repetitions to single repetitions.",
        layout=dict(
            xaxis=dict(domain=[0.0, 0.44], type="log", title="training samples n"),
            yaxis=dict(type="log", title="transfer risk R_n"),
            xaxis2=dict(domain=[0.56, 1.0], type="log", title="training samples n", anchor="y2"),
            yaxis2=dict(type="log", title="ᾱ_n (rad)", anchor="x2")),
    )


def inefficiency_explorer(table: pd.DataFrame, *, rho: float, temperature: float,
                          element_id: str = "inefficiency-explorer") -> Explorer:
    """Chapter 4: the data inefficiency I(n) against n for any (ρ, T) of the grid, beside hard and pure soft labels.

    Args:
      table: records with columns ``rho``, ``temperature``, ``n_train``, ``data_inefficiency`` (one per seed).
      rho, temperature: where the sliders start (nearest grid values).
    """
    summary = _means(table, ["temperature", "rho", "n_train"], ["data_inefficiency"], error=True)
    rho_values, temperature_values = sorted(table.rho.unique()), sorted(table.temperature.unique())
    n_values = sorted(table.n_train.unique())

    def curve(t: float, r: float) -> dict:
        rows = summary.loc[(t, r)].reindex(n_values)
        return {"y": rows["mean"].to_numpy(), "error_y": {"type": "data", "array": rows["standard_error"].to_numpy(),
                                                          "visible": True}}

    def state(r: float, t: float) -> list[dict]:
        return [curve(t, r), {"y": summary.loc[(t, min(rho_values))].reindex(n_values)["mean"].to_numpy()},
                {"y": summary.loc[(t, max(rho_values))].reindex(n_values)["mean"].to_numpy()}]

    return explorer(
        element_id,
        [Slider("ρ", rho_values, _nearest(rho_values, rho)), Slider("T", temperature_values, _nearest(temperature_values, temperature))],
        state,
        traces=[dict(_POINTS, x=n_values, name="chosen (ρ, T), ± standard error", line=dict(color="#1f77b4", width=3)),
                dict(_LINE, x=n_values, name=f"ρ = {min(rho_values):g} (hard end of the grid)", line=dict(color="#d62728", dash="dash")),
                dict(_LINE, x=n_values, name=f"ρ = {max(rho_values):g} (soft end of the grid)", line=dict(color="#2ca02c", dash="dot"))],
        caption="Data inefficiency I(n) against n (mean over seeds) for the chosen soft ratio and temperature, between "
                "the two ends of the ρ grid. Raise ρ, or lower T, and the chosen curve moves toward the soft end.",
        x_label="training samples n", y_label="data inefficiency I(n)",
        layout=dict(xaxis_type="log", yaxis_type="log"),
    )


def soft_ratio_error_explorer(
    frame: pd.DataFrame, *, quality_name: str, element_id: str = "soft-ratio-error-explorer", caption: str | None = None,
) -> Explorer:
    """Chapter 5: the student's held-out error against ρ, one curve per teacher, a slider over T; stars mark each
    curve's best ρ (ties: the largest ρ, as in :func:`kdwide.metrics.best_soft_ratio`).

    Args:
      frame: records with columns ``temperature``, ``teacher_quality``, ``rho``, ``student_error`` (one per seed).
      quality_name: how the legend names a teacher, formatted with its ``teacher_quality``, e.g. ``"corruption {:g}"``.
    """
    from kdwide.metrics import best_soft_ratio

    means = _means(frame, ["temperature", "teacher_quality", "rho"], ["student_error"], error=True)
    temperatures, qualities = sorted(frame.temperature.unique()), sorted(frame.teacher_quality.unique())
    rho_values = sorted(frame.rho.unique())

    def state(t: float) -> list[dict]:
        updates, best_x, best_y = [], [], []
        for quality in qualities:
            rows = means.loc[(t, quality)].reindex(rho_values)
            updates.append({"y": rows["mean"].to_numpy(),
                            "error_y": {"type": "data", "array": rows["standard_error"].to_numpy(), "visible": True}})
            best = float(best_soft_ratio(np.asarray(rho_values), rows["mean"].to_numpy()))
            best_x.append(best)
            best_y.append(float(rows["mean"].loc[best]))
        return updates + [{"x": best_x, "y": best_y}]

    traces = [dict(_POINTS, x=rho_values, name=quality_name.format(q)) for q in qualities]
    traces.append(dict(type="scatter", mode="markers", name="best ρ of each curve",
                       marker=dict(size=14, symbol="star", color="black")))
    return explorer(
        element_id, [Slider("T", temperatures, 0)], state, traces=traces,
        caption=caption or ("Held-out error of the student against the soft ratio, one curve per teacher (mean over "
                            "seeds, ± standard error). Stars: each curve's best ρ. Move T to see the optimum shift."),
        x_label="soft ratio ρ", y_label="student error (held out)",
    )


def landscape_explorer(
    rho_axis: Sequence[float], temperature_axis: Sequence[float], maps: Mapping[str, np.ndarray], *,
    element_id: str = "landscape-explorer",
) -> Explorer:
    """Chapter 6: the ρ×T maps as a heat map with hover values, a slider over the maps, and the lowest value of each
    temperature column marked (ties: the largest ρ).

    Args:
      rho_axis: ``(R,)``; temperature_axis: ``(T,)``; maps: name → ``(R, T)`` values (lower is better).
    """
    from kdwide.metrics import best_soft_ratio

    rho_labels = [f"{r:g}" for r in rho_axis]
    temperature_labels = [f"{t:g}" for t in temperature_axis]
    names = list(maps)

    def state(name: str) -> list[dict]:
        values = np.asarray(maps[name], float)
        best = best_soft_ratio(np.asarray(rho_axis, float), values)
        return [{"z": values}, {"x": temperature_labels, "y": [f"{b:g}" for b in best]}]

    def state_layout(name: str) -> dict:
        values = np.asarray(maps[name], float)
        row, column = np.unravel_index(np.argmin(values), values.shape)
        return {"title.text": f"{name}: lowest {values[row, column]:.4g} at ρ = {rho_labels[row]}, "
                                       f"T = {temperature_labels[column]}"}

    return explorer(
        element_id, [Slider("map", names, 0)], state, state_layout=state_layout,
        traces=[dict(type="heatmap", x=temperature_labels, y=rho_labels, colorscale="Viridis", name="",
                     hovertemplate="ρ = %{y}<br>T = %{x}<br>value = %{z:.4g}<extra></extra>"),
                dict(type="scatter", mode="markers", name="best ρ per T",
                     marker=dict(size=16, symbol="star", color="white", line=dict(color="black", width=1)),
                     hovertemplate="best ρ = %{y} at T = %{x}<extra></extra>")],
        caption="The ρ×T landscapes (hover a cell for its value); the slider switches the map. Stars mark the best "
                "ρ at each temperature.",
        x_label="temperature T", y_label="soft ratio ρ",
        layout=dict(xaxis_type="category", yaxis_type="category", legend=dict(orientation="h", y=1.08)),
    )


def multiclass_logits_explorer(
    teacher_logits: Sequence[float], label: int, *, rho_values: Sequence[float], temperature_values: Sequence[float],
    rho: float, temperature: float, element_id: str = "multiclass-logits-explorer",
) -> Explorer:
    """Chapter 7: the K effective logits of one teacher vector as bars beside the teacher's (centred) logits, sliders
    for ρ and T. Soft ratios must lie in (0, 1] (ρ = 0 is the limit ±∞); starts at the values nearest ``rho`` and
    ``temperature``. The title gives the true class's smallest margin and the softmax probability of the label.
    """
    teacher = np.asarray(teacher_logits, float)
    classes = [str(k) for k in range(teacher.size)]
    if min(rho_values) <= 0:
        raise ValueError(f"rho_values must lie in (0, 1] (rho = 0 is the limit +-inf), got {list(rho_values)}")
    grid = [(r, t) for r in rho_values for t in temperature_values]
    rows = np.asarray(effective_logits(np.tile(teacher, (len(grid), 1)), np.full(len(grid), label),
                                       rho=np.array([r for r, _ in grid]), temperature=np.array([t for _, t in grid])))
    solved = {point: row for point, row in zip(grid, rows)}

    def state(r: float, t: float) -> list[dict]:
        return [{}, {"y": solved[(r, t)]}]

    def state_layout(r: float, t: float) -> dict:
        z = solved[(r, t)]
        margin = z[label] - np.max(np.delete(z, label))
        probability = float(np.exp(z[label] - np.logaddexp.reduce(z)))
        return {"title.text": f"smallest margin of class {label}: {margin:.3g}; softmax probability {probability:.3g}"}

    return explorer(
        element_id,
        _rho_temperature_sliders(rho_values, temperature_values, rho, temperature),
        state,
        traces=[dict(type="bar", x=classes, y=teacher - teacher.mean(), name="teacher (centred, ρ = 1)",
                     marker=dict(color="lightgrey")),
                dict(type="bar", x=classes, name="effective logits", marker=dict(color="#1f77b4"))],
        state_layout=state_layout,
        caption=f"The effective logits of one training point with label {label} (blue) beside its teacher's centred "
                "logits (grey). Lower ρ and the label's bar rises by about log(1/ρ) above the rest, whose order "
                "stays the teacher's.",
        x_label="class k", y_label="logit (row mean 0)",
        layout=dict(barmode="group"),
    )
