"""What the judge asks of every graded question of the book, and how it computes the right answers.

A chapter's graded question (otter's ``# BEGIN QUESTION`` raw cell) names, under ``judge:``, the function the student
writes (``answer: NAME``) or the variables the student computes (``variables: [NAME, ...]``), and the kdwide functions
that the question asks the student to write (``writes: [kdwide.module.function, ...]``): those raise "not available in
this question" while the answer is produced. This module holds the rest, which is code: the public case (fixed inputs,
the same as the public test's where the public test calls the function) and the hidden cases, drawn at grading time from
a generator the judge seeds (:mod:`kdwide_book.judge`), and the reference answer of every case, computed with pristine
kdwide and numpy in the judge's process, never in the student's.

Inputs are plain data (floats, ints and nested lists of them) so that they reach the student's kernel as literals; the
judge converts them to arrays there according to each argument's kind (``"array"``: float64 array, ``"int_array"``:
int64 array, ``"float"``, ``"int"``, ``"floats"``: a list of floats).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kdwide.seeds import Streams

__all__ = ["Case", "Check", "QuestionSpec", "SPECS", "spec_for", "HARD_LIMIT_DEFAULTS"]


@dataclass(frozen=True)
class Case:
    """One call of the student's function: positional and keyword arguments as plain data, with their kinds."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    kinds: tuple[str, ...]  # one per positional argument, then one per keyword argument in ``kwargs`` order
    public: bool = False  # part of the question's public part (the judge sets it)

    def arrays(self) -> tuple[list[Any], dict[str, Any]]:
        """The arguments as the student's function receives them (numpy arrays where the kind says so)."""
        values = [*self.args, *self.kwargs.values()]
        converted = [_convert(value, kind) for value, kind in zip(values, self.kinds)]
        return converted[: len(self.args)], dict(zip(self.kwargs, converted[len(self.args):]))

    def plain(self) -> dict[str, Any]:
        """The case as the judge sends it to the producer (JSON-ready)."""
        return {"args": list(self.args), "kwargs": dict(self.kwargs), "kinds": list(self.kinds)}


def _convert(value: Any, kind: str) -> Any:
    return {"array": lambda v: np.asarray(v, dtype=np.float64), "int_array": lambda v: np.asarray(v, dtype=np.int64),
            "float": float, "int": int, "floats": lambda v: [float(x) for x in v]}[kind](value)


@dataclass(frozen=True)
class Check:
    """How an answer is compared with the reference: ``absolute`` and ``relative`` tolerances (``exact``: equal)."""

    absolute: float = 0.0
    relative: float = 0.0
    exact: bool = False


@dataclass(frozen=True)
class QuestionSpec:
    """The judge's side of one graded question.

    ``public``: fixed cases (the students know their inputs); ``draw(rng)``: the hidden cases of one grading;
    ``reference(case)``: the right answer (an array); ``check``: the comparison. For a variables question,
    ``reference_variables()`` returns the right value of every variable and ``public_variables`` names those the
    public part checks.
    """

    name: str
    public: Callable[[], list[Case]] = lambda: []
    draw: Callable[[np.random.Generator], list[Case]] = lambda rng: []
    reference: Callable[[Case], np.ndarray] | None = None
    check: Check = field(default_factory=Check)
    reference_variables: Callable[[], dict[str, np.ndarray]] | None = None
    public_variables: tuple[str, ...] = ()
    variable_checks: dict[str, Check] = field(default_factory=dict)


def _rows(array: np.ndarray) -> list[Any]:
    return np.asarray(array, dtype=np.float64).tolist()


# ------------------------------------------------------------------------------------------ chapter 1: effective logit
def _root_case(z: float, y: int, rho: float, temperature: float) -> Case:
    return Case((float(z), int(y)), {"rho": float(rho), "temperature": float(temperature)}, ("float", "int", "float", "float"))


def _root_reference(case: Case) -> np.ndarray:
    import kdwide

    args, kwargs = case.arrays()
    return np.asarray(float(kdwide.effective_logit(*args, **kwargs)))


