"""The rendered book in a real browser: headless Chromium opens every page with the network off.

``make browser`` (part of ``make test``, after ``book-check``) runs this file on ``_build/check/_build/html``
(``KDWIDE_HTML`` names the folder; without it the default folder is used if it exists, else the tests skip).
The pages are served from a local http.server on 127.0.0.1; Chromium resolves no other host
(``--host-resolver-rules``) and sends everything else to a closed local port (``--proxy-server``), so a page
that needs the network fails here instead of quietly loading a CDN. On every page:

- math is typeset: every ``.math`` element holds a MathJax ``mjx-container``, no ``mjx-merror``, and no raw TeX
  (``$$``, ``\\(``, ``\\[``, ``$\\``) is left in the visible text outside code;
- every image has loaded (``naturalWidth > 0``), and notebook figures in PNG are high-DPI (at least 1.5 image
  pixels per CSS pixel);
- the browser console has no errors, and no request went to anything but the local server;
- exercise solutions are hidden behind a toggle, and clicking it shows them;
- every interactive figure (plotly explorer) responds: moving each slider changes the plotted data, with no console
  error and no request outside the site (every chapter page and the introduction have at least one);
- a full-page screenshot goes to ``_build/screenshots/`` (one per page under ``book/``).

For readers on every device (issue 21):

- axe-core (``make axe`` installs the pinned version; ``KDWIDE_AXE`` names the file) runs on every page in the light
  colour mode, and its colour-contrast rule again in dark mode: no violation of any impact outside ``AXE_ALLOWED``,
  the one allow-list (each entry with its reason);
- keyboard: in every explorer, Tab reaches the first slider (with a visible focus ring, a label and a spoken value),
  arrow keys, Home and End move it and the plotted data and the live description change; legend entries toggle
  with Space;
- dark mode: toggled with the theme's own button, every explorer switches its colours, its caption reads at 4.5:1,
  and the notebook figures are not dimmed; toggled back, the explorers return to light;
- phones (390 x 844): every part of every explorer (plot, tick labels, axis titles, controls) lies inside its
  figure and the page does not scroll sideways, and tick labels do not overlap.

Every figure of a chapter page is numbered ("Fig. 3.2"), captioned and described by an alternative text that is not
a file name (checked in the HTML, no browser needed). The last tests check the checkers: with the local MathJax withheld, and on a probe page that breaks every
rule, it must report failures.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML_ENV = "KDWIDE_HTML"
DEFAULT_HTML = ROOT / "_build" / "check" / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGE_TIMEOUT_S = 60
MATHJAX_TIMEOUT_S = 60
PROBE_PAGE = "__probe__.html"
PROBE_HTML = """<!DOCTYPE html><html><head><title>probe</title>
<script src="http://cdn.example.invalid/library.js"></script></head>
<body><p>Raw math that was never typeset: $$x^2$$ and \\(y\\).</p>
<img src="missing-figure.png" alt="missing"><img src="http://images.example.invalid/figure.png" alt="remote">
<script>console.error("probe: deliberate console error");</script></body></html>"""


def html_dir() -> Path:
    """The rendered book to check (``KDWIDE_HTML``, else the book-check render); skip if there is none."""
    configured = os.environ.get(HTML_ENV)
    if configured:
        path = (ROOT / configured).resolve()
        if not (path / "index.html").is_file():
            pytest.fail(f"{HTML_ENV}={configured}: no index.html there; build the book first (make book-check)")
        return path
    if not (DEFAULT_HTML / "index.html").is_file():
        pytest.skip(f"no rendered book at {DEFAULT_HTML}: run `make book-check` first "
                    f"(`make test` does), or set {HTML_ENV}")
    return DEFAULT_HTML


def browser_paths() -> tuple[str, str]:
    """Paths of the Chromium binary and of chromedriver; skip, saying why, when either is missing."""
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver)) if p is None)
        pytest.skip(f"browser test skipped: {missing} not found on PATH. Install Debian's packages "
                    f"(`apt-get install chromium chromium-driver`, as .ci/run does) to run it")
    return chromium, driver


def book_pages(root: Path) -> list[str]:
    """Every HTML page of the site (paths relative to ``root``), theme assets and sources excluded."""
    pages = [p.relative_to(root).as_posix() for p in root.rglob("*.html")]
    return sorted(p for p in pages if not p.startswith(("_static/", "_sources/", "_images/")))


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files from ``directory``; paths under ``withheld`` answer 404; ``extra`` pages served from memory."""

    withheld: tuple[str, ...] = ()
    extra: dict[str, str] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0].lstrip("/")
        if path in self.extra:
            body = self.extra[path].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path.startswith(self.withheld):
            self.send_error(404, "withheld by the test")
        else:
            super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@dataclass
class Site:
    """A local static server for ``root`` on 127.0.0.1 (an ephemeral port)."""

    root: Path
    withheld: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    def __enter__(self) -> "Site":
        handler = type("Handler", (QuietHandler,), {"withheld": self.withheld, "extra": self.extra})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(self.root)))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_driver():
    """Headless Chromium through chromedriver, with no network but 127.0.0.1 and with browser + network logs."""
    chromium, chromedriver = browser_paths()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip extra `test`)")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never look anything up online
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000",
        "--force-device-scale-factor=1", "--hide-scrollbars", "--mute-audio", "--no-first-run",
        "--no-default-browser-check", "--disable-extensions", "--disable-sync", "--disable-default-apps",
        "--disable-background-networking", "--disable-component-update", "--disable-domain-reliability",
        "--disable-client-side-phishing-detection", "--disable-breakpad", "--metrics-recording-only",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,InterestFeedContentSuggestions",
        # the network is off: only 127.0.0.1 resolves, and everything not on loopback goes to a closed local port
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    driver.set_script_timeout(MATHJAX_TIMEOUT_S)
    return driver


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    browser = make_driver()
    try:
        yield browser
    finally:
        browser.quit()


