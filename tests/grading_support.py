"""Helpers shared by the grading tests: submissions made from a student notebook, and chapter 1's quick fixture."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_1 = ROOT / "book" / "01_effective_logit.ipynb"


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def submission(source: Path, folder: Path, edit: Callable[[nbformat.NotebookNode], object] | None = None) -> None:
    """Write ``source`` (edited by ``edit``) into the student folder ``folder``, under its own file name."""
    notebook = read(source)
    if edit is not None:
        edit(notebook)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / source.name)


def replace_answer(notebook: nbformat.NotebookNode, name: str, code: str) -> None:
    """Replace the stub of the answer function ``name`` (student version: ``def name(...):\\n    ...``) with ``code``."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and f"def {name}(" in c.source]
    stub = re.compile(rf"def {name}\(.*?\n    \.\.\.\n", flags=re.DOTALL)
    assert stub.search(cell.source), cell.source
    cell.source = stub.sub(lambda _: code.strip() + "\n", cell.source)


def answers(codes: dict[str, str]) -> Callable[[nbformat.NotebookNode], None]:
    """An edit that replaces every answer function named in ``codes``."""
    return lambda notebook: [replace_answer(notebook, name, code) for name, code in codes.items()] and None


def append_cells(*sources: str) -> Callable[[nbformat.NotebookNode], None]:
    """An edit that appends code cells at the end of the notebook."""
    def edit(notebook: nbformat.NotebookNode) -> None:
        for source in sources:
            cell = new_code_cell(source)
            if notebook.nbformat_minor < 5:
                cell.pop("id", None)  # the student notebooks are nbformat 4.4 (otter's), which has no cell ids
            notebook.cells.append(cell)
    return edit


def chain(*edits: Callable[[nbformat.NotebookNode], object]) -> Callable[[nbformat.NotebookNode], None]:
    def edit(notebook: nbformat.NotebookNode) -> None:
        for step in edits:
            step(notebook)
    return edit


def tamper(notebook: nbformat.NotebookNode) -> None:
    """Every check cell becomes ``assert True``; every cell's tags and otter metadata go (the notebook's own otter
    metadata, which names the assignment, stays)."""
    for cell in notebook.cells:
        if cell.cell_type == "code" and "grader.check" in cell.source:
            cell.source = "assert True"
        cell.metadata.pop("tags", None)
        cell.metadata.pop("otter", None)


HARD_CODED = {  # chapter 1's printed answers, typed in
    "effective_logit_root": "def effective_logit_root(z_t, y_g, *, rho, temperature):\n    return -0.09489291536840946",
    "flip_soft_ratio": "def flip_soft_ratio(z_t, *, temperature):\n    return 0.5249",
}

ALTERNATIVE = {  # correct, but not the instructor's way (chapter 1): bisection by hand, brentq on kdwide's effective logit
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

QUICK_SETUP = """import numpy as np
import kdwide
from kdwide import effective_logit"""


def quick_chapter_1(folder: Path) -> Path:
    """Chapter 1 cut down to its parameters, a light import cell and its Discussion and Exercises (both graded
    questions, as in the book): the same assignment, graded in seconds instead of half a minute."""
    chapter = read(CHAPTER_1)
    start = next(i for i, c in enumerate(chapter.cells) if c.cell_type == "markdown" and "## Discussion" in c.source)
    parameters = next(c for c in chapter.cells if "parameters" in c.metadata.get("tags", []))
    setup = new_code_cell(QUICK_SETUP)
    setup.pop("id", None) if chapter.nbformat_minor < 5 else None
    chapter.cells = [parameters, setup] + chapter.cells[start:]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(chapter, folder / CHAPTER_1.name)
    return folder / CHAPTER_1.name
