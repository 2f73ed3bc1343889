r"""The effective student logit of Corollary 1 (claim C1).

A wide student reaches a global minimum of every per-sample loss, so on a training point its logit
:math:`\hat z` solves

.. math::

    g(\hat z) = \frac{\rho}{T}\big(\sigma(\hat z/T) - \sigma(z_t/T)\big) + (1-\rho)\big(\sigma(\hat z) - y_g\big) = 0 .

Cancellation-free form
----------------------
Write :math:`s = 2y_g - 1`. Replacing :math:`(\hat z, z_t)` by :math:`(s\hat z, s z_t)` maps the
:math:`y_g = 0` equation onto the :math:`y_g = 1` one, so :math:`z_{s,\mathrm{eff}} = s\,h(s z_t)` where
:math:`h(b)` is the root for :math:`y_g = 1`. For :math:`y_g = 1` the root lies right of the teacher,
:math:`\hat z = b + d` with :math:`d > 0`, and with the identity

.. math:: \sigma(u) - \sigma(v) = -\sigma(u)\,\sigma(-v)\,\mathrm{expm1}(v - u)

the equation (both sides positive) becomes, after taking logarithms,

.. math::

    G(d) = \log\frac{\rho}{T(1-\rho)} + \log\sigma\!\Big(\frac{b+d}{T}\Big) + \log\sigma\!\Big(-\frac bT\Big)
           + \log\big(-\mathrm{expm1}(-d/T)\big) + \mathrm{softplus}(b + d) = 0 .

Every term is computed without cancellation, :math:`G` is strictly increasing in :math:`d` and runs
from :math:`-\infty` (at :math:`d = 0`) to :math:`+\infty`. The naive form instead subtracts two
sigmoids that are equal in float64 once both arguments exceed ~37, and returns garbage for confident
teachers at small :math:`\rho` (roots there reach :math:`|z| \approx 300`).

We solve :math:`G = 0` by Newton's method (in :math:`d` where :math:`d \ge T`, in :math:`\log d` below)
safeguarded with bisection inside an analytic bracket (derived in :func:`_bracket`), all in float64,
vectorized over any shape.

Derivatives
-----------
``jax.grad`` / ``jax.jvp`` with respect to ``z_teacher``, ``rho`` and ``temperature`` are exact, by the
implicit function theorem applied to :math:`G` (a ``jax.custom_jvp``), not by differentiating the
iterations. At :math:`\rho = 1` (where :math:`\hat z = z_t`) the one-sided derivative in :math:`\rho` is

.. math:: \frac{\partial \hat z}{\partial \rho}\Big|_{\rho=1} = \frac{T^2\,(\sigma(z_t) - y_g)}{\sigma(z_t/T)\,\sigma(-z_t/T)},

which grows like :math:`T^2 e^{|z_t|/T}` for a confidently wrong teacher (science note 3).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero
import numpy as np

from kdwide.validation import (
    concrete,
    check_finite,
    check_hard_labels,
    check_soft_ratio,
    check_temperature,
)

__all__ = ["effective_logit", "effective_logit_rho_derivative", "stationarity_residual", "student_targets"]

_LOG2 = 0.6931471805599453
_MAX_ITERATIONS = 100
_FIRST_ITERATIONS = 4  # compacted path: steps for all elements before gathering the rest
_FURTHER_ITERATIONS = 2  # compacted path: steps between gatherings
_COMPACT_MINIMUM_SIZE = 4096
_D_TOLERANCE = 1e-15


def _log_sigmoid(x):
    return jax.nn.log_sigmoid(x)


def _objective(d, b, constant, temperature):
    """G(d) and dG/dd for the y_g = 1 problem (root at z = b + d, d > 0).

    ``constant`` is the d-independent part, log(rho / (T (1 - rho))) + log sigma(-b/T). Six
    transcendental evaluations: exp(-|z/T|) and exp(-|z|) serve both the log-sigmoids and the sigmoids
    of the slope, and q = -expm1(-d/T) serves both log q and 1/expm1(d/T) = (1 - q)/q.
    """
    z = b + d
    t = z / temperature
    exp_t = jnp.exp(-jnp.abs(t))
    exp_z = jnp.exp(-jnp.abs(z))
    q = -jnp.expm1(-d / temperature)
    log_sigmoid_t = jnp.minimum(t, 0.0) - jnp.log1p(exp_t)
    softplus_z = jnp.maximum(z, 0.0) + jnp.log1p(exp_z)
    value = constant + log_sigmoid_t + jnp.log(q) + softplus_z
    sigmoid_minus_t = jnp.where(t >= 0, exp_t, 1.0) / (1.0 + exp_t)
    sigmoid_z = jnp.where(z >= 0, 1.0, exp_z) / (1.0 + exp_z)
    slope = sigmoid_minus_t / temperature + (1.0 - q) / (q * temperature) + sigmoid_z
    return value, slope


def _bracket(b, temperature, log_ratio):
    r"""Analytic bracket ``[d_lo, d_hi]`` with ``G(d_lo) < 0 < G(d_hi)``.

    Upper: for :math:`z \ge \max(b, 0) + T\log 2` the two middle log-terms exceed :math:`-\log 2` each
    and softplus(z) ≥ z, so :math:`G \ge z - c - 2\log 2` with
    :math:`c = \log\frac{(1-\rho)T}{\rho} - \log\sigma(-b/T)`.
    Lower: :math:`\log\sigma \le 0`, :math:`\log(-\mathrm{expm1}(-d/T)) \le \log(d/T)` and softplus is
    increasing, so for :math:`d \le d_{hi}`:
    :math:`G \le \log\frac{\rho d}{T^2(1-\rho)} + \log\sigma(-b/T) + \mathrm{softplus}(b + d_{hi})`.
    """
    c = -log_ratio - _log_sigmoid(-b / temperature)
    z_hi = jnp.maximum(jnp.maximum(b, 0.0) + temperature * _LOG2, c + 2.0 * _LOG2) + 1.0
    d_hi = z_hi - b
    log_d_lo = -log_ratio + jnp.log(temperature) - _log_sigmoid(-b / temperature) - jax.nn.softplus(z_hi) - 1.0
    d_lo = jnp.exp(jnp.clip(log_d_lo, -700.0, jnp.log(d_hi) - 1e-3))
    return d_lo, d_hi


class _SolverState(NamedTuple):
    """Per-element state of the y_g = 1 root search (all arrays of one shape)."""

    d: jax.Array  # current iterate, d = z - b > 0
    lower: jax.Array  # bracket: G(lower) < 0
    upper: jax.Array  # bracket: G(upper) > 0
    done: jax.Array  # converged
    b: jax.Array
    constant: jax.Array  # log(rho / (T (1 - rho))) + log sigma(-b/T)
    temperature: jax.Array


def _initial_state(b, rho, temperature) -> _SolverState:
    """Bracket and starting point for rho in (0, 1)."""
    log_ratio = jnp.log(rho) - jnp.log(temperature) - jnp.log1p(-rho)
    lower, upper = _bracket(b, temperature, log_ratio)
    constant = log_ratio + _log_sigmoid(-b / temperature)
    # Start from the dominant balance: G ≈ constant + log(d/T) + log sigma(b/T) + softplus(b) for d ≪ T,
    # and z ≈ max(c, max(b, 0) + T log 2) (the upper-bound argument without its slack) otherwise.
    small_d = temperature * jnp.exp(
        jnp.clip(-(constant + _log_sigmoid(b / temperature) + jax.nn.softplus(b)), -700.0, 700.0)
    )
    large_d = jnp.maximum(-constant, jnp.maximum(b, 0.0) + temperature * _LOG2) - b
    start = jnp.clip(jnp.where(small_d < temperature, small_d, large_d), lower, upper)
    return _SolverState(start, lower, upper, jnp.zeros(jnp.shape(b), bool), b, constant, temperature)


def _newton_step(state: _SolverState) -> _SolverState:
    """One safeguarded Newton step for every element not yet done.

    Newton steps in d where d ≥ T (G is close to linear there) and in log d where d < T (G is close to
    log d there), kept inside the bracket; a step that leaves it is replaced by the other variable's
    Newton step, then by bisection (geometric while the bracket spans more than a factor 4). An element
    is done once its step is below 1e-15·max(d, |b|), the resolution of z = b + d, or its bracket has
    shrunk to that size (the Newton step can then jitter at the noise level of G).
    """
    d, lower, upper, done, b, constant, temperature = state
    value, slope = _objective(d, b, constant, temperature)
    lower = jnp.where(value < 0, d, lower)
    upper = jnp.where(value > 0, d, upper)
    newton_d = d - value / slope
    newton_log_d = d * jnp.exp(jnp.clip(-value / (d * slope), -50.0, 50.0))
    candidate = jnp.where(d >= temperature, newton_d, newton_log_d)
    other = jnp.where(d >= temperature, newton_log_d, newton_d)
    resolution = _D_TOLERANCE * jnp.maximum(d, jnp.abs(b))
    # Checked before the bracket test: at the root, round-off can make d itself a bracket end.
    converged = jnp.isfinite(candidate) & (jnp.abs(candidate - d) <= resolution)
    inside = jnp.isfinite(candidate) & (candidate >= lower) & (candidate <= upper)
    other_inside = jnp.isfinite(other) & (other >= lower) & (other <= upper)
    bisection = jnp.where(upper > 4.0 * lower, jnp.sqrt(lower * upper), 0.5 * (lower + upper))
    new_d = jnp.where(inside | converged, candidate, jnp.where(other_inside, other, bisection))
    new_d = jnp.where((value == 0) | done, d, new_d)
    done = done | converged | (value == 0) | (upper - lower <= 10 * resolution)
    return state._replace(d=new_d, lower=lower, upper=upper, done=done)


def _iterate(state: _SolverState, max_iterations: int) -> _SolverState:
    """Newton steps until every element is done or ``max_iterations`` steps were taken."""

    def cond(carry):
        state, iteration = carry
        return jnp.logical_and(iteration < max_iterations, ~jnp.all(state.done))

    def body(carry):
        state, iteration = carry
        return _newton_step(state), iteration + 1

    return lax.while_loop(cond, body, (state, 0))[0]


def _solve_positive_label(b, rho, temperature):
    """Distance d > 0 of the root z = b + d of the y_g = 1 equation from b, for rho in (0, 1)."""
    return _iterate(_initial_state(b, rho, temperature), _MAX_ITERATIONS).d


@functools.partial(jax.jit, static_argnames="max_iterations")
def _first_iterations(z_teacher, sign, rho, temperature, *, max_iterations):
    interior = (rho > 0) & (rho < 1)
    return _iterate(_initial_state(sign * z_teacher, jnp.where(interior, rho, 0.5), temperature), max_iterations)


_more_iterations = jax.jit(lambda state: _iterate(state, _FURTHER_ITERATIONS))


def _effective_logit_compacted(z_teacher, sign, rho, temperature):
    """Same values as ``_effective_logit`` for concrete (non-traced) inputs, faster for large arrays.

    A vectorized loop runs until its slowest element converges. Here every element takes a few steps,
    then only the unfinished ones continue, gathered (padded to a power of two to bound recompilations)
    every two steps; each element follows exactly the same iterations as in the plain loop.
    """
    state = _first_iterations(z_teacher, sign, rho, temperature, max_iterations=_FIRST_ITERATIONS)
    state = jax.tree_util.tree_map(jnp.ravel, state)
    d = state.d
    remaining = np.flatnonzero(~np.asarray(state.done))  # global indices of the unfinished elements
    state = jax.tree_util.tree_map(lambda a: a[remaining], state)  # their states, in that order
    for _ in range(_MAX_ITERATIONS):
        if remaining.size == 0:
            break
        padded = np.resize(np.arange(remaining.size), 1 << int(np.ceil(np.log2(remaining.size))))
        state = _more_iterations(jax.tree_util.tree_map(lambda a: a[padded], state))
        state = jax.tree_util.tree_map(lambda a: a[: remaining.size], state)
        d = d.at[remaining].set(state.d)
        unfinished = ~np.asarray(state.done)
        remaining = remaining[unfinished]
        state = jax.tree_util.tree_map(lambda a: a[unfinished], state)
    d = d.reshape(z_teacher.shape)
    interior = (rho > 0) & (rho < 1)
    z = jnp.where(interior, z_teacher + sign * d, z_teacher)
    return jnp.where(rho == 0, sign * jnp.inf, z)


def _prepare(z_teacher, y_hard, rho, temperature):
    dtype = jnp.float64
    sign = 2.0 * jnp.asarray(y_hard, dtype) - 1.0
    arrays = jnp.broadcast_arrays(
        jnp.asarray(z_teacher, dtype), sign, jnp.asarray(rho, dtype), jnp.asarray(temperature, dtype)
    )
    return arrays


def _solve(z_teacher, sign, rho, temperature):
    """(z, d): the effective logit and its distance d = sign·(z − z_teacher) > 0 from the teacher."""
    interior = (rho > 0) & (rho < 1)
    safe_rho = jnp.where(interior, rho, 0.5)
    d = _solve_positive_label(sign * z_teacher, safe_rho, temperature)
    z = jnp.where(interior, z_teacher + sign * d, z_teacher)
    return jnp.where(rho == 0, sign * jnp.inf, z), d


@jax.custom_jvp
def _effective_logit(z_teacher, sign, rho, temperature):
    return _solve(z_teacher, sign, rho, temperature)[0]


def _effective_logit_jvp(primals, tangents):
    z_teacher, sign, rho, temperature = primals
    dz_teacher, _, drho, dtemperature = tangents
    z, d = _solve(z_teacher, sign, rho, temperature)
    partials = _partials(d, z_teacher, sign, rho, temperature)
    tangent = jnp.zeros_like(z)
    # Symbolic zeros are skipped, so the infinite rho-partial at rho = 0 never meets a zero tangent (no NaN).
    for partial, direction in zip(partials, (dz_teacher, drho, dtemperature)):
        if not isinstance(direction, SymbolicZero):
            tangent = tangent + partial * direction
    return z, tangent


_effective_logit.defjvp(_effective_logit_jvp, symbolic_zeros=True)
# Compiled once per input shape; under an outer jit/grad/vmap this simply inlines.
_effective_logit_compiled = jax.jit(_effective_logit)


def _partials(d, z_teacher, sign, rho, temperature):
    """∂z/∂z_teacher, ∂z/∂rho, ∂z/∂T at the root (implicit function theorem on G).

    Uses the solver's d = w − b directly (not z − z_teacher, which loses d's digits when d ≪ |z_teacher|).
    """
    T = temperature
    interior = (rho > 0) & (rho < 1)
    safe_rho = jnp.where(interior, rho, 0.5)
    b = sign * z_teacher
    d = jnp.where(interior, d, 1.0)  # a harmless stand-in outside the interior
    w = b + d  # the y_g = 1 root
    inv_expm1 = 1.0 / (T * jnp.expm1(d / T))
    g_w = jax.nn.sigmoid(-w / T) / T + inv_expm1 + jax.nn.sigmoid(w)
    g_b = -jax.nn.sigmoid(b / T) / T - inv_expm1
    g_rho = 1.0 / safe_rho + 1.0 / (1.0 - safe_rho)
    g_T = -1.0 / T - (w / T**2) * jax.nn.sigmoid(-w / T) + (b / T**2) * jax.nn.sigmoid(b / T) - (d / T) * inv_expm1
    interior_teacher = -g_b / g_w  # dw/db; dz/dz_teacher = sign * dw/db * sign
    interior_rho = -sign * g_rho / g_w
    interior_T = -sign * g_T / g_w
    # rho == 1: z = z_teacher, so dz/dz_teacher = 1, dz/dT = 0 and dz/drho is the one-sided limit.
    boundary_rho = -sign * T**2 * jnp.exp(_log_sigmoid(-b) - _log_sigmoid(b / T) - _log_sigmoid(-b / T))
    at_one = rho == 1
    # rho == 0: z = ±inf whatever z_teacher and T are; dz/drho is the limit -sign * inf.
    partial_teacher = jnp.where(interior, interior_teacher, jnp.where(at_one, 1.0, 0.0))
    partial_rho = jnp.where(interior, interior_rho, jnp.where(at_one, boundary_rho, -sign * jnp.inf))
    partial_T = jnp.where(interior, interior_T, 0.0)
    return partial_teacher, partial_rho, partial_T


def effective_logit(z_teacher, y_hard, *, rho, temperature) -> jax.Array:
    r"""Effective student logit :math:`z_{s,\mathrm{eff}}(z_t, y_g)`: the exact root of C1.

    Args:
      z_teacher: teacher logits :math:`z_t`, any shape.
      y_hard: ground-truth labels :math:`y_g \in \{0, 1\}`, broadcastable with ``z_teacher``.
      rho: soft ratio :math:`\rho \in [0, 1]` (scalar or broadcastable array).
      temperature: :math:`T > 0` (scalar or broadcastable array).

    Returns:
      float64 array of the broadcast shape. :math:`\rho = 1` returns ``z_teacher`` exactly;
      :math:`\rho = 0` returns :math:`+\infty` where ``y_hard = 1`` and :math:`-\infty` where ``y_hard = 0``.
      Relative error below 1e-12 in practice (tested ≤ 1e-6 against 50-digit arithmetic over
      :math:`\rho \in [10^{-3}, 1]`, :math:`T \in [0.1, 10]`, :math:`|z_t| \le 30`).

    Raises:
      ValueError: ``rho`` outside [0, 1] or NaN, ``temperature`` ≤ 0 or not finite, ``y_hard`` not in
        {0, 1}, ``z_teacher`` not finite, or shapes that do not broadcast.

    ``jax.grad`` with respect to ``z_teacher``, ``rho`` or ``temperature`` is exact (implicit function
    theorem); see the module docstring. Works under ``jax.jit`` and ``jax.vmap``.
    """
    check_soft_ratio(rho)
    check_temperature(temperature)
    check_hard_labels(y_hard)
    check_finite(z_teacher, "z_teacher")
    try:
        jnp.broadcast_shapes(jnp.shape(z_teacher), jnp.shape(y_hard), jnp.shape(rho), jnp.shape(temperature))
    except ValueError:
        raise ValueError(
            "shapes must broadcast: "
            f"z_teacher {jnp.shape(z_teacher)}, y_hard {jnp.shape(y_hard)}, rho {jnp.shape(rho)}, "
            f"temperature {jnp.shape(temperature)}"
        ) from None
    arrays = _prepare(z_teacher, y_hard, rho, temperature)
    if arrays[0].size >= _COMPACT_MINIMUM_SIZE and all(concrete(a) is not None for a in (z_teacher, y_hard, rho, temperature)):
        return _effective_logit_compacted(*arrays)
    return _effective_logit_compiled(*arrays)


def student_targets(z_teacher, y_hard, *, rho, temperature) -> np.ndarray:
    r"""The training targets of the converged linearized student: effective logits, with the ρ = 0 limit made finite.

    For ρ ∈ (0, 1] this is :func:`effective_logit`. At ρ = 0 the effective logits are ±∞; as ρ → 0 they grow
    like a common :math:`\log(1/\rho)` times :math:`2y_g - 1` (chapter 1, exercise), so every quantity that
    depends only on the *direction* of the student's weight change (its signs, angles, log-norm differences)
    tends to its value for the targets :math:`2y_g - 1`. Those are returned where ρ = 0.

    Args:
      z_teacher, y_hard, rho, temperature: as :func:`effective_logit` (broadcast together).

    Returns:
      float64 NumPy array of the broadcast shape, finite everywhere.
    """
    logits = np.asarray(effective_logit(z_teacher, y_hard, rho=rho, temperature=temperature))
    direction = 2.0 * np.asarray(y_hard, np.float64) - 1.0
    return np.where(np.asarray(rho) == 0, direction, logits)


def effective_logit_rho_derivative(z_teacher, y_hard, *, rho, temperature) -> jax.Array:
    r""":math:`\partial z_{s,\mathrm{eff}} / \partial \rho`, exact, elementwise (same arguments and shape as
    :func:`effective_logit`). At :math:`\rho = 1` it is the one-sided (left) derivative. Needed by Result 3,
    where :math:`\delta z_h = -\partial z_{s,\mathrm{eff}}/\partial\rho` is the change of the effective
    logits when a little hard label is added.
    """
    check_soft_ratio(rho)
    check_temperature(temperature)
    check_hard_labels(y_hard)
    check_finite(z_teacher, "z_teacher")
    z_teacher, sign, rho_b, temperature_b = _prepare(z_teacher, y_hard, rho, temperature)
    _, tangent = jax.jvp(
        lambda r: _effective_logit_compiled(z_teacher, sign, r, temperature_b), (rho_b,), (jnp.ones_like(rho_b),)
    )
    return tangent


def stationarity_residual(z_student, z_teacher, y_hard, *, rho, temperature) -> jax.Array:
    r"""C1's left side :math:`d\ell/d\hat z` evaluated at ``z_student`` in a cancellation-free form.

    Uses :math:`\sigma(u) - \sigma(v) = -\sigma(u)\sigma(-v)\,\mathrm{expm1}(v-u)`, so the residual of a
    root is tiny relative to the two terms it balances (unlike the naive form, which rounds to 0 or to
    one ulp of 1 for confident logits). Shapes broadcast; returns float64.
    """
    z_student, z_teacher, y_hard = (jnp.asarray(x, jnp.float64) for x in (z_student, z_teacher, y_hard))
    u, v = z_student / temperature, z_teacher / temperature
    high, low = jnp.maximum(u, v), jnp.minimum(u, v)
    # sigma(high) - sigma(low) >= 0, with expm1 of a non-positive argument (no overflow).
    gap = -jnp.exp(_log_sigmoid(high) + _log_sigmoid(-low)) * jnp.expm1(low - high)
    soft = jnp.where(u >= v, gap, -gap)
    hard = jnp.where(y_hard == 1, -jax.nn.sigmoid(-z_student), jax.nn.sigmoid(z_student))
    return rho / temperature * soft + (1.0 - rho) * hard
