"""Pay against the real sandbox over HTTP: pending at once, and a double click is one payment."""

import asyncio
import base64
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import httpx
import pytest
from aiohttp import web

from checkout.models import Order, OrderStatus, Payment
from checkout.services import results
from sandbox.models import Payment as SandboxPayment
from tests.checkout import factories as f
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop(live_server, settings):
    settings.SITE_URL = live_server.url
    settings.PAYMENT_GATEWAY_URL = f"{live_server.url}/sandbox/"
    return live_server.url


def shopper(shop: str) -> tuple[httpx.Client, str]:
    """A browser-like client that has bought a product; returns it and the order page path."""
    f.product()
    browser = httpx.Client(base_url=shop, timeout=30)
    browser.get("/")
    token = browser.cookies["csrftoken"]
    response = browser.post(
        "/orders/", data={"product": "tea", "csrfmiddlewaretoken": token}, headers={"Referer": shop}
    )
    assert response.status_code == 302
    return browser, response.headers["Location"]


def press_pay(browser: httpx.Client, page: str) -> httpx.Response:
    return browser.post(
        f"{page}pay/", headers={"X-CSRFToken": browser.cookies["csrftoken"], "HX-Request": "true"}
    )


@pytest.mark.parametrize(
    ("sent", "named"),
    [("AbCdEf012_-x", "AbCdEf012_-x"), ('"><script>', None), ("", None)],
    ids=["panel id", "malformed", "empty"],
)
def test_pay_names_the_sockets_panel_it_was_pressed_in_to_its_push(shop, monkeypatch, sent, named):
    pushed = []

    async def push_order_changed(state, *, pressed_in=None):
        pushed.append((state["status"], pressed_in))

    monkeypatch.setattr(results, "push_order_changed", push_order_changed)
    browser, page = shopper(shop)
    response = browser.post(
        f"{page}pay/",
        data={"panel": sent},
        headers={"X-CSRFToken": browser.cookies["csrftoken"], "HX-Request": "true"},
    )
    assert response.status_code == 200 and 'data-status="pending"' in response.text
    assert pushed == [("pending", named)]


def test_pay_returns_the_pending_panel_with_the_cashier_link_and_qr_code(shop):
    browser, page = shopper(shop)
    response = press_pay(browser, page)
    html = response.text
    payment = Payment.objects.get()
    assert response.status_code == 200
    assert 'data-status="pending"' in html
    assert payment.cashier_url in html and "<svg" in html
    assert Order.objects.get().status == OrderStatus.PENDING
    sandbox = SandboxPayment.objects.get(id=payment.payment_id)
    assert sandbox.out_trade_no == Order.objects.get().biz
    assert sandbox.notify_url == f"{shop}/payments/notify/sandbox/"


NAVIGATION = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}  # as browsers send


def post_the_pay_form(browser: httpx.Client, page: str) -> httpx.Response:
    """Pay pressed before htmx set the page up: the browser posts the panel's form itself."""
    html = browser.get(page).text
    form = re.search(
        r'<form method="post" action="([^"]+/pay/)">\s*<input [^>]*value="([^"]+)"', html
    )
    assert form, "the unpaid panel has no Pay form with its CSRF token"
    action, token = form.groups()
    return browser.post(
        action, data={"csrfmiddlewaretoken": token}, headers=NAVIGATION | {"Referer": page}
    )


