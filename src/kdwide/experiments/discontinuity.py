r"""Chapter 1 (C1): the effective logit along a 1-D slice, its jumps at label changes, and the claim."""

from __future__ import annotations

import numpy as np

from kdwide.effective_logit import effective_logit, stationarity_residual
from kdwide.experiments import claim
from kdwide.metrics import label_change_jumps
from kdwide.validation import check_soft_ratio, check_temperature

__all__ = ["claims", "discontinuity_records", "flip_teacher_logit"]


def flip_teacher_logit(*, rho, temperature) -> np.ndarray:
    r"""The teacher logit :math:`|z_t|` beyond which the effective logit takes the teacher's side against the label.

    Where teacher and label disagree (:math:`z_t > 0`, :math:`y_g = 0`, or the mirror image), the effective logit is
    0 at :math:`|z_t| = 2T\,\mathrm{artanh}\big(T(1-\rho)/\rho\big)`: closer to the boundary the hard label wins,
    further out the teacher does. For :math:`\rho \le T/(T+1)` the hard label wins at every :math:`z_t` and the
    flip point is ``inf``. (The inverse of the flip soft ratio :math:`\rho^* = T/(T+\tanh(|z_t|/2T))`.)

    Args:
      rho: soft ratios in [0, 1]; temperature: temperatures > 0 (broadcast together).

    Returns:
      float64 array of the broadcast shape, values in :math:`[0, \infty]`.

    Example:
      >>> float(flip_teacher_logit(rho=1.0, temperature=2.0)), float(flip_teacher_logit(rho=0.5, temperature=2.0))
      (0.0, inf)
    """
    check_soft_ratio(rho)
    check_temperature(temperature)
    rho, temperature = np.asarray(rho, float), np.asarray(temperature, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rho > 0, temperature * (1.0 - rho) / np.where(rho > 0, rho, 1.0), np.inf)
    return np.where(ratio < 1.0, 2.0 * temperature * np.arctanh(np.where(ratio < 1.0, ratio, 0.0)), np.inf)



def discontinuity_records(
    z_teacher: np.ndarray, y_hard: np.ndarray, *, rho_values, temperature_values
) -> list[dict]:
    r"""C1 on a 1-D slice: for every (ρ, T), the effective logits' jumps at the label changes.

    Args:
      z_teacher, y_hard: teacher logits and labels on an ordered grid, shape ``(m,)``.
      rho_values, temperature_values: sequences of soft ratios in (0, 1] and temperatures > 0.

    Returns:
      One record per (ρ, T): ``rho``, ``temperature``, ``smallest_jump`` (smallest jump at a label
      change), ``largest_other_step`` (largest step elsewhere), ``jump_ratio`` (their ratio) and
      ``max_stationarity_residual`` (max |dℓ/dẑ| at the effective logits, cancellation-free form).
    """
    records = []
    for rho in rho_values:
        for temperature in temperature_values:
            z = np.asarray(effective_logit(z_teacher, y_hard, rho=rho, temperature=temperature))
            _, jumps, other = label_change_jumps(z, y_hard)
            residual = stationarity_residual(z, z_teacher, y_hard, rho=rho, temperature=temperature)
            records.append(
                {
                    "rho": float(rho),
                    "temperature": float(temperature),
                    "smallest_jump": float(jumps.min()) if jumps.size else 0.0,
                    "largest_other_step": other,
                    "jump_ratio": float(jumps.min() / other) if jumps.size and other > 0 else float("inf"),
                    "max_stationarity_residual": float(np.abs(residual).max()),
                }
            )
    return records


STATIONARITY_TOLERANCE = 1e-12
"""C1: largest |dℓ/dẑ| at the effective logits, over every (ρ, T) and slice point."""
CONTINUITY_TOLERANCE = 1e-9
"""C1: at ρ = 1 the jump ratio must be 1 within this (the effective logit is the continuous teacher)."""
MIN_JUMP_RATIO = 3.0
"""C1: for ρ < 1 the smallest jump at a label change must exceed the largest step elsewhere this many times."""


def claims(records: list[dict]) -> dict[str, dict]:
    """C1 from :func:`discontinuity_records`: stationary roots, continuity at ρ = 1, jumps for every ρ < 1.

    Returns:
      ``{"C1": {"holds", "evidence"}}``; without a record at ρ < 1 the jumps cannot be shown and C1 does not hold.

    Example:
      >>> records = [dict(rho=1.0, jump_ratio=1.0, max_stationarity_residual=0.0),
      ...            dict(rho=0.5, jump_ratio=20.0, max_stationarity_residual=1e-16)]
      >>> claims(records)["C1"]["holds"]
      True
    """
    stationary = max(r["max_stationarity_residual"] for r in records) < STATIONARITY_TOLERANCE
    soft_continuous = all(abs(r["jump_ratio"] - 1) < CONTINUITY_TOLERANCE for r in records if r["rho"] == 1.0)
    ratios = [r["jump_ratio"] for r in records if r["rho"] < 1]
    hard_jumps = bool(ratios) and all(ratio > MIN_JUMP_RATIO for ratio in ratios)
    smallest = f"{min(ratios):.4g}" if ratios else "none (no rho < 1 in this run)"
    return {"C1": claim(
        stationary and soft_continuous and hard_jumps,
        f"stationary: {stationary}; rho=1 continuous: {soft_continuous}; smallest jump ratio for rho<1: {smallest}",
    )}
