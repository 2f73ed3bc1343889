r"""Paper-scale kernels on whatever JAX runs on (GPU, TPU or CPU), checked against stored float64 CPU values.

``python -m kdwide_book.device_check`` reports the platform and device, then runs the three workloads that dominate
the book's ``"paper"`` profile and compares each result with reference values computed in float64 on a CPU and
stored in the package (``kdwide_book/data/device_check_reference.json``):

1. **effective logits**: :func:`kdwide.effective_logit` on 10^7 (teacher logit, label, ρ, T) quadruples;
2. **analytic NTK and Cholesky**: :func:`kdwide.kernels.analytic_ntk` on n = 8192 inputs (2 hidden ReLU layers)
   and its Cholesky factorization (:func:`kdwide.linearized.factorize_kernel`), with one solve;
3. **ρ×T grid**: :func:`kdwide.predict.solve_grid`, 45 grid points (9 ρ × 5 T) on one factorization.

It prints, per workload, the time (best of ``--repeats`` runs after a compile-and-warm-up call), the largest
relative difference from the reference on a fixed sample of entries and on summary values, and whether that is
within the workload's tolerance; the exit status is 1 if any is not. ``--scale small`` runs the same workloads at
sizes a 2-core CPU finishes in seconds (CI runs it so). Inputs come from NumPy's PCG64 with fixed seeds, so they
are bitwise the same on every machine. Only jax, numpy and scipy are needed: nothing here imports pandas, tqdm,
papermill, nbformat, PyYAML, neural-tangents or TensorFlow, and :mod:`kdwide_book` itself imports nothing, so it runs
on a bare GPU machine from a copy of the repository (``PYTHONPATH=src``). It is a command-line tool of the book, not
science: it lives in the tooling layer and imports the core.

Run: ``python -m kdwide_book.device_check [--scale paper|small] [--repeats 3]``; on a CPU,
``--write-reference`` recomputes the stored values (it refuses on any other platform), written atomically by the
project's one JSON writer (:func:`kdwide_book.results.write_json`).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import kdwide
from kdwide.effective_logit import effective_logit
from kdwide.kernels import analytic_ntk
from kdwide.linearized import factorize_kernel, solve
from kdwide.predict import solve_grid
from kdwide.seeds import Streams
from kdwide.tasks import sphere_inputs
from kdwide_book.results import write_json

__all__ = ["SCALES", "TOLERANCES", "CheckResult", "main", "platform_report", "run_checks", "workload_values"]

SCALES: dict[str, dict[str, int]] = {
    "paper": dict(n_logits=10_000_000, n_kernel=8192, n_grid_train=4096, n_grid_test=1024),
    "small": dict(n_logits=100_000, n_kernel=512, n_grid_train=256, n_grid_test=128),
}
"""Sizes per ``--scale``: effective logits, kernel size of the NTK/Cholesky workload, grid train/test points."""

TOLERANCES: dict[str, float] = {
    "effective_logits": 1e-9,
    "ntk_cholesky": 1e-9,
    "grid": 1e-8,
}
"""Largest relative difference from the float64 CPU reference counted as agreement, per workload. Kernel entries
agree to a few ulps; the solves lose up to the kernel's condition number times that."""

ARCHITECTURE = dict(depth=2, activation="relu", w_std=1.4, b_std=0.1)
INPUT_DIM = 10
SAMPLE_SIZE = 2048
RHO_VALUES = np.linspace(0.2, 1.0, 9)
TEMPERATURE_VALUES = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
REFERENCE_FILE = "device_check_reference.json"


def _sample_indices(size: int, count: int = SAMPLE_SIZE) -> np.ndarray:
    return np.unique(Streams(12345).rng("sample_indices").integers(0, size, count))


def _logit_inputs(n: int) -> tuple[np.ndarray, ...]:
    rng = Streams(2020).rng("logit_inputs")
    z_teacher = rng.uniform(-20, 20, n)
    y_hard = rng.integers(0, 2, n)
    rho = rng.uniform(0.05, 1.0, n)
    temperature = 10 ** rng.uniform(-0.5, 1.0, n)
    return z_teacher, y_hard, rho, temperature