# Runs in the page: what the checks need, in one round trip.
PAGE_STATE_JS = r"""
const visibleText = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode(node) {
  return node.parentElement.closest('pre, code, script, style, textarea, mjx-container, .highlight, .MathJax_Preview')
    ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT; }});
while (walker.nextNode()) visibleText.push(walker.currentNode.nodeValue);
const text = visibleText.join(' ');
const raw = [];
for (const pattern of [/\$\$/g, /\\\(/g, /\\\[/g, /\$\\[a-zA-Z]/g, /\\begin\{/g]) {
  for (const m of text.matchAll(pattern)) raw.push(text.slice(Math.max(0, m.index - 30), m.index + 40));
}
const math = Array.from(document.querySelectorAll('.math'));
const images = Array.from(document.images).map(img => ({
  src: img.currentSrc || img.src, complete: img.complete, naturalWidth: img.naturalWidth,
  renderedWidth: img.getBoundingClientRect().width, figure: !!img.closest('.cell_output, .output')}));
return {
  mathjax: typeof window.MathJax === 'object' && !!(window.MathJax.startup && window.MathJax.startup.document),
  mathjaxScript: !!document.querySelector('script[src*="mathjax"]'),
  math: math.length,
  untypeset: math.filter(el => !el.querySelector('mjx-container')).map(el => el.textContent.slice(0, 60)),
  containers: document.querySelectorAll('mjx-container').length,
  merrors: Array.from(document.querySelectorAll('mjx-merror')).map(el => el.textContent.slice(0, 60)),
  raw: raw,
  images: images,
  resources: performance.getEntriesByType('resource').map(e => e.name),
  solutions: document.querySelectorAll('.solution').length,
};
"""

WAIT_MATHJAX_JS = r"""
const done = arguments[arguments.length - 1];
const start = Date.now();
(function wait() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('typeset'), err => done('error: ' + err));
  } else if (Date.now() - start > 10000) {
    done('MathJax never started');
  } else {
    setTimeout(wait, 100);
  }
})();
"""


def check_page(driver, base_url: str, page: str, screenshot: Path | None = None) -> list[str]:
    """Open ``base_url + page`` and return what is wrong with it (empty: nothing)."""
    from selenium.webdriver.common.by import By

    driver.get_log("browser"), driver.get_log("performance")  # drop what earlier pages left
    driver.get(base_url + page)
    problems: list[str] = []
    state = driver.execute_script(PAGE_STATE_JS)
    if state["math"] or state["mathjaxScript"]:
        outcome = driver.execute_async_script(WAIT_MATHJAX_JS)
        if outcome != "typeset":
            problems.append(f"MathJax did not typeset the page ({outcome}); is the local MathJax in _static/mathjax?")
        state = driver.execute_script(PAGE_STATE_JS)
    if state["math"]:
        if state["untypeset"]:
            problems.append(f"{len(state['untypeset'])} of {state['math']} math elements not typeset, "
                            f"e.g. {state['untypeset'][0]!r}")
        if state["containers"] == 0:
            problems.append("no MathJax output (mjx-container) on a page with math")
    if state["merrors"]:
        problems.append(f"MathJax errors: {state['merrors'][:3]}")
    if state["raw"]:
        problems.append(f"raw TeX left in the page text: {state['raw'][:3]}")
    for image in state["images"]:
        if not image["complete"] or image["naturalWidth"] == 0:
            problems.append(f"image did not load: {image['src']}")
        elif (image["figure"] and image["src"].split("?")[0].endswith(".png") and image["renderedWidth"] > 0
              and image["naturalWidth"] < 1.5 * image["renderedWidth"]):
            problems.append(f"figure not high-DPI: {image['src']} has {image['naturalWidth']} px shown at "
                            f"{image['renderedWidth']:.0f} CSS px (use the retina figure format)")
    problems += check_solutions(driver, By)
    for entry in driver.get_log("browser"):
        # Chromium asks for /favicon.ico by itself when a page names no icon: not a request of the page
        if entry.get("level") == "SEVERE" and "/favicon.ico " not in entry.get("message", ""):
            problems.append(f"console error: {entry.get('message', '')[:300]}")
    requested = set(state["resources"])
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requested.add(message["params"]["request"]["url"])
    outside = sorted(u for u in requested if not u.startswith((base_url, "data:", "blob:", "about:")))
    if outside:
        problems.append(f"requests outside the site: {outside[:5]}")
    if screenshot is not None:
        save_screenshot(driver, screenshot)
    return problems


def check_solutions(driver, by) -> list[str]:
    """Every exercise solution starts hidden and is shown by its toggle button."""
    problems = []
    for index, solution in enumerate(driver.find_elements(by.CSS_SELECTOR, ".solution")):
        content = solution.find_elements(by.CSS_SELECTOR, "section, .solution-content, p:not(.admonition-title)")
        buttons = solution.find_elements(by.CSS_SELECTOR, "button.toggle-button")
        if not content or not buttons:
            problems.append(f"solution {index + 1} has no toggle (use `:class: dropdown`)")
            continue
        if content[0].is_displayed():
            problems.append(f"solution {index + 1} is visible before its toggle is clicked")
            continue
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", buttons[0])
        if not wait_until(content[0].is_displayed):  # the toggle fades the content in
            problems.append(f"solution {index + 1} stays hidden after its toggle is clicked")
        driver.execute_script("arguments[0].click();", buttons[0])  # hide it again for the screenshot
    return problems


