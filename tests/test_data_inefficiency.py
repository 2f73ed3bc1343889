"""Data inefficiency (D1): closed form against full solves, the two limits of the acceptance tests, and input checks."""

import math

import numpy as np
import pytest

import kdwide  # noqa: F401  (float64)
from kdwide import data_inefficiency as di
from kdwide import linearized as lin
from kdwide.experiments.task_difficulty import circle_inputs, frequency_task, student_angles
from kdwide.kernels import analytic_ntk
from kdwide.predict import grid_targets
from kdwide.seeds import Streams
from kdwide.stats import standard_error
from kdwide.tasks import centred_coefficients, kernel_expansion_logits, sphere_inputs

KERNEL = {"depth": 2, "activation": "relu", "w_std": math.sqrt(2.0), "b_std": 0.1}


def _kernel(x1, x2=None):
    return np.asarray(analytic_ntk(x1, x2, **KERNEL))


def _setting(seed=0, n=30, m=7, k=3):
    x = sphere_inputs(np.random.default_rng(seed), n + m, 3)
    kernel = _kernel(x)
    delta = np.random.default_rng(seed).standard_normal((n + m, k))
    return kernel, delta, n


def _norm_by_full_solve(kernel, delta):
    return float(np.sqrt(delta @ np.linalg.solve(kernel, delta)))


def test_one_sample_closed_form_equals_two_full_solves():
    kernel, delta, n = _setting()
    factorization = lin.factorize_kernel(kernel[:n, :n])
    change = di.one_sample_weight_change(
        factorization, kernel[:n, n:], np.diag(kernel)[n:], delta[:n], delta[n:]
    )
    assert change.squared_norm_increment.shape == (7, 3)
    for j in range(7):
        rows = list(range(n)) + [n + j]
        for column in range(3):
            before = _norm_by_full_solve(kernel[:n, :n], delta[:n, column])
            after = _norm_by_full_solve(kernel[np.ix_(rows, rows)], delta[rows, column])
            assert change.squared_norm_increment[j, column] == pytest.approx(after**2 - before**2, rel=1e-7)
    # the posterior variance is the Schur complement, the residual the prediction error on the new point
    prediction = kernel[n:, :n] @ np.linalg.solve(kernel[:n, :n], delta[:n])
    np.testing.assert_allclose(change.residual, delta[n:] - prediction, rtol=1e-8, atol=1e-10)
    variance = np.diag(kernel)[n:] - np.einsum("ij,ji->i", kernel[n:, :n], np.linalg.solve(kernel[:n, :n], kernel[:n, n:]))
    np.testing.assert_allclose(change.posterior_variance, variance, rtol=1e-8)


def test_one_sample_closed_form_single_target_column():
    kernel, delta, n = _setting(seed=1, k=1)
    factorization = lin.factorize_kernel(kernel[:n, :n])
    change = di.one_sample_weight_change(factorization, kernel[:n, n:], np.diag(kernel)[n:], delta[:n, 0], delta[n:, 0])
    assert change.squared_norm_increment.shape == (7,)
    rows = list(range(n)) + [n]
    expected = _norm_by_full_solve(kernel[np.ix_(rows, rows)], delta[rows, 0]) ** 2 - _norm_by_full_solve(
        kernel[:n, :n], delta[:n, 0]
    ) ** 2
    assert change.squared_norm_increment[0] == pytest.approx(expected, rel=1e-7)


def test_nested_norms_equal_solves_on_each_prefix():
    kernel, delta, n = _setting(seed=2)
    factorization = lin.factorize_kernel(kernel)
    norms = di.nested_weight_change_norms(factorization, delta)
    for prefix in (1, 5, 17, kernel.shape[0]):
        block = lin.factorize_kernel(kernel[:prefix, :prefix])
        np.testing.assert_allclose(norms[prefix - 1], lin.weight_change_norm(block, delta[:prefix]), rtol=1e-9)


def test_data_inefficiency_equals_brute_force_definition():
    kernel, delta, n = _setting(seed=3, n=24, m=5, k=2)
    n_values = [3, 10, 24]
    values = di.data_inefficiency_from_kernel(kernel, delta, n_train=n, n_values=n_values)
    assert values.shape == (3, 2)
    for row, prefix in enumerate(n_values):
        for column in range(2):
            before = np.log(_norm_by_full_solve(kernel[:prefix, :prefix], delta[:prefix, column]))
            afters = []
            for j in range(5):
                rows = list(range(prefix)) + [n + j]
                afters.append(np.log(_norm_by_full_solve(kernel[np.ix_(rows, rows)], delta[rows, column])))
            assert values[row, column] == pytest.approx(prefix * np.mean(np.array(afters) - before), rel=1e-6)


def test_scale_free_and_constant_targets_give_the_same_inefficiency():
    kernel, delta, n = _setting(seed=5, k=1)
    base = di.data_inefficiency_from_kernel(kernel, delta, n_train=n, n_values=[5, 30])
    scaled = di.data_inefficiency_from_kernel(kernel, 1e6 * delta, n_train=n, n_values=[5, 30])
    np.testing.assert_allclose(scaled, base, rtol=1e-9)


