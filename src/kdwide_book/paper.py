"""Paper-scale runs: every chapter of the book executed with ``profile="paper"``, beside the sweeps.

:func:`run_paper_profile` executes every chapter into an output folder through the one runner of chapters
(:mod:`kdwide_book.runner`, the runner of sweeps: a Dask worker, one kernel, retries when it dies), leaving the
committed notebooks untouched, and writes ``timings.json`` there; :func:`claim_table` reads every chapter's claims
back from its results file. Extra parameters come as papermill command-line options (:func:`papermill_parameters`),
whose ``-p`` values are read by the sweeps' parser (:func:`kdwide_book.runner.parse_scalar`), so ``-p flag true``
means the same in a sweep and in a paper run.

Command line (``make paper``)::

    python -m kdwide_book.paper --out _build/paper --papermill-args "-y 'n_values: [32, 64]'" [--profile ci]
        [--retries N] [--require-claims] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import yaml

from kdwide_book import PROFILES
from kdwide_book.book import chapter_notebooks, platform_summary
from kdwide_book.parameters import validate_parameter
from kdwide_book.results import atomic_write, write_json
from kdwide_book import runner
from kdwide_book.runner import PointOutcome, PointTask

__all__ = ["RUNNER_SETS", "TIMINGS", "build_parser", "claim_table", "main", "papermill_parameters", "run_paper_profile"]

TIMINGS = "timings.json"
"""The summary of a paper run, in its output folder."""

RUNNER_SETS = ("profile", "results_path")
"""Parameters a paper run sets itself (``--profile``, ``--out``)."""


def papermill_parameters(arguments: Sequence[str]) -> dict[str, Any]:
    """Parameters from papermill command-line options (``-p NAME VALUE``, ``-r NAME VALUE``, ``-y YAML``), in order.

    ``-p`` values are read as in sweeps (:func:`kdwide_book.runner.parse_scalar`: ``true``, ``None``, numbers, else
    a string), ``-r`` values are kept as strings, and ``-y`` takes a YAML mapping (the way to give lists).

    Example:
      >>> papermill_parameters(["-p", "rho", "0.25", "-p", "flag", "true", "-y", "n_values: [16, 32]", "-r", "n", "1"])
      {'rho': 0.25, 'flag': True, 'n_values': [16, 32], 'n': '1'}
    """
    arguments, parameters = list(arguments), {}
    while arguments:
        option = arguments.pop(0)
        if option in ("-p", "--parameters", "-r", "--parameters_raw") and len(arguments) >= 2:
            name, value = arguments.pop(0), arguments.pop(0)
            parameters[name] = value if option in ("-r", "--parameters_raw") else runner.parse_scalar(value)
        elif option in ("-y", "--parameters_yaml") and arguments:
            document = yaml.safe_load(arguments.pop(0))
            if not isinstance(document, dict):
                raise ValueError(f"papermill_args: -y needs a YAML mapping, got {document!r}")
            parameters.update(document)
        else:
            raise ValueError(f"papermill_args: expected -p NAME VALUE, -r NAME VALUE or -y YAML, got {option!r}")
    return parameters


class _Timings:
    """``OUT/timings.json``, rewritten (atomically) after every chapter, so a killed run leaves what finished."""

    def __init__(self, out_dir: Path, paths: Sequence[Path], profile: str, papermill_args: Sequence[str]) -> None:
        self.out_dir, self.paths, self.profile = out_dir, list(paths), profile
        self.summary: dict[str, Any] = {"profile": profile, "papermill_args": list(papermill_args),
                                        "platform": platform_summary(), "chapters": []}
        self._entries: dict[int, dict[str, Any]] = {}

    def output(self, index: int) -> Path:
        """Where chapter ``index``'s executed notebook goes (its results file: the same name, ``.json``)."""
        return (self.out_dir / self.paths[index].name).resolve()

    def record(self, index: int, *, seconds: float, error: str | None, attempts: int) -> None:
        """Chapter ``index`` ended (``error`` None: it succeeded); print it and rewrite ``timings.json``."""
        output = self.output(index)
        results = output.with_suffix(".json")
        if error:
            print(error, file=sys.stderr)
        print(f"[{self.profile}] {self.paths[index].name}: {'ok' if error is None else 'FAILED'} in {seconds:.1f} s",
              flush=True)
        self._entries[index] = {"notebook": str(self.paths[index]), "output": str(output),
                                "results": str(results) if results.exists() else None, "seconds": round(seconds, 3),
                                "succeeded": error is None, "error": error, "attempts": attempts}
        self.summary["chapters"] = [self._entries[i] for i in sorted(self._entries)]
        write_json(self.out_dir / TIMINGS, self.summary)