def wait_until(condition, timeout_s: float = 5.0) -> bool:
    """Poll ``condition()`` until it is true (then True) or ``timeout_s`` passes (then False)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def save_screenshot(driver, path: Path) -> None:
    """A full-page PNG: the window is made as tall as the page (at most 16000 px), then restored."""
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    full = driver.execute_script("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight);")
    driver.set_window_size(width, min(max(int(full), height), 16000))
    try:
        time.sleep(0.2)  # let the layout settle at the new size
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(driver.get_screenshot_as_base64()))
    finally:
        driver.set_window_size(width, height)


def test_every_page_in_headless_chromium(driver) -> None:
    root = html_dir()
    pages = book_pages(root)
    assert any(p.startswith("book/") for p in pages), f"no book pages under {root}"
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    failures = {}
    with Site(root) as site:
        for page in pages:
            shot = SCREENSHOTS / (Path(page).with_suffix(".png").name) if page.startswith("book/") else None
            problems = check_page(driver, site.base_url, page, screenshot=shot)
            print(f"{page}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
            if problems:
                failures[page] = problems
    assert not failures, "pages with problems:\n" + "\n".join(
        f"  {page}:\n" + "\n".join(f"    - {p}" for p in problems) for page, problems in failures.items())
    shots = sorted(p.name for p in SCREENSHOTS.glob("*.png"))
    chapters = [Path(p).with_suffix(".png").name for p in pages if p.startswith("book/")]
    assert shots == sorted(chapters), f"screenshots {shots} != pages {chapters}"


def test_chapters_have_typeset_math_and_toggled_solutions(driver) -> None:
    """The pages that must have math and exercises do (so the per-page checks above are not vacuous)."""
    root = html_dir()
    chapters = [p for p in book_pages(root) if p.startswith("book/") and p.split("/")[-1][:2].isdigit()]
    assert chapters, "no chapter pages (book/NN_name.html)"
    with Site(root) as site:
        for page in chapters:
            driver.get(site.base_url + page)
            assert driver.execute_async_script(WAIT_MATHJAX_JS) == "typeset", page
            state = driver.execute_script(PAGE_STATE_JS)
            assert state["containers"] > 0 and not state["untypeset"], f"{page}: math not typeset"
            assert state["solutions"] >= 2, f"{page}: {state['solutions']} exercise solutions (need at least 2)"


def test_checker_fails_without_the_local_mathjax(driver) -> None:
    """Withholding _static/mathjax/ (what a CDN-only or broken build amounts to offline) must fail the check."""
    root = html_dir()
    page = next(p for p in book_pages(root) if p.startswith("book/") and p.split("/")[-1][:2].isdigit())
    with Site(root, withheld=("_static/mathjax/",)) as site:
        problems = check_page(driver, site.base_url, page)
    assert any("MathJax did not typeset" in p for p in problems), problems
    assert any("not typeset" in p and "math elements" in p for p in problems), problems
    assert any("console error" in p for p in problems), problems


def test_checker_reports_every_kind_of_problem(driver) -> None:
    """A probe page with a CDN script, a missing and a remote image, raw TeX and a console error."""
    root = html_dir()
    with Site(root, extra={PROBE_PAGE: PROBE_HTML}) as site:
        problems = "\n".join(check_page(driver, site.base_url, PROBE_PAGE))
    assert "requests outside the site" in problems and "cdn.example.invalid" in problems, problems
    assert "image did not load" in problems and "missing-figure.png" in problems, problems
    assert "raw TeX" in problems, problems
    assert "console error" in problems, problems


def test_without_chromium_the_browser_tests_skip_and_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/chromedriver" if name == "chromedriver" else None)
    with pytest.raises(pytest.skip.Exception, match=r"chromium not found on PATH.*apt-get install chromium chromium-driver"):
        browser_paths()


def test_without_a_rendered_book_the_browser_tests_skip_or_fail(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(HTML_ENV, raising=False)
    monkeypatch.setattr(sys.modules[__name__], "DEFAULT_HTML", tmp_path / "missing")
    with pytest.raises(pytest.skip.Exception, match="make book-check"):
        html_dir()
    monkeypatch.setenv(HTML_ENV, str(tmp_path / "missing"))  # asked for explicitly (make browser): a failure
    with pytest.raises(pytest.fail.Exception, match="no index.html there"):
        html_dir()


# ---------------------------------------------------------------------------------------------------------------
# Figures: numbered, captioned, described
# ---------------------------------------------------------------------------------------------------------------

FILE_LIKE_ALT = re.compile(r"(^\.{0,2}/|_images/|\.(png|jpe?g|svg|gif)$|^[0-9a-f]{16,}$)", re.IGNORECASE)


def figure_problems(html: str) -> list[str]:
    """What is wrong with the notebook figures of a page: every image in a cell output must sit in a ``<figure>``
    with a number (``Fig. N.M``), a caption, and an ``alt`` text that describes it (not a file name or hash)."""
    from bs4 import BeautifulSoup

    problems = []
    soup = BeautifulSoup(html, "html.parser")
    for index, image in enumerate(soup.select(".cell_output img")):
        name = image.get("src", "?")
        alt = (image.get("alt") or "").strip()
        if len(alt) < 20 or FILE_LIKE_ALT.search(alt):
            problems.append(f"image {index + 1} ({name}): alt text {alt[:60]!r} does not describe the figure")
        figure = image.find_parent("figure")
        if figure is None:
            problems.append(f"image {index + 1} ({name}): not in a <figure> (no number, no caption)")
            continue
        number = figure.select_one(".caption-number")
        if number is None or not re.fullmatch(r"Fig\. \d+\.\d+", number.get_text(strip=True)):
            problems.append(f"image {index + 1} ({name}): no figure number like 'Fig. 3.2'")
        caption = figure.select_one(".caption-text")
        if caption is None or len(caption.get_text(strip=True)) < 20:
            problems.append(f"image {index + 1} ({name}): no caption")
    return problems


def chapter_pages(root: Path) -> list[str]:
    return [p for p in book_pages(root) if p.startswith("book/") and p.split("/")[-1][:2].isdigit()]


def test_every_chapter_figure_is_numbered_captioned_and_described() -> None:
    root = html_dir()
    from bs4 import BeautifulSoup

    failures, count = {}, 0
    for page in chapter_pages(root):
        html = (root / page).read_text()
        count += len(BeautifulSoup(html, "html.parser").select(".cell_output img"))
        if problems := figure_problems(html):
            failures[page] = problems
    assert count >= 19, f"{count} figures in the chapter pages; the chapters have at least 19"
    assert not failures, "\n".join(f"{page}:\n  " + "\n  ".join(problems) for page, problems in failures.items())


def test_the_figure_check_fails_on_a_bare_image() -> None:
    bare = '<div class="cell_output"><img alt="../_images/6883e0d8.png" src="../_images/6883e0d8.png"></div>'
    problems = "\n".join(figure_problems(bare))
    assert "does not describe" in problems and "not in a <figure>" in problems, problems
    unnumbered = ('<div class="cell_output"><figure><img alt="A line plot of the risk against n, falling." src="a.png">'
                  '<figcaption><p><span class="caption-text">A caption long enough to count.</span></p></figcaption>'
                  '</figure></div>')
    assert figure_problems(unnumbered) == ["image 1 (a.png): no figure number like 'Fig. 3.2'"]


def test_without_a_repository_url_no_page_offers_repository_or_launch_buttons() -> None:
    """The committed _config.yml leaves repository.url empty: no page links to a repository, Binder or Colab
    (tests/test_readers.py builds a copy with a sample URL and finds them)."""
    root = html_dir()
    import yaml

    if yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]:
        pytest.skip("repository.url is set in _config.yml")
    buttons = re.compile(r'href="https://(?:mybinder\.org|colab\.research\.google\.com)[^"]*"|'
                         r'source-(?:repository|issues)-button')
    found = {page: hits for page in book_pages(root) if (hits := buttons.findall((root / page).read_text()))}
    assert not found, found


# ---------------------------------------------------------------------------------------------------------------
# Interactive figures: every slider moves the data
# ---------------------------------------------------------------------------------------------------------------

EXPLORER_STATE_JS = r"""
const plot = arguments[0];
const flat = v => (v && typeof v === 'object' && 'length' in v) ? Array.from(v, flat) : v;
return JSON.stringify({state: plot.getAttribute('data-state'),
                       data: (plot.data || []).map(t => [flat(t.x), flat(t.y), flat(t.z)])});
