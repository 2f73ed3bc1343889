r"""Tangent kernels of fully connected networks: analytic (infinite width) and empirical (finite width).

Analytic kernels
----------------
For the network of :mod:`kdwide.networks` (``depth`` = :math:`L` hidden layers, NTK parameterization,
same :math:`\sigma_W, \sigma_b` everywhere) the infinite-width NNGP kernel :math:`q` and NTK :math:`\Theta`
follow the layer recursion (Jacot et al. 2018; Lee et al. 2019), starting from
:math:`q_1(x, x') = \sigma_W^2\, x\cdot x'/d + \sigma_b^2`, :math:`\Theta_1 = q_1`:

.. math::

    q_{l+1} = \sigma_W^2\, \mathbb E[\phi(u)\phi(v)] + \sigma_b^2, \qquad
    \Theta_{l+1} = q_{l+1} + \sigma_W^2\, \mathbb E[\phi'(u)\phi'(v)]\, \Theta_l ,

with :math:`(u, v)` centred Gaussian with covariance :math:`\begin{psmallmatrix} q_l(x,x) & q_l(x,x') \\
q_l(x,x') & q_l(x',x')\end{psmallmatrix}`; the output kernel is :math:`\Theta_{L+1}`. Closed forms:

- ReLU, with :math:`\theta = \operatorname{atan2}\big(\sqrt{q_{11}q_{22} - q_{12}^2},\, q_{12}\big)`:
  :math:`\mathbb E[\phi\phi] = \big(\sqrt{q_{11}q_{22} - q_{12}^2} + (\pi - \theta) q_{12}\big)/(2\pi)`,
  :math:`\mathbb E[\phi'\phi'] = (\pi - \theta)/(2\pi)`.
- erf, with :math:`s = \sqrt{(1 + 2q_{11})(1 + 2q_{22}) - 4q_{12}^2}`:
  :math:`\mathbb E[\phi\phi] = \tfrac2\pi \operatorname{atan2}(2q_{12}, s)`,
  :math:`\mathbb E[\phi'\phi'] = \tfrac{4}{\pi s}`.

These are the formulas of ``neural_tangents.stax``; where neural-tangents is installed, tests compare with its
``kernel_fn`` (:mod:`kdwide.reference`).

Exact diagonals (the book's pitfall 2, exact diagonals). On the diagonal :math:`q_{12} = q_{11} = q_{22}`, but
:math:`q_{11}q_{22} - q_{12}^2` computed in floating point is :math:`\pm\epsilon q^2` rather than 0, and the
square root turns that into an angle :math:`\theta \approx 10^{-8}` and a relative error
:math:`\sim 10^{-8}` in :math:`\Theta(x, x)`. Enough to spoil posterior variances and log-norm differences.
Here the diagonal is computed by its own recursion at cosine 1 (:math:`\theta = 0`:
:math:`\mathbb E[\phi\phi] = q/2`, :math:`\mathbb E[\phi'\phi'] = 1/2` for ReLU;
:math:`s = \sqrt{1 + 4q}` for erf), which involves no cancellation. :func:`analytic_ntk` with ``x2=None``
writes these exact values on its diagonal, and :func:`analytic_ntk_diagonal` returns them alone.

Empirical kernels
-----------------
:func:`empirical_ntk` computes :math:`\hat\Theta = \varphi(X)^\top\varphi(X')` of a finite network from
its parameters by a layer-wise structured formula (its docstring says why), with a generic Jacobian
contraction (the algorithm of neural-tangents' ``JACOBIAN_CONTRACTION``) kept as the reference path.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from kdwide.validation import check_architecture, check_finite, check_positive_int

__all__ = [
    "JACOBIAN_CONTRACTION",
    "STRUCTURED",
    "analytic_nngp",
    "analytic_ntk",
    "analytic_ntk_diagonal",
    "empirical_ntk",
]

_BLOCK_ENTRIES = 2**22
"""Default number of kernel entries computed per block (bounds temporary memory to ~0.3 GB)."""


def _as_inputs(x, name: str) -> jax.Array:
    x = jnp.asarray(x, dtype=jnp.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n, d) with n >= 1 and d >= 1, got shape {x.shape}")
    check_finite(x, name)
    return x


def _diagonal_recursion(x, *, depth, activation, w_std, b_std):
    """Per-point NNGP ``q_l(x, x)`` for the layers and output NTK/NNGP, exactly (cosine 1). Shapes ``(n,)``."""
    w2, b2 = w_std**2, b_std**2
    q = w2 * jnp.sum(x * x, axis=1) / x.shape[1] + b2
    ntk = q
    variances = [q]
    for _ in range(depth):
        if activation == "relu":
            mean_product, mean_derivative_product = q / 2, 0.5
        else:
            root = jnp.sqrt(1 + 4 * q)
            mean_product = (2 / jnp.pi) * jnp.arctan2(2 * q, root)
            mean_derivative_product = 4 / (jnp.pi * root)
        q = w2 * mean_product + b2
        ntk = q + w2 * mean_derivative_product * ntk
        variances.append(q)
    return variances, q, ntk


@partial(jax.jit, static_argnames=("depth", "activation", "w_std", "b_std"))
def _block(x1, x2, variances1, variances2, *, depth, activation, w_std, b_std):
    """Off-diagonal recursion on a block: returns ``(nngp, ntk)``, each ``(n1, n2)``."""
    w2, b2 = w_std**2, b_std**2
    q = w2 * (x1 @ x2.T) / x1.shape[1] + b2
    ntk = q
    for layer in range(depth):
        q11, q22 = variances1[layer][:, None], variances2[layer][None, :]
        if activation == "relu":
            root = jnp.sqrt(jnp.maximum(q11 * q22 - q * q, 0.0))
            angle = jnp.arctan2(root, q)
            mean_product = (root + (jnp.pi - angle) * q) / (2 * jnp.pi)
            mean_derivative_product = (jnp.pi - angle) / (2 * jnp.pi)
        else:
            root = jnp.sqrt((1 + 2 * q11) * (1 + 2 * q22) - 4 * q * q)
            mean_product = (2 / jnp.pi) * jnp.arctan2(2 * q, root)
            mean_derivative_product = 4 / (jnp.pi * root)
        q = w2 * mean_product + b2
        ntk = q + w2 * mean_derivative_product * ntk
    return q, ntk


def _analytic(x1, x2, *, depth, activation, w_std, b_std, batch_size, kind):
    depth, activation, w_std, b_std = check_architecture(depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    x1 = _as_inputs(x1, "x1")
    same = x2 is None
    x2 = x1 if same else _as_inputs(x2, "x2")
    if x2.shape[1] != x1.shape[1]:
        raise ValueError(f"x1 and x2 must have the same input dimension d, got {x1.shape[1]} and {x2.shape[1]}")
    n1, n2 = x1.shape[0], x2.shape[0]
    if batch_size is None:
        batch_size = max(1, min(n1, _BLOCK_ENTRIES // n2))
    batch_size = check_positive_int(batch_size, "batch_size")
    hyper = dict(depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    variances1, nngp_diag1, ntk_diag1 = _diagonal_recursion(x1, **hyper)
    variances2 = variances1 if same else _diagonal_recursion(x2, **hyper)[0]
    stacked1 = jnp.stack(variances1[:-1])
    stacked2 = jnp.stack(variances2[:-1])
    n_blocks = math.ceil(n1 / batch_size)
    padding = n_blocks * batch_size - n1
    x1_padded = jnp.pad(x1, ((0, padding), (0, 0)), constant_values=1.0)
    stacked1_padded = jnp.pad(stacked1, ((0, 0), (0, padding)), constant_values=1.0)
    index = 0 if kind == "nngp" else 1
    blocks = []
    for start in range(0, n_blocks * batch_size, batch_size):
        stop = start + batch_size
        pieces = _block(x1_padded[start:stop], x2, stacked1_padded[:, start:stop], stacked2, **hyper)
        blocks.append(pieces[index])
    kernel = jnp.concatenate(blocks, axis=0)[:n1]
    if same:
        exact = nngp_diag1 if kind == "nngp" else ntk_diag1
        kernel = kernel.at[jnp.arange(n1), jnp.arange(n1)].set(exact)
    return kernel


def analytic_ntk(
    x1: jax.Array,
    x2: jax.Array | None = None,
    *,
    depth: int,
    activation: str = "relu",
    w_std: float,
    b_std: float,
    batch_size: int | None = None,
) -> jax.Array:
    r"""Infinite-width NTK :math:`\Theta(x_1, x_2)` of :func:`kdwide.networks.fully_connected_network`, float64.

    Args:
      x1: inputs, shape ``(n1, d)``.
      x2: inputs, shape ``(n2, d)``; ``None`` means ``x1`` (then the diagonal is exact, see module docstring).
      depth: number of hidden layers (≥ 1).
      activation: ``"relu"`` or ``"erf"``.
      w_std: :math:`\sigma_W` > 0.
      b_std: :math:`\sigma_b` ≥ 0.
      batch_size: rows of ``x1`` per jit-compiled block (bounds memory); default keeps ~4M entries per block.

    Returns:
      Array of shape ``(n1, n2)`` (``(n1, n1)`` if ``x2`` is None), float64.

    Example:
      >>> import numpy as np
      >>> x = np.eye(2)  # two orthogonal unit inputs
      >>> np.round(np.asarray(analytic_ntk(x, depth=1, w_std=1.0, b_std=0.0)), 4)
      array([[0.5   , 0.0796],
             [0.0796, 0.5   ]])
    """
    return _analytic(
        x1, x2, depth=depth, activation=activation, w_std=w_std, b_std=b_std, batch_size=batch_size, kind="ntk"
    )


def analytic_nngp(x1: jax.Array, x2: jax.Array | None = None, **hyperparameters) -> jax.Array:
    r"""Infinite-width NNGP kernel (covariance of the output at initialization), float64.

    Same keyword arguments (``depth``, ``activation``, ``w_std``, ``b_std``, ``batch_size``), shapes and
    exact-diagonal rule as :func:`analytic_ntk`.
    """
    return _analytic(x1, x2, **{"activation": "relu", "batch_size": None, **hyperparameters}, kind="nngp")


def analytic_ntk_diagonal(
    x: jax.Array, *, depth: int, activation: str = "relu", w_std: float, b_std: float
) -> jax.Array:
    r"""Exact :math:`\Theta(x_i, x_i)` for each row of ``x`` (recursion at cosine 1, no arccos).

    This is :math:`\|\varphi(x_i)\|^2` in the infinite-width limit (the squared norm of the random features).

    Args:
      x: inputs, shape ``(n, d)``.
      depth, activation, w_std, b_std: as in :func:`analytic_ntk`.

    Returns:
      Array of shape ``(n,)``, float64.
    """
    depth, activation, w_std, b_std = check_architecture(depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    x = _as_inputs(x, "x")
    return _diagonal_recursion(x, depth=depth, activation=activation, w_std=w_std, b_std=b_std)[2]


# ----------------------------------------------------------------------------------------------------------
# Empirical NTK
# ----------------------------------------------------------------------------------------------------------

STRUCTURED = "structured"
"""``method=`` of :func:`empirical_ntk`: the hand-written layer-wise formula (default, fast)."""

JACOBIAN_CONTRACTION = "jacobian_contraction"
"""``method=`` of :func:`empirical_ntk`: the generic Jacobian contraction (reference, slow)."""

_ACTIVATION_FUNCTIONS = {
    "relu": (jax.nn.relu, lambda h: (h > 0).astype(h.dtype)),
    "erf": (jax.scipy.special.erf, lambda h: (2 / jnp.sqrt(jnp.pi)) * jnp.exp(-h * h)),
}


def _dense_layers(params) -> list[tuple[jax.Array, jax.Array]]:
    """The ``(W, b)`` pairs of a ``stax.serial`` MLP's params, checked for the Dense/activation alternation."""
    layers = list(params)
    dense = layers[0::2]
    if len(layers) % 2 != 1 or any(layer != () for layer in layers[1::2]) or any(len(pair) != 2 for pair in dense):
        raise ValueError(
            "params must come from kdwide.networks.fully_connected_network "
            "(Dense (W, b) pairs alternating with parameter-free activations)"
        )
    if any(b is None for _, b in dense):
        raise ValueError("params must include biases (build the network with a numeric b_std)")
    return [(jnp.asarray(W, jnp.float64), jnp.asarray(b, jnp.float64)) for W, b in dense]