def _flip_case(z: float, temperature: float) -> Case:
    return Case((float(z),), {"temperature": float(temperature)}, ("float", "float"))


def _flip_reference(case: Case) -> np.ndarray:
    from kdwide.experiments import imperfect_teacher

    args, kwargs = case.arrays()
    return np.asarray(imperfect_teacher.flip_soft_ratio(*args, **kwargs), dtype=np.float64)


# ---------------------------------------------------------------------------------------- chapter 2: linearization
def _min_norm_draw(rng: np.random.Generator, sizes=((30, 5), (200, 12))) -> list[Case]:
    return [Case((_rows(rng.normal(size=(p, n))), _rows(rng.normal(size=n))), {}, ("array", "array")) for p, n in sizes]


def _min_norm_reference(case: Case) -> np.ndarray:
    (features, delta), _ = case.arrays()
    return np.linalg.lstsq(features.T, delta, rcond=None)[0]


def _kernel_student_draw(rng: np.random.Generator, features: int = 60, n_train: int = 10, n_test: int = 5) -> list[Case]:
    phi = rng.normal(size=(features, n_train + n_test))
    kernel = phi.T @ phi
    init, target = rng.normal(size=n_train + n_test), rng.normal(size=n_train)
    args = (kernel[:n_train, :n_train], kernel[n_train:, :n_train], init[:n_train], init[n_train:], target)
    return [Case(tuple(_rows(a) for a in args), {}, ("array",) * 5)]


def _kernel_student_reference(case: Case) -> np.ndarray:
    (kernel_train, kernel_test_train, init_train, init_test, target), _ = case.arrays()
    return init_test + kernel_test_train @ np.linalg.solve(kernel_train, target - init_train)


# ------------------------------------------------------------------------------------------ chapter 3: risk bound
def _bound_draw(rng: np.random.Generator, size: int = 4000) -> list[Case]:
    diagonal, norm = rng.uniform(0.5, 2.0, size), float(rng.uniform(1.0, 4.0))
    logits = norm * np.sqrt(diagonal) * rng.uniform(-1, 1, size)
    return [Case((_rows(logits), _rows(diagonal)), {"alpha": float(alpha), "oracle_norm": norm},
                 ("array", "array", "float", "float")) for alpha in rng.uniform(0.05, 1.4, 3)]


def _bound_reference(case: Case) -> np.ndarray:
    from kdwide.experiments import risk_bound

    (logits, diagonal), kwargs = case.arrays()
    angles = risk_bound.feature_oracle_angles(logits, diagonal, oracle_norm=kwargs["oracle_norm"])
    return np.asarray(float(risk_bound.angle_tail(angles, np.pi / 2 - kwargs["alpha"]).probability))


def _risk_draw(rng: np.random.Generator, n_train: int = 48, n_test: int = 1500) -> list[Case]:
    cases = []
    for rho, temperature in ((1.0, 1.0), (float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.5, 3.0)))):
        phi = rng.normal(size=(400, n_train + n_test)) / 20.0
        kernel = phi.T @ phi + 0.05 * np.eye(n_train + n_test)
        teacher = 3.0 * rng.normal(size=n_train + n_test)
        labels = (teacher[:n_train] > 0).astype(int)
        args = (_rows(kernel[:n_train, :n_train]), _rows(kernel[n_train:, :n_train]), _rows(teacher[:n_train]),
                labels.tolist(), _rows(teacher[n_train:]))
        cases.append(Case(args, {"rho": rho, "temperature": temperature},
                          ("array", "array", "array", "int_array", "array", "float", "float")))
    return cases


def _risk_reference(case: Case) -> np.ndarray:
    import kdwide
    from kdwide import metrics

    (kernel_train, kernel_test_train, teacher_train, labels, teacher_test), kwargs = case.arrays()
    targets = np.asarray(kdwide.effective_logit(teacher_train, labels, **kwargs))
    return np.asarray(metrics.transfer_risk(teacher_test, kernel_test_train @ np.linalg.solve(kernel_train, targets)))


