"""Course assignments from the chapters, built on otter-grader: student notebooks, Gradescope autograders, grading.

One source of truth: each chapter's Exercises section carries its graded questions in otter-grader's notebook format
(raw cells ``# BEGIN QUESTION`` with ``name:`` and ``points:``, ``# BEGIN SOLUTION`` / ``# END SOLUTION`` around the
answer code cell, whose own ``# BEGIN SOLUTION`` / ``# END SOLUTION`` comment lines mark what students must write,
``# BEGIN TESTS`` with one code cell per test, hidden tests starting with a ``# HIDDEN`` comment line). Raw cells
without a format render as nothing in the book, and nbval does not execute them, so the markers cost the book nothing;
hidden test cells carry the ``remove-cell`` tag so the book does not show them.

What otter does not know, done here:

- the book's written solutions (MyST ``{solution}`` directives and gated ``{solution-start}`` ... ``{solution-end}``
  blocks, with the code cells of ungraded exercises inside them) are removed *before* ``otter assign`` sees the
  chapter (:func:`master_notebook`);
- the assignment configuration (the same for every chapter: seed, environment, kdwide as a wheel) is written at build
  time, not stored six times in the chapters;
- ``make grade`` runs ``otter run`` once per student and notebook in a subprocess of its own with a time limit
  (``otter run`` has none; Gradescope's is set in its assignment settings), and gathers a class's results into
  ``grades.csv`` and one feedback file per student (:func:`grade_class`);
- ``make book AUDIENCE=student`` renders the book from a copy of its sources without solutions
  (:func:`student_book_sources`).

Command line::

    python -m kdwide_book.assignments build [--out _build/assignments] [--environment pinned|current] [NOTEBOOK ...]
    python -m kdwide_book.assignments grade SUBMISSIONS [--assignments _build/assignments] [--timeout 900]
    python -m kdwide_book.assignments student-book [--out _build/student]
"""

from __future__ import annotations

import argparse
import copy
import csv
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

