"""K-class effective logits (kdwide.effective_logits): stationarity, K = 2 reduction, limits, reference, errors."""

import jax
import numpy as np
import pytest
from scipy.optimize import root

import kdwide  # noqa: F401  (float64)
from kdwide import effective_logit, effective_logits, effective_logits_rho_derivative, softmax_stationarity_residual


def _random_inputs(seed, n, n_classes, *, logit_range=50.0, rho_range=(1e-12, 1.0), temperature_range=(0.05, 20.0)):
    rng = np.random.default_rng(seed)
    teacher = rng.uniform(-logit_range, logit_range, (n, n_classes))
    labels = rng.integers(0, n_classes, n)
    rho = 10 ** rng.uniform(np.log10(rho_range[0]), np.log10(rho_range[1]), n)
    temperature = 10 ** rng.uniform(np.log10(temperature_range[0]), np.log10(temperature_range[1]), n)
    return teacher, labels, rho, temperature


def _relative_residual(z, teacher, labels, rho, temperature):
    """|F_k| / (ρ q_k / T) on the classes k ≠ y, where q_k does not underflow (the terms F_k balances)."""
    residual = np.asarray(softmax_stationarity_residual(z, teacher, labels, rho=rho, temperature=temperature))
    q = np.asarray(jax.nn.softmax(teacher / temperature[:, None], axis=-1))
    scale = rho[:, None] / temperature[:, None] * q
    usable = (np.arange(teacher.shape[1]) != labels[:, None]) & (q > 1e-250)
    return np.where(usable, np.abs(residual) / np.where(usable, scale, 1.0), 0.0)


@pytest.mark.parametrize("n_classes", [2, 3, 5, 10, 20])
def test_stationarity_at_machine_precision_on_wide_ranges(n_classes):
    teacher, labels, rho, temperature = _random_inputs(n_classes, 3000, n_classes)
    z = np.asarray(effective_logits(teacher, labels, rho=rho, temperature=temperature))
    assert z.shape == teacher.shape and z.dtype == np.float64 and np.all(np.isfinite(z))
    assert _relative_residual(z, teacher, labels, rho, temperature).max() < 1e-11
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-12 * np.abs(z).max())


# Rows that an earlier solver left unconverged (relative residuals 54 and 0.63): a softmax so sharp (T ≈ 0.16,
# logits ±45) that the true class's probability is ~1e-150, and an S-shaped E(s) (T ≈ 18, ρ ≈ 4e-6) on which an
# unguarded Newton step bounced between the ends of its bracket; the others from a randomized search of 4.6e5 rows
# (K = 2..20, logits ±50 and ±5, ρ in [1e-12, 1 − 1e-12], T in [0.01, 100]).
ADVERSARIAL_ROWS = [
    ([-20.1038, -35.9616, 44.6241, 8.7254, 38.0397, -4.0152, -20.4189, 20.2234, 21.4696, -9.6747, -2.4401, -1.5869, 44.6553, -39.4945, 13.4453, -2.5607, 32.2358, -28.359, 44.1266, 28.3573], 9, 0.9338196560185257, 0.156277),
    ([1.9517, -4.3806, 4.3592, -2.5259, 4.1368, 4.7085, -2.6324, -0.3647, -0.2559, 2.7414, -4.8776, 2.9347, 3.241, 4.2832, 2.9722, -1.7981, 4.507, 4.1244], 4, 2.0963921699354884e-06, 19.999692),
    ([1.1293, -3.7858, -4.3165, 1.6209, -0.0307, -1.3884, 1.8929, -4.5817, -4.7939, -2.6208, 0.6521, -1.2112, -0.3597, 0.7126, -4.6076, -4.6545, -1.5849, -4.6457, 2.7157], 3, 3.604855628977092e-06, 17.775418),
    ([3.495, 1.7858, -1.2229, 3.7971, 4.9702, 1.2494, -2.1349, 4.7156], 2, 3.031440384822393e-12, 98.865277),
]


def test_stationarity_on_adversarial_rows():
    teacher = [np.array([row[0]]) for row in ADVERSARIAL_ROWS]
    for (_, label, rho, temperature), logits in zip(ADVERSARIAL_ROWS, teacher):
        labels, rho, temperature = np.array([label]), np.array([rho]), np.array([temperature])
        z = np.asarray(effective_logits(logits, labels, rho=rho, temperature=temperature))
        assert np.all(np.isfinite(z))
        assert _relative_residual(z, logits, labels, rho, temperature).max() < 1e-12


def test_stationarity_where_rho_is_close_to_one_and_temperatures_are_extreme():
    teacher, labels, rho, temperature = _random_inputs(8, 4000, 8, temperature_range=(0.01, 100.0))
    rho = np.where(np.arange(4000) % 2 == 0, 1.0 - 10 ** np.random.default_rng(8).uniform(-12, -1, 4000), rho)
    z = np.asarray(effective_logits(teacher, labels, rho=rho, temperature=temperature))
    assert np.all(np.isfinite(z))
    # T down to 0.01 and logits ±50: evaluating softmax(z/T) itself is uncertain to ~eps·|z|/T ≈ 1e-12
    assert _relative_residual(z, teacher, labels, rho, temperature).max() < 1e-10


