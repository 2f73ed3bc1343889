"""The sweep runner under faults, on real sweeps of a tiny notebook without JAX (tests/data/sweep_fault_fixture.ipynb):
a kernel or a Dask worker process SIGKILLed mid-sweep (its point runs again, or is reported failed once the retries are
spent; the other points are untouched), interruption by SIGINT and SIGKILL of the runner then resuming (every point
finished exactly once), and a notebook edited between runs (its points run again; a table holds one version)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from kdwide_book.cli import main
from kdwide_book.results import read_results
from kdwide_book.runner import KERNEL_DIED, WORKER_DIED
from kdwide_book.sweep import point_id, read_status, read_sweep_table, rebuild_table, run_sweep

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

FIXTURE = Path(__file__).parent / "data" / "sweep_fault_fixture.ipynb"
VICTIM = 1


def _ids(*items: int, **fixed: object) -> list[str]:
    return [point_id({"item": item, **fixed}) for item in items]


def _start(out: Path, items: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "kdwide_book.cli", "sweep", str(FIXTURE), "-p", "item", items, "--out", str(out),
               "--jobs", "2", "--no-progress", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, (f"the sweep ended while waiting for {what}", process.communicate())
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _reap(processes: list[psutil.Process]) -> list[int]:
    """Wait for the sweep's workers and kernels to exit by themselves; return (and kill) those that did not."""
    _, alive = psutil.wait_procs(processes, timeout=20)
    for process in alive:
        process.kill()
    return [process.pid for process in alive]


def _finished_events(out: Path) -> Counter:
    return Counter(event["point"] for event in read_status(out) if event["event"] == "finished")


@pytest.mark.parametrize("spent", [False, True], ids=["retried", "retries-spent"])
@pytest.mark.parametrize("target", ["kernel", "worker"])
def test_a_killed_kernel_or_worker_reruns_its_point_and_no_other(tmp_path, target, spent):
    """SIGKILL the kernel (or the LocalCluster worker process running it) of one point while it runs. With the
    default two retries the point runs again and finishes, every other point finishes once, exit code 0. Killed on
    both of its runs with --retries 1, it is listed as failed with the cause, exit code 1."""
    out, signals = tmp_path / "out", tmp_path / "signals"
    signals.mkdir()
    kills = 2 if spent else 1
    retries = ["--retries", "1"] if spent else []
    process = _start(out, "0,1,2", "-p", "victim", str(VICTIM), "-p", "kill_attempts", str(kills),
                     "-p", "signal_directory", str(signals), *retries)
    descendants = []
    for attempt in range(1, kills + 1):
        pid_file = signals / f"item-{VICTIM}.{attempt}.pid"
        _wait_for(pid_file.exists, process, f"attempt {attempt} of the victim")
        kernel = psutil.Process(int(pid_file.read_text()))
        assert process.pid in [parent.pid for parent in kernel.parents()], "the kernel belongs to this sweep"
        worker = kernel.parent()
        assert worker.pid != process.pid and "multiprocessing" in " ".join(worker.cmdline()), worker.cmdline()
        descendants += psutil.Process(process.pid).children(recursive=True)
        (kernel if target == "kernel" else worker).kill()
    _, stderr = process.communicate(timeout=120)
    assert _reap([p for p in descendants if p.is_running()]) == []  # an orphaned kernel exits by itself

    cause = KERNEL_DIED if target == "kernel" else WORKER_DIED
    fixed = {"victim": VICTIM, "kill_attempts": kills, "signal_directory": str(signals.resolve())}
    victim, others = _ids(VICTIM, **fixed)[0], _ids(0, 2, **fixed)
    events = list(read_status(out))
    retried = [(event["point"], event["cause"], event["attempt"]) for event in events if event["event"] == "retry"]
    # Killing a worker also ends its kernel's connection: the runner may notice either first (a race seen in CI), so
    # a killed worker's run is reported as a dead worker or a dead kernel; a killed kernel is always a dead kernel.
    causes = {cause} if target == "kernel" else {WORKER_DIED, KERNEL_DIED}
    assert [(point, attempt) for point, _, attempt in retried] == [(victim, 1)]  # only the killed point ran again
    assert retried[0][1] in causes, retried
    finished = _finished_events(out)
    assert all(finished[point] == 1 for point in others)
    table = read_sweep_table(out)
    manifest = json.loads((out / "manifest.json").read_text())
    if not spent:
        assert process.returncode == 0, stderr
        assert finished[victim] == 1
        assert sorted(table["value"]) == [1, 11, 21]
        assert manifest["state"] == "finished" and manifest["counts"]["retried"] == 1
    else:
        assert process.returncode == 1, stderr
        assert victim not in finished
        (failed,) = [event for event in events if event["event"] == "failed"]
        assert failed["point"] == victim and failed["cause"] in causes and failed["attempt"] == 2
        assert f"{victim}: {failed['cause']} (attempt 2)" in stderr
        assert failed["cause"] in (out / "points" / victim / "error.txt").read_text()
        assert list(manifest["failed"]) == [victim] and manifest["state"] == "failed"
        assert sorted(table["value"]) == [1, 21]


