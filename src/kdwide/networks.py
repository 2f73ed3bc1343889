r"""Fully connected students and teachers in NTK parameterization (claim S2), in plain JAX.

Architecture. ``depth`` hidden layers of ``width`` units and a scalar readout, every layer a dense layer in
NTK parameterization,

.. math::

    h_1 = \frac{\sigma_W}{\sqrt{d}}\, x W_1 + \sigma_b b_1, \qquad
    h_{l+1} = \frac{\sigma_W}{\sqrt{n_l}}\, \phi(h_l) W_{l+1} + \sigma_b b_{l+1}, \qquad
    f(x; w) = h_{L+1} \in \mathbb R,

with all entries of :math:`W_l, b_l` drawn i.i.d. :math:`\mathcal N(0, 1)` at initialization,
:math:`\phi` = ReLU or erf, :math:`L` = ``depth``. The same :math:`(\sigma_W, \sigma_b)` are used in every
layer, the readout included.

Why our own code and not ``neural_tangents.stax``: the last neural-tangents release (0.6.5) imports only with
jax ≤ 0.5.3 and imports TensorFlow on every import (seconds and ~0.8 GB). The network above is a few lines of
JAX, so :mod:`kdwide` keeps no dependency on it and runs on current JAX and on GPUs. The layout of the
parameters and the random draws are those of ``stax.serial(Dense, Relu, ..., Dense)`` with
``parameterization="ntk"``: for the same key, both give the same weights and the same outputs.
:mod:`kdwide.reference` compares the two where neural-tangents is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from kdwide.kernels import analytic_nngp, analytic_ntk
from kdwide.validation import ACTIVATIONS, check_architecture, check_positive_int

__all__ = [
    "ACTIVATIONS",
    "check_architecture",
    "fully_connected_network",
    "random_features",
]

_ACTIVATION_FUNCTIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": lambda h: jnp.maximum(h, 0),
    "erf": jax.scipy.special.erf,
}


def _dense_apply(W: jax.Array, b: jax.Array, inputs: jax.Array, *, w_std: float, b_std: float) -> jax.Array:
    """One NTK-parameterized dense layer on ``(n, fan_in)`` inputs, written as ``stax.Dense`` writes it
    (``tensordot`` then ``moveaxis``), so that both sum the products in the same order."""
    product = jnp.moveaxis(jnp.tensordot(W, inputs, (0, 1)), 0, 1)
    return (w_std / inputs.shape[1] ** 0.5) * product + b_std * b


def fully_connected_network(
    *, depth: int, width: int, activation: str = "relu", w_std: float, b_std: float
) -> tuple[Callable, Callable, Callable]:
    r"""A fully connected network with a scalar output, in NTK parameterization.

    Args:
      depth: number of hidden layers :math:`L` (≥ 1).
      width: units per hidden layer (≥ 1); ignored by ``kernel_fn`` (infinite width).
      activation: ``"relu"`` or ``"erf"`` (:math:`\mathrm{erf}(x)`).
      w_std: :math:`\sigma_W` > 0 of every dense layer.
      b_std: :math:`\sigma_b` ≥ 0 of every dense layer.

    Returns:
      ``(init_fn, apply_fn, kernel_fn)``:
      ``init_fn(key, (n, d)) -> ((n, 1), params)`` with ``params`` a list of ``depth + 1`` pairs
      ``(W, b)`` (``W`` of shape ``(fan_in, fan_out)``, ``b`` of shape ``(1, fan_out)``) interleaved with
      empty tuples for the activations; ``apply_fn(params, x)`` maps ``(n, d)`` inputs to ``(n, 1)`` logits;
      ``kernel_fn(x1, x2=None, get="ntk")`` is the infinite-width kernel (``"ntk"`` or ``"nngp"``), shape
      ``(n1, n2)``, from :mod:`kdwide.kernels`.

    Example:
      >>> from kdwide.seeds import Streams
      >>> init_fn, apply_fn, kernel_fn = fully_connected_network(depth=1, width=512, w_std=1.4, b_std=0.1)
      >>> x = Streams(0).rng("inputs").normal(size=(4, 3))
      >>> _, params = init_fn(Streams(0).key("network"), x.shape)
      >>> apply_fn(params, x).shape, kernel_fn(x).shape
      ((4, 1), (4, 4))
    """
    depth, activation, w_std, b_std = check_architecture(depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    width = check_positive_int(width, "width")
    phi = _ACTIVATION_FUNCTIONS[activation]
    fan_outs = [width] * depth + [1]

    def init_fn(key: jax.Array, input_shape: tuple[int, ...]) -> tuple[tuple[int, int], list]:
        # The key stream of stax.serial: one split per layer (activations included), then (W, b) from one split.
        if len(input_shape) != 2:
            raise ValueError(f"input_shape must be (n, d), got {tuple(input_shape)}")
        params: list = []
        fan_in = input_shape[1]
        for index, fan_out in enumerate(fan_outs):
            key, layer_key = jax.random.split(key)
            weight_key, bias_key = jax.random.split(layer_key)
            params.append((jax.random.normal(weight_key, (fan_in, fan_out)), jax.random.normal(bias_key, (1, fan_out))))
            fan_in = fan_out
            if index < depth:
                key, _ = jax.random.split(key)
                params.append(())
        return (input_shape[0], 1), params

    def apply_fn(params: list, x: jax.Array, **_: object) -> jax.Array:
        h = jnp.asarray(x)
        dense = params[0::2]
        for index, (W, b) in enumerate(dense):
            h = _dense_apply(W, b, h, w_std=w_std, b_std=b_std)
            if index < depth:
                h = phi(h)
        return h

    def kernel_fn(x1: jax.Array, x2: jax.Array | None = None, get: str = "ntk") -> jax.Array:
        if get not in ("ntk", "nngp"):
            raise ValueError(f"get must be 'ntk' or 'nngp', got {get!r}")
        kernel = analytic_ntk if get == "ntk" else analytic_nngp
        return kernel(x1, x2, depth=depth, activation=activation, w_std=w_std, b_std=b_std)

    return init_fn, apply_fn, kernel_fn


def random_features(apply_fn: Callable, params: Any, x: np.ndarray) -> np.ndarray:
    r"""Explicit random features :math:`\phi(x) = \partial_w f(x; w_0)` of a finite network, one row per input.

    For cross-checks of the kernel algebra on small networks (it materializes an ``(n, P)`` matrix).

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, 1)`` (e.g. from :func:`kdwide.networks.fully_connected_network`).
      params: parameter pytree :math:`w_0`.
      x: inputs ``(n, d)``.

    Returns:
      ``(n, P)`` float64 Jacobian; columns in the order of ``jax.flatten_util.ravel_pytree(params)``.
    """
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
    flat, unravel = ravel_pytree(params)
    x = jnp.asarray(x, jnp.float64)
    return np.asarray(jax.jacobian(lambda w: apply_fn(unravel(w), x)[:, 0])(flat))
