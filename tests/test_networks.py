"""Tests for kdwide.networks: the neural-tangents entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kdwide  # noqa: F401  (float64)
from kdwide.networks import (
    ACTIVATIONS,
    check_architecture,
    fully_connected_network,
    jacobian_contraction_ntk_fn,
)


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
    ntk = jacobian_contraction_ntk_fn(apply_fn)(x, None, params)
    np.testing.assert_allclose(ntk, flat @ flat.T, rtol=1e-12)


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


def test_import_writes_nothing_to_stderr_and_restores_it():
    code = (
        "import os, kdwide.networks; "
        "os.write(2, b'still-open'); "
        "import kdwide.networks as n; assert n.nt.__name__ == 'neural_tangents'"
    )
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, env=environment, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b"still-open"
