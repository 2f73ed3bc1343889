"""Resumable parameter sweeps of chapter notebooks (papermill-style parameters), on local processes or a Dask cluster.

A sweep runs one notebook at every point of a grid (the Cartesian product of the values given per
parameter, seeds last) with ``results_path`` set, and gathers the ``records`` of every results file
(:mod:`kdwide_book.results`) into one tidy table. The command line is ``kdwide sweep`` (:mod:`kdwide_book.cli`);
:func:`run_sweep` is the same thing as a function.

Out folder layout::

    OUT/manifest.json                     what ran: notebook, grid, versions, one entry per point
    OUT/table.csv, OUT/table.parquet      every record of every finished point (column ``point`` first)
    OUT/points/POINT/results.json         the notebook's results file: present <=> POINT is finished
    OUT/points/POINT/notebook.ipynb       the executed notebook of a finished point
    OUT/points/POINT/failed.ipynb, error.txt   the executed notebook and error of a point whose last run failed
    OUT/.work/                            temporary folders of running points (emptied by every run)

Resuming: a point is finished exactly when its ``results.json`` exists. Every file the runner writes
is written to a temporary file in the same folder and renamed into place, and ``results.json`` is
written last, so a sweep killed at any moment (SIGINT or SIGKILL) leaves no half-written file that
counts as finished; running the same command again skips the finished points and runs the others.
``POINT`` (:func:`point_id`) is a readable slug of the point's parameters plus a hash of them, so the
same parameters always map to the same folder (``1`` and ``1.0`` are the same value there).

Where the work runs: :func:`execute_point` runs one point in a temporary folder and returns the
executed notebook and results file as text; only the process that called :func:`run_sweep` writes
into the out folder. The same function runs in a pool of ``jobs`` local processes or on the workers
of an existing Dask cluster (``scheduler=ADDRESS``; the workers need
kdwide and the Jupyter kernel installed, not the out folder).
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import fcntl
import hashlib
import io
import itertools
import json
import os
import platform
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from kdwide.validation import check_positive_int
from kdwide_book.notebooks import execute
from kdwide_book.parameters import validate_parameter
from kdwide_book.results import atomic_write, package_versions, read_results, to_jsonable

__all__ = [
    "LIST_SUFFIX",
    "POINT_SEPARATOR",
    "PointOutcome",
    "PointTask",
    "SweepPoint",
    "SweepSummary",
    "execute_point",
    "is_list_parameter",
    "notebook_parameters",
    "parse_grid",
    "parse_scalar",
    "parse_seeds",
    "parse_values",
    "plan_sweep",
    "point_id",
    "read_sweep_table",
    "run_sweep",
    "sweep_table",
]

LIST_SUFFIX = "_values"
"""Parameters whose name ends with this (or whose notebook default is a list) take a list per point."""

POINT_SEPARATOR = ";"
"""Separates grid points in the value text of a list-valued parameter: ``"0,0.5;0.5,1"`` is two points."""

RESERVED = ("results_path",)
"""Parameters the runner sets itself."""


# ----------------------------------------------------------------------------------------- parsing


def parse_scalar(text: str) -> Any:
    """One value from the command line: ``None``/``null`` → None, ``true``/``false`` → bool, integers → int,
    other numbers (``0.5``, ``1e-3``) → float, anything else → str (surrounding quotes removed, so ``'1'`` is the
    string ``"1"``)."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if re.fullmatch(r"[+-]?\d+", stripped):
        return int(stripped)
    try:
        return float(stripped)
    except ValueError:
        pass
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        return stripped[1:-1]
    return stripped