def _features(dense, x, *, activation, w_std):
    """Forward/backward pass: the per-layer inputs ``a_{l-1}`` and output sensitivities ``δ_l``, and ``f(x)``.

    ``dense`` holds ``(W, σ_b b)`` pairs (biases already scaled).

    Returns ``(inputs, sensitivities, output)``: lists over the ``L + 1`` Dense layers of arrays
    ``(n, fan_in_l)`` and ``(n, fan_out_l)``, and the logits ``(n,)``.
    """
    phi, phi_prime = _ACTIVATION_FUNCTIONS[activation]
    inputs, preactivations = [], []
    a = x
    for W, b in dense:
        inputs.append(a)
        h = (w_std / jnp.sqrt(W.shape[0])) * (a @ W) + b
        preactivations.append(h)
        a = phi(h)
    output = preactivations[-1][:, 0]
    sensitivities = [jnp.ones_like(preactivations[-1])]
    for (W, _), h in zip(dense[:0:-1], preactivations[-2::-1]):
        upstream = (w_std / jnp.sqrt(W.shape[0])) * (sensitivities[0] @ W.T)
        sensitivities.insert(0, phi_prime(h) * upstream)
    return inputs, sensitivities, output


@jax.jit
def _gram_sum(features1, features2, w_std, b_std):
    """The structured sum over layers of ``[c_l² a·a' + σ_b²] (δ·δ')``, shape ``(n1, n2)``."""
    (inputs1, sensitivities1), (inputs2, sensitivities2) = features1, features2
    kernel = jnp.zeros((inputs1[0].shape[0], inputs2[0].shape[0]), inputs1[0].dtype)
    for a1, a2, d1, d2 in zip(inputs1, inputs2, sensitivities1, sensitivities2):
        kernel += ((w_std**2 / a1.shape[1]) * (a1 @ a2.T) + b_std**2) * (d1 @ d2.T)
    return kernel


