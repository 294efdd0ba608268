"""The shopper's checkout in a real browser: the open page learns the payment's result by itself.

The cashier (the shopper's phone) is a second page; the first page must change to the result over
the WebSocket with no reload, which a marker left on `window` before paying proves.
"""

from __future__ import annotations

import io
import re
import time
from urllib.parse import urljoin

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, Servers, Shoppers
from tests.servers import ShopServer, sqlite_url

pytestmark = pytest.mark.browser

ORDER_PATH = re.compile(r"/orders/(?P<biz>[0-9a-f]{32})/$")
RESULT_TIMEOUT_MS = 20_000
# After a restart the page waits for its reconnect backoff (0.5 s x 2^n, +-30%) and the payment
# system for its retry schedule (scaled 15 s, 15 s, 30 s, 3 min, 10 min: 0.15 s ... 6 s).
RESTART_TIMEOUT_MS = 30_000
MARKER = "window.__sameDocument"


def status(page: Page):
    return page.locator("#payment-status")


def stream_state(page: Page) -> dict:
    return page.evaluate("window.__ws")


def wait_for_stream(page: Page, opens: int = 1, timeout: float = RESULT_TIMEOUT_MS) -> None:
    # Every wait_for_function here takes a function, not an expression: Playwright evaluates an
    # expression anew at each poll, with an eval the pages' Content-Security-Policy refuses.
    page.wait_for_function(f"() => window.__ws && window.__ws.opens >= {opens}", timeout=timeout)


def buy(page: Page, catalogue: str = "/") -> str:
    """Buy the first product from `catalogue` (by default the context's base URL's); returns the
    order's biz, with the page's status stream open."""
    page.goto(catalogue)
    page.get_by_role("button", name=re.compile(r"^Buy ")).first.click()
    page.wait_for_url(ORDER_PATH)  # and its load event: the scripts have run
    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load on the order page"
    expect(status(page)).to_have_count(1)
    expect(status(page)).to_have_attribute("data-status", "unpaid")
    wait_for_stream(page)
    return ORDER_PATH.search(page.url)["biz"]


def pay(page: Page) -> str:
    """Press Pay; returns the absolute cashier URL of the pending panel, which its QR code reads as
    on screen.

    Leaves a marker on `window` first: it survives only if the page is never reloaded.
    """
    page.evaluate(f"{MARKER} = true")
    page.locator("#payment-status button.pay").click()
    expect(status(page)).to_have_attribute("data-status", "pending")
    href = status(page).locator("a.cashier-link").get_attribute("href")
    assert href, "the pending panel has no cashier link"
    assert urljoin(page.url, scanned(page)) == urljoin(page.url, href)
    return urljoin(page.url, href)


def scanned(page: Page) -> str:
    """What the pending panel's QR code reads, as on screen."""
    shown = Image.open(io.BytesIO(status(page).locator("figure.qr svg").screenshot()))
    code = zxingcpp.read_barcode(shown, formats=zxingcpp.BarcodeFormat.QRCode)
    assert code is not None, "the QR code on screen does not scan"
    return code.text


def decide(page: Page, cashier_url: str, decision: str) -> None:
    """Open the cashier in `page` (the shopper's phone) and press approve or decline."""
    response = page.goto(cashier_url)
    assert response is not None, f"no answer from the cashier {cashier_url}"
    assert response.ok, f"cashier {cashier_url} answered {response.status}"
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.locator(f'button[name="decision"][value="{decision}"]').click()
    assert answer.value.status < 400, f"cashier answered {answer.value.status} to {decision}"


def expect_result_without_reload(page: Page, result: str, url: str, timeout: float) -> None:
    expect(status(page)).to_have_attribute("data-status", result, timeout=timeout)
    expect(status(page)).to_have_count(1)
    assert page.evaluate(MARKER) is True, "the page was reloaded (the marker on window is gone)"
    assert page.url == url


