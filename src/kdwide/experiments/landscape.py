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
from kdwide.metrics import best_soft_ratio, transfer_risk
from kdwide.predict import solve_grid
from kdwide.seeds import Streams
from kdwide.stats import seed_means
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


def claims(
    risk_records: Sequence[Mapping[str, Any]],
    inefficiency_records: Sequence[Mapping[str, Any]],
    imperfect_records: Sequence[Mapping[str, Any]],
    *,
    n_train: int,
) -> dict[str, dict[str, Any]]:
    """R4, D3 and I1 read off the landscape (each computed from the records, never typed in).

    - R4: pure soft labels (ρ = 1) reach a lower mean transfer risk than hard labels (ρ = 0) at every T.
    - D3: data inefficiency at ``n_train`` falls as ρ rises, at every T (Spearman ρ–I correlation < 0).
    - I1: with the imperfect teacher, the ρ of lowest mean student error is below 1 at every T.
    """
    rho, temperature, risk, _ = landscape_table(risk_records, "transfer_risk")
    soft, hard = risk[rho == 1.0][0], risk[rho == 0.0][0]
    r4 = bool(np.all(soft < hard))
    rho_i, _, inefficiency, _ = landscape_table(inefficiency_records, "data_inefficiency", where={"n_train": n_train})
    correlations = [
        # a constant column has no rank correlation (and spearmanr would warn): the claim then fails
        stats.spearmanr(rho_i, column).statistic if np.ptp(column) > 0 else np.nan
        for column in inefficiency.T
    ]
    d3 = bool(np.all(np.asarray(correlations) < 0))
    rho_e, temperature_e, error, _ = landscape_table(imperfect_records, "student_error")
    best = best_soft_ratio(rho_e, error)  # chapter 5's rule: ties go to the largest ρ
    i1 = bool(np.all(best < 1.0))
    return {
        "R4": claim(r4, "risk at rho=1 vs rho=0 per T: "
               + ", ".join(f"T={t:g}: {s:.4g} vs {h:.4g}" for t, s, h in zip(temperature, soft, hard))),
        "D3": claim(d3, f"Spearman(rho, I) per T at n={n_train}: " + ", ".join(f"{c:.3g}" for c in correlations)),
        "I1": claim(i1, "best rho per T: " + ", ".join(f"T={t:g}: {b:g}" for t, b in zip(temperature_e, best))),
    }
