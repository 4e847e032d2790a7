"""Open every chapter of the rendered book in headless Chromium, offline, as a reader would.

Each page must load without a JavaScript error and without asking for anything outside the
site; it must show as many figures (loaded images) and tables as its source has, typeset its
maths, and chapter 5 must render the widget explorer. Screenshots go to _build/browser/.
Run by `make test` after it renders the book (OCRSR_BOOK_HTML names another build folder).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

playwright = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("OCRSR_BOOK_HTML", ROOT / "_build" / "html"))
SCREENSHOTS = ROOT / "_build" / "browser"
CHROMIUM = os.environ.get("OCRSR_CHROMIUM", "/usr/bin/chromium")
# no network: Chromium must not reach for Google's services at start
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chapter_sources() -> list[Path]:
    """The book's pages in table-of-contents order, as source files."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"], *(entry["file"] for entry in toc["chapters"])]
    sources = []
    for name in names:
        matches = [ROOT / f"{name}{suffix}" for suffix in (".ipynb", ".md")]
        sources.append(next(path for path in matches if path.exists()))
    return sources


MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(|<img\b")
MARKDOWN_TABLE = re.compile(r"^\|.*\|\s*\n\|[\s:|-]+\|\s*$", re.MULTILINE)


def expected_counts(source: Path) -> tuple[int, int]:
    """Figures and tables in a page's source: image outputs and markdown images, HTML-table
    outputs and markdown tables."""
    if source.suffix == ".md":
        text = source.read_text()
        return len(MARKDOWN_IMAGE.findall(text)), len(MARKDOWN_TABLE.findall(text))
    figures = tables = 0
    for cell in json.loads(source.read_text())["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            figures += len(MARKDOWN_IMAGE.findall(text))
            tables += len(MARKDOWN_TABLE.findall(text))
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            figures += any(kind in data for kind in ("image/png", "image/svg+xml", "image/jpeg"))
            tables += "".join(data.get("text/html", "")).count("<table")
            tables += len(MARKDOWN_TABLE.findall("".join(data.get("text/markdown", ""))))
    return figures, tables


CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
MATHS = re.compile(r"\$[^$\n]+\$")


def has_maths(source: Path) -> bool:
    """Whether the page's Markdown (code left out) holds $...$ maths for MathJax."""
    cells = json.loads(source.read_text())["cells"] if source.suffix == ".ipynb" else []
    texts = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    if source.suffix == ".md":
        texts = [source.read_text()]
    return any(MATHS.search(CODE.sub("", text)) for text in texts)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports failures itself
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The built HTML served on localhost (the widget manager loads its modules over HTTP)."""
    if not (HTML / "index.html").is_file():
        pytest.fail(f"no rendered book at {HTML}: run `make book` or `make test`, which render it")
    handler = functools.partial(QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser_context(site: str) -> Iterator:
    """A Chromium context that refuses, and records, every request leaving the site."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/install_chromium.sh installs it")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.outside_requests = []

        def route(request_route) -> None:
            url = request_route.request.url
            if url.startswith(site) or url.startswith("data:") or url.startswith("blob:"):
                request_route.continue_()
            else:
                context.outside_requests.append(url)
                request_route.abort()

        context.route("**/*", route)
        yield context
        browser.close()


def open_page(context, url: str):
    """Load a page; return it with its JavaScript errors, console errors and failed requests."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"JavaScript error: {error}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else 0)
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else 0)
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(300)  # MathJax and the widgets finish after the network is idle
    return page, problems


SOURCES = chapter_sources()


@pytest.mark.parametrize("source", SOURCES, ids=[source.stem for source in SOURCES])
def test_page_renders_offline_without_errors(browser_context, site: str, source: Path) -> None:
    relative = source.relative_to(ROOT).with_suffix(".html")
    page, problems = open_page(browser_context, site + relative.as_posix())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{source.stem}.png"), full_page=True)
    assert problems == []
    assert browser_context.outside_requests == []
    assert page.locator("article h1").count() >= 1, "no chapter title"
    figures, tables = expected_counts(source)
    loaded = page.eval_on_selector_all(
        "main img", "images => images.filter(i => i.complete && i.naturalWidth > 0).length"
    )
    assert loaded >= figures, f"{loaded} images shown, {figures} in the source"
    assert page.locator("main table").count() >= tables
    if has_maths(source):
        assert page.locator("mjx-container").count() > 0, "maths left untypeset"
    page.close()


def test_every_chapter_has_figures() -> None:
    """A chapter page with no figure at all means its outputs were lost before rendering."""
    for source in SOURCES:
        if source.suffix == ".ipynb":
            assert expected_counts(source)[0] > 0, source.name


def test_widget_explorer_renders(browser_context, site: str) -> None:
    page, problems = open_page(browser_context, site + "book/05_quantization.html")
    assert problems == []
    target = page.locator(".widget-dropdown select").first
    assert target.evaluate("select => [...select.options].map(o => o.text)") == [
        "sr",
        "ocr",
        "sr+ocr",
    ]
    assert page.locator(".widget-slider").count() >= 1
    assert page.locator(".widget-select-multiple select").count() == 2  # SR and OCR groups
    summary = page.locator(".widget-output").filter(has_text="accuracy")
    assert summary.count() >= 1, "the explorer's first evaluation is not shown"
    target.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "05_quantization-explorer.png"))
    page.close()
