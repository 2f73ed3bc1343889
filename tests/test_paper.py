"""kdwide_book.paper: every chapter at paper scale through the one runner, its claims, and its command-line values
(read by the sweeps' parser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdwide_book import paper
from kdwide_book.paper import claim_table, papermill_parameters, run_paper_profile
from kdwide_book.sweep import parse_grid, parse_values

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "sweep_fixture.ipynb"


@pytest.mark.kernel
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


def test_papermill_arguments_are_read_in_order() -> None:
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


@pytest.mark.parametrize("text", ["true", "True", "TRUE", "false", "False", "null", "None", "none", "12", "-3", "0.5",
                                  "1e-3", "relu", "'1'", '"x y"'])
def test_a_command_line_value_means_the_same_in_a_sweep_and_in_a_paper_run(text: str) -> None:
    """`-p flag true` is the boolean True in both routes (one parser: kdwide_book.runner.parse_scalar)."""
    in_paper_run = papermill_parameters(["-p", "flag", text])["flag"]
    (in_sweep,) = parse_values(text)
    assert in_paper_run == in_sweep and type(in_paper_run) is type(in_sweep)
    assert parse_grid([("flag", text)], {"flag": False}) == {"flag": [in_sweep]}


def test_true_and_null_are_values_not_strings_in_both_routes() -> None:
    assert papermill_parameters(["-p", "flag", "true", "-p", "limit", "null"]) == {"flag": True, "limit": None}
    assert parse_values("true,null") == [True, None]


@pytest.mark.kernel
def test_command_line_runs_the_chapters_and_requires_their_claims(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = paper.main(["--out", str(tmp_path / "out"), "--profile", "ci", "--require-claims",
                         "--papermill-args", "-p rho 0.25", str(FIXTURE)])
    output = capsys.readouterr().out
    assert "1 of 1 chapters ran with profile='ci'" in output and "claims:" in output
    assert status == 0 and "claims: 1 of 1 hold" in output  # the fixture's one claim, C1
    results = json.loads((tmp_path / "out" / "sweep_fixture.json").read_text())
    assert results["parameters"]["rho"] == 0.25 and results["parameters"]["profile"] == "ci"


@pytest.mark.kernel
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