__all__ = [
    "ENVIRONMENTS",
    "Question",
    "QuestionResult",
    "cell_roles",
    "questions",
    "strip_written_solutions",
    "master_notebook",
    "assignment_config",
    "build_assignments",
    "grade_submission",
    "grade_class",
    "student_notebook_for_book",
    "student_book_sources",
]

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = {"pinned": "constraints.txt", "current": "constraints-current.txt"}
"""The autograder's environment: the book's pinned set (jax 0.5.3) or the lighter current one (no TensorFlow)."""
OTTER_PIN = "otter-grader[grading]==7.0.0"
AUTOGRADER_SOURCE = "/autograder/source/files"  # where Gradescope (and otter's setup.sh) finds the zip's files
HIDE_TAG = "remove-cell"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,})\{(?P<name>[a-z-]+)\}(?P<rest>.*)$")
_BOUNDARY = re.compile(r"^#\s+(?P<edge>begin|end)\s+(?P<block>question|prompt|solution|tests)\b", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------------------- markup
def _boundary(cell: Any) -> tuple[str, str] | None:
    """``("begin" | "end", block)`` for an otter block boundary (a raw cell), else None (otter's own rule)."""
    if cell.cell_type != "raw" or not cell.source.strip():
        return None
    match = _BOUNDARY.match(cell.source.splitlines()[0])
    return (match["edge"].lower(), match["block"].lower()) if match else None


def _is_hidden_test(source: str) -> bool:
    """otter's rule: a test is hidden when its first line is a comment with the word "hidden"."""
    first = source.lstrip().splitlines()[0] if source.strip() else ""
    return first.startswith("#") and re.search(r"\bhidden\b", first, re.IGNORECASE) is not None


@dataclass
class Question:
    """One graded question of a chapter, as otter reads it."""

    name: str
    points: float
    public_tests: int
    hidden_tests: int
    solution_cells: list[str] = field(default_factory=list)  # the instructor's code of its answer cells
    hidden: list[bool] = field(default_factory=list)  # per test case, in otter's order: hidden or not


def cell_roles(notebook: nbformat.NotebookNode) -> list[dict[str, Any]]:
    """For every cell: ``question`` (name or None), ``block`` (innermost otter block: "question", "solution",
    "tests", "prompt" or None; boundary cells get "boundary"), ``gated`` (inside a ``{solution-start}`` ...
    ``{solution-end}`` block of the book) and ``hidden`` (a hidden test).

    Raises:
      ValueError: unbalanced otter blocks (with the cell index), or a question without a name.
    """
    roles, stack, question, gated = [], [], None, False
    for index, cell in enumerate(notebook.cells):
        boundary = _boundary(cell)
        role = {"question": question, "block": stack[-1] if stack else None, "gated": gated, "hidden": False}
        if boundary is not None:
            edge, block = boundary
            if edge == "begin":
                if block == "question":
                    if stack:
                        raise ValueError(f"cell {index}: '# BEGIN QUESTION' inside another question")
                    config = yaml.safe_load("\n".join(cell.source.splitlines()[1:])) or {}
                    if not isinstance(config, dict) or not config.get("name"):
                        raise ValueError(f"cell {index}: a question needs a 'name:' line")
                    question = str(config["name"])
                elif not stack:
                    raise ValueError(f"cell {index}: '# BEGIN {block.upper()}' outside a question")
                stack.append(block)
            else:
                if not stack or stack[-1] != block:
                    raise ValueError(f"cell {index}: '# END {block.upper()}' does not close the open block {stack}")
                stack.pop()
                if block == "question":
                    question = None
            role = {**role, "question": question if edge == "begin" else role["question"], "block": "boundary"}
        elif cell.cell_type == "markdown":
            _, gated = strip_written_solutions(cell.source, inside_gate=gated)
            role["gated"] = role["gated"] or gated
        elif cell.cell_type == "code" and role["block"] == "tests":
            role["hidden"] = _is_hidden_test(cell.source)
        roles.append(role)
    if stack:
        raise ValueError(f"otter blocks {stack} are never closed")
    return roles


def questions(notebook: nbformat.NotebookNode) -> list[Question]:
    """The graded questions of a chapter, in order (points: the question's ``points``, a number or one per test)."""
    found: dict[str, Question] = {}
    for cell, role in zip(notebook.cells, cell_roles(notebook)):
        boundary = _boundary(cell)
        if boundary == ("begin", "question"):
            config = yaml.safe_load("\n".join(cell.source.splitlines()[1:]))
            points = config.get("points", 1)
            total = float(sum(points) if isinstance(points, list) else points)
            found[config["name"]] = Question(str(config["name"]), total, 0, 0)
        elif role["block"] == "tests" and cell.cell_type == "code":
            question = found[role["question"]]
            question.hidden.append(role["hidden"])
            if role["hidden"]:
                question.hidden_tests += 1
            else:
                question.public_tests += 1
        elif role["block"] == "solution" and cell.cell_type == "code":
            found[role["question"]].solution_cells.append(cell.source)
    return list(found.values())


def strip_written_solutions(markdown: str, *, inside_gate: bool = False) -> tuple[str, bool]:
    """Remove written solutions from MyST markdown: ``{solution}`` directive blocks (backtick or colon fences),
    and gated solutions, from ``{solution-start}`` to ``{solution-end}`` (which may span several cells).

    Args:
      markdown: the text of one markdown cell.
      inside_gate: the cell starts inside a gated solution (an earlier cell opened it).

    Returns:
      ``(text, inside_gate)``: the text without solutions (a ``{solution-start}`` becomes one line asking for the
      student's solution), and whether a gated solution is still open at the end of the cell.
    """
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        name = match["name"] if match else None
        if name in ("solution", "solution-start", "solution-end") or inside_gate:
            if name is None:  # written text of an open gated solution
                i += 1
                continue
            fence, j = match["fence"], i + 1
            while j < len(lines) and lines[j].strip() != fence:
                j += 1
            if name == "solution-start":
                label = match["rest"].strip()
                out.append(f"**Your solution{' to ' + label if label else ''}:** complete the code cells below.")
                inside_gate = True
            elif name == "solution-end":
                inside_gate = False
            i = j + 1
            continue
        out.append(lines[i])
        i += 1
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out).strip("\n"))
    return text, inside_gate


