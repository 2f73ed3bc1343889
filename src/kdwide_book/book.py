"""The book as a whole: its chapter list, its software environment, and the paper-scale run of every chapter.

- :func:`chapter_notebooks` reads ``_toc.yml`` and returns the chapter notebooks (``book/NN_name.ipynb``) in order.
- :func:`environment_table` lists the installed version of every package beside its pin in ``constraints.txt``
  (the reproducibility appendix shows it).
- :func:`run_paper_profile` executes every chapter with ``profile="paper"`` into an output folder through the one
  runner of chapters (:mod:`kdwide_book.runner`), leaving the committed notebooks untouched, and writes
  ``timings.json`` there. Its command line is
  ``python -m kdwide_book.book paper --out _build/paper --papermill-args "-p n_values '[32, 64]'"`` (``make paper``).
- As a Sphinx extension (``_config.yml``: ``extra_extensions: [kdwide_book.book]``), :func:`setup` keeps every page
  offline-clean: it drops the inline scripts that Sphinx lists twice (Jupyter Book's ``sphinx-thebe`` and
  ``sphinx-togglebutton`` add theirs once with ``None`` and once with ``""`` as file name, and the second
  ``const THEBE_JS_URL`` is a JavaScript error in the browser), and it warns (an error under ``-W``) about any
  script or stylesheet that a page would load from another site. It also registers the bibliography style
  ``kdwide`` (pybtex's ``plain`` with author-year labels, "Hinton et al., 2015"), so that the reference list
  matches the author-year citations in the text.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat
import yaml

from kdwide_book import PROFILES
from kdwide_book.results import atomic_write

__all__ = [
    "CHAPTER_PATTERN",
    "chapter_notebooks",
    "toc_files",
    "environment_table",
    "platform_summary",
    "read_constraints",
    "run_paper_profile",
    "papermill_parameters",
    "claim_table",
    "deduplicate_assets",
    "external_assets",
    "external_references",
    "author_year_label",
    "setup",
]

#: A chapter is a notebook ``book/NN_name.ipynb`` (two digits, an underscore, a name).
CHAPTER_PATTERN = re.compile(r"(^|/)\d\d_[A-Za-z0-9_]+$")


def toc_files(root: str | Path = ".") -> list[str]:
    """Every ``file:`` entry of ``ROOT/_toc.yml`` (root page first, then in reading order), without suffix."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files: list[str] = [toc["root"]] if "root" in toc else []

    def walk(entries: Sequence[Any]) -> None:
        for entry in entries or []:
            if isinstance(entry, dict):
                if "file" in entry:
                    files.append(str(entry["file"]))
                for key in ("chapters", "sections", "parts"):
                    walk(entry.get(key, []))

    for key in ("chapters", "parts", "sections"):
        walk(toc.get(key, []))
    return files


def chapter_notebooks(root: str | Path = ".") -> list[Path]:
    """The chapter notebooks listed in ``ROOT/_toc.yml``, in reading order, as paths under ``root``.

    Raises:
      FileNotFoundError: a chapter listed in the table of contents has no ``.ipynb`` file.
    """
    root = Path(root)
    chapters = []
    for entry in toc_files(root):
        stem = re.sub(r"\.(ipynb|md)$", "", entry)
        if not CHAPTER_PATTERN.search(stem):
            continue
        path = root / f"{stem}.ipynb"
        if not path.is_file():
            raise FileNotFoundError(f"_toc.yml lists chapter {entry!r} but {path} does not exist")
        chapters.append(path)
    return chapters


