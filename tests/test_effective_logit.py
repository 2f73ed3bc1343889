"""The effective student logit (C1): accuracy against 1000-digit arithmetic, limits, derivatives, errors."""

import jax
import mpmath
import numpy as np
import pytest

import kdwide
from kdwide import effective_logit, effective_logit_rho_derivative, kd_loss_gradient, stationarity_residual


def reference_root(z_teacher: float, y_hard: int, rho: float, temperature: float) -> float:
    """Bisection on the *naive* equation of C1 in arbitrary precision: independent of our log form.

    Enough digits that sigma(z/T) is resolved for |z|/T up to ~3500 (roots reach |z| ~ 300 at T = 0.1).
    """
    with mpmath.workdps(int(140 / temperature) + 40):
        a, r, t = mpmath.mpf(z_teacher), mpmath.mpf(rho), mpmath.mpf(temperature)

        def g(z):
            return r / t * (1 / (1 + mpmath.exp(-z / t)) - 1 / (1 + mpmath.exp(-a / t))) + (1 - r) * (
                1 / (1 + mpmath.exp(-z)) - y_hard
            )

        lo, hi = (a, a + 1) if y_hard == 1 else (a - 1, a)
        step = mpmath.mpf(1)
        while g(hi) < 0:
            hi, step = hi + step, step * 2
        step = mpmath.mpf(1)
        while g(lo) > 0:
            lo, step = lo - step, step * 2
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if g(mid) > 0 else (mid, hi)
        return float((lo + hi) / 2)


def _cases():
    rng = np.random.default_rng(2020)
    n = 24
    random = np.stack(
        [rng.uniform(-30, 30, n), rng.integers(0, 2, n), 10 ** rng.uniform(-3, 0, n), 10 ** rng.uniform(-1, 1, n)], 1
    )
    # the corners of the accuracy box, where the naive form cancels to 0 and roots reach |z| ~ 300
    corners = np.array(
        [[s * 30, y, rho, t] for s in (-1, 1) for y in (0, 1) for rho in (1e-3, 0.999) for t in (0.1, 10.0)]
    )
    return np.concatenate([random, corners])


def test_accuracy_against_high_precision_reference():
    cases = _cases()
    z = np.asarray(effective_logit(cases[:, 0], cases[:, 1].astype(int), rho=cases[:, 2], temperature=cases[:, 3]))
    reference = np.array([reference_root(a, int(y), r, t) for a, y, r, t in cases])
    relative = np.abs(z - reference) / np.abs(reference)
    assert relative.max() <= 1e-6, cases[relative.argmax()]
    assert np.abs(z).max() > 250  # the box really reaches the hard region


def test_naive_float64_residual_would_be_useless_there():
    # sigma(300) - sigma(270) is exactly 0 in float64: a naive solver has nothing to work with.
    assert 1 / (1 + np.exp(-300.0)) - 1 / (1 + np.exp(-270.0)) == 0.0
    z = float(effective_logit(30.0, 1, rho=1e-3, temperature=0.1))
    assert abs(float(stationarity_residual(z, 30.0, 1, rho=1e-3, temperature=0.1))) < 1e-100


def test_limits_rho_one_and_zero():
    z_teacher = np.array([-3.0, -0.5, 0.0, 2.5, 17.0])
    y = np.array([1, 0, 1, 0, 1])
    np.testing.assert_array_equal(effective_logit(z_teacher, y, rho=1.0, temperature=2.0), z_teacher)
    np.testing.assert_array_equal(effective_logit(z_teacher, y, rho=0.0, temperature=2.0), np.where(y == 1, np.inf, -np.inf))


def test_root_lies_on_the_label_side_and_moves_monotonically_with_rho():
    rhos = np.linspace(0.05, 0.95, 10)
    z1 = np.asarray(effective_logit(1.0, 1, rho=rhos, temperature=3.0))
    z0 = np.asarray(effective_logit(1.0, 0, rho=rhos, temperature=3.0))
    assert np.all(z1 > 1.0) and np.all(z0 < 1.0)
    assert np.all(np.diff(z1) < 0) and np.all(np.diff(z0) > 0)


def test_broadcasting_over_a_rho_temperature_grid():
    z_teacher = np.array([-2.0, 0.3, 4.0])
    y = np.array([0, 1, 1])
    rho = np.array([0.2, 0.5, 1.0])[:, None, None]
    temperature = np.array([0.5, 4.0])[None, :, None]
    grid = np.asarray(effective_logit(z_teacher, y, rho=rho, temperature=temperature))
    assert grid.shape == (3, 2, 3)
    for i in range(3):
        for j in range(2):
            single = effective_logit(z_teacher, y, rho=float(rho[i, 0, 0]), temperature=float(temperature[0, j, 0]))
            np.testing.assert_allclose(grid[i, j], single, rtol=1e-13)


