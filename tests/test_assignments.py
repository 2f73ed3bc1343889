"""Course assignments (kdwide_book.assignments, on otter-grader): questions, student versions, grading, student book.

The grading tests build chapter 1's assignment (the fastest chapter: ~12 s per graded notebook) and grade a small
class with ``grade_class``, the code ``make grade`` runs: the instructor's version (full marks), the untouched
student version (0, feedback naming what is missing), a tampered copy of it (every check cell rewritten to
``assert True``, tags removed: the same 0), a submission that hard-codes the printed answers (fails every hidden test)
and an alternative correct solution (full marks). ``make assignments-check`` grades every chapter
(``KDWIDE_GRADE_ALL=1``): instructor versions full marks, untouched student versions 0.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from kdwide_book.assignments import (
    cell_roles,
    html_text,
    master_notebook,
    questions,
    strip_written_solutions,
    student_notebook_for_book,
)
from kdwide_book.book import chapter_notebooks

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = chapter_notebooks(ROOT)
CHAPTER_1 = ROOT / "book" / "01_effective_logit.ipynb"
HAS_OTTER = importlib.util.find_spec("otter") is not None
needs_otter = pytest.mark.skipif(not HAS_OTTER, reason="otter-grader is not installed here (the course extra of the "
                                 "pinned environment, make setup; the current environment leaves it out)")


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


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
        new_raw_cell("# BEGIN QUESTION\nname: q1\npoints: [1, 2]"),
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
def submission(source: Path, folder: Path, edit=None) -> None:
    notebook = read(source)
    if edit is not None:
        edit(notebook)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / source.name)


def replace_answer(notebook: nbformat.NotebookNode, name: str, code: str) -> None:
    """Replace the body of the answer cell that defines ``name`` (student version) with ``code``."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and f"def {name}(" in c.source]
    stub = re.compile(rf"def {name}\(.*?\n    \.\.\.\n", flags=re.DOTALL)
    assert stub.search(cell.source), cell.source
    cell.source = stub.sub(lambda _: code.strip() + "\n", cell.source)


def tamper(notebook: nbformat.NotebookNode) -> None:
    """Every check cell becomes ``assert True``; every cell's tags and otter metadata go. (The notebook's own otter
    metadata, which names the assignment, stays: without it otter refuses the submission, see below.)"""
    for cell in notebook.cells:
        if cell.cell_type == "code" and "grader.check" in cell.source:
            cell.source = "assert True"
        cell.metadata.pop("tags", None)
        cell.metadata.pop("otter", None)


HARD_CODED = {  # the printed answers, typed in; functions that return them
    "effective_logit_root": "def effective_logit_root(z_t, y_g, *, rho, temperature):\n    return -0.09489291536840946",
    "flip_soft_ratio": "def flip_soft_ratio(z_t, *, temperature):\n    return 0.5249",
}
ALTERNATIVE = {  # correct, but not the instructor's way: bisection by hand, and brentq on kdwide's effective logit
    "effective_logit_root": '''def effective_logit_root(z_t, y_g, *, rho, temperature):
    from math import exp

    sigmoid = lambda u: 1 / (1 + exp(-u)) if u >= 0 else exp(u) / (1 + exp(u))
    slope = lambda z: rho / temperature * (sigmoid(z / temperature) - sigmoid(z_t / temperature)) + (1 - rho) * (sigmoid(z) - y_g)
    low, high = -60.0, 60.0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if slope(middle) < 0 else (low, middle)
    return (low + high) / 2''',
    "flip_soft_ratio": '''def flip_soft_ratio(z_t, *, temperature):
    return brentq(lambda r: float(effective_logit(z_t, 0, rho=r, temperature=temperature)), 1e-9, 1.0, xtol=1e-14)''',
}


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
                "files/constraints.txt"} <= names
        assert "default_rng(101)" in archive.read("tests/ch1_root.py").decode(), "the autograder lacks the hidden test"
        environment = archive.read("environment.yml").decode()
        assert "otter-grader[grading]==7.0.0" in environment and "-c /autograder/source/files/constraints.txt" in environment
        assert '"seed_variable": "seed"' in archive.read("otter_config.json").decode()
    assert "make grade SUBMISSIONS=" in (out / "README.md").read_text()