def read_constraints(path: str | Path) -> dict[str, str]:
    """``name==version`` lines of a pip constraints file as ``{normalized name: version}``."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_normalize(name.split("[", 1)[0])] = version.strip()
    return pins


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def environment_table(constraints: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per installed distribution: ``{"package", "installed", "pinned", "matches"}``, sorted by name.

    ``pinned`` is the version in ``constraints`` (``None`` when the file does not pin it, or no file is given);
    ``matches`` is ``installed == pinned`` (``None`` where nothing is pinned).
    """
    pins = read_constraints(constraints) if constraints is not None else {}
    installed: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            installed[_normalize(name)] = (name, dist.version)
    rows = []
    for key in sorted(installed):
        name, version = installed[key]
        pinned = pins.get(key)
        rows.append({"package": name, "installed": version, "pinned": pinned,
                     "matches": None if pinned is None else version == pinned})
    return rows


def platform_summary() -> dict[str, str]:
    """Python, operating system, machine, CPU count (without importing JAX)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu_count": str(os.cpu_count()),
    }


def _write_json(path: Path, value: Any) -> None:
    atomic_write(path, json.dumps(value, indent=2) + "\n")  # the project's one atomic write (umask, fsync)


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
    """Execute every chapter with ``profile=PROFILE`` into ``out_dir``, through the one runner of chapters
    (:mod:`kdwide_book.runner`, the runner of sweeps: a Dask worker, one kernel, retries when it dies).

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
      papermill_args: extra papermill command-line arguments, e.g. ``["-p", "n_values", "[32, 64]"]``.
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
    # imported here, not at the top: the Sphinx extension (this module) must not import JAX into the book build
    from kdwide_book import runner  # noqa: PLC0415
    from kdwide_book.parameters import validate_parameter  # noqa: PLC0415
    from kdwide_book.sweep import notebook_parameters  # noqa: PLC0415

    validate_parameter("profile", profile)
    retries = runner.check_retries(runner.DEFAULT_RETRIES if retries is None else retries)
    out_dir = Path(out_dir)
    paths = [Path(p) for p in notebooks] if notebooks is not None else chapter_notebooks(root)
    summary: dict[str, Any] = {"profile": profile, "papermill_args": list(papermill_args),
                               "platform": platform_summary(), "chapters": []}
    overrides = papermill_parameters(papermill_args)
    for name in ("profile", "results_path") & overrides.keys():
        raise ValueError(f"papermill_args must not set {name!r}: the runner sets it (use --profile / --out)")
    overrides = runner.resolve_path_parameters(overrides, base=Path.cwd(), source="the papermill argument")
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[int, dict[str, Any]] = {}
    tasks = []

    def record(index: int, *, seconds: float, error: str | None, attempts: int) -> None:
        path, output = paths[index], (out_dir / paths[index].name).resolve()
        results = output.with_suffix(".json")
        if error:
            print(error, file=sys.stderr)
        print(f"[{profile}] {path.name}: {'ok' if error is None else 'FAILED'} in {seconds:.1f} s", flush=True)
        entries[index] = {"notebook": str(path), "output": str(output),
                          "results": str(results) if results.exists() else None, "seconds": round(seconds, 3),
                          "succeeded": error is None, "error": error, "attempts": attempts}
        summary["chapters"] = [entries[i] for i in sorted(entries)]
        _write_json(out_dir / "timings.json", summary)

    for index, path in enumerate(paths):
        output = (out_dir / path.name).resolve()
        output.with_suffix(".json").unlink(missing_ok=True)  # a results file left by an earlier run is not this run's
        print(f"[{profile}] {path} -> {output}", flush=True)
        try:
            notebook = nbformat.read(path, as_version=4)
            own_paths = runner.notebook_path_defaults(
                path, {k: v for k, v in notebook_parameters(path).items() if k not in overrides})
        except Exception as exc:  # a missing or broken notebook: this chapter failed, the others run
            record(index, seconds=0.0, error=f"{type(exc).__name__}: {exc}", attempts=0)
            continue
        tasks.append(runner.PointTask(point_id=str(index), parameters={**own_paths, "profile": profile, **overrides},
                                      notebook_name=path.name, notebook_text=runner.runnable_text(notebook)))
    if tasks:
        with runner.dask_client(jobs=1, scheduler=scheduler) as client:

            def on_retry(outcome: Any) -> None:
                print(f"[{profile}] {paths[int(outcome.point_id)].name}: {outcome.cause} on attempt {outcome.attempt} "
                      f"({outcome.error}); running it again", file=sys.stderr, flush=True)

            for outcome in runner.run_tasks(client, tasks, retries=retries, on_retry=on_retry):
                index = int(outcome.point_id)
                output = (out_dir / paths[index].name).resolve()
                if outcome.notebook_text is not None:
                    atomic_write(output, outcome.notebook_text)
                if outcome.ok:
                    atomic_write(output.with_suffix(".json"), outcome.results_text)
                record(index, seconds=outcome.seconds, error=outcome.error, attempts=outcome.attempt)
    return summary