def _effective_logits(n_logits: int) -> Callable[[], dict[str, Any]]:
    inputs = [jnp.asarray(a) for a in _logit_inputs(n_logits)]
    indices = _sample_indices(n_logits)

    def run() -> dict[str, Any]:
        z_teacher, y_hard, rho, temperature = inputs
        roots = effective_logit(z_teacher, y_hard, rho=rho, temperature=temperature)
        return {"sample": np.asarray(roots[indices]), "mean_abs": float(jnp.mean(jnp.abs(roots)))}

    return run


def _ntk_cholesky(n_kernel: int) -> Callable[[], dict[str, Any]]:
    x = sphere_inputs(Streams(1).rng("kernel_inputs"), n_kernel, INPUT_DIM)
    rhs = jnp.asarray(Streams(3).rng("right_hand_side").normal(size=n_kernel))
    rows, columns = _sample_indices(n_kernel), _sample_indices(n_kernel)[::-1]

    def run() -> dict[str, Any]:
        kernel = analytic_ntk(x, **ARCHITECTURE)
        factorization = factorize_kernel(kernel)
        alpha = solve(factorization, rhs)
        return {
            "kernel_sample": np.asarray(kernel[rows, columns]),
            "kernel_trace": float(jnp.trace(kernel)),
            "log_determinant": float(2 * jnp.sum(jnp.log(jnp.diag(factorization.cholesky)))),
            "quadratic_form": float(rhs @ alpha),
        }

    return run


def _grid(n_train: int, n_test: int) -> Callable[[], dict[str, Any]]:
    x = sphere_inputs(Streams(4).rng("grid_inputs"), n_train + n_test, INPUT_DIM)
    anchors = sphere_inputs(Streams(5).rng("anchors"), 64, INPUT_DIM)
    coefficients = Streams(6).rng("coefficients").normal(size=64)
    coefficients -= coefficients.mean()
    indices = _sample_indices(n_test, 256)

    def run() -> dict[str, Any]:
        kernel_train = analytic_ntk(x[:n_train], **ARCHITECTURE)
        kernel_test_train = analytic_ntk(x[n_train:], x[:n_train], **ARCHITECTURE)
        raw_teacher = analytic_ntk(x[:n_train], anchors, **ARCHITECTURE) @ coefficients
        z_teacher = 4 * raw_teacher / jnp.max(jnp.abs(raw_teacher))
        y_hard = np.asarray(z_teacher > 0).astype(int)
        solution = solve_grid(
            kernel_train, kernel_test_train, z_teacher, y_hard,
            rho_values=RHO_VALUES, temperature_values=TEMPERATURE_VALUES,
        )
        return {
            "test_output_sample": solution.test_outputs[indices],
            "weight_change_norms": solution.weight_change_norms,
        }

    return run


def workload_values(scale: str) -> dict[str, Callable[[], dict[str, Any]]]:
    """The three workloads at ``scale`` (a key of :data:`SCALES`), each a function returning its checked values.

    Returns:
      ``{"effective_logits": f, "ntk_cholesky": g, "grid": h}``; each call returns a dict of arrays and floats
      (samples of entries at fixed indices and summary values) that :func:`run_checks` compares.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    sizes = SCALES[scale]
    return {
        "effective_logits": _effective_logits(sizes["n_logits"]),
        "ntk_cholesky": _ntk_cholesky(sizes["n_kernel"]),
        "grid": _grid(sizes["n_grid_train"], sizes["n_grid_test"]),
    }


def _relative_difference(values: dict[str, Any], reference: dict[str, Any]) -> float:
    """Largest |value − reference| / max(1, |reference|) over every entry of every checked value."""
    if set(values) != set(reference):
        raise ValueError(f"checked values {sorted(values)} differ from the reference's {sorted(reference)}")
    worst = 0.0
    for name, value in values.items():
        value, expected = np.asarray(value, np.float64), np.asarray(reference[name], np.float64)
        if value.shape != expected.shape or not np.all(np.isfinite(value)):
            return float("inf")
        worst = max(worst, float(np.max(np.abs(value - expected) / np.maximum(1.0, np.abs(expected)), initial=0.0)))
    return worst


@dataclass(frozen=True)
class CheckResult:
    """One workload's outcome: best time in seconds, largest relative difference, its tolerance."""

    workload: str
    seconds: float
    relative_difference: float
    tolerance: float

    @property
    def agrees(self) -> bool:
        return self.relative_difference <= self.tolerance


