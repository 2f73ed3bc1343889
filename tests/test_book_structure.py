"""The shape every chapter notebook listed in _toc.yml must have.

- the first code cell is tagged ``parameters``, sets ``profile = "ci"`` and ``results_path = None``, has ``seed`` (and
  ``n_seeds`` where it repeats, never a ``seeds`` list), and every name in it has a rule in
  ``kdwide_book.parameters.RULES``; the next code cell makes the one setup call (``setup_chapter``);
- the chapter ends with an "Exercises" section of 2-6 ``{exercise}`` directives (written exercises and graded
  questions), each with a label and a ``{solution}`` (or gated ``{solution-start}``) for that label behind a toggle
  (``:class: dropdown``);
- the answer code cells of graded questions (otter's ``# BEGIN SOLUTION`` blocks, for ``make assignments``) sit
  inside a gated ``{solution-start}`` ... ``{solution-end}`` block, so the book hides them behind the same toggle;
- it shows at least one figure, and its PNG figures are high-DPI (retina: twice the pixels of their display size);
- its sections are the same in every chapter: Aim, Parameters, Theory, Practice, Claims, Discussion, Exercises;
- no code cell decides a claim: one cell calls its experiment's ``claims(...)`` and prints what it returns.
"""

from __future__ import annotations

import ast
import base64
import re
import struct
from pathlib import Path

import nbformat
import pytest

from kdwide_book.assignments import cell_roles, strip_written_solutions
from kdwide_book.book import chapter_notebooks
from kdwide_book.parameters import RULES

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = chapter_notebooks(ROOT)
DIRECTIVE = re.compile(r"^[ \t]*(?P<fence>`{3,}|:{3,})\{(?P<name>exercise|exercise-start|solution|solution-start)\}"
                       r"[ \t]*(?P<argument>\S*)[ \t]*$", re.MULTILINE)


def directives(markdown: str) -> list[dict[str, str]]:
    """The exercise/solution directives of a markdown text: name, argument, options (``:key: value`` lines)."""
    found = []
    for match in DIRECTIVE.finditer(markdown):
        options = {}
        for line in markdown[match.end():].lstrip("\n").splitlines():
            option = re.match(r"^[ \t]*:([a-z-]+):[ \t]*(.*)$", line)
            if not option:
                break
            options[option[1]] = option[2].strip()
        found.append({"name": match["name"], "argument": match["argument"], **options})
    return found


def png_width(data: str) -> int:
    raw = base64.b64decode(data)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">I", raw[16:20])[0]


