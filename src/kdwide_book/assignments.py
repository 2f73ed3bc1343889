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
- points: otter grades in the student's kernel, against the student's globals, which one line of the notebook can
  switch off (otter-grader issue 490). Points come from :mod:`kdwide_book.judge` instead: the notebook only produces
  answers (its functions called on inputs drawn at grading time), judged in a process that never runs student code.
  Each question's ``# BEGIN QUESTION`` cell says what the judge asks (``judge:``: the ``answer`` function or the
  ``variables``, and the kdwide functions the question ``writes``); :mod:`kdwide_book.graded_questions` holds the
  inputs and the reference answers. The Gradescope zip is otter's, with its ``run_otter.py`` running the judge;
- ``make grade`` runs the judge once per student and notebook, in a process of its own with a time limit, and
  gathers a class's results into ``grades.csv`` and one feedback file per student (:func:`grade_class`);
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
import io
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

from kdwide_book.results import atomic_write

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
    """One graded question of a chapter, as otter reads it, and what the judge asks of it (``judge:`` in its
    ``# BEGIN QUESTION`` cell: ``answer`` (the function the student writes) or ``variables`` (the names the student
    computes), and ``writes``, the kdwide functions the question asks the student to write)."""

    name: str
    points: float
    public_tests: int
    hidden_tests: int
    solution_cells: list[str] = field(default_factory=list)  # the instructor's code of its answer cells
    hidden: list[bool] = field(default_factory=list)  # per test case, in otter's order: hidden or not
    test_points: list[float] | float = 1.0  # otter's ``points``: one number per test case, or one for the question
    answer: str | None = None
    variables: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)

    def split_points(self) -> tuple[float, float]:
        """``(public, hidden)``: the points of the public test cases and of the hidden ones (the judge's two parts)."""
        count = len(self.hidden)
        per_test = (list(self.test_points) if isinstance(self.test_points, list)
                    else [float(self.test_points) / max(count, 1)] * count)
        if len(per_test) != count:
            raise ValueError(f"question {self.name}: points {self.test_points} for {count} test cases")
        return (float(sum(p for p, h in zip(per_test, self.hidden) if not h)),
                float(sum(p for p, h in zip(per_test, self.hidden) if h)))

    def judge_entry(self) -> dict[str, Any]:
        """The question as ``course.json`` and the judge read it."""
        public, hidden = self.split_points()
        return {"name": self.name, "points": self.points, "public_points": public, "hidden_points": hidden,
                "public_tests": self.public_tests, "hidden_tests": self.hidden_tests, "hidden": self.hidden,
                "answer": self.answer, "variables": self.variables, "writes": self.writes}


def _judge_config(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The ``judge:`` entry of a question's config, checked: exactly one of ``answer`` and ``variables``."""
    judge = config.get("judge") or {}
    if not isinstance(judge, dict) or bool(judge.get("answer")) == bool(judge.get("variables")):
        raise ValueError(f"question {name}: 'judge:' needs exactly one of 'answer: FUNCTION' and 'variables: [NAME, ...]'")
    writes = judge.get("writes") or []
    if not (isinstance(writes, list) and all(isinstance(w, str) and w.startswith("kdwide.") for w in writes)):
        raise ValueError(f"question {name}: 'writes' must list kdwide functions (kdwide.module.function), got {writes!r}")
    return {"answer": judge.get("answer"), "variables": list(judge.get("variables") or []), "writes": writes}


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
            name = str(config["name"])
            found[name] = Question(name, total, 0, 0, test_points=points, **_judge_config(name, config))
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


def _copy(source: Path, target: Path) -> None:
    """Copy one file through the project's one writer (:func:`kdwide_book.results.atomic_write`)."""
    atomic_write(target, Path(source).read_bytes(), fsync=False)


def _build_wheel(out_dir: Path) -> Path:
    """A wheel of kdwide (and kdwide_book) from a copy of the sources, so that the working tree gets no build/."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("pyproject.toml", "README.md"):
            _copy(ROOT / name, Path(tmp) / name)
        for path in sorted((ROOT / "src").rglob("*")):
            relative = path.relative_to(ROOT)
            if path.is_file() and not {"__pycache__"} & set(relative.parts) and ".egg-info" not in str(relative):
                (Path(tmp) / relative).parent.mkdir(parents=True, exist_ok=True)
                _copy(path, Path(tmp) / relative)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(Path(tmp) / "dist"),
                        tmp], check=True)
        (wheel,) = (Path(tmp) / "dist").glob("kdwide-*.whl")
        _copy(wheel, out_dir / wheel.name)
    return out_dir / wheel.name


RUN_JUDGE = '''"""Gradescope's entry point (replaces otter's run_otter.py): the kdwide judge grades the submission."""
import sys

from kdwide_book.judge import main

sys.exit(main(["gradescope", "--autograder", "/autograder"]))
'''


def judged_autograder(otter_zip: bytes, judge_config: dict[str, Any]) -> bytes:
    """otter's Gradescope zip with the judge in charge: ``run_otter.py`` runs :mod:`kdwide_book.judge` and
    ``judge.json`` (chapter, questions, seed, time limit) joins the files; setup (the environment) is otter's."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(otter_zip)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename not in ("run_otter.py", "judge.json"):
                target.writestr(item, source.read(item.filename))
        target.writestr("run_otter.py", RUN_JUDGE)
        target.writestr("judge.json", json.dumps(judge_config, indent=1))
    return out.getvalue()


