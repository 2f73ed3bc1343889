"""Assignments (kdwide_book.assignments): student versions and the autograder.

The grading tests execute ``tests/data/assignment_fixture.ipynb`` (a tiny chapter-like notebook with two exercises:
one solution cell with BEGIN/END SOLUTION lines under a ``{solution}`` dropdown, one inside a gated
``{solution-start}``/``{solution-end}`` block, and two ``autograde`` checks worth 1 and 2 points).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from kdwide_book import assignments
from kdwide_book.assignments import (
    STUB_MARKER,
    assignment_summary,
    build_assignments,
    grade,
    strip_written_solutions,
    student_version,
)
from kdwide_book.book import chapter_notebooks

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "assignment_fixture.ipynb"
SOLUTION_CODE = ("rho_star = 0.5 / (1.0 / (1.0 + math.exp(-3.0)))",
                 "z_small_rho = [float(effective_logit(0.0, 1, rho=r, temperature=temperature))")


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def sources(notebook: nbformat.NotebookNode, cell_type: str | None = None) -> str:
    return "\n".join(c.source for c in notebook.cells if cell_type is None or c.cell_type == cell_type)


def test_student_version_stubs_solutions_and_keeps_the_rest() -> None:
    original = read(FIXTURE)
    student = student_version(original, source=str(FIXTURE))
    text = sources(student)
    for line in SOLUTION_CODE:
        assert line in sources(original) and line not in text
    solution_cells = [c for c in student.cells if "solution" in c.metadata.get("tags", [])]
    assert len(solution_cells) == 2
    for cell in solution_cells:
        assert STUB_MARKER in cell.source and "raise NotImplementedError(" in cell.source
        assert cell.source.startswith("# Exercise")  # the task's comment line stays
    # lines outside BEGIN/END SOLUTION stay; the markers go
    assert 'print(f"rho_star = {rho_star:.4g}")' in solution_cells[0].source
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    # exercises and checks stay, written solutions go
    assert text.count("{exercise}") == 2
    assert "{solution" not in text and "0.5247" not in text and "Each factor 100" not in text
    assert "**Your solution to fixture-small-rho:**" in text
    assert sources(student, "code").count("assert ") == sources(original, "code").count("assert ")
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in student.cells if c.cell_type == "code")
    assert student.metadata["kdwide_assignment"] == {"version": "student", "source": str(FIXTURE)}
    assert sources(original) == sources(read(FIXTURE)), "the original notebook must not change"


def test_code_in_a_gated_solution_is_stubbed_even_without_the_tag() -> None:
    notebook = new_notebook(cells=[
        new_markdown_cell("```{exercise}\n:label: e\nDo it.\n```\n\n:::{solution-start} e\n:class: dropdown\n:::\nSecret text"),
        new_code_cell("answer = 42"),
        new_markdown_cell("More secret text\n\n:::{solution-end}\n:::\n\nVisible epilogue"),
        new_code_cell("print('after the exercise')"),
    ])
    student = student_version(notebook)
    text = sources(student)
    assert "answer = 42" not in text and "Secret" not in text and "More secret" not in text
    assert "Visible epilogue" in text and "print('after the exercise')" in text
    assert student.cells[1].metadata["tags"] == ["solution"]


def test_strip_written_solutions_keeps_text_around_directives() -> None:
    text, gate = strip_written_solutions("Before\n\n````{solution} x\n:class: dropdown\n```python\ncode\n```\n````\n\nAfter")
    assert (text, gate) == ("Before\n\nAfter", False)
    text, gate = strip_written_solutions("Intro\n```{solution-start} y\n```\nhidden")
    assert gate is True and "hidden" not in text and "Intro" in text
    text, gate = strip_written_solutions("still hidden\n```{solution-end}\n```\nshown", inside_gate=True)
    assert (text, gate) == ("shown", False)


def test_bad_markup_is_refused() -> None:
    tagged_markdown = new_markdown_cell("text")
    tagged_markdown.metadata["tags"] = ["solution"]
    with pytest.raises(ValueError, match="'solution' tag is for code cells"):
        student_version(new_notebook(cells=[tagged_markdown]))
    unbalanced = new_code_cell("### BEGIN SOLUTION\nx = 1")
    unbalanced.metadata["tags"] = ["solution"]
    with pytest.raises(ValueError, match="without '### END SOLUTION'"):
        student_version(new_notebook(cells=[unbalanced]))
    check = new_code_cell("assert True")
    check.metadata.update(tags=["autograde"], points=-1)
    with pytest.raises(ValueError, match="'points' must be a number >= 0"):
        assignment_summary(new_notebook(cells=[check]))


def test_instructor_solution_passes_and_untouched_student_version_fails(tmp_path: Path) -> None:
    rows = build_assignments(tmp_path, [FIXTURE])
    assert rows == [{"notebook": FIXTURE.name, "solution_cells": 2, "checks": 2, "points": 3.0, "stubs": 2}]
    assert "| `assignment_fixture.ipynb` | 2 | 2 | 3 |" in (tmp_path / "README.md").read_text()

    instructor = grade(tmp_path / "instructor" / FIXTURE.name, cwd=ROOT)
    assert instructor.passed and (instructor.score, instructor.max_score) == (3.0, 3.0), instructor.feedback()
    assert not instructor.unfinished and not instructor.errors

    student = grade(tmp_path / "student" / FIXTURE.name, cwd=ROOT)
    assert not student.passed and (student.score, student.max_score) == (0.0, 3.0)
    assert student.unfinished == [4, 7]
    feedback = student.feedback()
    assert "0 / 3 points, 0 of 2 checks passed" in feedback
    assert "NOT DONE  cell 4" in feedback and "NOT DONE  cell 7" in feedback
    assert "FAIL      Check 1: rho_star is where the effective logit changes sign" in feedback
    assert "NameError: name 'z_small_rho' is not defined (the solution stub in cell 7 above is not done yet)" in feedback


def test_a_half_done_or_wrong_notebook_gets_partial_credit_and_the_assertion_message(tmp_path: Path) -> None:
    build_assignments(tmp_path, [FIXTURE])
    path = tmp_path / "student" / FIXTURE.name
    notebook = read(path)
    notebook.cells[4].source = "rho_star = 0.9  # wrong"
    notebook.cells[7].source = SOLUTION_CODE[1] + " for r in (1e-2, 1e-4, 1e-6)]"
    nbformat.write(notebook, path)
    report = grade(path, cwd=ROOT)
    assert (report.score, report.max_score) == (2.0, 3.0) and not report.passed and not report.unfinished
    failed = [c for c in report.checks if not c.passed]
    assert [c.cell for c in failed] == [5]
    assert failed[0].message.startswith("AssertionError: effective logit") and "no sign change" in failed[0].message


def test_command_line_grade_exit_status_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report_path = tmp_path / "report.json"
    assert assignments.main(["grade", str(FIXTURE), "--json", str(report_path)]) == 0
    assert "3 / 3 points" in capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert report["passed"] is True and report["score"] == 3.0 and len(report["checks"]) == 2


def test_every_chapter_has_a_student_version_without_written_solutions() -> None:
    for path in chapter_notebooks(ROOT):
        original = read(path)
        student = student_version(original, source=str(path))
        summary = assignment_summary(original)
        assert "{solution" not in sources(student, "markdown"), path
        assert sources(student, "markdown").count("{exercise") == sources(original, "markdown").count("{exercise"), path
        stubs = [c for c in student.cells if c.cell_type == "code" and STUB_MARKER in c.source]
        assert len(stubs) >= summary["solution_cells"], path