def _timed(function: Callable[[], dict[str, Any]], repeats: int) -> tuple[dict[str, Any], float]:
    values = jax.block_until_ready(function())  # compile and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        values = jax.block_until_ready(function())
        best = min(best, time.perf_counter() - start)
    return values, best


def reference_path() -> Path:
    """The stored reference values (package data)."""
    return Path(str(resources.files("kdwide_book") / "data" / REFERENCE_FILE))


def run_checks(scale: str, *, repeats: int = 3, reference: dict[str, Any] | None = None) -> list[CheckResult]:
    """Run every workload at ``scale`` and compare with the stored reference (or ``reference``, same layout).

    Args:
      scale: ``"paper"`` or ``"small"``.
      repeats: timed runs after the warm-up (≥ 1); the best is reported.
      reference: ``{scale: {workload: {name: values}}}``; default: the stored file.

    Returns:
      One :class:`CheckResult` per workload.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if reference is None:
        reference = json.loads(reference_path().read_text())
    if scale not in reference:
        raise ValueError(f"the reference has no values for scale {scale!r} (it has {sorted(reference)})")
    results = []
    for name, function in workload_values(scale).items():
        values, seconds = _timed(function, repeats)
        difference = _relative_difference(values, reference[scale][name])
        results.append(CheckResult(name, seconds, difference, TOLERANCES[name]))
    return results


def platform_report() -> str:
    """Python, jax/jaxlib, backend and devices, in one line each."""
    devices = ", ".join(f"{device.platform}:{device.device_kind}" for device in jax.devices())
    return "\n".join([
        f"python {platform.python_version()} on {platform.machine()}; kdwide {kdwide.__version__}, "
        f"jax {jax.__version__}, jaxlib {metadata.version('jaxlib')}",
        f"backend: {jax.default_backend()}; devices: {devices}; float64: {bool(jax.config.jax_enable_x64)}",
    ])


def _write_reference(path: Path) -> None:
    if jax.default_backend() != "cpu":
        raise SystemExit(f"--write-reference computes float64 CPU values; this backend is {jax.default_backend()!r}")
    stored: dict[str, Any] = {}
    for scale in SCALES:
        stored[scale] = {}
        for name, function in workload_values(scale).items():
            print(f"reference: {scale} {name} ...", flush=True)
            values = function()
            stored[scale][name] = {k: np.asarray(v, np.float64).tolist() for k, v in values.items()}
    write_json(path, stored, compact=True)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdwide_book.device_check", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="paper")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-reference", action="store_true", help="recompute the stored values (CPU only)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    print(platform_report(), flush=True)
    if args.write_reference:
        _write_reference(reference_path())
        return 0
    sizes = ", ".join(f"{k} {v}" for k, v in SCALES[args.scale].items())
    print(f"scale {args.scale}: {sizes}; best of {args.repeats} after a warm-up", flush=True)
    results = run_checks(args.scale, repeats=args.repeats)
    for result in results:
        verdict = "agrees" if result.agrees else "DIFFERS"
        print(f"{result.workload:<17} {result.seconds:9.3f} s   max relative difference {result.relative_difference:.2e}"
              f" (tolerance {result.tolerance:.0e}): {verdict}", flush=True)
    failed = [r.workload for r in results if not r.agrees]
    print("all workloads agree with the float64 CPU reference" if not failed else f"DIFFERENT: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
