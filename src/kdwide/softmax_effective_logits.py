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

Solver: one monotone equation per row
-------------------------------------
Write :math:`a = \rho/T`, :math:`b = 1-\rho`, :math:`l_k = \log p_k` and :math:`s = \log S`,
:math:`S = \sum_j p_j^{1/T}` (so :math:`p^T_k = e^{l_k/T - s}`). For a fixed :math:`s` the equations
:math:`k \ne y` decouple: each :math:`l_k` solves

.. math:: \varphi_k(l) = \mathrm{logaddexp}(\log a - s + l/T,\ \log b + l) - \log(a q_k) = 0,

and :math:`\varphi_k` is convex and increasing with slope :math:`w_1/T + w_2` between :math:`\min(1, 1/T)` and
:math:`\max(1, 1/T)` (:math:`w_1, w_2` the shares of the logaddexp). From any point, one Newton step lands right
of the root (convexity), and from there the steps decrease monotonically and quadratically to it; the smaller of
the two one-term roots, :math:`\min(T(\log q_k + s),\ \log(a q_k / b))`, is a start right of the root (at most 8
steps to float64 resolution for T in [0.005, 200], measured). Every :math:`l_k(s)` increases with :math:`s`
(:math:`dl_k/ds = w_1/(w_1/T + w_2)`). The true class's equation, with :math:`\delta = \sum_{k\ne y} p_k` and
:math:`\sum_k p^T_k = 1`, reads :math:`p_y^{1/T} e^{-s} = q_y + (b/a)\,\delta`, i.e.
:math:`l_y(s) = T\,(s + \mathrm{logaddexp}(\log q_y, \log(b/a) + \log\delta))`, increasing too, and the one
remaining condition :math:`\sum_j p_j = 1` is

.. math:: E(s) = \mathrm{logaddexp}\big(l_y(s),\ \mathrm{LSE}_{k \ne y}\, l_k(s)\big) = 0,

strictly increasing, with the root inside :math:`[\min(0, c), \max(0, c)]`, :math:`c = (1 - 1/T)\log K` (the range
of :math:`\log\sum_j p_j^{1/T}` on the simplex). Everything is a log-sum of positive terms: no cancellation, even
where :math:`p_y \approx 1` or :math:`p_y \approx 10^{-150}` (the margins come out as differences of the
:math:`l_k`). These are hand-written, vectorized over 10^6 rows in JAX: scipy's root finders work one point at a
time, ~1000× slower here (``benchmarks/multiclass_effective_logit.py``).

*Fast path* (every row, a fixed number of steps, no loop to the slowest row): Newton's steps on :math:`E` from the
teacher's own :math:`s` (exact at :math:`\rho = 1`), each after one Newton step on every :math:`l_k`, the
:math:`l_k` warm-started by :math:`(dl_k/ds)\,\Delta s`; four such steps in float32 (XLA:CPU vectorizes float32
exp/log), then two in float64 with the arithmetic-only functions of :mod:`kdwide.arithmetic_exp_log` (one fused
loop per step; float64 exp/log are libm calls there that split the loop). A row is accepted when its last
:math:`\Delta s`, its :math:`\varphi_k` and :math:`E` are at most 1e-9 (quadratic convergence then leaves
~1e-18); on the benchmark's inputs 99.8% are.