@partial(jax.jit, static_argnames=("activation",))
def _features_jit(dense_scaled, x, w_std, *, activation):
    inputs, sensitivities, output = _features(dense_scaled, x, activation=activation, w_std=w_std)
    return (inputs, sensitivities), output


# Why the structured formula of empirical_ntk: the generic Jacobian contraction (method="jacobian_contraction", the
# algorithm of neural-tangents' JACOBIAN_CONTRACTION) materializes the per-sample Jacobians and is hundreds of times
# slower on the 2-hidden-layer, width-1024, n = 1024 case (benchmarks/kernels.py); neural-tangents'
# STRUCTURED_DERIVATIVES exploits the same outer-product structure generically but crashes on jax 0.5.3, the last jax
# that neural-tangents imports with. The formula is the same algebra written out for the one architecture we use, in
# ~20 lines that a reader can check against the equation. It is restricted to those MLPs; method="jacobian_contraction"
# is the generic reference, and tests check both agree to 1e-10 (and agree with neural-tangents where installed).
def empirical_ntk(
    apply_fn,
    params,
    x1: jax.Array,
    x2: jax.Array | None = None,
    *,
    activation: str = "relu",
    w_std: float,
    b_std: float,
    method: str = STRUCTURED,
    batch_size: int | None = None,
) -> jax.Array:
    r"""Empirical (finite-width) NTK :math:`\hat\Theta(x, x') = \partial_w f(x; w)\cdot\partial_w f(x'; w)`, float64.

    Method (``method="structured"``, the default). For the Dense MLPs of
    :func:`kdwide.networks.fully_connected_network`, layer :math:`l` computes
    :math:`h_l = c_l\, a_{l-1} W_l + \sigma_b b_l` with :math:`c_l = \sigma_W/\sqrt{n_{l-1}}`, so
    :math:`\partial f/\partial W_l = c_l\, a_{l-1} \otimes \delta_l` and
    :math:`\partial f/\partial b_l = \sigma_b \delta_l`
    with :math:`\delta_l = \partial f/\partial h_l` (one forward and one backward pass). The Jacobian of
    each layer is an outer product, hence exactly

    .. math::

        \hat\Theta(x, x') = \sum_{l=1}^{L+1} \Big[c_l^2\, a_{l-1}(x)\cdot a_{l-1}(x') + \sigma_b^2\Big]\,
                            \delta_l(x)\cdot\delta_l(x') ,

    a handful of ``(n, width) @ (width, n)`` matrix products; no per-sample Jacobian is ever formed.

    Why a hand-written formula: see the comment above this function.

    ``apply_fn`` is used by the structured method only to check that ``params`` and the hyperparameters
    given here describe the same network (on up to 8 rows of ``x1``): a mismatch raises ``ValueError``.

    Args:
      apply_fn: ``apply_fn(params, x) -> (n, 1)``, from :func:`kdwide.networks.fully_connected_network`.
      params: that network's parameters (``init_fn`` output or trained).
      x1: inputs, shape ``(n1, d)``.
      x2: inputs, shape ``(n2, d)``; ``None`` means ``x1``.
      activation, w_std, b_std: the network's hyperparameters (must match ``apply_fn``).
      method: ``"structured"`` (:data:`STRUCTURED`) or ``"jacobian_contraction"`` (:data:`JACOBIAN_CONTRACTION`).
      batch_size: rows of ``x1`` per compiled block (bounds memory, structured method); default: all rows.

    Returns:
      Array of shape ``(n1, n2)``, float64.
    """
    _, activation, w_std, b_std = check_architecture(depth=1, activation=activation, w_std=w_std, b_std=b_std)
    if method not in (STRUCTURED, JACOBIAN_CONTRACTION):
        raise ValueError(f"method must be {STRUCTURED!r} or {JACOBIAN_CONTRACTION!r}, got {method!r}")
    x1 = _as_inputs(x1, "x1")
    same = x2 is None
    x2 = x1 if same else _as_inputs(x2, "x2")
    if x2.shape[1] != x1.shape[1]:
        raise ValueError(f"x1 and x2 must have the same input dimension d, got {x1.shape[1]} and {x2.shape[1]}")
    if method == JACOBIAN_CONTRACTION:
        return _jacobian_contraction(apply_fn, params, x1, x2)
    dense = _dense_layers(params)
    if dense[0][0].shape[0] != x1.shape[1]:
        raise ValueError(f"x1 has input dimension {x1.shape[1]} but the network expects {dense[0][0].shape[0]}")
    n1 = x1.shape[0]
    batch_size = n1 if batch_size is None else min(check_positive_int(batch_size, "batch_size"), n1)
    dense_scaled = [(W, b_std * b) for W, b in dense]
    features2, output2 = _features_jit(dense_scaled, x2, w_std, activation=activation)
    if same and batch_size == n1:  # one block against itself: reuse the forward/backward pass
        kernel, output1 = _gram_sum(features2, features2, w_std, b_std), output2
    else:
        n_blocks = math.ceil(n1 / batch_size)
        x1_padded = jnp.pad(x1, ((0, n_blocks * batch_size - n1), (0, 0)))
        blocks, outputs = [], []
        for start in range(0, n_blocks * batch_size, batch_size):
            block = x1_padded[start : start + batch_size]
            features1, output = _features_jit(dense_scaled, block, w_std, activation=activation)
            blocks.append(_gram_sum(features1, features2, w_std, b_std))
            outputs.append(output)
        kernel, output1 = jnp.concatenate(blocks, axis=0)[:n1], jnp.concatenate(outputs)[:n1]
    _check_matches_apply_fn(apply_fn, params, x1, output1)
    return kernel


