r"""The ρ×T landscape: Results 1–3 over a whole grid of soft ratio and temperature (chapter 6).

Every measurement here reuses one factorized kernel per task and seed for the whole grid
(:mod:`kdwide.predict`). Records are tidy rows, one per (ρ, T, seed); :func:`landscape_table` averages them
into the ρ×T matrix a heatmap shows.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from kdwide.experiments import claim
from kdwide.kernels import analytic_ntk
from kdwide.metrics import best_soft_ratio, transfer_risk
from kdwide.predict import solve_grid
from kdwide.stats import standard_error
from kdwide.tasks import perfect_teacher, sphere_inputs, stream_seeds
from kdwide.validation import check_positive_int, check_positive_real

__all__ = ["risk_landscape_records", "landscape_table", "claims"]


def risk_landscape_records(
    *,
    seeds: Sequence[int],
    rho_values: Sequence[float],
    temperature_values: Sequence[float],
    n_train: int,
    n_test: int,
    input_dim: int,
    n_anchors: int,
    teacher_logit_scale: float,
    depth: int,
    activation: str,
    w_std: float,
    b_std: float,
) -> list[dict[str, Any]]:
    r"""Transfer risk :math:`R = P_x[z_t z_s < 0]` of the converged student for every (ρ, T), perfect teacher.

    Per seed: a perfect teacher (:func:`kdwide.tasks.perfect_teacher`, a centred kernel expansion in
    the student's own random-feature space), ``n_train`` training and ``n_test`` test inputs uniform on
    :math:`S^{d-1}`, the analytic NTK, and one :func:`kdwide.predict.solve_grid` for the whole grid. The
    student starts from :math:`f(\cdot; w_0) = 0` (infinite-width mean predictor, as in chapter 3).

    Returns:
      Records ``{"seed", "rho", "temperature", "n_train", "transfer_risk", "weight_change_norm"}``.
    """
    check_positive_int(n_train, "n_train")
    check_positive_int(n_test, "n_test")
    check_positive_real(teacher_logit_scale, "teacher_logit_scale")
    kernel_fn = functools.partial(analytic_ntk, depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    records = []
    for seed in seeds:
        teacher = perfect_teacher(
            seed, kernel_fn=kernel_fn, input_dim=input_dim, n_anchors=n_anchors, logit_scale=teacher_logit_scale
        )
        x = sphere_inputs(stream_seeds(seed, 4)[3], n_train + n_test, input_dim)  # streams 0-2: the teacher's
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
                    "seed": int(seed),
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
    """Average ``value`` over seeds into a ρ×T matrix.

    Args:
      records: tidy rows with ``rho``, ``temperature`` and ``value`` (and ``seed``).
      value: the field to average.
      where: keep only records whose fields equal these values (e.g. ``{"n_train": 256}``).

    Returns:
      ``(rho_values, temperature_values, mean, standard_error)``: sorted axes and ``(len(rho), len(T))``
      matrices (NaN where a cell has no record; standard error NaN for a single seed).
    """
    rows = [r for r in records if all(r.get(k) == v for k, v in (where or {}).items())]
    if not rows:
        raise ValueError(f"records: no record matches where={where!r}")
    if any(value not in r for r in rows):
        raise ValueError(f"value: field {value!r} is missing from some records")
    rho_values = np.array(sorted({float(r["rho"]) for r in rows}))
    temperature_values = np.array(sorted({float(r["temperature"]) for r in rows}))
    mean = np.full((rho_values.size, temperature_values.size), np.nan)
    error = np.full_like(mean, np.nan)
    for i, rho in enumerate(rho_values):
        for j, temperature in enumerate(temperature_values):
            cell = [float(r[value]) for r in rows if r["rho"] == rho and r["temperature"] == temperature]
            if cell:
                mean[i, j] = np.mean(cell)
                error[i, j] = standard_error(cell)
    return rho_values, temperature_values, mean, error


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