def test_true_class_wins_and_margins_exceed_the_hard_side():
    teacher, labels, rho, temperature = _random_inputs(1, 500, 6, logit_range=10.0, rho_range=(1e-6, 0.999))
    z = np.asarray(effective_logits(teacher, labels, rho=rho, temperature=temperature))
    q = np.asarray(jax.nn.softmax(teacher / temperature[:, None], axis=-1))
    p_t = np.asarray(jax.nn.softmax(z / temperature[:, None], axis=-1))
    others = np.arange(6) != labels[:, None]
    assert np.all(p_t[others] < q[others])  # the label takes soft mass from every other class


def test_two_classes_reduce_to_the_binary_effective_logit():
    teacher, labels, rho, temperature = _random_inputs(2, 4000, 2)
    z = np.asarray(effective_logits(teacher, labels, rho=rho, temperature=temperature))
    binary = np.asarray(effective_logit(teacher[:, 1] - teacher[:, 0], labels, rho=rho, temperature=temperature))
    difference = z[:, 1] - z[:, 0]
    assert np.max(np.abs(difference - binary) / np.maximum(1.0, np.abs(binary))) < 1e-13
    np.testing.assert_array_equal(z[:, 0], -z[:, 1])


def test_rho_one_is_the_centred_teacher_and_rho_zero_the_signed_infinite_limit():
    teacher, labels, _, _ = _random_inputs(3, 50, 7)
    z = np.asarray(effective_logits(teacher, labels, rho=1.0, temperature=3.0))
    np.testing.assert_allclose(z, teacher - teacher.mean(axis=1, keepdims=True), rtol=0, atol=1e-13)  # XLA's mean
    z0 = np.asarray(effective_logits(teacher, labels, rho=0.0, temperature=3.0))
    expected = np.where(np.arange(7) == labels[:, None], np.inf, -np.inf)
    np.testing.assert_array_equal(z0, expected)
    binary = np.asarray(effective_logit(teacher[:, 1] - teacher[:, 0], labels % 2, rho=0.0, temperature=3.0))
    np.testing.assert_array_equal(np.asarray(effective_logits(teacher[:, :2], labels % 2, rho=0.0, temperature=3.0))[:, 1],
                                  np.where(labels % 2 == 1, np.inf, -np.inf))
    assert np.all(np.isinf(binary))


def _asymptotic_margin_error(teacher, labels, rho, temperature):
    """z_y − z_k − [log(1/ρ) + log(T / q_k)] on the classes k ≠ y (the module's ρ → 0⁺ law)."""
    n, k = teacher.shape
    z = np.asarray(effective_logits(teacher, labels, rho=rho, temperature=temperature))
    margin = z[np.arange(n), labels][:, None] - z
    log_q = np.asarray(jax.nn.log_softmax(teacher / temperature, axis=-1))
    error = margin - (np.log(1.0 / rho) + np.log(temperature) - log_q)
    return np.abs(error[np.arange(k) != labels[:, None]]).max()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0])
def test_margins_grow_like_log_one_over_rho_with_the_derived_offset(temperature):
    teacher, labels, _, _ = _random_inputs(4, 40, 5, logit_range=4.0)
    errors = [_asymptotic_margin_error(teacher, labels, rho, temperature) for rho in (1e-6, 1e-9, 1e-12)]
    order = min(1.0, 1.0 / temperature)  # the correction is O(rho^min(1, 1/T))
    assert errors[2] < 1e-3 * max(1.0, temperature) ** 2
    for coarse, fine in zip(errors, errors[1:]):
        assert fine < coarse * 1e-3**order * 10  # shrinks at (about) the predicted rate
    # the rate itself: margins over log(1/rho) tend to 1, i.e. z / log(1/rho) -> e_y - 1/K
    z = np.asarray(effective_logits(teacher, labels, rho=1e-12, temperature=temperature)) / np.log(1e12)
    direction = (np.arange(5) == labels[:, None]) - 1 / 5
    assert np.abs(z - direction).max() < 0.5 * (1 + np.log(temperature) ** 2 + 8 / temperature) / np.log(1e12) * 3


def _scipy_reference(teacher, label, rho, temperature):
    """Independent reference: scipy.optimize.root on the naive K − 1 equations k ≠ y in the gauge z_y = 0."""
    k = len(teacher)
    others = np.arange(k) != label
    softmax = lambda v: np.exp(v - v.max()) / np.exp(v - v.max()).sum()  # noqa: E731
    q = softmax(teacher / temperature)

    def equations(free):
        z = np.zeros(k)
        z[others] = free
        return (rho / temperature * (softmax(z / temperature) - q) + (1 - rho) * softmax(z))[others]

    start = np.zeros(k - 1)  # (from the teacher margins hybr can run off to where the softmax saturates)
    solution = root(equations, start, method="hybr", options={"xtol": 1e-13})
    # hybr may report "not making good progress" once the equations are at round-off; judge by the residual
    assert np.abs(equations(solution.x)).max() < 1e-14, solution.message
    z = np.zeros(k)
    z[others] = solution.x
    return z - z.mean()