*Robust solver* (the rows left, gathered): safeguarded Newton on :math:`E` inside its bracket, every
:math:`E(s)` evaluated with :math:`l_k` solved afresh from the right (12 steps), so the sign of :math:`E` is
reliable and the bracket always holds the root; bisection replaces a Newton step that leaves the bracket or is
longer than half the step before the last (as in Numerical Recipes' *rtsafe*: :math:`E` can be S-shaped, and
plain safeguarded Newton then bounces between the bracket's ends). A row stops once :math:`|E|` is at its
rounding level or the step or bracket is below float64 resolution: every row converges.

The ρ-derivative uses Newton's linear system in the gauge :math:`z_y = 0` on the log form above: its Jacobian
:math:`J = \mathrm{diag}(w_1/T + w_2) - (w_1/T)\,p^{T\top} - w_2\,p^\top` is a diagonal minus a rank-2
matrix, solved in O(K) by the Woodbury identity with a 2×2 capacitance matrix formed from sums of positive terms.

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

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from kdwide.arithmetic_exp_log import exp_nonpositive, log1p_unit, reciprocal
from kdwide.validation import check_class_labels, check_finite, check_soft_ratio, check_temperature

__all__ = ["effective_logits", "effective_logits_rho_derivative", "softmax_stationarity_residual"]

_FAST_SINGLE_STEPS = (4, 1)  # fast path in float32: steps in s, inner steps on every l_k per step in s
# (one inner step per step in s, thanks to the warm start: 0.9 against 1.3 s on jax 0.10.2, 1.2 against 1.3 s on
# 0.5.3 for the benchmark's 10^6 x 10, though the robust solver then takes 0.2% of the rows instead of 0.03%)
_FAST_DOUBLE_STEPS = (2, 1)  # then in float64
_FAST_ACCEPT = 1e-9  # fast path: last |Δs|, |φ_k| and |E| at most this (the final steps square it: ~1e-18)
_ROBUST_MAX_STEPS = 200  # safeguarded steps in s (bisection alone halves a bracket of width < 60 in ~60 steps)
_ROBUST_INNER_STEPS = 12  # monotone Newton steps on l_k from the right (converges in ≤ 8 over T in [0.01, 100])
_TOLERANCE = 4e-16


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


class _RowConstants(NamedTuple):
    """Per-row constants of the one-dimensional problem (arrays (N, K) or columns (N, 1); see the module docstring)."""

    mask: jax.Array  # (N, K): k ≠ y
    log_q: jax.Array  # (N, K): log softmax(z_t / T)
    log_q_y: jax.Array  # (N, 1)
    log_a: jax.Array  # (N, 1): log(ρ/T)
    log_b: jax.Array  # (N, 1): log(1 − ρ)
    temperature: jax.Array  # (N, 1)
    inverse_temperature: jax.Array  # (N, 1)
    lower: jax.Array  # (N, 1): bracket of s = log Σ_j p_j^{1/T}
    upper: jax.Array  # (N, 1)


def _row_constants(teacher_logits, mask, rho, temperature):
    """The row constants and the starting s (the teacher's own s, exact at ρ = 1), for ρ in (0, 1)."""
    scaled = teacher_logits / temperature
    log_q = jax.nn.log_softmax(scaled, axis=-1)
    bound = (1.0 - 1.0 / temperature) * np.log(teacher_logits.shape[-1])  # Σ p^{1/T} on the simplex
    constants = _RowConstants(
        mask=mask,
        log_q=log_q,
        log_q_y=jnp.sum(jnp.where(mask, 0.0, log_q), axis=-1, keepdims=True),
        log_a=jnp.log(rho) - jnp.log(temperature),
        log_b=jnp.log1p(-rho),
        temperature=temperature,
        inverse_temperature=1.0 / temperature,
        lower=jnp.minimum(0.0, bound),
        upper=jnp.maximum(0.0, bound),
    )
    log_sum_scaled = jax.nn.logsumexp(scaled, -1, keepdims=True)
    teacher_s = log_sum_scaled - jax.nn.logsumexp(teacher_logits, -1, keepdims=True) / temperature
    return constants, jnp.clip(teacher_s, constants.lower, constants.upper)


def _upper_start(s, c: _RowConstants):
    """l_k ≥ l_k(s): each term of φ alone reaches log(a q_k) at its own root, the smaller of the two roots."""
    return jnp.minimum(c.temperature * (c.log_q + s), c.log_q + c.log_a - c.log_b)


def _exp_log1p_reciprocal(dtype, arithmetic):
    """(exp of x ≤ 0, log(1 + e) for e in [0, 1], 1/y) for the inner step and the normalisation.

    float64: the arithmetic-only versions of :mod:`kdwide.arithmetic_exp_log`. XLA:CPU calls libm for float64
    exp/log and treats them and division as expensive, so every value they produce that feeds several operations
    becomes an array in memory; with these the whole step is one fused loop (measured: ~3x less time per step).
    They hold on the fast path's domain (reciprocal: 1e-37 ≤ |y| ≤ 1e37; a row outside gives a non-finite
    or inaccurate result and is not accepted). float32, and the robust solver: XLA's own functions.
    """
    if arithmetic and dtype == jnp.float64:
        return exp_nonpositive, log1p_unit, reciprocal
    return jnp.exp, jnp.log1p, lambda y: 1.0 / y


def _inner_step(l, s, c: _RowConstants, arithmetic: bool = False):
    """One Newton step on every φ_k(l) = logaddexp(log a − s + l/T, log b + l) − log(a q_k).

    Returns (new l, φ_k, dl_k/ds). One exp and one log1p per element; the shares w1, w2 of the logaddexp from the same exp. φ_k is convex and
    increasing with slope w1/T + w2 in [min(1, 1/T), max(1, 1/T)], so from any point one step lands right of the
    root and the steps then decrease monotonically to it. dl_k/ds = w1 / (w1/T + w2) (implicit differentiation).
    """
    exp, log1p, inverse = _exp_log1p_reciprocal(l.dtype, arithmetic)
    inverse_t = c.inverse_temperature
    soft = c.log_a - s + l * inverse_t
    hard = c.log_b + l
    difference = soft - hard
    e = exp(-jnp.abs(difference))
    # w1 = share1 / (1 + e), w2 = share2 / (1 + e); the common factor cancels from the step and dl/ds.
    share1, share2 = jnp.where(difference >= 0, 1.0, e), jnp.where(difference >= 0, e, 1.0)
    phi = jnp.maximum(soft, hard) + log1p(e) - c.log_a - c.log_q
    inverse_slope = inverse(share1 * inverse_t + share2)  # times (1 + e): 1 / (w1/T + w2)
    return l - phi * (1.0 + e) * inverse_slope, phi, share1 * inverse_slope


def _normalisation(l, dl_ds, s, c: _RowConstants, arithmetic: bool = False):
    """(E, dE/ds, l_y, λ) with E = log Σ_j p_j, from the l_k (k ≠ y) at s and the true class's equation.

    λ = log δ = LSE_{k≠y} l_k; the true class gives p_y^{1/T} e^{−s} = q_y + (b/a) δ, i.e.
    l_y = T (s + logaddexp(log q_y, log(b/a) + λ)); E = logaddexp(l_y, λ). All of λ, l_y, E grow with s.
    """
    exp = _exp_log1p_reciprocal(l.dtype, arithmetic)[0]
    others = jnp.where(c.mask, l, -jnp.inf)
    largest = jnp.max(others, axis=-1, keepdims=True)
    shares = exp(others - largest)
    total = jnp.sum(shares, axis=-1, keepdims=True)
    log_delta = largest + jnp.log(total)
    d_log_delta = jnp.sum(shares * dl_ds, axis=-1, keepdims=True) / total
    label_term = c.log_b - c.log_a + log_delta
    log_true = jnp.logaddexp(c.log_q_y, label_term)
    l_y = c.temperature * (s + log_true)
    d_l_y = c.temperature * (1.0 + jnp.exp(label_term - log_true) * d_log_delta)
    normalisation = jnp.logaddexp(l_y, log_delta)
    theta = jnp.exp(l_y - normalisation)
    return normalisation, theta * d_l_y + (1.0 - theta) * d_log_delta, l_y, log_delta


def _newton_in_s(s, normalisation, slope, lower, upper, largest_step=np.inf):
    """Newton's step on E(s) = 0, replaced by the bracket's midpoint where it leaves [lower, upper] (or is NaN)
    or is longer than half ``largest_step`` (the step before the last, as in Numerical Recipes' rtsafe: without
    it Newton can bounce between the two ends of an S-shaped E, shrinking the bracket ever more slowly)."""
    newton = s - normalisation / slope
    inside = (newton >= lower) & (newton <= upper) & (jnp.abs(newton - s) <= 0.5 * largest_step)  # False for NaN
    return jnp.where(inside, newton, 0.5 * (lower + upper))


def _fast_steps(l, s, c: _RowConstants, outer_steps: int, inner_steps: int):
    """``outer_steps`` Newton steps in s, each after ``inner_steps`` on the l_k and followed by the warm start
    l_k += (dl_k/ds) Δs: (l, s, last Δs). No safeguard beyond the bracket: rows it fails are not accepted."""
    step = jnp.zeros_like(s)
    for _ in range(outer_steps):
        for _ in range(inner_steps):
            l, _, dl_ds = _inner_step(l, s, c, arithmetic=True)
        l, dl_ds = lax.optimization_barrier((l, dl_ds))
        normalisation, slope, _, _ = _normalisation(l, dl_ds, s, c, arithmetic=True)
        new_s = _newton_in_s(s, normalisation, slope, c.lower, c.upper)
        l, step, s = l + dl_ds * (new_s - s), new_s - s, new_s
    return l, s, step


def _fast_solve(teacher_logits, mask, rho, temperature):
    """(l, s, accepted): a fixed number of steps on every row (no loop to the slowest row), for ρ in (0, 1).

    First in float32 (XLA:CPU vectorizes float32 exp/log; half the memory traffic) to ~1e-6, then in float64,
    where Newton's quadratic convergence needs only ``_FAST_DOUBLE_STEPS`` steps from there. Warm starts (see
    :func:`_fast_steps`) make one inner step per step in s enough. A row is accepted if its last Δs,
    its φ_k and E are at most ``_FAST_ACCEPT`` (the final steps square them, to ~1e-18).
    """
    c, s = _row_constants(teacher_logits, mask, rho, temperature)
    single = _RowConstants(*(a.astype(jnp.float32) if a.dtype == jnp.float64 else a for a in c))
    s_single = s.astype(jnp.float32)
    l, s_single, _ = _fast_steps(_upper_start(s_single, single), s_single, single, *_FAST_SINGLE_STEPS)
    l, s, step = _fast_steps(l.astype(jnp.float64), s_single.astype(jnp.float64), c, *_FAST_DOUBLE_STEPS)
    l, phi, dl_ds = _inner_step(l, s, c, arithmetic=True)
    normalisation, _, l_y, _ = _normalisation(l, dl_ds, s, c, arithmetic=True)
    worst_phi = jnp.max(jnp.where(mask, jnp.abs(phi), 0.0), axis=-1, keepdims=True)
    accepted = (jnp.abs(step) <= _FAST_ACCEPT) & (worst_phi <= _FAST_ACCEPT) & (jnp.abs(normalisation) <= _FAST_ACCEPT)
    return jnp.where(mask, l, l_y), s, accepted[:, 0]


def _robust_solve(teacher_logits, mask, rho, temperature, s, done):
    """Safeguarded Newton on E(s) (bisection in the bracket), l_k solved afresh from the right at every s.

    Starts from ``s`` (N, 1); rows with ``done`` keep it and are skipped. Every E(s) is evaluated with
    converged l_k, so its sign is reliable and the bracket always holds the root: this converges on every row.
    """
    c, _ = _row_constants(teacher_logits, mask, rho, temperature)
    s = jnp.clip(s, c.lower, c.upper)

    def evaluate(s):
        l = _upper_start(s, c)
        for _ in range(_ROBUST_INNER_STEPS):
            l, _, dl_ds = _inner_step(l, s, c)
        normalisation, slope, l_y, log_delta = _normalisation(l, dl_ds, s, c)
        # E's rounding level: l_y = T (s + log(...)) and E = logaddexp(l_y, λ) carry errors of this size.
        terms = 1.0 + 2.0 * c.temperature * jnp.abs(s) + jnp.abs(l_y) + jnp.abs(log_delta)
        noise = 8 * np.finfo(np.float64).eps * terms
        return jnp.where(mask, l, l_y), normalisation, slope, noise

    def body(carry):
        iteration, s, lower, upper, _, done, last_step, step_before = carry
        l, normalisation, slope, noise = evaluate(s)
        lower = jnp.where(normalisation < 0, s, lower)
        upper = jnp.where(normalisation > 0, s, upper)
        new_s = _newton_in_s(s, normalisation, slope, lower, upper, step_before)
        resolution = _TOLERANCE * jnp.maximum(1.0, jnp.abs(s))
        converged = jnp.abs(normalisation) <= noise
        converged = converged | (jnp.abs(new_s - s) <= resolution) | (upper - lower <= resolution)
        done = done | converged[:, 0]
        new_s = jnp.where(done[:, None], s, new_s)  # a converged row stays where l was evaluated
        return iteration + 1, new_s, lower, upper, l, done, jnp.abs(new_s - s), last_step

    def cond(carry):
        return (carry[0] < _ROBUST_MAX_STEPS) & ~jnp.all(carry[5])

    l = evaluate(s)[0]
    width = c.upper - c.lower
    carry = lax.while_loop(cond, body, (0, s, c.lower, c.upper, l, done, width, width))
    return carry[4]


def _finish(log_probabilities, teacher_logits, mask, rho):
    """Centred rows; the centred teacher at ρ = 1 and the signed infinite limit at ρ = 0."""
    # Through the gauge z_y = 0 first: for K = 2 the two centred entries are then exactly opposite.
    z = log_probabilities - jnp.sum(jnp.where(mask, 0.0, log_probabilities), axis=-1, keepdims=True)
    z = z - jnp.mean(z, axis=-1, keepdims=True)
    z = jnp.where(rho == 1, teacher_logits - jnp.mean(teacher_logits, axis=-1, keepdims=True), z)
    return jnp.where(rho == 0, jnp.where(mask, -jnp.inf, jnp.inf), z)


def _interior_arguments(teacher_logits, labels, rho, temperature):
    """(teacher_logits, mask, ρ with 0 and 1 replaced by 1/2, T) and the interior flag (N, 1)."""
    mask = jnp.arange(teacher_logits.shape[-1]) != labels[:, None]
    interior = (rho > 0) & (rho < 1)
    return (teacher_logits, mask, jnp.where(interior, rho, 0.5), temperature), interior


@jax.jit
def _fast_compiled(teacher_logits, labels, rho, temperature):
    """(z, s, accepted) of the fast path; rows at ρ ∈ {0, 1} are accepted (they need no root)."""
    arguments, interior = _interior_arguments(teacher_logits, labels, rho, temperature)
    l, s, accepted = _fast_solve(*arguments)
    return _finish(l, teacher_logits, arguments[1], rho), s, accepted | ~interior[:, 0]


@jax.jit
def _robust_compiled(teacher_logits, labels, rho, temperature, s):
    """z of the robust solver on every row, from the starting s (N, 1)."""
    arguments, interior = _interior_arguments(teacher_logits, labels, rho, temperature)
    l = _robust_solve(*arguments, s, ~interior[:, 0])
    return _finish(l, teacher_logits, arguments[1], rho)


@jax.jit
def _effective_logits_compiled(teacher_logits, labels, rho, temperature):
    """Every case of rho in [0, 1] as one program (for traced inputs): the fast path, the robust solver after it."""
    arguments, interior = _interior_arguments(teacher_logits, labels, rho, temperature)
    fast_l, s, accepted = _fast_solve(*arguments)
    robust_l = _robust_solve(*arguments, s, accepted | ~interior[:, 0])
    l = jnp.where(accepted[:, None], fast_l, robust_l)
    return _finish(l, teacher_logits, arguments[1], rho)


@functools.partial(jax.jit, donate_argnums=0)
def _replace_rows(z, rows, values):
    """``z`` with ``z[rows] = values``, in place (the caller gives ``z`` up)."""
    return z.at[rows].set(values)


def _effective_logits_concrete(teacher_logits, labels, rho, temperature):
    """The fast path on every row, then the robust solver on the rows it left unaccepted (gathered on the host,
    padded to a power of two to bound recompilations): the vectorized loop runs over those rows only."""
    z, s, accepted = _fast_compiled(teacher_logits, labels, rho, temperature)
    missing = np.flatnonzero(~np.asarray(accepted))
    if missing.size == 0:
        return z
    padded = missing[np.resize(np.arange(missing.size), 1 << int(np.ceil(np.log2(missing.size))))]
    rows = jnp.asarray(padded)
    gathered = [jnp.take(array, rows, axis=0) for array in (teacher_logits, labels, rho, temperature, s)]
    return _replace_rows(z, rows, _robust_compiled(*gathered))


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
    prepared = _prepare(teacher_logits, labels, rho, temperature)
    if any(isinstance(array, jax.core.Tracer) for array in prepared):
        return _effective_logits_compiled(*prepared)
    return _effective_logits_concrete(*prepared)


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

