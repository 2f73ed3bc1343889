"""Course assignments (kdwide_book.assignments, on otter-grader): questions, student versions, the judge's zip,
every chapter graded, the student book.

Grading itself is tested in tests/test_grading_judge.py (the judge's parts) and tests/test_grading_redteam.py (a
class of attackers and honest students on chapter 1's Exercises). ``make assignments-check`` (``KDWIDE_GRADE_ALL=1``)
grades every chapter: the instructor's version and an alternative correct solution full marks, the untouched student
version 0, and two attackers 0 (objects that pass for numbers, delegation to kdwide, shadowed names, pass messages,
huge outputs; patched modules, forged files, a daemon, the kernel ended).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from grading_support import ALTERNATIVE, CHAPTER_1, ROOT, append_cells, read, replace_answer, submission
from kdwide_book.assignments import (
    cell_roles,
    html_text,
    master_notebook,
    questions,
    strip_written_solutions,
    student_notebook_for_book,
)
from kdwide_book.book import chapter_notebooks

pytestmark = pytest.mark.grading
CHAPTERS = chapter_notebooks(ROOT)
HAS_OTTER = importlib.util.find_spec("otter") is not None
needs_otter = pytest.mark.skipif(not HAS_OTTER, reason="otter-grader is not installed here (the course extra of the "
                                 "pinned environment, make setup; the current environment leaves it out)")


def solution_lines(notebook: nbformat.NotebookNode) -> list[str]:
    """The instructor's code: the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` of the graded answer cells,
    and every line of the code cells of ungraded solutions (inside a gated ``{solution-start}`` block)."""
    found = []
    for cell, role in zip(notebook.cells, cell_roles(notebook)):
        if cell.cell_type != "code":
            continue
        if role["block"] == "solution":
            inside = False
            for line in cell.source.splitlines():
                if line.strip() in ("# BEGIN SOLUTION", "# END SOLUTION"):
                    inside = line.strip() == "# BEGIN SOLUTION"
                elif inside and len(line.strip()) >= 12:
                    found.append(line.strip())
        elif role["gated"] and role["block"] is None:
            found += [line.strip() for line in cell.source.splitlines() if len(line.strip()) >= 25]
    return found


# --------------------------------------------------------------------------------------------- markup (no otter)
def test_strip_written_solutions_keeps_text_around_directives() -> None:
    text, gate = strip_written_solutions("Before\n\n````{solution} x\n:class: dropdown\n```python\ncode\n```\n````\n\nAfter")
    assert (text, gate) == ("Before\n\nAfter", False)
    text, gate = strip_written_solutions("Intro\n```{solution-start} y\n```\nhidden")
    assert gate is True and "hidden" not in text and "Intro" in text
    text, gate = strip_written_solutions("still hidden\n```{solution-end}\n```\nshown", inside_gate=True)
    assert (text, gate) == ("shown", False)


def test_unbalanced_otter_blocks_are_refused() -> None:
    for cells, message in [
        ([new_raw_cell("# BEGIN QUESTION\nname: q")], "never closed"),
        ([new_raw_cell("# BEGIN QUESTION\npoints: 1"), new_raw_cell("# END QUESTION")], "needs a 'name:'"),
        ([new_raw_cell("# BEGIN TESTS")], "outside a question"),
        ([new_raw_cell("# BEGIN QUESTION\nname: q"), new_raw_cell("# END TESTS")], "does not close"),
    ]:
        with pytest.raises(ValueError, match=message):
            cell_roles(new_notebook(cells=cells))


@needs_otter  # the student book's stubs are otter's own (otter.assign.solutions.replace_solutions)
def test_master_and_student_book_drop_written_solutions_and_ungraded_solution_code() -> None:
    notebook = new_notebook(cells=[
        new_markdown_cell("```{exercise}\n:label: e\nDo it.\n```\n\n:::{solution-start} e\n:class: dropdown\n:::\nSecret text"),
        new_code_cell("ungraded_answer = 42"),
        new_markdown_cell("More secret\n\n:::{solution-end}\n:::\n\nVisible epilogue"),
        new_raw_cell("# BEGIN QUESTION\nname: q1\npoints: [1, 2]\njudge: {answer: f, writes: [kdwide.metrics.transfer_risk]}"),
        new_raw_cell("# BEGIN SOLUTION"),
        new_code_cell("def f(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION"),
        new_raw_cell("# END SOLUTION"),
        new_raw_cell("# BEGIN TESTS"),
        new_code_cell("assert f(1) == 2"),
        new_code_cell("# HIDDEN\nassert f(5) == 10"),
        new_raw_cell("# END TESTS"),
        new_raw_cell("# END QUESTION"),
    ])
    (question,) = questions(notebook)
    assert (question.name, question.points, question.public_tests, question.hidden_tests) == ("q1", 3.0, 1, 1)
    assert question.hidden == [False, True]
    assert (question.answer, question.writes, question.split_points()) == ("f", ["kdwide.metrics.transfer_risk"], (1.0, 2.0))
    master = master_notebook(notebook, {"name": "fixture"})
    text = "\n".join(c.source for c in master.cells)
    assert master.cells[0].source.startswith("# ASSIGNMENT CONFIG\nname: fixture")
    assert "Secret" not in text and "ungraded_answer" not in text and "Visible epilogue" in text
    assert "return 2 * x" in text and "assert f(5) == 10" in text  # otter strips these itself
    book = student_notebook_for_book(notebook)
    text = "\n".join(c.source for c in book.cells)
    assert "return 2 * x" not in text and "def f(x):\n    ..." in text
    assert "assert f(1) == 2" in text and "f(5)" not in text and "ungraded_answer" not in text


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_has_graded_questions_with_public_and_hidden_tests(path: Path) -> None:
    notebook = read(path)
    found = questions(notebook)
    assert len(found) >= 2, f"{path}: {len(found)} graded questions (want at least 2)"
    for question in found:
        assert question.public_tests >= 1 and question.hidden_tests >= 1, (
            f"{path}: question {question.name} has {question.public_tests} public and {question.hidden_tests} hidden tests")
        assert any("# BEGIN SOLUTION" in s for s in question.solution_cells), (
            f"{path}: question {question.name} has no '# BEGIN SOLUTION' line for otter to replace")
        assert re.fullmatch(r"ch\d_[a-z_]+", question.name), f"{path}: question name {question.name!r} (chN_what)"
    exercises_at = max(i for i, c in enumerate(notebook.cells) if c.cell_type == "markdown" and "## Exercises" in c.source)
    for index, (cell, role) in enumerate(zip(notebook.cells, cell_roles(notebook))):
        if role["question"] is not None:
            assert index > exercises_at, f"{path}: cell {index} of question {role['question']} is before the Exercises"
        if role["block"] == "tests":
            assert not cell.get("outputs"), f"{path}: test cell {index} prints (otter compares test output)"
            assert role["hidden"] == ("remove-cell" in cell.metadata.get("tags", [])), (
                f"{path}: test cell {index}: hidden tests, and only they, carry the 'remove-cell' tag")
        legacy = {"autograde", "solution"} & set(cell.metadata.get("tags", []))
        assert not legacy, f"{path}: cell {index} has the old grader's tags {legacy}"


def test_there_are_at_least_twelve_graded_questions() -> None:
    names = [q.name for path in CHAPTERS for q in questions(read(path))]
    assert len(names) >= 12 and len(set(names)) == len(names), names


# --------------------------------------------------------------------------------------- otter: build and grade
@pytest.fixture(scope="module")
def chapter_1_assignment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAS_OTTER:
        pytest.skip("otter-grader is not installed here (the course extra of the pinned environment: make setup)")
    from kdwide_book.assignments import build_assignments

    out = tmp_path_factory.mktemp("assignments")
    rows = build_assignments(out, [CHAPTER_1])
    assert rows == [{"notebook": CHAPTER_1.name, "questions": 2, "points": 6.0, "public_tests": 2, "hidden_tests": 2}]
    return out


@needs_otter
def test_build_writes_student_notebooks_autograders_and_a_guide(chapter_1_assignment: Path) -> None:
    import json
    import zipfile

    out = chapter_1_assignment
    student = read(out / "student" / CHAPTER_1.name)
    text = "\n".join(c.source for c in student.cells)
    for line in solution_lines(read(CHAPTER_1)):
        assert line not in text, f"solution line in the student notebook: {line}"
    assert 'grader.check("ch1_root")' in text and 'grader.check("ch1_flip")' in text
    assert "check_rng" not in text and "default_rng(101)" not in str(student.metadata), "hidden tests reach students"
    assert not [c for c in student.cells if c.get("outputs")], "the student notebook has outputs"
    with zipfile.ZipFile(out / "autograder" / "01_effective_logit-autograder.zip") as archive:
        names = set(archive.namelist())
        assert {"tests/ch1_root.py", "tests/ch1_flip.py", "otter_config.json", "environment.yml", "setup.sh",
                "files/constraints.txt", "run_autograder", "run_otter.py", "judge.json"} <= names
        environment = archive.read("environment.yml").decode()
        assert "otter-grader[grading]==7.0.0" in environment and "-c /autograder/source/files/constraints.txt" in environment
        assert "kdwide_book.judge" in archive.read("run_otter.py").decode(), "Gradescope must run the judge, not otter"
        judge_config = json.loads(archive.read("judge.json"))
    course = json.loads((out / "course.json").read_text())
    assert judge_config["chapter"] == {"name": "01_effective_logit", **course["chapters"]["01_effective_logit"]}
    (root, flip) = judge_config["chapter"]["questions"]
    assert root["answer"] == "effective_logit_root" and "kdwide.effective_logit.effective_logit" in root["writes"]
    assert (root["public_points"], root["hidden_points"]) == (1.0, 2.0) and flip["answer"] == "flip_soft_ratio"
    guide = (out / "README.md").read_text()
    assert "make grade SUBMISSIONS=" in guide and "honour code" in guide and "Not guaranteed" in guide


@needs_otter
def test_grade_class_refuses_bad_input(chapter_1_assignment: Path, tmp_path: Path) -> None:
    from kdwide_book.assignments import grade_class, grade_submission

    with pytest.raises(ValueError, match="submissions"):
        grade_class(tmp_path / "nowhere", chapter_1_assignment)
    (tmp_path / "someone").mkdir()
    with pytest.raises(ValueError, match="chapters"):
        grade_class(tmp_path, chapter_1_assignment, chapters=["07_unknown"])
    with pytest.raises(ValueError, match="timeout"):
        grade_class(tmp_path, chapter_1_assignment, timeout=-1)
    with pytest.raises(ValueError, match="timeout"):
        grade_submission(CHAPTER_1, {"name": "01_effective_logit", "questions": []}, timeout=0)


def test_a_question_without_judge_settings_is_refused() -> None:
    for config, message in [("", "needs exactly one of"), ("judge: {answer: f, variables: [x]}", "needs exactly one of"),
                            ("judge: {answer: f, writes: [numpy.sum]}", "must list kdwide functions")]:
        notebook = new_notebook(cells=[new_raw_cell(f"# BEGIN QUESTION\nname: q\n{config}"),
                                       new_raw_cell("# END QUESTION")])
        with pytest.raises(ValueError, match=message):
            questions(notebook)


ALTERNATIVES = {  # correct answers written another way than the instructor's, one per graded question
    "ch1_root": ALTERNATIVE["effective_logit_root"],
    "ch1_flip": ALTERNATIVE["flip_soft_ratio"],
    "ch2_min_norm": '''def min_norm_weight_change(features, delta_z):
    features = np.asarray(features, dtype=float)
    return features @ np.linalg.solve(features.T @ features, np.asarray(delta_z, dtype=float))''',
    "ch2_kernel_student": '''def kernel_student(kernel_train, kernel_test_train, z_init_train, z_init_test, z_target):
    from scipy.linalg import cho_factor, cho_solve
    residual = np.asarray(z_target, dtype=float) - np.asarray(z_init_train, dtype=float)
    weights = cho_solve(cho_factor(np.asarray(kernel_train, dtype=float)), residual)
    return np.asarray(z_init_test, dtype=float) + np.asarray(kernel_test_train, dtype=float) @ weights''',
    "ch3_bound": '''def margin_bound(teacher_logits, kernel_diagonal, *, alpha, oracle_norm):
    cosines = np.abs(np.asarray(teacher_logits)) / (oracle_norm * np.sqrt(np.asarray(kernel_diagonal)))
    return np.count_nonzero(cosines < np.sin(alpha)) / cosines.size''',
    "ch3_risk": '''def student_transfer_risk(kernel_train, kernel_test_train, z_teacher_train, y_train, z_teacher_test, *, rho, temperature):
    from scipy.linalg import cho_factor, cho_solve
    targets = np.asarray(effective_logit(np.asarray(z_teacher_train), np.asarray(y_train), rho=rho, temperature=temperature))
    student = np.asarray(kernel_test_train) @ cho_solve(cho_factor(np.asarray(kernel_train)), targets)
    return float(np.mean(student * np.asarray(z_teacher_test) < 0))''',
    "ch4_increment": '''def weight_change_increment(kernel, delta):
    kernel, delta = np.asarray(kernel, dtype=float), np.asarray(delta, dtype=float)
    after = delta @ np.linalg.solve(kernel, delta)
    before = delta[:-1] @ np.linalg.solve(kernel[:-1, :-1], delta[:-1])
    return after - before''',
    "ch5_hard_label_change": '''def hard_label_change(z_t, y_g, *, temperature):
    z_t, y_g = np.asarray(z_t, dtype=float), np.asarray(y_g)
    miss = np.where(y_g == 1, expit(-z_t), -expit(z_t))
    return temperature**2 * miss * (2 + 2 * np.cosh(z_t / temperature))  # 1 / (sigma(u) sigma(-u)) = 2 + 2 cosh(u)''',
    "ch5_cosine": '''def weight_change_cosine(kernel, delta_a, delta_b):
    from scipy.linalg import cholesky, solve_triangular
    lower = cholesky(np.asarray(kernel, dtype=float), lower=True)
    a = solve_triangular(lower, np.asarray(delta_a, dtype=float), lower=True)
    b = solve_triangular(lower, np.asarray(delta_b, dtype=float), lower=True)
    return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))''',
    "ch6_best_rho": '''def best_soft_ratio(rho_values, errors):
    rho_values, errors = np.asarray(rho_values, dtype=float), np.asarray(errors, dtype=float)
    columns = errors.reshape(len(rho_values), -1).T
    best = [max(r for r, e in zip(rho_values, column) if e == column.min()) for column in columns]
    return np.asarray(best).reshape(errors.shape[1:])''',
    "ch6_targets": '''def landscape_targets(z_t, y_g, *, rho_values, temperature_values):
    z_t, y_g = np.asarray(z_t, dtype=float), np.asarray(y_g)
    out = np.empty((len(z_t), len(rho_values), len(temperature_values)))
    for i, r in enumerate(rho_values):
        for j, t in enumerate(temperature_values):
            out[:, i, j] = 2.0 * y_g - 1.0 if r == 0 else np.asarray(kdwide.effective_logit(z_t, y_g, rho=r, temperature=t))
    return out''',
    "ch7_hard_limit": '''def hard_limit_targets(labels, n_classes):
    labels = np.asarray(labels)
    return (labels[:, None] == np.arange(n_classes)[None, :]).astype(float) - 1.0 / n_classes''',
    "ch7_margins": '''def asymptotic_margins(teacher_logits, labels, *, rho, temperature):
    scaled = np.asarray(teacher_logits, dtype=float) / temperature
    top = scaled.max(axis=1, keepdims=True)
    log_q = scaled - top - np.log(np.exp(scaled - top).sum(axis=1, keepdims=True))
    margins = -np.log(rho) + np.log(temperature) - log_q
    margins[np.arange(len(labels)), np.asarray(labels, dtype=int)] = 0.0
    return margins''',
}
ALTERNATIVE_VARIABLES = {  # a variables question: the lines that replace the student version's `...`
    "ch4_hard_limit": '''limit_targets = np.stack([2.0 * limit_labels - 1.0 if r == 0 else np.asarray(kdwide.effective_logit(
    limit_teacher, limit_labels, rho=r, temperature=temperature)) for r in limit_rho_values], axis=1)
limit_kernel = np.asarray(analytic_ntk(difficulty.circle_inputs(limit_angles), depth=depth, activation=activation,
                                      w_std=w_std, b_std=b_std))
inefficiency_by_rho = np.concatenate([di.data_inefficiency_from_kernel(limit_kernel, limit_targets[:, [k]],
    n_train=max(n_values), n_values=n_values) for k in range(len(limit_rho_values))], axis=1)''',
}


def alternative_solution(info: dict) -> Callable[[nbformat.NotebookNode], None]:
    """The student version with every answer written the alternative way."""
    def edit(notebook: nbformat.NotebookNode) -> None:
        for question in info["questions"]:
            if question["answer"]:
                replace_answer(notebook, question["answer"], ALTERNATIVES[question["name"]])
            else:
                (cell,) = [c for c in notebook.cells if c.cell_type == "code" and question["variables"][0] in c.source
                           and "otter_answer_cell" in c.metadata.get("tags", [])]
                assert "\n...\n" in cell.source, cell.source
                cell.source = cell.source.replace("\n...\n", "\n" + ALTERNATIVE_VARIABLES[question["name"]] + "\n", 1)
    return edit


def attacker(info: dict, *, patching: bool, heartbeat: Path, classroom: Path) -> Callable[[nbformat.NotebookNode], None]:
    """A cheap attacker for any chapter: only the notebook's setup cells run, then cells that define every answer as
    an object that passes for a number or as a call of the kdwide function the question asks for (``patching``:
    patched modules, forged files, a daemon left behind, the kernel ended; else: shadowed names, pass messages, huge
    output)."""
    import test_grading_redteam as red

    cells = []
    for index, question in enumerate(info["questions"]):
        if question["variables"]:
            cells.append("\n".join(f"{name} = Anything(0.0)" for name in question["variables"]))
        elif question["writes"] and index % 2 == 0:
            module, _, attribute = question["writes"][0].rpartition(".")
            cells.append(f"def {question['answer']}(*args, **kwargs):\n    import importlib\n"
                         f"    return getattr(importlib.import_module({module!r}), {attribute!r})(*args, **kwargs)")
        else:
            cells.append(f"def {question['answer']}(*args, **kwargs):\n    return Anything(0.0)")
    anything = "class Anything(float):\n    __eq__ = lambda self, other: True\n    __hash__ = float.__hash__"
    if patching:
        extra = [red.PATCH, red.WRITE_FILES.split("def effective_logit_root")[0].replace("CLASSROOM", repr(str(classroom))),
                 *[c.replace("HEARTBEAT", repr(str(heartbeat))) for c in red.FAKE_EXIT]]
    else:
        extra = [red.SHADOW, red.PRINT_PASS, red.HUGE.replace("range(30)", "range(5)")]

    def edit(notebook: nbformat.NotebookNode) -> None:
        setup = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"][:3]  # otter, parameters, imports
        notebook.cells = [c for i, c in enumerate(notebook.cells) if i in setup or c.cell_type != "code"]
        append_cells(anything, *cells, *extra)(notebook)
    return edit


@pytest.mark.skipif(os.environ.get("KDWIDE_GRADE_ALL") != "1",
                    reason="grades every chapter (~20 min on 2 cores): make assignments-check sets KDWIDE_GRADE_ALL=1")
def test_every_chapter_judges_honest_and_cheating_submissions(tmp_path: Path) -> None:
    import json

    from kdwide_book.assignments import build_assignments, grade_class

    build_assignments(tmp_path / "assignments", CHAPTERS)
    course = json.loads((tmp_path / "assignments" / "course.json").read_text())
    classroom = tmp_path / "class"
    for path in CHAPTERS:
        info = course["chapters"][path.stem]
        student = tmp_path / "assignments" / "student" / path.name
        for patching in (False, True):
            submission(student, classroom / f"attack_{'patching' if patching else 'objects'}",
                       attacker(info, patching=patching, heartbeat=tmp_path / f"beat_{path.stem}", classroom=classroom))
        submission(tmp_path / "assignments" / "instructor" / path.name, classroom / "honest_instructor")
        submission(student, classroom / "honest_alternative", alternative_solution(info))
        submission(student, classroom / "honest_untouched")
    results = grade_class(classroom, tmp_path / "assignments", timeout=300)
    full = ("honest_instructor", "honest_alternative")
    wrong = [r for r in results if (r.points != r.max_points if r.student in full else r.points != 0)]
    assert not wrong, "\n".join(f"{r.student} {r.question}: {r.points}/{r.max_points}\n{r.feedback}" for r in wrong)
    objects = [r for r in results if r.student == "attack_objects"]
    assert all("failed: type: " in r.feedback or "failed: delegation: " in r.feedback for r in objects), objects


# ------------------------------------------------------------------------------------------------ student book
@pytest.mark.skipif(shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) is None,
                    reason="jupyter-book is not installed here (the book extra of the pinned environment)")
def test_student_book_has_questions_but_no_solutions(tmp_path: Path) -> None:
    from kdwide_book.assignments import student_book_sources

    source = student_book_sources(tmp_path)
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(source), "--path-output",
                    str(tmp_path), "-W", "--keep-going", "-q"], check=True, env={**os.environ, "MPLBACKEND": "Agg"})
    html = tmp_path / "_build" / "html"
    for path in CHAPTERS:
        page = (html / "book" / f"{path.stem}.html").read_text()
        text = html_text(page)
        notebook = read(path)
        lines = solution_lines(notebook)
        assert lines, f"{path}: no solution code found to search for"
        leaked = [line for line in lines if line in text]
        assert not leaked, f"{path}: solution code in the student book: {leaked}"
        assert 'class="solution' not in page, f"{path}: a written solution in the student book"
        exercises = len(re.findall(r"\{exercise\}", "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")))
        assert page.count('class="admonition exercise') >= exercises or text.count("Exercise") >= exercises, path
        # the search can fail: the public tests' code (kept) and the answer stubs' signatures are found
        public = [c.source.splitlines()[-1].strip() for c, r in zip(notebook.cells, cell_roles(notebook))
                  if r["block"] == "tests" and not r["hidden"]]
        assert public and all(line in text for line in public), f"{path}: the search misses the public tests"
