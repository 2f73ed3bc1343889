r"""Fully connected students and teachers in NTK parameterization (claim S2).

This is the only module of :mod:`kdwide` that imports ``neural_tangents``: a reader sees here where it enters.

Architecture. ``depth`` hidden layers of ``width`` units and a scalar readout, every layer a
``neural_tangents.stax.Dense`` in NTK parameterization,

.. math::

    h_1 = \frac{\sigma_W}{\sqrt{d}}\, x W_1 + \sigma_b b_1, \qquad
    h_{l+1} = \frac{\sigma_W}{\sqrt{n_l}}\, \phi(h_l) W_{l+1} + \sigma_b b_{l+1}, \qquad
    f(x; w) = h_{L+1} \in \mathbb R,

with all entries of :math:`W_l, b_l` drawn i.i.d. :math:`\mathcal N(0, 1)` at initialization,
:math:`\phi` = ReLU or erf, :math:`L` = ``depth``. The same :math:`(\sigma_W, \sigma_b)` are used in every
layer, the readout included.

Importing neural-tangents imports TensorFlow, whose C++ runtime writes log lines straight to file
descriptor 2 at import time (Python's ``sys.stderr`` never sees them). Notebook checks compare stderr
exactly, so :func:`_import_neural_tangents` points descriptor 2 at ``/dev/null`` around that one import
and restores it afterwards (it also drops the ``jax.core.* is deprecated`` warnings that import raises).
Nothing else is silenced: a real ``ImportError`` propagates, and our own warnings are never hidden.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from kdwide.validation import ACTIVATIONS, check_architecture, check_positive_int

__all__ = [
    "ACTIVATIONS",
    "check_architecture",
    "fully_connected_network",
    "jacobian_contraction_ntk_fn",
]

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


def _import_neural_tangents() -> Any:
    """Import ``neural_tangents`` with TensorFlow's import-time C++ logging silenced (see module docstring)."""
    if "neural_tangents" in sys.modules:
        return sys.modules["neural_tangents"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _file_descriptor_2_to_devnull(), warnings.catch_warnings():
        # neural-tangents 0.6.5 imports names that jax 0.5.3 marks deprecated (jax.core.Var, ...): its
        # business, not the reader's. Only these import-time messages are filtered.
        warnings.filterwarnings("ignore", message=r"jax\.core\.\w+ is deprecated", category=DeprecationWarning)
        import neural_tangents  # noqa: PLC0415  (the one place it is imported)
    return neural_tangents


nt = _import_neural_tangents()
stax = nt.stax


def fully_connected_network(
    *, depth: int, width: int, activation: str = "relu", w_std: float, b_std: float
) -> tuple[Callable, Callable, Callable]:
    """A fully connected network with a scalar output, in NTK parameterization (``neural_tangents.stax``).

    Args:
      depth: number of hidden layers :math:`L` (≥ 1).
      width: units per hidden layer (≥ 1); ignored by ``kernel_fn`` (infinite width).
      activation: ``"relu"`` or ``"erf"`` (:math:`\\mathrm{erf}(x)`).
      w_std: :math:`\\sigma_W` > 0 of every ``Dense`` layer.
      b_std: :math:`\\sigma_b` ≥ 0 of every ``Dense`` layer.

    Returns:
      ``(init_fn, apply_fn, kernel_fn)`` as from ``stax.serial``:
      ``init_fn(key, (-1, d)) -> (output_shape, params)`` with ``params`` a list of ``depth + 1`` pairs
      ``(W, b)`` (``W`` of shape ``(fan_in, fan_out)``, ``b`` of shape ``(1, fan_out)``) interleaved with
      empty tuples for the activations; ``apply_fn(params, x)`` maps ``(n, d)`` inputs to ``(n, 1)`` logits;
      ``kernel_fn(x1, x2, "ntk" | "nngp")`` is the infinite-width kernel, shape ``(n1, n2)``.
    """
    depth, activation, w_std, b_std = check_architecture(depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    width = check_positive_int(width, "width")
    nonlinearity = {"relu": stax.Relu, "erf": stax.Erf}[activation]
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=w_std, b_std=b_std, parameterization="ntk"), nonlinearity()]
    layers.append(stax.Dense(1, W_std=w_std, b_std=b_std, parameterization="ntk"))
    return stax.serial(*layers)


def jacobian_contraction_ntk_fn(apply_fn: Callable) -> Callable:
    """neural-tangents' reference empirical NTK (``NtkImplementation.JACOBIAN_CONTRACTION``).

    Slow (it materializes every per-sample Jacobian) but generic; :func:`kdwide.kernels.empirical_ntk`
    uses it as ``method="jacobian_contraction"`` to check its fast structured formula.

    Args:
      apply_fn: ``apply_fn(params, x)`` with scalar output per input, shape ``(n, 1)``.

    Returns:
      ``ntk_fn(x1, x2, params) -> (n1, n2)`` (output axes traced out, inputs vmapped).
    """
    return nt.empirical_ntk_fn(
        apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION
    )
