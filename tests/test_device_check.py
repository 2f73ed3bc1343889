"""kdwide.device_check: the GPU route's check, run here in its small mode on the CPU."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from kdwide import device_check


@pytest.fixture(scope="module")
def stored_reference():
    return json.loads(device_check.reference_path().read_text())


def test_small_scale_agrees_with_the_stored_float64_reference(stored_reference):
    results = device_check.run_checks("small", repeats=1, reference=stored_reference)
    assert [r.workload for r in results] == ["effective_logits", "ntk_cholesky", "grid"]
    assert all(r.agrees for r in results), results
    assert all(r.seconds > 0 for r in results)


def test_a_changed_value_is_reported_as_a_difference(stored_reference):
    perturbed = copy.deepcopy(stored_reference)
    sample = perturbed["small"]["ntk_cholesky"]["kernel_sample"]
    sample[7] *= 1 + 1e-6
    results = {r.workload: r for r in device_check.run_checks("small", repeats=1, reference=perturbed)}
    assert not results["ntk_cholesky"].agrees
    assert results["ntk_cholesky"].relative_difference == pytest.approx(1e-6 * abs(sample[7]) / (1 + 1e-6)
                                                                         / max(1, abs(sample[7])), rel=1e-3)
    assert results["effective_logits"].agrees and results["grid"].agrees


def test_stored_reference_covers_every_scale_and_workload(stored_reference):
    assert set(stored_reference) == set(device_check.SCALES)
    for scale in device_check.SCALES:
        assert set(stored_reference[scale]) == set(device_check.TOLERANCES)
        assert all(np.all(np.isfinite(v)) for w in stored_reference[scale].values() for v in w.values())


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="scale"):
        device_check.workload_values("huge")
    with pytest.raises(ValueError, match="repeats"):
        device_check.run_checks("small", repeats=0)


def test_command_line_needs_only_jax_numpy_and_scipy():
    code = (
        "import sys; from kdwide import device_check; status = device_check.main(['--scale', 'small', "
        "'--repeats', '1']); extra = sorted(m for m in ('pandas', 'tqdm', 'papermill', 'sklearn', 'matplotlib', "
        "'tensorflow', 'neural_tangents', 'nbformat', 'yaml') if m in sys.modules); "
        "assert not extra, extra; sys.exit(status)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "backend: cpu" in result.stdout and "all workloads agree" in result.stdout