def _otter_assign(path: Path, chapter: nbformat.NotebookNode, wheel: Path, constraints: Path, seed: int,
                  work: Path) -> Path:
    """Run ``otter assign`` on one chapter in ``work``; returns otter's ``dist`` folder."""
    from otter.assign import main as otter_assign

    work.mkdir()
    for file in (wheel, constraints):
        _copy(file, work / file.name)
    atomic_write(work / "requirements.txt",
                 f"-c {AUTOGRADER_SOURCE}/{constraints.name}\n{OTTER_PIN}\n{AUTOGRADER_SOURCE}/{wheel.name}\n")
    config = assignment_config(path.stem, wheel=wheel.name, constraints=constraints.name, seed=seed)
    atomic_write(work / path.name, nbformat.writes(master_notebook(chapter, config)))
    cwd = os.getcwd()
    try:  # otter resolves the config's file names against the working directory
        os.chdir(work)
        otter_assign(path.name, "dist", no_pdfs=True, no_run_tests=True)
    finally:
        os.chdir(cwd)
    return work / "dist"


def _question_stubs(student: nbformat.NotebookNode) -> dict[str, list[str]]:
    """The handout's answer cells of every question (what "not answered" looks for)."""
    stubs: dict[str, list[str]] = {}
    pending: list[str] = []
    for cell in student.cells:  # answer cells, then the question's grader.check("NAME") cell
        if "otter_answer_cell" in cell.metadata.get("tags", []):
            pending.append(cell.source)
        check = re.search(r'grader\.check\("([^"]+)"\)', cell.source) if cell.cell_type == "code" else None
        if check:
            stubs[check[1]], pending = pending, []
    return stubs