"""


def wait_for_explorer(driver, plot) -> str | None:
    """Wait until ``plot`` is drawn and its explorer's HTML controls are built; None, or what went wrong."""
    if not wait_until(lambda: driver.execute_script("return !!(arguments[0].data && arguments[0]._fullLayout)", plot)):
        return "the plot was never drawn (is _static/plotly.min.js loaded?)"
    ready = "return arguments[0].closest('figure.kdwide-explorer').classList.contains('kdwide-ready')"
    if not wait_until(lambda: driver.execute_script(ready, plot)):
        return "the explorer's controls were never built (is _static/kdwide-explorers.js loaded?)"
    return None


def explorer_ranges(plot) -> list:
    """The explorer's slider inputs (``<input type="range">`` built by kdwide-explorers.js)."""
    from selenium.webdriver.common.by import By

    return plot.find_elements(By.XPATH, "./ancestor::figure[1]//input[@type='range']")


def return_slider(driver, slider, start: int) -> None:
    """Put ``slider`` back at step ``start`` with the keyboard (Home, then arrow keys)."""
    from selenium.webdriver.common.keys import Keys

    slider.send_keys(Keys.HOME, *([Keys.ARROW_RIGHT] * start))


def page_errors(driver, base_url: str) -> list[str]:
    """Console errors and requests outside the site since the logs were last read."""
    problems = []
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE" and "/favicon.ico " not in entry.get("message", ""):
            problems.append(f"console error: {entry.get('message', '')[:300]}")
    outside = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith((base_url, "data:", "blob:", "about:")):
                outside.add(url)
    if outside:
        problems.append(f"requests outside the site: {sorted(outside)[:5]}")
    return problems