def _papermill_value(text: str) -> Any:
    """papermill's reading of a ``-p`` value: None, True/False, int, float, else the string."""
    if text in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def papermill_parameters(arguments: Sequence[str]) -> dict[str, Any]:
    """Parameters from papermill command-line options (``-p NAME VALUE``, ``-r NAME VALUE``, ``-y YAML``), in order.

    Example:
      >>> papermill_parameters(["-p", "rho", "0.25", "-y", "n_values: [16, 32]", "-r", "dataset", "1"])
      {'rho': 0.25, 'n_values': [16, 32], 'dataset': '1'}
    """
    arguments, parameters = list(arguments), {}
    while arguments:
        option = arguments.pop(0)
        if option in ("-p", "--parameters", "-r", "--parameters_raw") and len(arguments) >= 2:
            name, value = arguments.pop(0), arguments.pop(0)
            parameters[name] = value if option in ("-r", "--parameters_raw") else _papermill_value(value)
        elif option in ("-y", "--parameters_yaml") and arguments:
            document = yaml.safe_load(arguments.pop(0))
            if not isinstance(document, dict):
                raise ValueError(f"papermill_args: -y needs a YAML mapping, got {document!r}")
            parameters.update(document)
        else:
            raise ValueError(f"papermill_args: expected -p NAME VALUE, -r NAME VALUE or -y YAML, got {option!r}")
    return parameters


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


def _asset_key(asset: Any) -> tuple[str, int, tuple[tuple[str, str], ...]]:
    attributes = getattr(asset, "attributes", {}) or {}
    return (str(getattr(asset, "filename", asset) or ""), int(getattr(asset, "priority", 500)),
            tuple(sorted((str(k), str(v)) for k, v in attributes.items())))


