"""The sweep runner at scale: a trivial notebook swept over 200 and 2,000 points on a Dask LocalCluster.

Every sweep runs in a fresh process (``kdwide_book.sweep.run_sweep``), so that its peak memory (``ru_maxrss``) and the
bytes it wrote to storage (``/proc/self/io``, ``write_bytes``) are its own. Printed, all measured in this run:

- seconds per point with 1 worker, the seconds spent inside a point (kernel start, the notebook, kernel shutdown; from
  the status log) and their difference: the runner's own overhead per point (Dask, files, status log);
- points per minute with 1 and 2 workers (the small sweep) and with 2 workers over the large sweep;
- bytes written per point and the runner's peak memory (and its largest worker's, sampled) at the small and the large
  sweep: both should be about the same (flat cost per point; before the status log, the manifest rewrite wrote
  ~0.3 MB per point at 1,000 points). A point the runner ran again (a kernel that did not start) is listed.

Run: ``python benchmarks/sweep.py`` (about 20 minutes on 2 cores; ``--points 400 --small 100`` for a quick look).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil


def trivial_notebook(path: Path) -> Path:
    """A notebook with a parameters cell that writes one record, importing nothing but json (no JAX)."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    parameters = nbformat.v4.new_code_cell("item = 0\nresults_path = None", metadata={"tags": ["parameters"]})
    body = nbformat.v4.new_code_cell(
        "import json\nwith open(results_path, 'w') as handle:\n"
        "    json.dump({'records': [{'item': item, 'square': item * item}]}, handle)")
    notebook.cells = [parameters, body]
    nbformat.write(notebook, path)
    return path


def _io_write_bytes() -> int:
    with open("/proc/self/io") as handle:
        return int(next(line for line in handle if line.startswith("write_bytes:")).split()[1])


def child(notebook: str, out: str, points: int, jobs: int) -> None:
    """One sweep in this process; prints a JSON line with its measurements."""
    from kdwide_book.sweep import read_status, run_sweep

    written_before, start = _io_write_bytes(), time.perf_counter()
    summary = run_sweep(notebook, {"item": list(range(points))}, out=out, jobs=jobs, progress=False)
    wall = time.perf_counter() - start
    written = _io_write_bytes() - written_before
    events = list(read_status(out))
    inside = [event["seconds"] for event in events if event["event"] == "finished"]
    retried = [f"{e['point']}: {e['cause']}: {e['error']}" for e in events if e["event"] == "retry"]
    on_disk = sum(path.stat().st_size for path in Path(out).rglob("*") if path.is_file())
    print(json.dumps({
        "points": points, "jobs": jobs, "ok": summary.ok, "rows": len(summary.table), "wall": wall,
        "inside_mean": statistics.fmean(inside), "written": written, "on_disk": on_disk,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "retried": retried, "failed": summary.failed,
    }))


def _worker_rss(runner: psutil.Process) -> float:
    """MiB of the largest Dask worker process of ``runner`` now (its kernels, grandchildren, not counted)."""
    sizes = [0]
    for process in runner.children():
        with contextlib.suppress(psutil.Error):
            if "spawn_main" in " ".join(process.cmdline()):
                sizes.append(process.memory_info().rss)
    return max(sizes) / 2**20


def measure(notebook: Path, folder: Path, points: int, jobs: int) -> dict:
    out = folder / f"sweep-{points}-{jobs}"
    command = [sys.executable, __file__, "--child", str(notebook), str(out), str(points), str(jobs)]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)
        runner, worker_peak = psutil.Process(process.pid), 0.0
        while process.poll() is None:  # sampled: the workers' peak memory, at most 0.5 s late
            with contextlib.suppress(psutil.Error):
                worker_peak = max(worker_peak, _worker_rss(runner))
            time.sleep(0.5)
        stdout.seek(0)
        stderr.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"the {points}-point sweep stopped: {stderr.read()[-3000:]}")
        measured = json.loads(stdout.read().strip().splitlines()[-1])
    measured["worker_peak_mb"] = worker_peak
    for line in measured["retried"]:
        print(f"  (run again: {line[:300]})", flush=True)
    if not measured["ok"] or measured["rows"] != points:
        raise RuntimeError(f"the {points}-point sweep did not finish every point: {measured['failed']}")
    print(f"  {points:>5} points, {jobs} worker(s): {measured['wall']:7.1f} s, "
          f"{60 * points / measured['wall']:6.1f} points/min, {measured['written'] / points / 1024:6.2f} KiB written "
          f"per point, peak memory {measured['peak_rss_mb']:6.1f} MiB (largest worker {worker_peak:5.1f} MiB)", flush=True)
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2000, help="points of the large sweep (default 2000)")
    parser.add_argument("--small", type=int, default=200, help="points of the small sweeps (default 200)")
    parser.add_argument("--child", nargs=4, metavar=("NOTEBOOK", "OUT", "POINTS", "JOBS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        notebook, out, points, jobs = args.child
        child(notebook, out, int(points), int(jobs))
        return 0
    print(f"sweep runner: trivial notebook, Dask LocalCluster, {os.cpu_count()} CPUs", flush=True)
    build = Path(__file__).resolve().parents[1] / "_build"  # the repository's disk, not a tmpfs: write_bytes counts
    build.mkdir(exist_ok=True)                                # what goes to storage
    with tempfile.TemporaryDirectory(prefix="bench-sweep-", dir=build) as folder:
        folder = Path(folder)
        notebook = trivial_notebook(folder / "trivial.ipynb")
        one = measure(notebook, folder, args.small, 1)
        two = measure(notebook, folder, args.small, 2)
        large = measure(notebook, folder, args.points, 2)
    per_point = one["wall"] / args.small
    print(f"per point, 1 worker: {per_point:.3f} s wall, {one['inside_mean']:.3f} s inside the point (kernel start, "
          f"notebook, shutdown), runner overhead {per_point - one['inside_mean']:.3f} s")
    print(f"points per minute: {60 * args.small / one['wall']:.1f} with 1 worker, {60 * args.small / two['wall']:.1f} "
          f"with 2 ({two['wall'] and one['wall'] / two['wall']:.2f}x); {60 * args.points / large['wall']:.1f} with 2 over "
          f"{args.points} points")
    small_bytes, large_bytes = two["written"] / args.small, large["written"] / args.points
    print(f"bytes written per point: {small_bytes / 1024:.2f} KiB at {args.small} points, {large_bytes / 1024:.2f} KiB "
          f"at {args.points} (ratio {large_bytes / small_bytes:.2f}); on disk {two['on_disk'] / args.small / 1024:.2f} "
          f"and {large['on_disk'] / args.points / 1024:.2f} KiB per point")
    print(f"runner peak memory: {two['peak_rss_mb']:.1f} MiB at {args.small} points, {large['peak_rss_mb']:.1f} MiB at "
          f"{args.points} (ratio {large['peak_rss_mb'] / two['peak_rss_mb']:.2f}); largest worker "
          f"{two['worker_peak_mb']:.1f} and {large['worker_peak_mb']:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
