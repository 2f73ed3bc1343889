"""kdwide_book.sphinx_extension: the page asset filter and the author-year bibliography labels."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from kdwide_book.sphinx_extension import author_year_label, deduplicate_assets, external_assets, setup

ROOT = Path(__file__).resolve().parents[1]


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


def test_author_year_labels_for_the_bibliography() -> None:
    parse_file = pytest.importorskip("pybtex.database", reason="pybtex (the book extra) is not installed").parse_file

    entries = parse_file(str(ROOT / "references.bib")).entries
    assert author_year_label(entries["hinton2015distilling"]) == "Hinton et al., 2015"
    assert author_year_label(entries["phuong2019towards"]) == "Phuong and Lampert, 2019"
    assert author_year_label(entries["kdwidebook"]) == "The kd-wide-book authors, 2026"
    connected = []
    assert setup(SimpleNamespace(connect=lambda *handler: connected.append(handler)))["parallel_read_safe"]
    assert [event for event, _ in connected] == ["html-page-context"]
    from pybtex.plugin import find_plugin

    style = find_plugin("pybtex.style.formatting", "kdwide")()
    labels = [e.label for e in style.format_entries([entries["jacot2018neural"], entries["jacot2018neural"]])]
    assert labels == ["Jacot et al., 2018", "Jacot et al., 2018b"]
