"""Result 2's task family, early-stopped teachers, experiment records and claims D1-D3 (at a small scale)."""

import math

import numpy as np
import pytest

import kdwide  # noqa: F401  (float64)
from kdwide.architecture import Architecture
from kdwide.experiments import task_difficulty
from kdwide.seeds import Streams

ARCHITECTURE = Architecture(depth=2, activation="relu", w_std=math.sqrt(2.0), b_std=0.1)
SMALL = {"n_values": [16, 32, 64], "n_candidates": 64, "teacher_peak_logit": 4.0, "architecture": ARCHITECTURE}
REPETITIONS = Streams(0).repetitions(5)


def test_angles_come_from_named_streams_and_circle_inputs_are_unit_vectors():
    angles = task_difficulty.student_angles(REPETITIONS[0], 500)
    assert angles.shape == (500,) and np.all((angles >= 0) & (angles < 2 * math.pi))
    np.testing.assert_array_equal(angles, task_difficulty.student_angles(Streams(0).repetition(0), 500))
    np.testing.assert_array_equal(angles[:10], task_difficulty.student_angles(REPETITIONS[0], 10))  # prefixes agree
    assert not np.allclose(angles[:10], task_difficulty.teacher_angles(REPETITIONS[0], 10))
    assert not np.allclose(angles[:10], task_difficulty.student_angles(REPETITIONS[1], 10))
    x = task_difficulty.circle_inputs(angles)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-14)
    with pytest.raises(ValueError, match="streams"):
        task_difficulty.student_angles(0, 3)
    with pytest.raises(ValueError, match="rng"):
        task_difficulty.random_angles(0, 3)
    with pytest.raises(ValueError, match="angles"):
        task_difficulty.circle_inputs(np.zeros((2, 2)))


def test_frequency_task_is_a_perfect_balanced_teacher_on_an_eigenfunction():
    angles = task_difficulty.student_angles(REPETITIONS[1], 4000)
    z_teacher, y_hard = task_difficulty.frequency_task(angles, frequency=3, teacher_peak_logit=2.5)
    np.testing.assert_array_equal(y_hard, (z_teacher > 0).astype(int))
    assert abs(y_hard.mean() - 0.5) < 0.03
    assert np.max(np.abs(z_teacher)) == pytest.approx(2.5, rel=1e-3)
    around = y_hard[np.argsort(angles)]
    assert np.sum(around != np.roll(around, 1)) == 2 * 3  # 2k boundaries around the circle
    # cos(kθ) is an eigenfunction of the rotation-invariant kernel: Θ applied to it (on a uniform grid) is a multiple of it
    grid = np.arange(720) * 2 * math.pi / 720
    wave = np.cos(3 * grid)
    image = np.asarray(ARCHITECTURE.kernel(task_difficulty.circle_inputs(grid))) @ wave
    eigenvalue = image @ wave / (wave @ wave)
    assert eigenvalue > 0
    np.testing.assert_allclose(image, eigenvalue * wave, atol=1e-9 * np.abs(image).max())
    with pytest.raises(ValueError, match="frequency"):
        task_difficulty.frequency_task(angles, frequency=0, teacher_peak_logit=1.0)
    with pytest.raises(ValueError, match="teacher_peak_logit"):
        task_difficulty.frequency_task(angles, frequency=1, teacher_peak_logit=-1.0)


def _teacher_problem(n=40):
    angles = task_difficulty.student_angles(REPETITIONS[2], n)
    kernel = np.asarray(ARCHITECTURE.kernel(task_difficulty.circle_inputs(angles)))
    _, labels = task_difficulty.frequency_task(angles, frequency=2, teacher_peak_logit=1.0)
    return kernel, 2.0 * labels - 1.0


