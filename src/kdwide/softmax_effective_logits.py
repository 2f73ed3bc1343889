r"""Effective student logits for K classes (softmax): the multi-class version of C1.

This module is the book's own extension beyond the paper (chapter 7). A wide student with K outputs minimises,
on every training point, the loss :math:`\rho\,\mathrm{CE}(\mathrm{softmax}(z_t/T), \mathrm{softmax}(z/T)) +
(1-\rho)\,\mathrm{CE}(e_y, \mathrm{softmax}(z))`, so its logits solve

.. math::

    F(z) = \frac{\rho}{T}\big(p^{T}(z) - q\big) + (1-\rho)\big(p(z) - e_y\big) = 0,
    \qquad p^{T}(z) = \mathrm{softmax}(z/T),\ p(z) = \mathrm{softmax}(z),\ q = \mathrm{softmax}(z_t/T).

Existence and uniqueness
------------------------
:math:`F` is the gradient of :math:`\Phi(z) = \rho\,[\mathrm{LSE}(z/T) - q\cdot z/T] + (1-\rho)\,[\mathrm{LSE}(z) - z_y]`.
Both brackets are convex and invariant under :math:`z \mapsto z + c\mathbf 1`; the Hessian
:math:`\frac{\rho}{T^2}(\mathrm{diag}\,p^T - p^T p^{T\top}) + (1-\rho)(\mathrm{diag}\,p - pp^\top)` is positive
definite on the zero-sum plane. For :math:`\rho > 0` the first bracket grows linearly in every direction of
that plane (since every :math:`q_k > 0`) and the second is bounded below, so :math:`\Phi` has exactly one
minimiser with zero mean: the effective logits exist and are unique up to a constant per row, which we fix by
centring each row. For :math:`\rho = 0` there is no minimiser (:math:`\Phi` decreases along
:math:`e_y - \mathbf 1/K`).

Cancellation-free form
----------------------
Since the components of :math:`F` sum to zero, the K − 1 equations :math:`k \ne y` suffice, and there all
terms have one sign: :math:`\frac{\rho}{T} q_k = \frac{\rho}{T} p^T_k + (1-\rho) p_k`. We solve them in logarithms,

.. math::

    r_k(z) = \mathrm{logaddexp}\big(\log\tfrac{\rho}{T} + \log p^T_k,\ \log(1-\rho) + \log p_k\big)
             - \log\tfrac{\rho}{T} - \log q_k = 0, \qquad k \ne y,

with log-softmax throughout. The naive form subtracts :math:`p_y - 1`, which cancels in float64 once
:math:`p_y \approx 1` (margins off by ~1e-3 at :math:`\rho = 10^{-12}`); the log form gives margins to ~1e-14.

Solver
------
Newton's method on :math:`r` in the gauge :math:`z_y = 0` (K − 1 unknowns), vectorized over rows. The
Jacobian is :math:`J = \mathrm{diag}(w_1/T + w_2) - (w_1/T)\,p^{T\top} - w_2\,p^\top` with
:math:`w_1 + w_2 = 1` the two shares of the logaddexp, a diagonal minus a rank-2 matrix, so each step costs
O(K) by the Woodbury identity; the 2×2 capacitance matrix is formed from sums of positive terms only (no
cancellation). :math:`J` is nonsingular everywhere (it is a positive diagonal times the Hessian of
:math:`\Phi` restricted to :math:`z_y = 0`, which is positive definite), so the Newton direction is a descent
direction of the merit :math:`\tfrac12\lVert r\rVert^2`; each row backtracks (halving its step) until the merit
drops (Armijo), which makes the iteration globally convergent, and it is quadratic near the root. The start is
the larger of the teacher's margin and the small-ρ asymptote below, per class.

Limits
------
:math:`\rho = 1` gives the centred teacher logits exactly. As :math:`\rho \to 0^+` the margins of the true class
grow like :math:`\log(1/\rho)`, precisely

.. math:: z_y - z_k = \log\frac{1}{\rho} + \log\frac{T}{q_k} + O\big(\rho^{\min(1, 1/T)}\big), \qquad k \ne y,

(for :math:`k \ne y` the balance is :math:`p_k \approx \rho q_k / T`, since :math:`p^T_k = O(\rho^{1/T})`), so
:math:`z / \log(1/\rho) \to e_y - \mathbf 1/K`. At :math:`\rho = 0` we return the limit itself, :math:`+\infty`
at the true class and :math:`-\infty` elsewhere; for K = 2 this is the binary :func:`kdwide.effective_logit`'s
:math:`\pm\infty` split evenly around zero.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from kdwide.validation import check_class_labels, check_finite, check_soft_ratio, check_temperature

__all__ = ["effective_logits", "effective_logits_rho_derivative", "softmax_stationarity_residual"]

_MAX_ITERATIONS = 200
_STEP_TOLERANCE = 1e-15
_ARMIJO = 1e-4
_MIN_STEP_FRACTION = 2.0**-40  # a row whose step was halved this often is at the noise level of r


def _check_inputs(teacher_logits, labels, rho, temperature) -> tuple[int, int]:
    """Validate (shapes, values) at the public boundary; returns (N, K)."""
    shape = np.shape(teacher_logits)
    if len(shape) != 2 or shape[1] < 2:
        raise ValueError(f"teacher_logits must have shape (N, K) with K >= 2 classes, got shape {shape}")
    n_points, n_classes = shape
    if np.shape(labels) != (n_points,):
        raise ValueError(f"labels must have shape (N,) = ({n_points},) to match teacher_logits, got {np.shape(labels)}")
    for name, value in (("rho", rho), ("temperature", temperature)):
        if np.ndim(value) > 1 or (np.ndim(value) == 1 and np.shape(value) != (n_points,)):
            raise ValueError(f"{name} must be a scalar or have shape (N,) = ({n_points},), got {np.shape(value)}")
    check_finite(teacher_logits, "teacher_logits")
    check_class_labels(labels, n_classes)
    check_soft_ratio(rho)
    check_temperature(temperature)
    return n_points, n_classes


def _log_residual(z, log_q, mask, log_soft, log_hard, temperature):
    """r (zero at the true class), log p^T, log p, and the shares w1, w2 of the logaddexp. Rows of z: (N, K)."""
    log_p_t = jax.nn.log_softmax(z / temperature, axis=-1)
    log_p = jax.nn.log_softmax(z, axis=-1)
    soft, hard = log_soft + log_p_t, log_hard + log_p
    log_a = jnp.logaddexp(soft, hard)
    residual = jnp.where(mask, log_a - log_soft - log_q, 0.0)
    return residual, log_p_t, log_p, jnp.exp(soft - log_a), jnp.exp(hard - log_a)


def _newton_direction(residual, log_p_t, log_p, w1, w2, mask, temperature):
    r"""Solve :math:`J\delta = -r` on the classes k ≠ y (δ_y = 0) by Woodbury, O(K) per row.

    J = D − u1 v1ᵀ − u2 v2ᵀ with D = w1/T + w2, u1 = w1/T, v1 = p^T, u2 = w2, v2 = p (rows and columns k ≠ y).
    The capacitance M = I − VᵀD⁻¹U has M11 = p^T_y + a, M22 = p_y + b, M12 = −a, M21 = −b with
    a = Σ p^T_k w2_k/D_k and b = Σ p_k (w1_k/T)/D_k (using Σ_k p_k = 1), and det M = p^T_y p_y + p^T_y b + a p_y:
    sums of positive terms, no cancellation even where p_y ≈ 0.
    """
    p_t, p = jnp.exp(log_p_t), jnp.exp(log_p)
    u1 = jnp.where(mask, w1 / temperature, 0.0)
    u2 = jnp.where(mask, w2, 0.0)
    inverse_d = 1.0 / jnp.where(mask, u1 + u2, 1.0)
    p_t_y = jnp.sum(jnp.where(mask, 0.0, p_t), axis=-1)
    p_y = jnp.sum(jnp.where(mask, 0.0, p), axis=-1)
    v1, v2 = jnp.where(mask, p_t, 0.0), jnp.where(mask, p, 0.0)
    a = jnp.sum(v1 * u2 * inverse_d, axis=-1)
    b = jnp.sum(v2 * u1 * inverse_d, axis=-1)
    determinant = p_t_y * p_y + p_t_y * b + a * p_y
    rhs = -residual * inverse_d  # D⁻¹(−r)
    s1, s2 = jnp.sum(v1 * rhs, axis=-1), jnp.sum(v2 * rhs, axis=-1)  # Vᵀ D⁻¹ (−r)
    c1 = ((p_y + b) * s1 + a * s2) / determinant  # M⁻¹ (s1, s2)
    c2 = (b * s1 + (p_t_y + a) * s2) / determinant
    newton = rhs + inverse_d * (u1 * c1[..., None] + u2 * c2[..., None])
    # Where M's entries underflow (far from the root, p_y and p^T_y ≈ 0) fall back to steepest descent of the
    # merit, −Jᵀr, which is always a descent direction; the backtracking then sizes it.
    steepest = -(residual / inverse_d - v1 * jnp.sum(u1 * residual, -1, keepdims=True)
                 - v2 * jnp.sum(u2 * residual, -1, keepdims=True))
    usable = jnp.all(jnp.isfinite(newton), axis=-1, keepdims=True) & (determinant > 0)[..., None]
    return jnp.where(usable, newton, jnp.where(mask, steepest, 0.0))


def _starting_point(teacher_logits, log_q, mask, rho, temperature):
    """Per class k ≠ y, margin max(teacher's margin, log((1−ρ) T / (ρ q_k))) (the small-ρ asymptote); z_y = 0."""
    teacher_margin = jnp.sum(jnp.where(mask, 0.0, teacher_logits), axis=-1, keepdims=True) - teacher_logits
    asymptote = jnp.log1p(-rho) + jnp.log(temperature) - jnp.log(rho) - log_q
    return jnp.where(mask, -jnp.maximum(teacher_margin, asymptote), 0.0)


def _solve_interior(teacher_logits, mask, rho, temperature):
    """Zero-mean root for rho in (0, 1) (rho, temperature of shape (N, 1)); damped Newton, see the module docstring."""
    log_q = jax.nn.log_softmax(teacher_logits / temperature, axis=-1)
    log_soft, log_hard = jnp.log(rho) - jnp.log(temperature), jnp.log1p(-rho)
    evaluate = lambda z: _log_residual(z, log_q, mask, log_soft, log_hard, temperature)  # noqa: E731

    def direction_and_merit(z):
        residual, log_p_t, log_p, w1, w2 = evaluate(z)
        return _newton_direction(residual, log_p_t, log_p, w1, w2, mask, temperature), 0.5 * jnp.sum(residual**2, -1)

    z0 = _starting_point(teacher_logits, log_q, mask, rho, temperature)
    delta0, merit0 = direction_and_merit(z0)
    n_points = teacher_logits.shape[0]

    def cond(carry):
        iteration, _, _, _, _, done = carry
        return (iteration < _MAX_ITERATIONS) & ~jnp.all(done)

    def body(carry):
        iteration, z, delta, merit, step, done = carry
        trial = z + step[:, None] * delta
        trial_delta, trial_merit = direction_and_merit(trial)
        accept = ~done & jnp.isfinite(trial_merit) & (trial_merit <= merit * (1.0 - 2.0 * _ARMIJO * step))
        scale = jnp.maximum(1.0, jnp.max(jnp.abs(trial), axis=-1))
        small_step = jnp.max(jnp.abs(step[:, None] * delta), axis=-1) <= _STEP_TOLERANCE * scale
        done = done | small_step | (merit == 0) | (step < _MIN_STEP_FRACTION) | (accept & (trial_merit == 0))
        z = jnp.where(accept[:, None], trial, z)
        delta = jnp.where(accept[:, None], trial_delta, delta)
        merit = jnp.where(accept, trial_merit, merit)
        step = jnp.where(accept, 1.0, 0.5 * step)
        return iteration + 1, z, delta, merit, step, done

    start = (0, z0, delta0, merit0, jnp.ones(n_points), jnp.zeros(n_points, bool))
    z = lax.while_loop(cond, body, start)[1]
    return z - jnp.mean(z, axis=-1, keepdims=True)


@jax.jit
def _effective_logits_compiled(teacher_logits, labels, rho, temperature):
    """Every case of rho in [0, 1]; rho, temperature of shape (N, 1), float64."""
    mask = jnp.arange(teacher_logits.shape[-1]) != labels[:, None]
    interior = (rho > 0) & (rho < 1)
    safe_rho = jnp.where(interior, rho, 0.5)
    z = _solve_interior(teacher_logits, mask, safe_rho, temperature)
    centred_teacher = teacher_logits - jnp.mean(teacher_logits, axis=-1, keepdims=True)
    z = jnp.where(rho == 1, centred_teacher, z)
    return jnp.where(rho == 0, jnp.where(mask, -jnp.inf, jnp.inf), z)


def _prepare(teacher_logits, labels, rho, temperature):
    """float64 logits (N, K), int labels (N,), rho and temperature as float64 columns (N, 1)."""
    teacher_logits = jnp.asarray(teacher_logits, jnp.float64)
    n_points = teacher_logits.shape[0]
    column = lambda value: jnp.broadcast_to(jnp.asarray(value, jnp.float64), (n_points,))[:, None]  # noqa: E731
    return teacher_logits, jnp.asarray(labels).astype(jnp.int32), column(rho), column(temperature)


def effective_logits(teacher_logits, labels, *, rho, temperature) -> jax.Array:
    r"""Effective student logits for K classes: the zero-mean root of the softmax KD stationarity condition.

    Solves :math:`\frac{\rho}{T}(\mathrm{softmax}(z/T) - \mathrm{softmax}(z_t/T)) + (1-\rho)(\mathrm{softmax}(z) - e_y) = 0`
    row by row (vectorized; see the module docstring for the cancellation-free form and the solver).

    Args:
      teacher_logits: teacher logits :math:`z_t`, shape (N, K), K ≥ 2, finite.
      labels: integer labels :math:`y \in \{0, …, K-1\}`, shape (N,).
      rho: soft ratio :math:`\rho \in [0, 1]`, a scalar or shape (N,).
      temperature: :math:`T > 0`, a scalar or shape (N,).

    Returns:
      float64 array of shape (N, K), each row of zero mean. :math:`\rho = 1` returns the centred teacher logits;
      :math:`\rho = 0` returns :math:`+\infty` at the true class and :math:`-\infty` elsewhere (the limit:
      margins grow like :math:`\log(1/\rho)`, see the module docstring). For K = 2, the difference
      ``z[:, 1] - z[:, 0]`` is :func:`kdwide.effective_logit` of ``z_t[:, 1] - z_t[:, 0]`` with label ``y``.

    Example:
      >>> import numpy as np
      >>> z = effective_logits(np.array([[2.0, 0.0, -1.0]]), np.array([1]), rho=0.5, temperature=2.0)
      >>> [round(float(v), 4) for v in z[0]]  # the label lifts class 1 above the teacher's favourite
      [0.1899, 1.7363, -1.9261]
      >>> float(abs(z.sum())) < 1e-12
      True

    Raises:
      ValueError: naming ``teacher_logits`` (shape not (N, K ≥ 2), or not finite), ``labels`` (shape, not
        integers, or outside 0..K−1), ``rho`` (outside [0, 1]) or ``temperature`` (≤ 0 or not finite).
    """
    _check_inputs(teacher_logits, labels, rho, temperature)
    return _effective_logits_compiled(*_prepare(teacher_logits, labels, rho, temperature))


def effective_logits_rho_derivative(teacher_logits, labels, *, rho, temperature) -> jax.Array:
    r""":math:`\partial z / \partial \rho` of :func:`effective_logits` (shape (N, K), rows of zero sum), exact.

    By the implicit function theorem on the log form: :math:`J\,\partial z = -\partial r/\partial\rho` in the
    gauge :math:`z_y = 0`, with :math:`\partial r_k/\partial\rho = (p^T_k/T - p_k)/A_k - 1/\rho` and
    :math:`A_k = \frac{\rho}{T} p^T_k + (1-\rho)p_k`, then centred. Defined for :math:`\rho \in (0, 1)`
    (same arguments as :func:`effective_logits`); NaN where ρ is 0 or 1.
    """
    _check_inputs(teacher_logits, labels, rho, temperature)
    teacher_logits, labels, rho, temperature = _prepare(teacher_logits, labels, rho, temperature)
    return _rho_derivative_compiled(teacher_logits, labels, rho, temperature)


@jax.jit
def _rho_derivative_compiled(teacher_logits, labels, rho, temperature):
    mask = jnp.arange(teacher_logits.shape[-1]) != labels[:, None]
    z = _effective_logits_compiled(teacher_logits, labels, rho, temperature)
    z = z - jnp.sum(jnp.where(mask, 0.0, z), axis=-1, keepdims=True)  # gauge z_y = 0
    log_q = jax.nn.log_softmax(teacher_logits / temperature, axis=-1)
    log_soft, log_hard = jnp.log(rho) - jnp.log(temperature), jnp.log1p(-rho)
    _, log_p_t, log_p, w1, w2 = _log_residual(z, log_q, mask, log_soft, log_hard, temperature)
    # (p^T_k/T − p_k)/A_k = w1_k/ρ − w2_k/(1 − ρ)
    d_residual = jnp.where(mask, w1 / rho - w2 / (1.0 - rho) - 1.0 / rho, 0.0)
    derivative = _newton_direction(d_residual, log_p_t, log_p, w1, w2, mask, temperature)
    derivative = derivative - jnp.mean(derivative, axis=-1, keepdims=True)
    return jnp.where((rho > 0) & (rho < 1), derivative, jnp.nan)


def softmax_stationarity_residual(student_logits, teacher_logits, labels, *, rho, temperature) -> jax.Array:
    r"""The left side :math:`F(z)` of the stationarity condition at ``student_logits``, shape (N, K), float64.

    Component k ≠ y is :math:`\frac{\rho}{T}(p^T_k - q_k) + (1-\rho)p_k`; component y is minus their sum (the
    components of F sum to zero), which avoids forming :math:`p_y - 1`. Compare it with :math:`\rho q_k / T`,
    the size of the terms it balances. ``rho`` and ``temperature``: scalars or shape (N,).
    """
    student_logits = jnp.asarray(student_logits, jnp.float64)
    teacher_logits, labels, rho, temperature = _prepare(teacher_logits, labels, rho, temperature)
    mask = jnp.arange(teacher_logits.shape[-1]) != labels[:, None]
    p_t = jax.nn.softmax(student_logits / temperature, axis=-1)
    q = jax.nn.softmax(teacher_logits / temperature, axis=-1)
    p = jax.nn.softmax(student_logits, axis=-1)
    others = jnp.where(mask, rho / temperature * (p_t - q) + (1.0 - rho) * p, 0.0)
    return jnp.where(mask, others, -jnp.sum(others, axis=-1, keepdims=True))