def test_loss_gradient_vanishes_at_the_root():
    rng = np.random.default_rng(0)
    z_teacher = rng.uniform(-4, 4, 200)
    y = rng.integers(0, 2, 200)
    z = effective_logit(z_teacher, y, rho=0.6, temperature=2.0)
    gradient = jax.grad(lambda s: kdwide.kd_loss(s, z_teacher, y, rho=0.6, temperature=2.0))(z)
    assert np.abs(gradient).max() < 1e-15
    assert np.abs(kd_loss_gradient(z, z_teacher, y, rho=0.6, temperature=2.0)).max() < 1e-14


@pytest.mark.parametrize("rho", [0.01, 0.3, 0.8, 0.999])
@pytest.mark.parametrize("y", [0, 1])
def test_rho_derivative_matches_finite_difference(rho, y):
    z_teacher, temperature, h = 1.7, 2.5, 1e-6
    exact = float(jax.grad(lambda r: effective_logit(z_teacher, y, rho=r, temperature=temperature))(rho))
    central = (
        float(effective_logit(z_teacher, y, rho=rho + h, temperature=temperature))
        - float(effective_logit(z_teacher, y, rho=rho - h, temperature=temperature))
    ) / (2 * h)
    assert exact == pytest.approx(central, rel=1e-6)
    assert float(effective_logit_rho_derivative(z_teacher, y, rho=rho, temperature=temperature)) == pytest.approx(exact, rel=1e-12)


def test_rho_derivative_at_one_is_the_one_sided_limit():
    z_teacher, temperature = -1.2, 1.5
    for y in (0, 1):
        at_one = float(effective_logit_rho_derivative(z_teacher, y, rho=1.0, temperature=temperature))
        h = 1e-7
        left = (z_teacher - float(effective_logit(z_teacher, y, rho=1 - h, temperature=temperature))) / h
        assert at_one == pytest.approx(left, rel=1e-5)
        sigma = 1 / (1 + np.exp(-z_teacher / temperature))
        closed = temperature**2 * (1 / (1 + np.exp(-z_teacher)) - y) / (sigma * (1 - sigma))
        assert at_one == pytest.approx(closed, rel=1e-12)


def test_teacher_and_temperature_derivatives_match_finite_differences():
    a, y, rho, t, h = 0.8, 1, 0.4, 3.0, 1e-6
    f = lambda a_, t_: float(effective_logit(a_, y, rho=rho, temperature=t_))  # noqa: E731
    grad_a = float(jax.grad(lambda v: effective_logit(v, y, rho=rho, temperature=t))(a))
    grad_t = float(jax.grad(lambda v: effective_logit(a, y, rho=rho, temperature=v))(t))
    assert grad_a == pytest.approx((f(a + h, t) - f(a - h, t)) / (2 * h), rel=1e-6)
    assert grad_t == pytest.approx((f(a, t + h) - f(a, t - h)) / (2 * h), rel=1e-6)


def test_works_under_jit_and_vmap():
    z_teacher = np.linspace(-5, 5, 11)
    y = (z_teacher > 0).astype(int)
    direct = effective_logit(z_teacher, y, rho=0.3, temperature=2.0)
    jitted = jax.jit(lambda a, b: effective_logit(a, b, rho=0.3, temperature=2.0))(z_teacher, y)
    mapped = jax.vmap(lambda a, b: effective_logit(a, b, rho=0.3, temperature=2.0))(z_teacher, y)
    np.testing.assert_allclose(jitted, direct, rtol=1e-14)
    np.testing.assert_allclose(mapped, direct, rtol=1e-14)


def test_gradient_in_teacher_at_rho_zero_is_zero_not_nan():
    grad = jax.grad(lambda a: effective_logit(a, 1, rho=0.0, temperature=1.0).sum())(np.array([0.5, 2.0]))
    np.testing.assert_array_equal(grad, [0.0, 0.0])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(rho=1.5, temperature=1.0), "rho"),
        (dict(rho=-0.1, temperature=1.0), "rho"),
        (dict(rho=float("nan"), temperature=1.0), "rho"),
        (dict(rho=0.5, temperature=0.0), "temperature"),
        (dict(rho=0.5, temperature=-2.0), "temperature"),
        (dict(rho=0.5, temperature=float("nan")), "temperature"),
    ],
)
def test_bad_hyperparameters_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        effective_logit(np.zeros(3), np.ones(3, int), **kwargs)


def test_bad_labels_values_and_shapes_name_the_parameter():
    with pytest.raises(ValueError, match="y_hard"):
        effective_logit(np.zeros(3), np.array([0, 1, 2]), rho=0.5, temperature=1.0)
    with pytest.raises(ValueError, match="z_teacher"):
        effective_logit(np.array([0.0, np.nan]), np.array([0, 1]), rho=0.5, temperature=1.0)
    with pytest.raises(ValueError, match="shapes"):
        effective_logit(np.zeros(3), np.ones(4, int), rho=0.5, temperature=1.0)


def _random_problems(rng, n, *, out_of_fast_domain=0):
    z_teacher, y = rng.uniform(-30, 30, n), rng.integers(0, 2, n)
    rho, temperature = 10 ** rng.uniform(-3, 0, n), 10 ** rng.uniform(-1, 1, n)
    rho[:50] = 1.0
    rho[50:100] = 0.0
    # Elements the fast path refuses (T below its domain) must reach the robust solver.
    temperature[100 : 100 + out_of_fast_domain] = 1e-4
    return z_teacher, y, rho, temperature


