"""The rho x T landscape: records, the averaged table and the claims read off it."""

import numpy as np
import pytest

from kdwide.experiments import landscape

SETTINGS = dict(n_test=400, input_dim=4, n_anchors=12, teacher_logit_scale=3.0, depth=2, activation="relu", w_std=1.4, b_std=0.1)


@pytest.mark.slow  # several seconds on 2 cores: left out of make test-fast
def test_risk_landscape_has_one_record_per_point_and_pure_soft_labels_ignore_temperature():
    records = landscape.risk_landscape_records(
        seeds=[0, 1], rho_values=[0.0, 0.5, 1.0], temperature_values=[1.0, 4.0], n_train=48, **SETTINGS
    )
    assert len(records) == 2 * 3 * 2
    rho, temperature, mean, error = landscape.landscape_table(records, "transfer_risk")
    np.testing.assert_array_equal(rho, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(temperature, [1.0, 4.0])
    assert mean[2, 0] == mean[2, 1] and mean[0, 0] == mean[0, 1]  # rho = 1 and rho = 0 do not depend on T
    assert np.all((0 <= mean) & (mean <= 1)) and np.all(error >= 0)


def _rows(field, values):
    return [
        {"seed": s, "rho": r, "temperature": t, "n_train": 8, field: values(r, t) + 0.001 * s}
        for s in (0, 1) for r in (0.0, 0.5, 1.0) for t in (1.0, 2.0)
    ]


def test_table_averages_seeds_and_filters():
    rows = _rows("x", lambda r, t: r * t)
    _, _, mean, error = landscape.landscape_table(rows, "x", where={"n_train": 8})
    assert mean[1, 1] == pytest.approx(1.0005) and error[1, 1] == pytest.approx(0.0005)
    with pytest.raises(ValueError, match="records"):
        landscape.landscape_table(rows, "x", where={"n_train": 9})
    with pytest.raises(ValueError, match="value"):
        landscape.landscape_table(rows, "missing")


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
