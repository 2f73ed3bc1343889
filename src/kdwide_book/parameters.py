"""Chapter parameters shared by every notebook and by the sweep runner.

Each chapter's ``parameters`` cell uses these names where the concept applies; its next cell calls
:func:`validate_parameters` (a clear ``ValueError`` naming the bad parameter) and
:func:`resolve_profile` (``"ci"`` for 2 CPU cores in minutes, ``"paper"`` for paper scale on a GPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from kdwide.validation import ACTIVATIONS
from kdwide_book import PROFILES

__all__ = ["PROFILES", "validate_parameter", "validate_parameters", "resolve_profile"]


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _soft_ratio(v: Any) -> bool:
    return _is_real(v) and not math.isnan(v) and 0.0 <= v <= 1.0


def _temperature(v: Any) -> bool:
    return _is_real(v) and math.isfinite(v) and v > 0


def _positive_int(v: Any) -> bool:
    return _is_int(v) and v >= 1


def _non_negative_int(v: Any) -> bool:
    return _is_int(v) and v >= 0


def _non_negative_real(v: Any) -> bool:
    return _is_real(v) and math.isfinite(v) and v >= 0


def _list_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(check(x) for x in v)


# name -> (check, description of the allowed values)
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (_non_negative_int, "an integer >= 0"),
    "seeds": (_list_of(_non_negative_int), "a non-empty list of integers >= 0"),
    "rho": (_soft_ratio, "a number in [0, 1] (soft ratio)"),
    "rho_values": (_list_of(_soft_ratio), "a non-empty list of numbers in [0, 1] (soft ratios)"),
    "temperature": (_temperature, "a finite number > 0"),
    "temperature_values": (_list_of(_temperature), "a non-empty list of finite numbers > 0"),
    "n_train": (_positive_int, "an integer >= 1"),
    "n_values": (_list_of(_positive_int), "a non-empty list of integers >= 1"),
    "n_test": (_positive_int, "an integer >= 1"),
    "input_dim": (_positive_int, "an integer >= 1"),
    "width": (_positive_int, "an integer >= 1"),
    "widths": (_list_of(_positive_int), "a non-empty list of integers >= 1"),
    "depth": (_positive_int, "an integer >= 1 (hidden layers)"),
    "activation": (lambda v: v in ACTIVATIONS, " or ".join(repr(a) for a in ACTIVATIONS)),
    "w_std": (lambda v: _is_real(v) and math.isfinite(v) and v > 0, "a finite number > 0"),
    "b_std": (_non_negative_real, "a finite number >= 0"),
    "profile": (lambda v: v in PROFILES, "'ci' or 'paper'"),
    "results_path": (lambda v: v is None or isinstance(v, str), "None or a file path (str)"),
}


def validate_parameter(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` and its allowed values if ``value`` breaks the shared rule.

    Names without a shared rule are accepted as they are (chapters check their own).
    """
    rule = RULES.get(name)
    if rule is None:
        return
    check, allowed = rule
    if not check(value):
        raise ValueError(f"parameter {name!r} must be {allowed}, got {value!r}")


def validate_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every parameter that has a shared rule; return a plain ``dict`` copy."""
    for name, value in parameters.items():
        validate_parameter(name, value)
    return dict(parameters)


def resolve_profile(
    parameters: Mapping[str, Any], profiles: Mapping[str, Mapping[str, Any]], overridden: set[str] | None = None
) -> dict[str, Any]:
    """Fill in profile-dependent settings.

    Args:
      parameters: the chapter's parameters, with ``profile`` among them.
      profiles: ``{"ci": {...}, "paper": {...}}``, settings per profile.
      overridden: names the reader set explicitly (they win over the profile); ``None`` means only
        parameters whose value is ``None`` are filled from the profile.

    Returns:
      A new dict: the parameters with profile values filled in, validated.
    """
    profile = parameters.get("profile", "ci")
    validate_parameter("profile", profile)
    resolved = dict(parameters)
    for name, value in profiles[profile].items():
        explicit = (name in overridden) if overridden is not None else (resolved.get(name) is not None)
        if not explicit:
            resolved[name] = value
    return validate_parameters(resolved)