def build_assignments(
    out_dir: str | Path, notebooks: Sequence[str | Path], *, environment: str = "pinned", seed: int = 0,
    timeout: float = 900.0,
) -> list[dict[str, Any]]:
    """Run ``otter assign`` on every chapter and lay out ``out_dir`` for an instructor.

    Writes ``student/NAME.ipynb`` (hand these out), ``autograder/NAME-autograder.zip`` (upload to Gradescope: otter's
    zip, graded by :mod:`kdwide_book.judge`), ``instructor/NAME.ipynb`` (with solutions and every test), ``files/`` (the
    kdwide wheel and constraints students install), ``course.json`` (what ``make grade`` reads) and ``README.md``.

    Args:
      out_dir: output folder (emptied first).
      notebooks: chapter notebooks.
      environment: "pinned" (constraints.txt) or "current" (constraints-current.txt) for the autograder.
      seed: the grading seed (with a fresh nonce per grading, it draws the hidden inputs).
      timeout: seconds the Gradescope autograder gives one notebook (``make grade`` takes its own).

    Returns:
      one row per chapter: notebook, questions, points, public and hidden tests.
    """
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {sorted(ENVIRONMENTS)}, got {environment!r}")
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    wheel = _build_wheel(out_dir / "files")
    constraints = ROOT / ENVIRONMENTS[environment]
    _copy(constraints, out_dir / "files" / constraints.name)
    course: dict[str, Any] = {"environment": environment, "seed": seed, "chapters": {}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in map(Path, notebooks):
            chapter = nbformat.read(path, as_version=4)
            found = questions(chapter)
            if not found:
                raise ValueError(f"{path}: no graded question (otter '# BEGIN QUESTION' cell)")
            dist = _otter_assign(path, chapter, wheel, constraints, seed, Path(tmp) / path.stem)
            student = nbformat.read(dist / "student" / path.name, as_version=4)
            info = {"name": path.stem, "notebook": path.name, "autograder": f"autograder/{path.stem}-autograder.zip",
                    "questions": [q.judge_entry() for q in found], "question_stubs": _question_stubs(student)}
            (otter_zip,) = (dist / "autograder").glob(f"{path.stem}-autograder_*.zip")
            atomic_write(out_dir / info["autograder"],
                         judged_autograder(otter_zip.read_bytes(), {"chapter": info, "seed": seed, "timeout": timeout}))
            _copy(dist / "student" / path.name, out_dir / "student" / path.name)
            _copy(dist / "autograder" / path.name, out_dir / "instructor" / path.name)
            course["chapters"][path.stem] = info
            rows.append({"notebook": path.name, "questions": len(found), "points": sum(q.points for q in found),
                         "public_tests": sum(q.public_tests for q in found),
                         "hidden_tests": sum(q.hidden_tests for q in found)})
    atomic_write(out_dir / "course.json", json.dumps(course, indent=2) + "\n")
    atomic_write(out_dir / "README.md", _instructor_guide(rows, environment=environment, seed=seed, wheel=wheel.name,
                                                          constraints=constraints.name))
    return rows


def _instructor_guide(rows: list[dict[str, Any]], *, environment: str, seed: int, wheel: str, constraints: str) -> str:
    table = "\n".join(f"| `{r['notebook']}` | {r['questions']} | {r['points']:g} | {r['public_tests']} | "
                      f"{r['hidden_tests']} |" for r in rows)
    return f"""# Assignments: instructor guide

Generated by `make assignments` (otter-grader 7.0.0 for the notebooks, the kdwide judge for the points) from the
chapters of the book. Do not edit: re-generate.

| notebook | graded questions | points | public tests | hidden tests |
|---|---|---|---|---|
{table}

- `student/`: hand these out. Answer cells show `...` where students write code; each question ends with a
  `grader.check("NAME")` cell that runs its public tests (feedback for the student only: it awards no points).
  Students install the course environment with
  `pip install -c files/{constraints} files/{wheel} otter-grader==7.0.0` (Python 3.11).
- `autograder/NAME-autograder.zip`: one per chapter, ready to upload to a Gradescope programming assignment
  (Python 3.11 image; set the assignment's time limit there, e.g. 15 minutes). Its setup is otter's (it installs the
  {environment} set, `{constraints}`, kdwide from the wheel and otter-grader); its `run_otter.py` runs the kdwide
  judge, which writes Gradescope's `results.json`.
- `instructor/`: the chapters as otter sees them, with solutions and every test.
- Grade a class locally: put each student's notebooks (the `student/` file names) in `SUBMISSIONS/<student>/`, then
  `make grade SUBMISSIONS=SUBMISSIONS`: `SUBMISSIONS/grades.csv` (student, chapter, question, points, max_points)
  and `SUBMISSIONS/<student>/feedback.md`.

## How points are awarded (the judge)

The student's notebook only *produces* answers. A fresh kernel runs it (time limit, outputs discarded); then the judge
calls each question's function on inputs it draws at grading time (grading seed {seed} and a fresh random nonce per
grading, so that no file, and not even the seed, tells them in advance) and reads back plain numbers only. Reference
answers and every comparison are computed in the judge's own process, which never runs student code, with pristine
kdwide and numpy. Each question has a public part (fixed inputs, the public test's where it calls the function) and a
hidden part (the drawn inputs); each part's points are all or nothing. Feedback names the property that failed (not
answered, shape, finiteness, value, type, error, delegation, time limit), never the hidden inputs or expected values.

**Guaranteed** (each is a test in the repository's `tests/test_grading_redteam.py`, on chapter 1; its
`make assignments-check` runs all but the replay and the endless cell on every chapter): the following score 0 on the questions they touch and leave other students' grades unchanged: names
shadowed in the notebook (builtins, numpy, kdwide names, otter's test helpers); modules patched (builtins, numpy,
kdwide, otter, json, pickle); objects that compare equal to anything or convert to any number (only plain ints,
floats and numpy or JAX arrays of numbers are accepted); writing into the grader's tests, results or log files;
printing the grader's pass messages; faking results and then ending the kernel (`os._exit`, `sys.exit`, `exit()`);
cells that never end (the time limit); huge outputs; reading the hidden tests from disk and replaying their expected
values. While an answer is produced, the kdwide functions the question asks the student to write (its `writes:`
list) raise "not available in this question" wherever they are referenced (module attributes, names in the notebook,
the function objects themselves), and the feedback says so (delegation).

**Not guaranteed:** a student who copies kdwide's code (or reloads or re-executes kdwide's source to get an unblocked
copy, or calls kdwide's private helpers: only the public functions a question names are blocked) has answered with
someone else's work: that is a matter for the honour code, not for the grader. A notebook that kills its own judge
gets 0, and `make grade` then kills the processes it left (each grading marks its processes' environment; a process
that clears its environment escapes that sweep). The kernel
runs as the user who runs `make grade`, with that user's access to files: the judge keeps nothing there that matters
(everything it needs is imported and computed before student code runs, its memory is closed to other processes, its
report is signed), and every process the notebook starts is killed before its answers are read; but a notebook can
read or damage that user's files (the installed packages included, which later gradings would import). Grade
untrusted submissions in a container or under an account of their own. On Gradescope the student's code runs as root
inside the grading container, and root can undo any protection inside it: use Gradescope for low-stakes work, and
`make grade` in a container for exams.

The otter tests in the zip and in `instructor/` are kept for the students' `grader.check` and for reference; their
hidden tests use fixed inputs, which is why the judge never uses them for points.
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


GRADING_MARK = "KDWIDE_GRADING_MARK"
"""Environment variable set, with a fresh value per grading, for the judge and so for every process it starts."""


def _kill_marked(mark: str) -> int:
    """SIGKILL every process whose environment carries ``GRADING_MARK=mark`` (what a notebook left running when its
    judge did not live to kill it); returns how many."""
    needle = f"{GRADING_MARK}={mark}".encode()
    killed = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            marked = needle in (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marked and int(entry.name) != os.getpid():
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


def grade_submission(
    notebook: str | Path, chapter: dict[str, Any], *, seed: int = 0, timeout: float = 900.0
) -> tuple[dict[str, Any] | None, str]:
    """Grade one notebook with the judge (:mod:`kdwide_book.judge`) in a process of its own, in a session of its own.

    The job (notebook, chapter, seed, an HMAC key) goes on the judge's stdin; only a report signed with that key counts.

    Args:
      notebook: the submitted ``.ipynb``.
      chapter: the chapter's entry of ``course.json`` (with its ``name``).
      seed: the grading seed.
      timeout: seconds for the notebook (the judge's own limit; this process allows two minutes more for the kernel's
        start and the references).

    Returns:
      ``(results, log)``: Gradescope's ``results.json`` object (None if grading failed) and the judge's log.
    """
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    from kdwide_book.judge import read_report

    key = os.urandom(32)
    job = {"key": key.hex(), "notebook": Path(notebook).read_text(errors="replace"), "chapter": chapter,
           "seed": seed, "timeout": timeout}
    mark = os.urandom(16).hex()
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYDEVD_DISABLE_FILE_VALIDATION": "1", GRADING_MARK: mark}
    with tempfile.TemporaryDirectory() as tmp:
        process = subprocess.Popen([sys.executable, "-m", "kdwide_book.judge", "submission"], cwd=tmp,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=environment, start_new_session=True)
        try:
            output, log = process.communicate(json.dumps(job), timeout=timeout + 120)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            return None, f"time limit exceeded: the judge did not finish within {timeout + 120:g} s"
        finally:
            _kill_group(process)
            for _ in range(3):  # the judge kills what the notebook started; if the notebook killed the judge, we do
                if not _kill_marked(mark):
                    break
                time.sleep(0.2)
    report = read_report(output, key)
    if report is None:
        return None, f"the judge failed (exit status {process.returncode}):\n{log[-3000:]}"
    return report, log


def _grade_student(student: Path, chapters: Sequence[str], known: dict[str, Any], *, seed: int,
                   timeout: float) -> tuple[list[QuestionResult], list[str]]:
    """Grade one student's notebooks: their rows of ``grades.csv`` and the lines of their feedback file."""
    results: list[QuestionResult] = []
    feedback = [f"# Feedback for {student.name}", ""]
    for chapter in chapters:
        info = {"name": chapter, **known[chapter]}
        path = student / info["notebook"]
        seconds = 0.0
        if not path.exists():
            graded, log = None, f"missing: no {info['notebook']} in {student.name}/"
        else:
            start = time.perf_counter()
            graded, log = grade_submission(path, info, seed=seed, timeout=timeout)
            seconds = time.perf_counter() - start
        tests = {t.get("name"): t for t in (graded or {}).get("tests", [])}
        rows = []
        for question in info["questions"]:
            test = tests.get(question["name"])
            points = float(test.get("score", 0)) if test else 0.0
            text = str(test.get("output", "")) if test else (log.splitlines()[0] if log else "not graded")
            rows.append(QuestionResult(student.name, chapter, question["name"], points, float(question["points"]), text))
        results += rows
        total = sum(q["points"] for q in info["questions"])
        feedback += [f"## {chapter}: {sum(r.points for r in rows):g} / {total:g} points"
                     + (f" (graded in {seconds:.0f} s)" if seconds else ""), ""]
        if graded is None:
            feedback += [f"Not graded: {log.strip()[:2000]}", ""]
        elif str(graded.get("output", "")).startswith("Not graded"):
            feedback += [str(graded["output"]), ""]
        for row in rows:
            feedback += [f"### {row.question}: {row.points:g} / {row.max_points:g}", "", "```", row.feedback, "```", ""]
    return results, feedback


def grade_class(
    submissions: str | Path, assignments: str | Path, *, timeout: float = 900.0, chapters: Sequence[str] | None = None
) -> list[QuestionResult]:
    """Grade every student folder of ``submissions`` and write ``grades.csv`` and ``<student>/feedback.md``.

    ``submissions/<student>/`` holds that student's notebooks under the student versions' file names. A chapter is
    graded for every student when any student submitted it (or when it is listed in ``chapters``); a student
    without that notebook gets 0 for its questions. Every notebook is graded by the judge in a process of its own,
    so that one student's notebook cannot touch another's grade.

    Args:
      submissions: the class folder.
      assignments: the folder ``build_assignments`` wrote (``course.json``).
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
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
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
    feedback_files: dict[Path, str] = {}
    for student in students:
        rows, feedback = _grade_student(student, chapters, known, seed=int(course.get("seed", 0)), timeout=timeout)
        results += rows
        feedback_files[student / "feedback.md"] = "\n".join(feedback)
    for path, text in feedback_files.items():  # written at the end, when no student's code runs any more
        atomic_write(path, text)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=["student", "chapter", "question", "points", "max_points"],
                            lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow({k: v for k, v in asdict(r).items() if k != "feedback"})
    atomic_write(submissions / "grades.csv", table.getvalue())
    return results


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
    atomic_write(source / "_config.yml", yaml.safe_dump(config, sort_keys=False), fsync=False)
    for name in ("_toc.yml", "references.bib", "constraints.txt"):  # the bibliography; the reproducibility page reads the pins
        _copy(root / name, source / name)
    for path in sorted((root / "book").iterdir()):
        if path.suffix == ".ipynb":
            notebook = student_notebook_for_book(nbformat.read(path, as_version=4))
            atomic_write(source / "book" / path.name, nbformat.writes(notebook), fsync=False)
        elif path.is_file():
            _copy(path, source / "book" / path.name)
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
    build.add_argument("--seed", type=int, default=0,
                       help="the grading seed (default 0; with a fresh nonce per grading it draws the hidden inputs)")
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
