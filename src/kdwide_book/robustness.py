"""How robust are the claims? Every chapter at many seeds, and each claim's hold rate with a 95% interval.

``make robustness`` runs every chapter at :data:`ROBUSTNESS_SEEDS` (20 seeds that no chapter uses by default) through
``kdwide sweep`` (one resumable sweep folder per chapter under ``runs/robustness/``: rerun the command after an
interruption and finished points are skipped), then writes two small tables into ``book/data/``:

- ``robustness_claims.csv``: one row per (chapter, claim): ``runs``, ``holds``, ``hold_rate`` and its 95% Wilson
  interval (:func:`kdwide.stats.wilson_interval`), the quantity the appendix "How robust are the claims?" shows;
- ``robustness_runs.csv``: one row per (chapter, seed, claim): ``holds`` and the claim's ``evidence`` (its key
  figures: estimates with their standard errors), so that a reader can look at the runs behind a rate.

No notebooks are committed, only these tables. ``python -m kdwide_book.robustness run|collect --help``.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from kdwide.stats import wilson_interval
from kdwide_book.book import chapter_notebooks
from kdwide_book.results import atomic_write, read_results

__all__ = ["ROBUSTNESS_SEEDS", "TARGET_HOLD_RATE", "claim_table", "collect", "failed_runs", "hold_rate_figure", "main",
           "run", "run_table"]

ROBUSTNESS_SEEDS = "1000-1019"
"""The seeds of ``make robustness`` (``kdwide sweep --seeds`` syntax): 20 seeds that no chapter uses by default."""
TARGET_HOLD_RATE = 0.95
"""A claim below this hold rate is discussed in its chapter."""


def run(out: str | Path, *, seeds: str = ROBUSTNESS_SEEDS, jobs: int = 2, root: str | Path = ".",
        chapters: Sequence[str] | None = None) -> int:
    """Run every chapter (or those whose stem is in ``chapters``) at ``seeds`` with ``kdwide sweep``, one sweep folder
    per chapter under ``out``; returns the largest exit code of the sweeps (0: every point finished)."""
    worst = 0
    for notebook in chapter_notebooks(root):
        if chapters and notebook.stem not in chapters:
            continue
        command = [sys.executable, "-m", "kdwide_book.cli", "sweep", str(notebook), "--seeds", seeds,
                   "--out", str(Path(out) / notebook.stem), "--jobs", str(jobs)]
        print(f"robustness: {notebook.stem} at seeds {seeds}", flush=True)
        worst = max(worst, subprocess.call(command))
    return worst


def run_table(out: str | Path) -> pd.DataFrame:
    """One row per (chapter, seed, claim) of every finished point under ``out``: ``holds`` and ``evidence``."""
    rows = []
    for path in sorted(Path(out).glob("*/points/*/results.json")):
        results = read_results(path)
        for claim_id, entry in results["claims"].items():
            rows.append({"chapter": results["chapter"], "seed": int(results["parameters"]["seed"]),
                         "claim": claim_id, "holds": bool(entry["holds"]), "evidence": str(entry["evidence"])})
    if not rows:
        raise ValueError(f"no results files under {out}/*/points/*/ (run `make robustness` first)")
    return pd.DataFrame(rows).sort_values(["chapter", "claim", "seed"], ignore_index=True)


def claim_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Hold rate of each (chapter, claim) over its runs, with the 95% Wilson interval.

    Example:
      >>> runs = pd.DataFrame({"chapter": ["c"] * 4, "claim": ["X"] * 4, "seed": range(4), "holds": [1, 1, 1, 0]})
      >>> claim_table(runs)[["runs", "holds", "hold_rate"]].to_dict("records")
      [{'runs': 4, 'holds': 3, 'hold_rate': 0.75}]
    """
    rows = []
    for (chapter, claim_id), group in runs.groupby(["chapter", "claim"], sort=True):
        held, total = int(group.holds.sum()), len(group)
        low, high = wilson_interval(held, total)
        rows.append({"chapter": chapter, "claim": claim_id, "runs": total, "holds": held, "hold_rate": held / total,
                     "interval_low": low, "interval_high": high, "below_target": held / total < TARGET_HOLD_RATE})
    return pd.DataFrame(rows)


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs in which a claim did not hold, with their evidence (empty when every claim held everywhere)."""
    return runs[~runs.holds.astype(bool)].reset_index(drop=True)[["chapter", "claim", "seed", "evidence"]]


def hold_rate_figure(claims: pd.DataFrame, ax) -> None:
    """Each claim's hold rate (dot) with its 95% Wilson interval (bar) on ``ax``, the target as a dashed line."""
    labels = [f"{row.claim} ({row.chapter[:2]})" for row in claims.itertuples()]
    positions = range(len(claims))
    ax.errorbar(list(positions), claims.hold_rate, yerr=[claims.hold_rate - claims.interval_low,
                claims.interval_high - claims.hold_rate], fmt="o", capsize=3, color="C0")
    ax.axhline(TARGET_HOLD_RATE, color="C3", ls="--", lw=1, label=f"target {TARGET_HOLD_RATE:.0%}")
    ax.set_xticks(list(positions), labels, rotation=60, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel="share of seeds where the claim holds")
    ax.legend(fontsize=8, loc="lower left")


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.4g")
    return buffer.getvalue()


def collect(out: str | Path, destination: str | Path) -> pd.DataFrame:
    """Write ``robustness_runs.csv`` and ``robustness_claims.csv`` into ``destination`` from the sweeps in ``out``;
    returns the claim table."""
    runs = run_table(out)
    claims = claim_table(runs)
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    atomic_write(destination / "robustness_runs.csv", _csv(runs))
    atomic_write(destination / "robustness_claims.csv", _csv(claims))
    return claims


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kdwide_book.robustness run --out DIR [--seeds 1000-1019] [--jobs 2]`` and
    ``python -m kdwide_book.robustness collect --out DIR --to book/data``."""
    parser = argparse.ArgumentParser(prog="python -m kdwide_book.robustness", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run every chapter at many seeds (resumable)")
    run_parser.add_argument("--out", required=True, help="folder of the sweeps (one per chapter)")
    run_parser.add_argument("--seeds", default=ROBUSTNESS_SEEDS, help=f"seeds (default {ROBUSTNESS_SEEDS})")
    run_parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    run_parser.add_argument("--chapter", action="append", help="only this chapter (stem; repeatable)")
    collect_parser = commands.add_parser("collect", help="write the robustness tables from the sweeps")
    collect_parser.add_argument("--out", required=True, help="folder of the sweeps")
    collect_parser.add_argument("--to", required=True, help="folder of the tables (book/data)")
    arguments = parser.parse_args(argv)
    if arguments.command == "run":
        return run(arguments.out, seeds=arguments.seeds, jobs=arguments.jobs, chapters=arguments.chapter)
    claims = collect(arguments.out, arguments.to)
    print(claims.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