# ------------------------------------------------------------------------------------ chapter 4: data inefficiency
HARD_LIMIT_DEFAULTS = dict(seed=0, n_seeds=12, n_values=[16, 32, 64, 128, 256], n_candidates=256, frequency=2,
                           teacher_peak_logit=4.0, temperature=1.0, depth=2, activation="relu",
                           w_std=1.4142135623730951, b_std=0.1)
"""Chapter 4's default parameters and its ``ci`` profile, which the student's notebook must run with
(tests/test_grading_judge.py checks them against the chapter)."""


def _hard_limit_variables() -> dict[str, np.ndarray]:
    from kdwide import data_inefficiency
    from kdwide.architecture import Architecture
    from kdwide.experiments import task_difficulty
    from kdwide.predict import grid_targets

    p = HARD_LIMIT_DEFAULTS
    first = Streams(p["seed"]).repetitions(p["n_seeds"])[0]  # the chapter's first repetition
    angles = task_difficulty.student_angles(first, max(p["n_values"]) + p["n_candidates"])
    teacher, labels = task_difficulty.frequency_task(angles, frequency=p["frequency"],
                                                     teacher_peak_logit=p["teacher_peak_logit"])
    targets = np.asarray(grid_targets(teacher, labels, rho=[0.0, 1e-2, 1e-6, 1e-12], temperature=p["temperature"]))
    architecture = Architecture(depth=p["depth"], activation=p["activation"], w_std=p["w_std"], b_std=p["b_std"])
    kernel = np.asarray(architecture.kernel(task_difficulty.circle_inputs(angles)))
    values = data_inefficiency.data_inefficiency_from_kernel(kernel, targets, n_train=max(p["n_values"]),
                                                             n_values=p["n_values"])
    return {"inefficiency_by_rho": np.asarray(values, dtype=np.float64), "limit_targets": targets, "limit_kernel": kernel}


def _increment_draw(rng: np.random.Generator) -> list[Case]:
    cases = []
    for n in (3, int(rng.integers(10, 25))):
        phi = rng.normal(size=(50, n + 1))
        cases.append(Case((_rows(phi.T @ phi), _rows(rng.normal(size=n + 1))), {}, ("array", "array")))
    return cases


def _increment_reference(case: Case) -> np.ndarray:
    (kernel, delta), _ = case.arrays()
    after = delta @ np.linalg.solve(kernel, delta)
    before = delta[:-1] @ np.linalg.solve(kernel[:-1, :-1], delta[:-1])
    return np.asarray(after - before)


# ------------------------------------------------------------------------------------- chapter 5: imperfect teacher
def _hard_label_draw(rng: np.random.Generator, size: int = 40) -> list[Case]:
    temperature = rng.uniform(0.4, 4.0, size)
    z, y = rng.uniform(-12, 12, size), rng.integers(0, 2, size)
    return [Case((_rows(z), y.tolist()), {"temperature": _rows(temperature)}, ("array", "int_array", "array"))]


def _hard_label_reference(case: Case) -> np.ndarray:
    from kdwide.experiments import imperfect_teacher

    args, kwargs = case.arrays()
    return np.asarray(imperfect_teacher.hard_label_change(*args, **kwargs), dtype=np.float64)


def _cosine_draw(rng: np.random.Generator) -> list[Case]:
    phi = rng.normal(size=(80, 12))
    a, b = rng.normal(size=12), rng.normal(size=12)
    kernel = _rows(phi.T @ phi)
    return [Case((kernel, _rows(x), _rows(y)), {}, ("array",) * 3) for x, y in ((a, b), (a, -b), (a, a))]


def _cosine_reference(case: Case) -> np.ndarray:
    (kernel, a, b), _ = case.arrays()
    solved_a, solved_b = np.linalg.solve(kernel, a), np.linalg.solve(kernel, b)
    return np.asarray(a @ solved_b / np.sqrt((a @ solved_a) * (b @ solved_b)))