def test_agrees_with_scipy_root_per_point():
    teacher, labels, rho, temperature = _random_inputs(5, 60, 6, logit_range=3.0, rho_range=(5e-2, 1.0),
                                                       temperature_range=(0.5, 5.0))
    z = np.asarray(effective_logits(teacher, labels, rho=rho, temperature=temperature))
    reference = np.array([_scipy_reference(*point) for point in zip(teacher, labels, rho, temperature)])
    np.testing.assert_allclose(z, reference, atol=1e-7)


def test_rho_derivative_matches_finite_differences():
    teacher, labels, rho, temperature = _random_inputs(6, 30, 4, logit_range=5.0, rho_range=(0.05, 0.95),
                                                       temperature_range=(0.5, 4.0))
    derivative = np.asarray(effective_logits_rho_derivative(teacher, labels, rho=rho, temperature=temperature))
    step = 1e-6
    up = np.asarray(effective_logits(teacher, labels, rho=rho + step, temperature=temperature))
    down = np.asarray(effective_logits(teacher, labels, rho=rho - step, temperature=temperature))
    np.testing.assert_allclose(derivative, (up - down) / (2 * step), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(derivative.sum(axis=1), 0.0, atol=1e-9)
    assert np.all(derivative[np.arange(30), labels] < 0)  # more soft label, smaller true-class lead


def test_works_under_jit():
    teacher, labels, rho, temperature = _random_inputs(7, 20, 3, logit_range=5.0)
    compiled = jax.jit(lambda a, b: effective_logits(a, b, rho=0.3, temperature=2.0))
    np.testing.assert_allclose(compiled(teacher, labels), effective_logits(teacher, labels, rho=0.3, temperature=2.0),
                               rtol=1e-14, atol=1e-13)


@pytest.mark.parametrize(
    "teacher, labels, rho, temperature, name",
    [
        (np.zeros(3), np.zeros(3, int), 0.5, 1.0, "teacher_logits"),  # not (N, K)
        (np.zeros((3, 1)), np.zeros(3, int), 0.5, 1.0, "teacher_logits"),  # K < 2
        (np.array([[0.0, np.nan]]), np.zeros(1, int), 0.5, 1.0, "teacher_logits"),
        (np.array([[0.0, np.inf]]), np.zeros(1, int), 0.5, 1.0, "teacher_logits"),
        (np.zeros((3, 2)), np.zeros(2, int), 0.5, 1.0, "labels"),  # shape
        (np.zeros((3, 2)), np.array([0, 1, 2]), 0.5, 1.0, "labels"),  # outside 0..K-1
        (np.zeros((3, 2)), np.array([0, -1, 1]), 0.5, 1.0, "labels"),
        (np.zeros((3, 2)), np.array([0.0, 0.5, 1.0]), 0.5, 1.0, "labels"),  # not integers
        (np.zeros((3, 2)), np.array(["a", "b", "c"]), 0.5, 1.0, "labels"),
        (np.zeros((3, 2)), np.zeros(3, int), 1.5, 1.0, "rho"),
        (np.zeros((3, 2)), np.zeros(3, int), -0.1, 1.0, "rho"),
        (np.zeros((3, 2)), np.zeros(3, int), np.nan, 1.0, "rho"),
        (np.zeros((3, 2)), np.zeros(3, int), np.full(2, 0.5), 1.0, "rho"),  # shape
        (np.zeros((3, 2)), np.zeros(3, int), 0.5, 0.0, "temperature"),
        (np.zeros((3, 2)), np.zeros(3, int), 0.5, -1.0, "temperature"),
        (np.zeros((3, 2)), np.zeros(3, int), 0.5, np.inf, "temperature"),
    ],
)
def test_bad_inputs_raise_naming_the_parameter(teacher, labels, rho, temperature, name):
    with pytest.raises(ValueError, match=name):
        effective_logits(teacher, labels, rho=rho, temperature=temperature)
    with pytest.raises(ValueError, match=name):
        effective_logits_rho_derivative(teacher, labels, rho=rho, temperature=temperature)


def test_whole_number_float_labels_are_accepted():
    z_float = effective_logits(np.array([[1.0, 0.0, 2.0]]), np.array([2.0]), rho=0.4, temperature=1.5)
    z_int = effective_logits(np.array([[1.0, 0.0, 2.0]]), np.array([2]), rho=0.4, temperature=1.5)
    np.testing.assert_array_equal(z_float, z_int)
