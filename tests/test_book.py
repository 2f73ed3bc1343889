"""kdwide_book.book: the chapter list (from _toc.yml), the environment table, and the book build's configuration."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from kdwide_book import book
from kdwide_book.book import chapter_notebooks, environment_table, read_constraints, toc_files

ROOT = Path(__file__).resolve().parents[1]


def write_toc(tmp_path: Path, text: str) -> Path:
    (tmp_path / "_toc.yml").write_text(text)
    return tmp_path


def test_chapters_come_from_the_toc_in_order(tmp_path: Path) -> None:
    (tmp_path / "book").mkdir()
    for name in ("02_b", "01_a"):
        (tmp_path / "book" / f"{name}.ipynb").write_text("{}")
    write_toc(tmp_path, "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/02_b\n"
                        "    sections:\n      - file: book/01_a.ipynb\n  - file: book/references\n")
    assert toc_files(tmp_path) == ["book/intro", "book/02_b", "book/01_a.ipynb", "book/references"]
    assert chapter_notebooks(tmp_path) == [tmp_path / "book" / "02_b.ipynb", tmp_path / "book" / "01_a.ipynb"]
    write_toc(tmp_path, "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/03_missing\n")
    with pytest.raises(FileNotFoundError, match="03_missing"):
        chapter_notebooks(tmp_path)


def test_the_repository_toc_lists_chapter_one_first() -> None:
    assert chapter_notebooks(ROOT)[0] == ROOT / "book" / "01_effective_logit.ipynb"


def test_environment_table_compares_installed_versions_with_the_pins(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    jax_version = metadata.version("jax")
    constraints.write_text(f"# comment\nNumPy==0.0.1\npyyaml==6.0.4  # trailing\njax[cpu]=={jax_version}\n")
    assert read_constraints(constraints) == {"numpy": "0.0.1", "pyyaml": "6.0.4", "jax": jax_version}
    rows = {r["package"].lower(): r for r in environment_table(constraints)}
    assert rows["numpy"]["pinned"] == "0.0.1" and rows["numpy"]["matches"] is False
    assert rows["jax"] == {"package": "jax", "installed": jax_version, "pinned": jax_version, "matches": True}
    assert rows["kdwide"]["pinned"] is None and rows["kdwide"]["matches"] is None
    pins = ROOT / ("constraints.txt" if jax_version == "0.5.3" else "constraints-current.txt")
    assert any(r["package"] == "jax" and r["matches"] for r in environment_table(pins))


def test_command_line_lists_the_chapters(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert book.main(["chapters"]) == 0 and book.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "book/01_effective_logit.ipynb" and lines.count(lines[0]) == 2


def test_the_book_build_skips_every_virtual_environment_the_makefile_creates() -> None:
    """`make book` after `make test` must not read notebooks inside .venv-current (papermill ships some)."""
    import re

    import yaml

    excluded = yaml.safe_load((ROOT / "_config.yml").read_text())["exclude_patterns"]
    venvs = re.findall(r"^(?:CURRENT_)?VENV\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert sorted(venvs) == [".venv", ".venv-current"]
    assert all(venv in excluded for venv in venvs), f"_config.yml exclude_patterns {excluded} miss one of {venvs}"
