"""Tests of the sweep runner (kdwide_book.sweep, `kdwide sweep`, kdwide_book.runner): parsing, planning, path
parameters and notebook identity without execution, then real sweeps of the tiny fixture notebook
tests/data/sweep_fixture.ipynb (a local Dask cluster, an existing scheduler, a failing point). Faults (killed kernels,
workers and runners, edited notebooks) are in tests/test_sweep_faults.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kdwide_book.cli import main
from kdwide_book.results import read_results
from kdwide_book.runner import (
    MISSING_PATH,
    PointTask,
    dask_client,
    is_path_parameter,
    notebook_hash,
    notebook_path_defaults,
    run_tasks,
)
from kdwide_book.sweep import (
    StatusLog,
    execute_point,
    notebook_parameters,
    parse_grid,
    parse_scalar,
    parse_seeds,
    parse_values,
    plan_sweep,
    point_id,
    read_status,
    read_sweep_table,
    run_sweep,
    sweep_table,
)

FIXTURE = Path(__file__).parent / "data" / "sweep_fixture.ipynb"
RECORDS_PER_POINT = 3  # the fixture's "ci" profile: n_points = 3
GRID = {"rho": [0.25, 0.5]}
SEEDS = [0, 1]


# ------------------------------------------------------------------------------- parsing and planning


def test_parse_scalar_types():
    assert parse_scalar("None") is None and parse_scalar("null") is None
    assert parse_scalar("true") is True and parse_scalar("False") is False
    assert parse_scalar("12") == 12 and isinstance(parse_scalar("12"), int)
    assert parse_scalar("-3") == -3
    assert parse_scalar("0.5") == 0.5 and isinstance(parse_scalar("1.0"), float)
    assert parse_scalar("1e-3") == 1e-3
    assert parse_scalar("relu") == "relu"
    assert parse_scalar("'1'") == "1"  # quotes keep a string


def test_parse_values_scalar_and_list_valued():
    assert parse_values("0,0.25,1") == [0, 0.25, 1]
    assert parse_values("0.5,1", list_valued=True) == [[0.5, 1]]  # one point with a list
    assert parse_values("0,0.5;0.5,1", list_valued=True) == [[0, 0.5], [0.5, 1]]  # two points


def test_parse_seeds():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("3") == [3]
    assert parse_seeds("0-2,10") == [0, 1, 2, 10]
    for bad in ("4-0", "a", "-1", "0,0", "1.5"):
        with pytest.raises(ValueError, match="seed"):
            parse_seeds(bad)


def test_notebook_parameters_reads_the_parameters_cell(tmp_path):
    defaults = notebook_parameters(FIXTURE)
    assert defaults == {
        "rho": 0.5,
        "temperature": 1.0,
        "seed": 0,
        "profile": "ci",
        "results_path": None,
        "fail": False,
        "sleep_seconds": 0.0,
    }
    untagged = tmp_path / "untagged.ipynb"
    document = json.loads(FIXTURE.read_text())
    for cell in document["cells"]:
        cell["metadata"].pop("tags", None)
    untagged.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="parameters"):
        notebook_parameters(untagged)


def test_parse_grid_uses_list_valued_names():
    grid = parse_grid([("rho", "0,1"), ("rho_values", "0.5,1"), ("widths", "8,16;32")], {"widths": [8]})
    assert grid == {"rho": [0, 1], "rho_values": [[0.5, 1]], "widths": [[8, 16], [32]]}
    with pytest.raises(ValueError, match="twice"):
        parse_grid([("rho", "0"), ("rho", "1")], {})


def test_point_id_is_stable_and_distinguishes_points():
    a = point_id({"rho": 0.25, "temperature": 4, "seed": 0})
    assert a == point_id({"seed": 0, "temperature": 4.0, "rho": 0.25})  # order and 4 vs 4.0 do not matter
    assert a.startswith("rho=0.25_seed=0_temperature=4__") and len(a.split("__")[1]) == 10
    assert a != point_id({"rho": 0.25, "temperature": 4, "seed": 1})
    assert point_id({"rho_values": [0.5, 1]}) != point_id({"rho_values": [0.5, 1.5]})
    assert "/" not in point_id({"profile": "a/b"})


def test_plan_sweep_is_the_product_in_grid_order():
    points = plan_sweep(FIXTURE, {"rho": [0.25, 0.5], "temperature": [1, 4]}, seeds=[0, 1, 2])
    assert len(points) == 12 and len({p.id for p in points}) == 12
    assert points[0].parameters == {"rho": 0.25, "temperature": 1, "seed": 0}
    assert points[1].parameters == {"rho": 0.25, "temperature": 1, "seed": 1}
    assert points[-1].parameters == {"rho": 0.5, "temperature": 4, "seed": 2}


@pytest.mark.parametrize(
    "grid, seeds, message",
    [
        ({"rhoo": [0.5]}, None, "unknown parameter 'rhoo' \\(did you mean 'rho'\\?\\)"),
        ({"rho": [1.5]}, None, "parameter 'rho' must be a number in \\[0, 1\\]"),
        ({"temperature": [0]}, None, "parameter 'temperature' must be a finite number > 0"),
        ({"seed": [-1]}, None, "parameter 'seed' must be an integer >= 0"),
        ({"results_path": ["x.json"]}, None, "set by the sweep runner"),
        ({"seed": [0]}, [1], "not both"),
        ({"rho": [0.5, 0.5]}, None, "twice"),
        ({"rho": []}, None, "no values"),
    ],
)
def test_plan_sweep_rejects_bad_sweeps(grid, seeds, message):
    with pytest.raises(ValueError, match=message):
        plan_sweep(FIXTURE, grid, seeds=seeds)


def test_bad_parameter_fails_before_any_execution(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["sweep", str(FIXTURE), "-p", "rho", "0.5", "-p", "temprature", "1,4", "--out", str(out)]) == 2
    assert "unknown parameter 'temprature'" in capsys.readouterr().err
    assert not out.exists()  # nothing ran, nothing was written
    assert main(["sweep", str(FIXTURE), "-p", "rho", "0.5,2", "--out", str(out)]) == 2
    assert "parameter 'rho' must be" in capsys.readouterr().err
    assert not out.exists()


def test_dry_run_lists_points(tmp_path, capsys):
    out = tmp_path / "dry"
    assert main(["sweep", str(FIXTURE), "-p", "rho", "0.25,0.5", "--seeds", "0-2", "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and lines[0].startswith(point_id({"rho": 0.25, "seed": 0}))
    assert not out.exists()


def test_sweep_table_keeps_swept_values_that_records_reuse(tmp_path):
    from kdwide_book.results import write_results

    points = plan_sweep(FIXTURE, {"rho": [0.25, 0.5], "temperature": [1]})
    for point in points:  # records carry their own rho (an inner grid) but the swept temperature
        records = [{"rho": inner, "temperature": 1.0, "value": inner * point.parameters["rho"]} for inner in (0.1, 0.9)]
        write_results(point.folder(tmp_path) / "results.json", chapter="c", parameters={}, claims={}, records=records)
    table = sweep_table(points, tmp_path)
    assert list(table.columns) == ["point", "sweep_rho", "temperature", "rho", "value"]
    assert list(table["sweep_rho"]) == [0.25, 0.25, 0.5, 0.5] and list(table["rho"]) == [0.1, 0.9, 0.1, 0.9]
    assert list(table["point"]) == [points[0].id] * 2 + [points[1].id] * 2
    assert len(sweep_table(points[:1], tmp_path)) == 2
    empty = sweep_table(plan_sweep(FIXTURE, {"rho": [0.75]}), tmp_path)
    assert list(empty.columns) == ["point"] and len(empty) == 0


# --------------------------------------------------------------------------------- real executions


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps") / "local"
    return run_sweep(FIXTURE, GRID, seeds=SEEDS, out=out, jobs=2, progress=False)


def _expected_records(summary):
    rows = []
    for point in summary.points:
        document = read_results(point.folder(summary.out) / "results.json")
        rows += [{"point": point.id, **record} for record in document["records"]]
    return pd.DataFrame(rows)


@pytest.mark.kernel
def test_local_sweep_writes_one_row_set_per_point(local_sweep):
    summary = local_sweep
    assert summary.ok and not summary.failed and not summary.skipped
    assert len(summary.points) == 4 and sorted(summary.executed) == sorted(p.id for p in summary.points)
    table = read_sweep_table(summary.out)
    assert list(table["point"].value_counts().sort_index()) == [RECORDS_PER_POINT] * 4
    assert list(table.drop_duplicates("point")["point"]) == [p.id for p in summary.points]  # grid order
    assert not table.duplicated(["point", "index"]).any()
    for point in summary.points:
        rows = table[table["point"] == point.id]
        assert set(rows["rho"]) == {point.parameters["rho"]} and set(rows["seed"]) == {point.parameters["seed"]}
        assert (point.folder(summary.out) / "notebook.ipynb").is_file()
        document = read_results(point.folder(summary.out) / "results.json")
        assert document["claims"]["C1"]["holds"] is True
        assert document["parameters"]["kernel_python"] == sys.executable  # the kernel ran this environment's Python
    pd.testing.assert_frame_equal(table, _expected_records(summary), check_like=True)
    pd.testing.assert_frame_equal(pd.read_csv(summary.out / "table.csv"), table)
    manifest = json.loads((summary.out / "manifest.json").read_text())
    assert manifest["state"] == "finished" and manifest["counts"]["finished"] == 4
    assert manifest["notebook"]["name"] == FIXTURE.name and manifest["versions"]["papermill"]
    assert manifest["notebook"]["sha256"] == summary.notebook_sha256 == manifest["table"]["notebook_sha256"]
    assert manifest["runner"]["kernel"]["executable"] == sys.executable
    events = list(read_status(summary.out))
    assert [e["event"] for e in events] == ["run"] + ["finished"] * 4 + ["end"]
    assert sorted(e["point"] for e in events[1:5]) == sorted(p.id for p in summary.points)
    assert all(e["notebook_sha256"] == summary.notebook_sha256 and e["attempt"] == 1 for e in events[1:5])
    leftovers = [p for p in summary.out.rglob("*.tmp")]
    assert leftovers == []


@pytest.mark.kernel
def test_second_run_does_no_work(local_sweep):
    before = {p: p.stat().st_mtime_ns for p in local_sweep.out.glob("points/*/*")}
    again = run_sweep(FIXTURE, GRID, seeds=SEEDS, out=local_sweep.out, jobs=2, progress=False)
    assert again.executed == () and sorted(again.skipped) == sorted(p.id for p in again.points) and again.ok
    assert {p: p.stat().st_mtime_ns for p in local_sweep.out.glob("points/*/*")} == before
    pd.testing.assert_frame_equal(again.table, read_sweep_table(local_sweep.out))
    pd.testing.assert_frame_equal(again.table, local_sweep.table)


@pytest.mark.kernel
def test_out_folder_of_another_notebook_is_refused(local_sweep, tmp_path):
    other = tmp_path / "other.ipynb"
    other.write_text(FIXTURE.read_text())
    with pytest.raises(ValueError, match="holds a sweep of"):
        run_sweep(other, GRID, seeds=SEEDS, out=local_sweep.out, progress=False)


@pytest.mark.kernel
def test_dask_cluster_gives_the_same_table(local_sweep, tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        summary = run_sweep(
            FIXTURE, GRID, seeds=SEEDS, out=tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False
        )
    assert summary.ok and len(summary.executed) == 4
    pd.testing.assert_frame_equal(read_sweep_table(tmp_path / "dask"), read_sweep_table(local_sweep.out))
    manifest = json.loads((tmp_path / "dask" / "manifest.json").read_text())
    assert manifest["runner"]["scheduler"] == cluster.scheduler_address


@pytest.mark.kernel
def test_failing_point_does_not_stop_the_others(tmp_path, capsys):
    out = tmp_path / "failing"
    code = main(["sweep", str(FIXTURE), "-p", "fail", "true,false", "--out", str(out), "--jobs", "2", "--no-progress"])
    assert code == 1
    failed_id, finished_id = point_id({"fail": True}), point_id({"fail": False})
    stderr = capsys.readouterr().err
    assert "1 failed" in stderr and failed_id in stderr and "deliberate failure" in stderr
    assert (out / "points" / finished_id / "results.json").is_file()
    assert not (out / "points" / failed_id / "results.json").exists()
    assert "RuntimeError: deliberate failure" in (out / "points" / failed_id / "error.txt").read_text()
    assert (out / "points" / failed_id / "failed.ipynb").is_file()
    table = read_sweep_table(out)
    assert set(table["point"]) == {finished_id} and len(table) == RECORDS_PER_POINT
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["state"] == "failed" and list(manifest["failed"]) == [failed_id]
    outcomes = {e["point"]: (e["event"], e.get("cause")) for e in read_status(out) if "point" in e}
    assert outcomes == {failed_id: ("failed", "notebook-error"), finished_id: ("finished", None)}  # not retried


@pytest.mark.kernel
def test_execute_point_reports_a_notebook_that_writes_no_results(tmp_path):
    document = json.loads(FIXTURE.read_text())
    document["cells"] = [cell for cell in document["cells"] if "write_results(results_path" not in "".join(cell["source"])]
    task = PointTask("p", {"rho": 0.5}, "silent.ipynb", json.dumps(document), work_root=str(tmp_path))
    outcome = execute_point(task)
    assert not outcome.ok and "wrote no results file" in outcome.error and outcome.notebook_text is not None


@pytest.mark.kernel
def test_dask_path_survives_an_event_loop_left_by_earlier_notebook_execution(tmp_path):
    # Executing a notebook with nbclient in this thread leaves an asyncio loop behind; an in-process Dask
    # worker then used to fail every point with "This event loop is already running".
    import nbformat
    from dask.distributed import LocalCluster
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    NotebookClient(notebook, kernel_name="python3").execute()
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None
    ) as cluster:
        summary = run_sweep(
            FIXTURE, {"rho": [0.5]}, seeds=[0, 1], out=tmp_path / "dask", scheduler=cluster.scheduler_address,
            progress=False,
        )  # fmt: skip
    assert summary.ok, summary.failed


# ------------------------------------------------------------------------- paths, identity, status log

FAULT_FIXTURE = Path(__file__).parent / "data" / "sweep_fault_fixture.ipynb"


def test_path_parameters_reach_points_as_absolute_paths(tmp_path, monkeypatch):
    assert is_path_parameter("mnist_directory") and is_path_parameter("sweep_notebook")
    assert not is_path_parameter("rho") and not is_path_parameter("n_values")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "signals").mkdir()
    (point,) = plan_sweep(FAULT_FIXTURE, {"signal_directory": ["signals"]})  # relative to the working directory
    assert point.parameters == {"signal_directory": str(tmp_path / "signals")}
    with pytest.raises(ValueError, match="parameter 'signal_directory'.*'elsewhere' is a relative path.*does not exist"):
        plan_sweep(FAULT_FIXTURE, {"signal_directory": ["elsewhere"]})
    with pytest.raises(ValueError, match="parameter 'signal_directory' is a path.*must be a str or None, got 3"):
        plan_sweep(FAULT_FIXTURE, {"signal_directory": [3]})
    # an absolute path needs to exist only where the points run; where it does not, the point fails, saying so
    (point,) = plan_sweep(FAULT_FIXTURE, {"signal_directory": ["/nonexistent/signals"]})
    outcome = execute_point(PointTask(point.id, point.parameters, FAULT_FIXTURE.name, FAULT_FIXTURE.read_text()))
    assert not outcome.ok and outcome.cause == MISSING_PATH
    assert "'signal_directory' is '/nonexistent/signals', which does not exist on" in outcome.error


def test_a_notebooks_own_relative_path_defaults_are_resolved_against_its_folder(tmp_path):
    root = Path(__file__).resolve().parents[1]
    chapter = root / "book" / "06_landscape.ipynb"
    assert notebook_path_defaults(chapter, notebook_parameters(chapter)) == {
        "sweep_notebook": str(root / "book" / "01_effective_logit.ipynb")}
    notebook = tmp_path / "nb.ipynb"
    with pytest.raises(ValueError, match="parameter 'data_file': the notebook's default 'data.txt' is a relative path"):
        notebook_path_defaults(notebook, {"data_file": "data.txt", "rho": "0.5", "mnist_directory": None})
    (tmp_path / "data.txt").write_text("x")
    assert notebook_path_defaults(notebook, {"data_file": "data.txt", "rho": "0.5"}) == {
        "data_file": str(tmp_path / "data.txt")}


def test_notebook_hash_counts_code_not_prose_or_outputs():
    import nbformat

    notebook = nbformat.read(FIXTURE, as_version=4)
    reference = notebook_hash(notebook)
    notebook.cells[0].source += "\nMore prose."
    notebook.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello")]
    assert notebook_hash(notebook) == reference
    notebook.cells[3].source += "\nx = 1"
    assert notebook_hash(notebook) != reference
    notebook.cells[3].source = notebook.cells[3].source[: -len("\nx = 1")]
    notebook.cells[1].metadata["tags"] = []  # untagging the parameters cell changes what runs
    assert notebook_hash(notebook) != reference


def test_status_log_survives_a_torn_last_line(tmp_path):
    log = StatusLog(tmp_path / "status.jsonl")
    log.append("finished", sync=True, point="a", notebook_sha256="h")
    log.close()
    with open(tmp_path / "status.jsonl", "ab") as handle:  # what a process killed mid-write leaves
        handle.write(b'{"event":"finished","point":"b","note')
    log = StatusLog(tmp_path / "status.jsonl")
    log.append("failed", point="c", cause="notebook-error")
    log.close()
    events = list(read_status(tmp_path))
    assert [(e["event"], e["point"]) for e in events] == [("finished", "a"), ("failed", "c")]
    assert all(e["time"] for e in events) and list(read_status(tmp_path / "missing")) == []


def test_one_sweep_at_a_time_holds_its_out_folder_without_a_lock_file(tmp_path):
    import fcntl

    from kdwide_book.results import write_json
    from kdwide_book.sweep import rebuild_table

    out = tmp_path / "out"
    write_json(out / "manifest.json", {"axes": {"rho": [0.5]}, "table": {"notebook_sha256": "h", "rows": None}})
    held = os.open(out, os.O_RDONLY)  # what a running sweep holds
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ValueError, match="another sweep is running in"):
            rebuild_table(out)
    finally:
        os.close(held)
    assert len(rebuild_table(out)) == 0  # free again: an empty table (no point finished)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "table.csv", "table.parquet"]


def test_bad_counts_are_refused_before_anything_runs(tmp_path, capsys):
    with pytest.raises(ValueError, match="jobs must be an integer >= 1"):
        run_sweep(FIXTURE, GRID, out=tmp_path / "a", jobs=0, progress=False)
    with pytest.raises(ValueError, match="retries must be an integer >= 0"):
        run_sweep(FIXTURE, GRID, out=tmp_path / "a", retries=-1, progress=False)
    assert main(["sweep", str(FIXTURE), "-p", "rho", "0.5", "--out", str(tmp_path / "a"), "--retries", "-1"]) == 2
    assert "retries must be an integer >= 0" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match="retries must be"):
        next(run_tasks(None, [], retries=True))
    with pytest.raises(ValueError, match="jobs must be"):
        with dask_client(jobs=0):
            pass
    assert main(["table", str(tmp_path / "none")]) == 2
    assert "holds no sweep" in capsys.readouterr().err


def test_the_one_runner_leaves_no_private_process_handling():
    source = (Path(__file__).resolve().parents[1] / "src" / "kdwide_book" / "runner.py").read_text()
    source += (Path(__file__).resolve().parents[1] / "src" / "kdwide_book" / "sweep.py").read_text()
    assert "_processes" not in source and "ProcessPoolExecutor" not in source


@pytest.mark.kernel
def test_a_kernel_that_dies_while_starting_counts_as_dead_and_a_missing_kernel_does_not(tmp_path):
    spec = tmp_path / "kernels" / "dying"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", "import sys; sys.exit(3)", "-f", "{connection_file}"],
        "display_name": "dies at once", "language": "python"}))
    # in a process of its own: nbclient leaves an atexit callback behind after a failed start, which complains at exit
    script = (
        "import json, sys\n"
        "from kdwide_book.runner import PointTask, execute_point\n"
        "text = open(sys.argv[1]).read()\n"
        "for kernel in ('dying', 'no-such-kernel'):\n"
        "    outcome = execute_point(PointTask('p', {'item': 0}, 'f.ipynb', text, kernel_name=kernel))\n"
        "    print(json.dumps([outcome.cause, outcome.error]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(FAULT_FIXTURE)], capture_output=True, text=True,
                            env={**os.environ, "JUPYTER_PATH": str(tmp_path)}, timeout=120)
    (dying_cause, dying_error), (missing_cause, missing_error) = map(json.loads, result.stdout.splitlines()[-2:])
    assert dying_cause == "kernel-died" and "the kernel did not start" in dying_error  # run again by run_tasks
    assert missing_cause == "runner-error" and "NoSuchKernel" in missing_error  # not run again
