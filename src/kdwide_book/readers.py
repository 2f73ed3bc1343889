"""The book for every reader: a Sphinx extension with the book's stylesheet and scripts, and HTML fixes.

Listed in ``_config.yml`` (``extra_extensions: [kdwide_book.readers]``), it

- serves ``kdwide-book.css`` on every page (the package's ``static/`` folder joins ``html_static_path``): the
  explorers' HTML controls (built by ``kdwide-explorers.js``, which :mod:`kdwide_book.explorers` serves), dark mode
  (the theme's dimming filter removed from the book's figures, explorer captions in the page's text colour),
  phones, and a print stylesheet (code wraps instead of being cut, figures stay whole, solutions are left out);
- serves ``kdwide-book.js`` on every page: the theme's search and colour-mode buttons get an accessible name that
  holds their visible text (axe-core's ``label-content-name-mismatch``);
- turns the repository, issue and launch (Binder, Colab) buttons on from one setting, ``repository: url:`` in
  ``_config.yml`` (:func:`repository_options`): empty, the book shows none of them (a copy with no public home);
  set, every chapter links to its notebook in that repository and opens it on Binder and Colab;
- offers the whole-book PDF in every page's download menu when ``kdwide_whole_book_pdf`` (Sphinx config; ``make pdf``
  sets it for its render) names it, beside the theme's "print this page" entry;
- repairs roles in the generated HTML of every page (:func:`accessible_body`): sphinxcontrib-bibtex marks the
  reference list ``role="list"`` but its entries with the deprecated ``doc-biblioentry`` (axe-core: critical
  ``aria-required-children``), pandas tables leave the index column's header cell empty (``empty-table-header``), and
  MyST-NB labels its "Show code cell output" toggles "Toggle hidden content" (``label-content-name-mismatch``).

Why in the page body and not in templates: the HTML comes from other packages' writers (docutils, sphinxcontrib-bibtex,
pandas outputs stored in the chapters); rewriting two well-defined patterns at ``html-page-context`` keeps the fix in one
place, and a test (tests/test_readers.py) fails if the patterns stop matching.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["STATIC_FOLDER", "BOOK_CSS", "BOOK_JS", "LAUNCH_SERVICES", "accessible_body", "repository_options", "setup"]

#: the package's folder of files served from ``_static/``
STATIC_FOLDER = Path(__file__).resolve().parent / "static"
BOOK_CSS = "kdwide-book.css"
BOOK_JS = "kdwide-book.js"

#: where the launch buttons open a chapter when ``repository.url`` is set (``launch_buttons:`` in _config.yml can name
#: others); the theme builds each chapter's address from the repository URL, its branch and the notebook's path
LAUNCH_SERVICES = {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com"}

_BIBLIOGRAPHY_ENTRY = re.compile(r'(<div class="citation"[^>]*?) role="doc-biblioentry"')
_EMPTY_HEADER = re.compile(r"(<thead>\s*<tr[^>]*>\s*)<th></th>")
_GENERIC_SUMMARY = '<summary aria-label="Toggle hidden content">'


def accessible_body(html: str) -> str:
    """``html`` with the reference list's entries as list items, pandas' empty index header cells as data cells, and
    MyST-NB's hidden-output toggles named by their visible text ("Show code cell output") instead of a fixed label.

    Example:
        >>> accessible_body('<div role="list"><div class="citation" id="a" role="doc-biblioentry">A</div></div>')
        '<div role="list"><div class="citation" id="a" role="listitem">A</div></div>'
        >>> accessible_body('<table><thead><tr style="x"><th></th><th>n</th></tr></thead></table>')
        '<table><thead><tr style="x"><td></td><th>n</th></tr></thead></table>'
    """
    html = _BIBLIOGRAPHY_ENTRY.sub(r'\1 role="listitem"', html)
    html = html.replace(_GENERIC_SUMMARY, "<summary>")
    return _EMPTY_HEADER.sub(r"\1<td></td>", html)


def repository_options(theme_options: dict[str, Any]) -> dict[str, Any]:
    """Theme options with the repository, issue and launch buttons on exactly when ``repository_url`` is set.

    Jupyter Book copies ``repository: url:`` of ``_config.yml`` into the theme option ``repository_url``.

    Example:
        >>> options = repository_options({"repository_url": "https://github.com/o/r/", "launch_buttons": {}})
        >>> options["repository_url"], options["use_issues_button"], options["launch_buttons"]["binderhub_url"]
        ('https://github.com/o/r', True, 'https://mybinder.org')
        >>> repository_options({"repository_url": ""})["use_repository_button"]
        False
    """
    options = dict(theme_options)
    url = str(options.get("repository_url") or "").strip().rstrip("/")
    launch = dict(options.get("launch_buttons") or {})
    if not url:
        options.update(use_repository_button=False, use_issues_button=False)
        options["launch_buttons"] = {**launch, **{key: "" for key in LAUNCH_SERVICES}}
        return options
    options.update(repository_url=url, use_repository_button=True, use_issues_button=True)
    options["launch_buttons"] = {**launch, **{key: launch.get(key) or service for key, service in LAUNCH_SERVICES.items()}}
    return options


def _repository_buttons(app: Any, config: Any) -> None:
    config.html_theme_options = repository_options(config.html_theme_options or {})


def _whole_book_entry(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    # after sphinx-book-theme's add_header_buttons (priority 501), which fills context["header_buttons"]
    name = app.config.kdwide_whole_book_pdf
    for group in context.get("header_buttons", []):
        if name and group.get("label") == "download-buttons":
            group["buttons"].append({
                "type": "link", "url": context["pathto"](name, 1), "text": "whole book (.pdf)", "icon": "fas fa-book",
                "tooltip": "Download the whole book as one PDF", "label": "download-whole-book-button"})


def _serve_static(app: Any) -> None:
    app.config.html_static_path = [*app.config.html_static_path, str(STATIC_FOLDER)]


def _page_body(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    if "body" in context:
        context["body"] = accessible_body(context["body"])


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension: the book's stylesheet and theme fixes on every page, accessible roles in page bodies, and the
    repository and launch buttons from ``repository.url``."""
    app.connect("config-inited", _repository_buttons)
    app.connect("builder-inited", _serve_static)
    app.add_css_file(BOOK_CSS)
    app.add_js_file(BOOK_JS, loading_method="defer")
    app.connect("html-page-context", _page_body)
    app.add_config_value("kdwide_whole_book_pdf", "", "html", types=[str])
    app.connect("html-page-context", _whole_book_entry, priority=600)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
