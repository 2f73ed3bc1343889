"""The ``kdwide`` command line:

``kdwide sweep NOTEBOOK -p NAME VALUES ... [--seeds 0-4] --out runs/NAME [--jobs N | --scheduler ADDRESS]``
runs a chapter notebook over a parameter grid (see :mod:`kdwide_book.sweep`); ``kdwide table runs/NAME`` writes a
sweep's table again from its results files.

Exit codes: 0 every point finished; 1 some points failed (listed on stderr, with the cause); 2 the sweep is invalid
(nothing ran); 130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from kdwide_book.runner import DEFAULT_RETRIES

__all__ = ["main", "build_parser"]

SWEEP_EPILOG = """\
values (-p NAME VALUES):
  comma-separated, one grid point each: -p rho 0,0.25,0.5 -p temperature 1,4 gives 6 points.
  Parsed as None (None/null), bool (true/false), int (12), float (0.5, 1e-3), else str ('1' quotes keep a str).
  Names ending in _values (or whose notebook default is a list) take ONE list per point, and ';' separates points:
  -p rho_values 0.5,1 is one point with rho_values=[0.5, 1]; -p rho_values "0,0.5;0.5,1" is two points.
  A single value (-p profile paper) fixes a parameter. results_path is set by the runner (one per point).

out folder:
  OUT/points/POINT/{results.json,notebook.ipynb}  one folder per point (failed.ipynb, error.txt if it failed)
  OUT/status.jsonl                                append-only log: every point finished, failed or retried
  OUT/table.csv, OUT/table.parquet                all records of all finished points (kdwide table OUT rewrites them)
  OUT/manifest.json                               notebook and its hash, grid, versions, counts, failures
  OUT/stale/HASH/POINT                            results of an earlier version of the notebook, moved aside
  Rerunning the same command skips finished points. A point whose kernel or worker dies runs again (--retries).
  Points finished by another version of the notebook's code run again (--keep-stale keeps them instead).

examples:
  kdwide sweep book/01_effective_logit.ipynb -p rho 0.25,0.5,1 -p temperature 1,4 --seeds 0-2 --out runs/c1 --jobs 2
  kdwide sweep book/01_effective_logit.ipynb -p rho 0.5 --seeds 0-99 --out runs/big --scheduler tcp://HOST:8786
  kdwide table runs/c1
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kdwide``."""
    parser = argparse.ArgumentParser(prog="kdwide", description="Tools for the kd-wide-book chapters.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sweep = commands.add_parser(
        "sweep",
        help="run a notebook over a parameter grid, resumable, on a local or existing Dask cluster",
        description="Run a chapter notebook at every point of a parameter grid and gather its results into one table.",
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("notebook", metavar="NOTEBOOK", help="chapter notebook (.ipynb) with a 'parameters' cell")
    sweep.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUES"),
        help="parameter and its comma-separated values (repeatable; see below)",
    )
    sweep.add_argument("--seeds", metavar="SPEC", help="values of 'seed', swept last: 0-4, 0,2,7 or 0-2,10")
    sweep.add_argument("--out", required=True, metavar="DIR", help="out folder (reuse it to resume)")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=1, metavar="N",
                       help="worker processes of the local Dask cluster, one point each at a time (default 1)")
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on an existing Dask distributed cluster, e.g. tcp://10.0.0.5:8786"
    )
    sweep.add_argument("--kernel", default="python3", metavar="NAME", help="Jupyter kernel the points run in (default python3)")
    sweep.add_argument("--cell-timeout", type=float, metavar="SECONDS", help="fail a point whose cell runs longer")
    sweep.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="N",
                       help=f"runs again a point whose kernel or worker died, up to N times (default {DEFAULT_RETRIES})")
    sweep.add_argument("--keep-stale", action="store_true",
                       help="keep results of an earlier version of the notebook instead of running those points again")
    sweep.add_argument("--dry-run", action="store_true", help="check the sweep and list its points; run nothing")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    table = commands.add_parser("table", help="write a sweep's table.csv and table.parquet again from its results files",
                                description="Rebuild OUT/table.csv and OUT/table.parquet from the results files.")
    table.add_argument("out", metavar="OUT", help="the out folder of a sweep")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sweep(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from kdwide_book import sweep

    main_thread = threading.current_thread() is threading.main_thread()
    # `kill PID` (SIGTERM) stops a sweep as cleanly as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        defaults = sweep.read_sweep_defaults(args.notebook)  # read once, for the grid, the plan and the run
        grid = sweep.parse_grid([tuple(pair) for pair in args.parameter], defaults)
        seeds = sweep.parse_seeds(args.seeds) if args.seeds is not None else None
        if args.dry_run:
            points = sweep.plan_sweep(args.notebook, grid, seeds=seeds, defaults=defaults)
            for point in points:
                print(f"{point.id}  {point.parameters}")
            print(f"{len(points)} points", file=sys.stderr)
            return 0
        summary = sweep.run_sweep(
            args.notebook,
            grid,
            out=args.out,
            seeds=seeds,
            jobs=args.jobs,
            scheduler=args.scheduler,
            kernel_name=args.kernel,
            cell_timeout=args.cell_timeout,
            retries=args.retries,
            keep_stale=args.keep_stale,
            progress=not args.no_progress,
            command=["kdwide", *argv],
            defaults=defaults,
        )
    except (ValueError, OSError) as exc:
        print(f"kdwide sweep: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"kdwide sweep: interrupted; finished points are kept in {args.out}; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    finished = len(summary.skipped) + len(summary.executed) - len(summary.failed)
    print(
        f"kdwide sweep: {finished}/{len(summary.points)} points finished ({len(summary.skipped)} earlier, "
        f"{len(summary.executed) - len(summary.failed)} now), {len(summary.failed)} failed; "
        f"{len(summary.table)} rows in {summary.out / 'table.parquet'}",
        file=sys.stderr,
    )
    if summary.failed:
        print("failed points (cause (attempt): error; their notebooks are points/POINT/failed.ipynb):", file=sys.stderr)
        for point_id, error in summary.failed.items():
            print(f"  {point_id}: {error}", file=sys.stderr)
        return 1
    return 0


def _table(args: argparse.Namespace) -> int:
    from kdwide_book import sweep

    try:
        table = sweep.rebuild_table(args.out)
    except (ValueError, OSError) as exc:
        print(f"kdwide table: error: {exc}", file=sys.stderr)
        return 2
    print(f"kdwide table: {len(table)} rows in {args.out}/table.csv and table.parquet", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kdwide`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "sweep":
        return _sweep(args, argv)
    if args.command == "table":
        return _table(args)
    raise AssertionError(args.command)  # argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
