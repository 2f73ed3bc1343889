r"""neural-tangents as the reference implementation: the same networks and kernels, compared where it is installed.

:mod:`kdwide` computes its networks (:mod:`kdwide.networks`), analytic kernels and empirical NTK
(:mod:`kdwide.kernels`) itself, so that it runs on current JAX, Python 3.11 to 3.13 and GPUs. The last
neural-tangents release (0.6.5) imports only with jax ≤ 0.5.3 and TensorFlow. It stays in the pinned book
environment as the independent reference: this module is the only place that imports it, and only when one
of its functions is called (``import kdwide`` never imports neural-tangents or TensorFlow).

Importing neural-tangents imports TensorFlow, whose C++ runtime writes log lines straight to file descriptor 2
at import time (Python's ``sys.stderr`` never sees them, and ``TF_CPP_MIN_LOG_LEVEL`` does not stop all of
them). Notebook checks compare stderr exactly, so :func:`import_neural_tangents` points descriptor 2 at
``/dev/null`` around that one import and restores it afterwards (it also drops the ``jax.core.* is
deprecated`` warnings that import raises). Nothing else is silenced: our own warnings are never hidden.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import jax
import numpy as np

from kdwide.architecture import Architecture
from kdwide.seeds import Streams
from kdwide.validation import check_architecture, check_positive_int

__all__ = [
    "AGREEMENT_TOLERANCE",
    "NeuralTangentsAgreement",
    "agreement_with_neural_tangents",
    "import_neural_tangents",
    "neural_tangents_network",
    "neural_tangents_unavailable_reason",
]

AGREEMENT_TOLERANCE = 1e-10
"""Largest relative difference (max-abs difference over max-abs value) counted as agreement."""


@contextlib.contextmanager
def _file_descriptor_2_to_devnull() -> Iterator[None]:
    """Point OS file descriptor 2 at /dev/null inside the block; always restore it."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_neural_tangents() -> Any:
    """Import ``neural_tangents`` with TensorFlow's import-time C++ logging silenced (see module docstring).

    Raises:
      ImportError: neural-tangents is not installed or cannot be imported with this JAX (it needs jax ≤ 0.5.3);
        the message says which.
    """
    if "neural_tangents" in sys.modules:
        return sys.modules["neural_tangents"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with _file_descriptor_2_to_devnull(), warnings.catch_warnings():
            # neural-tangents 0.6.5 imports names that jax 0.5.3 marks deprecated (jax.core.Var, ...): its
            # business, not the reader's. Only these import-time messages are filtered.
            warnings.filterwarnings("ignore", message=r"jax\.core\.\w+ is deprecated", category=DeprecationWarning)
            import neural_tangents  # noqa: PLC0415  (the one place it is imported)
    except Exception as error:  # noqa: BLE001  (with a newer jax its import can fail in other ways than ImportError)
        raise ImportError(_unavailable_message(error)) from error
    return neural_tangents


def _unavailable_message(error: Exception) -> str:
    try:
        version = metadata.version("neural-tangents")
    except metadata.PackageNotFoundError:
        return "neural-tangents is not installed (it is part of the pinned book environment: make setup)"
    return (
        f"neural-tangents {version} is installed but cannot be imported with jax {jax.__version__} "
        f"(its last release needs jax <= 0.5.3): {error}"
    )


def neural_tangents_unavailable_reason() -> str | None:
    """``None`` if neural-tangents imports here, else one sentence saying why not (for skips and chapter text)."""
    try:
        import_neural_tangents()
    except ImportError as error:
        return str(error)
    return None


def neural_tangents_network(
    *, depth: int, width: int, activation: str = "relu", w_std: float, b_std: float
) -> tuple[Callable, Callable, Callable]:
    """The network of :func:`kdwide.networks.fully_connected_network` built with ``neural_tangents.stax``.

    Same arguments; returns ``stax.serial``'s ``(init_fn, apply_fn, kernel_fn)``.

    Raises:
      ImportError: neural-tangents cannot be imported here (see :func:`import_neural_tangents`).
    """
    depth, activation, w_std, b_std = check_architecture(depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    width = check_positive_int(width, "width")
    stax = import_neural_tangents().stax
    nonlinearity = {"relu": stax.Relu, "erf": stax.Erf}[activation]
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=w_std, b_std=b_std, parameterization="ntk"), nonlinearity()]
    layers.append(stax.Dense(1, W_std=w_std, b_std=b_std, parameterization="ntk"))
    return stax.serial(*layers)


