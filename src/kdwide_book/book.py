"""The book as a whole: its chapter list and its software environment (imports neither JAX nor :mod:`kdwide`).

- :func:`chapter_notebooks` reads ``_toc.yml`` and returns the chapter notebooks (``book/NN_name.ipynb``) in order
  (``python -m kdwide_book.book`` prints them, one a line).
- :func:`environment_table` lists the installed version of every package beside its pin in ``constraints.txt``,
  and :func:`platform_summary` the machine (the reproducibility appendix shows both).

Running every chapter at paper scale is :mod:`kdwide_book.paper`; the book's Sphinx extension is
:mod:`kdwide_book.sphinx_extension`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CHAPTER_PATTERN",
    "chapter_notebooks",
    "environment_table",
    "main",
    "platform_summary",
    "read_constraints",
    "toc_files",
]

#: A chapter is a notebook ``book/NN_name.ipynb`` (two digits, an underscore, a name).
CHAPTER_PATTERN = re.compile(r"(^|/)\d\d_[A-Za-z0-9_]+$")


def toc_files(root: str | Path = ".") -> list[str]:
    """Every ``file:`` entry of ``ROOT/_toc.yml`` (root page first, then in reading order), without suffix."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files: list[str] = [toc["root"]] if "root" in toc else []

    def walk(entries: Sequence[Any]) -> None:
        for entry in entries or []:
            if isinstance(entry, dict):
                if "file" in entry:
                    files.append(str(entry["file"]))
                for key in ("chapters", "sections", "parts"):
                    walk(entry.get(key, []))

    for key in ("chapters", "parts", "sections"):
        walk(toc.get(key, []))
    return files


def chapter_notebooks(root: str | Path = ".") -> list[Path]:
    """The chapter notebooks listed in ``ROOT/_toc.yml``, in reading order, as paths under ``root``.

    Raises:
      FileNotFoundError: a chapter listed in the table of contents has no ``.ipynb`` file.
    """
    root = Path(root)
    chapters = []
    for entry in toc_files(root):
        stem = re.sub(r"\.(ipynb|md)$", "", entry)
        if not CHAPTER_PATTERN.search(stem):
            continue
        path = root / f"{stem}.ipynb"
        if not path.is_file():
            raise FileNotFoundError(f"_toc.yml lists chapter {entry!r} but {path} does not exist")
        chapters.append(path)
    return chapters


def read_constraints(path: str | Path) -> dict[str, str]:
    """``name==version`` lines of a pip constraints file as ``{normalized name: version}``."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_normalize(name.split("[", 1)[0])] = version.strip()
    return pins


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def environment_table(constraints: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per installed distribution: ``{"package", "installed", "pinned", "matches"}``, sorted by name.

    ``pinned`` is the version in ``constraints`` (``None`` when the file does not pin it, or no file is given);
    ``matches`` is ``installed == pinned`` (``None`` where nothing is pinned).
    """
    pins = read_constraints(constraints) if constraints is not None else {}
    installed: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            installed[_normalize(name)] = (name, dist.version)
    rows = []
    for key in sorted(installed):
        name, version = installed[key]
        pinned = pins.get(key)
        rows.append({"package": name, "installed": version, "pinned": pinned,
                     "matches": None if pinned is None else version == pinned})
    return rows


def platform_summary() -> dict[str, str]:
    """Python, operating system, machine, CPU count (without importing JAX)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu_count": str(os.cpu_count()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kdwide_book.book [chapters]``: print the chapter notebooks of ``_toc.yml``, one a line."""
    parser = argparse.ArgumentParser(prog="python -m kdwide_book.book", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="chapters", choices=["chapters"],
                        help="print the chapter notebooks of _toc.yml (paper runs: python -m kdwide_book.paper)")
    parser.parse_args(argv)
    print("\n".join(str(path) for path in chapter_notebooks()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
