r"""The ρ×T landscape: Results 1–3 over a whole grid of soft ratio and temperature (chapter 6).

Every measurement here reuses one factorized kernel per task and repetition for the whole grid
(:mod:`kdwide.predict`). Records are tidy rows, one per (ρ, T, repetition); :func:`landscape_table` arranges their
means over repetitions (:func:`kdwide.stats.seed_means`) into the ρ×T matrix a heatmap shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from kdwide.architecture import Architecture
from kdwide.experiments import claim
from kdwide.metrics import transfer_risk
from kdwide.predict import solve_grid
from kdwide.seeds import Streams
from kdwide.stats import Estimate, paired_difference, seed_means, standard_error
from kdwide.tasks import perfect_teacher, sphere_inputs
from kdwide.validation import check_positive_int, check_positive_real

__all__ = ["risk_landscape_records", "landscape_table", "claims"]


def risk_landscape_records(
    *,
    repetitions: Sequence[Streams],
    architecture: Architecture,
    teacher_rms_logit: float,
    n_anchors: int,
    input_dim: int,
    n_train: int,
    n_test: int,
    rho_values: Sequence[float],
    temperature_values: Sequence[float],
) -> list[dict[str, Any]]:
    r"""Transfer risk :math:`R = P_x[z_t z_s < 0]` of the converged student for every (ρ, T), perfect teacher.

    Per repetition (a :class:`kdwide.seeds.Streams`): its perfect teacher
    ``perfect_teacher(repetition, kernel_fn=architecture.kernel, input_dim=input_dim, n_anchors=n_anchors,
    rms_logit=teacher_rms_logit)`` (:func:`kdwide.tasks.perfect_teacher`, a centred kernel expansion in the student's
    own random-feature space: a chapter that builds it so gets the same teacher), ``n_train`` training and ``n_test``
    test inputs uniform on :math:`S^{d-1}` (stream ``"inputs"``), the analytic NTK, and one
    :func:`kdwide.predict.solve_grid` for the whole grid. The student starts from :math:`f(\cdot; w_0) = 0`
    (infinite-width mean predictor, as in chapter 3).

    Returns:
      Records ``{"seed", "repetition", "rho", "temperature", "n_train", "transfer_risk", "weight_change_norm"}``.
    """
    check_positive_int(n_train, "n_train")
    check_positive_int(n_test, "n_test")
    check_positive_real(teacher_rms_logit, "teacher_rms_logit")
    kernel_fn = architecture.kernel
    records = []
    for repetition in repetitions:
        teacher = perfect_teacher(
            repetition, kernel_fn=kernel_fn, input_dim=input_dim, n_anchors=n_anchors, rms_logit=teacher_rms_logit
        )
        x = sphere_inputs(repetition.rng("inputs"), n_train + n_test, input_dim)
        z_teacher = teacher.logits(kernel_fn, x)
        y_hard = (z_teacher > 0).astype(int)
        solution = solve_grid(  # the two blocks it needs, not the (n_train + n_test)² kernel
            np.asarray(kernel_fn(x[:n_train])),
            np.asarray(kernel_fn(x[n_train:], x[:n_train])),
            z_teacher[:n_train],
            y_hard[:n_train],
            rho_values=rho_values,
            temperature_values=temperature_values,
        )
        for column, (rho, temperature) in enumerate(zip(solution.rho, solution.temperature)):
            records.append(
                {
                    **repetition.record(),
                    "rho": float(rho),
                    "temperature": float(temperature),
                    "n_train": n_train,
                    "transfer_risk": transfer_risk(z_teacher[n_train:], solution.test_outputs[:, column]),
                    "weight_change_norm": float(solution.weight_change_norms[column]),
                }
            )
    return records


def landscape_table(
    records: Sequence[Mapping[str, Any]], value: str, *, where: Mapping[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The means over repetitions of ``value`` (:func:`kdwide.stats.seed_means`) as a ρ×T matrix.

    Args:
      records: tidy rows with ``rho``, ``temperature`` and ``value`` (one per repetition and grid point).
      value: the field to average.
      where: keep only records whose fields equal these values (e.g. ``{"n_train": 256}``).

    Returns:
      ``(rho_values, temperature_values, mean, standard_error)``: sorted axes and ``(len(rho), len(T))``
      matrices (NaN where a cell has no record; standard error NaN for a single repetition).

    Example:
      >>> rows = [dict(rho=r, temperature=1.0, risk=0.1 * r + 0.01 * k) for r in (0.0, 1.0) for k in (0, 1)]
      >>> rho, temperature, mean, error = landscape_table(rows, "risk")
      >>> rho.tolist(), mean.round(3).tolist(), error.round(3).tolist()
      ([0.0, 1.0], [[0.005], [0.105]], [[0.005], [0.005]])
    """
    rows = [r for r in records if all(r.get(k) == v for k, v in (where or {}).items())]
    if not rows:
        raise ValueError(f"records: no record matches where={where!r}")
    if any(value not in r for r in rows):
        raise ValueError(f"value: field {value!r} is missing from some records")
    means = seed_means(rows, ["rho", "temperature"], [value])
    mean = means.pivot(index="rho", columns="temperature", values=f"{value}_mean").sort_index().sort_index(axis=1)
    error = means.pivot(index="rho", columns="temperature", values=f"{value}_standard_error").reindex_like(mean)
    return (mean.index.to_numpy(float), mean.columns.to_numpy(float), mean.to_numpy(float), error.to_numpy(float))


