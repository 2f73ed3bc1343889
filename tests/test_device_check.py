"""kdwide_book.device_check: the GPU route's check, run here in its small mode on the CPU."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kdwide_book import device_check

SOURCE = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def stored_reference():
    return json.loads(device_check.reference_path().read_text())


@pytest.mark.slow  # several seconds on 2 cores: left out of make test-fast
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


@pytest.mark.slow  # several seconds on 2 cores: left out of make test-fast
def test_command_line_needs_only_jax_numpy_and_scipy():
    """The bare-GPU-machine route: ``PYTHONPATH=src python -m kdwide_book.device_check`` from a copy of the repository,
    importing nothing beyond jax, numpy and scipy (kdwide_book itself imports nothing)."""
    code = (
        "import runpy, sys; sys.argv = ['device_check', '--scale', 'small', '--repeats', '1']\n"
        "try:\n    runpy.run_module('kdwide_book.device_check', run_name='__main__')\n"
        "except SystemExit as stop:\n    status = stop.code\n"
        "extra = sorted(m for m in ('pandas', 'tqdm', 'papermill', 'sklearn', 'matplotlib', 'tensorflow', "
        "'neural_tangents', 'nbformat', 'nbclient', 'yaml', 'distributed', 'plotly') if m in sys.modules)\n"
        "assert not extra, extra\nsys.exit(status)"
    )
    environment = {**os.environ, "PYTHONPATH": str(SOURCE)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "backend: cpu" in result.stdout and "all workloads agree" in result.stdout


def test_write_reference_goes_through_the_one_json_writer(tmp_path, monkeypatch):
    """``--write-reference`` writes atomically (results.write_json), and only on a CPU."""
    written = {}
    monkeypatch.setattr(device_check, "workload_values", lambda scale: {"grid": lambda: {"x": np.arange(3.0)}})
    monkeypatch.setattr(device_check, "write_json", lambda path, value, **options: written.update(
        path=path, value=value, options=options))
    monkeypatch.setattr(device_check, "reference_path", lambda: tmp_path / "reference.json")
    assert device_check.main(["--write-reference"]) == 0
    assert written["path"] == tmp_path / "reference.json" and written["options"] == {"compact": True}
    assert written["value"] == {scale: {"grid": {"x": [0.0, 1.0, 2.0]}} for scale in device_check.SCALES}
    assert not (tmp_path / "reference.json").exists()
