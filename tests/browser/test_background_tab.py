"""The shopper leaves the order's page for the payment's page in another tab, and comes back.

htmx's WebSocket extension closes a hidden tab's socket by default (`pauseOnBackground`), and
opens a new one when the tab shows again; that socket's first message re-sent the panel, whose
heading took focus, and the notice of the closed socket showed until it was open again. The order
page keeps its socket in the background instead (order.html); these tests pin what the shopper
sees on coming back: no notice, the same focus when nothing changed, the result when it came.

Tabs that really hide: Playwright turns on focus emulation (CDP `Emulation.setFocusEmulationEnabled`)
in its own contexts, and headless Chromium then keeps every page visible: `document.visibilityState`
stays 'visible' whichever tab is in front, minimized or not. Chromium started here and joined over
CDP with `no_defaults=True` has no such emulation in its default context: its pages are tabs of one
window, and opening or bringing another to the front hides the order's page as in a shopper's
browser. Each test checks that it did.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Shoppers
from tests.browser.test_checkout import (
    MARKER,
    RESULT_TIMEOUT_MS,
    buy,
    decide,
    expect_result_without_reload,
    pay,
    status,
    wait_for_stream,
)
from tests.servers import ShopServer

pytestmark = pytest.mark.browser

# Test instrumentation, not app code: what the shopper could have seen. requestAnimationFrame runs
# for each frame the browser renders, and for none while the tab is hidden, so `noticeFrames`
# counts the frames that showed the reconnecting notice. `downMs`: how long each .ws-down mark (the
# socket closed, order.html) stayed.
SEEN = """
window.__seen = {frames: 0, noticeFrames: 0, marks: 0, downMs: [], visibility: []};
document.addEventListener('visibilitychange', () => {
  window.__seen.visibility.push(document.visibilityState);
});
let downSince = null;
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.nodeType !== 1 || !node.matches('.ws-down')) continue;
      window.__seen.marks += 1;
      downSince = performance.now();
    }
    for (const node of record.removedNodes) {
      if (node.nodeType !== 1 || !node.matches('.ws-down') || downSince === null) continue;
      window.__seen.downMs.push(Math.round(performance.now() - downSince));
      downSince = null;
    }
  }
}).observe(document, {childList: true, subtree: true});
const sample = () => {
  const notice = document.querySelector('.checkout .connection');
  window.__seen.frames += 1;
  if (notice && notice.checkVisibility({opacityProperty: true, visibilityProperty: true})) {
    window.__seen.noticeFrames += 1;
  }
  requestAnimationFrame(sample);
};
requestAnimationFrame(sample);
"""
AWAY_MS = 1500  # how long the shopper stays on the other tab when nothing happens there
SETTLE_MS = 1000  # after coming back: long enough for a re-sent panel to be swapped in


class OneWindow:
    """What `Shoppers` takes for a browser: every shopper gets the browser's default context,
    whose pages are tabs of one window. One shopper per test."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser

    def new_context(self, **options: object):
        return self.browser.contexts[0]