@pytest.mark.parametrize("out_of_fast_domain", [0, 20, 4000])
def test_concrete_path_equals_the_traced_path(out_of_fast_domain):
    # Large concrete inputs run the fast path outside jit and gather what it leaves for the robust
    # solver; under jit one traced computation runs, with the robust solver skipped (0 left), on a gathered
    # batch (20 left) or on every element (4000 left). All must give bit-identical roots.
    rng = np.random.default_rng(7)
    z_teacher, y, rho, temperature = _random_problems(rng, 5000, out_of_fast_domain=out_of_fast_domain)
    eager = np.asarray(effective_logit(z_teacher, y, rho=rho, temperature=temperature))
    traced = np.asarray(jax.jit(lambda *a: effective_logit(a[0], a[1], rho=a[2], temperature=a[3]))(z_teacher, y, rho, temperature))
    np.testing.assert_array_equal(eager, traced)
    residual = stationarity_residual(eager[100:], z_teacher[100:], y[100:], rho=rho[100:], temperature=temperature[100:])
    scale = rho[100:] / temperature[100:] + (1 - rho[100:])  # the residual's own size (T = 1e-4 makes it large)
    assert np.abs(residual / scale).max() < 1e-12


def test_fast_path_as_separate_programs_or_one_gives_the_same_roots():
    # The concrete path picks one of the two by jaxlib version (speed only); both must be usable on any version.
    from kdwide.effective_logit import _fast_path

    rng = np.random.default_rng(9)
    inputs = [jax.numpy.asarray(a) for a in _random_problems(rng, 6000, out_of_fast_domain=30)]
    separate, single = (np.asarray(_fast_path(inputs, separate_programs=flag)) for flag in (True, False))
    np.testing.assert_array_equal(np.isnan(separate), np.isnan(single))
    assert np.isnan(separate).sum() >= 30  # the refused elements are left for the robust solver
    finite = np.isfinite(separate)
    assert np.max(np.abs(separate[finite] - single[finite]) / np.maximum(np.abs(single[finite]), 1.0)) <= 1e-14


def test_fast_path_agrees_with_the_robust_solver_and_finishes_almost_every_root():
    # The fast path (float32 steps + one float64 third-order step) against the safeguarded float64 Newton
    # iteration alone, element by element: z to 1e-13 (relative to max(|z|, 1)), d = |z - z_teacher| to 1e-12
    # relative (the derivatives use d). In the benchmark's box it must finish >= 99% of the roots itself.
    from kdwide.effective_logit import _fast_solve, _prepare, _robust_solve

    rng = np.random.default_rng(8)
    n = 200_000
    boxes = {
        "benchmark": (rng.uniform(-30, 30, n), 10 ** rng.uniform(-3, 0, n), 10 ** rng.uniform(-1, 1, n)),
        "wide": (rng.uniform(-300, 300, n) * rng.random(n) ** 2, 10 ** rng.uniform(-12, 0, n), 10 ** rng.uniform(-3, 3, n)),
        "rho near 1": (rng.uniform(-30, 30, n), 1 - 10 ** rng.uniform(-12, -1, n), 10 ** rng.uniform(-2, 2, n)),
    }
    for name, (z_teacher, rho, temperature) in boxes.items():
        inputs = _prepare(z_teacher, rng.integers(0, 2, n), rho, temperature)
        z, d, accepted = (np.asarray(a) for a in jax.jit(_fast_solve)(*inputs))
        robust_z, robust_d = (np.asarray(a) for a in jax.jit(_robust_solve)(*inputs))
        assert accepted.mean() > 0.5, name
        z_error = np.abs(z - robust_z) / np.maximum(np.abs(robust_z), 1.0)
        d_error = np.abs(d - robust_d) / robust_d
        assert z_error[accepted].max() <= 1e-13, name
        assert d_error[accepted].max() <= 1e-12, name
        if name == "benchmark":
            assert accepted.mean() >= 0.99


def test_student_targets_are_effective_logits_with_the_hard_label_direction_at_rho_zero():
    z_teacher, y = np.array([-2.0, 0.5, 3.0]), np.array([0, 1, 0])
    rho = np.array([[0.0], [0.4], [1.0]])
    targets = kdwide.student_targets(z_teacher, y, rho=rho, temperature=2.0)
    np.testing.assert_array_equal(targets[0], [-1.0, 1.0, -1.0])
    np.testing.assert_array_equal(targets[1], effective_logit(z_teacher, y, rho=0.4, temperature=2.0))
    np.testing.assert_array_equal(targets[2], z_teacher)
    # the direction is the limit: at tiny rho the normalized targets approach 2y - 1
    tiny = kdwide.student_targets(np.zeros(3), y, rho=1e-12, temperature=1.0)
    np.testing.assert_allclose(tiny / np.abs(tiny).max(), 2.0 * y - 1.0, rtol=1e-12)