def deduplicate_assets(assets: Sequence[Any]) -> list[Any]:
    """``assets`` (Sphinx ``_JavaScript``/``_CascadingStyleSheet``) in order, without repeats.

    Two assets are the same when file name (``None`` counts as ``""``), priority and attributes agree.
    """
    seen: set[tuple[str, int, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for asset in assets:
        key = _asset_key(asset)
        if key not in seen:
            seen.add(key)
            unique.append(asset)
    return unique


def external_assets(assets: Sequence[Any]) -> list[str]:
    """File names of the ``assets`` that a browser would fetch from another site (``scheme://`` or ``//``)."""
    names = [str(getattr(asset, "filename", asset) or "") for asset in assets]
    return [name for name in names if "://" in name or name.startswith("//")]


#: tags whose ``src``/``href``/``data`` the browser fetches by itself (``<a href>`` is a link, not a load)
_LOADING_TAG = re.compile(
    r"<(script|link|img|iframe|source|video|audio|embed|object|track|input)\b[^>]*?\b(src|href|data|srcset)\s*=\s*"
    r"[\"']?\s*((?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//[^\"'\s>]+)", re.IGNORECASE)


def external_references(html: str) -> list[str]:
    """Addresses on another site that ``html`` (e.g. a page body with cell outputs) makes the browser load.

    Example:
      >>> external_references('<script src="https://cdn.plot.ly/p.js"></script><a href="https://x.org">x</a>')
      ['https://cdn.plot.ly/p.js']
    """
    return [match.group(3) for match in _LOADING_TAG.finditer(html)]


def _page_assets(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    from sphinx.util import logging

    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = deduplicate_assets(context[key])
            for name in external_assets(context[key]):
                logging.getLogger(__name__).warning(
                    f"page {pagename!r} would load {name} from the network; the book must work offline "
                    f"(serve it from _static, see _config.yml)", type="kdwide", subtype="offline")
    for address in external_references(context.get("body", "")):  # cell outputs and raw HTML in the text
        logging.getLogger(__name__).warning(
            f"page {pagename!r} has content that loads {address} from the network; the book must work offline "
            f"(serve it from _static)", type="kdwide", subtype="offline")


def author_year_label(entry: Any) -> str:
    """"Hinton et al., 2015", "Phuong and Lampert, 2019", "Hinton, 2015" for a pybtex entry (braces dropped)."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [re.sub(r"[{}]", "", " ".join(p.last_names) or " ".join(p.first_names)) for p in people]
    who = ("Anonymous" if not names else names[0] if len(names) == 1 else
           f"{names[0]} and {names[1]}" if len(names) == 2 else f"{names[0]} et al.")
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


def _register_bibliography_style() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.plain import Style as PlainStyle
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries: Any) -> Any:
            seen: dict[str, int] = {}
            for entry in sorted_entries:
                label = author_year_label(entry)
                seen[label] = seen.get(label, 0) + 1
                yield label if seen[label] == 1 else f"{label}{chr(ord('a') + seen[label] - 1)}"

    class AuthorYearStyle(PlainStyle):
        default_label_style = AuthorYearLabels

    register_plugin("pybtex.style.formatting", "kdwide", AuthorYearStyle, force=True)


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension entry point: de-duplicate page assets, flag network assets, register the ``kdwide``
    bibliography style (see the module doc)."""
    app.connect("html-page-context", _page_assets)
    _register_bibliography_style()
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdwide_book.book", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("chapters", help="print the chapter notebooks of _toc.yml, one a line")
    paper = commands.add_parser("paper", aliases=["run"],
                                help="execute every chapter (profile 'paper' unless --profile) into --out")
    paper.add_argument("--out", type=Path, default=Path("_build/paper"))
    paper.add_argument("--papermill-args", default="", help="extra papermill arguments, one shell-quoted string")
    paper.add_argument("--profile", default="paper", choices=PROFILES)
    paper.add_argument("--retries", type=int, default=None,
                       help="runs again a chapter whose kernel or worker died, up to this many times (default 2)")
    paper.add_argument("--require-claims", action="store_true",
                       help="print every chapter's claims from its results file; fail unless all hold")
    paper.add_argument("notebooks", nargs="*", type=Path, help="default: the chapters of _toc.yml")
    args = parser.parse_args(argv)
    if args.command == "chapters":
        print("\n".join(str(p) for p in chapter_notebooks()))
        return 0
    summary = run_paper_profile(args.out, papermill_args=shlex.split(args.papermill_args),
                                notebooks=args.notebooks or None, profile=args.profile, retries=args.retries)
    failed = [c["notebook"] for c in summary["chapters"] if not c["succeeded"]]
    total = sum(c["seconds"] for c in summary["chapters"])
    print(f"{len(summary['chapters']) - len(failed)} of {len(summary['chapters'])} chapters ran with "
          f"profile={args.profile!r} in {total:.1f} s; timings in {args.out / 'timings.json'}")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    if args.require_claims:
        rows = claim_table(summary)
        for row in rows:
            print(f"{row['chapter']:<22} {row['claim'] or '-':<4} holds: {str(row['holds']):<5}  {row['evidence']}")
        not_holding = [f"{r['chapter']}:{r['claim']}" for r in rows if not r["holds"]]
        print(f"claims: {len(rows) - len(not_holding)} of {len(rows)} hold"
              + (f"; NOT holding: {', '.join(not_holding)}" if not_holding else ""), flush=True)
        failed = failed or not_holding
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