# -------------------------------------------------------------------------------------------- chapter 6: landscape
def _best_rho_draw(rng: np.random.Generator) -> list[Case]:
    cases = []
    for rows, columns in ((7, 5), (4, 9)):
        rho = rng.permutation(np.linspace(0.0, 1.0, rows))
        errors = rng.integers(0, 4, size=(rows, columns)).astype(float)
        cases.append(Case((_rows(rho), _rows(errors)), {}, ("array", "array")))
    return cases


def _best_rho_reference(case: Case) -> np.ndarray:
    from kdwide.metrics import best_soft_ratio

    args, _ = case.arrays()
    return np.asarray(best_soft_ratio(*args), dtype=np.float64)


def _targets_draw(rng: np.random.Generator, size: int = 11) -> list[Case]:
    z, y = rng.uniform(-5, 5, size), rng.integers(0, 2, size)
    rho = [0.0, *sorted(rng.uniform(0.05, 0.95, 2).round(6).tolist()), 1.0]
    temperature = sorted(rng.uniform(0.3, 6.0, 3).round(6).tolist())
    return [Case((_rows(z), y.tolist()), {"rho_values": rho, "temperature_values": temperature},
                 ("array", "int_array", "floats", "floats"))]


def _targets_reference(case: Case) -> np.ndarray:
    from kdwide.predict import grid_points, grid_targets

    (z, y), kwargs = case.arrays()
    rho_values, temperature_values = kwargs["rho_values"], kwargs["temperature_values"]
    rho_grid, temperature_grid = grid_points(rho_values, temperature_values)
    columns = np.asarray(grid_targets(z, y, rho=rho_grid, temperature=temperature_grid), dtype=np.float64)
    out = np.empty((len(z), len(rho_values), len(temperature_values)))
    for column, (rho, temperature) in enumerate(zip(rho_grid, temperature_grid)):
        out[:, rho_values.index(float(rho)), temperature_values.index(float(temperature))] = columns[:, column]
    return out


# ------------------------------------------------------------------------------------ chapter 7: beyond two classes
def _hard_limit_case(labels: list[int], n_classes: int) -> Case:
    return Case(([int(v) for v in labels], int(n_classes)), {}, ("int_array", "int"))


def _hard_limit_targets_draw(rng: np.random.Generator) -> list[Case]:
    return [_hard_limit_case(rng.integers(0, k, 30).tolist(), k) for k in (2, int(rng.integers(3, 12)), 20)]


def _hard_limit_targets_reference(case: Case) -> np.ndarray:
    from kdwide.experiments.multiclass import hard_label_limit

    args, _ = case.arrays()
    return np.asarray(hard_label_limit(*args), dtype=np.float64)


def _margins_draw(rng: np.random.Generator, rows: int = 25, classes: int = 6) -> list[Case]:
    z, y = rng.uniform(-50, 50, (rows, classes)), rng.integers(0, classes, rows)
    return [Case((_rows(z), y.tolist()), {"rho": float(rho), "temperature": float(temperature)},
                 ("array", "int_array", "float", "float"))
            for rho, temperature in ((10 ** rng.uniform(-8, -2), rng.uniform(0.3, 1.0)),
                                     (10 ** rng.uniform(-8, -2), rng.uniform(1.0, 5.0)))]


def _margins_reference(case: Case) -> np.ndarray:
    from kdwide.experiments.multiclass import asymptotic_margins

    args, kwargs = case.arrays()
    return np.asarray(asymptotic_margins(*args, **kwargs), dtype=np.float64)


def _fixed(draw: Callable[[np.random.Generator], list[Case]], public_seed: int) -> Callable[[], list[Case]]:
    """Public cases from a draw with a fixed, published seed (for questions whose public test uses notebook data)."""
    return lambda: draw(Streams(public_seed).rng("public cases"))[:1]


