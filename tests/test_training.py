"""Tests for kdwide.training: gradient descent on the KD loss reaches C1's effective logits."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kdwide  # noqa: F401  (float64)
from kdwide.effective_logit import effective_logit
from kdwide.architecture import Architecture
from kdwide.experiments.linearization import LinearizationTask, linearization_records
from kdwide.kernels import empirical_ntk
from kdwide.losses import kd_loss
from kdwide.networks import fully_connected_network
from kdwide.seeds import Streams
from kdwide.training import (
    _progress_enabled,
    loss_curvature_bound,
    relative_weight_change,
    stable_learning_rate,
    train_student,
)

HYPER = dict(activation="relu", w_std=1.4, b_std=0.1)


def _task(n=8, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    z_teacher = 2.0 * np.sin(3.0 * x[:, 0])
    return x, z_teacher, (z_teacher > 0).astype(int)


def _network(width, seed=0, d=3):
    init_fn, apply_fn, _ = fully_connected_network(depth=1, width=width, **HYPER)
    _, params = init_fn(jax.random.PRNGKey(seed), (-1, d))
    return apply_fn, params


@pytest.mark.slow  # several seconds on 2 cores: left out of make test-fast
def test_training_reaches_the_effective_logits_with_a_decreasing_loss():
    x, z_teacher, y_hard = _task()
    apply_fn, params = _network(64)
    rho, temperature = 0.6, 2.0
    rate = stable_learning_rate(empirical_ntk(apply_fn, params, x, **HYPER), rho=rho, temperature=temperature)
    result = train_student(
        apply_fn, params, x, z_teacher, y_hard, rho=rho, temperature=temperature, learning_rate=rate, tolerance=1e-9
    )
    assert result.converged and result.max_stationarity_residual <= 1e-9
    assert result.loss_history.shape == (result.steps,) and result.steps % 1000 == 0
    assert np.all(np.diff(result.loss_history) <= 1e-15)  # a stable step size never increases the convex-in-z loss
    target = effective_logit(z_teacher, y_hard, rho=rho, temperature=temperature)
    trained = apply_fn(result.params, x)[:, 0]
    np.testing.assert_allclose(trained, target, atol=1e-7)
    final_loss = kd_loss(trained, z_teacher, y_hard, rho=rho, temperature=temperature)
    assert float(final_loss) <= result.loss_history[-1] + 1e-14
    assert jax.tree_util.tree_structure(result.params) == jax.tree_util.tree_structure(params)


def test_training_is_deterministic_and_leaves_the_initial_params_alone():
    x, z_teacher, y_hard = _task()
    apply_fn, params = _network(16)
    before = [np.array(leaf) for leaf in jax.tree_util.tree_leaves(params)]
    runs = [
        train_student(apply_fn, params, x, z_teacher, y_hard, rho=1.0, temperature=1.0, learning_rate=0.5,
                      max_steps=300, chunk_size=100, tolerance=0.1)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].loss_history, runs[1].loss_history)
    for leaf, old in zip(jax.tree_util.tree_leaves(params), before):
        np.testing.assert_array_equal(leaf, old)


@pytest.mark.slow  # several seconds on 2 cores: left out of make test-fast
def test_wider_students_follow_the_linearized_prediction_more_closely():
    """C2 in miniature: trained test logits approach both linearized predictions as width grows."""
    x, z_teacher, y_hard = _task(n=8)
    x_test = _task(n=16, seed=1)[0]
    task = LinearizationTask(x, x_test, z_teacher, y_hard, np.zeros(len(x_test)))
    by_width = {
        width: linearization_records(
            task, streams=Streams(0), architecture=Architecture(depth=1, **HYPER), width=width,
            rho_values=[1.0, 0.5], temperature_values=[2.0], tolerance=1e-7,
        )
        for width in (16, 1024)
    }
    narrow, wide = by_width[16], by_width[1024]
    assert [(r["rho"], r["temperature"]) for r in wide] == [(1.0, 2.0), (0.5, 2.0)]
    for small, large in zip(narrow, wide):
        assert small["converged"] and large["converged"] and large["train_gap"] < 1e-5
        assert large["test_gap_empirical"] < small["test_gap_empirical"] / 3  # ~ sqrt(64) = 8 expected
        assert large["test_gap_analytic"] < small["test_gap_analytic"] / 2.5  # analytic-kernel error adds to it
        assert large["relative_weight_change"] < small["relative_weight_change"] / 3
        assert large["kernel_distance"] < small["kernel_distance"] / 3
        ratio = large["weight_change_norm"] / large["predicted_weight_change_norm"]
        assert abs(ratio - 1) < 0.05


def test_relative_weight_change():
    initial = [(jnp.array([3.0, 0.0]), jnp.array([4.0])), ()]
    moved = [(jnp.array([3.0, 1.0]), jnp.array([4.0])), ()]
    assert relative_weight_change(moved, initial) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="structure"):
        relative_weight_change(moved[:1], initial)


def test_stable_learning_rate_follows_the_curvature_bound():
    kernel = np.diag([4.0, 1.0, 0.5])
    assert loss_curvature_bound(rho=1.0, temperature=2.0) == pytest.approx(1 / 16)
    assert loss_curvature_bound(rho=0.0, temperature=2.0) == pytest.approx(1 / 4)
    rate = stable_learning_rate(kernel, rho=0.5, temperature=1.0, fraction=0.5)
    assert rate == pytest.approx(0.5 * 2 * 3 / (0.25 * 4.0))


def test_too_large_a_step_is_reported_as_divergence():
    x, z_teacher, y_hard = _task()
    apply_fn, params = _network(16)
    with pytest.raises(ValueError, match="diverged"):
        train_student(apply_fn, params, x, z_teacher, y_hard, rho=1.0, temperature=0.05, learning_rate=1e6,
                      max_steps=200, chunk_size=100)


def test_running_out_of_steps_warns():
    x, z_teacher, y_hard = _task()
    apply_fn, params = _network(16)
    with pytest.warns(RuntimeWarning, match="max_steps"):
        result = train_student(apply_fn, params, x, z_teacher, y_hard, rho=1.0, temperature=1.0, learning_rate=0.1,
                               max_steps=10, tolerance=1e-12)
    assert not result.converged and result.steps == 10


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        (dict(rho=0.0), "rho"),
        (dict(rho=1.5), "rho"),
        (dict(temperature=0.0), "temperature"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(tolerance=0.0), "tolerance"),
        (dict(max_steps=0), "max_steps"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(y_hard=np.full(8, 2)), "y_hard"),
        (dict(z_teacher=np.zeros(7)), "z_teacher"),
    ],
)
def test_train_student_rejects_bad_input(arguments, name):
    x, z_teacher, y_hard = _task()
    apply_fn, params = _network(4)
    good = dict(z_teacher=z_teacher, y_hard=y_hard, rho=1.0, temperature=1.0, learning_rate=0.1, max_steps=5)
    with pytest.raises(ValueError, match=name):
        train_student(apply_fn, params, x, **{**good, **arguments})


def test_stable_learning_rate_rejects_bad_input():
    with pytest.raises(ValueError, match="kernel_train"):
        stable_learning_rate(np.ones(3), rho=1.0, temperature=1.0)
    with pytest.raises(ValueError, match="fraction"):
        stable_learning_rate(np.eye(2), rho=1.0, temperature=1.0, fraction=1.0)
    with pytest.raises(ValueError, match="rho"):
        stable_learning_rate(np.eye(2), rho=2.0, temperature=1.0)


def test_progress_bar_only_on_request_or_on_a_terminal(monkeypatch):
    assert _progress_enabled(True) and not _progress_enabled(False)
    for terminal in (True, False):
        monkeypatch.setattr(sys.stderr, "isatty", lambda terminal=terminal: terminal)
        assert _progress_enabled(None) is terminal


def test_linearization_records_refuse_rho_zero_by_name_before_any_kernel():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"rho_values must lie in \(0, 1\] for training"):
        linearization_records(
            LinearizationTask(x, x, np.ones(3), np.ones(3, int), np.ones(3)), streams=Streams(0),
            architecture=Architecture(depth=1, activation="relu", w_std=1.0, b_std=0.0), width=8,
            rho_values=[0.0, 1.0], temperature_values=[1.0],
        )
