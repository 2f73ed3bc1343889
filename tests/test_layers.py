"""The package's layers: kdwide (core) <- kdwide.experiments <- kdwide_book (tooling); imports run that way only.
Also: nothing in src/ writes a file except through kdwide_book.results (atomic writes, the append-only log)."""

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


def test_the_sphinx_extensions_and_the_book_module_import_neither_jax_nor_the_science() -> None:
    code = ("import sys, kdwide_book.sphinx_extension, kdwide_book.explorers, kdwide_book.book; "
            "assert not {'jax', 'kdwide'} & set(sys.modules), 'imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_tooling_package_itself_imports_nothing() -> None:
    """``PYTHONPATH=src python -m kdwide_book.device_check`` on a bare GPU machine imports kdwide_book first."""
    tree = ast.parse((SOURCE / "kdwide_book" / "__init__.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]


# ------------------------------------------------------------------------------------------ writing files

WRITERS = {("kdwide_book/results.py", "atomic_write"), ("kdwide_book/results.py", "JsonLinesLog")}
"""The only places in src/ that write files: whole files atomically, and the append-only log (the sweep's status
log: rewriting a growing file for every line would cost its whole size each time)."""

PENDING_NON_ATOMIC_WRITERS: dict[str, str] = {}
"""Files whose writes are still being made atomic on other branches (the scan skips them; empty this at merge)."""

_OPENERS = {"open", "fdopen", "ZipFile", "TarFile"}
_WRITING_FUNCTIONS = {"write_text", "write_bytes", "savefig", "savez", "savez_compressed", "savetxt", "to_pickle",
                      "to_excel", "to_hdf", "to_feather", "to_sql", "to_stata", "copyfile", "copytree", "make_archive"}
_SHUTIL_COPIES = {"copy", "copy2", "copyfile", "copytree", "copyfileobj", "make_archive", "move"}
_WRITING_WITH_PATH = {"to_csv", "to_parquet", "to_json", "to_html", "to_latex", "to_markdown", "to_string", "write_html",
                      "write_image"}
_STREAM_DUMPS = {("json", "dump"), ("pickle", "dump"), ("yaml", "dump"), ("yaml", "safe_dump"), ("nbformat", "write"),
                 ("np", "save"), ("numpy", "save"), ("np", "savez"), ("numpy", "savez")}
_WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"}


def _name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _open_mode(call: ast.Call, name: str, owner: str) -> ast.AST | None:
    """The mode argument of an ``open``-like call (None: the default, reading)."""
    keyword = next((k.value for k in call.keywords if k.arg == "mode"), None)
    if keyword is not None:
        return keyword
    if isinstance(call.func, ast.Attribute) and name == "open" and owner not in ("io", "tarfile", "gzip", "codecs"):
        return call.args[0] if call.args else None  # Path(...).open(MODE)
    return call.args[1] if len(call.args) > 1 else None


def _writes_a_file(call: ast.Call, buffers: set[str]) -> bool:
    """Whether ``call`` writes a file: an open for writing, a write_text, a dump to a stream, a copy, ..."""
    name = _name(call.func)
    owner = _name(call.func.value) if isinstance(call.func, ast.Attribute) else ""
    if name == "open" and owner == "os":
        flags = {node.attr for node in ast.walk(call.args[1]) if isinstance(node, ast.Attribute)} if len(call.args) > 1 else set()
        devnull = bool(call.args) and _name(call.args[0]) == "devnull"
        return bool(flags & _WRITE_FLAGS) and not devnull
    if name == "ZipFile" and call.args and isinstance(call.args[0], ast.Name) and call.args[0].id in buffers:
        return False  # a zip archive built in memory (io.BytesIO)
    if name in _OPENERS:
        mode = _open_mode(call, name, owner)
        return mode is not None and (not isinstance(mode, ast.Constant) or any(flag in str(mode.value) for flag in "wax+"))
    if (owner, name) in _STREAM_DUMPS and owner in ("yaml", "json", "pickle"):
        # yaml.safe_dump(data) and json.dumps return strings: only a stream argument writes
        return len(call.args) > 1 or any(k.arg == "stream" for k in call.keywords)
    if name in _WRITING_FUNCTIONS or (owner, name) in _STREAM_DUMPS or (owner == "shutil" and name in _SHUTIL_COPIES):
        return True
    if name in _WRITING_WITH_PATH and call.args:
        target = call.args[0]
        return not (isinstance(target, ast.Name) and target.id in buffers)
    return False


def file_writes(source: str) -> list[tuple[int, str]]:
    """``(line, enclosing function or class)`` of every call in ``source`` that writes a file (module level: "")."""
    tree = ast.parse(source)
    buffers = {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
               and isinstance(node.value, ast.Call) and _name(node.value.func) in ("BytesIO", "StringIO")
               for target in node.targets if isinstance(target, ast.Name)}
    writes: list[tuple[int, str]] = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not scope else scope
            if isinstance(child, ast.Call) and _writes_a_file(child, buffers):
                writes.append((child.lineno, scope))
            visit(child, inner)

    visit(tree, "")
    return writes


def test_the_file_write_scan_can_fail() -> None:
    samples = {
        "open(path, 'w').write(text)": 1, "open(path, mode='ab')": 1, "open(path)": 0, "open(path, 'rb')": 0,
        "Path(p).write_text(t)": 1, "p.write_bytes(b)": 1, "json.dump(value, handle)": 1, "json.dumps(value)": 0,
        "nbformat.write(notebook, path)": 1, "nbformat.writes(notebook)": 0, "path.open('w')": 1, "path.open()": 0,
        "os.open(path, os.O_WRONLY | os.O_CREAT)": 1, "os.open(path, os.O_RDONLY)": 0,
        "os.open(os.devnull, os.O_WRONLY)": 0, "shutil.copyfile(a, b)": 1, "table.to_csv('t.csv')": 1,
        "table.to_csv(index=False)": 0, "table.copy()": 0, "shutil.copy(a, b)": 1, "buffer = io.BytesIO()\ntable.to_parquet(buffer)": 0,
        "table.to_parquet(path)": 1, "figure.savefig('f.png')": 1, "open(path, mode)": 1, "yaml.safe_dump(d, f)": 1, "yaml.safe_dump(d)": 0,
        "zipfile.ZipFile(path, 'w')": 1, "zipfile.ZipFile(path)": 0,
    }
    for source, count in samples.items():
        assert len(file_writes(source)) == count, source
    assert file_writes("def atomic_write(p):\n    open(p, 'wb')\n") == [(2, "atomic_write")]
    assert file_writes("class Log:\n    def __init__(self, p):\n        open(p, 'ab')\n") == [(3, "Log")]


def test_nothing_in_src_writes_a_file_except_through_results() -> None:
    """Every file the project writes goes through kdwide_book.results (atomic_write, write_json, JsonLinesLog)."""
    found = []
    for path in _files(SOURCE):
        relative = path.relative_to(SOURCE).as_posix()
        if relative in PENDING_NON_ATOMIC_WRITERS:
            continue
        for line, scope in file_writes(path.read_text()):
            if (relative, scope) not in WRITERS:
                found.append(f"src/{relative}:{line} ({scope or 'module level'})")
    assert not found, "files written outside kdwide_book.results.atomic_write / JsonLinesLog: " + ", ".join(found)


def test_the_known_writers_are_where_the_scan_finds_them() -> None:
    """The allowed writers exist: a renamed atomic_write would otherwise leave this test passing for nothing."""
    scopes = {(relative, scope) for relative in {r for r, _ in WRITERS}
              for _, scope in file_writes((SOURCE / relative).read_text())}
    assert scopes == WRITERS
