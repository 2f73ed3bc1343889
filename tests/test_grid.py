"""The ρ×T grid path equals independent per-point solves."""

import numpy as np
import pytest

from kdwide import effective_logit
from kdwide.grid import effective_logit_grid, solve_grid
from kdwide.linearized import converged_outputs, factorize_kernel


def _problem(seed=0, n=40, m=15):
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((120, n + m)) / np.sqrt(120)
    kernel = features.T @ features
    z_teacher = rng.normal(size=n) * 3
    y = (z_teacher + rng.normal(size=n) > 0).astype(int)
    return kernel[:n, :n], kernel[n:, :n], z_teacher, y


def test_grid_columns_equal_independent_solves():
    k_train, k_test, z_teacher, y = _problem()
    rho_values, temperature_values = [0.0, 0.3, 1.0], [0.5, 2.0]
    solution = solve_grid(k_train, k_test, z_teacher, y, rho_values=rho_values, temperature_values=temperature_values)
    assert solution.test_outputs.shape == (15, 6) and solution.targets.shape == (40, 6)
    factorization = factorize_kernel(k_train)
    for column, (rho, temperature) in enumerate(zip(solution.rho, solution.temperature)):
        if rho == 0:
            target = 2.0 * y - 1.0
            assert solution.hard_label_limit[column]
        else:
            target = np.asarray(effective_logit(z_teacher, y, rho=rho, temperature=temperature))
        single = converged_outputs(factorization, k_test, np.zeros(40), np.zeros(15), target)
        np.testing.assert_allclose(solution.test_outputs[:, column], single, rtol=1e-10, atol=1e-12)
        expected_norm = np.sqrt(target @ np.linalg.solve(k_train, target))
        assert solution.weight_change_norms[column] == pytest.approx(expected_norm, rel=1e-8)


def test_grid_order_is_rho_slow_temperature_fast():
    _, _, z_teacher, y = _problem()
    _, rho, temperature = effective_logit_grid(z_teacher, y, rho_values=[0.2, 0.8], temperature_values=[1, 2, 4])
    np.testing.assert_array_equal(rho, [0.2, 0.2, 0.2, 0.8, 0.8, 0.8])
    np.testing.assert_array_equal(temperature, [1, 2, 4, 1, 2, 4])


def test_bad_grid_values_name_the_parameter():
    _, _, z_teacher, y = _problem()
    with pytest.raises(ValueError, match="rho_values"):
        effective_logit_grid(z_teacher, y, rho_values=[0.5, 1.5], temperature_values=[1.0])
    with pytest.raises(ValueError, match="temperature_values"):
        effective_logit_grid(z_teacher, y, rho_values=[0.5], temperature_values=[0.0])
