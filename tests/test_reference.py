"""kdwide against neural-tangents, the reference implementation (skipped, saying why, where it is not installed)."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from test_kernels import ARCHITECTURES, _inputs  # the same architectures and inputs as the kernel tests

from kdwide.architecture import Architecture
from kdwide.seeds import Streams
import kdwide  # noqa: F401  (float64)
from kdwide import reference
from kdwide.kernels import analytic_nngp, analytic_ntk, empirical_ntk
from kdwide.networks import fully_connected_network

UNAVAILABLE = reference.neural_tangents_unavailable_reason()
needs_neural_tangents = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"reference skipped: {UNAVAILABLE}")


@needs_neural_tangents
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_same_key_gives_the_same_weights_and_outputs(architecture):
    x = _inputs(7)
    ours = fully_connected_network(width=33, **architecture)
    theirs = reference.neural_tangents_network(width=33, **architecture)
    key = jax.random.PRNGKey(5)
    (shape, params), (their_shape, their_params) = ours[0](key, x.shape), theirs[0](key, x.shape)
    assert shape == their_shape
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(their_params)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(their_params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours[1](params, x), theirs[1](their_params, x))


@needs_neural_tangents
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_analytic_kernels_match_neural_tangents_off_the_diagonal(architecture):
    x1, x2 = _inputs(13), _inputs(9, seed=1)
    kernel_fn = reference.neural_tangents_network(width=8, **architecture)[2]
    expected = kernel_fn(x1, x2, ("ntk", "nngp"))
    np.testing.assert_allclose(analytic_ntk(x1, x2, batch_size=4, **architecture), expected.ntk, rtol=1e-11)
    np.testing.assert_allclose(analytic_nngp(x1, x2, **architecture), expected.nngp, rtol=1e-11)
    off_diagonal = ~np.eye(13, dtype=bool)
    symmetric = np.asarray(analytic_ntk(x1, batch_size=5, **architecture))
    np.testing.assert_allclose(symmetric[off_diagonal], np.asarray(kernel_fn(x1, None, "ntk"))[off_diagonal],
                               rtol=1e-11)


@needs_neural_tangents
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_empirical_ntk_matches_neural_tangents_jacobian_contraction(architecture):
    nt = reference.import_neural_tangents()
    init_fn, apply_fn, _ = fully_connected_network(width=16, **architecture)
    params = init_fn(jax.random.PRNGKey(2), (-1, 4))[1]
    x1, x2 = _inputs(11), _inputs(6, seed=1)
    their_fn = nt.empirical_ntk_fn(
        apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION
    )
    hyper = {k: architecture[k] for k in ("activation", "w_std", "b_std")}
    expected = np.asarray(their_fn(x1, x2, params))
    ours = np.asarray(empirical_ntk(apply_fn, params, x1, x2, **hyper))
    assert np.max(np.abs(ours - expected)) <= 1e-12 * np.max(np.abs(expected))


@needs_neural_tangents
@pytest.mark.slow  # several seconds on 2 cores: left out of make test-fast
def test_agreement_summary_agrees_and_records_the_version():
    result = reference.agreement_with_neural_tangents(
        _inputs(10), architecture=Architecture(depth=2, activation="relu", w_std=1.4, b_std=0.1), width=32, streams=Streams(0))
    assert result.unavailable_reason is None and result.neural_tangents_version
    assert result.same_parameters and result.agrees
    assert set(result.relative_differences) == {"outputs", "analytic_ntk", "analytic_nngp", "empirical_ntk"}


def test_agreement_fails_on_a_large_difference_or_different_weights():
    close = {"outputs": 0.0, "empirical_ntk": 1e-14}
    assert reference.NeuralTangentsAgreement(None, "0", True, close).agrees
    assert not reference.NeuralTangentsAgreement(None, "0", True, {**close, "analytic_ntk": 1e-6}).agrees
    assert not reference.NeuralTangentsAgreement(None, "0", False, close).agrees
    assert not reference.NeuralTangentsAgreement("not installed").agrees
    report = reference.NeuralTangentsAgreement(None, "0.6.5", True, {**close, "analytic_ntk": 1e-6}).report()
    assert "analytic ntk: relative difference > 1e-10" in report and report.endswith("neural-tangents: False")
    assert reference.NeuralTangentsAgreement("not installed").report().endswith("skipped: not installed")


def test_agreement_without_neural_tangents_says_why(monkeypatch):
    def unavailable():
        raise ImportError("neural-tangents is not installed (test)")

    monkeypatch.setattr(reference, "import_neural_tangents", unavailable)
    result = reference.agreement_with_neural_tangents(
        _inputs(4), architecture=Architecture(depth=1, activation="relu", w_std=1.0, b_std=0.1), width=8, streams=Streams(0))
    assert not result.agrees and result.unavailable_reason == "neural-tangents is not installed (test)"
    assert result.relative_differences == {}


@needs_neural_tangents
@pytest.mark.slow  # several seconds on 2 cores: left out of make test-fast
def test_import_writes_nothing_to_stderr_and_restores_it():
    code = (
        "import os, kdwide.reference as r; r.import_neural_tangents(); "
        "os.write(2, b'still-open'); assert r.import_neural_tangents().__name__ == 'neural_tangents'"
    )
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, env=environment, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b"still-open"
