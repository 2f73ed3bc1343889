"""Paper-scale results in the book: the results files of ``make paper`` kept in ``book/data/paper/`` and shown.

``make paper`` executes every chapter with ``profile="paper"`` into ``_build/paper/`` (executed notebooks, results
files, ``timings.json``). :func:`collect` keeps what the book shows, small and without notebooks: each chapter's
results file (parameters, versions, claims, records) and one ``timings.json`` with the seconds each chapter took, the
attempts, and the machine. The appendix "At paper scale" (``book/paper_scale.ipynb``) reads them back with
:func:`paper_results` and :func:`claims_table` and draws each chapter's key figure with :func:`key_figure`.

``python -m kdwide_book.paper_scale collect --from _build/paper [--from DIR ...] --to book/data/paper``
(several ``--from``: runs made in pieces; a later folder wins for a chapter that both hold).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kdwide.stats import seed_means
from kdwide_book.results import read_results, write_json

__all__ = ["claims_table", "collect", "extrapolated_seconds", "key_figure", "main", "paper_results", "paper_timings"]


def _rounded(value: Any, digits: int = 6) -> Any:
    """Floats rounded to ``digits`` significant digits, recursively (the records' size halves; figures need 4)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if value == value else value
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    return value


def collect(sources: Sequence[str | Path], destination: str | Path, *, note: str = "") -> list[str]:
    """Copy the results files of the paper runs in ``sources`` into ``destination`` with one merged timings file.

    Only chapters whose run succeeded and left a results file are kept, compact, with the records' floats rounded to 6
    significant digits (the claims and their evidence as the run decided them). ``note`` (e.g. "shared machine, other jobs
    running") is stored beside the timings. Returns the chapter stems kept.
    """
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    chapters: dict[str, dict[str, Any]] = {}
    platform: dict[str, Any] = {}
    for source in map(Path, sources):
        timings = json.loads((source / "timings.json").read_text())
        platform = timings.get("platform", platform)
        for entry in timings["chapters"]:
            stem = Path(entry["notebook"]).stem
            results = source / f"{stem}.json"
            if entry.get("succeeded") and results.is_file():
                # a valid results file (or an error here), kept compact: records are most of it
                kept = read_results(results)
                kept["records"] = _rounded(kept["records"])
                write_json(destination / f"{stem}.json", kept, compact=True)
                chapters[stem] = {"chapter": stem, "seconds": entry["seconds"], "attempts": entry.get("attempts", 1),
                                  "profile": timings.get("profile"), "papermill_args": timings.get("papermill_args", [])}
    if not chapters:
        raise ValueError(f"no succeeded chapter with a results file in {[str(s) for s in sources]}")
    summary = {"platform": platform, "note": note, "chapters": [chapters[k] for k in sorted(chapters)]}
    write_json(destination / "timings.json", summary)
    return sorted(chapters)


def paper_results(directory: str | Path) -> dict[str, dict[str, Any]]:
    """The committed paper-scale results files, ``{chapter stem: results}``, in chapter order."""
    return {path.stem: read_results(path) for path in sorted(Path(directory).glob("[0-9][0-9]_*.json"))}


def paper_timings(directory: str | Path) -> dict[str, Any]:
    """The merged ``timings.json`` (platform, note, seconds per chapter)."""
    return json.loads((Path(directory) / "timings.json").read_text())


def claims_table(directory: str | Path) -> pd.DataFrame:
    """One row per (chapter, claim) of the paper-scale runs: ``holds``, ``evidence`` and the chapter's seconds.

    Example:
      >>> import tempfile
      >>> folder = Path(tempfile.mkdtemp())
      >>> _ = (folder / "03_x.json").write_text(json.dumps({"chapter": "03_x", "parameters": {}, "claims":
      ...     {"R2": {"holds": True, "evidence": "e"}}, "records": []}))
      >>> _ = (folder / "timings.json").write_text(json.dumps({"chapters": [{"chapter": "03_x", "seconds": 9.5}]}))
      >>> claims_table(folder)[["chapter", "claim", "holds", "seconds"]].to_dict("records")
      [{'chapter': '03_x', 'claim': 'R2', 'holds': True, 'seconds': 9.5}]
    """
    seconds = {entry["chapter"]: entry["seconds"] for entry in paper_timings(directory)["chapters"]}
    rows = [
        {"chapter": stem, "claim": claim_id, "holds": bool(entry["holds"]), "evidence": entry["evidence"],
         "seconds": seconds.get(stem)}
        for stem, results in paper_results(directory).items() for claim_id, entry in results["claims"].items()
    ]
    return pd.DataFrame(rows)


def extrapolated_seconds(
    measured: float, *, measured_widths: Sequence[int], widths: Sequence[int], measured_repetitions: int,
    repetitions: int,
) -> float:
    """The time of a run of networks of ``widths`` and ``repetitions`` initializations, from one ``measured`` run.

    Assumes a cost per run proportional to width² (the hidden-layer products of an MLP with two or more hidden
    layers; a lower bound where the input layer dominates) and to the number of repetitions.

    Example:
      >>> extrapolated_seconds(10.0, measured_widths=[1, 1], widths=[2, 2], measured_repetitions=1, repetitions=3)
      120.0
    """
    if measured <= 0 or measured_repetitions < 1 or repetitions < 1 or not measured_widths or not widths:
        raise ValueError("measured must be > 0, repetitions >= 1 and widths non-empty")
    scale = sum(w * w for w in widths) / sum(w * w for w in measured_widths)
    return float(measured * scale * repetitions / measured_repetitions)


# --- each chapter's key figure, from its records -------------------------------------------------------------------


def _jumps(records: pd.DataFrame, parameters: dict[str, Any], ax) -> None:
    for temperature, group in records.groupby("temperature"):
        ax.semilogy(group.rho, group.jump_ratio, "o-", label=f"T = {temperature:g}")
    ax.set(xlabel="soft ratio ρ", ylabel="smallest jump / largest other step", title="C1: jumps of the learned function")


def _risk(records: pd.DataFrame, parameters: dict[str, Any], ax) -> None:
    means = seed_means(records, ["rho", "n_train"], ["transfer_risk"], statistics=["mean"])
    floor = 0.5 / parameters["n_test"]  # a risk of 0 is drawn at half a test point (log axis)
    for rho, group in means.groupby("rho"):
        label = "hard (ρ → 0)" if rho == 0 else f"ρ = {rho:g}"
        ax.loglog(group.n_train, group.transfer_risk_mean.clip(lower=floor), "o-", ms=3, label=label)
    ax.set(xlabel="training samples n", ylabel="transfer risk (mean over repetitions)", title="R4: risk against n")


def _difficulty(records: pd.DataFrame, parameters: dict[str, Any], ax) -> None:
    rows = records[(records.experiment == "difficulty") & (records.rho == parameters["rho"])]
    means = seed_means(rows, ["frequency", "n_train"], ["data_inefficiency"], statistics=["mean"])
    for frequency, group in means.groupby("frequency"):
        ax.semilogx(group.n_train, group.data_inefficiency_mean, "o-", ms=3, label=f"frequency {frequency:g}")
    ax.set(xlabel="training samples n", ylabel="data inefficiency I(n)", title=f"D2: harder tasks, ρ = {parameters['rho']:g}")


def _imperfect(records: pd.DataFrame, parameters: dict[str, Any], ax) -> None:
    rows = records[(records.dataset != "synthetic") & (records.temperature == min(records.temperature))]
    means = seed_means(rows, ["teacher_quality", "rho"], ["student_error"], statistics=["mean"])
    for size, group in means.groupby("teacher_quality"):
        ax.plot(group.rho, 100 * group.student_error_mean, "o-", ms=3, label=f"teacher on {size:g} images")
    ax.set(xlabel="soft ratio ρ", ylabel="student test error (%)",
           title=f"I1: real data, T = {min(records.temperature):g}")


def _landscape(records: pd.DataFrame, parameters: dict[str, Any], ax) -> None:
    rows = records[records.experiment == "imperfect_teacher"]
    means = seed_means(rows, ["temperature", "rho"], ["student_error"], statistics=["mean"])
    for temperature, group in means.groupby("temperature"):
        ax.plot(group.rho, 100 * group.student_error_mean, "o-", ms=3, label=f"T = {temperature:g}")
    ax.set(xlabel="soft ratio ρ", ylabel="student error (%)", title="I1 over the ρ×T plane (imperfect teacher)")


def _multiclass(records: pd.DataFrame, parameters: dict[str, Any], ax) -> None:
    rows = records[(records.n_classes == records.n_classes.max()) & (records.experiment == "digits")]
    means = seed_means(rows, ["teacher_size", "rho"], ["student_error"], statistics=["mean"])
    for size, group in means.groupby("teacher_size"):
        ax.plot(group.rho, 100 * group.student_error_mean, "o-", ms=3, label=f"teacher on {size:g} per class")
    ax.set(xlabel="soft ratio ρ", ylabel="student test error (%)",
           title=f"M3: {records.n_classes.max()} digit classes, T = {parameters['temperature']:g}")


FIGURES: dict[str, Callable[[pd.DataFrame, dict[str, Any], Any], None]] = {
    "01_effective_logit": _jumps,
    "03_risk_bound": _risk,
    "04_data_inefficiency": _difficulty,
    "05_imperfect_teacher": _imperfect,
    "06_landscape": _landscape,
    "07_beyond_two_classes": _multiclass,
}
"""Chapter stem → the function that draws its key figure from its records onto a matplotlib axis."""


def key_figure(chapter: str, results: dict[str, Any], ax) -> None:
    """Draw ``chapter``'s key figure from its paper-scale results (records and parameters) onto ``ax``."""
    if chapter not in FIGURES:
        raise ValueError(f"chapter must be one of {sorted(FIGURES)}, got {chapter!r}")
    FIGURES[chapter](pd.DataFrame(results["records"]), results["parameters"], ax)
    ax.legend(fontsize=7)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kdwide_book.paper_scale collect --from DIR [--from DIR ...] --to book/data/paper [--note TEXT]``."""
    parser = argparse.ArgumentParser(prog="python -m kdwide_book.paper_scale", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    collect_parser = commands.add_parser("collect", help="keep the results files of paper runs for the book")
    collect_parser.add_argument("--from", dest="sources", action="append", required=True, help="a make paper folder")
    collect_parser.add_argument("--to", required=True, help="destination (book/data/paper)")
    collect_parser.add_argument("--note", default="", help="a note on the machine or the run, kept with the timings")
    arguments = parser.parse_args(argv)
    print("kept:", ", ".join(collect(arguments.sources, arguments.to, note=arguments.note)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