@pytest.fixture
def tabs(browser: Browser, tmp_path: Path) -> Iterator[Shoppers]:
    """Shoppers in a Chromium of their own, whose tabs hide (module docstring); the conftest's
    Playwright joins it."""
    profile = tmp_path / "chromium-profile"
    log = (tmp_path / "chromium.log").open("ab")
    with log:
        process = subprocess.Popen(
            [
                CHROMIUM,
                *CHROMIUM_ARGS,
                "--remote-debugging-port=0",  # Chromium picks it and writes it down
                f"--user-data-dir={profile}",
                "--no-startup-window",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, f"Chromium exited ({process.returncode})"
            assert time.monotonic() < deadline, "Chromium wrote no DevToolsActivePort"
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        joined = browser.browser_type.connect_over_cdp(f"http://127.0.0.1:{port}", no_defaults=True)
        try:
            yield Shoppers(OneWindow(joined))
        finally:
            joined.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def visibility(page: Page) -> str:
    return page.evaluate("document.visibilityState")


def pending_order_page(tabs: Shoppers, shop: ShopServer) -> tuple[Page, str]:
    """A shopper's order page, paid with the sandbox and pending; returns it and its cashier URL."""
    page = tabs.new(shop.url)
    page.context.add_init_script(SEEN)
    buy(page, shop.url + "/")
    # Pay pressed in the socket's first panel, as once the page has settled: the socket then
    # leaves the pending panel to Pay's answer (test_checkout.py).
    page.wait_for_function("() => window.__ws.messages >= 1")
    cashier_url = pay(page)  # leaves the marker that a reload would lose
    expect(status(page).locator("h2")).to_be_focused()
    return page, cashier_url


def leave_for_the_cashier(page: Page) -> Page:
    """Follow the pending panel's cashier link, which opens in a new tab in front of the page."""
    with page.context.expect_page() as opened:
        status(page).locator("a.cashier-link").click()
    cashier = opened.value
    cashier.wait_for_load_state()
    page.wait_for_function("() => document.visibilityState === 'hidden'")
    return cashier


def come_back(page: Page) -> None:
    """Bring the order's tab to the front, and wait for its socket to be open and settled."""
    frames_away = page.evaluate("window.__seen.frames")  # none are rendered while hidden
    page.bring_to_front()
    page.wait_for_function("() => document.visibilityState === 'visible'")
    page.wait_for_function("() => window.__ws.opens === window.__ws.closes.length + 1")
    page.wait_for_timeout(SETTLE_MS)
    seen = page.evaluate("window.__seen")
    assert seen["visibility"][-2:] == ["hidden", "visible"], seen
    assert seen["frames"] > frames_away, "no frame was rendered after coming back"


def test_coming_back_when_nothing_changed_shows_no_notice_and_leaves_focus_where_it_was(
    shop_server: ShopServer, tabs: Shoppers
) -> None:
    """The shopper opens the cashier in a new tab (focus on the link they followed), looks, and
    comes back without paying: the page shows what it showed, with focus on the same element,
    and never showed the reconnecting notice."""
    page, _ = pending_order_page(tabs, shop_server)
    order_url = page.url
    cashier = leave_for_the_cashier(page)
    assert visibility(page) == "hidden"
    page.evaluate("() => { window.__focusedBefore = document.activeElement; }")
    assert page.evaluate("() => document.activeElement.matches('a.cashier-link')")
    cashier.wait_for_timeout(AWAY_MS)

    come_back(page)

    seen, stream = page.evaluate("window.__seen"), page.evaluate("window.__ws")
    wrong = []
    if seen["noticeFrames"]:
        wrong.append(f"the reconnecting notice showed in {seen['noticeFrames']} frames")
    if not page.evaluate("() => document.activeElement === window.__focusedBefore"):
        focused = page.evaluate("document.activeElement.outerHTML")
        wrong.append(f"focus moved to {focused[:60]}")
    assert not wrong, f"{'; '.join(wrong)} (seen {seen}, stream {stream})"
    expect(status(page)).to_have_attribute("data-status", "pending")
    assert page.evaluate(MARKER) is True and page.url == order_url
    assert seen["marks"] == 0 and stream["closes"] == [], f"the socket closed: {stream}"


def test_coming_back_after_paying_in_the_other_tab_shows_paid_without_reload(
    shop_server: ShopServer, tabs: Shoppers
) -> None:
    """The shopper pays in the cashier's tab; the order is paid while its page is hidden. Back on
    the page: the paid panel, its heading focused (it is news), no reload, and no notice."""
    page, cashier_url = pending_order_page(tabs, shop_server)
    order_url = page.url
    cashier = leave_for_the_cashier(page)

    decide(cashier, cashier_url, "approve")
    deadline = time.monotonic() + RESULT_TIMEOUT_MS / 1000
    # The shop has the result (the sandbox notifies it in the background): the order's page, as
    # a request with the shopper's cookies gets it.
    while 'data-status="paid"' not in cashier.context.request.get(order_url).text():
        assert time.monotonic() < deadline, "the shop never learnt of the payment"
        cashier.wait_for_timeout(100)
    assert visibility(page) == "hidden"

    come_back(page)

    expect_result_without_reload(page, "paid", order_url, RESULT_TIMEOUT_MS)
    expect(status(page).locator("h2")).to_be_focused()
    seen = page.evaluate("window.__seen")
    assert seen["noticeFrames"] == 0, f"the reconnecting notice showed: {seen}"


def test_a_socket_back_within_a_second_shows_no_reconnecting_notice(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    """A phone may drop a background tab's socket all the same; on return hx-ws reconnects within
    a second (its first retry: 0.5 s +- 30%). The notice waits that long before it shows
    (shop.css), so such a drop does not flash it; a longer outage shows it
    (test_experience.py)."""
    page = shoppers.new(shop_server.url)
    page.context.add_init_script(SEEN)
    routes = []

    def through(ws) -> None:
        ws.connect_to_server()
        routes.append(ws)

    page.route_web_socket(re.compile(r"/ws/order/"), through)
    buy(page)
    page.wait_for_function("() => window.__ws.messages >= 1")

    routes[-1].close(code=1012, reason="dropped")  # Service Restart: a close hx-ws reconnects on
    wait_for_stream(page, opens=2)
    page.wait_for_timeout(SETTLE_MS)

    seen, stream = page.evaluate("window.__seen"), page.evaluate("window.__ws")
    assert seen["marks"] == 1 and [close["code"] for close in stream["closes"]] == [1012], stream
    (down_ms,) = seen["downMs"]
    assert down_ms < 2000, f"the socket took {down_ms} ms to come back: longer than shop.css waits"
    assert seen["noticeFrames"] == 0, f"the reconnecting notice flashed: {seen}, stream {stream}"
    expect(page.locator(".checkout .connection")).to_be_hidden()