def test_interrupted_and_killed_runner_resumes_every_point_exactly_once(tmp_path):
    out = tmp_path / "killed"
    items = "0,1,2,3,4"
    slow = ("-p", "sleep_seconds", "1.0")

    def finished_files() -> set[Path]:
        return set(out.glob("points/*/results.json"))

    # 1) SIGINT once a point has finished: exit 130, workers and kernels gone, the finished point kept.
    first = _start(out, items, *slow)
    _wait_for(lambda: len(finished_files()) >= 1, first, "a finished point")
    children = psutil.Process(first.pid).children(recursive=True)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130 and "interrupted" in stderr, stderr
    assert _reap(children) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["state"] == "interrupted" and manifest["counts"]["finished"] >= 1
    kept = {path: path.read_bytes() for path in finished_files()}

    # 2) SIGKILL once more points have finished (no chance to clean up); orphaned workers and kernels exit.
    second = _start(out, items, *slow)
    _wait_for(lambda: len(finished_files()) >= len(kept) + 1, second, "another finished point")
    children = psutil.Process(second.pid).children(recursive=True)
    second.send_signal(signal.SIGKILL)
    assert second.wait(timeout=60) == -signal.SIGKILL
    second.communicate(timeout=60)
    assert _reap(children) == []
    assert all(path.read_bytes() == content for path, content in kept.items())

    # 3) resume to the end: every point finished exactly once, earlier results untouched.
    third = _start(out, items, *slow)
    _, stderr = third.communicate(timeout=120)
    assert third.returncode == 0, stderr
    assert all(path.read_bytes() == content for path, content in kept.items())
    every_point = _ids(0, 1, 2, 3, 4, sleep_seconds=1.0)
    assert _finished_events(out) == Counter({point: 1 for point in every_point})
    table = read_sweep_table(out)
    assert sorted(table["value"]) == [1, 11, 21, 31, 41] and list(table["point"]) == every_point
    assert list(out.rglob("*.tmp")) == [] and not (out / ".work").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["finished"] == 5 and manifest["counts"]["pending"] == 0


def _edit(notebook: Path, old: str, new: str) -> None:
    text = notebook.read_text()
    assert old in text
    notebook.write_text(text.replace(old, new))


def test_an_edited_notebook_reruns_its_points_and_a_table_holds_one_version(tmp_path, capsys):
    notebook, out = tmp_path / "fixture.ipynb", tmp_path / "out"
    notebook.write_text(FIXTURE.read_text())
    # a results file that no status line vouches for (a runner killed between the two, an older kdwide) is moved aside
    unrecorded = out / "points" / _ids(0)[0] / "results.json"
    unrecorded.parent.mkdir(parents=True)
    unrecorded.write_text(json.dumps({"records": [{"item": 0, "value": 999}]}))
    first = run_sweep(notebook, {"item": [0, 1]}, out=out, jobs=2, progress=False)
    assert first.ok and sorted(first.table["value"]) == [1, 11] and first.stale == (_ids(0)[0],)
    assert read_results(out / "stale" / "unrecorded" / _ids(0)[0] / "results.json")["records"][0]["value"] == 999

    _edit(notebook, "A tiny notebook", "A small notebook")  # prose: the same notebook, nothing runs
    again = run_sweep(notebook, {"item": [0, 1]}, out=out, jobs=2, progress=False)
    assert again.executed == () and again.notebook_sha256 == first.notebook_sha256

    _edit(notebook, "value = 10 * item + 1", "value = 10 * item + 2")  # code: its points are stale
    second = run_sweep(notebook, {"item": [0, 1, 2]}, out=out, jobs=2, progress=False)
    assert second.notebook_sha256 != first.notebook_sha256
    assert sorted(second.stale) == sorted(_ids(0, 1)) and sorted(second.executed) == sorted(_ids(0, 1, 2))
    assert sorted(second.table["value"]) == [2, 12, 22]  # no row of the first version
    assert "changed since 2 points finished" in capsys.readouterr().err
    for point in _ids(0, 1):  # the first version's results are moved aside, not lost
        moved = out / "stale" / first.notebook_sha256[:12] / point / "results.json"
        assert read_results(moved)["records"][0]["value"] in (1, 11)
    finished = [(e["point"], e["notebook_sha256"]) for e in read_status(out) if e["event"] == "finished"]
    assert set(finished[-3:]) == {(point, second.notebook_sha256) for point in _ids(0, 1, 2)}

    _edit(notebook, "value = 10 * item + 2", "value = 10 * item + 3")
    with pytest.raises(ValueError, match="one table cannot hold both"):  # keeping old results, more points to run
        run_sweep(notebook, {"item": [0, 1, 2, 3]}, out=out, keep_stale=True, progress=False)
    kept = run_sweep(notebook, {"item": [0, 1, 2]}, out=out, keep_stale=True, progress=False)
    assert kept.executed == () and kept.notebook_sha256 == second.notebook_sha256
    assert sorted(kept.table["value"]) == [2, 12, 22]

    (out / "table.csv").unlink()
    (out / "table.parquet").unlink()
    assert main(["table", str(out)]) == 0
    assert sorted(read_sweep_table(out)["value"]) == [2, 12, 22]
    assert rebuild_table(out).equals(read_sweep_table(out))
