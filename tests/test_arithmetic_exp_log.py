"""The arithmetic-only float64 exp / log / log1p / reciprocal of kdwide.arithmetic_exp_log, against NumPy, in ulps.

Each runs compiled (as the solver uses it): XLA's algebraic simplifier has broken such code before
(``(x + c) - c`` folded to ``x``), which only a compiled run shows.
"""

import jax
import numpy as np

import kdwide  # noqa: F401  (float64 mode)
from kdwide.arithmetic_exp_log import exp_nonpositive, log1p_unit, log_positive, reciprocal

RNG = np.random.default_rng(5)


def _ulps(ours, reference):
    return np.abs(ours - reference) / np.spacing(np.abs(reference))


def test_exp_nonpositive_within_one_ulp_and_zero_below_its_range():
    x = -np.concatenate([RNG.uniform(0, 5, 200_000), 10 ** RNG.uniform(-20, np.log10(708.3), 200_000), [0.0, 708.3]])
    x = np.concatenate([x, -np.log(2) * (np.arange(1, 60) + 0.5)])  # half-integer multiples of ln 2: rounding ties
    ours = np.asarray(jax.jit(exp_nonpositive)(x))
    assert _ulps(ours, np.exp(x)).max() <= 1
    assert np.all(np.asarray(jax.jit(exp_nonpositive)(np.array([-708.4, -1000.0, -np.inf]))) == 0)


def test_log_positive_within_four_ulp_over_the_normal_range():
    y = np.concatenate([10 ** RNG.uniform(-307, 307, 200_000), RNG.uniform(0.5, 2.0, 200_000), [1.0, 2.0, np.sqrt(2)]])
    ours = np.asarray(jax.jit(log_positive)(y))
    reference = np.log(y)
    assert ours[np.flatnonzero(y == 1.0)[0]] == 0.0
    nonzero = reference != 0
    assert _ulps(ours[nonzero], reference[nonzero]).max() <= 4


def test_log1p_unit_keeps_relative_accuracy_near_zero():
    e = np.concatenate([RNG.uniform(0, 1, 200_000), 10 ** RNG.uniform(-300, 0, 200_000), [1.0]])
    ours = np.asarray(jax.jit(log1p_unit)(e))
    assert _ulps(ours, np.log1p(e)).max() <= 4
    assert np.asarray(jax.jit(log1p_unit)(np.zeros(3))).tolist() == [0.0, 0.0, 0.0]


def test_reciprocal_within_one_ulp():
    y = np.concatenate([10 ** RNG.uniform(-30, 30, 200_000), -(10 ** RNG.uniform(-30, 30, 1000)), RNG.uniform(1, 3, 1000)])
    ours = np.asarray(jax.jit(reciprocal)(y))
    assert _ulps(ours, 1.0 / y).max() <= 1