SPECS: dict[str, QuestionSpec] = {spec.name: spec for spec in [
    QuestionSpec("ch1_root", public=lambda: [_root_case(3.0, 0, 0.5, 1.0)],
                 draw=lambda rng: [_root_case(rng.uniform(-6, 6), rng.integers(0, 2), rng.uniform(0.05, 0.95),
                                              rng.uniform(0.5, 4.0)) for _ in range(12)],
                 reference=_root_reference, check=Check(absolute=1e-7)),
    QuestionSpec("ch1_flip", public=lambda: [_flip_case(3.0, 1.0)],
                 draw=lambda rng: [_flip_case(rng.uniform(0.3, 8.0), rng.uniform(0.3, 5.0)) for _ in range(10)],
                 reference=_flip_reference, check=Check(absolute=1e-6)),
    QuestionSpec("ch2_min_norm", public=_fixed(_min_norm_draw, 2), draw=_min_norm_draw, reference=_min_norm_reference,
                 check=Check(absolute=1e-8)),
    QuestionSpec("ch2_kernel_student", public=_fixed(_kernel_student_draw, 2), draw=_kernel_student_draw,
                 reference=_kernel_student_reference, check=Check(absolute=1e-8)),
    QuestionSpec("ch3_bound", public=_fixed(_bound_draw, 3), draw=_bound_draw, reference=_bound_reference,
                 check=Check(absolute=1e-9)),
    QuestionSpec("ch3_risk", public=_fixed(_risk_draw, 3), draw=_risk_draw, reference=_risk_reference,
                 check=Check(absolute=2 / 1500 + 1e-12)),
    QuestionSpec("ch4_hard_limit", reference_variables=_hard_limit_variables, public_variables=("inefficiency_by_rho",),
                 variable_checks={"inefficiency_by_rho": Check(relative=1e-9), "limit_targets": Check(relative=1e-10),
                                  "limit_kernel": Check(relative=1e-10, absolute=1e-12)}),
    QuestionSpec("ch4_increment", public=_fixed(_increment_draw, 4), draw=_increment_draw,
                 reference=_increment_reference, check=Check(relative=1e-7)),
    QuestionSpec("ch5_hard_label_change", public=_fixed(_hard_label_draw, 5), draw=_hard_label_draw,
                 reference=_hard_label_reference, check=Check(relative=1e-7)),
    QuestionSpec("ch5_cosine", public=_fixed(_cosine_draw, 5), draw=_cosine_draw, reference=_cosine_reference,
                 check=Check(absolute=1e-8)),
    QuestionSpec("ch6_best_rho", public=_fixed(_best_rho_draw, 6), draw=_best_rho_draw, reference=_best_rho_reference,
                 check=Check(exact=True)),
    QuestionSpec("ch6_targets", public=_fixed(_targets_draw, 6), draw=_targets_draw, reference=_targets_reference,
                 check=Check(relative=1e-9, absolute=1e-12)),
    # chapter 7: the centred one-hot rows are exact up to rounding of 1/K; the margin law is a closed formula (a
    # log-softmax), so both tolerances are rounding-level and hold at any seed (derived, not measured)
    QuestionSpec("ch7_hard_limit", public=lambda: [_hard_limit_case([0, 2, 1], 3)], draw=_hard_limit_targets_draw,
                 reference=_hard_limit_targets_reference, check=Check(absolute=1e-12)),
    QuestionSpec("ch7_margins", public=_fixed(_margins_draw, 7), draw=_margins_draw, reference=_margins_reference,
                 check=Check(relative=1e-9, absolute=1e-9)),
]}


def spec_for(name: str) -> QuestionSpec:
    """The judge's specification of the graded question ``name``.

    Raises:
      ValueError: no question of that name (the known names are listed).

    Example:
      >>> spec = spec_for("ch1_flip")
      >>> case = spec.public()[0]
      >>> case.args, case.kwargs
      ((3.0,), {'temperature': 1.0})
      >>> print(f"{float(spec.reference(case)):.4f}")
      0.5249
    """
    if name not in SPECS:
        raise ValueError(f"question must be one of {sorted(SPECS)}, got {name!r}")
    return SPECS[name]