def _without_written_solutions(notebook: nbformat.NotebookNode, *, keep_otter_solutions: bool) -> list[Any]:
    """The cells of ``notebook`` without written solutions and without the code of ungraded exercises' solutions.

    Markdown inside an otter ``SOLUTION`` block is kept when ``keep_otter_solutions`` (otter removes it itself).
    """
    cells = []
    inside_gate = False
    for cell, role in zip(copy.deepcopy(notebook.cells), cell_roles(notebook)):
        if cell.cell_type == "markdown":
            text, inside_gate = strip_written_solutions(cell.source, inside_gate=inside_gate)
            if keep_otter_solutions and role["block"] == "solution":
                cells.append(cell)
            elif text.strip():
                cell.source = text
                cells.append(cell)
        elif cell.cell_type == "code" and role["gated"] and role["block"] not in ("solution", "tests"):
            continue  # the code of an ungraded exercise's solution
        else:
            cells.append(cell)
    return cells


# ------------------------------------------------------------------------------------------------------ building
def assignment_config(name: str, *, wheel: str, constraints: str, seed: int = 0) -> dict[str, Any]:
    """otter assign's ``# ASSIGNMENT CONFIG`` for one chapter (the same for every chapter but its name).

    Args:
      name: the chapter (``01_effective_logit``); otter checks that submissions carry it.
      wheel: file name of the kdwide wheel shipped with the assignment.
      constraints: file name of the constraints file shipped with it (the environment's exact versions).
      seed: the value otter sets ``seed`` to before every cell when grading (and in the student notebook).
    """
    return {
        "name": name,
        "requirements": "requirements.txt",
        "overwrite_requirements": True,  # our pins, not otter's defaults (its plugins pull in Google's API client)
        "python_version": "3.11",
        "files": [wheel, constraints],
        "seed": {"variable": "seed", "autograder_value": seed, "student_value": seed},
        "init_cell": True,
        "check_all_cell": False,
        "export_cell": False,
        "run_tests": False,  # the tests grade the instructor's version of every chapter (make assignments-check)
        "tests": {"files": False, "ok_format": True},
        "generate": {"show_stdout": False, "show_hidden": False, "pdf": False},
    }


