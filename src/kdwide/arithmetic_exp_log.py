r"""Arithmetic-only float64 ``exp``, ``log``, ``log1p`` and reciprocal (no libm calls), so that XLA:CPU fuses them.

Why this module exists
----------------------
On XLA:CPU (jaxlib 0.5.3, AVX2) ``jnp.exp`` / ``jnp.log`` in float64 are calls into a scalar math
library (~2.5 ns each), and XLA treats them and float64 division as *expensive*: a value computed by
one of them that feeds several operations becomes a kernel of its own and an array in memory. The
fast effective-logit solver (:mod:`kdwide.effective_logit`) evaluates its float64 correction step
with these functions instead, so that the whole step is one vectorized loop.

Each function is an ordinary composition of ``jax.numpy`` arithmetic (adds, multiplies, one float32
division, bit casts), accurate to a few units in the last place on its stated domain, and differentiable
nowhere in particular (the solver never differentiates through it). Nothing here is a general
replacement for ``jnp.exp`` / ``jnp.log``: each is restricted to the arguments the solver needs.

Two traps met while writing it, kept here so nobody re-introduces them: XLA's algebraic simplifier
rewrites ``(x + c) - c`` to ``x``, so the classic round-to-integer trick ``(x + 1.5·2^52) - 1.5·2^52``
silently returns ``x`` (we use ``jnp.round``); and the same rewrite turns Goldberg's
``log1p(e) = log(w)·e/(w − 1)`` with ``w = 1 + e`` into ``log(w)``, so ``log1p`` sums an atanh series.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["exp_nonpositive", "log1p_unit", "log_positive", "reciprocal"]

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that k·_LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_ROUND_MAGIC = 6755399441055744.0  # 1.5·2^52: an integer k added to it sits in the low mantissa bits
_ROUND_MAGIC_BITS = 0x4338000000000000  # the bit pattern of _ROUND_MAGIC
_EXP_TAYLOR = [1.0 / math.factorial(k) for k in range(14)]  # |r| ≤ ln2/2: truncation < 1e-17
_EXP_UNDERFLOW = -708.3  # below this exp(x) < 2.5e-308 is returned as 0 (no subnormals)
_SQRT2 = 1.4142135623730951


def _polynomial(x: jax.Array, coefficients: list[float]) -> jax.Array:
    """``Σ coefficients[k]·x^k`` (at least two coefficients) by Estrin's scheme: a short chain of dependent operations (the loop that XLA
    emits is latency-bound with Horner's long chain)."""
    terms = list(coefficients)
    power = x
    while len(terms) > 1:
        if len(terms) % 2:
            terms.append(0.0)
        terms = [terms[i] + terms[i + 1] * power for i in range(0, len(terms), 2)]
        power = power * power
    return terms[0]


def _twice_atanh(s: jax.Array, *, terms: int) -> jax.Array:
    """``2 atanh(s) = 2 Σ s^(2k+1)/(2k+1)`` over ``terms`` terms; the leading ``2s`` added last (accuracy)."""
    s2 = s * s
    return 2.0 * s + (2.0 * s) * s2 * _polynomial(s2, [1.0 / (2 * k + 1) for k in range(1, terms)])


def exp_nonpositive(x: jax.Array) -> jax.Array:
    """``exp(x)`` for float64 ``x ≤ 0`` (within 1 ulp); 0 for ``x < −708.3``.

    Range reduction ``x = k·ln2 + r`` with ``|r| ≤ ln2/2``, a degree-13 Taylor polynomial for
    ``exp(r)``, and ``2^k`` assembled from its exponent bits.
    """
    underflow = x < _EXP_UNDERFLOW
    x = jnp.maximum(x, _EXP_UNDERFLOW)
    k = jnp.round(x * _LOG2E)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    # The last two Horner steps by hand: the small rounding of 1 + r·(1 + ...) keeps the result within 1 ulp.
    polynomial = 1.0 + r * (1.0 + r * _polynomial(r, _EXP_TAYLOR[2:]))
    # k is an integer in [-1022, 0]: its two's complement sits in the low bits of k + 1.5·2^52.
    integer_bits = lax.bitcast_convert_type(k + _ROUND_MAGIC, jnp.int64) - _ROUND_MAGIC_BITS
    power_of_two = lax.bitcast_convert_type((integer_bits + 1023) << 52, jnp.float64)
    return jnp.where(underflow, 0.0, polynomial * power_of_two)


def reciprocal(y: jax.Array) -> jax.Array:
    """``1/y`` in float64 for ``1e-37 ≤ |y| ≤ 1e37`` (within 1 ulp): a float32 division refined by two
    Newton steps (relative error 6e-8 → 4e-15 → rounding)."""
    estimate = (1.0 / y.astype(jnp.float32)).astype(jnp.float64)
    estimate = estimate * (2.0 - y * estimate)
    return estimate * (2.0 - y * estimate)


def log_positive(y: jax.Array) -> jax.Array:
    """Natural logarithm of a normal positive float64 (``2.3e-308 ≤ y < inf``), within 4 ulp.

    ``y = m·2^e`` with ``m ∈ [1/√2, √2)``; ``log m = 2 atanh(s)``, ``s = (m − 1)/(m + 1)``, ``|s| ≤ 0.172``,
    summed to ``s^21``.
    """
    bits = lax.bitcast_convert_type(y, jnp.int64)
    mantissa = lax.bitcast_convert_type((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000, jnp.float64)
    large = mantissa > _SQRT2
    mantissa = jnp.where(large, 0.5 * mantissa, mantissa)
    # The biased exponent (bits >> 52) as a float64, through the same magic-number trick.
    exponent = lax.bitcast_convert_type((bits >> 52) + (_ROUND_MAGIC_BITS - 1023), jnp.float64) - _ROUND_MAGIC
    exponent = exponent + jnp.where(large, 1.0, 0.0)
    s = (mantissa - 1.0) * reciprocal(mantissa + 1.0)
    return (exponent * _LN2_HI + _twice_atanh(s, terms=11)) + exponent * _LN2_LO


def log1p_unit(e: jax.Array) -> jax.Array:
    """``log(1 + e)`` for float64 ``e ∈ [0, 1]``, with relative accuracy near 0 (within 4 ulp).

    ``log(1 + e) = 2 atanh(s)`` with ``s = e/(2 + e) ∈ [0, 1/3]``, summed to ``s^35``.
    """
    return _twice_atanh(e * reciprocal(2.0 + e), terms=18)