def parse_values(text: str, *, list_valued: bool = False) -> list[Any]:
    """The grid values of one parameter from its command-line text.

    Scalar parameters: comma-separated values, one grid point each (``"0,0.25,0.5"`` → ``[0, 0.25, 0.5]``).
    List-valued parameters: each point is a comma-separated list and points are separated by
    :data:`POINT_SEPARATOR` (``"0.5,1"`` → ``[[0.5, 1]]``, one point; ``"0.5,1;0,1"`` → two points).
    """
    if list_valued:
        return [[parse_scalar(item) for item in chunk.split(",")] for chunk in text.split(POINT_SEPARATOR)]
    return [parse_scalar(item) for item in text.split(",")]


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``"0-4"`` (inclusive range), ``"0,2,7"`` or a mix (``"0-2,10"``). Raises ``ValueError``."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise ValueError(f"--seeds must look like '0-4', '0,2,7' or '0-2,10' (integers >= 0), got {text!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"--seeds range {part!r} runs backwards")
        seeds.extend(range(first, last + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r} names a seed twice")
    return seeds


class _Expression:
    """Default of a parameter that is not a Python literal (shown as its source text)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        return self.source


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters``-tagged cell, parsed with :mod:`ast`.

    Defaults that are not literals are returned as an object whose ``repr`` is their source text.
    Raises ``ValueError`` if the notebook has no ``parameters`` cell or it is not valid Python.
    """
    path = Path(notebook)
    with open(path) as handle:
        document = json.load(handle)
    for cell in document.get("cells", []):
        if cell.get("cell_type") != "code" or "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError as exc:
            raise ValueError(f"{path}: the parameters cell is not valid Python ({exc.msg}, line {exc.lineno})") from None
        defaults: dict[str, Any] = {}
        for statement in tree.body:
            for name, node in _assignments(statement):
                try:
                    defaults[name] = ast.literal_eval(node)
                except ValueError:
                    defaults[name] = _Expression(ast.unparse(node))
        return defaults
    raise ValueError(f"{path}: no code cell tagged 'parameters' (parameters are injected after it)")


def _assignments(statement: ast.stmt) -> Iterator[tuple[str, ast.expr]]:
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value is not None:
        yield statement.target.id, statement.value
    elif isinstance(statement, ast.Assign):
        for target in statement.targets:
            if isinstance(target, ast.Name):
                yield target.id, statement.value
            elif isinstance(target, ast.Tuple) and isinstance(statement.value, ast.Tuple):
                for element, value in zip(target.elts, statement.value.elts):
                    if isinstance(element, ast.Name):
                        yield element.id, value


def is_list_parameter(name: str, default: Any = None) -> bool:
    """Whether a parameter takes a list per grid point: its name ends with ``_values`` or its default is a list."""
    return name.endswith(LIST_SUFFIX) or isinstance(default, (list, tuple))


def parse_grid(pairs: Iterable[tuple[str, str]], defaults: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Grid from ``(name, text)`` pairs (``-p NAME VALUES``); ``defaults`` from :func:`notebook_parameters`
    decides which names are list-valued. Raises ``ValueError`` for a name given twice."""
    grid: dict[str, list[Any]] = {}
    for name, text in pairs:
        if name in grid:
            raise ValueError(f"parameter {name!r} is given twice; put all its values in one -p (comma-separated)")
        grid[name] = parse_values(text, list_valued=is_list_parameter(name, defaults.get(name)))
    return grid


# ------------------------------------------------------------------------------------------ points


def _canonical(value: Any) -> Any:
    """JSON-ready form used for point identity: integral floats become ints (so 1 and 1.0 are one point)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    raise ValueError(f"sweep values must be numbers, strings, booleans, None or lists of them, got {value!r}")


def _slug_value(value: Any) -> str:
    if isinstance(value, list):
        return "-".join(_slug_value(v) for v in value)
    return str(value)


def point_id(parameters: Mapping[str, Any]) -> str:
    """Stable folder name of a grid point: ``rho=0.25_seed=0_temperature=4__1a2b3c4d5e``.

    A readable slug (names sorted, at most 80 characters) plus the first 10 hex digits of the SHA-256 of the
    canonical JSON of the parameters; the same parameters always give the same id.
    """
    canonical = _canonical(dict(parameters))
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:10]
    slug = "_".join(f"{name}={_slug_value(canonical[name])}" for name in sorted(canonical))
    slug = re.sub(r"[^A-Za-z0-9.=+-]+", "_", slug)[:80].strip("_") or "point"
    return f"{slug}__{digest}"


@dataclass(frozen=True)
class SweepPoint:
    """One grid point: its id (folder name) and the parameters injected into its notebook (``results_path`` aside)."""

    id: str
    parameters: dict[str, Any]

    def folder(self, out: str | os.PathLike) -> Path:
        """``OUT/points/ID``."""
        return Path(out) / "points" / self.id


def plan_sweep(
    notebook: str | os.PathLike,
    grid: Mapping[str, Sequence[Any]],
    *,
    seeds: Sequence[int] | None = None,
) -> list[SweepPoint]:
    """Check a sweep and list its points, running nothing.

    Args:
      notebook: path of the chapter notebook (it needs a ``parameters`` cell that defines ``results_path``).
      grid: parameter name → the values to sweep (one list per parameter; for list-valued parameters each
        value is itself a list). Every name must be defined in the notebook's ``parameters`` cell.
      seeds: values of ``seed``, swept last (the same as ``grid["seed"]``).

    Returns:
      The points of the Cartesian product, in grid order (first parameter slowest, seeds fastest).

    Raises:
      ValueError: unknown parameter name, a value the shared rules (:func:`kdwide_book.parameters.validate_parameter`)
        reject, a list-valued parameter given a scalar, an empty axis, or a value given twice.
    """
    notebook = Path(notebook)
    if not notebook.is_file():
        raise ValueError(f"notebook {str(notebook)!r} does not exist")
    defaults = notebook_parameters(notebook)
    if "results_path" not in defaults:
        raise ValueError(f"{notebook}: its parameters cell must define results_path (the results file a sweep reads) for a sweep")
    axes: dict[str, list[Any]] = {name: list(values) for name, values in grid.items()}
    if seeds is not None:
        if "seed" in axes:
            raise ValueError("give seeds either with --seeds or with -p seed, not both")
        axes["seed"] = list(seeds)
    for name, values in axes.items():
        if name in RESERVED:
            raise ValueError(f"parameter {name!r} is set by the sweep runner (one per point); do not sweep it")
        if name not in defaults:
            close = difflib.get_close_matches(name, list(defaults), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(sorted(defaults))
            raise ValueError(f"unknown parameter {name!r}{hint}: {notebook.name}'s parameters cell defines {known}")
        if not values:
            raise ValueError(f"parameter {name!r} has no values")
        list_valued = is_list_parameter(name, defaults[name])
        seen = set()
        for value in values:
            if list_valued and not isinstance(value, (list, tuple)):
                raise ValueError(f"parameter {name!r} takes a list per point (e.g. -p {name} 0.5,1), got {value!r}")
            validate_parameter(name, value)
            key = json.dumps(_canonical(value))
            if key in seen:
                raise ValueError(f"parameter {name!r} lists the value {value!r} twice")
            seen.add(key)
    names = list(axes)
    points = []
    for combination in itertools.product(*(axes[name] for name in names)):
        parameters = dict(zip(names, combination))
        points.append(SweepPoint(point_id(parameters), parameters))
    return points


# ---------------------------------------------------------------------------------- executing a point


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to run one point (picklable; the notebook travels as text)."""

    point_id: str
    parameters: dict[str, Any]
    notebook_name: str
    notebook_text: str
    cwd: str | None = None
    kernel_name: str = "python3"
    cell_timeout: float | None = None
    work_root: str | None = None


@dataclass(frozen=True)
class PointOutcome:
    """What a worker sends back: the executed notebook and results file as text, or the error."""

    point_id: str
    ok: bool
    results_text: str | None
    notebook_text: str | None
    error: str | None
    seconds: float
    host: str = field(default_factory=socket.gethostname)
    python: str = sys.executable


def execute_point(task: PointTask) -> PointOutcome:
    """Run one point (:func:`kdwide_book.notebooks.execute`) in a temporary folder; never raises for a failing notebook.

    ``results_path`` is set to a file in that folder; the outcome is ``ok`` only if the notebook ran without
    error and wrote a results file with a ``records`` list. The notebook runs in ``task.cwd`` if that folder
    exists here (the notebook's own folder on the machine that planned the sweep), else in the temporary folder.
    The temporary folder is made in ``task.work_root`` if that folder exists here, else in the system's.
    """
    from nbclient.exceptions import CellExecutionError  # noqa: PLC0415

    start = time.perf_counter()
    error = None
    work_root = task.work_root if task.work_root is not None and os.path.isdir(task.work_root) else None
    with tempfile.TemporaryDirectory(prefix="kdwide-sweep-", dir=work_root) as work:
        work_path = Path(work)
        results = work_path / "results.json"
        cwd = task.cwd if task.cwd is not None and os.path.isdir(task.cwd) else work
        notebook = None
        try:
            notebook = nbformat.reads(task.notebook_text, as_version=4)
            execute(notebook, cwd=cwd, parameters={**task.parameters, "results_path": str(results)},
                    timeout=task.cell_timeout, kernel_name=task.kernel_name)
        except CellExecutionError as exc:
            error = f"{exc.ename}: {exc.evalue}"
        except Exception as exc:  # kernel died, cell timeout, bad notebook: all mean this point failed
            error = f"{type(exc).__name__}: {exc}"
        notebook_text = None
        if notebook is not None:
            try:
                notebook_text = nbformat.writes(notebook)
            except Exception as exc:  # an unwritable notebook must not turn into an exception here
                error = error or f"the executed notebook could not be written: {type(exc).__name__}: {exc}"
        results_text = None
        if error is None:
            if not results.is_file():
                error = "the notebook ran without error but wrote no results file at results_path"
            else:
                results_text = results.read_text()
                error = _check_results_text(results_text)
    return PointOutcome(
        point_id=task.point_id,
        ok=error is None,
        results_text=results_text if error is None else None,
        notebook_text=notebook_text,
        error=error,
        seconds=time.perf_counter() - start,
    )


def _check_results_text(text: str) -> str | None:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"the results file is not valid JSON ({exc})"
    if not isinstance(document, dict) or not isinstance(document.get("records"), list):
        return "the results file has no 'records' list (see kdwide_book.results)"
    if not all(isinstance(record, dict) for record in document["records"]):
        return "the results file's records are not all objects"
    return None


# ------------------------------------------------------------------------------------- file writing


def _atomic_write_json(path: Path, document: Any) -> None:
    atomic_write(path, json.dumps(to_jsonable(document), indent=1, allow_nan=False) + "\n")


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary files left by a killed run (never counted as anything)."""
    if folder.is_dir():
        for stale in folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)


def _is_finished(point: SweepPoint, out: Path) -> bool:
    path = point.folder(out) / "results.json"
    if not path.is_file():
        return False
    try:
        return _check_results_text(path.read_text()) is None
    except OSError:
        return False


def _store(point: SweepPoint, outcome: PointOutcome, out: Path) -> None:
    folder = point.folder(out)
    _remove_stale_temporaries(folder)
    if outcome.ok:
        assert outcome.results_text is not None
        if outcome.notebook_text is not None:
            atomic_write(folder / "notebook.ipynb", outcome.notebook_text)
        atomic_write(folder / "results.json", outcome.results_text)  # last: marks the point finished
        for stale in ("failed.ipynb", "error.txt"):
            (folder / stale).unlink(missing_ok=True)
    else:
        if outcome.notebook_text is not None:
            atomic_write(folder / "failed.ipynb", outcome.notebook_text)
        atomic_write(folder / "error.txt", f"{outcome.error}\n")


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold ``OUT/.lock`` (released by the OS even if this process is killed)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another sweep is running in {out} (it holds {out / '.lock'})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------- schedulers

def _worker_initializer() -> None:
    """Local worker processes ignore Ctrl-C (the runner stops them itself, see :func:`_run_processes`) and exit
    as soon as the runner is gone (killed with SIGKILL), like Jupyter kernels do."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def exit_when_orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=exit_when_orphaned, name="kdwide-sweep-parent-watch", daemon=True).start()


def _failed(task: PointTask, error: str) -> PointOutcome:
    return PointOutcome(task.point_id, False, None, None, error, 0.0)


def _run_processes(tasks: Sequence[PointTask], jobs: int) -> Iterator[PointOutcome]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_initializer,
    )
    futures = {pool.submit(execute_point, task): task for task in tasks}
    completed = False
    try:
        for future in as_completed(futures):
            task = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # the worker process died (e.g. killed for memory)
                yield _failed(task, f"worker failed: {type(exc).__name__}: {exc}")
        completed = True
    finally:
        if not completed:
            # Interrupted: kill the workers outright. Interrupting a notebook run inside a worker can leave it blocked,
            # and a worker that dies holding the task queue's lock blocks the others; killing all of them cannot
            # hang. Their kernels exit by themselves within a second of losing their parent (ipykernel's
            # parent poller); their temporary folders are in OUT/.work, emptied by the next run.
            for future in futures:
                future.cancel()
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(OSError):
                    process.kill()
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(tasks: Sequence[PointTask], scheduler: str) -> Iterator[PointOutcome]:
    try:
        from dask.distributed import Client, as_completed
    except ImportError as error:
        raise ImportError(
            "--scheduler / scheduler= needs Dask, an optional dependency: pip install 'kdwide[sweep]'"
        ) from error

    client = Client(scheduler, set_as_default=False)
    futures: dict[str, tuple[Any, PointTask]] = {}
    try:
        token = hashlib.sha256(f"{time.time_ns()}-{os.getpid()}".encode()).hexdigest()[:8]
        for task in tasks:
            future = client.submit(execute_point, task, key=f"kdwide-sweep-{task.point_id}-{token}", pure=False)
            futures[future.key] = (future, task)
        for future in as_completed([future for future, _ in futures.values()], loop=client.loop):
            task = futures[future.key][1]
            try:
                yield future.result()
            except Exception as exc:  # a worker died or could not run the function
                yield _failed(task, f"dask: {type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            client.cancel([future for future, _ in futures.values()])
        client.close()


# -------------------------------------------------------------------------------------------- sweep


@dataclass(frozen=True)
class SweepSummary:
    """What :func:`run_sweep` did.

    Attributes:
      out: the out folder.
      points: every point of the grid, in grid order.
      executed: ids of the points run by this call (finished or failed).
      skipped: ids of the points already finished before this call.
      failed: id → error message, for the points that failed in this call.
      table: the tidy table written to ``table.csv`` / ``table.parquet`` (finished points only).
    """

    out: Path
    points: tuple[SweepPoint, ...]
    executed: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: dict[str, str]
    table: pd.DataFrame

    @property
    def ok(self) -> bool:
        """All points finished."""
        return not self.failed and len(self.executed) + len(self.skipped) == len(self.points)


def _versions() -> dict[str, str]:
    versions = package_versions()
    for name in ("papermill", "nbclient", "ipykernel", "jupyter_client", "pandas", "pyarrow", "dask", "distributed"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["python"] = platform.python_version()
    return versions


def _kernel_description(kernel_name: str) -> dict[str, Any]:
    """The kernelspec each point's kernel is started from (``python`` in its argv means this interpreter, as jupyter_client does)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except Exception as exc:
        raise ValueError(f"Jupyter kernel {kernel_name!r} not found ({exc}); see `jupyter kernelspec list`") from None
    argv = list(spec.argv)
    python_names = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    executable = sys.executable if argv and argv[0] in python_names else (argv[0] if argv else "")
    return {"name": kernel_name, "resource_dir": spec.resource_dir, "argv": argv, "executable": executable}


def _json_cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


def sweep_table(points: Sequence[SweepPoint], out: str | os.PathLike) -> pd.DataFrame:
    """Every record of every finished point (those with ``results.json``) as one tidy table, in grid order.

    Columns: ``point`` (the point id), then one column per swept parameter, then the record's columns. A swept
    parameter that the records also carry with a *different* meaning (e.g. a chapter that sweeps ``rho`` for
    one experiment and records ``rho`` from its own ``rho_values`` grid) goes into ``sweep_NAME`` instead, so
    neither is lost. Lists and dicts are stored as JSON text.
    """
    out = Path(out)
    loaded = []
    for point in points:
        path = point.folder(out) / "results.json"
        if path.is_file():
            loaded.append((point, read_results(path)["records"]))
    column = {}
    for point, records in loaded:
        for name, value in point.parameters.items():
            clash = any(name in record and _canonical(record[name]) != _canonical(value) for record in records)
            if clash or column.get(name) == f"sweep_{name}":
                column[name] = f"sweep_{name}"
            else:
                column.setdefault(name, name)
    rows = []
    for point, records in loaded:
        for record in records:
            row = {"point": point.id}
            row.update({column[name]: _json_cell(value) for name, value in point.parameters.items()})
            row.update({name: _json_cell(value) for name, value in record.items()})
            rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["point"])


def _parquet_ready(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns mixing types (e.g. str and float) become JSON text so that Arrow accepts them."""
    ready = table.copy()
    for column in ready.columns:
        if ready[column].dtype == object:
            kinds = {type(v) for v in ready[column] if v is not None and not (isinstance(v, float) and v != v)}
            if len(kinds) > 1:
                ready[column] = [None if v is None else json.dumps(v) for v in ready[column]]
    return ready


def _parquet_engine_missing() -> bool:
    try:
        import pyarrow  # noqa: F401, PLC0415
    except ImportError:
        return True
    return False


def _write_table(table: pd.DataFrame, out: Path) -> None:
    atomic_write(out / "table.csv", table.to_csv(index=False))
    if _parquet_engine_missing():
        print(
            "note: pyarrow (an optional dependency) is not installed: wrote table.csv only; "
            "pip install 'kdwide[sweep]' for table.parquet",
            file=sys.stderr,
        )
        return
    buffer = io.BytesIO()
    _parquet_ready(table).to_parquet(buffer, index=False)
    atomic_write(out / "table.parquet", buffer.getvalue())


def read_sweep_table(out: str | os.PathLike) -> pd.DataFrame:
    """The tidy table of a sweep (``OUT/table.parquet``, or ``table.csv`` where pyarrow is not installed):
    one row per record, column ``point`` first."""
    if (Path(out) / "table.parquet").exists() and not _parquet_engine_missing():
        return pd.read_parquet(Path(out) / "table.parquet")
    return pd.read_csv(Path(out) / "table.csv")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_sweep(
    notebook: str | os.PathLike,
    grid: Mapping[str, Sequence[Any]],
    *,
    out: str | os.PathLike,
    seeds: Sequence[int] | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    kernel_name: str = "python3",
    cell_timeout: float | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
) -> SweepSummary:
    """Run ``notebook`` at every grid point not yet finished in ``out``; write the table and manifest.

    Args:
      notebook: chapter notebook with a ``parameters`` cell defining ``results_path``.
      grid: parameter name → values to sweep (see :func:`plan_sweep`).
      out: out folder (created; reused to resume).
      seeds: values of ``seed``, swept last.
      jobs: local worker processes running points at once.
      scheduler: address of an existing Dask distributed scheduler (e.g. ``tcp://10.0.0.5:8786``); the points
        then run on its workers and ``jobs`` is not used.
      kernel_name: Jupyter kernel each point runs in (``python3``: this environment's Python).
      cell_timeout: seconds one cell may run (None: no limit).
      progress: show a progress bar and a one-line plan on stderr.
      command: the command line, recorded in the manifest.

    Returns:
      A :class:`SweepSummary`. Failing points do not stop the others; they are listed in ``failed``.

    Raises:
      ValueError: the sweep is invalid (before anything runs), or ``out`` belongs to another notebook or is
        in use by another sweep.
      KeyboardInterrupt: after writing the table and manifest of what finished (rerun to resume).
    """
    check_positive_int(jobs, "jobs")
    notebook = Path(notebook)
    points = plan_sweep(notebook, grid, seeds=seeds)
    kernel = _kernel_description(kernel_name)
    out = Path(out)
    notebook_bytes = notebook.read_bytes()
    manifest_path = out / "manifest.json"
    previous: dict[str, Any] = {}
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text())
        if previous.get("notebook", {}).get("name") != notebook.name:
            raise ValueError(
                f"{out} holds a sweep of {previous.get('notebook', {}).get('name')!r}, not {notebook.name!r}; "
                "choose another --out"
            )
    with _exclusive(out):
        previous_points = {entry["id"]: entry for entry in previous.get("points", [])}
        manifest: dict[str, Any] = {
            "notebook": {
                "path": str(notebook),
                "name": notebook.name,
                "sha256": hashlib.sha256(notebook_bytes).hexdigest(),
            },
            "command": list(command) if command is not None else None,
            "grid": {name: _canonical(values) for name, values in grid.items()},
            "seeds": list(seeds) if seeds is not None else None,
            "runner": {"jobs": jobs if scheduler is None else None, "scheduler": scheduler, "kernel": kernel},
            "versions": _versions(),
            "started": _now(),
            "finished": None,
            "state": "running",
            "points": [],
        }
        work_root = out.resolve() / ".work"  # temporary folders of local workers (left over if they were killed)
        shutil.rmtree(work_root, ignore_errors=True)
        work_root.mkdir()
        entries: dict[str, dict[str, Any]] = {}
        finished: set[str] = set()
        for point in points:
            _remove_stale_temporaries(point.folder(out))
            entry = {
                "id": point.id,
                "parameters": _canonical(point.parameters),
                "status": "pending",
                "results": f"points/{point.id}/results.json",
                "notebook": f"points/{point.id}/notebook.ipynb",
            }
            if _is_finished(point, out):
                finished.add(point.id)
                old = previous_points.get(point.id, {})
                entry.update({k: old[k] for k in ("seconds", "host", "python", "notebook_sha256") if k in old})
                entry["status"] = "finished"
                entry["versions"] = read_results(point.folder(out) / "results.json").get("versions")
            entries[point.id] = entry
        manifest["points"] = list(entries.values())
        skipped = tuple(point.id for point in points if point.id in finished)
        todo = [point for point in points if point.id not in finished]
        if previous and previous.get("notebook", {}).get("sha256") != manifest["notebook"]["sha256"] and skipped:
            print(
                f"kdwide sweep: warning: {notebook.name} changed since {len(skipped)} finished points ran; "
                f"they are kept (delete {out / 'points'} to rerun them)",
                file=sys.stderr,
            )
        _atomic_write_json(manifest_path, manifest)

        where = f"Dask scheduler {scheduler}" if scheduler is not None else f"{min(jobs, max(len(todo), 1))} local job(s)"
        if progress:
            print(
                f"kdwide sweep: {len(points)} points, {len(skipped)} already finished, {len(todo)} to run on {where}",
                file=sys.stderr,
            )
        executed: list[str] = []
        failures: dict[str, str] = {}
        by_id = {point.id: point for point in todo}
        # Papermill clears every output before it runs, so the points get the notebook without them (one
        # copy of a chapter's source, not of its stored figures, goes to each worker).
        source = nbformat.reads(notebook_bytes.decode(), as_version=4)
        for cell in source.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        notebook_text = nbformat.writes(source)
        tasks = [
            PointTask(
                point_id=point.id,
                parameters=dict(point.parameters),
                notebook_name=notebook.name,
                notebook_text=notebook_text,
                cwd=str(notebook.resolve().parent),
                kernel_name=kernel_name,
                cell_timeout=cell_timeout,
                work_root=None if scheduler is not None else str(work_root),
            )
            for point in todo
        ]
        interrupted = False
        try:
            if tasks:
                if scheduler is not None:
                    outcomes = _run_dask(tasks, scheduler)
                else:
                    outcomes = _run_processes(tasks, jobs)
                with contextlib.closing(outcomes), _progress_bar(len(tasks), progress) as bar:
                    for outcome in outcomes:
                        point = by_id[outcome.point_id]
                        _store(point, outcome, out)
                        executed.append(point.id)
                        entry = entries[point.id]
                        entry.update(
                            seconds=round(outcome.seconds, 3),
                            host=outcome.host,
                            python=outcome.python,
                            notebook_sha256=manifest["notebook"]["sha256"],
                        )
                        if outcome.ok:
                            finished.add(point.id)
                            entry["status"] = "finished"
                            entry.pop("error", None)
                            entry["versions"] = json.loads(outcome.results_text or "{}").get("versions")
                        else:
                            failures[point.id] = str(outcome.error)
                            entry.update(status="failed", error=outcome.error, notebook=f"points/{point.id}/failed.ipynb")
                        _atomic_write_json(manifest_path, manifest)
                        bar.update(1)
                        bar.set_postfix_str(f"finished={len(executed) - len(failures)} failed={len(failures)}")
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            shutil.rmtree(work_root, ignore_errors=True)
            table = sweep_table([point for point in points if point.id in finished], out)
            _write_table(table, out)
            manifest.update(
                finished=_now(),
                state="interrupted" if interrupted else ("failed" if failures else "finished"),
                counts={
                    "points": len(points),
                    "finished": len(finished),
                    "failed": len(failures),
                    "pending": len(points) - len(finished) - len(failures),
                    "skipped": len(skipped),
                    "executed": len(executed),
                },
                table={"csv": "table.csv", "parquet": "table.parquet", "rows": len(table)},
            )
            _atomic_write_json(manifest_path, manifest)
    return SweepSummary(out, tuple(points), tuple(executed), skipped, failures, table)


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Any]:
    from tqdm import tqdm

    bar = tqdm(total=total, desc="sweep", unit="point", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
    bar.set_postfix_str("finished=0 failed=0")
    try:
        yield bar
    finally:
        bar.close()
