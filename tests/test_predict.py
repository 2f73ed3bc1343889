"""kdwide.predict: the one predictor (converged students from one solve) and the ρ×T grid on one factorization."""

import numpy as np
import pytest

from kdwide import effective_logit
from kdwide.linearized import factorize_kernel
from kdwide.predict import converged_students, grid_points, grid_targets, solve_grid


def _problem(seed=0, n=40, m=15):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((120, n + m)) / np.sqrt(120)
    kernel = features.T @ features
    z_teacher = rng.normal(size=n) * 3
    y = (z_teacher + rng.normal(size=n) > 0).astype(int)
    return kernel[:n, :n], kernel[n:, :n], z_teacher, y


def test_converged_students_reproduce_targets_on_training_points_with_an_initial_function():
    rng = np.random.default_rng(0)
    phi = rng.standard_normal((200, 30)) / np.sqrt(200)
    kernel = phi.T @ phi
    initial = rng.standard_normal(30)
    targets = rng.standard_normal((30, 4)) * 5
    students = converged_students(factorize_kernel(kernel), targets, kernel_test_train=kernel,
                                  initial_train=initial, initial_test=initial)
    np.testing.assert_allclose(students.test_outputs, targets, rtol=0, atol=1e-9)
    weights = np.linalg.lstsq(phi.T, targets - initial[:, None], rcond=None)[0]  # minimum-norm weight changes
    np.testing.assert_allclose(students.weight_change_norms, np.linalg.norm(weights, axis=0), rtol=1e-8)
    alone = converged_students(factorize_kernel(kernel), targets, initial_train=initial)
    assert alone.test_outputs is None
    np.testing.assert_array_equal(alone.weight_change_norms, students.weight_change_norms)
    with pytest.raises(ValueError, match="targets"):
        converged_students(factorize_kernel(kernel), targets[:5])
    with pytest.raises(ValueError, match="kernel_test_train"):
        converged_students(factorize_kernel(kernel), targets, kernel_test_train=kernel[:, :5])
    with pytest.raises(ValueError, match="initial_test"):
        converged_students(factorize_kernel(kernel), targets, kernel_test_train=kernel, initial_test=initial[:3])


def test_grid_columns_equal_independent_solves():
    k_train, k_test, z_teacher, y = _problem()
    rho_values, temperature_values = [0.0, 0.3, 1.0], [0.5, 2.0]
    solution = solve_grid(k_train, k_test, z_teacher, y, rho_values=rho_values, temperature_values=temperature_values)
    assert solution.test_outputs.shape == (15, 6) and solution.targets.shape == (40, 6)
    for column, (rho, temperature) in enumerate(zip(solution.rho, solution.temperature)):
        if rho == 0:
            target = 2.0 * y - 1.0
            assert solution.hard_label_limit[column]
        else:
            target = np.asarray(effective_logit(z_teacher, y, rho=rho, temperature=temperature))
        single = k_test @ np.linalg.solve(k_train, target)
        np.testing.assert_allclose(solution.test_outputs[:, column], single, rtol=1e-8, atol=1e-10)
        expected_norm = np.sqrt(target @ np.linalg.solve(k_train, target))
        assert solution.weight_change_norms[column] == pytest.approx(expected_norm, rel=1e-8)


def test_grid_order_is_rho_slow_temperature_fast():
    rho, temperature = grid_points([0.2, 0.8], [1, 2, 4])
    np.testing.assert_array_equal(rho, [0.2, 0.2, 0.2, 0.8, 0.8, 0.8])
    np.testing.assert_array_equal(temperature, [1, 2, 4, 1, 2, 4])


def test_bad_grid_values_name_the_parameter():
    _, _, z_teacher, y = _problem()
    with pytest.raises(ValueError, match="rho_values"):
        grid_points([0.5, 1.5], [1.0])
    with pytest.raises(ValueError, match="temperature_values"):
        grid_points([0.5], [0.0])
    with pytest.raises(ValueError, match="y_hard"):
        grid_targets(z_teacher, np.full(40, 2), rho=[0.5], temperature=1.0)
