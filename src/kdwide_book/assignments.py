"""Course assignments from the chapters: student versions and an autograder.

An instructor marks cells of a chapter notebook with cell tags:

- ``solution`` (code cell): the instructor's answer. In the student version the whole cell becomes a stub
  (its leading comment lines, which state the task, are kept), or, if the cell has ``### BEGIN SOLUTION`` /
  ``### END SOLUTION`` lines, only the lines between them do. A stub is ``# YOUR CODE HERE`` followed by
  ``raise NotImplementedError(...)``. Code cells inside a gated ``{solution-start}`` ... ``{solution-end}``
  block count as solution cells too.
- ``autograde`` (code cell): a check, with ``assert`` statements and messages, run on the student's
  variables. It stays in the student version, so students can run it; its first comment line names it;
  ``metadata["points"]`` weighs it (default 1).

The student version also loses the written solutions (``{solution}`` directives and gated solution text)
and every output. :func:`grade` executes a completed notebook top to bottom in a fresh kernel (cells after an
error still run) and reports which checks pass, with the assertion messages as feedback.

Command line (``make assignments`` runs the first)::

    python -m kdwide_book.assignments build --out _build/assignments [NOTEBOOK ...]   # default: the chapters
    python -m kdwide_book.assignments grade COMPLETED.ipynb [--json report.json]      # exit 0 iff every check passes
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from kdwide_book.notebooks import execute

__all__ = [
    "SOLUTION_TAG",
    "AUTOGRADE_TAG",
    "STUB_MARKER",
    "Check",
    "GradeReport",
    "student_version",
    "strip_written_solutions",
    "assignment_summary",
    "build_assignments",
    "grade",
]

SOLUTION_TAG = "solution"
AUTOGRADE_TAG = "autograde"
STUB_MARKER = "# YOUR CODE HERE"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,})\{(?P<name>[a-z-]+)\}(?P<rest>.*)$")


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _stub(task: str, indent: str = "") -> list[str]:
    return [f"{indent}{STUB_MARKER}", f"{indent}raise NotImplementedError({task!r})"]


def _stub_source(source: str, task: str) -> str:
    """The student's version of a solution cell's source (see the module doc)."""
    lines = source.splitlines()
    if any(line.strip() == BEGIN_SOLUTION for line in lines):
        out, inside = [], False
        for line in lines:
            if line.strip() == BEGIN_SOLUTION:
                inside = True
                out += _stub(task, indent=line[: len(line) - len(line.lstrip())])
            elif line.strip() == END_SOLUTION:
                if not inside:
                    raise ValueError(f"{END_SOLUTION!r} without {BEGIN_SOLUTION!r} in a solution cell")
                inside = False
            elif not inside:
                out.append(line)
        if inside:
            raise ValueError(f"{BEGIN_SOLUTION!r} without {END_SOLUTION!r} in a solution cell")
        return "\n".join(out)
    comments = []
    for line in lines:
        if not line.startswith("#"):
            break
        comments.append(line)
    return "\n".join(comments + _stub(task))


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


def student_version(notebook: nbformat.NotebookNode, *, source: str | None = None) -> nbformat.NotebookNode:
    """A copy of ``notebook`` for students: solution code stubbed, written solutions and all outputs removed.

    Raises:
      ValueError: a ``solution`` tag on a markdown cell, or unbalanced ``### BEGIN/END SOLUTION`` lines.
    """
    student = copy.deepcopy(notebook)
    cells = []
    inside_gate = False
    exercise = 0
    for index, cell in enumerate(student.cells):
        tags = _tags(cell)
        if cell.cell_type == "markdown":
            if SOLUTION_TAG in tags:
                raise ValueError(f"cell {index}: the 'solution' tag is for code cells; use a {{solution}} directive")
            text, inside_gate = strip_written_solutions(cell.source, inside_gate=inside_gate)
            if text.strip():
                cell.source = text
                cells.append(cell)
            continue
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
            if SOLUTION_TAG in tags or inside_gate:
                exercise += 1
                cell.source = _stub_source(cell.source, f"solution cell {exercise}: replace this line with your code")
                if SOLUTION_TAG not in tags:
                    cell.metadata["tags"] = tags + [SOLUTION_TAG]
        cells.append(cell)
    student.cells = cells
    student.metadata["kdwide_assignment"] = {"version": "student", "source": source}
    return student


def assignment_summary(notebook: nbformat.NotebookNode) -> dict[str, float]:
    """Counts of ``solution`` and ``autograde`` code cells and of their points."""
    code = [c for c in notebook.cells if c.cell_type == "code"]
    checks = [c for c in code if AUTOGRADE_TAG in _tags(c)]
    return {"solution_cells": sum(SOLUTION_TAG in _tags(c) for c in code), "checks": len(checks),
            "points": sum(_points(c) for c in checks)}


def _points(cell: Any) -> float:
    points = cell.get("metadata", {}).get("points", 1)
    if not isinstance(points, (int, float)) or isinstance(points, bool) or points < 0:
        raise ValueError(f"autograde cell metadata 'points' must be a number >= 0, got {points!r}")
    return float(points)


@dataclass
class Check:
    """The outcome of one ``autograde`` cell."""

    cell: int
    name: str
    points: float
    passed: bool
    message: str = ""


@dataclass
class GradeReport:
    """What :func:`grade` found: the checks, the solution cells left as stubs, and other errors."""

    notebook: str
    checks: list[Check] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum((c.points for c in self.checks if c.passed), 0.0)

    @property
    def max_score(self) -> float:
        return sum((c.points for c in self.checks), 0.0)

    @property
    def passed(self) -> bool:
        """Every check passed (and there is at least one)."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    def feedback(self) -> str:
        """A readable report for the student."""
        lines = [f"{self.notebook}: {self.score:g} / {self.max_score:g} points, "
                 f"{sum(c.passed for c in self.checks)} of {len(self.checks)} checks passed"]
        if not self.checks:
            lines.append("  this notebook has no autograded checks (no cell tagged 'autograde')")
        for cell in self.unfinished:
            lines.append(f"  NOT DONE  cell {cell}: still the stub (raises NotImplementedError); write your code there")
        for check in self.checks:
            status = "PASS" if check.passed else "FAIL"
            lines.append(f"  {status:<8}  {check.name} ({check.points:g} point{'s' if check.points != 1 else ''})"
                         + ("" if check.passed else f": {check.message}"))
        for error in self.errors:
            lines.append(f"  ERROR     {error}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"notebook": self.notebook, "score": self.score, "max_score": self.max_score, "passed": self.passed,
                "checks": [asdict(c) for c in self.checks], "unfinished": self.unfinished, "errors": self.errors}