Z_SCORE = 2.0
"""R4, D3, I1: an estimate counts as positive (or negative) when it is ``Z_SCORE`` standard errors away from 0."""


def _paired_by_temperature(records, value: str, first: float, second: float) -> dict[float, Estimate]:
    """Per T, the paired difference over repetitions of ``value`` at ρ = ``first`` minus ρ = ``second``."""
    result = {}
    for temperature in sorted({r["temperature"] for r in records}):
        at = lambda rho: {(r["seed"], r["repetition"]): r[value] for r in records  # noqa: E731
                          if r["temperature"] == temperature and r["rho"] == rho}
        result[float(temperature)] = paired_difference(at(first), at(second))
    return result


def _repetition_spearman(records, *, n_train: int) -> dict[float, Estimate]:
    """Per T, the Spearman correlation of ρ and I(n) at ``n_train`` within each repetition, mean ± SE over them."""
    result = {}
    for temperature in sorted({r["temperature"] for r in records}):
        cell = [r for r in records if r["temperature"] == temperature and r["n_train"] == n_train]
        correlations = []
        for key in sorted({(r["seed"], r["repetition"]) for r in cell}):
            rows = sorted((r["rho"], r["data_inefficiency"]) for r in cell if (r["seed"], r["repetition"]) == key)
            values = [v for _, v in rows]
            # a constant column has no rank correlation (spearmanr would warn): it counts as 0, against the claim
            correlations.append(stats.spearmanr([rho for rho, _ in rows], values).statistic if np.ptp(values) > 0 else 0.0)
        result[float(temperature)] = Estimate(float(np.mean(correlations)), standard_error(correlations), len(correlations))
    return result


def _best_soft_ratio_gain(records) -> dict[float, tuple[float, Estimate]]:
    """Per T, the best ρ < 1 by mean student error and the paired gain error(ρ = 1) − error(best ρ < 1)."""
    rho, temperature, error, _ = landscape_table(records, "student_error")
    below = rho < 1.0
    result = {}
    for column, t in enumerate(temperature):
        best = float(rho[below][np.argmin(error[below, column])])
        gain = _paired_by_temperature([r for r in records if r["temperature"] == t], "student_error", 1.0, best)
        result[float(t)] = (best, gain[float(t)])
    return result


def claims(
    risk_records: Sequence[Mapping[str, Any]],
    inefficiency_records: Sequence[Mapping[str, Any]],
    imperfect_records: Sequence[Mapping[str, Any]],
    *,
    n_train: int,
) -> dict[str, dict[str, Any]]:
    """R4, D3 and I1 read off the landscape, each an estimate over repetitions with its standard error.

    - R4: at every T, the paired difference risk(ρ = 0) − risk(ρ = 1) is positive by :data:`Z_SCORE` standard errors.
    - D3: at every T, the Spearman correlation of ρ and the data inefficiency at ``n_train`` (within each repetition)
      is negative: its mean over repetitions is below 0 by :data:`Z_SCORE` standard errors (0 standard error when
      every repetition agrees).
    - I1: with the imperfect teacher, ρ = 1 is not the best choice: at no T is its mean error below that of the best
      ρ < 1 by :data:`Z_SCORE` standard errors, and at some T the best ρ < 1 beats it by :data:`Z_SCORE` standard
      errors (paired by repetition). The best ρ < 1 is chosen on the same data, which favours it slightly; at large
      T the optimum moves towards 1 (the soft term is weighted ρ/T) and can fall between the last grid point and 1,
      where the two tie.
    """
    risk_gain = _paired_by_temperature(risk_records, "transfer_risk", 0.0, 1.0)
    r4 = all(e.lower(Z_SCORE) > 0 for e in risk_gain.values())
    correlations = _repetition_spearman(inefficiency_records, n_train=n_train)
    d3 = all(e.mean + Z_SCORE * (0.0 if np.isnan(e.standard_error) else e.standard_error) < 0
             for e in correlations.values())
    gains = _best_soft_ratio_gain(imperfect_records)
    never_worse = all(gain.mean + Z_SCORE * gain.standard_error > 0 for _, gain in gains.values())
    significant = [t for t, (_, gain) in gains.items() if gain.lower(Z_SCORE) > 0]
    return {
        "R4": claim(r4, f"risk(rho=0) - risk(rho=1) per T (rule: > {Z_SCORE:g} SE): "
                        + ", ".join(f"T={t:g}: {e}" for t, e in risk_gain.items())),
        "D3": claim(d3, f"Spearman(rho, I) within repetitions at n={n_train}, mean ± SE per T (rule: < 0 by "
                        f"{Z_SCORE:g} SE): " + ", ".join(f"T={t:g}: {e}" for t, e in correlations.items())),
        "I1": claim(never_worse and bool(significant),
                    f"error(rho=1) - error(best rho<1) per T (rule: never below -{Z_SCORE:g} SE, above {Z_SCORE:g} SE "
                    f"somewhere): " + ", ".join(f"T={t:g}: best {b:g}, {g}" for t, (b, g) in gains.items())
                    + f"; significant at {len(significant)} of {len(gains)} T"),
    }