def _chapter_tasks(timings: _Timings, overrides: dict[str, Any]) -> list[PointTask]:
    """One task per chapter that can be read; a missing or broken notebook is recorded as failed at once."""
    tasks = []
    for index, path in enumerate(timings.paths):
        output = timings.output(index)
        output.with_suffix(".json").unlink(missing_ok=True)  # a results file left by an earlier run is not this run's
        print(f"[{timings.profile}] {path} -> {output}", flush=True)
        try:
            notebook = nbformat.read(path, as_version=4)
            own_paths = runner.notebook_path_defaults(
                path, {k: v for k, v in runner.notebook_parameters(path).items() if k not in overrides})
        except Exception as exc:  # a missing or broken notebook: this chapter failed, the others run
            timings.record(index, seconds=0.0, error=f"{type(exc).__name__}: {exc}", attempts=0)
            continue
        tasks.append(PointTask(point_id=str(index), parameters={**own_paths, "profile": timings.profile, **overrides},
                               notebook_name=path.name, notebook_text=runner.runnable_text(notebook)))
    return tasks


def _run_chapters(timings: _Timings, tasks: Sequence[PointTask], *, retries: int, scheduler: str | None) -> None:
    """The chapters on a one-worker Dask cluster (or ``scheduler``'s), one at a time; each outcome stored as it ends."""
    with runner.dask_client(jobs=1, scheduler=scheduler) as client:

        def on_retry(outcome: PointOutcome) -> None:
            print(f"[{timings.profile}] {timings.paths[int(outcome.point_id)].name}: {outcome.cause} on attempt "
                  f"{outcome.attempt} ({outcome.error}); running it again", file=sys.stderr, flush=True)

        for outcome in runner.run_tasks(client, tasks, retries=retries, on_retry=on_retry):
            index = int(outcome.point_id)
            output = timings.output(index)
            if outcome.notebook_text is not None:
                atomic_write(output, outcome.notebook_text)
            if outcome.ok:
                atomic_write(output.with_suffix(".json"), outcome.results_text)
            timings.record(index, seconds=outcome.seconds, error=outcome.error, attempts=outcome.attempt)