def master_notebook(notebook: nbformat.NotebookNode, config: dict[str, Any]) -> nbformat.NotebookNode:
    """The chapter as ``otter assign``'s master notebook: its assignment config first, written solutions removed."""
    master = copy.deepcopy(notebook)
    master.cells = [nbformat.v4.new_raw_cell("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False))]
    master.cells += _without_written_solutions(notebook, keep_otter_solutions=True)
    for cell in master.cells:
        cell.pop("id", None)
    master.nbformat_minor = 4  # no cell ids: otter inserts cells without them
    return master


def _build_wheel(out_dir: Path) -> Path:
    """A wheel of kdwide (and kdwide_book) from a copy of the sources, so that the working tree gets no build/."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, tmp)
        shutil.copytree(ROOT / "src", Path(tmp) / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out_dir), tmp],
                       check=True)
    (wheel,) = out_dir.glob("kdwide-*.whl")
    return wheel


def build_assignments(
    out_dir: str | Path, notebooks: Sequence[str | Path], *, environment: str = "pinned", seed: int = 0
) -> list[dict[str, Any]]:
    """Run ``otter assign`` on every chapter and lay out ``out_dir`` for an instructor.

    Writes ``student/NAME.ipynb`` (hand these out), ``autograder/NAME-autograder.zip`` (upload to Gradescope, or
    grade locally with ``make grade``), ``instructor/NAME.ipynb`` (with solutions and every test), ``files/`` (the
    kdwide wheel and constraints students install), ``course.json`` (what ``make grade`` reads) and ``README.md``.

    Args:
      out_dir: output folder (emptied first).
      notebooks: chapter notebooks.
      environment: "pinned" (constraints.txt) or "current" (constraints-current.txt) for the autograder.
      seed: the grading seed (see :func:`assignment_config`).

    Returns:
      one row per chapter: notebook, questions, points.
    """
    from otter.assign import main as otter_assign

    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {sorted(ENVIRONMENTS)}, got {environment!r}")
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    for sub in ("student", "autograder", "instructor", "files", ".otter"):
        (out_dir / sub).mkdir(parents=True)
    wheel = _build_wheel(out_dir / "files")
    constraints = ROOT / ENVIRONMENTS[environment]
    shutil.copy(constraints, out_dir / "files" / constraints.name)
    course: dict[str, Any] = {"environment": environment, "seed": seed, "chapters": {}}
    rows = []
    for path in map(Path, notebooks):
        chapter = nbformat.read(path, as_version=4)
        found = questions(chapter)
        if not found:
            raise ValueError(f"{path}: no graded question (otter '# BEGIN QUESTION' cell)")
        work = out_dir / ".otter" / path.stem
        work.mkdir()
        shutil.copy(wheel, work)
        shutil.copy(constraints, work / constraints.name)
        (work / "requirements.txt").write_text(
            f"-c {AUTOGRADER_SOURCE}/{constraints.name}\n{OTTER_PIN}\n{AUTOGRADER_SOURCE}/{wheel.name}\n")
        config = assignment_config(path.stem, wheel=wheel.name, constraints=constraints.name, seed=seed)
        nbformat.write(master_notebook(chapter, config), work / path.name)
        cwd = os.getcwd()
        try:  # otter resolves the config's file names against the working directory
            os.chdir(work)
            otter_assign(path.name, "dist", no_pdfs=True, no_run_tests=True)
        finally:
            os.chdir(cwd)
        (zip_path,) = (work / "dist" / "autograder").glob(f"{path.stem}-autograder_*.zip")
        shutil.copy(zip_path, out_dir / "autograder" / f"{path.stem}-autograder.zip")
        shutil.copy(work / "dist" / "student" / path.name, out_dir / "student" / path.name)
        shutil.copy(work / "dist" / "autograder" / path.name, out_dir / "instructor" / path.name)
        student = nbformat.read(out_dir / "student" / path.name, as_version=4)
        question_stubs: dict[str, list[str]] = {}
        pending: list[str] = []
        for cell in student.cells:  # answer cells, then the question's grader.check("NAME") cell
            if "otter_answer_cell" in cell.metadata.get("tags", []):
                pending.append(cell.source)
            check = re.search(r'grader\.check\("([^"]+)"\)', cell.source) if cell.cell_type == "code" else None
            if check:
                question_stubs[check[1]], pending = pending, []
        course["chapters"][path.stem] = {
            "notebook": path.name, "autograder": f"autograder/{path.stem}-autograder.zip",
            "questions": [{"name": q.name, "points": q.points, "public_tests": q.public_tests,
                           "hidden_tests": q.hidden_tests, "hidden": q.hidden} for q in found],
            "question_stubs": question_stubs}
        rows.append({"notebook": path.name, "questions": len(found), "points": sum(q.points for q in found),
                     "public_tests": sum(q.public_tests for q in found),
                     "hidden_tests": sum(q.hidden_tests for q in found)})
    shutil.rmtree(out_dir / ".otter")
    (out_dir / "course.json").write_text(json.dumps(course, indent=2) + "\n")
    (out_dir / "README.md").write_text(_instructor_guide(rows, environment=environment, seed=seed, wheel=wheel.name,
                                                         constraints=constraints.name))
    return rows


def _instructor_guide(rows: list[dict[str, Any]], *, environment: str, seed: int, wheel: str, constraints: str) -> str:
    table = "\n".join(f"| `{r['notebook']}` | {r['questions']} | {r['points']:g} | {r['public_tests']} | "
                      f"{r['hidden_tests']} |" for r in rows)
    return f"""# Assignments: instructor guide

Generated by `make assignments` (otter-grader 7.0.0) from the chapters of the book. Do not edit: re-generate.

| notebook | graded questions | points | public tests | hidden tests |
|---|---|---|---|---|
{table}

- `student/`: hand these out. Answer cells show `...` where students write code; each question ends with a
  `grader.check("NAME")` cell that runs its public tests. Students install the course environment with
  `pip install -c files/{constraints} files/{wheel} otter-grader==7.0.0` (Python 3.11).
- `autograder/NAME-autograder.zip`: one per chapter, ready to upload to a Gradescope programming assignment
  (Python 3.11 image; set the assignment's time limit there, e.g. 15 minutes). It holds every test, public and
  hidden, and grades a submitted notebook in a fresh kernel, with `seed = {seed}` set before every cell. Its setup
  installs the {environment} set (`{constraints}`), kdwide from the wheel and otter-grader.
- `instructor/`: the chapters as otter sees them, with solutions and every test.
- Grade a class locally: put each student's notebooks (the `student/` file names) in `SUBMISSIONS/<student>/`, then
  `make grade SUBMISSIONS=SUBMISSIONS`: `SUBMISSIONS/grades.csv` (student, chapter, question, points, max_points)
  and `SUBMISSIONS/<student>/feedback.md`.

Checks and points come from the autograder only: a submission's own check cells and tags are ignored.
"""


# ------------------------------------------------------------------------------------------------------- grading
@dataclass
class QuestionResult:
    """The grade of one question of one submission."""

    student: str
    chapter: str
    question: str
    points: float
    max_points: float
    feedback: str = ""


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def grade_submission(
    notebook: str | Path, autograder: str | Path, *, timeout: float = 900.0
) -> tuple[dict[str, Any] | None, str]:
    """Grade one notebook with ``otter run`` (fresh kernel, the autograder's tests) within ``timeout`` seconds.

    Returns:
      ``(results, log)``: otter's Gradescope ``results.json`` as a dict (None if grading failed or ran out of
      time) and otter's output (or the reason it failed).
    """
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    notebook, autograder = Path(notebook).resolve(), Path(autograder).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        submission = Path(tmp) / "submission"
        submission.mkdir()
        shutil.copy(notebook, submission / notebook.name)
        command = [sys.executable, "-m", "otter", "run", "-a", str(autograder), "-o", tmp, "--no-logo",
                   str(submission / notebook.name)]
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        # a session of its own: on timeout the whole group (otter and the notebook's kernel) is killed
        process = subprocess.Popen(command, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=environment, start_new_session=True)
        try:
            log, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            return None, f"time limit exceeded: the notebook did not finish within {timeout:g} s"
        finally:
            _kill_group(process)  # a kernel left behind
        results = Path(tmp) / "results.json"
        if not results.exists():
            return None, f"otter run failed (exit status {process.returncode}):\n{log[-3000:]}"
        graded = json.loads(results.read_text())
        errors = [t.get("output", "") for t in graded.get("tests", []) if t.get("name") == "Autograder Error"]
        if errors:  # otter refused the submission (e.g. a notebook of another assignment)
            return None, errors[0]
        return graded, log


def _question_feedback(test: dict[str, Any] | None, hidden: Sequence[bool], *, unchanged: bool) -> str:
    """A student's feedback on one question from otter's report: per test case, passed or failed; for a failed
    public test the failing line and its error, for a hidden test only the kind of error (its code stays hidden)."""
    if test is None:
        return "not graded"
    lines = ["not answered: the answer cell is unchanged from the handout (it still has `...`)"] if unchanged else []
    cases = re.split(r"^\s*\S+ - (\d+) result:\s*$", str(test.get("output", "")), flags=re.MULTILINE)
    for number, text in zip(cases[1::2], cases[2::2]):
        k = int(number) - 1
        kind = "hidden" if k < len(hidden) and hidden[k] else "public"
        if "Test case passed" in text or "\u2705" in text:
            lines.append(f"test {k + 1} ({kind}): passed")
            continue
        failure = re.search(r"Failed example:\n(?P<example>.*?)\n\s*(?:Exception raised:|Expected:)(?P<rest>.*?)"
                            r"(?=\n\s*\*{10,}|\n\s*Trying:|\Z)", text, flags=re.DOTALL)
        error = ""
        if failure:
            rest = [line.strip() for line in failure["rest"].strip().splitlines() if line.strip()]
            error = rest[-1] if rest else ""
        if kind == "hidden":
            lines.append(f"test {k + 1} (hidden): failed" + (f" ({error.split(':')[0]})" if error else ""))
        else:
            example = " ".join(failure["example"].split()) if failure else ""
            lines.append(f"test {k + 1} (public): failed at `{example}`" + (f": {error}" if error else ""))
    if not cases[1:]:
        lines.append("all tests passed" if test.get("score", 0) >= test.get("max_score", 0) else "tests failed")
    return "\n".join(lines)


def grade_class(
    submissions: str | Path, assignments: str | Path, *, timeout: float = 900.0, chapters: Sequence[str] | None = None
) -> list[QuestionResult]:
    """Grade every student folder of ``submissions`` and write ``grades.csv`` and ``<student>/feedback.md``.

    ``submissions/<student>/`` holds that student's notebooks under the student versions' file names. A chapter is
    graded for every student when any student submitted it (or when it is listed in ``chapters``); a student
    without that notebook gets 0 for its questions.

    Args:
      submissions: the class folder.
      assignments: the folder ``build_assignments`` wrote (``course.json``, ``autograder/``).
      timeout: seconds per notebook.
      chapters: chapters to grade (default: those any student submitted).

    Returns:
      one result per student and question (the rows of ``grades.csv``).
    """
    submissions, assignments = Path(submissions), Path(assignments)
    if not submissions.is_dir():
        raise ValueError(f"submissions must be a folder of student folders, got {str(submissions)!r}")
    course_file = assignments / "course.json"
    if not course_file.exists():
        raise ValueError(f"assignments: {course_file} not found; run `make assignments` first")
    course = json.loads(course_file.read_text())
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise ValueError(f"submissions: no student folder in {submissions}")
    known = course["chapters"]
    if chapters is None:
        chapters = [c for c, info in known.items() if any((s / info["notebook"]).exists() for s in students)]
    unknown = sorted(set(chapters) - set(known))
    if unknown:
        raise ValueError(f"chapters: {unknown} are not in {course_file} (known: {sorted(known)})")
    results: list[QuestionResult] = []
    for student in students:
        feedback = [f"# Feedback for {student.name}", ""]
        for chapter in chapters:
            info = known[chapter]
            path = student / info["notebook"]
            if not path.exists():
                graded, log = None, f"missing: no {info['notebook']} in {student.name}/"
                seconds, source = 0.0, ""
            else:
                start = time.perf_counter()
                graded, log = grade_submission(path, assignments / info["autograder"], timeout=timeout)
                seconds = time.perf_counter() - start
                source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
            tests = {t.get("name"): t for t in (graded or {}).get("tests", [])}
            total = sum(q["points"] for q in info["questions"])
            chapter_rows = []
            for question in info["questions"]:
                test = tests.get(question["name"])
                points = float(test.get("score", 0)) if test else 0.0
                text = _question_feedback(test, question["hidden"], unchanged=_stub_of(info, question["name"], source))
                if test is None:
                    text = log.splitlines()[0] if graded is None and log else "no result for this question"
                row = QuestionResult(student.name, chapter, question["name"], points, float(question["points"]), text)
                chapter_rows.append(row)
            results += chapter_rows
            score = sum(r.points for r in chapter_rows)
            feedback += [f"## {chapter}: {score:g} / {total:g} points"
                         + (f" (graded in {seconds:.0f} s)" if seconds else ""), ""]
            if graded is None:
                feedback += [f"Not graded: {log.strip()}", ""]
            for row in chapter_rows:
                feedback += [f"### {row.question}: {row.points:g} / {row.max_points:g}", "", "```", row.feedback, "```", ""]
        (student / "feedback.md").write_text("\n".join(feedback))
    with open(submissions / "grades.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "chapter", "question", "points", "max_points"])
        writer.writeheader()
        for r in results:
            writer.writerow({k: v for k, v in asdict(r).items() if k != "feedback"})
    return results


def _stub_of(info: dict[str, Any], question: str, source: str) -> bool:
    """Whether the handout's answer cell of ``question`` appears unchanged in the submission's ``source``."""
    stubs = info.get("question_stubs", {}).get(question, [])
    return bool(stubs) and all(stub in source for stub in stubs)


# -------------------------------------------------------------------------------------------------- student book
def student_notebook_for_book(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A chapter for the student-audience book: written solutions and ungraded solution code removed, graded answer
    cells replaced by otter's student stubs (no outputs), hidden tests removed; questions and public tests kept."""
    from otter.assign.solutions import replace_solutions

    student = copy.deepcopy(notebook)
    cells = _without_written_solutions(notebook, keep_otter_solutions=False)
    kept = []
    for cell, role in zip(cells, cell_roles(nbformat.v4.new_notebook(cells=cells))):
        if role["block"] == "solution" and cell.cell_type == "code":
            cell.source = "\n".join(replace_solutions(cell.source.splitlines(), "python"))
            cell.outputs, cell.execution_count = [], None
        elif role["hidden"]:
            continue
        kept.append(cell)
    student.cells = kept
    return student


def student_book_sources(out_dir: str | Path, *, root: str | Path = ROOT) -> Path:
    """Write a copy of the book's sources for students into ``out_dir/src`` and return that folder.

    Chapters go through :func:`student_notebook_for_book`; the rest is copied. The configuration is the book's,
    rendering the committed outputs (no execution: the stubs would fail) with MathJax from this checkout.
    """
    root, out_dir = Path(root), Path(out_dir)
    source = out_dir / "src"
    shutil.rmtree(source, ignore_errors=True)
    (source / "book").mkdir(parents=True)
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    static = config["sphinx"]["config"]["html_static_path"]
    config["sphinx"]["config"]["html_static_path"] = [str((root / p).resolve()) for p in static]
    config["title"] = f"{config['title']} (student edition)"
    (source / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(root / "_toc.yml", source)
    for name in ("references.bib", "constraints.txt"):  # the bibliography; the reproducibility page reads the pins
        shutil.copy(root / name, source)
    for path in sorted((root / "book").iterdir()):
        if path.suffix == ".ipynb":
            notebook = student_notebook_for_book(nbformat.read(path, as_version=4))
            nbformat.write(notebook, source / "book" / path.name)
        elif path.is_file():
            shutil.copy(path, source / "book" / path.name)
    return source


def html_text(page: str) -> str:
    """The visible text of an HTML page (tags dropped, entities decoded, whitespace collapsed): what a search for
    code must look in, since highlighted code is split into many spans."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.DOTALL | re.IGNORECASE)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", page)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdwide_book.assignments", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="student notebooks and Gradescope autograders of the chapters")
    build.add_argument("--out", type=Path, default=Path("_build/assignments"))
    build.add_argument("--environment", choices=sorted(ENVIRONMENTS), default="pinned",
                       help="the autograder's package set (default: pinned, the book's)")
    build.add_argument("--seed", type=int, default=0, help="the grading seed (default 0, the chapters' own)")
    build.add_argument("notebooks", nargs="*", type=Path, help="default: the chapters of _toc.yml")
    grader = commands.add_parser("grade", help="grade a class: SUBMISSIONS/<student>/<notebook>.ipynb")
    grader.add_argument("submissions", type=Path)
    grader.add_argument("--assignments", type=Path, default=Path("_build/assignments"))
    grader.add_argument("--timeout", type=float, default=900.0, help="seconds per notebook (default 900)")
    grader.add_argument("--chapters", nargs="*", help="default: every chapter any student submitted")
    book = commands.add_parser("student-book", help="the book's sources without solutions")
    book.add_argument("--out", type=Path, default=Path("_build/student"))
    args = parser.parse_args(argv)
    if args.command == "build":
        from kdwide_book.book import chapter_notebooks

        rows = build_assignments(args.out, args.notebooks or chapter_notebooks(ROOT), environment=args.environment,
                                 seed=args.seed)
        for row in rows:
            print(f"{row['notebook']}: {row['questions']} questions, {row['points']:g} points "
                  f"({row['public_tests']} public and {row['hidden_tests']} hidden tests)")
        print(f"student notebooks, autograders and the instructor guide in {args.out}/ (see {args.out / 'README.md'})")
        return 0
    if args.command == "grade":
        try:
            results = grade_class(args.submissions, args.assignments, timeout=args.timeout, chapters=args.chapters)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        totals: dict[str, list[float]] = {}
        for r in results:
            totals.setdefault(r.student, [0.0, 0.0])
            totals[r.student][0] += r.points
            totals[r.student][1] += r.max_points
        for student, (points, possible) in totals.items():
            print(f"{student}: {points:g} / {possible:g}")
        print(f"grades: {args.submissions / 'grades.csv'}; feedback: {args.submissions}/<student>/feedback.md")
        return 0
    print(student_book_sources(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
