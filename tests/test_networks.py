"""Tests for kdwide.networks: the pure-JAX MLP in NTK parameterization (S2)."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kdwide  # noqa: F401  (float64)
from kdwide.kernels import JACOBIAN_CONTRACTION, analytic_ntk, empirical_ntk
from kdwide.networks import ACTIVATIONS, check_architecture, fully_connected_network


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_network_shapes_and_ntk_parameterization(activation):
    depth, width, w_std, b_std = 2, 7, 1.3, 0.2
    init_fn, apply_fn, kernel_fn = fully_connected_network(
        depth=depth, width=width, activation=activation, w_std=w_std, b_std=b_std
    )
    x = np.random.default_rng(0).normal(size=(5, 3))
    output_shape, params = init_fn(jax.random.PRNGKey(0), x.shape)
    assert output_shape == (5, 1)
    dense = [p for p in params if p]
    assert [p[0].shape for p in dense] == [(3, width), (width, width), (width, 1)]
    # NTK parameterization by hand: (w_std / sqrt(fan_in)) x @ W + b_std b, standard-normal parameters.
    phi = {"relu": jax.nn.relu, "erf": jax.scipy.special.erf}[activation]
    h = jnp.asarray(x)
    for i, (W, b) in enumerate(dense):
        h = w_std / np.sqrt(W.shape[0]) * h @ W + b_std * b
        if i < depth:
            h = phi(h)
    np.testing.assert_allclose(apply_fn(params, x), h, rtol=1e-12)
    assert apply_fn(params, x).dtype == jnp.float64
    assert kernel_fn(x, x, "ntk").shape == (5, 5)


def test_jacobian_contraction_reference_is_a_gram_matrix():
    init_fn, apply_fn, _ = fully_connected_network(depth=1, width=4, w_std=1.0, b_std=0.5)
    x = np.random.default_rng(1).normal(size=(3, 2))
    _, params = init_fn(jax.random.PRNGKey(1), x.shape)
    jacobian = jax.jacobian(lambda p: apply_fn(p, x)[:, 0])(params)
    flat = jnp.concatenate([leaf.reshape(3, -1) for leaf in jax.tree_util.tree_leaves(jacobian)], axis=1)
    ntk = empirical_ntk(apply_fn, params, x, method=JACOBIAN_CONTRACTION, activation="relu", w_std=1.0, b_std=0.5)
    np.testing.assert_allclose(ntk, flat @ flat.T, rtol=1e-12)


def test_init_draws_standard_normal_weights_from_the_key():
    init_fn, _, _ = fully_connected_network(depth=2, width=300, w_std=1.0, b_std=1.0)
    params_a = init_fn(jax.random.PRNGKey(0), (5, 40))[1]
    params_b = init_fn(jax.random.PRNGKey(1), (5, 40))[1]
    weights = np.asarray(params_a[2][0])
    assert abs(weights.mean()) < 0.02 and abs(weights.std() - 1) < 0.02  # 90,000 draws: 6 standard errors
    assert not np.array_equal(params_a[0][0], params_b[0][0])
    assert all(np.array_equal(a, b) for a, b in zip(
        jax.tree_util.tree_leaves(params_a), jax.tree_util.tree_leaves(init_fn(jax.random.PRNGKey(0), (5, 40))[1])))
    with pytest.raises(ValueError, match="input_shape"):
        init_fn(jax.random.PRNGKey(0), (5,))


def test_kernel_fn_is_the_analytic_kernel():
    _, _, kernel_fn = fully_connected_network(depth=2, width=3, activation="erf", w_std=1.2, b_std=0.3)
    x = np.random.default_rng(2).normal(size=(6, 3))
    np.testing.assert_array_equal(kernel_fn(x), analytic_ntk(x, depth=2, activation="erf", w_std=1.2, b_std=0.3))
    assert kernel_fn(x, x[:2], "nngp").shape == (6, 2)
    with pytest.raises(ValueError, match="get"):
        kernel_fn(x, None, "ntk_and_nngp")


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        (dict(depth=0), "depth"),
        (dict(depth=1.5), "depth"),
        (dict(width=0), "width"),
        (dict(activation="tanh"), "activation"),
        (dict(w_std=0.0), "w_std"),
        (dict(w_std=float("nan")), "w_std"),
        (dict(b_std=-0.1), "b_std"),
        (dict(b_std="1"), "b_std"),
    ],
)
def test_bad_arguments_name_the_parameter(arguments, name):
    good = dict(depth=1, width=3, activation="relu", w_std=1.0, b_std=0.0)
    with pytest.raises(ValueError, match=name):
        fully_connected_network(**{**good, **arguments})


def test_check_architecture_returns_plain_types():
    assert check_architecture(depth=np.int64(2), activation="erf", w_std=np.float32(2), b_std=0) == (2, "erf", 2.0, 0.0)


def test_kdwide_never_imports_tensorflow_or_neural_tangents():
    modules = ", ".join(
        f"kdwide.{name}"
        for name in ("networks", "kernels", "training", "linearized", "predict", "data_inefficiency", "datasets", "stats",
                     "experiments.discontinuity", "experiments.linearization", "experiments.risk_bound",
                     "experiments.task_difficulty", "experiments.imperfect_teacher", "experiments.landscape",
                     "experiments.multiclass")
    )
    code = (
        f"import sys, kdwide, {modules}, kdwide_book.parameters, kdwide_book.results, kdwide_book.device_check; "
        "loaded = sorted(m for m in ('tensorflow', 'neural_tangents', 'tf2jax') if m in sys.modules); "
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