def _check_matches_apply_fn(apply_fn, params, x, output) -> None:
    rows = min(8, x.shape[0])
    expected = jnp.reshape(apply_fn(params, x[:rows]), (rows,))
    scale = jnp.maximum(jnp.max(jnp.abs(expected)), 1e-300)
    if not bool(jnp.max(jnp.abs(expected - output[:rows])) <= 1e-8 * scale):
        raise ValueError(
            "apply_fn(params, x) differs from the network that activation, w_std and b_std describe: "
            "pass the hyperparameters the network was built with"
        )


def _jacobian_contraction(apply_fn, params, x1, x2) -> jax.Array:
    """Generic empirical NTK: every per-sample Jacobian ``∂f(x_i)/∂w`` materialized, then contracted.

    Any ``apply_fn`` with a scalar output per input; memory ``(n1 + n2) × parameters``. The reference for
    the structured method (the algorithm of neural-tangents' ``JACOBIAN_CONTRACTION``, written with
    ``jax.jacobian`` so that it needs nothing but JAX).
    """

    def flat_jacobian(x):
        jacobian = jax.jacobian(lambda p: jnp.reshape(apply_fn(p, x), (x.shape[0],)))(params)
        leaves = jax.tree_util.tree_leaves(jacobian)
        return jnp.concatenate([jnp.reshape(leaf, (x.shape[0], -1)) for leaf in leaves], axis=1)

    jacobian1 = flat_jacobian(x1)
    jacobian2 = jacobian1 if x2 is x1 else flat_jacobian(x2)
    return jnp.asarray(jacobian1 @ jacobian2.T, jnp.float64)
