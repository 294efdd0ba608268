"""Pay against the real sandbox over HTTP: pending at once, and a double click is one payment."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from checkout.models import Order, OrderStatus, Payment
from sandbox.models import Payment as SandboxPayment
from tests.checkout import factories as f

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
