"""Results files: one JSON object per executed chapter.

``{"chapter", "parameters", "versions", "claims", "records"}``; ``claims`` maps claim IDs of
the book's claim table (introduction) to ``{"holds": bool, "evidence": str}`` computed from the records, and ``records``
are tidy rows (one measurement per row) that a sweep concatenates into one table.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["package_versions", "to_jsonable", "temporary_path", "atomic_write", "write_results", "read_results"]


def package_versions() -> dict[str, str]:
    """Versions of kdwide, jax and neural-tangents (without importing neural-tangents)."""
    versions = {}
    for name, dist in (("kdwide", "kdwide"), ("jax", "jax"), ("neural_tangents", "neural-tangents")):
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def to_jsonable(value: Any) -> Any:
    """Convert NumPy/JAX scalars and arrays (recursively) to plain JSON types; non-finite floats become None."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arr = np.asarray(value)
        return to_jsonable(arr.item() if arr.ndim == 0 else arr.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def temporary_path(path: str | os.PathLike) -> Path:
    """A fresh ``.NAME.PID-RANDOM.tmp`` beside ``path`` (its folder is created): never taken for a finished file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent / f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp"


def atomic_write(path: str | os.PathLike, content: str | bytes, *, fsync: bool = True) -> None:
    """The project's one atomic write: ``content`` to a temporary file beside ``path``, fsync, rename over ``path``.

    A reader sees the old file or the whole new one, never half of it; the umask applies (unlike mkstemp's 0600).
    ``str`` content is written as UTF-8. ``fsync=False`` skips the fsync: the rename is still atomic for every
    process, but an operating-system crash may leave the file empty (for writers that check files on reading and
    fsync a log of their own, like the sweep runner).
    """
    path = Path(path)
    temporary = temporary_path(path)
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content.encode() if isinstance(content, str) else content)
            stream.flush()
            if fsync:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_results(
    path: str | os.PathLike,
    *,
    chapter: str,
    parameters: Mapping[str, Any],
    claims: Mapping[str, Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
) -> Path:
    """Write the results file atomically (temporary file, then rename). Returns the path."""
    for claim_id, entry in claims.items():
        if set(entry) != {"holds", "evidence"}:
            raise ValueError(f"claims[{claim_id!r}] must have exactly 'holds' and 'evidence'")
    document = {
        "chapter": chapter,
        "parameters": to_jsonable(dict(parameters)),
        "versions": package_versions(),
        "claims": to_jsonable(dict(claims)),
        "records": to_jsonable(list(records)),
    }
    path = Path(path)
    atomic_write(path, json.dumps(document, indent=1, allow_nan=False))
    return path


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results file back."""
    with open(path) as handle:
        return json.load(handle)
