"""The book for every reader (kdwide_book.readers): accessible roles in generated HTML, the served stylesheet, the
citation file, and the repository and launch buttons from one setting."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from kdwide_book.readers import (BOOK_CSS, BOOK_JS, LAUNCH_SERVICES, STATIC_FOLDER, accessible_body, repository_options,
                                 setup)

# what sphinxcontrib-bibtex 2.7 and pandas write (copied from a rendered page)
BIBLIOGRAPHY = ('<div role="list" class="citation-list">\n<div class="citation" id="id17" role="doc-biblioentry">\n'
                '<span class="label"><span class="fn-bracket">[</span><a role="doc-backlink" href="#id4">Du et al., 2019</a>'
                '<span class="fn-bracket">]</span></span>\n<p>Simon S. Du.</p>\n</div>\n</div>')
DATAFRAME = ('<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">\n      <th></th>\n'
             '      <th>package</th>\n    </tr>\n  </thead>\n  <tbody>\n    <tr>\n      <th>0</th>\n      <th></th>\n')
TOGGLE = '<details class="admonition hide below-input">\n<summary aria-label="Toggle hidden content">\n<p>Show</p>'


def test_the_reference_list_holds_list_items() -> None:
    fixed = accessible_body(BIBLIOGRAPHY)
    assert "doc-biblioentry" not in fixed and fixed.count('role="listitem"') == 1
    assert 'role="doc-backlink"' in fixed  # the backlink inside the item stays


def test_only_the_empty_index_header_of_a_table_head_becomes_a_data_cell() -> None:
    fixed = accessible_body(DATAFRAME)
    head, body = fixed.split("<tbody>")
    assert "<th></th>" not in head and "<td></td>" in head and "<th>package</th>" in head
    assert body.count("<th></th>") == 1  # an empty cell in the body is left as written


def test_hidden_output_toggles_are_named_by_their_text() -> None:
    assert accessible_body(TOGGLE) == TOGGLE.replace(' aria-label="Toggle hidden content"', "")


def test_html_without_those_patterns_is_unchanged() -> None:
    html = '<div class="citation" id="a"><p>x</p></div><table><thead><tr><th>a</th></tr></thead></table>'
    assert accessible_body(html) == html


def test_the_extension_serves_the_stylesheet_on_every_page_and_fixes_page_bodies() -> None:
    calls: dict[str, list] = {"connect": [], "css": [], "js": [], "config": []}
    app = SimpleNamespace(config=SimpleNamespace(html_static_path=["x"]),
                          connect=lambda event, handler, priority=500: calls["connect"].append((event, handler)),
                          add_css_file=lambda name, **kw: calls["css"].append(name),
                          add_js_file=lambda name, **kw: calls["js"].append((name, kw)),
                          add_config_value=lambda name, default, *args, **kw: calls["config"].append((name, default)))
    setup(app)
    assert calls["config"] == [("kdwide_whole_book_pdf", "")]
    handlers = {event: handler for event, handler in calls["connect"] if handler.__name__ != "_whole_book_entry"}
    handlers["builder-inited"](app)
    assert app.config.html_static_path == ["x", str(STATIC_FOLDER)]
    assert calls["css"] == [BOOK_CSS] and calls["js"] == [(BOOK_JS, {"loading_method": "defer"})]
    for name in (BOOK_CSS, BOOK_JS, "kdwide-explorers.js"):
        assert (Path(STATIC_FOLDER) / name).stat().st_size > 500, name
    context = {"body": BIBLIOGRAPHY}
    handlers["html-page-context"](app, "book/references", "page.html", context, None)
    assert context["body"] == accessible_body(BIBLIOGRAPHY) != BIBLIOGRAPHY


def test_the_stylesheet_has_dark_mode_and_print_rules() -> None:
    css = (Path(STATIC_FOLDER) / BOOK_CSS).read_text()
    assert 'html[data-theme="dark"] .bd-content .cell_output img' in css and "filter: none" in css
    assert "@media print" in css and "pre-wrap" in css


# ---------------------------------------------------------------------------------------------------------------
# Citation file
# ---------------------------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
CFFCONVERT_ENV = "KDWIDE_CFFCONVERT"
DEFAULT_CFFCONVERT = ROOT / ".venv" / "share" / "cffconvert" / "bin" / "cffconvert"


def cffconvert() -> str:
    """The cffconvert command (``make cffconvert``; ``KDWIDE_CFFCONVERT`` names another); skip when it is missing."""
    configured = os.environ.get(CFFCONVERT_ENV)
    path = Path(configured) if configured else DEFAULT_CFFCONVERT
    if path.is_file():
        return str(path)
    if configured:
        pytest.fail(f"{CFFCONVERT_ENV}={configured}: no cffconvert there (make cffconvert installs it)")
    pytest.skip(f"cffconvert not installed at {DEFAULT_CFFCONVERT}: run `make cffconvert` (make unit does)")


def test_the_citation_file_is_valid(tmp_path: Path) -> None:
    command = cffconvert()
    result = subprocess.run([command, "--validate", "-i", str(ROOT / "CITATION.cff")], capture_output=True, text=True)
    assert result.returncode == 0 and "valid" in result.stdout, result.stdout + result.stderr
    broken = tmp_path / "CITATION.cff"  # the validator must be able to say no: authors is required
    broken.write_text("\n".join(line for line in (ROOT / "CITATION.cff").read_text().splitlines()
                                if not line.startswith(("authors:", "  - name:"))) + "\n")
    assert subprocess.run([command, "--validate", "-i", str(broken)], capture_output=True).returncode != 0


def test_the_citation_file_agrees_with_the_package_and_the_bibliography() -> None:
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert citation["version"] == version
    bibliography = (ROOT / "references.bib").read_text()
    paper = re.search(r"@inproceedings\{ji2020knowledge,.*?title\s*=\s*\{([^}]*)\}", bibliography, re.DOTALL).group(1)
    assert [reference["title"] for reference in citation["references"]] == [paper]
    assert "CITATION.cff" in (ROOT / "book" / "intro.md").read_text()  # the introduction points at it


# ---------------------------------------------------------------------------------------------------------------
# Repository and launch buttons from one setting
# ---------------------------------------------------------------------------------------------------------------

SAMPLE_REPOSITORY = "https://github.com/example-org/kd-wide-book"


def test_repository_options_turn_every_button_on_or_off_with_the_url() -> None:
    on = repository_options({"repository_url": SAMPLE_REPOSITORY + "/",
                             "launch_buttons": {"notebook_interface": "classic", "colab_url": "https://colab.example"}})
    assert on["repository_url"] == SAMPLE_REPOSITORY and on["use_repository_button"] and on["use_issues_button"]
    assert on["launch_buttons"] == {"notebook_interface": "classic", "colab_url": "https://colab.example",
                                    "binderhub_url": LAUNCH_SERVICES["binderhub_url"]}  # a service set stays
    off = repository_options({"repository_url": " ", "launch_buttons": {"binderhub_url": "https://mybinder.org"}})
    assert not off["use_repository_button"] and not off["use_issues_button"]
    assert off["launch_buttons"] == {"binderhub_url": "", "colab_url": ""}


@pytest.mark.skipif(shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) is None,
                    reason="jupyter-book is not installed here (the book extra of the pinned environment)")
def test_a_book_with_a_repository_url_links_each_chapter_to_its_notebook(tmp_path: Path) -> None:
    """A one-chapter copy of the book (committed outputs, not executed) built with a sample repository URL."""
    source = tmp_path / "src"
    (source / "book").mkdir(parents=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    config["repository"]["url"] = SAMPLE_REPOSITORY
    (source / "_config.yml").write_text(yaml.safe_dump(config))
    (source / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n  - file: book/01_effective_logit\n")
    (source / "index.md").write_text("# Sample\n\nA one-chapter copy.\n")
    shutil.copy(ROOT / "references.bib", source)
    shutil.copy(ROOT / "book" / "01_effective_logit.ipynb", source / "book")
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(source), "--path-output",
                    str(tmp_path), "-q"], check=True, env={**os.environ, "MPLBACKEND": "Agg"}, capture_output=True)
    page = (tmp_path / "_build" / "html" / "book" / "01_effective_logit.html").read_text()
    links = set(re.findall(r'href="(https://[^"]+)"', page))
    notebook = "book/01_effective_logit.ipynb"
    expected = {
        "repository": SAMPLE_REPOSITORY,
        "issues": f"{SAMPLE_REPOSITORY}/issues/new?title=Issue%20on%20page%20%2Fbook/01_effective_logit.html&body=Your%20issue%20content%20here.",
        "Binder": f"https://mybinder.org/v2/gh/example-org/kd-wide-book/main?urlpath=tree/{notebook}",
        "Colab": f"https://colab.research.google.com/github/example-org/kd-wide-book/blob/main/{notebook}",
    }
    missing = {name: url for name, url in expected.items() if url not in links}
    assert not missing, f"missing links {missing}; the page links to {sorted(links)}"


def test_the_download_menu_offers_the_whole_book_pdf_only_when_it_is_named() -> None:
    handlers: list = []
    app = SimpleNamespace(config=SimpleNamespace(html_static_path=[], kdwide_whole_book_pdf=""),
                          connect=lambda event, handler, priority=500: handlers.append((event, handler, priority)),
                          add_css_file=lambda *a, **k: None, add_js_file=lambda *a, **k: None,
                          add_config_value=lambda *a, **k: None)
    setup(app)
    entry = next(handler for event, handler, priority in handlers if handler.__name__ == "_whole_book_entry")
    assert next(priority for event, handler, priority in handlers if handler is entry) > 501  # after the theme's

    def context() -> dict:
        return {"pathto": lambda name, resource: f"../{name}",
                "header_buttons": [{"label": "download-buttons", "buttons": [{"label": "download-pdf-button"}]}]}

    page = context()
    entry(app, "book/03_risk_bound", "page.html", page, None)
    assert len(page["header_buttons"][0]["buttons"]) == 1  # not named: no entry
    app.config.kdwide_whole_book_pdf = "kd-wide-book.pdf"
    page = context()
    entry(app, "book/03_risk_bound", "page.html", page, None)
    added = page["header_buttons"][0]["buttons"][-1]
    assert added["url"] == "../kd-wide-book.pdf" and added["type"] == "link" and "whole book" in added["text"]
