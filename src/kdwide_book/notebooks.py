"""Executing chapter notebooks: the one executor behind the book, sweeps, paper-scale runs and the autograder.

:func:`execute` runs a notebook top to bottom in a fresh Jupyter kernel (nbclient), optionally with parameters
injected after its ``parameters`` cell the way papermill does it, in a thread and event loop of its own (so that it
also works inside a Dask worker or after other asyncio use in the same process), with the kernel's own log kept
quiet. ``python -m kdwide_book.notebooks book/01_effective_logit.ipynb [...]`` executes chapters in place for
committing them (:func:`execute_in_place`): outputs stored, execution timestamps stripped and stdout pieces merged,
so the committed notebook is exactly what nbval re-executes and compares.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from kdwide_book.results import atomic_write

__all__ = ["coalesce_streams", "execute", "execute_in_place"]

QUIET_KERNEL = ["--IPKernelApp.log_level=CRITICAL"]
"""The kernel's own log (a notice about its loopback transport, "KeyboardInterrupt caught in kernel" at shutdown)
is not part of a notebook's outputs; a kernel that fails still fails the run with its error."""


def _run_in_own_thread(client: NotebookClient) -> None:
    """Run ``client`` in a new thread with an event loop of its own (``asyncio.run``), and wait for it.

    nbclient drives the kernel through asyncio. In a Dask worker thread, or in a process whose main loop some earlier
    nbclient use left behind, the calling thread's loop can already be running elsewhere ("This event loop is already
    running"); a fresh thread and loop avoid every such interaction. If the wait is interrupted (Ctrl-C), the run is
    cancelled, which shuts its kernel down, before the interruption propagates.
    """
    state: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> None:
        state["loop"], state["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        await client.async_execute()

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # re-raised in the caller's thread
            state["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=target, name="kdwide-notebook", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:
        started.wait()
        if "task" in state and thread.is_alive():
            state["loop"].call_soon_threadsafe(state["task"].cancel)
        thread.join()
        raise
    if "error" in state:
        raise state["error"]


def execute(
    notebook: nbformat.NotebookNode,
    *,
    cwd: str | Path,
    parameters: Mapping[str, Any] | None = None,
    timeout: int | None = None,
    kernel_name: str = "python3",
    allow_errors: bool = False,
) -> nbformat.NotebookNode:
    """Execute ``notebook`` (changed in place and returned) in a fresh kernel started in ``cwd``.

    Stored outputs are cleared first, so a run that stops at an error shows nothing beyond that cell.

    Args:
      notebook: the notebook to run.
      cwd: the kernel's working directory (a chapter runs in its own folder).
      parameters: values injected in a cell after the ``parameters`` cell (papermill's convention), if any.
      timeout: seconds per cell (``None``: no limit); rounded up to whole seconds (nbclient's unit).
      kernel_name: the Jupyter kernel (``python3``: this environment's Python).
      allow_errors: run every cell even after an error (the autograder); otherwise the first error raises.

    Raises:
      nbclient.exceptions.CellExecutionError: a cell raised (unless ``allow_errors``); its ``ename`` and
        ``evalue`` name the error, and ``notebook`` holds the outputs up to that cell.
    """
    if parameters:
        from papermill.parameterize import parameterize_notebook  # noqa: PLC0415  (only where parameters are given)

        notebook.metadata.setdefault("papermill", {"default_parameters": {}, "parameters": {}})
        for cell in notebook.cells:  # what papermill's loader adds before it parameterizes
            cell.metadata.setdefault("tags", [])
        parameterized = parameterize_notebook(notebook, dict(parameters), kernel_name=kernel_name)
        notebook.cells, notebook.metadata = parameterized.cells, parameterized.metadata  # in place, like the rest
    for cell in notebook.cells:  # a run that stops early must not show stored outputs of the cells after it
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    timeout = None if timeout is None else math.ceil(timeout)
    client = NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd)}}, extra_arguments=QUIET_KERNEL)
    _run_in_own_thread(client)
    return notebook


def coalesce_streams(outputs: list) -> list:
    """Consecutive stream outputs of the same name merged into one: how many pieces a cell's printing arrives in
    depends on timing, so the stored notebook must not."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            previous["text"] = previous.get("text", "") + output.get("text", "")
        else:
            merged.append(output)
    return merged


def execute_in_place(path: str | Path, *, timeout: int = 900) -> float:
    """Execute ``path`` top to bottom, write it back with outputs; return the wall time in seconds."""
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    execute(notebook, cwd=path.parent, timeout=timeout)
    elapsed = time.perf_counter() - start
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if "outputs" in cell:
            cell.outputs = coalesce_streams(cell.outputs)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                raise RuntimeError(f"{path}: a cell wrote to stderr: {output.get('text', '')[:500]}")
    text = nbformat.writes(notebook)
    atomic_write(path, text if text.endswith("\n") else text + "\n")  # what nbformat.write writes, atomically
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"{path}: {execute_in_place(path, timeout=args.timeout):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