def test_gradient_flow_teacher_matches_euler_integration_and_its_limits():
    kernel, targets = _teacher_problem()
    n = kernel.shape[0]
    times = [0.5, 3.0, math.inf]
    teacher = task_difficulty.gradient_flow_teacher(kernel, targets, stopping_times=times)
    outputs = kernel @ teacher.coefficients
    # explicit Euler on dz/dt = -(Θ/N)(z - y) from z = 0
    z, step = np.zeros(n), 1e-4
    for stop, column in ((0.5, 0), (3.0, 1)):
        for _ in range(int(round((stop - (0.5 if column else 0.0)) / step))):
            z = z - step * kernel @ (z - targets) / n
        np.testing.assert_allclose(outputs[:, column], z, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(outputs[:, 2], targets, atol=1e-6)  # converged: interpolates the labels
    # the weight-change norm is sqrt(cᵀΘc) and grows with the stopping time (the teacher gets rougher)
    np.testing.assert_allclose(
        teacher.weight_change_norm, np.sqrt(np.einsum("ik,ij,jk->k", teacher.coefficients, kernel, teacher.coefficients)), rtol=1e-6
    )
    assert np.all(np.diff(teacher.weight_change_norm) > 0)
    with pytest.raises(ValueError, match="stopping_times"):
        task_difficulty.gradient_flow_teacher(kernel, targets, stopping_times=[0.0])
    with pytest.raises(ValueError, match="positive definite"):
        task_difficulty.gradient_flow_teacher(-kernel, targets, stopping_times=[1.0])


def test_closed_form_check_agrees_with_full_solves():
    check = task_difficulty.closed_form_check(
        REPETITIONS[0], architecture=ARCHITECTURE, frequency=2, teacher_peak_logit=4.0, rho=0.5, temperature=1.0
    )
    assert check.closed_form > 0 and check.relative_error < task_difficulty.CLOSED_FORM_TOLERANCE
    assert check.relative_error == pytest.approx(abs(check.closed_form - check.full_solves) / check.full_solves)
    again = task_difficulty.closed_form_check(
        Streams(0).repetition(0), architecture=ARCHITECTURE, frequency=2, teacher_peak_logit=4.0, rho=0.5, temperature=1.0
    )
    assert again == check  # the same streams, the same sample
    with pytest.raises(ValueError, match="rho"):
        task_difficulty.closed_form_check(
            REPETITIONS[0], architecture=ARCHITECTURE, frequency=2, teacher_peak_logit=4.0, rho=1.5, temperature=1.0
        )


def test_difficulty_records_and_claim_d2():
    records = task_difficulty.difficulty_records(
        repetitions=REPETITIONS, frequencies=[1, 2, 4], rho_values=[1.0, 0.0], temperature=1.0, **SMALL
    )
    assert len(records) == 5 * 3 * 2 * 3
    assert set(records[0]) == {
        "experiment", "teacher", "frequency", "rho", "temperature", "stopping_time", "n_train", "seed", "repetition",
        "data_inefficiency",
    }
    assert {(r["seed"], r["repetition"]) for r in records} == {(0, k) for k in range(5)}
    d2 = task_difficulty._difficulty_claim(records, rho=1.0)
    assert d2["holds"], d2["evidence"]
    correlations = task_difficulty.rank_correlations(records, knob="frequency", experiment="difficulty", rho=1.0)
    assert set(correlations) == {16, 32, 64} and all(s > 0.5 for s, _ in correlations.values())
    # the claim is computed from the records: reversing the knob reverses the verdict
    reversed_records = [{**r, "frequency": -r["frequency"]} for r in records]
    assert not task_difficulty._difficulty_claim(reversed_records, rho=1.0)["holds"]


def test_soft_ratio_records_and_claim_d3():
    records = task_difficulty.soft_ratio_records(
        repetitions=REPETITIONS[:3], frequency=2, rho_values=[0.0, 0.5, 0.9, 1.0], temperature_values=[1.0, 4.0], **SMALL
    )
    assert len(records) == 3 * 4 * 2 * 3
    claim = task_difficulty._soft_ratio_claim(records)
    assert claim["holds"], claim["evidence"]
    mean = lambda **w: np.mean([r["data_inefficiency"] for r in records if all(r[k] == v for k, v in w.items())])  # noqa: E731
    assert mean(rho=1.0, n_train=64) < 0.05 < mean(rho=0.0, n_train=64)
    # note 4: a higher temperature down-weights the soft term (ρ/T), so at ρ = 0.5 the student is less efficient
    assert mean(rho=0.5, temperature=4.0, n_train=64) > mean(rho=0.5, temperature=1.0, n_train=64)
    flipped = [{**r, "rho": 1.0 - r["rho"]} for r in records]
    assert not task_difficulty._soft_ratio_claim(flipped)["holds"]
    with pytest.raises(ValueError, match="architecture"):
        task_difficulty.soft_ratio_records(
            repetitions=REPETITIONS[:1], frequency=2, rho_values=[1.0], temperature_values=[1.0],
            **{**SMALL, "architecture": dict(depth=2)},
        )  # fmt: skip


def test_early_stopping_records_and_claim_d3():
    records = task_difficulty.early_stopping_records(
        repetitions=REPETITIONS[:3], frequency=2, stopping_times=[1.0, 100.0, math.inf], rho_values=[1.0, 0.5],
        temperature=1.0, n_teacher=64, **SMALL,
    )
    assert len(records) == 3 * 3 * 2 * 3
    converged = [r for r in records if r["teacher"] == "converged"]
    assert converged and all(r["stopping_time"] is None for r in converged)
    claim = task_difficulty._early_stopping_claim(records, rho=1.0)
    assert claim["holds"], claim["evidence"]
    norms = {r["stopping_time"]: r["teacher_weight_change_norm"] for r in records if r["repetition"] == 0}
    assert norms[1.0] < norms[100.0] < norms[None]
    reversed_records = [{**r, "stopping_time": -r["stopping_time"] if r["stopping_time"] else -1e9} for r in records]
    assert not task_difficulty._early_stopping_claim(reversed_records, rho=1.0)["holds"]


def test_rank_correlations_needs_matching_records_and_a_varying_knob():
    records = [{"experiment": "difficulty", "frequency": 1, "rho": 1.0, "n_train": 4, "data_inefficiency": 0.1}] * 3
    with pytest.raises(ValueError, match="no records"):
        task_difficulty.rank_correlations(records, knob="frequency", rho=0.5)
    with pytest.raises(ValueError, match="single value"):
        task_difficulty.rank_correlations(records, knob="frequency", rho=1.0)
    constant = [{**r, "frequency": k} for k, r in enumerate(records)]
    statistic, p_value = task_difficulty.rank_correlations(constant, knob="frequency")[4]
    assert math.isnan(statistic) and math.isnan(p_value)
    flat = [{**r, "experiment": "difficulty"} for r in constant]
    assert not task_difficulty._difficulty_claim(flat, rho=1.0)["holds"]
