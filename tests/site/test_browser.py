"""Open the built website in headless Chromium and check what a reader would see.

Run after the book is built (`make site-check`, part of `make test`). The site is served
from a local HTTP server on 127.0.0.1 that the test starts itself; nothing else is
contacted. Screenshots are saved under _build/screenshots/.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import urljoin

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
NOTEBOOK_PAGE = "book/orientation/measuring.html"


def _toc_pages() -> dict[str, str]:
    """Screenshot name -> URL path of the landing page and every page in _toc.yml."""
    sys.path.insert(0, str(ROOT / "tools"))
    from check_build import toc_pages

    pages = {"landing": "index.html"}
    for source in toc_pages():
        rel = source.relative_to(ROOT).with_suffix(".html").as_posix()
        pages[rel.removeprefix("book/").removesuffix(".html").replace("/", "-")] = rel
    return pages


PAGES = _toc_pages()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("Chromium is not installed: run `make site-check`, which installs it")


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        raise RuntimeError(f"{HTML} has no built site: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def test_pages_with_figures_show_them(server, browser):
    # The landing page draws the career map and the measuring chapter several figures;
    # a backend that swallowed plt.show() would leave both without images.
    for path in ("index.html", NOTEBOOK_PAGE):
        page = browser.new_page()
        page.goto(f"{server}/{path}", wait_until="networkidle")
        assert page.evaluate("() => document.querySelectorAll('img').length") > 0, path
        page.close()


@pytest.mark.parametrize("page_name", sorted(PAGES))
def test_page_renders_math_images_and_no_console_errors(server, browser, page_name):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    # Any request leaving the loopback server would be a download the book must not need.
    page.route(
        lambda url: not url.startswith(server),
        lambda route: (failed.append(route.request.url), route.abort()),
    )
    page.goto(f"{server}/{PAGES[page_name]}", wait_until="networkidle")
    has_math = page.locator(".math").count() > 0
    if has_math:
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
            " && document.querySelectorAll('mjx-container').length > 0",
            timeout=30_000,
        )
        page.evaluate("() => MathJax.startup.promise")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{page_name}.png"), full_page=True)

    text = page.inner_text("main")
    assert "$$" not in text, "raw display math left unrendered"
    if has_math:
        assert page.locator("mjx-container").count() >= page.locator(".math").count()
    broken = page.evaluate(
        "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.src)"
    )
    assert broken == [], f"images that did not load: {broken}"
    assert failed == [], f"requests that failed or left the local server: {failed}"
    assert errors == [], f"console errors: {errors}"
    page.close()


def test_notebook_page_offers_its_executed_notebook_for_download(server, browser):
    page = browser.new_page()
    page.goto(f"{server}/{NOTEBOOK_PAGE}", wait_until="domcontentloaded")
    link = page.locator("a.dropdown-item[href$='.ipynb']")
    assert link.count() == 1, "no .ipynb entry in the download menu"
    response = page.request.get(urljoin(page.url, link.get_attribute("href")))
    assert response.ok
    notebook = response.json()
    outputs = [o for cell in notebook["cells"] for o in cell.get("outputs", [])]
    assert notebook["nbformat"] == 4 and len(outputs) > 0
    page.close()