def test_the_pay_form_posted_without_htmx_pays_and_shows_the_page_pending(shop):
    browser, page = shopper(shop)
    response = post_the_pay_form(browser, page)
    assert response.status_code == 302 and response.headers["Location"] == page
    html = browser.get(page).text
    payment = Payment.objects.get()
    assert html.count('id="payment-status"') == 1 and 'data-status="pending"' in html
    assert payment.cashier_url in html and "<svg" in html
    # A second press (the page reloaded with its old form, say) is the same payment.
    token = {"csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    again = browser.post(f"{page}pay/", data=token, headers=NAVIGATION)
    assert again.status_code == 302
    assert SandboxPayment.objects.count() == 1


def test_the_pay_form_without_htmx_shows_the_page_with_a_retry_when_the_payment_system_fails(
    shop, settings
):
    browser, page = shopper(shop)
    settings.PAYMENT_GATEWAY_URL = "http://127.0.0.1:9/"
    response = post_the_pay_form(browser, page)
    assert response.status_code == 503
    assert response.text.count('id="payment-status"') == 1
    assert 'data-status="unpaid"' in response.text and "Try again" in response.text
    assert 'name="csrfmiddlewaretoken"' in response.text  # the retry posts without htmx too
    assert f'name="next" value="{page}"' in response.text  # the language switch returns there
    settings.PAYMENT_GATEWAY_URL = f"{shop}/sandbox/"
    assert post_the_pay_form(browser, page).status_code == 302
    assert Order.objects.get().status == OrderStatus.PENDING


def test_a_double_click_is_one_payment(shop, postgres):
    browser, page = shopper(shop)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: press_pay(browser, page), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert all('data-status="pending"' in a.text for a in answers)
    assert SandboxPayment.objects.count() == 1
    assert Payment.objects.count() == 1
    assert Payment.objects.get().payment_id == SandboxPayment.objects.get().id


def test_pressing_pay_again_after_a_failed_start_reuses_the_same_payment(shop, settings):
    browser, page = shopper(shop)
    settings.PAYMENT_GATEWAY_URL = "http://127.0.0.1:9/"
    assert press_pay(browser, page).status_code == 503
    settings.PAYMENT_GATEWAY_URL = f"{shop}/sandbox/"
    assert press_pay(browser, page).status_code == 200
    assert press_pay(browser, page).status_code == 200
    assert SandboxPayment.objects.count() == 1


class Proxy:
    """An HTTP proxy, on a thread of its own, and the only way to `pay.internal`: the payment
    system's name on the shop's network (`upstream`, the live server, here). It records what it
    was asked for, with the credentials it was given."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.port = upstream, free_port()
        self.asked: list[tuple[str, str, str, str | None]] = []
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(web.Application())
        self.runner.app.router.add_route("*", "/{path:.*}", self.forward)
        serving = threading.Event()
        threading.Thread(target=self._serve, args=(serving,), daemon=True).start()
        assert serving.wait(10)

    def _serve(self, serving: threading.Event) -> None:
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        serving.set()
        self.loop.run_forever()

    async def forward(self, request: web.Request) -> web.Response:
        credentials = request.headers.get("Proxy-Authorization")
        self.asked.append((request.method, request.host, request.path_qs, credentials))
        if request.host != "pay.internal":
            return web.Response(status=502)
        kept = {k: v for k, v in request.headers.items() if k not in ("Host", "Content-Length")}
        kept.pop("Proxy-Authorization", None)
        async with (
            aiohttp.ClientSession() as client,
            client.request(
                request.method,
                self.upstream + request.path_qs,
                headers=kept,
                data=await request.read(),
            ) as answer,
        ):
            return web.Response(
                status=answer.status, body=await answer.read(), content_type=answer.content_type
            )

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_calls_to_the_payment_system_go_through_the_proxy_set(shop, settings):
    proxy = Proxy(shop)
    try:
        settings.PAYMENT_GATEWAY_URL = "http://pay.internal/sandbox/"
        settings.PAYMENT_GATEWAY_PROXY = f"http://shop:s3cret@127.0.0.1:{proxy.port}"
        browser, page = shopper(shop)
        response = press_pay(browser, page)
        assert response.status_code == 200 and 'data-status="pending"' in response.text
        credentials = "Basic " + base64.b64encode(b"shop:s3cret").decode()
        assert proxy.asked == [("POST", "pay.internal", "/sandbox/v1/payments", credentials)]
        assert SandboxPayment.objects.get().out_trade_no == Order.objects.get().biz
    finally:
        proxy.close()
