"""Resumable parameter sweeps of chapter notebooks (papermill-style parameters) on a Dask cluster, local or not.

A sweep runs one notebook at every point of a grid (the Cartesian product of the values given per
parameter, seeds last) with ``results_path`` set, and gathers the ``records`` of every results file
(:mod:`kdwide_book.results`) into one tidy table. The command line is ``kdwide sweep`` (:mod:`kdwide_book.cli`);
:func:`run_sweep` is the same thing as a function. The points run through :mod:`kdwide_book.runner`, the one runner
of chapters: on a Dask ``LocalCluster`` (``jobs`` worker processes, one kernel each) or on an existing cluster
(``scheduler=ADDRESS``), the same code; a point whose kernel or worker dies runs again (``retries``).

Out folder layout::

    OUT/status.jsonl                      append-only log, one JSON line per event (below); the record of what ran
    OUT/manifest.json                     summary: notebook and its hash, grid, versions, counts, failures, table
    OUT/points/POINT/results.json         the notebook's results file
    OUT/points/POINT/notebook.ipynb       the executed notebook of a finished point
    OUT/points/POINT/failed.ipynb, error.txt   the executed notebook and error of a point whose last run failed
    OUT/stale/HASH/POINT/                 results of an earlier version of the notebook, moved aside (never deleted)
    OUT/table.csv, OUT/table.parquet      every record of every finished point (column ``point`` first)
    OUT/.work/                            temporary folders of running points (emptied by every run)

Status log: every line has ``event`` and ``time``; ``"run"`` opens a run (notebook hash, counts), ``"finished"``,
``"failed"`` (with ``cause`` and ``error``) and ``"retry"`` (an attempt whose kernel or worker died) name a ``point``,
its ``attempt`` and the ``notebook_sha256`` it ran; ``"stale"`` a point moved aside; ``"end"`` closes a run. Each
finished or failed point costs one appended line and one fsync, whatever the size of the sweep; the manifest is
written when a run starts and when it ends (also on Ctrl-C), and the table once, at the end, from the results files
(:func:`rebuild_table`, ``kdwide table OUT``, writes it again). Only one sweep at a time uses an out folder: it holds
an exclusive lock on the folder itself. :func:`run_sweep` is three named steps: plan (check the sweep, read the notebook
once), execute (run what is not finished), collect (table and manifest, also after an interruption).

Resuming: a point is finished when its last ``finished``/``failed``/``stale`` line says ``finished`` and its
``results.json`` is a valid results file. Files are written to a temporary name and renamed, ``results.json`` before
its status line, so a sweep killed at any moment (SIGINT or SIGKILL) is resumed by running the same command again:
finished points are skipped, the others run. ``POINT`` (:func:`point_id`) is a readable slug of the point's
parameters plus a hash of them, so the same parameters always map to the same folder (``1`` and ``1.0`` are the same).

Notebook identity: :func:`kdwide_book.runner.notebook_hash` (its code, not its prose or outputs) is in every status
line. Points finished by another version of the notebook are stale: by default they are moved to ``OUT/stale/`` and
run again; ``keep_stale=True`` keeps them instead, and then refuses to run anything with the changed notebook. A table
never holds two versions of a notebook.

Paths: parameters that are paths (``mnist_directory``, ``sweep_notebook``:
:func:`kdwide_book.runner.is_path_parameter`) are sent to the points as absolute paths; relative ones are resolved on
this machine (command-line values against the working directory, the notebook's own defaults against its folder)
and refused if they do not exist here.
"""

from __future__ import annotations

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
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from kdwide_book.parameters import validate_parameter
from kdwide_book.results import JsonLinesLog, atomic_write, package_versions, read_json_lines, read_results, write_json
from kdwide_book.runner import (
    DEFAULT_RETRIES,
    PointOutcome,
    PointTask,
    check_results_text,
    check_retries,
    dask_client,
    execute_point,
    is_path_parameter,
    notebook_hash,
    notebook_parameters,
    notebook_path_defaults,
    parse_scalar,
    resolve_path_parameters,
    run_tasks,
    runnable_text,
)

