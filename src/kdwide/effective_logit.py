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

Solver
------
A fast path handles (nearly) every element; a robust solver finishes the rest.

*Fast path.* In the variable :math:`u = \log\mathrm{expm1}(x)`, :math:`x = d/T` (so :math:`x = \mathrm{softplus}(u)`),
with :math:`z = b + d` and :math:`t = z/T`, splitting every log-sigmoid into its piecewise-linear part and a
bounded rest gives

.. math::

    G(u) = \log\frac{\rho}{T(1-\rho)} + \min(-b/T, 0) + \min(t, 0) + \max(z, 0) + \min(u, 0)
           + \log\frac{1+e^{-|z|}}{(1+e^{-|b/T|})(1+e^{-|t|})(1+e^{-|u|})},

and :math:`dG/du = \sigma(-u) + \sigma(u)\,(\sigma(-t) + T\sigma(z))` lies between :math:`\min(1,T)/2` and
:math:`1+T`: :math:`G` is close to linear in :math:`u` everywhere. Starting from the root of the
piecewise-linear part, two Halley steps and one Newton step in float32 (vectorized transcendentals, ~5 ns
per step and element) bring :math:`u` near float32 accuracy; one third-order Householder step in float64
(with the arithmetic-only functions of :mod:`kdwide.arithmetic_exp_log`) then gives float64 accuracy (its error is
of the order of the fourth power of the step). An element is accepted only if that step and :math:`|G|` are
tiny (see :func:`_fast_polish`); outside the fast path's domain (extreme ρ, T or logits) nothing is accepted.
In the benchmark's box (:math:`|z_t| \le 30`, ρ ≥ 1e-3, 0.1 ≤ T ≤ 10) it accepts 99.9% of the elements.

*Robust solver.* Unaccepted elements are solved by Newton's method in :math:`d` (in :math:`\log d` below
:math:`d = T`), safeguarded with bisection inside an analytic bracket (:func:`_bracket`), in float64.

On XLA:CPU up to jaxlib 0.7.0, a fused kernel whose output reuses the buffer of an input that dies there ran
~8× slower in our measurements (a chain of float32 steps: 4 ns per step and element alone, 34 ns when it
overwrote its input, 5.5 ns again once the input was kept alive). With those versions the fast path for
concrete inputs therefore runs as separate small compiled programs, each reading only its own arguments
(25 ns per root for the fast path on 10^6 roots, against 89 ns as one program). From jaxlib 0.7.1 on, one
program is the faster (21–27 ns against 29–31 ns as separate programs, measured on 0.7.1, 0.8.3, 0.9.2, 0.10.2
and 0.12), so the choice is made by version. Under ``jax.jit`` the fast path is simply inlined.

Derivatives
-----------
``jax.grad`` / ``jax.jvp`` with respect to ``z_teacher``, ``rho`` and ``temperature`` are exact, by the
implicit function theorem applied to :math:`G` (a ``jax.custom_jvp``), not by differentiating the
iterations. At :math:`\rho = 1` (where :math:`\hat z = z_t`) the one-sided derivative in :math:`\rho` is

.. math:: \frac{\partial \hat z}{\partial \rho}\Big|_{\rho=1} = \frac{T^2\,(\sigma(z_t) - y_g)}{\sigma(z_t/T)\,\sigma(-z_t/T)},

