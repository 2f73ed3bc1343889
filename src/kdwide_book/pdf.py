"""The whole book as one PDF, printed by headless Chromium from the rendered HTML (``make pdf``).

Why Chromium: the browser tests already use Debian's ``chromium`` and ``chromedriver``, which work offline and print
exactly what a reader sees (theme, typeset MathJax, figures, explorers in their starting state). Jupyter Book 1's
``pdfhtml`` builder needs pyppeteer, which downloads a browser of its own (impossible offline), and its ``pdflatex``
builder needs a TeX installation and drops the interactive figures.

How: the article of every page listed in ``_toc.yml`` (introduction, chapters, appendices, in reading order) goes
into one page, ``book/__print__.html`` (the introduction's ``<head>``: the theme's styles, MathJax served from
``_static``, plotly.js and the book's stylesheet, whose ``@media print`` rules wrap code and leave solutions out),
after a title page with the contents. That page is served from 127.0.0.1 and opened in headless Chromium with no
network; once MathJax has typeset it and every explorer is drawn, Chromium's ``Page.printToPDF`` prints it on A4
with page numbers. One page rather than one PDF per chapter: one print needs no PDF merging, and page numbers run
through the book.

Command line: ``python -m kdwide_book.pdf HTML_DIR OUT.pdf`` (``make pdf``: the committed outputs rendered by
``make book-check``, printed to ``_build/kd-wide-book.pdf`` and beside the site's ``index.html``, where the download
menu's "Whole book (.pdf)" finds it).
"""

from __future__ import annotations

import argparse
import base64
import functools
import html as html_text
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kdwide_book.book import toc_files
from kdwide_book.results import atomic_write

__all__ = ["PRINT_PAGE", "PDF_NAME", "book_pages", "print_page", "print_book", "main"]

#: the combined page, written beside the book's pages (same folder: their relative links to _static/ and _images/ hold)
PRINT_PAGE = "__print__.html"
#: the whole-book PDF's file name beside the site's index.html (the download menu links to it)
PDF_NAME = "kd-wide-book.pdf"
_TIMEOUT_S = 180
_PRINT_STYLE = """<style>
.kdwide-print-title { min-height: 80vh; } .kdwide-print-title h1 { font-size: 2.2rem; margin-top: 30vh; }
.kdwide-print-contents { list-style: none; padding-left: 0; } .kdwide-print-contents li { margin: .2rem 0; }
.kdwide-print-page { break-before: page; }
@page { size: A4; }
</style>"""
_READY_JS = r"""
const done = arguments[arguments.length - 1], start = Date.now();
function ready() {
  const figures = Array.from(document.querySelectorAll('figure.kdwide-explorer'));
  return figures.every(f => f.classList.contains('kdwide-ready')) && Array.from(document.images).every(i => i.complete);
}
(function wait() {
  if (Date.now() - start > arguments_timeout) { done('timed out: MathJax or an explorer never finished'); return; }
  const math = window.MathJax && MathJax.startup && MathJax.startup.promise;
  if (!math) { setTimeout(wait, 200); return; }
  math.then(() => { if (ready()) { done('ready'); } else { setTimeout(wait, 200); } }, error => done('MathJax: ' + error));
})();
"""


def book_pages(html_root: Path, book_root: Path) -> list[str]:
    """The rendered pages of ``_toc.yml`` (under ``book_root``) in reading order, as paths under ``html_root``.

    Raises:
      ValueError: a page of the table of contents is missing from ``html_root`` (render the book first), or the
        pages are not all in one folder (the combined page's relative links would break).
    """
    pages = [f"{name}.html" for name in toc_files(book_root)]
    missing = [page for page in pages if not (html_root / page).is_file()]
    if missing:
        raise ValueError(f"html_root = {html_root}: pages {missing} are missing; render the book first (make book-check)")
    folders = {str(Path(page).parent) for page in pages}
    if len(folders) != 1:
        raise ValueError(f"the book's pages are in several folders {sorted(folders)}; the print page needs one")
    return pages