def run_paper_profile(
    out_dir: str | Path,
    *,
    root: str | Path = ".",
    papermill_args: Sequence[str] = (),
    notebooks: Sequence[str | Path] | None = None,
    profile: str = "paper",
    retries: int | None = None,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Execute every chapter with ``profile=PROFILE`` into ``out_dir``, through the one runner of chapters.

    For each chapter ``book/NN_name.ipynb`` this runs it with the parameters ``profile=PROFILE``,
    ``results_path`` and ``PAPERMILL_ARGS``, and writes the executed notebook to ``OUT/NN_name.ipynb`` and its results
    file to ``OUT/NN_name.json``, as ``papermill book/NN_name.ipynb OUT/NN_name.ipynb -p profile paper ...
    PAPERMILL_ARGS`` would, so later arguments (``papermill_args``) win over the profile's. The committed notebooks
    are only read. Chapters run one at a time, each in a folder of its own; path parameters reach them as absolute
    paths (relative ones in ``papermill_args`` against the working directory, a chapter's own defaults against its
    folder). A chapter that fails is recorded and the others still run.

    Args:
      out_dir: output folder (created).
      root: repository root holding ``_toc.yml``.
      papermill_args: extra papermill command-line arguments (:func:`papermill_parameters`), e.g.
        ``["-y", "n_values: [32, 64]"]``.
      notebooks: run these instead of the chapters of ``_toc.yml``.
      profile: ``"paper"`` (or ``"ci"``, for comparison).
      retries: how many more times a chapter whose kernel or worker died runs (default
        :data:`kdwide_book.runner.DEFAULT_RETRIES`).
      scheduler: run on this existing Dask scheduler instead of a local one-worker cluster.

    Returns:
      The content of ``OUT/timings.json``: ``{"profile", "papermill_args", "platform", "chapters": [{"notebook",
      "output", "results", "seconds", "succeeded", "error", "attempts"}, ...]}``; ``seconds`` is the wall time of
      the chapter's last run.
    """
    validate_parameter("profile", profile)
    retries = runner.check_retries(runner.DEFAULT_RETRIES if retries is None else retries)
    paths = [Path(p) for p in notebooks] if notebooks is not None else chapter_notebooks(root)
    overrides = papermill_parameters(papermill_args)
    for name in RUNNER_SETS & overrides.keys():
        raise ValueError(f"papermill_args must not set {name!r}: the runner sets it (use --profile / --out)")
    overrides = runner.resolve_path_parameters(overrides, base=Path.cwd(), source="the papermill argument")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = _Timings(out_dir, paths, profile, papermill_args)
    tasks = _chapter_tasks(timings, overrides)
    if tasks:
        _run_chapters(timings, tasks, retries=retries, scheduler=scheduler)
    return timings.summary


def claim_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every claim of every chapter run by :func:`run_paper_profile`, read back from its results file.

    Returns:
      One row per claim, ``{"chapter", "claim", "holds", "evidence"}``; a chapter that failed or wrote no
      results file gives one row with ``claim`` ``None`` and ``holds`` False, so that it cannot pass unseen.
    """
    rows: list[dict[str, Any]] = []
    for chapter in summary["chapters"]:
        name = Path(chapter["notebook"]).stem
        results = chapter.get("results")
        if not chapter["succeeded"] or results is None or not Path(results).exists():
            rows.append({"chapter": name, "claim": None, "holds": False, "evidence": "no results file"})
            continue
        claims = json.loads(Path(results).read_text()).get("claims") or {}
        if not claims:
            rows.append({"chapter": name, "claim": None, "holds": False, "evidence": "results file has no claims"})
        for claim_id, entry in claims.items():
            rows.append({"chapter": name, "claim": claim_id, "holds": entry.get("holds") is True,
                         "evidence": entry.get("evidence", "")})
    return rows


def _print_claims(summary: dict[str, Any]) -> list[str]:
    """Print every chapter's claims; return those that do not hold (``chapter:claim``)."""
    rows = claim_table(summary)
    for row in rows:
        print(f"{row['chapter']:<22} {row['claim'] or '-':<4} holds: {str(row['holds']):<5}  {row['evidence']}")
    not_holding = [f"{r['chapter']}:{r['claim']}" for r in rows if not r["holds"]]
    print(f"claims: {len(rows) - len(not_holding)} of {len(rows)} hold"
          + (f"; NOT holding: {', '.join(not_holding)}" if not_holding else ""), flush=True)
    return not_holding


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m kdwide_book.paper``."""
    parser = argparse.ArgumentParser(prog="python -m kdwide_book.paper",
                                     description="Execute every chapter (profile 'paper' unless --profile) into --out.")
    parser.add_argument("--out", type=Path, default=Path("_build/paper"))
    parser.add_argument("--papermill-args", default="",
                        help="extra papermill arguments, one shell-quoted string: -p NAME VALUE (read as in sweeps: "
                             "true/false, None/null, numbers, else a string), -r NAME VALUE, -y YAML")
    parser.add_argument("--profile", default="paper", choices=PROFILES)
    parser.add_argument("--retries", type=int, default=None,
                        help=f"runs again a chapter whose kernel or worker died, up to this many times "
                             f"(default {runner.DEFAULT_RETRIES})")
    parser.add_argument("--require-claims", action="store_true",
                        help="print every chapter's claims from its results file; fail unless all hold")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: the chapters of _toc.yml")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kdwide_book.paper``; the exit code is 1 if a chapter failed (or, with --require-claims, a claim
    does not hold)."""
    args = build_parser().parse_args(argv)
    summary = run_paper_profile(args.out, papermill_args=shlex.split(args.papermill_args),
                                notebooks=args.notebooks or None, profile=args.profile, retries=args.retries)
    failed = [c["notebook"] for c in summary["chapters"] if not c["succeeded"]]
    total = sum(c["seconds"] for c in summary["chapters"])
    print(f"{len(summary['chapters']) - len(failed)} of {len(summary['chapters'])} chapters ran with "
          f"profile={args.profile!r} in {total:.1f} s; timings in {args.out / TIMINGS}")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    if args.require_claims:
        failed = _print_claims(summary) or failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
