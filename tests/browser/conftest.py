"""Fixtures for browser tests: headless Chromium (Debian's, never a downloaded one) and servers.

A failing browser test gets, in its report, the tail of every server's log and, per open page, a
screenshot under artifacts/failures/, its URL, its #payment-status, its console and its WebSocket
traffic: a server in a subprocess and a page in a browser leave no other trace.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.servers import ROOT, Servers, ShopServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts"
DEFAULT_TIMEOUT_MS = 10_000

# Test instrumentation, not app code: counts what the hx-ws extension reports, so that a test can
# wait for the stream to be open and explain a failure by the close codes it saw.
WS_PROBE = """
window.__ws = {opens: 0, closes: [], messages: 0, errors: 0};
document.addEventListener('htmx:ws:after:connection', () => { window.__ws.opens += 1; });
document.addEventListener('htmx:ws:close', (e) => {
  window.__ws.closes.push({code: e.detail.code, reason: e.detail.reason});
});
document.addEventListener('htmx:ws:after:message:incoming', () => { window.__ws.messages += 1; });
document.addEventListener('htmx:ws:error', () => { window.__ws.errors += 1; });
"""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    if report.when == "call" and report.failed:
        for value in getattr(item, "funcargs", {}).values():
            diagnose = getattr(value, "diagnose", None)
            if not callable(diagnose):
                continue
            try:
                report.sections.extend(diagnose(item.name))
            except Exception as error:  # a report must never hide the failure it reports
                report.sections.append(("diagnostics failed", repr(error)))
    return report


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    require(os.path.exists(CHROMIUM), f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Module scope, not session: Playwright's sync API keeps an event loop on this thread while it
    # runs, which the Django tests of other modules must not see.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def shop_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopServer]:
    """One shop in the embedded mode (sandbox mounted, SQLite) for the module's tests."""
    server = ShopServer(name="shop", tmp_dir=tmp_path_factory.mktemp("shop"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    made = Servers(tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


class Shoppers:
    """Browser contexts, one per shopper (each has its own cookies, so its own session)."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.contexts: list = []
        self.pages: list = []
        self.events: list[str] = []

    def new(self, base_url: str, **context_options):
        """A new shopper's first page, on `base_url` (options as Playwright's new_context)."""
        context = self.browser.new_context(base_url=base_url, **context_options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.add_init_script(WS_PROBE)
        context.on("page", self._watch)
        self.contexts.append(context)
        return context.new_page()

    def _watch(self, page) -> None:
        label = f"page{len(self.pages)}"
        self.pages.append(page)
        log = self.events.append
        page.on("console", lambda msg: log(f"{label} console.{msg.type}: {msg.text}"))
        page.on("pageerror", lambda error: log(f"{label} pageerror: {error}"))
        page.on(
            "framenavigated",
            lambda frame: frame == page.main_frame and log(f"{label} navigated: {frame.url}"),
        )

        def on_websocket(ws) -> None:
            log(f"{label} ws open {ws.url}")
            ws.on("framereceived", lambda frame: log(f"{label} ws <- {_squash(frame)}"))
            ws.on("socketerror", lambda error: log(f"{label} ws error: {error}"))
            ws.on("close", lambda _: log(f"{label} ws closed {ws.url}"))

        page.on("websocket", on_websocket)

    def close(self) -> None:
        for context in self.contexts:
            context.close()

    def diagnose(self, test_name: str) -> list[tuple[str, str]]:
        folder = ARTIFACTS / "failures"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for number, page in enumerate(self.pages):
            if page.is_closed():
                lines.append(f"page{number}: closed")
                continue
            shot = folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', test_name)}-page{number}.png"
            page.bring_to_front()  # a tab in the background renders no frame to take
            page.screenshot(path=shot, full_page=True)
            status = page.locator("#payment-status")
            panel = status.first.evaluate("e => e.outerHTML") if status.count() else "(none)"
            probe = page.evaluate("window.__ws || null")
            lines.append(
                f"page{number}: {page.url}\n  screenshot: {shot}\n  hx-ws: {probe}\n"
                f"  #payment-status: {_squash(panel, 400)}"
            )
        return [("browser pages", "\n".join(lines)), ("browser events", "\n".join(self.events))]


def _squash(text: object, limit: int = 200) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= limit else text[:limit] + "..."


@pytest.fixture
def shoppers(browser) -> Iterator[Shoppers]:
    made = Shoppers(browser)
    try:
        yield made
    finally:
        made.close()