def test_target_in_the_span_of_the_anchor_features_has_zero_inefficiency_once_anchors_are_seen():
    """Teacher = kernel expansion over m anchors, ρ = 1; the anchors come first in the training sequence."""
    m, extra, candidates = 12, 40, 200
    anchors = sphere_inputs(np.random.default_rng(10), m, 3)
    others = sphere_inputs(np.random.default_rng(11), extra + candidates, 3)
    x = np.concatenate([anchors, others])
    coefficients = centred_coefficients(np.random.default_rng(12), anchors)
    z_teacher = kernel_expansion_logits(_kernel, x, anchors, coefficients)
    targets = grid_targets(z_teacher, (z_teacher > 0).astype(int), rho=1.0, temperature=1.0)
    n_values = [4, 8, 11, 12, 20, 52]
    values = di.data_inefficiency_from_kernel(_kernel(x), targets, n_train=m + extra, n_values=n_values)[:, 0]
    before, after = values[:3], values[3:]
    assert np.all(before > 0.05), before
    assert np.all(np.abs(after) < 1e-6), after


def test_pure_soft_labels_of_an_eigenfunction_teacher_become_efficient_hard_labels_do_not():
    n_values = [16, 32, 64, 128]
    soft, hard = [], []
    for repetition in Streams(0).repetitions(4):
        angles = student_angles(repetition, 128 + 128)
        z_teacher, y_hard = frequency_task(angles, frequency=2, teacher_peak_logit=4.0)
        targets = grid_targets(z_teacher, y_hard, rho=[1.0, 0.0], temperature=1.0)
        values = di.data_inefficiency_from_kernel(_kernel(circle_inputs(angles)), targets, n_train=128, n_values=n_values)
        soft.append(values[:, 0])
        hard.append(values[:, 1])
    soft, hard = np.mean(soft, axis=0), np.mean(hard, axis=0)
    assert soft[-1] < 0.01 and np.all(np.diff(soft) < 0), soft
    assert np.all(hard > 0.2), hard  # ‖Δŵ_n‖ keeps growing like a power of n


def test_grid_targets_columns_limits_and_grid():
    z_teacher = np.array([-3.0, -0.5, 0.2, 4.0])
    y_hard = np.array([0, 0, 1, 1])
    targets = grid_targets(z_teacher, y_hard, rho=[0.0, 0.5, 1.0, 0.5], temperature=[1.0, 1.0, 1.0, 4.0])
    assert targets.shape == (4, 4)
    np.testing.assert_array_equal(targets[:, 0], [-1.0, -1.0, 1.0, 1.0])
    np.testing.assert_array_equal(targets[:, 2], z_teacher)
    expected = np.asarray(kdwide.effective_logit(z_teacher, y_hard, rho=0.5, temperature=4.0))
    np.testing.assert_allclose(targets[:, 3], expected, rtol=1e-12)
    # one teacher per column (e.g. stopping times), paired with the grid points
    two_teachers = np.stack([z_teacher, 2 * z_teacher], axis=1)
    paired = grid_targets(two_teachers, y_hard, rho=[1.0, 1.0], temperature=1.0)
    np.testing.assert_array_equal(paired, two_teachers)


def test_small_soft_ratio_approaches_the_hard_label_limit():
    angles = student_angles(Streams(3), 96)
    z_teacher, y_hard = frequency_task(angles, frequency=2, teacher_peak_logit=4.0)
    targets = grid_targets(z_teacher, y_hard, rho=[0.0, 1e-2, 1e-6, 1e-12], temperature=1.0)
    values = di.data_inefficiency_from_kernel(_kernel(circle_inputs(angles)), targets, n_train=64, n_values=[32, 64])
    gaps = np.abs(values[:, 1:] - values[:, :1])
    assert np.all(np.diff(gaps, axis=1) < 0), gaps


def test_standard_error_over_seeds():
    assert standard_error([1.0, 3.0]) == 1.0 and standard_error(np.array([[2.0], [4.0], [6.0]])) == pytest.approx(2 / np.sqrt(3))
    assert np.isnan(standard_error([2.0]))


def test_bad_inputs_raise_value_errors():
    kernel, delta, n = _setting(seed=6, k=1)
    delta = delta[:, 0]
    factorization = lin.factorize_kernel(kernel[:n, :n])
    # a candidate that duplicates a training input has zero posterior variance
    duplicate = kernel[:n, :1]
    with pytest.raises(ValueError, match="posterior variance"):
        di.one_sample_weight_change(factorization, duplicate, np.diag(kernel)[:1], delta[:n], delta[:1])
    with pytest.raises(ValueError, match="n_values"):
        di.data_inefficiency_from_kernel(kernel, delta, n_train=n, n_values=[n + 1])
    with pytest.raises(ValueError, match="n_values"):
        di.data_inefficiency_from_kernel(kernel, delta, n_train=n, n_values=[0])
    with pytest.raises(ValueError, match="zero"):
        di.data_inefficiency_from_kernel(kernel, np.zeros_like(delta), n_train=n, n_values=[3])
    with pytest.raises(ValueError, match="kernel_new_diagonal"):
        di.one_sample_weight_change(factorization, kernel[:n, n:], np.diag(kernel)[n:-1], delta[:n], delta[n:])
    with pytest.raises(ValueError, match="delta_new"):
        di.one_sample_weight_change(factorization, kernel[:n, n:], np.diag(kernel)[n:], delta[:n], delta[n:-1])
    with pytest.raises(ValueError, match="rho"):
        grid_targets([1.0], [1], rho=1.5, temperature=1.0)
    with pytest.raises(ValueError, match="temperature"):
        grid_targets([1.0], [1], rho=0.5, temperature=0.0)
    with pytest.raises(ValueError, match="broadcast"):
        grid_targets([1.0, 2.0], [1, 0], rho=[0.5, 0.6], temperature=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="n_train"):
        di.data_inefficiency_from_kernel(kernel, delta, n_train=kernel.shape[0], n_values=[3])