@needs_otter
def test_grading_a_class(chapter_1_assignment: Path, tmp_path: Path) -> None:
    from kdwide_book.assignments import grade_class

    student_version = chapter_1_assignment / "student" / CHAPTER_1.name
    classroom = tmp_path / "class"
    submission(chapter_1_assignment / "instructor" / CHAPTER_1.name, classroom / "instructor")
    submission(student_version, classroom / "untouched")
    submission(student_version, classroom / "tampered", tamper)
    hard = {name: code for name, code in HARD_CODED.items()}
    submission(student_version, classroom / "hardcoded", lambda nb: [replace_answer(nb, n, c) for n, c in hard.items()])
    submission(student_version, classroom / "hardcoded_tampered",
               lambda nb: ([replace_answer(nb, n, c) for n, c in hard.items()], tamper(nb)))
    submission(student_version, classroom / "alternative",
               lambda nb: [replace_answer(nb, n, c) for n, c in ALTERNATIVE.items()])
    submission(chapter_1_assignment / "instructor" / CHAPTER_1.name, classroom / "unnamed",
               lambda nb: nb.metadata.pop("otter"))
    (classroom / "absent").mkdir()
    grade_class(classroom, chapter_1_assignment, timeout=300)

    with open(classroom / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student", "chapter", "question", "points", "max_points"]
    scores: dict[str, float] = {}
    for row in rows:
        scores[row["student"]] = scores.get(row["student"], 0.0) + float(row["points"])
        assert row["chapter"] == "01_effective_logit" and float(row["max_points"]) == 3.0
    assert len(rows) == 8 * 2, "one row per student and question"
    assert scores["instructor"] == 6.0 and scores["alternative"] == 6.0, scores
    assert scores["untouched"] == 0.0 and scores["tampered"] == 0.0 and scores["absent"] == 0.0, scores
    assert scores["unnamed"] == 0.0, "otter grades only notebooks of this assignment (metadata otter.assignment_name)"
    assert scores["hardcoded_tampered"] == scores["hardcoded"] <= 2.0, scores  # at most the public tests' points

    feedback = {p.name: (p / "feedback.md").read_text() for p in classroom.iterdir() if p.is_dir()}
    assert "01_effective_logit: 0 / 6 points" in feedback["untouched"]
    for question in ("ch1_root", "ch1_flip"):
        assert f"### {question}: 0 / 3" in feedback["untouched"]
    assert feedback["untouched"].count("not answered: the answer cell is unchanged") == 2
    assert "test 2 (hidden): failed" in feedback["untouched"] and "check_rng" not in feedback["untouched"]
    assert feedback["hardcoded"].count("test 2 (hidden): failed") == 2, feedback["hardcoded"]
    assert "missing: no 01_effective_logit.ipynb" in feedback["absent"]
    assert "Received submission for assignment 'None'" in feedback["unnamed"]
    assert feedback["instructor"].count("all tests passed") == 2


@needs_otter
def test_grade_class_refuses_bad_input(chapter_1_assignment: Path, tmp_path: Path) -> None:
    from kdwide_book.assignments import grade_class, grade_submission

    with pytest.raises(ValueError, match="submissions"):
        grade_class(tmp_path / "nowhere", chapter_1_assignment)
    (tmp_path / "someone").mkdir()
    with pytest.raises(ValueError, match="chapters"):
        grade_class(tmp_path, chapter_1_assignment, chapters=["07_unknown"])
    with pytest.raises(ValueError, match="timeout"):
        grade_submission(CHAPTER_1, chapter_1_assignment / "autograder" / "01_effective_logit-autograder.zip", timeout=0)


@needs_otter
def test_a_notebook_over_the_time_limit_gets_no_points(chapter_1_assignment: Path, tmp_path: Path) -> None:
    from kdwide_book.assignments import grade_class

    submission(chapter_1_assignment / "instructor" / CHAPTER_1.name, tmp_path / "slow",
               lambda nb: nb.cells.insert(2, new_code_cell("import time\ntime.sleep(600)")))
    (result, *_) = grade_class(tmp_path, chapter_1_assignment, timeout=20)
    assert result.points == 0.0
    assert "time limit exceeded" in (tmp_path / "slow" / "feedback.md").read_text()


@pytest.mark.skipif(os.environ.get("KDWIDE_GRADE_ALL") != "1",
                    reason="grades every chapter (~5 min on 2 cores): make assignments-check sets KDWIDE_GRADE_ALL=1")
def test_every_chapter_grades_full_marks_for_the_instructor_and_zero_untouched(tmp_path: Path) -> None:
    from kdwide_book.assignments import build_assignments, grade_class

    build_assignments(tmp_path / "assignments", CHAPTERS)
    for path in CHAPTERS:
        submission(tmp_path / "assignments" / "instructor" / path.name, tmp_path / "class" / "instructor")
        submission(tmp_path / "assignments" / "student" / path.name, tmp_path / "class" / "untouched")
    results = grade_class(tmp_path / "class", tmp_path / "assignments", timeout=900)
    wrong = [r for r in results if (r.points != r.max_points if r.student == "instructor" else r.points != 0)]
    assert not wrong, "\n".join(f"{r.student} {r.question}: {r.points}/{r.max_points}\n{r.feedback}" for r in wrong)


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
