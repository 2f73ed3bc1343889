"""Input checks at the public boundary of :mod:`kdwide`.

Every check raises :class:`ValueError` naming the parameter and its allowed range. Checks run only
on concrete values: inside ``jax.jit`` / ``jax.grad`` the arguments are tracers and cannot be
inspected, so the caller that traced the function is responsible for its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "check_architecture",
    "concrete",
    "check_soft_ratio",
    "check_temperature",
    "check_hard_labels",
    "check_class_labels",
    "check_finite",
    "check_same_shape",
    "check_positive_int",
]


def concrete(value: Any) -> np.ndarray | None:
    """Return ``value`` as a NumPy array, or ``None`` if it is a JAX tracer (abstract value)."""
    try:
        return np.asarray(value)
    except Exception:  # jax.errors.TracerArrayConversionError and friends
        return None


def _extremes(arr: np.ndarray) -> tuple[float, float]:
    """(min, max) of a real array, NaN if it holds a NaN (two reductions, no temporaries); (0, 0) if empty."""
    if arr.size == 0:
        return 0.0, 0.0
    return arr.min(), arr.max()


def _real_array(value: Any, message: Callable[[np.ndarray], str]) -> np.ndarray | None:
    """``value`` as a concrete NumPy array (``None`` for a tracer); ``ValueError(message(array))`` if not real."""
    arr = concrete(value)
    if arr is not None and (not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr)):
        raise ValueError(message(arr))
    return arr


def check_soft_ratio(rho: Any, name: str = "rho") -> None:
    """Soft ratio ρ must lie in [0, 1] (and not be NaN)."""
    arr = _real_array(rho, lambda _: f"{name} (soft ratio) must be a real number in [0, 1], got {rho!r}")
    if arr is None:
        return
    low, high = _extremes(arr)
    if not (low >= 0 and high <= 1):  # also catches NaN
        raise ValueError(f"{name} (soft ratio) must lie in [0, 1] and not be NaN, got {rho!r}")


def check_temperature(temperature: Any, name: str = "temperature") -> None:
    """Temperature T must be finite and > 0."""
    arr = _real_array(temperature, lambda _: f"{name} must be a real number > 0, got {temperature!r}")
    if arr is None:
        return
    low, high = _extremes(arr)
    if not (low > 0 and np.isfinite(high)):  # also catches NaN
        raise ValueError(f"{name} must be finite and > 0 (T in (0, inf)), got {temperature!r}")


def check_hard_labels(y_hard: Any, name: str = "y_hard") -> None:
    """Hard labels must be 0 or 1."""
    arr = concrete(y_hard)
    if arr is None:
        return
    if arr.dtype == bool:
        return
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} (hard labels) must contain only 0 and 1, got values outside {{0, 1}}")
    if np.issubdtype(arr.dtype, np.integer):
        low, high = _extremes(arr)
        valid = low >= 0 and high <= 1
    else:
        valid = bool(np.all((arr == 0) | (arr == 1)))
    if not valid:
        raise ValueError(f"{name} (hard labels) must contain only 0 and 1, got values outside {{0, 1}}")


def check_class_labels(labels: Any, n_classes: int, name: str = "labels") -> None:
    """Class labels must be integers (integer dtype, or real values that are whole numbers) in 0..n_classes − 1."""
    arr = concrete(labels)
    if arr is None:
        return
    message = f"{name} (class labels) must be integers in 0..{n_classes - 1}"
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{message}, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer) and not bool(np.all(np.isfinite(arr) & (arr == np.round(arr)))):
        raise ValueError(f"{message}, got non-integer values")
    low, high = _extremes(arr)
    if not (low >= 0 and high <= n_classes - 1):
        raise ValueError(f"{message}, got values in [{low}, {high}]")


def check_finite(value: Any, name: str) -> None:
    """Array must be real and contain no NaN or infinity."""
    arr = _real_array(value, lambda a: f"{name} must be a real array, got dtype {a.dtype}")
    if arr is None:
        return
    low, high = _extremes(arr)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} must be finite (no NaN or infinity)")


def check_same_shape(**arrays: Any) -> None:
    """All named arrays must have the same shape."""
    shapes = {name: np.shape(a) for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n} {s}" for n, s in shapes.items())
        raise ValueError(f"shapes must match: {listed}")


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Integer ≥ ``minimum``; returns it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


ACTIVATIONS: tuple[str, ...] = ("relu", "erf")
"""Supported activations of the networks and kernels (names as accepted by ``activation=``)."""


def _check_real(value: Any, name: str, *, minimum: float, strict: bool) -> float:
    relation = ">" if strict else ">="
    try:
        if isinstance(value, (bool, str)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number {relation} {minimum}, got {value!r}") from None
    bad = not math.isfinite(number) or (number <= minimum if strict else number < minimum)
    if bad:
        raise ValueError(f"{name} must be finite and {relation} {minimum}, got {value!r}")
    return number


def check_positive_real(value: Any, name: str) -> float:
    """A finite real number > 0 (not a bool or a string); returns it as ``float``; ``ValueError`` naming ``name``."""
    return _check_real(value, name, minimum=0.0, strict=True)


def check_architecture(*, depth: int, activation: str, w_std: float, b_std: float) -> tuple[int, str, float, float]:
    """Validate the architecture hyperparameters shared by networks and kernels.

    Lives here, not in :mod:`kdwide.networks`, so that the kernels (which the networks import) can use it too.

    Args:
      depth: number of hidden layers, an integer ≥ 1.
      activation: one of :data:`ACTIVATIONS` (``"relu"`` or ``"erf"``).
      w_std: weight standard deviation :math:`\\sigma_W`, finite and > 0.
      b_std: bias standard deviation :math:`\\sigma_b`, finite and ≥ 0.

    Returns:
      ``(depth, activation, w_std, b_std)`` as ``(int, str, float, float)``.

    Raises:
      ValueError: naming the offending parameter and its allowed range.
    """
    depth = check_positive_int(depth, "depth")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    w_std = _check_real(w_std, "w_std", minimum=0.0, strict=True)
    b_std = _check_real(b_std, "b_std", minimum=0.0, strict=False)
    return depth, activation, w_std, b_std
