"""The package's layers: kdwide (core) <- kdwide.experiments <- kdwide_book (tooling); imports run that way only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
EXPERIMENTS = SOURCE / "kdwide" / "experiments"
EXPERIMENT_MODULES = {p.stem for p in EXPERIMENTS.glob("*.py") if p.stem != "__init__"}


def imported_modules(source: str) -> set[str]:
    """Absolute module names a source imports; ``from package import name`` counts as ``package.name`` too."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer_violations(layer: str, source: str, own_module: str = "") -> list[str]:
    """The imports in ``source`` that break the layer rule for a module of ``layer`` ("core" or "experiments")."""
    bad = []
    for module in sorted(imported_modules(source)):
        tooling = module == "kdwide_book" or module.startswith("kdwide_book.")
        experiment = module.startswith("kdwide.experiments.") and module.split(".")[2] in EXPERIMENT_MODULES
        if tooling or (layer == "core" and module.startswith("kdwide.experiments")):
            bad.append(module)
        elif layer == "experiments" and experiment and module.split(".")[2] != own_module:
            bad.append(module)
    return bad


def _files(folder: Path, *, skip: Path | None = None) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if skip is None or skip not in p.parents)


@pytest.mark.parametrize("path", _files(SOURCE / "kdwide", skip=EXPERIMENTS), ids=lambda p: p.name)
def test_core_imports_neither_experiments_nor_tooling(path: Path) -> None:
    assert not layer_violations("core", path.read_text()), f"{path}: imports a higher layer"


@pytest.mark.parametrize("path", _files(EXPERIMENTS), ids=lambda p: p.name)
def test_experiments_import_no_tooling_and_no_other_experiment(path: Path) -> None:
    assert not layer_violations("experiments", path.read_text(), path.stem), f"{path}: imports tooling or another experiment"


def test_the_layer_check_can_fail() -> None:
    assert layer_violations("core", "from kdwide.experiments import risk_bound\n") == [
        "kdwide.experiments", "kdwide.experiments.risk_bound"]
    assert layer_violations("core", "import kdwide_book.results\n") == ["kdwide_book.results"]
    assert layer_violations("experiments", "from kdwide.experiments.risk_bound import claims\n", "landscape")
    assert layer_violations("experiments", "from kdwide.experiments import imperfect_teacher\n", "landscape")
    assert not layer_violations("experiments", "from kdwide.experiments import claim\nfrom kdwide import tasks\n", "x")


def test_every_experiment_decides_its_claims_in_one_function() -> None:
    for name in EXPERIMENT_MODULES:
        tree = ast.parse((EXPERIMENTS / f"{name}.py").read_text())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert "claims" in functions, f"kdwide.experiments.{name} has no claims(records, ...)"


def test_the_sphinx_extension_imports_neither_jax_nor_the_science() -> None:
    code = ("import sys, kdwide_book.book, kdwide_book.explorers; "
            "assert not {'jax', 'kdwide'} & set(sys.modules), 'imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
