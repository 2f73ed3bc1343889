"""Claims C1, C2 and D1 decided by the experiments' claims(): each holds on good records and fails on bad ones."""

from __future__ import annotations

import numpy as np
import pytest

from kdwide import tasks
from kdwide.experiments import discontinuity, linearization
from kdwide.experiments import task_difficulty as difficulty

# --- C1 ----------------------------------------------------------------------------------------------------------


def test_c1_holds_on_the_slice_task_and_fails_without_jumps():
    _, z_teacher, y_hard = tasks.slice_task(401, teacher_peak_logit=6.0)
    records = discontinuity.discontinuity_records(z_teacher, y_hard, rho_values=[0.2, 1.0], temperature_values=[1.0, 4.0])
    result = discontinuity.claims(records)["C1"]
    assert result["holds"] and "smallest jump ratio for rho<1" in result["evidence"]
    smooth = [dict(r, jump_ratio=2.0) if r["rho"] < 1 else r for r in records]  # no jump above 3x the steps
    assert not discontinuity.claims(smooth)["C1"]["holds"]
    unsolved = [dict(r, max_stationarity_residual=1e-6) for r in records]
    assert not discontinuity.claims(unsolved)["C1"]["holds"]
    soft_only = [r for r in records if r["rho"] == 1.0]
    assert not discontinuity.claims(soft_only)["C1"]["holds"]  # no rho < 1: the jumps are not shown


# --- C2 ----------------------------------------------------------------------------------------------------------


def _linearization_records(slope: float, converged: bool = True, spread: float = 0.01) -> list[dict]:
    records = []
    for width in (64, 256, 1024):
        for seed in (0, 1):
            for rho in (1.0, 0.5):
                value = (1 + spread * seed) * width**slope
                records.append(dict(width=width, seed=seed, rho=rho, temperature=1.0, converged=converged,
                                    test_gap_empirical=value, test_gap_analytic=2 * value,
                                    relative_weight_change=value, kernel_distance=value))
    return records


def test_c2_holds_when_every_gap_shrinks_and_fails_otherwise():
    good = linearization.claims(_linearization_records(-0.5))["C2"]
    assert good["holds"] and "test_gap_empirical -0.500 ± 0.00" in good["evidence"], good["evidence"]
    fit = linearization.width_slopes(_linearization_records(-0.5))[(1.0, 1.0)]["kernel_distance"]
    assert fit.slope == pytest.approx(-0.5) and fit.standard_error < 0.01
    assert not linearization.claims(_linearization_records(0.0))["C2"]["holds"]  # no trend
    # a slope of -0.05 within a spread over repetitions of a factor 2 is noise, not a trend
    assert not linearization.claims(_linearization_records(-0.05, spread=1.0))["C2"]["holds"]
    assert not linearization.claims(_linearization_records(-0.5, converged=False))["C2"]["holds"]


# --- D1 ----------------------------------------------------------------------------------------------------------


def _difficulty_records(soft: float, hard: float) -> list[dict]:
    return [dict(experiment="difficulty", frequency=2, rho=rho, n_train=n, seed=seed, data_inefficiency=value)
            for n in (16, 256) for seed in range(3) for rho, value in ((1.0, soft), (0.0, hard))]


def _d1(records, error=1e-12):
    return difficulty.claims(records, rho=1.0, frequency=2, closed_form=difficulty.ClosedFormCheck(1.0, 1.0, error))["D1"]


@pytest.fixture
def no_d2_d3(monkeypatch):
    """D1 alone: the rank-correlation claims need records of other experiments."""
    stub = lambda *a, **k: {"holds": True, "evidence": ""}  # noqa: E731
    for name in ("_difficulty_claim", "_early_stopping_claim", "_soft_ratio_claim"):
        monkeypatch.setattr(difficulty, name, stub)


def test_d1_separates_soft_from_hard_labels(no_d2_d3):
    assert _d1(_difficulty_records(1e-3, 0.3))["holds"]
    assert not _d1(_difficulty_records(0.05, 0.3))["holds"]  # soft labels not efficient
    assert not _d1(_difficulty_records(1e-3, 0.05))["holds"]  # hard labels efficient too: no separation
    assert not _d1(_difficulty_records(1e-3, 0.3), error=1e-6)["holds"]  # the metric is computed wrong
    missing = [r for r in _difficulty_records(1e-3, 0.3) if r["rho"] == 1.0]
    result = _d1(missing)
    assert not result["holds"] and "needs rho = 0 and rho = 1" in result["evidence"]
    assert np.isclose(float(_d1(_difficulty_records(1e-3, 0.3))["evidence"].split("I = ")[1].split()[0]), 1e-3)
