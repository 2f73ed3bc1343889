"""The rho x T landscape: records, the averaged table and the claims read off it."""

import numpy as np
import pytest

import kdwide  # noqa: F401  (float64)
from kdwide.architecture import Architecture
from kdwide.experiments import landscape
from kdwide.linearized import factorize_kernel, weight_change_norm
from kdwide.seeds import Streams
from kdwide.tasks import perfect_teacher, sphere_inputs

ARCHITECTURE = Architecture(depth=2, activation="relu", w_std=1.4, b_std=0.1)
SETTINGS = dict(n_test=400, input_dim=4, n_anchors=12, teacher_rms_logit=3.0, architecture=ARCHITECTURE)


@pytest.mark.slow  # several seconds on 2 cores: left out of make test-fast
def test_risk_landscape_has_one_record_per_point_and_pure_soft_labels_ignore_temperature():
    repetitions = Streams(0).repetitions(2)
    records = landscape.risk_landscape_records(
        repetitions=repetitions, rho_values=[0.0, 0.5, 1.0], temperature_values=[1.0, 4.0], n_train=48, **SETTINGS
    )
    assert len(records) == 2 * 3 * 2
    assert {(r["seed"], r["repetition"]) for r in records} == {(0, 0), (0, 1)}
    rho, temperature, mean, error = landscape.landscape_table(records, "transfer_risk")
    np.testing.assert_array_equal(rho, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(temperature, [1.0, 4.0])
    assert mean[2, 0] == mean[2, 1] and mean[0, 0] == mean[0, 1]  # rho = 1 and rho = 0 do not depend on T
    assert np.all((0 <= mean) & (mean <= 1)) and np.all(error >= 0)
    # the teacher of a repetition is the one a chapter builds with perfect_teacher(repetition, ...): at rho = 1 the
    # student's weight change is that teacher's, fitted on the repetition's training inputs
    teacher = perfect_teacher(repetitions[1], kernel_fn=ARCHITECTURE.kernel, input_dim=4, n_anchors=12, rms_logit=3.0)
    x_train = sphere_inputs(repetitions[1].rng("inputs"), 48 + 400, 4)[:48]
    expected = float(weight_change_norm(factorize_kernel(ARCHITECTURE.kernel(x_train)), teacher.logits(ARCHITECTURE.kernel, x_train)))
    (soft,) = [r for r in records if r["repetition"] == 1 and r["rho"] == 1.0 and r["temperature"] == 1.0]
    assert soft["weight_change_norm"] == pytest.approx(expected, rel=1e-8)


def _rows(field, values):
    return [
        {"seed": 0, "repetition": k, "rho": r, "temperature": t, "n_train": 8, field: values(r, t) + 0.001 * k}
        for k in (0, 1) for r in (0.0, 0.5, 1.0) for t in (1.0, 2.0)
    ]


def test_table_averages_repetitions_and_filters():
    rows = _rows("x", lambda r, t: r * t)
    _, _, mean, error = landscape.landscape_table(rows, "x", where={"n_train": 8})
    assert mean[1, 1] == pytest.approx(1.0005) and error[1, 1] == pytest.approx(0.0005)
    with pytest.raises(ValueError, match="records"):
        landscape.landscape_table(rows, "x", where={"n_train": 9})
    with pytest.raises(ValueError, match="value"):
        landscape.landscape_table(rows, "missing")
    gap = [r for r in rows if not (r["rho"] == 0.5 and r["temperature"] == 2.0)]
    _, _, mean, _ = landscape.landscape_table(gap, "x")
    assert np.isnan(mean[1, 1]) and not np.isnan(mean[1, 0])  # a cell without records is NaN


def test_claims_follow_the_records():
    risk_good = _rows("transfer_risk", lambda r, t: 0.2 - 0.1 * r)
    inefficiency_good = _rows("data_inefficiency", lambda r, t: 1.0 - r)
    error_good = _rows("student_error", lambda r, t: (r - 0.5) ** 2)
    claims = landscape.claims(risk_good, inefficiency_good, error_good, n_train=8)
    assert all(c["holds"] for c in claims.values())
    claims = landscape.claims(
        _rows("transfer_risk", lambda r, t: 0.1 + 0.1 * r),
        _rows("data_inefficiency", lambda r, t: r),
        _rows("student_error", lambda r, t: 1.0 - r),
        n_train=8,
    )
    assert not any(c["holds"] for c in claims.values())


def test_i1_allows_a_tie_at_one_temperature_but_not_noise_alone():
    def error(spread_one, spread_two):
        # repetition k shifts rho = 1 by spread * (-1) ** k: a paired difference with that standard error
        return [
            {"seed": 0, "repetition": k, "rho": r, "temperature": t, "student_error":
             (0.3 if r < 1 else 0.3 + (0.05 if t == 1.0 else 0.0)) + (0.0 if r < 1 else (spread_one if t == 1.0 else spread_two) * (-1) ** k)
             + (0.01 if r == 0.0 else 0.0)}
            for k in range(4) for r in (0.0, 0.5, 1.0) for t in (1.0, 2.0)
        ]
    risk = _rows("transfer_risk", lambda r, t: 0.2 - 0.1 * r)
    inefficiency = _rows("data_inefficiency", lambda r, t: 1.0 - r)
    tie_at_two = landscape.claims(risk, inefficiency, error(0.001, 0.001), n_train=8)["I1"]
    assert tie_at_two["holds"] and "significant at 1 of 2 T" in tie_at_two["evidence"], tie_at_two["evidence"]
    noisy = [dict(r, student_error=0.3 + (0.0 if r["rho"] < 1 else 0.01 * (-1) ** r["repetition"])) for r in error(0, 0)]
    assert not landscape.claims(risk, inefficiency, noisy, n_train=8)["I1"]["holds"]  # no T where rho < 1 wins