def print_page(html_root: Path, pages: Sequence[str], title: str) -> str:
    """One HTML page holding the article of every page in ``pages``, after a title page with the contents.

    The ``<head>`` is the first page's, with any script or stylesheet that another page loads added once (a page with
    an explorer loads plotly.js).
    """
    from bs4 import BeautifulSoup

    documents = [BeautifulSoup((html_root / page).read_text(), "html.parser") for page in pages]
    combined = documents[0]
    head = combined.head
    present = {_asset_name(tag) for tag in head.find_all(["script", "link"])}
    for document in documents[1:]:
        for tag in document.head.find_all(["script", "link"]):
            if _asset_name(tag) and _asset_name(tag) not in present:
                present.add(_asset_name(tag))
                head.append(tag)
    head.append(BeautifulSoup(_PRINT_STYLE, "html.parser"))
    for document in documents:  # the theme's print-only copy of each title (unnumbered; the stylesheet hides it)
        for header in document.select("#jb-print-docs-body"):
            header.decompose()
    headings = [document.select_one("article.bd-article section h1") for document in documents]
    contents = "".join(f"<li>{html_text.escape(h.get_text(' ', strip=True).rstrip('#'))}</li>" for h in headings if h)
    seen: set[str] = set()
    articles = "".join(f'<section class="kdwide-print-page">{_unique_plot_ids(document, seen, index)}</section>'
                       for index, document in enumerate(documents))
    body = (f'<body><div class="bd-container"><main class="bd-main"><div class="bd-content"><div class="bd-article-container">'
            f'<article class="bd-article"><section class="kdwide-print-title"><h1>{html_text.escape(title)}</h1>'
            f'<h2>Contents</h2><ol class="kdwide-print-contents">{contents}</ol></section>{articles}</article>'
            f"</div></div></main></div></body>")
    combined.body.replace_with(BeautifulSoup(body, "html.parser"))
    return str(combined)


def _unique_plot_ids(document: Any, seen: set[str], index: int) -> str:
    # A figure shown on two pages (the introduction glues chapter 1's explorer) would appear twice with one element
    # id, and its second script would draw into the first copy: later copies get an id of their own.
    article = document.select_one("article.bd-article").decode_contents()
    for plot in document.select("article.bd-article .plotly-graph-div[id]"):
        name = plot["id"]
        if name in seen:
            article = article.replace(f'"{name}"', f'"{name}-{index}"').replace(f'"{name}-figure"', f'"{name}-{index}-figure"')
        seen.add(name)
    return article


def _asset_name(tag: Any) -> str:
    return str(tag.get("src") or tag.get("href") or "").split("?", 1)[0]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        pass


@contextmanager
def _serve(root: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _chromium() -> Any:
    """Headless Chromium (Debian's chromium + chromedriver) with no network but 127.0.0.1."""
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        raise FileNotFoundError("make pdf prints with headless Chromium: install Debian's chromium and "
                                "chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=760,1100",
                 "--force-device-scale-factor=1", "--hide-scrollbars", "--no-first-run", "--disable-extensions",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
                 "--proxy-bypass-list=127.0.0.1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(_TIMEOUT_S)
    driver.set_page_load_timeout(_TIMEOUT_S)
    return driver


def print_book(html_root: str | Path, out: str | Path, *, book_root: str | Path = ".", title: str | None = None) -> Path:
    """Print the rendered book in ``html_root`` (pages from ``book_root``'s ``_toc.yml``) to the PDF ``out``.

    Example:
        >>> print_book("_build/check/_build/html", "_build/kd-wide-book.pdf")  # doctest: +SKIP
        PosixPath('_build/kd-wide-book.pdf')

    Raises:
      ValueError: a page is missing (see :func:`book_pages`); RuntimeError: MathJax or an explorer never finished.
    """
    html_root, out = Path(html_root), Path(out)
    pages = book_pages(html_root, Path(book_root))
    if title is None:
        import yaml

        title = str(yaml.safe_load((Path(book_root) / "_config.yml").read_text()).get("title", "The book"))
    combined = html_root / Path(pages[0]).parent / PRINT_PAGE
    atomic_write(combined, print_page(html_root, pages, title))
    driver = _chromium()
    try:
        with _serve(html_root) as base_url:
            driver.get(base_url + combined.relative_to(html_root).as_posix())
            outcome = driver.execute_async_script(_READY_JS.replace("arguments_timeout", str(_TIMEOUT_S * 1000 - 5000)))
            if outcome != "ready":
                raise RuntimeError(f"the print page did not settle: {outcome}")
            result = driver.execute_cdp_cmd("Page.printToPDF", {
                "printBackground": True, "paperWidth": 8.27, "paperHeight": 11.69, "marginTop": 0.6,
                "marginBottom": 0.7, "marginLeft": 0.6, "marginRight": 0.6, "displayHeaderFooter": True,
                "headerTemplate": "<span></span>",
                "footerTemplate": '<div style="font-size:8px;width:100%;text-align:center">'
                                  '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'})
    finally:
        driver.quit()
        combined.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, base64.b64decode(result["data"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdwide_book.pdf", description=__doc__.splitlines()[0])
    parser.add_argument("html", help="the rendered book (folder of index.html), e.g. _build/check/_build/html")
    parser.add_argument("out", help="the PDF to write")
    parser.add_argument("--book-root", default=".", help="the folder of _toc.yml and _config.yml (default: .)")
    arguments = parser.parse_args(argv)
    path = print_book(arguments.html, arguments.out, book_root=arguments.book_root)
    print(f"Whole-book PDF: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
