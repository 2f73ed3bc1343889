"""Results files, and the project's only ways of writing a file.

A results file is one JSON object per executed chapter: ``{"chapter", "parameters", "versions", "claims",
"records"}``; ``claims`` maps claim IDs of the book's claim table (introduction) to ``{"holds": bool, "evidence":
str}`` computed from the records, and ``records`` are tidy rows (one measurement per row) that a sweep concatenates
into one table.

Every file the project writes goes through this module (``tests/test_layers.py`` searches ``src/`` for any other
write): :func:`atomic_write` writes a whole file (temporary file, fsync, rename), :func:`write_json` is the one JSON
writer on top of it, and :class:`JsonLinesLog` appends lines to a log that is never rewritten (the sweep's status
log: rewriting a growing file atomically for every line would cost its whole size each time).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "JsonLinesLog",
    "atomic_write",
    "package_versions",
    "read_json_lines",
    "read_results",
    "temporary_path",
    "to_jsonable",
    "write_json",
    "write_results",
]


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


def write_json(path: str | os.PathLike, value: Any, *, compact: bool = False, fsync: bool = True) -> Path:
    """The project's one JSON writer: ``value`` (made JSON-ready by :func:`to_jsonable`) written atomically.

    Indented by one space, one key or item a line (``compact=True``: no spaces or line breaks, for large arrays of
    numbers), with a final newline; non-finite floats become ``null`` (never ``NaN``, which is not JSON). Returns the
    path.

    Example:
      >>> import tempfile
      >>> path = write_json(Path(tempfile.mkdtemp()) / "x.json", {"rho": np.float64(0.5), "n": [1, 2]}, compact=True)
      >>> path.read_text()
      '{"rho":0.5,"n":[1,2]}\\n'
    """
    layout: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 1}
    atomic_write(path, json.dumps(to_jsonable(value), allow_nan=False, **layout) + "\n", fsync=fsync)
    return Path(path)


class JsonLinesLog:
    """A file of JSON lines opened for appending, never rewritten: the one writer that appends to a file.

    Each :meth:`append` is one ``write`` of a whole line, flushed (and fsynced with ``sync=True``). A line cut short
    by a killed process is skipped by :func:`read_json_lines`, and the next line starts on a line of its own.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._handle = open(self.path, "ab")
        if self._handle.tell() > 0:
            with open(self.path, "rb") as reader:
                reader.seek(-1, os.SEEK_END)
                if reader.read(1) != b"\n":
                    self._handle.write(b"\n")

    def append(self, document: Mapping[str, Any], *, sync: bool = False) -> None:
        """Append ``document`` (made JSON-ready) as one line; flush it, and fsync it if ``sync``."""
        line = json.dumps(to_jsonable(dict(document)), separators=(",", ":"))
        self._handle.write(line.encode() + b"\n")
        self._handle.flush()
        if sync:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Close the file (fsyncing what is not yet on disk)."""
        try:
            os.fsync(self._handle.fileno())
        except OSError:
            pass
        self._handle.close()


def read_json_lines(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The objects of a :class:`JsonLinesLog` file in order (none if there is no file); a torn line is skipped."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        for line in handle:
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict):
                yield document


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
    return write_json(path, document)


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a results file back."""
    with open(path) as handle:
        return json.load(handle)
