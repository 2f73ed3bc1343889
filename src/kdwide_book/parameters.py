"""Chapter parameters: one rule table for every chapter, and the one setup call that applies it.

Each chapter's first code cell (tagged ``parameters``, for papermill) assigns its parameters; the next cell calls
:func:`setup_chapter`, which fills the ``None`` entries from the chosen profile (``"ci"`` for 2 CPU cores in
minutes, ``"paper"`` for paper scale on a GPU), checks every parameter against :data:`RULES` and the chapter's
relations in :data:`CHAPTER_RULES` (a ``ValueError`` naming the parameter and its allowed values), and writes the
resolved values back into the notebook's namespace. Chapters then derive every random draw from
``kdwide.seeds.Streams(seed)`` (repetitions: ``Streams(seed).repetitions(n_seeds)``), in a cell of their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import numpy as np

from kdwide.seeds import check_seed
from kdwide.validation import ACTIVATIONS
from kdwide_book import PROFILES

__all__ = ["CHAPTER_RULES", "PROFILES", "RULES", "resolve_profile", "setup_chapter", "validate_parameter", "validate_parameters"]


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


def _seed(v: Any) -> bool:
    try:
        check_seed(v)
    except ValueError:
        return False
    return True


def _non_negative_real(v: Any) -> bool:
    return _is_real(v) and math.isfinite(v) and v >= 0


def _list_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(check(x) for x in v)


# name -> (check, description of the allowed values)
def _finite_real(v: Any) -> bool:
    return _is_real(v) and math.isfinite(v)


def _positive_real(v: Any) -> bool:
    return _finite_real(v) and v > 0


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


# name -> (check, description of the allowed values). Every parameter of every chapter is here (a test checks it).
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (_seed, "an integer >= 0 (kdwide.seeds.check_seed)"),
    "n_seeds": (_positive_int, "an integer >= 1 (repetitions: Streams(seed).repetitions(n_seeds))"),
    "rho": (_soft_ratio, "a number in [0, 1] (soft ratio)"),
    "rho_values": (_list_of(_soft_ratio), "a non-empty list of numbers in [0, 1] (soft ratios)"),
    "temperature": (_temperature, "a finite number > 0"),
    "temperature_values": (_list_of(_temperature), "a non-empty list of finite numbers > 0"),
    "n_train": (_positive_int, "an integer >= 1"),
    "n_values": (_list_of(_positive_int), "a non-empty list of integers >= 1"),
    "n_test": (_positive_int, "an integer >= 1"),
    "n_points": (_optional(_positive_int), "None (all) or an integer >= 1"),
    "n_candidates": (_positive_int, "an integer >= 1"),
    "n_teacher": (_positive_int, "an integer >= 1"),
    "n_anchors": (_positive_int, "an integer >= 1"),
    "n_angle_samples": (_positive_int, "an integer >= 1"),
    "n_splits": (_positive_int, "an integer >= 1"),
    "n_student": (_positive_int, "an integer >= 1"),
    "finite_width_n_train": (_positive_int, "an integer >= 1"),
    "input_dim": (_positive_int, "an integer >= 1"),
    "input_dims": (_list_of(lambda v: _is_int(v) and v >= 2), "a non-empty list of integers >= 2"),
    "width": (_positive_int, "an integer >= 1"),
    "widths": (_list_of(_positive_int), "a non-empty list of integers >= 1"),
    "depth": (_positive_int, "an integer >= 1 (hidden layers)"),
    "activation": (lambda v: v in ACTIVATIONS, " or ".join(repr(a) for a in ACTIVATIONS)),
    "w_std": (_positive_real, "a finite number > 0"),
    "b_std": (_non_negative_real, "a finite number >= 0"),
    "teacher_peak_logit": (_positive_real, "a finite number > 0 (the teacher's largest |logit|)"),
    "teacher_rms_logit": (_positive_real, "a finite number > 0 (the teacher's root-mean-square logit)"),
    "teacher_target_logit": (_positive_real, "a finite number > 0 (the +-size of a trained teacher's targets)"),
    "remove_linear": (lambda v: isinstance(v, bool), "True or False"),
    "tolerance": (_positive_real, "a finite number > 0"),
    "frequency": (_positive_int, "an integer >= 1"),
    "frequencies": (_list_of(_positive_real), "a non-empty list of finite numbers > 0"),
    "stopping_times": (_list_of(_positive_real), "a non-empty list of finite numbers > 0"),
    "corruption_scale": (_non_negative_real, "a finite number >= 0"),
    "corruption_scales": (_list_of(_non_negative_real), "a non-empty list of finite numbers >= 0"),
    "dataset": (lambda v: v in ("digits", "mnist"), "'digits' or 'mnist'"),
    "mnist_directory": (lambda v: v is None or isinstance(v, str), "None or a folder path (str)"),
    "positive_classes": (_list_of(lambda v: _is_int(v) and 0 <= v <= 9), "a non-empty list of digits 0-9"),
    "teacher_sizes": (_list_of(_positive_int), "a non-empty list of integers >= 1"),
    "teacher_ridge": (_non_negative_real, "a finite number >= 0"),
    "significance": (_non_negative_real, "a finite number >= 0"),
    "flat_tolerance": (_non_negative_real, "a finite number >= 0"),
    "sweep_notebook": (lambda v: isinstance(v, str), "a notebook path (str)"),
    "sweep_teacher_peak_logits": (_list_of(_positive_real), "a non-empty list of finite numbers > 0"),
    "class_counts": (_list_of(lambda v: _is_int(v) and 2 <= v <= 10), "a non-empty list of integers in 2..10 (the first K digits)"),
    "limit_rho_values": (_list_of(lambda v: _is_real(v) and 0 < v < 1), "a non-empty list of numbers in (0, 1) (small soft ratios)"),
    "n_student_per_class": (_positive_int, "an integer >= 1"),
    "teacher_sizes_per_class": (_list_of(_positive_int), "a non-empty list of integers >= 1"),
    "profile": (lambda v: v in PROFILES, "'ci' or 'paper'"),
    "results_path": (lambda v: v is None or isinstance(v, str), "None or a file path (str)"),
}


def _contains_both_limits(p: Mapping[str, Any]) -> bool:
    return 0.0 in list(p["rho_values"]) and 1.0 in list(p["rho_values"])


# chapter -> [(name, check of the resolved parameters, description)]: relations between a chapter's parameters.
CHAPTER_RULES: dict[str, list[tuple[str, Callable[[Mapping[str, Any]], bool], str]]] = {
    "02_linearization": [
        ("rho_values", lambda p: min(p["rho_values"]) > 0, "soft ratios in (0, 1] (networks are trained)"),
        ("widths", lambda p: len(set(p["widths"])) >= 2, "at least two different widths (C2 fits a slope against width)"),
        ("n_anchors", lambda p: p["n_anchors"] > p["input_dim"] + 1, "an integer > input_dim + 1"),
    ],
    "03_risk_bound": [
        ("rho_values", _contains_both_limits, "a list containing 0.0 (hard labels) and 1.0 (pure soft)"),
        ("n_values", lambda p: all(b > a for a, b in zip(p["n_values"], p["n_values"][1:])), "strictly increasing"),
        ("n_anchors", lambda p: p["n_anchors"] >= (max([*p["input_dims"], p["input_dim"]]) + 2 if p["remove_linear"] else 2),
         "an integer >= d + 2 for every d used (with remove_linear; else >= 2)"),
    ],
    "05_imperfect_teacher": [
        ("rho_values", _contains_both_limits, "a list containing 0.0 (the hard-label student) and 1.0 (pure distillation)"),
    ],
    "06_landscape": [
        ("rho_values", _contains_both_limits, "a list containing 0.0 (hard labels) and 1.0 (pure soft): R4 compares them"),
    ],
    "07_beyond_two_classes": [
        ("rho_values", _contains_both_limits, "a list containing 0.0 (hard labels) and 1.0 (pure distillation)"),
        ("class_counts", lambda p: len(set(p["class_counts"])) >= 2, "at least two different class counts (M4 compares them)"),
        ("limit_rho_values", lambda p: len(set(p["limit_rho_values"])) >= 3, "at least three different soft ratios (M2 fits slopes)"),
    ],
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


def resolve_profile(parameters: Mapping[str, Any], profiles: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Fill the parameters left at ``None`` from the chosen profile, then validate every one.

    Args:
      parameters: the chapter's parameters, with ``profile`` among them.
      profiles: ``{"ci": {...}, "paper": {...}}``, settings per profile; a value the reader set wins.

    Returns:
      A new dict: the parameters with profile values filled in, validated.
    """
    profile = parameters.get("profile", "ci")
    validate_parameter("profile", profile)
    resolved = dict(parameters)
    for name, value in profiles[profile].items():
        if resolved.get(name) is None:
            resolved[name] = value
    return validate_parameters(resolved)


def setup_chapter(
    namespace: MutableMapping[str, Any], *, chapter: str, profiles: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The setup call of every chapter: profile, rules, repetition seeds, written back into ``namespace``.

    Args:
      namespace: the notebook's ``globals()`` right after its parameters cell; every name in it that
        :data:`RULES` knows is a parameter.
      chapter: the chapter's name (``"02_linearization"``), for its :data:`CHAPTER_RULES`.
      profiles: ``{"ci": {...}, "paper": {...}}``: the values a ``None`` parameter takes under each profile.

    Returns:
      The resolved parameters (in the order of the parameters cell), as written to the results file. The
      namespace gets the resolved values (and nothing else).

    Raises:
      ValueError: naming the parameter and its allowed values.
    """
    if set(profiles) != set(PROFILES):
        raise ValueError(f"profiles must define {list(PROFILES)}, got {sorted(profiles)}")
    parameters = resolve_profile({name: value for name, value in namespace.items() if name in RULES}, profiles)
    for name, check, allowed in CHAPTER_RULES.get(chapter, []):
        if not check(parameters):
            raise ValueError(f"parameter {name!r} must be {allowed}, got {parameters[name]!r}")
    namespace.update(parameters)
    return parameters