def check_explorers(driver, base_url: str, page: str) -> tuple[int, list[str]]:
    """Open ``page``, move every slider of every explorer to its ends with the mouse, and report what did not respond.

    Returns (number of explorers, problems). The slider is moved by a real click near each end of its track.
    """
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver.get_log("browser"), driver.get_log("performance")
    driver.get(base_url + page)
    problems: list[str] = []
    plots = driver.find_elements(By.CSS_SELECTOR, ".kdwide-explorer .plotly-graph-div")
    for plot in plots:
        name = plot.get_attribute("id")
        if (failure := wait_for_explorer(driver, plot)) is not None:
            problems.append(f"{name}: {failure}")
            continue
        sliders = explorer_ranges(plot)
        if not sliders:
            problems.append(f"{name}: no slider")
        initial = driver.execute_script(EXPLORER_STATE_JS, plot)
        for index, slider in enumerate(sliders):
            # to the far right end, then the far left end: some states legitimately coincide (at rho = 0 the
            # temperature plays no role), so one of the two moves must change the plotted data
            moved = changed = False
            for side in (1, -1):
                before = driver.execute_script(EXPLORER_STATE_JS, plot)
                driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", slider)
                ActionChains(driver).move_to_element_with_offset(slider, side * (slider.size["width"] // 2 - 2), 0).click().perform()
                if wait_until(lambda: driver.execute_script(EXPLORER_STATE_JS, plot) != before, timeout_s=2.0):
                    moved = True
                    after = json.loads(driver.execute_script(EXPLORER_STATE_JS, plot))
                    changed = changed or after["data"] != json.loads(before)["data"]
            # back to where it started, so the next slider is tested from the figure's own starting state
            return_slider(driver, slider, int(json.loads(initial)["state"].split(",")[index]))
            if not wait_until(lambda: driver.execute_script(EXPLORER_STATE_JS, plot) == initial, timeout_s=2.0):
                problems.append(f"{name}: slider {index + 1} did not return to its starting step")
            if not moved:
                problems.append(f"{name}: moving slider {index + 1} changed nothing")
            elif not changed:
                problems.append(f"{name}: slider {index + 1} moved but the plotted data did not change")
    return len(plots), problems + page_errors(driver, base_url)


def test_every_explorer_responds_to_its_sliders(driver) -> None:
    root = html_dir()
    pages = chapter_pages(root) + [p for p in book_pages(root) if p == "book/intro.html"]
    assert "book/intro.html" in pages, "the introduction (its hero figure) is missing"
    failures, counts = {}, {}
    with Site(root) as site:
        for page in pages:
            counts[page], problems = check_explorers(driver, site.base_url, page)
            if problems:
                failures[page] = problems
    print("explorers per page:", counts)
    assert all(counts.values()), f"pages without an interactive figure: {[p for p, n in counts.items() if not n]}"
    assert not failures, "\n".join(f"{page}:\n  " + "\n  ".join(problems) for page, problems in failures.items())


#: a page that shows an explorer's stored HTML as the book does (plotly.js, the explorers' script, the stylesheet)
EXPLORER_PROBE_PAGE = ('<!DOCTYPE html><html data-theme="light"><head><meta charset="utf-8"><title>probe</title>'
                       '<script src="_static/plotly.min.js"></script>'
                       '<script defer src="_static/kdwide-explorers.js"></script>'
                       '<link rel="stylesheet" href="_static/kdwide-book.css"></head><body><main>{body}</main></body></html>')


def test_the_explorer_check_fails_on_a_dead_slider(driver) -> None:
    """A probe explorer whose slider wiring is removed: moving the slider changes nothing, and the check says so."""
    from kdwide_book.explorers import Slider, explorer

    figure = explorer("probe-explorer", [Slider("a", [1.0, 2.0])], lambda a: [{"y": [a, a]}],
                      traces=[dict(type="scatter", x=[0, 1])], caption="A probe with a dead slider.")
    dead = figure.html.replace('plot.on("plotly_sliderchange"', 'plot.on("never_fired"')
    assert dead != figure.html
    page = EXPLORER_PROBE_PAGE.format(body=dead)
    with Site(html_dir(), extra={"__explorer_probe__.html": page}) as site:
        count, problems = check_explorers(driver, site.base_url, "__explorer_probe__.html")
    assert count == 1 and any("changed nothing" in p for p in problems), problems


# ---------------------------------------------------------------------------------------------------------------
# Accessibility: axe-core on every page
# ---------------------------------------------------------------------------------------------------------------

AXE_ENV = "KDWIDE_AXE"
DEFAULT_AXE = ROOT / ".venv" / "share" / "axe-core" / "axe.min.js"
#: The one allow-list: (axe rule, a CSS selector fragment of the flagged element) -> why it is not fixed here.
AXE_ALLOWED = {
    ("region", ".sidebar-primary-item"): (
        "theme template (sphinx-book-theme 1.3 primary sidebar): the book's title at the top of the sidebar sits "
        "outside every landmark; moderate impact; the book does not override the theme's sidebar templates"),
}
AXE_RUN_JS = r"""
const done = arguments[arguments.length - 1];
const options = arguments[0] ? {runOnly: arguments[0], resultTypes: ['violations']} : {resultTypes: ['violations']};
axe.run(document, options).then(result => done(result.violations.map(v => ({
  id: v.id, impact: v.impact,
  nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: (n.failureSummary || '').slice(0, 240)}))}))),
  error => done([{id: 'axe-error', impact: 'critical', nodes: [{target: '', summary: String(error)}]}]));
"""


def axe_source() -> str:
    """axe.min.js (``make axe``; ``KDWIDE_AXE`` names another file); skip, saying why, when it is missing."""
    configured = os.environ.get(AXE_ENV)
    path = (ROOT / configured) if configured else DEFAULT_AXE
    if not path.is_file():
        if configured:
            pytest.fail(f"{AXE_ENV}={configured}: no axe.min.js there (make axe installs it)")
        pytest.skip(f"axe-core not installed at {DEFAULT_AXE}: run `make axe` (make browser does), or set {AXE_ENV}")
    return path.read_text()


def axe_problems(driver, axe: str, rules: list[str] | None = None) -> list[str]:
    """Run axe-core (all rules, or ``rules``) on the open page; its violations outside ``AXE_ALLOWED``."""
    driver.execute_script(axe)
    problems = []
    for violation in driver.execute_async_script(AXE_RUN_JS, rules):
        for node in violation["nodes"]:
            if any(rule == violation["id"] and fragment in node["target"] for rule, fragment in AXE_ALLOWED):
                continue
            problems.append(f"axe {violation['impact']} {violation['id']}: {node['target']}: {node['summary']}")
    return problems


def open_settled(driver, url: str) -> None:
    """Open ``url`` and wait for its math and its explorers, so that checks see the page a reader sees."""
    driver.get(url)
    if driver.execute_script("return !!document.querySelector('script[src*=\"mathjax\"]')"):
        driver.execute_async_script(WAIT_MATHJAX_JS)
    wait_until(lambda: driver.execute_script(
        "return Array.from(document.querySelectorAll('figure.kdwide-explorer'))"
        ".every(f => f.classList.contains('kdwide-ready'))"), timeout_s=10.0)


def test_axe_finds_nothing_outside_the_allow_list_on_any_page(driver) -> None:
    root, axe = html_dir(), axe_source()
    failures = {}
    with Site(root) as site:
        for page in book_pages(root):
            open_settled(driver, site.base_url + page)
            if problems := axe_problems(driver, axe):
                failures[page] = problems
    assert not failures, "\n".join(f"{page}:\n  " + "\n  ".join(problems) for page, problems in failures.items())


def test_the_axe_check_reports_an_inaccessible_page(driver) -> None:
    probe = ('<!DOCTYPE html><html lang="en"><head><title>probe</title></head><body><main>'
             '<img src="x.png"><p style="color:#bbb;background:#fff">faint text</p>'
             '<button aria-label="Close">Open the menu</button></main></body></html>')
    with Site(html_dir(), extra={"__axe_probe__.html": probe}) as site:
        driver.get(site.base_url + "__axe_probe__.html")
        problems = "\n".join(axe_problems(driver, axe_source()))
    for rule in ("image-alt", "color-contrast", "label-content-name-mismatch"):
        assert rule in problems, (rule, problems)


# ---------------------------------------------------------------------------------------------------------------
# Keyboard and screen reader: every explorer
# ---------------------------------------------------------------------------------------------------------------

SLIDER_STATE_JS = r"""
const input = arguments[0], figure = input.closest('figure');
const style = getComputedStyle(input);
return {active: document.activeElement === input, focusVisible: input.matches(':focus-visible'),
        outline: style.outlineStyle === 'none' ? 0 : parseFloat(style.outlineWidth),
        value: Number(input.value), max: Number(input.max), valuetext: input.getAttribute('aria-valuetext') || '',
        label: input.labels.length ? input.labels[0].textContent.trim() : '',
        status: (figure.querySelector('[aria-live]') || {}).textContent || ''};
"""


def tab_to(driver, figure, target) -> bool:
    """Press Tab from the top of ``figure`` until ``target`` has the focus (True), at most 40 times."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("const t = arguments[0].querySelector('.kdwide-explorer-title');"
                          "t.tabIndex = -1; t.hidden = false; t.focus(); t.scrollIntoView({block: 'center'});", figure)
    for _ in range(40):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if driver.execute_script("return document.activeElement === arguments[0]", target):
            return True
    return False


def check_keyboard(driver, plot) -> list[str]:
    """Tab to the explorer's first slider and drive it with the keyboard; what did not work."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    figure = driver.execute_script("return arguments[0].closest('figure')", plot)
    sliders = explorer_ranges(plot)
    if not sliders:
        return ["no slider"]
    slider, problems = sliders[0], []
    if not tab_to(driver, figure, slider):
        return ["Tab never reaches the first slider"]
    state = driver.execute_script(SLIDER_STATE_JS, slider)
    if not state["focusVisible"] or state["outline"] < 2:
        problems.append(f"no visible focus ring on the focused slider (outline {state['outline']} px)")
    if not state["label"] or not state["valuetext"].startswith(state["label"]):
        problems.append(f"slider label {state['label']!r} / spoken value {state['valuetext']!r} missing")
    before, status = driver.execute_script(EXPLORER_STATE_JS, plot), state["status"]
    key = Keys.ARROW_LEFT if state["value"] == state["max"] else Keys.ARROW_RIGHT
    changed = False
    for _ in range(3):  # a step may leave the data as they were (at rho = 0 the temperature plays no role)
        ActionChains(driver).send_keys(key).perform()
        if wait_until(lambda: json.loads(driver.execute_script(EXPLORER_STATE_JS, plot))["data"]
                      != json.loads(before)["data"], timeout_s=1.0):
            changed = True
            break
    after = driver.execute_script(SLIDER_STATE_JS, slider)
    if not changed:
        problems.append("arrow keys did not change the plotted data")
    if after["status"] == status or after["valuetext"] == state["valuetext"]:
        problems.append("the live description or the spoken value did not follow the slider")
    for key, expected in ((Keys.END, after["max"]), (Keys.HOME, 0)):
        ActionChains(driver).send_keys(key).perform()
        if driver.execute_script(SLIDER_STATE_JS, slider)["value"] != expected:
            problems.append(f"{key!r} did not move the slider to {expected}")
    return problems + check_legend_keys(driver, figure, plot)


def check_legend_keys(driver, figure, plot) -> list[str]:
    """Space on the first legend entry hides its curve, Space again shows it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    buttons = figure.find_elements(By.CSS_SELECTOR, ".kdwide-legend button")
    if not buttons:
        return []
    hidden_traces = "return arguments[0].data.filter(t => t.visible === 'legendonly').length"
    problems, hidden = [], driver.execute_script(hidden_traces, plot)
    buttons[0].send_keys(Keys.SPACE)
    if buttons[0].get_attribute("aria-pressed") != "false" or driver.execute_script(hidden_traces, plot) <= hidden:
        problems.append("Space on a legend entry did not hide its curve")
    buttons[0].send_keys(Keys.SPACE)
    if buttons[0].get_attribute("aria-pressed") != "true" or driver.execute_script(hidden_traces, plot) != hidden:
        problems.append("Space again on a legend entry did not show its curve")
    return problems


def explorer_pages(root: Path) -> list[str]:
    return chapter_pages(root) + [p for p in book_pages(root) if p == "book/intro.html"]


def for_every_explorer(driver, check) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Run ``check(driver, plot)`` on every explorer of every explorer page: (explorers per page, failures)."""
    from selenium.webdriver.common.by import By

    root, counts, failures = html_dir(), {}, {}
    with Site(root) as site:
        for page in explorer_pages(root):
            driver.get_log("browser"), driver.get_log("performance")
            open_settled(driver, site.base_url + page)
            plots = driver.find_elements(By.CSS_SELECTOR, ".kdwide-explorer .plotly-graph-div")
            problems = []
            for plot in plots:
                failure = wait_for_explorer(driver, plot)
                problems += [f"{plot.get_attribute('id')}: {p}" for p in ([failure] if failure else check(driver, plot))]
            counts[page] = len(plots)
            if problems := problems + page_errors(driver, site.base_url):
                failures[page] = problems
    return counts, failures


def test_every_explorer_works_from_the_keyboard(driver) -> None:
    counts, failures = for_every_explorer(driver, check_keyboard)
    assert all(counts.values()), f"pages without an interactive figure: {counts}"
    assert not failures, "\n".join(f"{page}:\n  " + "\n  ".join(problems) for page, problems in failures.items())


def test_the_keyboard_check_fails_on_a_dead_slider(driver) -> None:
    from selenium.webdriver.common.by import By

    from kdwide_book.explorers import Slider, explorer

    figure = explorer("probe-keys", [Slider("a", [1.0, 2.0, 3.0])], lambda a: [{"y": [a, a]}],
                      traces=[dict(type="scatter", x=[0, 1])], caption="A probe with a dead slider.")
    dead = figure.html.replace('plot.on("plotly_sliderchange"', 'plot.on("never_fired"')
    with Site(html_dir(), extra={"__keys_probe__.html": EXPLORER_PROBE_PAGE.format(body=dead)}) as site:
        open_settled(driver, site.base_url + "__keys_probe__.html")
        plot = driver.find_element(By.CSS_SELECTOR, ".plotly-graph-div")
        assert wait_for_explorer(driver, plot) is None
        problems = check_keyboard(driver, plot)
    assert "arrow keys did not change the plotted data" in problems, problems


# ---------------------------------------------------------------------------------------------------------------
# Dark mode: explorers follow the theme's colour mode, captions read, figures are not dimmed
# ---------------------------------------------------------------------------------------------------------------

MIN_CONTRAST = 4.5
COLOURS_JS = r"""
function parse(colour) {
  if (colour.startsWith('#')) {
    const hex = colour.length === 4 ? colour.slice(1).split('').map(c => c + c).join('') : colour.slice(1, 7);
    return [0, 2, 4].map(i => parseInt(hex.slice(i, i + 2), 16)).concat([1]);
  }
  const parts = (colour.match(/[\d.]+/g) || ['0', '0', '0', '0']).map(Number);
  return parts.length > 3 ? parts : parts.concat([1]);
}
function background(node) {
  for (; node; node = node.parentElement) {
    const colour = parse(getComputedStyle(node).backgroundColor);
    if (colour[3] > 0.5) return colour;
  }
  return [255, 255, 255, 1];
}
function luminance(colour) {
  const [r, g, b] = colour.slice(0, 3).map(v => v / 255).map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return Math.round((x + 0.05) / (y + 0.05) * 100) / 100;
}
return {
  theme: document.documentElement.getAttribute('data-theme'),
  explorers: Array.from(document.querySelectorAll('figure.kdwide-explorer')).map(figure => {
    const plot = figure.querySelector('.plotly-graph-div'), back = background(figure);
    const caption = figure.querySelector('figcaption .caption-text') || figure.querySelector('figcaption');
    return {id: plot.id, caption: contrast(parse(getComputedStyle(caption).color), back),
            font: contrast(parse(plot._fullLayout.font.color), back), fontColour: plot._fullLayout.font.color,
            paper: plot._fullLayout.paper_bgcolor};
  }),
  dimmed: Array.from(document.querySelectorAll('.cell_output img, figure img'))
    .filter(img => getComputedStyle(img).filter !== 'none').map(img => img.getAttribute('src')),
};
"""


def colour_problems(colours: dict, mode: str) -> list[str]:
    """What does not read in ``mode`` (the page's theme must be ``mode``)."""
    problems = [] if colours["theme"] == mode else [f"the page is in {colours['theme']} mode, not {mode}"]
    for figure in colours["explorers"]:
        if figure["caption"] < MIN_CONTRAST:
            problems.append(f"{mode}: {figure['id']}'s caption has contrast {figure['caption']}:1 (< {MIN_CONTRAST})")
        if figure["font"] < MIN_CONTRAST:
            problems.append(f"{mode}: {figure['id']}'s text ({figure['fontColour']}) has contrast {figure['font']}:1 "
                            f"on the page (< {MIN_CONTRAST}); does the explorer follow the colour mode?")
    if mode == "dark" and colours["dimmed"]:
        problems.append(f"dark: {len(colours['dimmed'])} figures dimmed by a filter, e.g. {colours['dimmed'][0]}")
    return problems


def toggle_theme_to(driver, mode: str) -> bool:
    """Press the theme's colour-mode button until the page is in ``mode`` (light, dark, auto cycle); True if it is."""
    for _ in range(3):
        if driver.execute_script("return document.documentElement.getAttribute('data-theme')") == mode:
            return True
        driver.execute_script("document.querySelector('.theme-switch-button').click()")
    return driver.execute_script("return document.documentElement.getAttribute('data-theme')") == mode


def check_colour_modes(driver, axe: str) -> list[str]:
    """On the open page: light reads; toggled to dark, explorers switch and everything reads (axe's colour-contrast
    rule included); toggled back, explorers return to light."""
    problems = colour_problems(driver.execute_script(COLOURS_JS), "light")
    if not toggle_theme_to(driver, "dark"):
        return problems + ["the theme's colour-mode button never reached dark mode"]
    wait_until(lambda: not colour_problems(driver.execute_script(COLOURS_JS), "dark"), timeout_s=3.0)
    problems += colour_problems(driver.execute_script(COLOURS_JS), "dark")
    problems += [f"dark: {p}" for p in axe_problems(driver, axe, ["color-contrast"])]
    if not toggle_theme_to(driver, "light"):
        return problems + ["the theme's colour-mode button never came back to light mode"]
    wait_until(lambda: not colour_problems(driver.execute_script(COLOURS_JS), "light"), timeout_s=3.0)
    return problems + [f"back to {p}" for p in colour_problems(driver.execute_script(COLOURS_JS), "light")]


def test_dark_mode_reads_and_explorers_follow_the_toggle(driver) -> None:
    root, axe, failures = html_dir(), axe_source(), {}
    try:
        with Site(root) as site:
            for page in explorer_pages(root):
                open_settled(driver, site.base_url + page)
                if problems := check_colour_modes(driver, axe):
                    failures[page] = problems
    finally:
        driver.execute_script("window.localStorage.clear()")  # the theme stores the mode; later tests start light
    assert not failures, "\n".join(f"{page}:\n  " + "\n  ".join(problems) for page, problems in failures.items())


def test_the_dark_mode_check_fails_on_an_explorer_that_ignores_the_mode(driver) -> None:
    from kdwide_book.explorers import Slider, explorer

    figure = explorer("probe-dark", [Slider("a", [1.0, 2.0])], lambda a: [{"y": [a, a]}],
                      traces=[dict(type="scatter", x=[0, 1])], caption="An explorer without the book's script.")
    page = ('<!DOCTYPE html><html data-theme="dark"><head><meta charset="utf-8"><title>probe</title>'
            '<script src="_static/plotly.min.js"></script><style>figcaption { color: #555; }</style></head>'
            f'<body style="background:#121212;color:#ddd">{figure.html}'
            '<figure><img src="_static/plotly-probe.png" style="filter: brightness(.8)" alt="x"></figure></body></html>')
    with Site(html_dir(), extra={"__dark_probe__.html": page}) as site:
        driver.get(site.base_url + "__dark_probe__.html")
        wait_until(lambda: driver.execute_script("return !!document.querySelector('.plotly-graph-div')._fullLayout"))
        problems = "\n".join(colour_problems(driver.execute_script(COLOURS_JS), "dark"))
    assert "probe-dark's text" in problems and "probe-dark's caption" in problems and "dimmed" in problems, problems


# ---------------------------------------------------------------------------------------------------------------
# Phones: every part of every explorer inside its figure at 390 x 844
# ---------------------------------------------------------------------------------------------------------------

PHONE = (390, 844)
LAYOUT_JS = r"""
const problems = [], width = document.documentElement.clientWidth;
const name = node => (node.getAttribute('class') || node.tagName.toLowerCase()) +
  (node.textContent ? ` "${node.textContent.trim().slice(0, 30)}"` : '');
for (const figure of document.querySelectorAll('figure.kdwide-explorer')) {
  const id = figure.querySelector('.plotly-graph-div').id, box = figure.getBoundingClientRect();
  if (box.left < -1 || box.right > width + 1) problems.push(`${id}: the figure spans ${box.left}..${box.right} px in a ${width} px window`);
  const parts = figure.querySelectorAll('.main-svg, .xtick text, .ytick text, .g-xtitle, .g-ytitle, .g-x2title, .g-y2title, ' +
    '.cbaxis text, .legend, .slider-group, .kdwide-explorer-title, .kdwide-controls *, .kdwide-legend *, .kdwide-explorer-status');
  for (const part of parts) {
    const r = part.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1) {
      problems.push(`${id}: ${name(part)} (${Math.round(r.left)}..${Math.round(r.right)} px) lies outside the figure ` +
                    `(${Math.round(box.left)}..${Math.round(box.right)} px)`);
    }
  }
  for (const layer of figure.querySelectorAll('.xaxislayer-above, .yaxislayer-above')) {
    const horizontal = layer.classList.contains('xaxislayer-above');
    const boxes = Array.from(layer.querySelectorAll('text')).map(t => t.getBoundingClientRect()).filter(r => r.width)
      .sort((a, b) => horizontal ? a.left - b.left : a.top - b.top);
    for (let i = 1; i < boxes.length; i++) {
      const overlap = horizontal ? boxes[i - 1].right - boxes[i].left : boxes[i - 1].bottom - boxes[i].top;
      if (overlap > 1) { problems.push(`${id}: tick labels overlap by ${Math.round(overlap)} px`); break; }
    }
  }
}
return problems;
"""


def test_every_explorer_fits_a_phone(driver) -> None:
    from selenium.webdriver.common.by import By

    root, failures = html_dir(), {}
    size = driver.get_window_size()
    driver.set_window_size(*PHONE)
    try:
        with Site(root) as site:
            for page in explorer_pages(root):
                open_settled(driver, site.base_url + page)
                for plot in driver.find_elements(By.CSS_SELECTOR, ".kdwide-explorer .plotly-graph-div"):
                    wait_for_explorer(driver, plot)
                time.sleep(0.3)  # plotly redraws once for the narrow layout
                if problems := driver.execute_script(LAYOUT_JS):
                    failures[page] = problems
            shot = SCREENSHOTS / "phone" / "intro.png"
            open_settled(driver, site.base_url + "book/intro.html")
            save_screenshot(driver, shot)
    finally:
        driver.set_window_size(size["width"], size["height"])
    assert not failures, "\n".join(f"{page}:\n  " + "\n  ".join(problems) for page, problems in failures.items())


def test_the_phone_check_fails_on_an_explorer_wider_than_the_phone(driver) -> None:
    from kdwide_book.explorers import Slider, explorer

    figure = explorer("probe-wide", [Slider("a", [1.0, 2.0])], lambda a: [{"y": [a, a]}],
                      traces=[dict(type="scatter", x=[0, 1])], caption="A probe.", layout={"width": 900})
    size = driver.get_window_size()
    driver.set_window_size(*PHONE)
    try:
        with Site(html_dir(), extra={"__phone_probe__.html": EXPLORER_PROBE_PAGE.format(body=figure.html)}) as site:
            open_settled(driver, site.base_url + "__phone_probe__.html")
            problems = "\n".join(driver.execute_script(LAYOUT_JS))
    finally:
        driver.set_window_size(size["width"], size["height"])
    assert "probe-wide: " in problems and "outside the figure" in problems, problems