def _error_of(cell: Any) -> dict[str, str] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return {"ename": output.get("ename", ""), "evalue": output.get("evalue", "")}
    return None


def _check_name(cell: Any, index: int) -> str:
    for line in cell.source.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip() or f"check in cell {index}"
    return f"check in cell {index}"


def grade(
    path: str | Path, *, timeout: int = 600, kernel_name: str = "python3", cwd: str | Path | None = None
) -> GradeReport:
    """Execute the notebook at ``path`` in a fresh kernel and grade its ``autograde`` cells.

    Every cell runs, in order, even after an error, so one unfinished exercise does not hide the others.
    Cells are numbered from 0 in the report, as in the notebook.

    Args:
      path: the completed notebook (a student version filled in, or the instructor's chapter).
      timeout: seconds per cell.
      kernel_name: Jupyter kernel.
      cwd: working directory of the kernel (default: the notebook's folder).
    """
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    workdir = Path(cwd) if cwd is not None else path.resolve().parent
    execute(notebook, cwd=workdir, timeout=timeout, kernel_name=kernel_name, allow_errors=True)
    report = GradeReport(notebook=str(path))
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        error = _error_of(cell)
        tags = _tags(cell)
        if AUTOGRADE_TAG in tags:
            message = "" if error is None else f"{error['ename']}: {error['evalue']}".rstrip(": ")
            if error is not None and report.unfinished:
                message += f" (the solution stub in cell {report.unfinished[-1]} above is not done yet)"
            report.checks.append(Check(cell=index, name=_check_name(cell, index), points=_points(cell),
                                       passed=error is None, message=message))
        elif error is not None:
            if SOLUTION_TAG in tags and error["ename"] == "NotImplementedError":
                report.unfinished.append(index)
            else:
                report.errors.append(f"cell {index} raised {error['ename']}: {error['evalue']}")
    return report


def build_assignments(out_dir: str | Path, notebooks: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Write ``OUT/student/NAME.ipynb`` and ``OUT/instructor/NAME.ipynb`` (outputs cleared) for each notebook,
    and ``OUT/README.md``; return one summary row per notebook."""
    out_dir = Path(out_dir)
    for sub in ("student", "instructor"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for path in map(Path, notebooks):
        notebook = nbformat.read(path, as_version=4)
        instructor = copy.deepcopy(notebook)
        for cell in instructor.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        instructor.metadata["kdwide_assignment"] = {"version": "instructor", "source": str(path)}
        nbformat.write(instructor, out_dir / "instructor" / path.name)
        student = student_version(notebook, source=str(path))
        nbformat.write(student, out_dir / "student" / path.name)
        rows.append({"notebook": path.name, **assignment_summary(notebook),
                     "stubs": assignment_summary(student)["solution_cells"]})
    table = "\n".join(f"| `{r['notebook']}` | {r['stubs']} | {r['checks']} | {r['points']:g} |" for r in rows)
    (out_dir / "README.md").write_text(f"""# Assignments

Generated by `make assignments` from the chapters of the book. Do not edit: re-generate.

- `student/`: hand these out. Solution code is replaced by `{STUB_MARKER}` stubs that raise
  `NotImplementedError`; written solutions and outputs are removed. Cells tagged `autograde` are the checks.
- `instructor/`: the same notebooks with the solutions (outputs cleared).

Grade a completed notebook (it is executed top to bottom in a fresh kernel; exit status 0 iff every check passes):

```bash
.venv/bin/python -m kdwide_book.assignments grade student/NAME.ipynb --json report.json
```

| notebook | stubs | autograded checks | points |
|---|---|---|---|
{table}
""")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdwide_book.assignments", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="student and instructor versions of the chapters")
    build.add_argument("--out", type=Path, default=Path("_build/assignments"))
    build.add_argument("notebooks", nargs="*", type=Path, help="default: the chapters of _toc.yml")
    grader = commands.add_parser("grade", help="execute a completed notebook and grade its autograde cells")
    grader.add_argument("notebook", type=Path)
    grader.add_argument("--json", type=Path, help="also write the report as JSON here")
    grader.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.command == "build":
        from kdwide_book.book import chapter_notebooks

        rows = build_assignments(args.out, args.notebooks or chapter_notebooks())
        for row in rows:
            print(f"{row['notebook']}: {row['stubs']} solution stubs, {row['checks']} autograded checks "
                  f"({row['points']:g} points)")
        print(f"student and instructor notebooks in {args.out}/ (see {args.out / 'README.md'})")
        return 0
    report = grade(args.notebook, timeout=args.timeout)
    print(report.feedback())
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