__all__ = [
    "DEFAULT_RETRIES",
    "LIST_SUFFIX",
    "POINT_SEPARATOR",
    "PointOutcome",
    "PointTask",
    "StatusLog",
    "SweepPoint",
    "SweepSummary",
    "execute_point",
    "is_list_parameter",
    "notebook_parameters",
    "notebook_path_defaults",
    "parse_grid",
    "parse_scalar",
    "parse_seeds",
    "parse_values",
    "plan_sweep",
    "point_id",
    "read_status",
    "read_sweep_defaults",
    "read_sweep_table",
    "rebuild_table",
    "run_sweep",
    "sweep_table",
]

LIST_SUFFIX = "_values"
"""Parameters whose name ends with this (or whose notebook default is a list) take a list per point."""

POINT_SEPARATOR = ";"
"""Separates grid points in the value text of a list-valued parameter: ``"0,0.5;0.5,1"`` is two points."""

RESERVED = ("results_path",)
"""Parameters the runner sets itself."""

STATUS_LOG = "status.jsonl"
MANIFEST = "manifest.json"
WORK_FOLDER = ".work"


# ----------------------------------------------------------------------------------------- parsing


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


def _grid_points(axes: Mapping[str, Sequence[Any]]) -> list[SweepPoint]:
    """The points of the Cartesian product of ``axes``, first axis slowest."""
    names = list(axes)
    return [SweepPoint(point_id(dict(zip(names, combination))), dict(zip(names, combination)))
            for combination in itertools.product(*(axes[name] for name in names))]