@dataclass(frozen=True)
class NeuralTangentsAgreement:
    """What :func:`agreement_with_neural_tangents` found.

    Attributes:
      unavailable_reason: ``None`` when neural-tangents was compared, else why it could not be.
      neural_tangents_version: its version when compared.
      same_parameters: the same key gives bitwise the same weights in both.
      relative_differences: max-abs difference over max-abs value, per quantity (``outputs``,
        ``analytic_ntk``, ``analytic_nngp``, ``empirical_ntk``).
      tolerance: :data:`AGREEMENT_TOLERANCE`.
    """

    unavailable_reason: str | None
    neural_tangents_version: str | None = None
    same_parameters: bool = False
    relative_differences: dict[str, float] = field(default_factory=dict)
    tolerance: float = AGREEMENT_TOLERANCE

    @property
    def agrees(self) -> bool:
        """True iff compared, same parameters, and every relative difference within the tolerance."""
        return (
            self.unavailable_reason is None
            and self.same_parameters
            and all(difference <= self.tolerance for difference in self.relative_differences.values())
        )


    def report(self) -> str:
        """A few lines for a reader: what was compared and whether it agreed (no digits that vary with threads)."""
        if self.unavailable_reason is not None:
            return f"comparison with neural-tangents skipped: {self.unavailable_reason}"
        lines = [f"neural-tangents {self.neural_tangents_version}: same weights from the same key: {self.same_parameters}"]
        for name, difference in self.relative_differences.items():
            relation = "<=" if difference <= self.tolerance else ">"
            lines.append(f"  {name.replace('_', ' ')}: relative difference {relation} {self.tolerance:.0e}")
        lines.append(f"kdwide agrees with neural-tangents: {self.agrees}")
        return "\n".join(lines)


def _relative_difference(ours: Any, theirs: Any) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        return float("inf")
    return float(np.max(np.abs(ours - theirs)) / max(float(np.max(np.abs(theirs))), 1e-300))


def agreement_with_neural_tangents(
    x: Any, *, architecture: Architecture, width: int, streams: Streams
) -> NeuralTangentsAgreement:
    """Build the same network in :mod:`kdwide` and in ``neural_tangents.stax`` and compare everything.

    Compared on the inputs ``x`` (shape ``(n, d)``): the initial parameters for the key of stream ``network`` of
    ``streams`` (bitwise; the key chapter 2's networks start from),
    the network outputs, the analytic NTK and NNGP off the diagonal (``kernel_fn``; on the diagonal kdwide is
    exact and neural-tangents is not, see :mod:`kdwide.kernels`), and the empirical NTK (kdwide's
    structured formula against neural-tangents' ``JACOBIAN_CONTRACTION``, which materializes every
    per-sample Jacobian: keep ``n × parameters`` small).

    Returns:
      A :class:`NeuralTangentsAgreement`; where neural-tangents cannot be imported, one with
      ``unavailable_reason`` set and nothing compared (never an exception).

    Example:
      >>> from kdwide.architecture import Architecture
      >>> from kdwide.seeds import Streams
      >>> architecture = Architecture(depth=1, activation="relu", w_std=1.4, b_std=0.1)
      >>> result = agreement_with_neural_tangents(np.eye(3), architecture=architecture, width=16, streams=Streams(0))
      >>> result.agrees or result.unavailable_reason is not None
      True
    """
    reason = neural_tangents_unavailable_reason()
    if reason is not None:
        return NeuralTangentsAgreement(unavailable_reason=reason)
    nt = import_neural_tangents()
    x = np.asarray(x, np.float64)
    init_fn, apply_fn = architecture.network(width=width)
    nt_init_fn, nt_apply_fn, nt_kernel_fn = neural_tangents_network(width=width, **architecture.record())
    key = streams.key("network")
    params, nt_params = init_fn(key, x.shape)[1], nt_init_fn(key, x.shape)[1]
    leaves, nt_leaves = jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(nt_params)
    same = len(leaves) == len(nt_leaves) and all(np.array_equal(a, b) for a, b in zip(leaves, nt_leaves))
    # Off the diagonal only: there kdwide's analytic kernels are exact (a recursion at cosine 1), while the
    # arccos formula that neural-tangents uses loses ~1e-9 relative (chapter 2 and tests/test_kernels.py).
    off_diagonal = ~np.eye(x.shape[0], dtype=bool)
    nt_kernels = nt_kernel_fn(x, None, ("ntk", "nngp"))
    nt_empirical = nt.empirical_ntk_fn(
        nt_apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION
    )(x, None, nt_params)
    differences = {
        "outputs": _relative_difference(apply_fn(params, x), nt_apply_fn(nt_params, x)),
        "analytic_ntk": _relative_difference(
            np.asarray(architecture.kernel(x))[off_diagonal], np.asarray(nt_kernels.ntk)[off_diagonal]
        ),
        "analytic_nngp": _relative_difference(
            np.asarray(architecture.nngp_kernel(x))[off_diagonal], np.asarray(nt_kernels.nngp)[off_diagonal]
        ),
        "empirical_ntk": _relative_difference(architecture.empirical_kernel(apply_fn, params, x), nt_empirical),
    }
    return NeuralTangentsAgreement(
        unavailable_reason=None,
        neural_tangents_version=metadata.version("neural-tangents"),
        same_parameters=same,
        relative_differences=differences,
    )
