"""Execute chapter notebooks in place with their default parameters (for committing them).

``python -m kdwide_book.notebooks book/01_effective_logit.ipynb [...]`` runs each notebook top to bottom
in a fresh ``python3`` kernel (nbclient), stores the outputs and strips execution timestamps, so the
committed notebook is exactly what nbval re-executes and compares. Exits non-zero on the first error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

__all__ = ["coalesce_streams", "execute_in_place"]


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
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    elapsed = time.perf_counter() - start
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if "outputs" in cell:
            cell.outputs = coalesce_streams(cell.outputs)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                raise RuntimeError(f"{path}: a cell wrote to stderr: {output.get('text', '')[:500]}")
    nbformat.write(notebook, path)
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