def test_the_page_opens_its_stream_when_the_websocket_extension_arrives_late(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    """A browser revalidating its cached scripts (a 304 for each) fetches the WebSocket extension
    after htmx itself: with both scripts deferred, htmx set itself up in between and never saw
    the page's `hx-ws:connect`, so the page never opened its stream (seen on the first visit
    after a fresh `make run`, whose files are seconds old)."""
    page = shoppers.new(shop_server.url)

    def late(route) -> None:
        time.sleep(0.5)
        route.continue_()

    page.route("**/vendor/htmx/ext/hx-ws.js", late)
    buy(page)  # waits for the stream to open
    assert stream_state(page)["opens"] == 1


def test_pay_pressed_before_htmx_has_set_the_page_up_still_pays(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    """The Pay button shows while the page's scripts are still on their way (a slow network): it
    is a plain form's button, so a click then posts the form and the page comes back pending,
    then follows the payment like any other. Before, such a click did nothing (most likely what
    the `make run` check once saw: a click as soon as the button showed was lost)."""
    page = shoppers.new(shop_server.url)
    page.goto("/")
    # The order page's htmx never comes (routing also bypasses the browser's cache); the page
    # the form's post comes back to gets its own.
    held = []
    page.route(
        "**/vendor/htmx/htmx.min.js",
        lambda route: route.continue_() if held else held.append(route),
    )
    page.get_by_role("button", name=re.compile(r"^Buy ")).first.click()
    page.wait_for_url(ORDER_PATH, wait_until="commit")
    pay_button = status(page).locator("button.pay")
    expect(pay_button).to_be_visible()
    assert page.evaluate("typeof window.htmx") == "undefined"

    with page.expect_request(lambda request: request.url.endswith("/pay/")) as pay_request:
        pay_button.click()

    assert pay_request.value.headers.get("hx-request") is None  # the browser's own post
    expect(status(page)).to_have_attribute("data-status", "pending")
    wait_for_stream(page)
    order_url = page.url
    page.evaluate(f"{MARKER} = true")
    cashier_url = urljoin(page.url, status(page).locator("a.cashier-link").get_attribute("href"))
    decide(page.context.new_page(), cashier_url, "approve")
    expect_result_without_reload(page, "paid", order_url, RESULT_TIMEOUT_MS)


# Clicks Pay in the first task after the socket's first panel is in the page, as a shopper's click
# queued behind that swap would.
CLICK_AFTER_FIRST_PUSH = """
document.addEventListener('htmx:before:settle', (event) => {
  if (window.__clickedAfterPush || event.target.id !== 'payment-status') return;
  window.__clickedAfterPush = true;
  setTimeout(() => event.target.querySelector('button.pay').click());
});
"""


def test_pay_pressed_just_as_the_socket_replaces_the_panel_reaches_the_server(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    """The socket's first panel replaces the page's, Pay button and all, and the new button works
    once htmx has processed it: in the task that swaps it in, unless an element inside the panel
    has an id, for which htmx's settle step waits a timer first and a click in between is lost
    (tried: an id on the heading fails this test)."""
    page = shoppers.new(shop_server.url)
    page.add_init_script(CLICK_AFTER_FIRST_PUSH)
    page.goto("/")
    with page.expect_request(lambda request: request.url.endswith("/pay/")) as pay_request:
        page.get_by_role("button", name=re.compile(r"^Buy ")).first.click()

    # By htmx: the form's own post (tested above) would also pay, but by reloading the page.
    assert pay_request.value.headers.get("hx-request") == "true"
    expect(status(page)).to_have_attribute("data-status", "pending")


PANEL_STATUS = re.compile(r'<div id="payment-status" data-status="(\w+)"')
# The headings that took focus, in order: a screen reader reads each.
HEADINGS_FOCUSED = """
window.__headingsFocused = [];
document.addEventListener('focusin', (event) => {
  if (event.target.matches('.panel-heading')) window.__headingsFocused.push(event.target.textContent);
});
"""


def test_the_page_that_pressed_pay_gets_pending_once_and_its_other_tab_by_its_socket(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    """Pay's answer shows the pending panel; the page's socket does not send it again (it did:
    swapped in twice, its heading took focus twice, and a screen reader read it twice, or took
    the shopper back from the cashier link they had just moved to). The order's page in another
    tab learns of it by its socket, as of the result."""
    page = shoppers.new(shop_server.url)
    page.add_init_script(HEADINGS_FOCUSED)
    pushed: dict[str, list[str]] = {"page": [], "tab": []}

    def record(name: str):
        def on_websocket(ws) -> None:
            ws.on("framereceived", lambda frame: pushed[name].append(PANEL_STATUS.search(frame)[1]))

        return on_websocket

    page.on("websocket", record("page"))
    buy(page)
    order_url = page.url
    tab = page.context.new_page()
    tab.on("websocket", record("tab"))
    tab.goto(order_url)
    wait_for_stream(tab)
    # Pressed in the socket's first panel, as once the page has settled (pressed in the page's own,
    # before that panel came, Pay names no socket's panel, and pending comes twice as before).
    page.wait_for_function("() => window.__ws.messages >= 1")

    cashier_url = pay(page)
    expect(status(tab)).to_have_attribute("data-status", "pending")
    decide(page.context.new_page(), cashier_url, "approve")
    expect_result_without_reload(page, "paid", order_url, RESULT_TIMEOUT_MS)
    expect(status(tab)).to_have_attribute("data-status", "paid")

    assert pushed == {"page": ["unpaid", "paid"], "tab": ["unpaid", "pending", "paid"]}
    assert page.evaluate("window.__headingsFocused") == [
        "Waiting for your payment",
        "Paid. Thank you!",
    ]


def test_an_answer_to_pay_that_comes_after_the_result_does_not_hide_it(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    """Pay's answer (pending) held up on its way, while the socket brings the result: when it does
    arrive it must not put pending back over paid. htmx drops an answer whose target is no longer
    in the page, and each panel the socket brings replaces the one before. (A morphing swap keeps
    the target: tried, it showed pending again and this test failed.)"""
    page = shoppers.new(shop_server.url)
    buy(page)
    order_url = page.url
    held = []  # Pay's request, made, and its answer kept from the page

    def hold(route) -> None:
        held.append((route, route.fetch()))

    page.route("**/pay/", hold)
    page.evaluate(f"{MARKER} = true")
    page.locator("#payment-status button.pay").click()
    for _ in range(200):  # the route's handler runs while Playwright is called
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    route, answer = held[0]
    assert answer.status == 200 and 'data-status="pending"' in answer.text()
    cashier = re.search(r'href="([^"]*/sandbox/cashier/pay_[0-9a-f]{24})"', answer.text())[1]
    decide(page.context.new_page(), urljoin(page.url, cashier), "approve")
    expect_result_without_reload(page, "paid", order_url, RESULT_TIMEOUT_MS)

    page.evaluate(
        "document.addEventListener('htmx:finally:request', () => { window.__payDone = true; })"
    )
    route.fulfill(response=answer)
    page.wait_for_function("() => window.__payDone === true")  # htmx has done with the answer

    expect(status(page)).to_have_attribute("data-status", "paid")
    expect(status(page)).to_have_count(1)


@pytest.mark.parametrize(("decision", "result"), [("approve", "paid"), ("decline", "failed")])
def test_deciding_at_the_cashier_turns_the_open_page_to_the_result_without_reload(
    shop_server: ShopServer, shoppers: Shoppers, decision: str, result: str
) -> None:
    page = shoppers.new(shop_server.url)
    buy(page)
    order_url = page.url
    cashier_url = pay(page)

    decide(page.context.new_page(), cashier_url, decision)

    expect_result_without_reload(page, result, order_url, RESULT_TIMEOUT_MS)
    expect(status(page)).to_have_attribute("role", "status")
    ARTIFACTS.mkdir(exist_ok=True)
    page.bring_to_front()
    page.screenshot(path=ARTIFACTS / f"{result}.png", full_page=True)


def test_page_reconnects_after_a_shop_restart_and_shows_the_payment_made_meanwhile(
    servers: Servers, shoppers: Shoppers, tmp_path
) -> None:
    database_url = sqlite_url(tmp_path / "shared.sqlite3")
    # B: the payment system (the sandbox), and nothing of the shop's background work.
    payments = servers.new(name="payments", database_url=database_url, reconcile=False).start()
    # A: the shop, without the sandbox, so the result can only come from B's notification.
    shop = servers.new(
        name="shop",
        database_url=database_url,
        env={"PAYMENT_GATEWAY_URL": payments.url + "/sandbox/", "SANDBOX_ENABLED": "0"},
    ).start()

    page = shoppers.new(shop.url)
    buy(page)
    order_url = page.url
    cashier_url = pay(page)
    assert cashier_url.startswith(payments.url + "/sandbox/"), cashier_url

    exit_code = shop.stop()
    page.wait_for_function("() => window.__ws.closes.length >= 1", timeout=RESULT_TIMEOUT_MS)
    closes = stream_state(page)["closes"]
    # daphne drops its sockets on SIGTERM (1006), a close hx-ws reconnects on.
    assert closes[0]["code"] in (1006, 1012), closes
    expect(status(page)).to_have_attribute("data-status", "pending")

    decide(page.context.new_page(), cashier_url, "approve")  # while the shop is down
    shop.start()

    try:
        expect_result_without_reload(page, "paid", order_url, RESTART_TIMEOUT_MS)
    except AssertionError as error:
        raise AssertionError(
            f"{error}\nshop exit code on SIGTERM: {exit_code}; socket closes seen when it stopped:"
            f" {closes}; stream now: {stream_state(page)}"
        ) from error
    assert stream_state(page)["opens"] >= 2, "the result came without a reconnect"
    ARTIFACTS.mkdir(exist_ok=True)
    page.bring_to_front()
    page.screenshot(path=ARTIFACTS / "paid-after-restart.png", full_page=True)


def test_another_shopper_cannot_see_or_subscribe_to_someone_elses_order(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    owner = shoppers.new(shop_server.url)
    biz = buy(owner)
    stranger = shoppers.new(shop_server.url)
    buy(stranger)  # a shopper with a session and orders of their own

    response = stranger.goto(f"/orders/{biz}/")

    assert response is not None and response.status == 404
    socket = stranger.evaluate(
        """async (path) => await new Promise((resolve) => {
            const result = {opened: false, messages: [], code: null};
            const ws = new WebSocket(`ws://${location.host}${path}`);
            ws.onopen = () => { result.opened = true; };
            ws.onmessage = (event) => { result.messages.push(String(event.data)); };
            ws.onclose = (event) => { result.code = event.code; resolve(result); };
            setTimeout(() => { result.code = 'still open'; resolve(result); }, 10000);
        })""",
        f"/ws/order/{biz}/",
    )
    assert socket["messages"] == [], socket
    assert socket["code"] != "still open", socket
