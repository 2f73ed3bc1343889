"""kdwide_book.book: chapter list, environment table, the Sphinx asset filter and the paper-profile runner."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from kdwide_book import book
from kdwide_book.book import (
    chapter_notebooks,
    claim_table,
    deduplicate_assets,
    environment_table,
    external_assets,
    read_constraints,
    run_paper_profile,
    toc_files,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "sweep_fixture.ipynb"


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


class Asset:
    """Stands in for Sphinx's _JavaScript (filename, priority, attributes)."""

    def __init__(self, filename: str | None, priority: int = 500, **attributes: str) -> None:
        self.filename, self.priority, self.attributes = filename, priority, attributes


def test_assets_listed_twice_are_dropped_and_network_assets_found() -> None:
    thebe = "const THEBE_JS_URL = 'x';"
    assets = [Asset("_static/a.js"), Asset(None, body=thebe), Asset("", body=thebe), Asset("_static/a.js"),
              Asset("_static/a.js", priority=200), Asset("https://cdn.example.invalid/m.js", defer="defer"),
              Asset("//cdn.example.invalid/n.js")]
    unique = deduplicate_assets(assets)
    assert unique == [assets[0], assets[1], assets[4], assets[5], assets[6]]
    assert external_assets(unique) == ["https://cdn.example.invalid/m.js", "//cdn.example.invalid/n.js"]
    assert external_assets([Asset(None, body="const u = 'https://x.invalid';")]) == []


def test_paper_profile_runs_every_notebook_with_overrides_into_the_output_folder(tmp_path: Path) -> None:
    before = FIXTURE.read_bytes()
    summary = run_paper_profile(tmp_path / "paper", notebooks=[FIXTURE, tmp_path / "missing.ipynb"],
                                papermill_args=["-p", "rho", "0.25"])
    assert FIXTURE.read_bytes() == before, "the committed notebook must not change"
    ok, missing = summary["chapters"]
    assert ok["succeeded"] and ok["seconds"] > 0 and Path(ok["output"]) == (tmp_path / "paper" / FIXTURE.name).resolve()
    results = json.loads(Path(ok["results"]).read_text())
    assert results["parameters"]["profile"] == "paper" and results["parameters"]["rho"] == 0.25
    assert len(results["records"]) == 100  # the fixture's paper-profile size (ci: 3)
    assert not missing["succeeded"] and missing["results"] is None and "missing.ipynb" in missing["error"]
    assert json.loads((tmp_path / "paper" / "timings.json").read_text()) == summary
    assert summary["profile"] == "paper" and summary["papermill_args"] == ["-p", "rho", "0.25"]


def test_claim_table_reads_every_claim_and_flags_missing_results(tmp_path: Path) -> None:
    good, bad = tmp_path / "01_a.json", tmp_path / "02_b.json"
    good.write_text(json.dumps({"claims": {"C1": {"holds": True, "evidence": "e1"}}}))
    bad.write_text(json.dumps({"claims": {"R2": {"holds": False, "evidence": "e2"}, "R3": {"holds": True}}}))
    summary = {"chapters": [
        {"notebook": "book/01_a.ipynb", "succeeded": True, "results": str(good)},
        {"notebook": "book/02_b.ipynb", "succeeded": True, "results": str(bad)},
        {"notebook": "book/03_c.ipynb", "succeeded": False, "results": None},
    ]}
    rows = claim_table(summary)
    assert [(r["chapter"], r["claim"], r["holds"]) for r in rows] == [
        ("01_a", "C1", True), ("02_b", "R2", False), ("02_b", "R3", True), ("03_c", None, False)]
    assert rows[0]["evidence"] == "e1"


def test_paper_profile_refuses_an_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'profile' must be 'ci' or 'paper'"):
        run_paper_profile(tmp_path, notebooks=[], profile="gpu")


