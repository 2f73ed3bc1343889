"""The book for every reader (kdwide_book.readers): accessible roles in generated HTML, the served stylesheet."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from kdwide_book.readers import BOOK_CSS, BOOK_JS, STATIC_FOLDER, accessible_body, setup

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
    calls: dict[str, list] = {"connect": [], "css": [], "js": []}
    app = SimpleNamespace(config=SimpleNamespace(html_static_path=["x"]),
                          connect=lambda event, handler, priority=500: calls["connect"].append((event, handler)),
                          add_css_file=lambda name, **kw: calls["css"].append(name),
                          add_js_file=lambda name, **kw: calls["js"].append((name, kw)))
    setup(app)
    handlers = dict(calls["connect"])
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
