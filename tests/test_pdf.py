"""The whole-book PDF (kdwide_book.pdf, ``make pdf``): printed from the rendered book by headless Chromium.

The PDF is printed once per run from the render that ``make browser`` checks (``KDWIDE_HTML``, else the book-check
render; skipped, saying why, without a render, Chromium or poppler-utils) and read back with poppler-utils:
``pdftotext`` for its text (every page of the table of contents starts a page with its numbered title, no raw TeX)
and ``pdfimages -list`` for its pictures (every static figure of a chapter is on the page of its caption).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from test_browser import ROOT, browser_paths, html_dir

from kdwide_book.pdf import book_pages, print_book, print_page

pytestmark = pytest.mark.browser

# math delimiters and environments that MathJax consumes (commands such as \mathrm also appear in printed code: a
# matplotlib label r"$z_{s,\mathrm{eff}}$" in chapter 1)
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\end\{")


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The PDF of the rendered book, its text per page and its images per page."""
    root = html_dir()
    browser_paths()
    missing = [tool for tool in ("pdftotext", "pdfimages") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found: install Debian's poppler-utils (as .ci/run does)")
    pdf = print_book(root, tmp_path_factory.mktemp("pdf") / "book.pdf", book_root=ROOT)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    images: Counter[int] = Counter()
    for row in listing.splitlines()[2:]:  # page num type width height ...
        page, _, kind, width, height = row.split()[:5]
        if kind == "image" and int(width) >= 300 and int(height) >= 200:
            images[int(page)] += 1
    return {"root": root, "pages": [normalized(page) for page in text.split("\f")][:-1], "images": images}


def page_titles(root: Path) -> list[str]:
    """The numbered title of every page of the table of contents, as the HTML shows it ("3. Result 1: ...")."""
    from bs4 import BeautifulSoup

    titles = []
    for page in book_pages(root, ROOT):
        heading = BeautifulSoup((root / page).read_text(), "html.parser").select_one("article.bd-article section h1")
        titles.append(normalized(heading.get_text(" ", strip=True)).rstrip("#").strip())
    return titles


def test_every_page_of_the_book_starts_a_pdf_page_with_its_numbered_title(printed: dict) -> None:
    titles = page_titles(printed["root"])
    assert any(re.match(r"\d+\. ", title) for title in titles), f"no numbered chapter title in {titles}"
    starts = [page[:200] for page in printed["pages"]]
    missing = [title for title in titles if not any(start.startswith(title) for start in starts)]
    assert not missing, f"titles that start no page: {missing}"
    assert len(titles) + 1 <= len(printed["pages"]) <= 400, f"{len(printed['pages'])} pages"


def test_the_pdf_has_no_raw_tex(printed: dict) -> None:
    raw = [(number + 1, match.group()) for number, page in enumerate(printed["pages"])
           for match in RAW_TEX.finditer(page)]
    assert not raw, f"raw TeX in the PDF text (page, text): {raw[:10]}"


def test_every_static_figure_is_on_the_page_of_its_caption(printed: dict) -> None:
    from bs4 import BeautifulSoup

    problems, count = [], 0
    for page in book_pages(printed["root"], ROOT):
        soup = BeautifulSoup((printed["root"] / page).read_text(), "html.parser")
        for figure in soup.select("article.bd-article figure"):
            if not figure.select_one(".cell_output img, img") or figure.find_parent(class_="solution"):
                continue
            count += 1
            # the caption's number and its words up to the first formula (MathJax's output reads differently as text)
            caption = normalized(figure.select_one("figcaption").get_text(" ", strip=True)).split("\\(")[0][:50].strip()
            where = [number + 1 for number, text in enumerate(printed["pages"]) if caption in text]
            if not where:
                problems.append(f"{page}: caption {caption!r} not in the PDF")
            elif not any(printed["images"][number] for number in where):
                problems.append(f"{page}: no image on PDF page {where} with caption {caption!r}")
    assert count >= 19, f"{count} static figures in the book's pages; the chapters have at least 19"
    assert not problems, "\n".join(problems)


def test_solutions_are_left_out_and_code_is_wrapped(printed: dict) -> None:
    assert not any(page.startswith("Solution to Exercise") or " Solution to Exercise " in page
                   for page in printed["pages"])
    css = (ROOT / "src" / "kdwide_book" / "static" / "kdwide-book.css").read_text()
    assert "pre-wrap" in css.split("@media print", 1)[1]


def test_the_print_page_refuses_a_missing_page_and_renames_repeated_explorers(tmp_path: Path) -> None:
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/a\nchapters:\n  - file: book/b\n")
    (tmp_path / "html" / "book").mkdir(parents=True)
    with pytest.raises(ValueError, match="missing; render the book first"):
        book_pages(tmp_path / "html", tmp_path)
    figure = ('<figure class="kdwide-explorer" id="e-figure"><div id="e" class="plotly-graph-div"></div>'
              '<script>Plotly.newPlot("e", [])</script></figure>')
    for name in ("a", "b"):
        (tmp_path / "html" / "book" / f"{name}.html").write_text(
            f'<html><head><script src="../_static/{name}.js"></script></head><body><article class="bd-article">'
            f'<section><h1>{name.upper()}</h1>{figure}</section></article></body></html>')
    combined = print_page(tmp_path / "html", book_pages(tmp_path / "html", tmp_path), "Title")
    assert combined.count('Plotly.newPlot("e"') == 1 and combined.count('Plotly.newPlot("e-1"') == 1
    assert "../_static/a.js" in combined and "../_static/b.js" in combined
    assert "<li>A</li><li>B</li>" in combined
