"""The one runner behind everything that executes chapters with parameters: sweeps and paper-scale runs.

:func:`execute_point` runs a notebook once, with parameters, in a fresh Jupyter kernel (the executor
:func:`kdwide_book.notebooks.execute`) inside a temporary folder, and returns the executed notebook and its results
file as text. :func:`run_tasks` runs many of them on a Dask cluster and yields each one's final outcome as it
completes. :func:`dask_client` gives that cluster: a :class:`distributed.LocalCluster` of processes, one thread and so
one kernel per worker, or an existing cluster (``scheduler=ADDRESS``); the code that runs the points is the same.

- A point whose kernel dies (SIGKILL, the out-of-memory killer) or whose worker process dies runs again, up to
  ``retries`` more times, and is then reported failed with the cause. Other points, running or queued, are not
  affected: a kernel belongs to one point, and a local worker holds only the point it runs (Dask's worker saturation 1).
- A point whose notebook raises, runs a cell past the timeout or writes no results file fails at once: running it
  again would give the same.
- Only a few points per worker thread are submitted at a time and each outcome is released as soon as the caller has
  it, so memory on the runner and on the cluster does not grow with the number of points.
- Stopping (Ctrl-C, an exception in the caller) cancels the queued and running points and closes the cluster with
  Dask's public API; kernels exit by themselves when their worker process is gone (ipykernel's parent poller).

:func:`parse_scalar` reads a parameter value given on the command line, for sweeps and paper runs alike, and
:func:`notebook_parameters` reads the defaults of a notebook's ``parameters`` cell.

Points are host-independent: every point runs in a temporary folder (never "the notebook's folder, if this host has
it"), and parameters that are paths (:func:`is_path_parameter`) reach it as absolute paths
(:func:`resolve_path_parameters`); a path that does not exist where the point runs fails the point, naming it.

Example:
  >>> from kdwide_book.runner import is_path_parameter, resolve_path_parameters
  >>> is_path_parameter("mnist_directory"), is_path_parameter("rho")
  (True, False)
  >>> resolve_path_parameters({"mnist_directory": "/data/mnist", "rho": 0.5}, base="/tmp", source="the value")
  {'mnist_directory': '/data/mnist', 'rho': 0.5}
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat

from kdwide_book.notebooks import execute

__all__ = [
    "CELL_TIMEOUT",
    "DEFAULT_RETRIES",
    "FINISHED",
    "KERNEL_DIED",
    "MISSING_PATH",
    "NOTEBOOK_ERROR",
    "PATH_SUFFIXES",
    "RETRIED_CAUSES",
    "RUNNER_ERROR",
    "WORKER_DIED",
    "PointOutcome",
    "PointTask",
    "check_results_text",
    "check_retries",
    "dask_client",
    "execute_point",
    "is_path_parameter",
    "notebook_hash",
    "notebook_parameters",
    "notebook_path_defaults",
    "parse_scalar",
    "resolve_path_parameters",
    "run_tasks",
    "runnable_text",
]

DEFAULT_RETRIES = 2
"""How many times a point whose kernel or worker died runs again before it counts as failed."""

PATH_SUFFIXES = ("_path", "_directory", "_dir", "_file", "_notebook")
"""A parameter whose name ends with one of these is a path (``mnist_directory``, ``sweep_notebook``)."""

RUNNER_PARAMETERS = ("results_path",)
"""Parameters the runner sets itself, one per point."""

FINISHED = "finished"
NOTEBOOK_ERROR = "notebook-error"  # a cell raised, or the results file is missing or malformed
CELL_TIMEOUT = "cell-timeout"
KERNEL_DIED = "kernel-died"
WORKER_DIED = "worker-died"
MISSING_PATH = "missing-path"  # a path parameter does not exist where the point runs
RUNNER_ERROR = "runner-error"  # anything else (no such kernel, Dask could not run the function)

RETRIED_CAUSES = (KERNEL_DIED, WORKER_DIED)
"""Causes of failure that say nothing about the notebook: the point runs again (up to ``retries`` times)."""


# ------------------------------------------------------------------------- parameters of a notebook


def parse_scalar(text: str) -> Any:
    """One value from the command line, the same for sweeps (``kdwide sweep -p``) and paper runs (``-p`` in
    ``--papermill-args``): ``None``/``null`` → None, ``true``/``false`` → bool (in any case), integers → int, other
    numbers (``0.5``, ``1e-3``) → float, anything else → str (surrounding quotes removed, so ``'1'`` is the string
    ``"1"``).

    Example:
      >>> [parse_scalar(text) for text in ("true", "None", "12", "1e-3", "relu", "'1'")]
      [True, None, 12, 0.001, 'relu', '1']
    """
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


class _Expression:
    """Default of a parameter that is not a Python literal (shown as its source text)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        return self.source


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters``-tagged cell (``papermill.inspect_notebook``).

    Defaults that are not literals are returned as an object whose ``repr`` is their source text.
    Raises ``ValueError`` if the notebook has no ``parameters`` cell.
    """
    import papermill  # noqa: PLC0415  (slow to import; a worker running points never needs it)

    path = Path(notebook)
    document = nbformat.read(path, as_version=4)
    if not any("parameters" in cell.get("metadata", {}).get("tags", []) for cell in document.cells):
        raise ValueError(f"{path}: no code cell tagged 'parameters' (parameters are injected after it)")
    try:
        inspected = papermill.inspect_notebook(str(path))
    except ValueError as exc:  # e.g. no kernelspec in the notebook's metadata
        raise ValueError(f"{path}: papermill cannot read its parameters cell: {exc}") from None
    defaults: dict[str, Any] = {}
    for name, entry in inspected.items():
        try:
            defaults[name] = ast.literal_eval(entry["default"])
        except (ValueError, SyntaxError):
            defaults[name] = _Expression(entry["default"])
    return defaults


# ------------------------------------------------------------------------------------------ notebooks


def is_path_parameter(name: str) -> bool:
    """Whether the parameter ``name`` is a path: its name ends with one of :data:`PATH_SUFFIXES`."""
    return name.endswith(PATH_SUFFIXES)


def resolve_path_parameters(parameters: Mapping[str, Any], *, base: str | os.PathLike, source: str) -> dict[str, Any]:
    """``parameters`` with every path parameter (:func:`is_path_parameter`) made absolute.

    Absolute paths are kept as they are (they need to exist only where the points run). A relative path is resolved
    against ``base`` on this machine, and must exist there: a worker on another machine could not resolve it.

    Args:
      parameters: name → value; ``None`` values and the names the runner sets (``results_path``) are left alone.
      base: the folder relative paths are relative to (the working directory for command-line values, the
        notebook's folder for its own defaults).
      source: how the values were given, for error messages (``"-p"``, ``"the notebook's default"``).

    Raises:
      ValueError: a path parameter is not a string, or is relative and does not exist under ``base``.
    """
    resolved = dict(parameters)
    for name, value in parameters.items():
        if not is_path_parameter(name) or name in RUNNER_PARAMETERS or value is None:
            continue
        if not isinstance(value, str):
            raise ValueError(f"parameter {name!r} is a path (its name ends with {name[name.rfind('_'):]!r}): "
                             f"it must be a str or None, got {value!r}")
        path = Path(value).expanduser()
        if path.is_absolute():
            resolved[name] = str(path)
            continue
        absolute = (Path(base) / path).resolve()
        if not absolute.exists():
            raise ValueError(
                f"parameter {name!r}: {source} {value!r} is a relative path; against {Path(base).resolve()} it is "
                f"{absolute}, which does not exist. Points run in their own folders, on any worker: give a path "
                "that exists here, or an absolute path that exists on every worker"
            )
        resolved[name] = str(absolute)
    return resolved


def notebook_path_defaults(notebook: str | os.PathLike, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's own defaults of its path parameters, made absolute against its folder: what each of its points
    receives unless it sets them (a point runs in a folder of its own, on any worker).

    Args:
      notebook: the notebook's path.
      defaults: its parameters' defaults (``kdwide_book.sweep.notebook_parameters``), or those to resolve.

    Raises:
      ValueError: such a default is a relative path that does not exist beside the notebook.
    """
    paths = {name: value for name, value in defaults.items()
             if is_path_parameter(name) and name not in RUNNER_PARAMETERS and isinstance(value, str)}
    return resolve_path_parameters(paths, base=Path(notebook).resolve().parent, source="the notebook's default")


def notebook_hash(notebook: nbformat.NotebookNode) -> str:
    """SHA-256 (hex) of what a notebook runs: its code cells' sources and tags, in order.

    Prose and stored outputs do not count, so re-executing a chapter or fixing a typo in its text leaves it the same
    notebook; any change to its code makes it another one.
    """
    code = [[cell.source, sorted(cell.get("metadata", {}).get("tags", []))]
            for cell in notebook.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(code, separators=(",", ":")).encode()).hexdigest()


def runnable_text(notebook: nbformat.NotebookNode) -> str:
    """The notebook as text without outputs (the executor clears them anyway): what travels to the workers."""
    copy = nbformat.from_dict(json.loads(nbformat.writes(notebook)))
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(copy)


# ------------------------------------------------------------------------------------- one point


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to run one point (picklable; the notebook travels as text).

    Attributes:
      point_id: the point's name (a sweep's point id, a chapter's file name).
      parameters: injected after the notebook's ``parameters`` cell (``results_path`` aside); paths absolute.
      notebook_name: file name of the notebook, for messages.
      notebook_text: the notebook (:func:`runnable_text`).
      kernel_name: the Jupyter kernel (``python3``: the worker's Python).
      cell_timeout: seconds one cell may run (``None``: no limit).
      work_root: folder for the point's temporary folder, if it exists where the point runs (else the system's).
      attempt: 1 for the first run, 2 for the first retry, ...
    """

    point_id: str
    parameters: dict[str, Any]
    notebook_name: str
    notebook_text: str
    kernel_name: str = "python3"
    cell_timeout: float | None = None
    work_root: str | None = None
    attempt: int = 1


@dataclass(frozen=True)
class PointOutcome:
    """What a worker sends back: the executed notebook and results file as text, or the error and its cause.

    ``cause`` is ``"finished"`` for a point that finished, else one of ``"notebook-error"``, ``"cell-timeout"``,
    ``"kernel-died"``, ``"worker-died"``, ``"missing-path"``, ``"runner-error"``.
    """

    point_id: str
    ok: bool
    results_text: str | None
    notebook_text: str | None
    error: str | None
    seconds: float
    host: str = field(default_factory=socket.gethostname)
    python: str = sys.executable
    cause: str = FINISHED
    attempt: int = 1


def _failure(task: PointTask, cause: str, error: str, seconds: float = 0.0, host: str = "",
             notebook_text: str | None = None) -> PointOutcome:
    return PointOutcome(task.point_id, False, None, notebook_text, error, seconds, host=host, python="",
                        cause=cause, attempt=task.attempt)


def check_results_text(text: str) -> str | None:
    """``None`` if ``text`` is a results file with a list of record objects, else what is wrong with it."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"the results file is not valid JSON ({exc})"
    if not isinstance(document, dict) or not isinstance(document.get("records"), list):
        return "the results file has no 'records' list (see kdwide_book.results)"
    if not all(isinstance(record, dict) for record in document["records"]):
        return "the results file's records are not all objects"
    return None


def _missing_paths(parameters: Mapping[str, Any]) -> str | None:
    for name, value in parameters.items():
        if is_path_parameter(name) and name not in RUNNER_PARAMETERS and isinstance(value, str):
            if not os.path.exists(value):
                return (f"parameter {name!r} is {value!r}, which does not exist on {socket.gethostname()}: path "
                        "parameters reach every worker as the same absolute path")
    return None


def execute_point(task: PointTask) -> PointOutcome:
    """Run one point (:func:`kdwide_book.notebooks.execute`) in a temporary folder; never raises for a failing notebook.

    ``results_path`` is set to a file in that folder, which is also the kernel's working directory; the outcome is
    ``ok`` only if the notebook ran without error and wrote a results file with a ``records`` list.
    """
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError  # noqa: PLC0415

    start = time.perf_counter()
    missing = _missing_paths(task.parameters)
    if missing is not None:
        return _failure(task, MISSING_PATH, missing, host=socket.gethostname())
    work_root = task.work_root if task.work_root is not None and os.path.isdir(task.work_root) else None
    cause, error, notebook, results_text = FINISHED, None, None, None
    with tempfile.TemporaryDirectory(prefix="kdwide-point-", dir=work_root) as work:
        results = Path(work) / "results.json"
        try:
            notebook = nbformat.reads(task.notebook_text, as_version=4)
            execute(notebook, cwd=work, parameters={**task.parameters, "results_path": str(results)},
                    timeout=task.cell_timeout, kernel_name=task.kernel_name)
        except CellExecutionError as exc:
            cause, error = NOTEBOOK_ERROR, f"{exc.ename}: {exc.evalue}"
        except CellTimeoutError as exc:
            cause, error = CELL_TIMEOUT, f"CellTimeoutError: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        except DeadKernelError as exc:
            cause, error = KERNEL_DIED, f"the kernel died (DeadKernelError: {exc})"
        except Exception as exc:  # no such kernel, a bad notebook, a kernel that died or hung while starting
            # A kernel that never ran a cell failed to start ("Kernel died before replying to kernel_info", a port
            # another process took first, "Kernel didn't respond in 60 seconds" on a loaded machine): nothing about
            # the notebook, so it counts as a dead kernel and runs again. A kernel that does not exist does not.
            from jupyter_client.kernelspec import NoSuchKernel  # noqa: PLC0415

            ran_a_cell = notebook is not None and any(
                cell.get("execution_count") is not None for cell in notebook.cells if cell.cell_type == "code")
            not_started = notebook is not None and not ran_a_cell and not isinstance(exc, NoSuchKernel)
            died = not_started or (isinstance(exc, RuntimeError) and "Kernel died" in str(exc))
            cause = KERNEL_DIED if died else RUNNER_ERROR
            error = f"{'the kernel did not start: ' if not_started else ''}{type(exc).__name__}: {exc}"
        notebook_text = None
        if notebook is not None:
            try:
                notebook_text = nbformat.writes(notebook)
            except Exception as exc:  # an unwritable notebook must not turn into an exception here
                cause = cause if error else RUNNER_ERROR
                error = error or f"the executed notebook could not be written: {type(exc).__name__}: {exc}"
        if error is None:
            if not results.is_file():
                cause, error = NOTEBOOK_ERROR, "the notebook ran without error but wrote no results file at results_path"
            else:
                results_text = results.read_text()
                error = check_results_text(results_text)
                cause = NOTEBOOK_ERROR if error else FINISHED
    return PointOutcome(
        point_id=task.point_id,
        ok=error is None,
        results_text=results_text if error is None else None,
        notebook_text=notebook_text,
        error=error,
        seconds=time.perf_counter() - start,
        cause=cause,
        attempt=task.attempt,
    )


# -------------------------------------------------------------------------------------- the cluster


def _distributed() -> Any:
    try:
        import distributed  # noqa: PLC0415
    except ImportError as error:
        raise ImportError("running chapters needs Dask distributed (the sweep extra): pip install 'kdwide[sweep]'") from error
    return distributed


@contextlib.contextmanager
def dask_client(*, jobs: int = 1, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask ``Client`` for :func:`run_tasks`: of a new local cluster, or of an existing one.

    Args:
      jobs: local worker processes (one thread each, so one point and one kernel at a time each).
      scheduler: address of an existing Dask scheduler (``tcp://HOST:8786``); ``jobs`` is then not used. Start its
        workers with ``--nthreads 1`` for one kernel per worker.

    The local cluster's workers get this process's environment (not Dask's ``OMP_NUM_THREADS=1``, which the kernels
    would inherit), hold one point each (a worker that dies takes no queued point with it), and a task whose worker
    died fails at once (``allowed_failures=0``), so that :func:`run_tasks` counts every attempt itself.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1 (local worker processes), got {jobs!r}")
    distributed = _distributed()
    import dask  # noqa: PLC0415

    settings = {
        # Dask's developer logs keep the last N messages, each with its task, i.e. a notebook: 1,000 by default
        "distributed.admin.low-level-log-length": 50,
        "distributed.nanny.pre-spawn-environ": {"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "random")},
        "distributed.scheduler.worker-saturation": 1.0,
        # the statistical profiler would sample a thread that only waits for its kernel, and keep an hour of it
        "distributed.worker.profile.enabled": False,
    }
    with dask.config.set(settings):  # for the whole run: restarted workers and new connections read it too
        if scheduler is not None:
            client = distributed.Client(scheduler, set_as_default=False)
            try:
                yield client
            finally:
                client.close()
            return
        # no dashboard, and the scheduler's HTTP server on a free port (by default it tries 8787 and warns if taken)
        cluster = distributed.LocalCluster(
            n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
            memory_limit=0, silence_logs=logging.ERROR,
            scheduler_kwargs={"allowed_failures": 0, "dashboard": False, "dashboard_address": ":0"},
        )
        try:
            client = distributed.Client(cluster, set_as_default=False)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()


def _collect(future: Any, task: PointTask) -> PointOutcome:
    distributed = _distributed()
    try:
        return future.result()
    except distributed.KilledWorker:
        return _failure(task, WORKER_DIED, "its Dask worker process died while it ran (KilledWorker)")
    except Exception as exc:  # Dask could not run the function at all
        return _failure(task, RUNNER_ERROR, f"dask: {type(exc).__name__}: {exc}")


def check_retries(retries: Any) -> int:
    """``retries`` if it is an integer >= 0, else a ``ValueError`` naming it."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0 (more runs of a point whose kernel or worker died), "
                         f"got {retries!r}")
    return retries


def run_tasks(
    client: Any,
    tasks: Iterable[PointTask],
    *,
    retries: int = DEFAULT_RETRIES,
    on_retry: Callable[[PointOutcome], None] | None = None,
) -> Iterator[PointOutcome]:
    """Run ``tasks`` (:func:`execute_point`) on ``client``'s cluster; yield each one's final outcome as it completes.

    Args:
      client: a Dask client (:func:`dask_client`).
      tasks: the points, submitted in this order (read lazily, a few per worker thread at a time).
      retries: how many more times a point whose kernel or worker died (:data:`RETRIED_CAUSES`) runs (>= 0).
      on_retry: called with the outcome of every attempt that will run again.

    Yields:
      One :class:`PointOutcome` per task: finished, or failed (after its retries, if its cause is retried).

    Dask's own ``retries=`` covers only exceptions raised by a task, and its rescheduling of a task whose worker died
    is a scheduler setting the client neither sets (on an existing cluster) nor sees; counting attempts here gives
    one ``retries`` for both causes, and a record of every attempt. Stopping the iteration (Ctrl-C, ``close()``)
    cancels what is queued and running.
    """
    check_retries(retries)
    distributed = _distributed()
    token = os.urandom(4).hex()  # keys unique to this run: a cluster may still hold an earlier run's
    queue = iter(tasks)
    running: dict[str, tuple[Any, PointTask]] = {}
    completed = distributed.as_completed(loop=client.loop)

    def submit(task: PointTask) -> None:
        future = client.submit(execute_point, task, key=f"kdwide-point-{task.point_id}-{token}-{task.attempt}", pure=False)
        running[future.key] = (future, task)
        completed.add(future)

    def fill() -> None:
        # a few points per worker thread, so that no worker waits for the runner; the rest stay in `queue`
        window = max(2, 2 * sum(client.nthreads().values()))
        while len(running) < window:
            task = next(queue, None)
            if task is None:
                return
            submit(task)

    try:
        fill()
        for future in completed:
            _, task = running.pop(future.key)
            outcome = _collect(future, task)
            future.release()
            del future
            if not outcome.ok and outcome.cause in RETRIED_CAUSES and task.attempt <= retries:
                if on_retry is not None:
                    on_retry(outcome)
                submit(replace(task, attempt=task.attempt + 1))
            else:
                yield outcome
            fill()
    finally:
        if running:
            with contextlib.suppress(Exception):
                client.cancel([future for future, _ in running.values()], force=True)
        running.clear()