def _sweep_axes(
    notebook: Path, grid: Mapping[str, Sequence[Any]], seeds: Sequence[int] | None, defaults: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """The checked axes of a sweep (seeds last), path values made absolute."""
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
        for value in values:
            if list_valued and not isinstance(value, (list, tuple)):
                raise ValueError(f"parameter {name!r} takes a list per point (e.g. -p {name} 0.5,1), got {value!r}")
            validate_parameter(name, value)
        if is_path_parameter(name) and not list_valued:
            values[:] = [resolve_path_parameters({name: value}, base=Path.cwd(), source="the value")[name]
                         for value in values]
        seen = set()
        for value in values:
            key = json.dumps(_canonical(value))
            if key in seen:
                raise ValueError(f"parameter {name!r} lists the value {value!r} twice")
            seen.add(key)
    return axes


def read_sweep_defaults(notebook: str | os.PathLike) -> dict[str, Any]:
    """The defaults of the ``parameters`` cell of a notebook that can be swept: it must exist and define
    ``results_path`` (the results file a sweep reads). Read once per sweep and handed to :func:`parse_grid`,
    :func:`plan_sweep` and :func:`run_sweep`.

    Raises:
      ValueError: the notebook does not exist, has no ``parameters`` cell or does not define ``results_path``.
    """
    notebook = Path(notebook)
    if not notebook.is_file():
        raise ValueError(f"notebook {str(notebook)!r} does not exist")
    defaults = notebook_parameters(notebook)
    if "results_path" not in defaults:
        raise ValueError(f"{notebook}: its parameters cell must define results_path (the results file a sweep reads) for a sweep")
    return defaults


def plan_sweep(
    notebook: str | os.PathLike,
    grid: Mapping[str, Sequence[Any]],
    *,
    seeds: Sequence[int] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list[SweepPoint]:
    """Check a sweep and list its points, running nothing.

    Args:
      notebook: path of the chapter notebook (it needs a ``parameters`` cell that defines ``results_path``).
      grid: parameter name → the values to sweep (one list per parameter; for list-valued parameters each
        value is itself a list). Every name must be defined in the notebook's ``parameters`` cell. Values of path
        parameters (:func:`kdwide_book.runner.is_path_parameter`) become absolute: relative ones are resolved against
        the working directory and must exist.
      seeds: values of ``seed``, swept last (the same as ``grid["seed"]``).
      defaults: the notebook's defaults as :func:`read_sweep_defaults` returned them, if the caller has them already
        (default: read here).

    Returns:
      The points of the Cartesian product, in grid order (first parameter slowest, seeds fastest).

    Raises:
      ValueError: unknown parameter name, a value the shared rules (:func:`kdwide_book.parameters.validate_parameter`)
        reject, a list-valued parameter given a scalar, an empty axis, a value given twice, or a relative path that
        does not exist here.
    """
    notebook = Path(notebook)
    defaults = read_sweep_defaults(notebook) if defaults is None else defaults
    return _grid_points(_sweep_axes(notebook, grid, seeds, defaults))


# ------------------------------------------------------------------------------------- status log


class StatusLog:
    """``OUT/status.jsonl``: one JSON event a line, appended, never rewritten (:class:`kdwide_book.results.JsonLinesLog`).

    A line cut short by a killed process is skipped by :func:`read_status`, and the next line starts on a line of its
    own. ``sync=True`` fsyncs after the line (one fsync per finished or failed point).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._log = JsonLinesLog(path)
        self.path = self._log.path

    def append(self, event: str, *, sync: bool = False, **fields: Any) -> None:
        """Append ``{"event": event, "time": now, **fields}``; flush it, and fsync it if ``sync``."""
        self._log.append({"event": event, "time": _now(), **fields}, sync=sync)

    def close(self) -> None:
        """Close the file (fsyncing what is not yet on disk)."""
        self._log.close()


def read_status(out: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The events of ``OUT/status.jsonl`` in order (none if there is no log); a torn line is skipped."""
    return read_json_lines(Path(out) / STATUS_LOG)


def _point_states(out: Path) -> dict[str, tuple[str, str | None]]:
    """Point id → (its last ``finished``/``failed``/``stale`` event, the notebook hash it names)."""
    states: dict[str, tuple[str, str | None]] = {}
    for event in read_status(out):
        if event.get("event") in ("finished", "failed", "stale") and "point" in event:
            states[event["point"]] = (event["event"], event.get("notebook_sha256"))
    return states


# ------------------------------------------------------------------------------------- file writing


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary files left by a killed run (never counted as anything)."""
    if folder.is_dir():
        for stale in folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)


def _has_results(point: SweepPoint, out: Path) -> bool:
    path = point.folder(out) / "results.json"
    if not path.is_file():
        return False
    try:
        return check_results_text(path.read_text()) is None
    except (OSError, UnicodeDecodeError):
        return False


def _store(point: SweepPoint, outcome: PointOutcome, out: Path) -> None:
    """The point's files. No fsync here: the status line that follows is the one fsync of a point, and a file that
    an operating-system crash left empty is not a valid results file, so its point runs again."""
    folder = point.folder(out)
    _remove_stale_temporaries(folder)
    if outcome.ok:
        assert outcome.results_text is not None
        if outcome.notebook_text is not None:
            atomic_write(folder / "notebook.ipynb", outcome.notebook_text, fsync=False)
        atomic_write(folder / "results.json", outcome.results_text, fsync=False)
        for stale in ("failed.ipynb", "error.txt"):
            (folder / stale).unlink(missing_ok=True)
    else:
        if outcome.notebook_text is not None:
            atomic_write(folder / "failed.ipynb", outcome.notebook_text, fsync=False)
        atomic_write(folder / "error.txt", f"{outcome.error}\n(cause: {outcome.cause}; attempt {outcome.attempt})\n",
                     fsync=False)


def _move_aside(point: SweepPoint, out: Path, label: str) -> Path:
    """Move a stale point's folder to ``OUT/stale/LABEL/POINT`` (a free name: nothing is overwritten)."""
    target = out / "stale" / label / point.id
    suffix = 1
    while target.exists():
        suffix += 1
        target = out / "stale" / label / f"{point.id}-{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    point.folder(out).rename(target)
    return target


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold a lock on the folder ``out`` itself (released by the OS even if this process is killed; no lock file)."""
    out.mkdir(parents=True, exist_ok=True)
    handle = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another sweep is running in {out} (it holds a lock on that folder)") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


# -------------------------------------------------------------------------------------------- sweep


@dataclass(frozen=True)
class SweepSummary:
    """What :func:`run_sweep` did.

    Attributes:
      out: the out folder.
      points: every point of the grid, in grid order.
      executed: ids of the points run by this call (finished or failed).
      skipped: ids of the points already finished before this call.
      failed: id → cause and error, for the points that failed in this call.
      table: the tidy table written to ``table.csv`` / ``table.parquet`` (finished points only).
      notebook_sha256: the notebook version of every point in ``table``.
      retried: id → how many of its attempts died (kernel or worker) and ran again, for the points concerned.
      stale: ids of the points finished by another version of the notebook, moved aside and run again.
    """

    out: Path
    points: tuple[SweepPoint, ...]
    executed: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: dict[str, str]
    table: pd.DataFrame
    notebook_sha256: str = ""
    retried: dict[str, int] = field(default_factory=dict)
    stale: tuple[str, ...] = ()

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


def _check_count(value: Any, name: str, minimum: int, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} ({meaning}), got {value!r}")


@dataclass(frozen=True)
class _RunSettings:
    """How a sweep's points run (recorded in the manifest as ``runner``); see :func:`run_sweep` for each field."""

    jobs: int = 1
    scheduler: str | None = None
    kernel_name: str = "python3"
    cell_timeout: float | None = None
    retries: int = DEFAULT_RETRIES
    keep_stale: bool = False
    progress: bool = True


@dataclass(frozen=True)
class _Plan:
    """A checked sweep before anything runs: its notebook (code, hash, kernel), points, axes and fixed paths."""

    notebook: Path
    points: tuple[SweepPoint, ...]
    axes: dict[str, list[Any]]
    fixed_paths: dict[str, Any]
    notebook_sha256: str
    notebook_text: str  # one copy per task in flight: a few per worker, so no scatter needed
    kernel: dict[str, Any]


@dataclass
class _Progress:
    """Where a run stands: points finished (earlier or now), stale, skipped, executed, failed and retried."""

    finished: set[str]
    stale: dict[str, str]  # point → the notebook hash its results came from ("unrecorded": none logged)
    table_sha256: str
    skipped: tuple[str, ...] = ()
    executed: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)


def _plan(notebook: Path, grid: Mapping[str, Sequence[Any]], seeds: Sequence[int] | None,
          defaults: Mapping[str, Any] | None, settings: _RunSettings) -> _Plan:
    """Plan: check the settings, the grid and the notebook; read the notebook's code once."""
    _check_count(settings.jobs, "jobs", 1, "local worker processes")
    check_retries(settings.retries)
    defaults = read_sweep_defaults(notebook) if defaults is None else defaults
    axes = _sweep_axes(notebook, grid, seeds, defaults)
    fixed_paths = notebook_path_defaults(notebook, {name: v for name, v in defaults.items() if name not in axes})
    kernel = _kernel_description(settings.kernel_name)
    source = nbformat.read(notebook, as_version=4)
    return _Plan(notebook, tuple(_grid_points(axes)), axes, fixed_paths, notebook_hash(source),
                 runnable_text(source), kernel)


def _check_out_folder(out: Path, notebook: Path) -> None:
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        previous_name = json.loads(manifest_path.read_text()).get("notebook", {}).get("name")
        if previous_name != notebook.name:
            raise ValueError(f"{out} holds a sweep of {previous_name!r}, not {notebook.name!r}; choose another --out")


def _sort_points(plan: _Plan, out: Path, keep_stale: bool) -> _Progress:
    """Which points finished with this notebook, and which with another version (stale), from the status log."""
    states = _point_states(out)
    finished: set[str] = set()
    stale: dict[str, str] = {}
    for point in plan.points:
        _remove_stale_temporaries(point.folder(out))
        if not _has_results(point, out):
            continue
        event, hash_of_point = states.get(point.id, (None, None))
        if event == "finished" and hash_of_point == plan.notebook_sha256:
            finished.add(point.id)
        else:  # another notebook version, or results whose status line a killed run did not write
            stale[point.id] = hash_of_point if event == "finished" and hash_of_point else "unrecorded"
    table_sha = plan.notebook_sha256
    if stale and keep_stale:
        versions = sorted(set(stale.values()))
        to_run = len(plan.points) - len(stale)
        if finished or to_run or versions != [versions[0]] or versions[0] == "unrecorded":
            raise ValueError(
                f"keep_stale / --keep-stale: {len(stale)} points of {out} were finished by another version of "
                f"{plan.notebook.name} ({', '.join(v[:12] for v in versions)}), and {to_run} would run with this one "
                f"({plan.notebook_sha256[:12]}): one table cannot hold both. Restore that version of the notebook, "
                "or run without --keep-stale (the stale points are moved to OUT/stale/ and run again)"
            )
        table_sha, finished, stale = versions[0], set(stale), {}
    skipped = tuple(point.id for point in plan.points if point.id in finished)
    return _Progress(finished, stale, table_sha, skipped)


def _start_manifest(plan: _Plan, progress: _Progress, settings: _RunSettings, *, grid: Mapping[str, Sequence[Any]],
                    seeds: Sequence[int] | None, command: Sequence[str] | None) -> dict[str, Any]:
    runner = {"jobs": settings.jobs if settings.scheduler is None else None, "scheduler": settings.scheduler,
              "kernel": plan.kernel, "retries": settings.retries, "cell_timeout": settings.cell_timeout,
              "keep_stale": settings.keep_stale}
    return {
        "notebook": {"path": str(plan.notebook.resolve()), "name": plan.notebook.name, "sha256": plan.notebook_sha256,
                     "sha256_of": "its code cells' sources and tags (kdwide_book.runner.notebook_hash)"},
        "command": list(command) if command is not None else None,
        "grid": {name: _canonical(values) for name, values in grid.items()},
        "seeds": list(seeds) if seeds is not None else None,
        "axes": plan.axes,
        "fixed_paths": plan.fixed_paths,
        "runner": runner,
        "versions": _versions(),
        "started": _now(),
        "finished": None,
        "state": "running",
        "status_log": STATUS_LOG,
        "table": {"csv": "table.csv", "parquet": "table.parquet", "rows": None,
                  "notebook_sha256": progress.table_sha256},
    }


def _move_stale_aside(plan: _Plan, progress: _Progress, out: Path, log: StatusLog) -> None:
    """Stale points go to ``OUT/stale/`` before anything runs: a table never mixes versions, even after a kill."""
    for point in plan.points:
        if point.id in progress.stale:
            target = _move_aside(point, out, progress.stale[point.id][:12])
            log.append("stale", point=point.id, notebook_sha256=progress.stale[point.id],
                       moved_to=str(target.relative_to(out)))
    if progress.stale:
        print(f"kdwide sweep: {plan.notebook.name} changed since {len(progress.stale)} points finished: they run "
              f"again (their earlier results are in {out / 'stale'})", file=sys.stderr)


def _execute(plan: _Plan, progress: _Progress, settings: _RunSettings, out: Path, log: StatusLog,
             command: Sequence[str] | None) -> None:
    """Execute: run every point not finished on the Dask cluster; store each outcome and log it as it completes."""
    sha = plan.notebook_sha256
    todo = [point for point in plan.points if point.id not in progress.finished]
    log.append("run", sync=True, notebook_sha256=sha, points=len(plan.points), finished=len(progress.finished),
               to_run=len(todo), stale=len(progress.stale), command=list(command) if command is not None else None)
    jobs = min(settings.jobs, max(len(todo), 1))
    if settings.progress:
        where = f"Dask scheduler {settings.scheduler}" if settings.scheduler is not None else f"{jobs} local worker(s)"
        print(f"kdwide sweep: {len(plan.points)} points, {len(progress.skipped)} already finished, {len(todo)} to run "
              f"on {where}", file=sys.stderr)
    if not todo:
        return
    work_root = None if settings.scheduler is not None else str(out.resolve() / WORK_FOLDER)
    tasks = (PointTask(point_id=point.id, parameters={**plan.fixed_paths, **point.parameters},
                       notebook_name=plan.notebook.name, notebook_text=plan.notebook_text,
                       kernel_name=settings.kernel_name, cell_timeout=settings.cell_timeout, work_root=work_root)
             for point in todo)
    by_id = {point.id: point for point in todo}
    with dask_client(jobs=jobs, scheduler=settings.scheduler) as client, \
            _progress_bar(len(todo), settings.progress) as bar:

        def on_retry(outcome: PointOutcome) -> None:
            progress.retried[outcome.point_id] = progress.retried.get(outcome.point_id, 0) + 1
            log.append("retry", point=outcome.point_id, notebook_sha256=sha, attempt=outcome.attempt,
                       cause=outcome.cause, error=outcome.error, host=outcome.host)
            bar.write(f"kdwide sweep: {outcome.point_id}: {outcome.cause} on attempt {outcome.attempt} "
                      f"({outcome.error}); running it again", file=sys.stderr)

        for outcome in run_tasks(client, tasks, retries=settings.retries, on_retry=on_retry):
            _record(by_id[outcome.point_id], outcome, progress, out, log, sha)
            bar.update(1)
            bar.set_postfix_str(f"finished={len(progress.executed) - len(progress.failures)} "
                                f"failed={len(progress.failures)} retried={sum(progress.retried.values())}")


def _record(point: SweepPoint, outcome: PointOutcome, progress: _Progress, out: Path, log: StatusLog,
            sha: str) -> None:
    """One completed point: its files, then its status line (the one fsync of a point)."""
    _store(point, outcome, out)
    progress.executed.append(point.id)
    details = dict(point=point.id, notebook_sha256=sha, attempt=outcome.attempt, seconds=round(outcome.seconds, 3),
                   host=outcome.host, python=outcome.python)
    if outcome.ok:
        progress.finished.add(point.id)
        log.append("finished", sync=True, **details)
    else:
        progress.failures[point.id] = f"{outcome.cause} (attempt {outcome.attempt}): {outcome.error}"
        log.append("failed", sync=True, cause=outcome.cause, error=outcome.error, **details)


def _collect(plan: _Plan, progress: _Progress, out: Path, manifest: dict[str, Any], state: str) -> pd.DataFrame:
    """Collect: the table of every finished point, and the manifest's end state and counts."""
    table = sweep_table([point for point in plan.points if point.id in progress.finished], out)
    _write_table(table, out)
    manifest.update(finished=_now(), state=state, counts=_counts(plan, progress), failed=progress.failures)
    manifest["table"]["rows"] = len(table)
    write_json(out / MANIFEST, manifest)
    return table


def _counts(plan: _Plan, progress: _Progress) -> dict[str, int]:
    return {
        "points": len(plan.points),
        "finished": len(progress.finished),
        "failed": len(progress.failures),
        "pending": len(plan.points) - len(progress.finished) - len(progress.failures),
        "skipped": len(progress.skipped),
        "executed": len(progress.executed),
        "retried": sum(progress.retried.values()),
        "stale": len(progress.stale),
    }


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
    retries: int = DEFAULT_RETRIES,
    keep_stale: bool = False,
    progress: bool = True,
    command: Sequence[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> SweepSummary:
    """Run ``notebook`` at every grid point not yet finished in ``out``; write the table and manifest.

    Three steps: plan (check the sweep, read the notebook), execute (run the points that are not finished, logging
    each as it completes), collect (the table of every finished point, the manifest's counts), the last also when a
    run is interrupted.

    Args:
      notebook: chapter notebook with a ``parameters`` cell defining ``results_path``.
      grid: parameter name → values to sweep (see :func:`plan_sweep`).
      out: out folder (created; reused to resume).
      seeds: values of ``seed``, swept last.
      jobs: worker processes of the local Dask cluster, each running one point (one kernel) at a time.
      scheduler: address of an existing Dask distributed scheduler (e.g. ``tcp://10.0.0.5:8786``); the points
        then run on its workers and ``jobs`` is not used.
      kernel_name: Jupyter kernel each point runs in (``python3``: the worker's Python).
      cell_timeout: seconds one cell may run (None: no limit).
      retries: how many more times a point whose kernel or worker died runs before it counts as failed (>= 0).
      keep_stale: keep the results of points finished by an earlier version of the notebook instead of moving them
        aside and running them again; then nothing may run with the changed notebook (a table holds one version).
      progress: show a progress bar and a one-line plan on stderr (retries and failures are reported regardless).
      command: the command line, recorded in the manifest.
      defaults: the notebook's defaults from :func:`read_sweep_defaults`, if the caller has them (default: read here).

    Returns:
      A :class:`SweepSummary`. Failing points do not stop the others; they are listed in ``failed``.

    Raises:
      ValueError: the sweep is invalid (before anything runs), ``out`` belongs to another notebook or is in use by
        another sweep, or ``keep_stale`` would mix two versions of the notebook.
      KeyboardInterrupt: after writing the table and manifest of what finished (rerun to resume).
    """
    settings = _RunSettings(jobs, scheduler, kernel_name, cell_timeout, retries, keep_stale, progress)
    plan = _plan(Path(notebook), grid, seeds, defaults, settings)
    out = Path(out)
    _check_out_folder(out, plan.notebook)
    with _exclusive(out):
        run = _sort_points(plan, out, keep_stale)
        manifest = _start_manifest(plan, run, settings, grid=grid, seeds=seeds, command=command)
        write_json(out / MANIFEST, manifest)
        log = StatusLog(out / STATUS_LOG)
        work_root = out.resolve() / WORK_FOLDER  # temporary folders of local workers (left over if they were killed)
        state = "running"
        try:
            _move_stale_aside(plan, run, out, log)
            shutil.rmtree(work_root, ignore_errors=True)
            work_root.mkdir()
            _execute(plan, run, settings, out, log, command)
        except KeyboardInterrupt:
            state = "interrupted"
            raise
        except BaseException as exc:
            state = f"stopped by an error ({type(exc).__name__}: {exc})"
            raise
        else:
            state = "failed" if run.failures else "finished"
        finally:
            shutil.rmtree(work_root, ignore_errors=True)
            table = _collect(plan, run, out, manifest, state)
            log.append("end", sync=True, state=state, counts=_counts(plan, run))
            log.close()
    return SweepSummary(out, plan.points, tuple(run.executed), run.skipped, run.failures, table, run.table_sha256,
                        run.retried, tuple(point.id for point in plan.points if point.id in run.stale))


def rebuild_table(out: str | os.PathLike) -> pd.DataFrame:
    """Write ``OUT/table.csv`` and ``table.parquet`` again from the results files (``kdwide table OUT``).

    The table holds the points that the status log records as finished by the notebook version of the sweep's
    table (``manifest.json``), in grid order: what a run writes at its end, also after a run that was killed.

    Raises:
      ValueError: ``out`` holds no sweep (no ``manifest.json`` with the grid).
    """
    out = Path(out)
    manifest_path = out / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{out} holds no sweep (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    if "axes" not in manifest or "table" not in manifest:
        raise ValueError(f"{manifest_path} was written by an older kdwide sweep (no 'axes'): run the sweep again")
    with _exclusive(out):
        sha = manifest["table"]["notebook_sha256"]
        states = _point_states(out)
        points = [point for point in _grid_points(manifest["axes"])
                  if states.get(point.id) == ("finished", sha) and _has_results(point, out)]
        table = sweep_table(points, out)
        _write_table(table, out)
        manifest["table"]["rows"] = len(table)
        write_json(manifest_path, manifest)
    return table


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Any]:
    from tqdm import tqdm

    bar = tqdm(total=total, desc="sweep", unit="point", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
    bar.set_postfix_str("finished=0 failed=0")
    try:
        yield bar
    finally:
        bar.close()