def test_command_line_lists_the_chapters(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert book.main(["chapters"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "book/01_effective_logit.ipynb"


def test_author_year_labels_for_the_bibliography() -> None:
    parse_file = pytest.importorskip("pybtex.database", reason="pybtex (the book extra) is not installed").parse_file

    entries = parse_file(str(ROOT / "references.bib")).entries
    assert book.author_year_label(entries["hinton2015distilling"]) == "Hinton et al., 2015"
    assert book.author_year_label(entries["phuong2019towards"]) == "Phuong and Lampert, 2019"
    assert book.author_year_label(entries["kdwidebook"]) == "The kd-wide-book authors, 2026"
    book._register_bibliography_style()
    from pybtex.plugin import find_plugin

    style = find_plugin("pybtex.style.formatting", "kdwide")()
    labels = [e.label for e in style.format_entries([entries["jacot2018neural"], entries["jacot2018neural"]])]
    assert labels == ["Jacot et al., 2018", "Jacot et al., 2018b"]


def test_papermill_arguments_are_read_as_papermill_reads_them() -> None:
    from kdwide_book.book import papermill_parameters

    assert papermill_parameters(["-p", "rho", "0.25", "-p", "n", "3", "-p", "flag", "True", "-p", "name", "x1"]) == {
        "rho": 0.25, "n": 3, "flag": True, "name": "x1"}
    assert papermill_parameters(["-y", "{n_values: [16, 32], seed: 1}", "-r", "dataset", "7"]) == {
        "n_values": [16, 32], "seed": 1, "dataset": "7"}
    with pytest.raises(ValueError, match="papermill_args"):
        papermill_parameters(["--log-output"])
    with pytest.raises(ValueError, match="YAML mapping"):
        papermill_parameters(["-y", "[1, 2]"])


def test_paper_profile_sets_profile_and_results_path_itself(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must not set 'results_path'"):
        run_paper_profile(tmp_path, notebooks=[FIXTURE], papermill_args=["-p", "results_path", "x.json"])


def test_the_book_build_skips_every_virtual_environment_the_makefile_creates() -> None:
    """`make book` after `make test` must not read notebooks inside .venv-current (papermill ships some)."""
    import re

    import yaml

    excluded = yaml.safe_load((ROOT / "_config.yml").read_text())["exclude_patterns"]
    venvs = re.findall(r"^(?:CURRENT_)?VENV\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert sorted(venvs) == [".venv", ".venv-current"]
    assert all(venv in excluded for venv in venvs), f"_config.yml exclude_patterns {excluded} miss one of {venvs}"


def test_paper_profile_goes_through_the_runner_and_reruns_a_chapter_whose_kernel_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The paper route is the sweep runner: a relative path argument reaches the chapter as an absolute path, and a
    chapter whose kernel is SIGKILLed runs again (the fault fixture waits to be killed on its first attempt)."""
    import os
    import signal
    import threading
    import time

    fixture = ROOT / "tests" / "data" / "sweep_fault_fixture.ipynb"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "signals").mkdir()
    pid_file = tmp_path / "signals" / "item-0.1.pid"

    def kill_the_kernel() -> None:
        deadline = time.monotonic() + 120
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_the_kernel, daemon=True)
    killer.start()
    summary = run_paper_profile("paper", notebooks=[fixture], papermill_args=[
        "-p", "victim", "0", "-p", "signal_directory", "signals"])
    killer.join(timeout=5)
    (chapter,) = summary["chapters"]
    assert chapter["succeeded"] and chapter["attempts"] == 2, chapter
    assert pid_file.exists() and not (tmp_path / "signals" / "item-0.2.pid").exists()
    assert json.loads(Path(chapter["results"]).read_text())["records"][0]["value"] == 1
    with pytest.raises(ValueError, match="parameter 'signal_directory'.*does not exist"):
        run_paper_profile("paper", notebooks=[fixture], papermill_args=["-p", "signal_directory", "missing"])