def test_the_table_of_contents_lists_chapters() -> None:
    assert CHAPTERS, "_toc.yml lists no chapter notebook (book/NN_name.ipynb)"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_parameters_cell_comes_first_and_is_validated(path: Path) -> None:
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", []), f"{path}: first code cell is not tagged 'parameters'"
    assert re.search(r'^profile = "ci"$', code[0].source, re.MULTILINE), f"{path}: parameters cell lacks profile = \"ci\""
    assert re.search(r"^results_path = None$", code[0].source, re.MULTILINE), f"{path}: parameters cell lacks results_path = None"
    call = f'setup_chapter(globals(), chapter="{path.stem}"'
    assert len(code) > 1 and call in code[1].source, (
        f"{path}: the code cell after the parameters must be the setup call ({call}, ...))")
    names = [t.id for node in ast.parse(code[0].source).body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)]
    assert not set(names) - set(RULES), f"{path}: parameters without a rule in kdwide_book.parameters.RULES: " \
        f"{sorted(set(names) - set(RULES))}"
    assert "seed" in names and "seeds" not in names, f"{path}: one seed convention: `seed` (+ `n_seeds`), no `seeds`"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_ends_with_exercises_and_toggled_solutions(path: Path) -> None:
    cells = nbformat.read(path, as_version=4).cells
    headings = [(i, line) for i, c in enumerate(cells) if c.cell_type == "markdown"
                for line in c.source.splitlines() if re.match(r"^#{1,2} ", line)]
    exercises_at = [i for i, line in headings if re.match(r"^## Exercises\b", line)]
    assert exercises_at, f"{path}: no '## Exercises' section"
    later = [line for i, line in headings if i > exercises_at[-1]]
    assert not later, f"{path}: the Exercises section must end the chapter; headings after it: {later}"
    found = [(i, d) for i, c in enumerate(cells) if c.cell_type == "markdown" for d in directives(c.source)]
    exercises = [(i, d) for i, d in found if d["name"].startswith("exercise")]
    solutions = {d["argument"]: d for _, d in found if d["name"].startswith("solution")}
    assert 2 <= len(exercises) <= 6, f"{path}: {len(exercises)} exercises (want 2-6)"
    assert all(i >= exercises_at[-1] for i, _ in exercises), f"{path}: an exercise comes before the Exercises section"
    for _, exercise in exercises:
        label = exercise.get("label")
        assert label, f"{path}: an exercise has no :label: (its solution refers to it)"
        assert label in solutions, f"{path}: exercise {label!r} has no solution"
        assert "dropdown" in solutions[label].get("class", "").split(), (
            f"{path}: the solution of {label!r} is not behind a toggle (add ':class: dropdown')")


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_solution_code_cells_are_hidden_in_gated_solutions(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    roles = cell_roles(notebook)
    for index, (cell, role) in enumerate(zip(notebook.cells, roles)):
        if cell.cell_type == "code" and role["block"] == "solution":
            assert role["gated"], (f"{path}: code cell {index} is the answer of question {role['question']} but is not "
                                   "inside a {solution-start} ... {solution-end} block, so the book shows it to every reader")
    inside_gate = False
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            _, inside_gate = strip_written_solutions(cell.source, inside_gate=inside_gate)
    assert not inside_gate, f"{path}: a {{solution-start}} block is never closed by {{solution-end}}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_shows_high_dpi_figures(path: Path) -> None:
    figures = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                figures.append((png_width(output["data"]["image/png"]),
                                output.get("metadata", {}).get("image/png", {}).get("width")))
            elif "image/svg+xml" in output.get("data", {}):
                figures.append((None, None))
    assert figures, (f"{path}: no figure in the stored outputs. If the chapter plots, its kernel ran a non-inline "
                     "matplotlib backend (MPLBACKEND=Agg is exported by the Makefile and inherited by the kernel): "
                     "put `%matplotlib inline` before `%config InlineBackend.figure_format = \"retina\"` and re-execute")
    for pixels, shown in figures:
        if pixels is not None:
            assert shown is not None and pixels >= 1.5 * shown, (
                f"{path}: a PNG figure of {pixels} px shown at {shown} px is not high-DPI (use the retina format)")


SKELETON = ["Aim", "Parameters", "Theory", "Practice", "Claims", "Discussion", "Exercises"]
CLAIM_DECISION = re.compile(r"\bclaim\(|[\"']holds[\"']\s*:|\bholds\s*=(?!=)|\bholds=")


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_has_the_same_sections(path: Path) -> None:
    sections = [line[3:].strip() for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]
    assert sections == SKELETON, f"{path}: sections {sections}, expected {SKELETON} (subsections are ###)"


def claim_decisions(source: str) -> list[str]:
    """The places in a code cell that build a claim entry instead of printing one from the library."""
    return CLAIM_DECISION.findall(source)


def test_the_claim_scan_can_fail() -> None:
    assert claim_decisions('c1 = claim(x < 1e-12, "evidence")')
    assert claim_decisions('claims = {"C1": {"holds": bool(ok), "evidence": ""}}')
    assert claim_decisions("holds = ratio > 3")
    assert not claim_decisions('claims = rb.claims(records)\nprint(entry["holds"], holds == True)')


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_claims_are_decided_by_the_library_not_the_notebook(path: Path) -> None:
    code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    decisions = [(i, claim_decisions(source)) for i, source in enumerate(code) if claim_decisions(source)]
    assert not decisions, f"{path}: code cells decide claims themselves: {decisions}"
    callers = [source for source in code if re.search(r"\b\w+\.claims\(", source)]
    assert len(callers) == 1, f"{path}: {len(callers)} cells call an experiment's claims(...) (want exactly one)"