which grows like :math:`T^2 e^{|z_t|/T}` for a confidently wrong teacher (the book's pitfall 3, stiff ρ-derivative).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from kdwide.arithmetic_exp_log import exp_nonpositive, log1p_unit, log_positive, reciprocal
from kdwide.validation import (
    check_finite,
    check_hard_labels,
    check_soft_ratio,
    check_temperature,
    concrete,
)

__all__ = ["effective_logit", "effective_logit_rho_derivative", "stationarity_residual", "student_targets"]

_LOG2 = 0.6931471805599453
_MAX_ITERATIONS = 100
_D_TOLERANCE = 1e-15
_FAST_STEP_ORDERS = (2, 2, 1)  # the fast path's float32 steps: Halley, Halley, Newton
# The fast path's domain: outside it every element goes to the robust solver.
_FAST_MIN_TEMPERATURE, _FAST_MAX_TEMPERATURE = 1e-3, 1e3
_FAST_MIN_RATIO = 1e-12  # rho and 1 - rho at least this
_FAST_MAX_SCALED_LOGIT = 1e4  # |z_teacher| and |z_teacher| / T at most this
# Acceptance: the float64 polishing step at most this times max(1, |u|), and |G| at most 10x that times dG/du.
_FAST_ACCEPT = 1e-6
_CONCRETE_MINIMUM_SIZE = 4096  # below this one compiled program is quicker than several
# XLA:CPU up to jaxlib 0.7.0 runs the fast path ~3.5x slower as one program than as separate ones (buffer reuse, see
# the module docstring); from 0.7.1 on one program is the faster (measured per release, 0.5.3 to 0.12).
_FAST_PATH_SEPARATE_PROGRAMS = tuple(int(part) for part in jaxlib.__version__.split(".")[:3]) < (0, 7, 1)


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


def _bracket(b, temperature, log_ratio, log_sigmoid_minus_b_over_t):
    r"""Analytic bracket ``[d_lo, d_hi]`` with ``G(d_lo) < 0 < G(d_hi)``.

    Upper: for :math:`z \ge \max(b, 0) + T\log 2` the two middle log-terms exceed :math:`-\log 2` each
    and softplus(z) ≥ z, so :math:`G \ge z - c - 2\log 2` with
    :math:`c = \log\frac{(1-\rho)T}{\rho} - \log\sigma(-b/T)`.
    Lower: :math:`\log\sigma \le 0`, :math:`\log(-\mathrm{expm1}(-d/T)) \le \log(d/T)` and softplus is
    increasing, so for :math:`d \le d_{hi}`:
    :math:`G \le \log\frac{\rho d}{T^2(1-\rho)} + \log\sigma(-b/T) + \mathrm{softplus}(b + d_{hi})`.
    """
    c = -log_ratio - log_sigmoid_minus_b_over_t
    z_hi = jnp.maximum(jnp.maximum(b, 0.0) + temperature * _LOG2, c + 2.0 * _LOG2) + 1.0
    d_hi = z_hi - b
    log_d_lo = -log_ratio + jnp.log(temperature) - log_sigmoid_minus_b_over_t - jax.nn.softplus(z_hi) - 1.0
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
    log_sigmoid_minus_b_over_t = jax.nn.log_sigmoid(-b / temperature)
    lower, upper = _bracket(b, temperature, log_ratio, log_sigmoid_minus_b_over_t)
    constant = log_ratio + log_sigmoid_minus_b_over_t
    # Start from the dominant balance: G ≈ constant + log(d/T) + log sigma(b/T) + softplus(b) for d ≪ T,
    # and z ≈ max(c, max(b, 0) + T log 2) (the upper-bound argument without its slack) otherwise.
    small_d = temperature * jnp.exp(
        jnp.clip(-(constant + jax.nn.log_sigmoid(b / temperature) + jax.nn.softplus(b)), -700.0, 700.0)
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


def _robust_solve(z_teacher, sign, rho, temperature):
    """(z, d) by the safeguarded float64 Newton iteration alone (every element, any valid input)."""
    interior = (rho > 0) & (rho < 1)
    safe_rho = jnp.where(interior, rho, 0.5)
    d = _iterate(_initial_state(sign * z_teacher, safe_rho, temperature), _MAX_ITERATIONS).d  # root z = b + d
    z = jnp.where(interior, z_teacher + sign * d, z_teacher)
    return jnp.where(rho == 0, sign * jnp.inf, z), d


_robust_compiled = jax.jit(lambda *arrays: _robust_solve(*arrays)[0])


def _prepare(z_teacher, y_hard, rho, temperature):
    """float64 arrays (z_teacher, sign = 2 y_hard − 1, rho, temperature), broadcast together."""
    dtype = jnp.float64
    sign = 2.0 * jnp.asarray(y_hard, dtype) - 1.0
    return jnp.broadcast_arrays(
        jnp.asarray(z_teacher, dtype), sign, jnp.asarray(rho, dtype), jnp.asarray(temperature, dtype)
    )


def _fast_parameters(z_teacher, sign, rho, temperature):
    """float32 array ``[..., (u0, c_neg, c_pos, b/T, T)]`` (stacked on a new last axis) for the fast path.

    In the y_g = 1 frame (b = sign·z_teacher, root z = b + d, x = d/T, u = log expm1 x) the float32 steps use
    the module's G with its u-independent parts collected,
    G(u) = u + where(z < 0, c_neg, c_pos + (T − 1) x) + log((1 + e^{−|z|}) / (1 + e^{−|z/T|})),
    where, with K = log(ρ / (T (1 − ρ) (1 + e^{−|b/T|}))), c_neg = K + b/T and c_pos = K + b for b < 0, and
    c_neg = K, c_pos = K + (b − b/T) for b ≥ 0 (b − b/T and 1 − ρ formed in float64: no float32 sum cancels).
    Elements outside the fast path's domain get u0 = NaN.
    """
    f32 = lambda a: a.astype(jnp.float32)  # noqa: E731
    b = sign * z_teacher
    interior = (rho > 0) & (rho < 1)
    in_domain = (
        (rho >= _FAST_MIN_RATIO)
        & (rho <= 1.0 - _FAST_MIN_RATIO)
        & (temperature >= _FAST_MIN_TEMPERATURE)
        & (temperature <= _FAST_MAX_TEMPERATURE)
        & (jnp.abs(b) <= _FAST_MAX_SCALED_LOGIT)
        & (jnp.abs(b) <= _FAST_MAX_SCALED_LOGIT * temperature)
    )
    b_over_t64 = b * reciprocal(temperature)  # (not a division: that would split the fused loop on XLA:CPU)
    shift = f32(jnp.where(b < 0, b, b - b_over_t64))
    b32, b_over_t, t32 = f32(b), f32(b_over_t64), f32(temperature)
    rho32 = f32(jnp.where(interior, rho, 0.5))
    one_minus_rho = f32(jnp.where(interior, 1.0 - rho, 0.5))  # 1 − ρ formed in float64
    exp_b_over_t = jnp.exp(-jnp.abs(b_over_t))
    k = jnp.log(rho32 / (t32 * one_minus_rho * (1.0 + exp_b_over_t)))
    c_neg = jnp.where(b32 < 0, k + b_over_t, k)
    c_pos = k + shift
    # Start: the root of G's piecewise-linear part (x ≈ max(u, 0), every log(1 + e^{−|·|}) dropped); G is
    # linear in u with slope 1 below u = 0 (and while z < 0), T where z > 0.
    constant_at_zero = jnp.where(b32 < 0, c_neg, c_pos)  # that model's G(u) − u for u ≤ 0
    u0 = jnp.where(
        constant_at_zero >= 0,
        -constant_at_zero,
        jnp.where((b32 < 0) & (-c_neg < -b_over_t), -c_neg, -c_pos / t32),
    )
    u0 = jnp.where(in_domain, u0, jnp.nan)
    # A new last axis: XLA:CPU writes this in one quick loop (stacked on a first axis of 5, it is ~6x slower).
    return jnp.stack([u0, c_neg, c_pos, b_over_t, t32], axis=-1)


def _sigmoid_pair(v, e, inverse):
    """(σ(v), σ(−v)) from e = exp(−|v|) and inverse = 1 / (1 + e)."""
    return jnp.where(v >= 0, inverse, e * inverse), jnp.where(v >= 0, e * inverse, inverse)


def _u_derivatives(u_pair, t_pair, z_pair, temperature):
    """(inner, d inner/dx, dG/du, d²G/du²) from the sigmoid pairs (σ(v), σ(−v)) of u, t = z/T and z.

    With dx/du = σ(u), dt/du = σ(u), dz/du = T σ(u): dG/du = σ(−u) + σ(u)·inner, inner = σ(−t) + T σ(z);
    every term is written without cancellation.
    """
    (s_u, s_minus_u), (s_t, s_minus_t), (s_z, s_minus_z) = u_pair, t_pair, z_pair
    inner = s_minus_t + temperature * s_z
    inner_slope = temperature * temperature * s_z * s_minus_z - s_t * s_minus_t
    slope = s_minus_u + s_u * inner
    curvature = s_u * s_minus_u * (inner - 1.0) + s_u * s_u * inner_slope
    return inner, inner_slope, slope, curvature


def _fast_step(u, parameters, order):
    """One float32 step on G(u) (see :func:`_fast_parameters`): Newton (``order`` 1) or Halley (2)."""
    c_neg, c_pos, b_over_t, temperature = (parameters[..., k] for k in range(1, 5))
    e0 = jnp.exp(-jnp.abs(u))
    x = jnp.maximum(u, 0.0) + jnp.log(1.0 + e0)  # x only enters sums with b/T and b: no need for log1p
    t = b_over_t + x
    z = temperature * t
    e1, e2 = jnp.exp(-jnp.abs(t)), jnp.exp(-jnp.abs(z))
    g = jnp.where(z < 0, c_neg + u, c_pos + u + (temperature - 1.0) * x) + jnp.log((1.0 + e2) / (1.0 + e1))
    sigmoids = [_sigmoid_pair(v, e, 1.0 / (1.0 + e)) for v, e in ((u, e0), (t, e1), (z, e2))]
    _, _, slope, curvature = _u_derivatives(*sigmoids, temperature)
    if order == 1:
        return u - g / slope
    return u - 2.0 * g * slope / (2.0 * slope * slope - g * curvature)


def _fast_polish(u32, z_teacher, sign, rho, temperature):
    """One float64 Householder step (third order) from the float32 iterate: (z, d, accepted).

    G, dG/du and d²G/du² in float64 with :mod:`kdwide.arithmetic_exp_log` (one fused loop on XLA:CPU).
    ``accepted`` requires the step |δ| ≤ 1e-6·max(1, |u|) and |G| ≤ 1e-5·max(1, |u|)·dG/du: the step's
    error then is O(δ⁴), below float64 resolution. Elements at ρ ∈ {0, 1} are accepted (they
    need no root).
    """
    u = u32.astype(jnp.float64)
    b = sign * z_teacher
    interior = (rho > 0) & (rho < 1)
    safe_rho = jnp.where(interior, rho, 0.5)
    inverse_t = reciprocal(temperature)
    e0 = exp_nonpositive(-jnp.abs(u))
    x = jnp.maximum(u, 0.0) + log1p_unit(e0)
    d0 = temperature * x
    z = b + d0
    t = z * inverse_t  # from z, not b/T + x: t keeps its relative accuracy when b/T and x nearly cancel
    b_over_t = b * inverse_t
    e1, e2 = exp_nonpositive(-jnp.abs(t)), exp_nonpositive(-jnp.abs(z))
    exp_b_over_t = exp_nonpositive(-jnp.abs(b_over_t))
    # G = log(ρ/(T(1−ρ))) + log σ(−b/T) + log σ(t) + softplus(z) + log(1 − e^{−x}), each term split into
    # its piecewise-linear part and a log(1 + e^{−|·|}); the four logs share one evaluation.
    linear = jnp.minimum(-b_over_t, 0.0) + jnp.minimum(t, 0.0) + jnp.maximum(z, 0.0) + jnp.minimum(u, 0.0)
    g = linear + log_positive(
        safe_rho
        * (1.0 + e2)
        * reciprocal(temperature * (1.0 - safe_rho) * (1.0 + exp_b_over_t) * (1.0 + e1) * (1.0 + e0))
    )
    sigmoids = [_sigmoid_pair(v, e, reciprocal(1.0 + e)) for v, e in ((u, e0), (t, e1), (z, e2))]
    (s_u, s_minus_u), (s_t, s_minus_t), (s_z, s_minus_z) = sigmoids
    inner, inner_slope, slope, curvature = _u_derivatives(*sigmoids, temperature)
    inner_curvature = temperature**3 * s_z * s_minus_z * (s_minus_z - s_z) - s_t * s_minus_t * (s_minus_t - s_t)
    third = (
        s_u * s_minus_u * (s_minus_u - s_u) * (inner - 1.0)
        + 3.0 * s_u * s_u * s_minus_u * inner_slope
        + s_u**3 * inner_curvature
    )
    # Householder's third-order step (quartic convergence): the error left is O(step^4).
    step = (6.0 * g * slope * slope - 3.0 * g * g * curvature) * reciprocal(
        6.0 * slope**3 - 6.0 * g * slope * curvature + g * g * third
    )
    # d = T x(u − δ) to third order in δ: no further transcendental needed.
    x_change = s_u * (s_minus_u * step * step * (0.5 - (s_minus_u - s_u) * step / 6.0) - step)
    d = d0 + temperature * x_change
    scale = jnp.maximum(1.0, jnp.abs(u))
    accepted = (jnp.abs(step) <= _FAST_ACCEPT * scale) & (jnp.abs(g) <= 10.0 * _FAST_ACCEPT * scale * slope)
    z_root = jnp.where(interior, z_teacher + sign * d, z_teacher)
    return jnp.where(rho == 0, sign * jnp.inf, z_root), d, accepted | ~interior


def _fast_solve(z_teacher, sign, rho, temperature):
    """(z, d, accepted) of the fast path, as one traced computation."""
    parameters = _fast_parameters(z_teacher, sign, rho, temperature)
    u = parameters[..., 0]
    for order in _FAST_STEP_ORDERS:
        u = _fast_step(u, parameters, order)
    return _fast_polish(u, z_teacher, sign, rho, temperature)


def _solve(z_teacher, sign, rho, temperature):
    """(z, d): the effective logit and its distance d = sign·(z − z_teacher) > 0 from the teacher.

    The fast path, then the robust solver for the elements it did not accept: none (skipped), a few
    (gathered into a fixed-size batch, so the loop runs over that batch only), or many (every element).
    """
    z, d, accepted = _fast_solve(z_teacher, sign, rho, temperature)
    size = z.size
    capacity = min(size, size // 64 + 64)  # static: the batch for "a few"
    unaccepted = jnp.sum(~accepted)

    def few(_):
        flat = [a.reshape(-1) for a in (z_teacher, sign, rho, temperature)]
        (index,) = jnp.nonzero(~accepted.reshape(-1), size=capacity, fill_value=size)  # size: out of bounds
        robust_z, robust_d = _robust_solve(*(jnp.take(a, index, mode="clip") for a in flat))
        put = lambda a, values: a.reshape(-1).at[index].set(values, mode="drop").reshape(a.shape)  # noqa: E731
        return put(z, robust_z), put(d, robust_d)

    def many(_):
        robust_z, robust_d = _robust_solve(z_teacher, sign, rho, temperature)
        return jnp.where(accepted, z, robust_z), jnp.where(accepted, d, robust_d)

    branch = jnp.where(unaccepted == 0, 0, jnp.where(unaccepted <= capacity, 1, 2))
    return lax.switch(branch, [lambda _: (z, d), few, many], None)


# The fast path as separate compiled programs, for concrete inputs (see the module docstring).
_fast_parameters_compiled = jax.jit(lambda *inputs: _fast_parameters(*_prepare(*inputs)))
# u = None: start from the parameters' u0 (saves slicing it out in a program of its own).
_fast_step_compiled = jax.jit(
    lambda u, parameters, order: _fast_step(parameters[..., 0] if u is None else u, parameters, order),
    static_argnames="order",
)


@jax.jit
def _fast_polish_compiled(u32, *inputs):
    """The effective logit where accepted, NaN elsewhere (one output: one fused loop)."""
    z, _, accepted = _fast_polish(u32, *_prepare(*inputs))
    return jnp.where(accepted, z, jnp.nan)


@jax.jit
def _fast_path_compiled(*inputs):
    """The fast path as one program: the effective logit where accepted, NaN elsewhere."""
    z, _, accepted = _fast_solve(*_prepare(*inputs))
    return jnp.where(accepted, z, jnp.nan)


def _fast_path(inputs, *, separate_programs: bool) -> jax.Array:
    """The fast path on concrete device arrays (NaN where not accepted), as separate programs or as one."""
    if not separate_programs:
        return _fast_path_compiled(*inputs)
    parameters = _fast_parameters_compiled(*inputs)
    u = None
    for order in _FAST_STEP_ORDERS:
        u = _fast_step_compiled(u, parameters, order=order)
    return _fast_polish_compiled(u, *inputs)


def _effective_logit_concrete(z_teacher, y_hard, rho, temperature):
    """Same values as ``_effective_logit`` for concrete inputs, much faster for large arrays.

    The fast path runs as separate programs (jaxlib < 0.7.1) or as one (see ``_FAST_PATH_SEPARATE_PROGRAMS``);
    the elements it leaves unaccepted (NaN) are gathered and solved by the robust solver (padded to a power
    of two to bound recompilations).
    """
    # On the device once. jax.device_put for NumPy arrays: jnp.asarray costs ~2.5x more on jaxlib 0.10 (measured).
    inputs = [jax.device_put(a) if isinstance(a, np.ndarray) else jnp.asarray(a) for a in (z_teacher, y_hard, rho, temperature)]
    z = _fast_path(inputs, separate_programs=_FAST_PATH_SEPARATE_PROGRAMS)
    missing = np.flatnonzero(np.isnan(np.asarray(z)))
    if missing.size == 0:
        return z
    shape = z.shape
    gathered = [
        np.broadcast_to(np.asarray(a), shape).reshape(-1)[missing] for a in (z_teacher, y_hard, rho, temperature)
    ]
    gathered = _prepare(*gathered)
    padded = np.resize(np.arange(missing.size), 1 << int(np.ceil(np.log2(missing.size))))
    solved = _robust_compiled(*(np.asarray(a)[padded] for a in gathered))
    return _replace_elements(z, missing[padded], solved)


@functools.partial(jax.jit, donate_argnums=0)
def _replace_elements(array, flat_indices, values):
    """``array`` with ``array.flat[flat_indices] = values``, in place (the caller gives ``array`` up)."""
    return array.reshape(-1).at[flat_indices].set(values).reshape(array.shape)


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
    boundary_rho = -sign * T**2 * jnp.exp(jax.nn.log_sigmoid(-b) - jax.nn.log_sigmoid(b / T) - jax.nn.log_sigmoid(-b / T))
    at_one = rho == 1
    # rho == 0: z = ±inf whatever z_teacher and T are; dz/drho is the limit -sign * inf.
    partial_teacher = jnp.where(interior, interior_teacher, jnp.where(at_one, 1.0, 0.0))
    partial_rho = jnp.where(interior, interior_rho, jnp.where(at_one, boundary_rho, -sign * jnp.inf))
    partial_T = jnp.where(interior, interior_T, 0.0)
    return partial_teacher, partial_rho, partial_T


def _check_inputs(z_teacher, y_hard, rho, temperature) -> tuple[int, ...]:
    """The public functions' checks (each error names its parameter); returns the broadcast shape."""
    check_soft_ratio(rho)
    check_temperature(temperature)
    check_hard_labels(y_hard)
    check_finite(z_teacher, "z_teacher")
    shapes = [jnp.shape(a) for a in (z_teacher, y_hard, rho, temperature)]
    try:
        return jnp.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(
            "shapes must broadcast: "
            f"z_teacher {shapes[0]}, y_hard {shapes[1]}, rho {shapes[2]}, temperature {shapes[3]}"
        ) from None


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
      Error below 1e-13 relative to :math:`\max(|z|, 1)` in practice (tested ≤ 1e-6 against bisection in
      high-precision arithmetic over :math:`\rho \in [10^{-3}, 1]`, :math:`T \in [0.1, 10]`, :math:`|z_t| \le 30`,
      and element by element against the robust float64 solver to 1e-13).
      About 30–45 ns per root for 10^6 roots on a 2-core CPU (``benchmarks/effective_logit.py``).

    Example:
      >>> import numpy as np
      >>> z = effective_logit(np.array([3.0, 3.0]), np.array([1, 0]), rho=0.5, temperature=1.0)
      >>> [round(float(v), 4) for v in z]  # a confident teacher; the label pulls the logit its way
      [3.7177, -0.0949]
      >>> float(effective_logit(3.0, 0, rho=1.0, temperature=1.0)), float(effective_logit(3.0, 0, rho=0.0, temperature=1.0))
      (3.0, -inf)

    Raises:
      ValueError: ``rho`` outside [0, 1] or NaN, ``temperature`` ≤ 0 or not finite, ``y_hard`` not in
        {0, 1}, ``z_teacher`` not finite, or shapes that do not broadcast.

    ``jax.grad`` with respect to ``z_teacher``, ``rho`` or ``temperature`` is exact (implicit function
    theorem); see the module docstring. Works under ``jax.jit`` and ``jax.vmap``.
    """
    shape = _check_inputs(z_teacher, y_hard, rho, temperature)
    inputs = (z_teacher, y_hard, rho, temperature)
    if math.prod(shape) >= _CONCRETE_MINIMUM_SIZE and all(concrete(a) is not None for a in inputs):
        return _effective_logit_concrete(*inputs)
    return _effective_logit_compiled(*_prepare(*inputs))


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
    _check_inputs(z_teacher, y_hard, rho, temperature)
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
    gap = -jnp.exp(jax.nn.log_sigmoid(high) + jax.nn.log_sigmoid(-low)) * jnp.expm1(low - high)
    soft = jnp.where(u >= v, gap, -gap)
    hard = jnp.where(y_hard == 1, -jax.nn.sigmoid(-z_student), jax.nn.sigmoid(z_student))
    return rho / temperature * soft + (1.0 - rho) * hard
