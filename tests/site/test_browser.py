"""Open the built website in headless Chromium and check what a reader would see.

Run after the book is built (`make site-check`, part of `make test`). The site is served
from a local HTTP server on 127.0.0.1 that the test starts itself; nothing else is
contacted. Screenshots are saved under _build/screenshots/.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
PAGES = {
    "landing": "index.html",
    "notebook": "book/orientation/measuring.html",
}


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
    assert page.evaluate("() => document.images.length") > 0
    assert failed == [], f"requests that failed or left the local server: {failed}"
    assert errors == [], f"console errors: {errors}"
    page.close()
