"""Paying through Alipay, WeChat Pay and Stripe in a real browser, against their local fakes
(`python -m tests.fakes.serve`): the shopper picks a provider, the pending panel shows that
provider's address, the shopper pays on the provider's page (their phone, a second page) and the
order's page turns paid by itself, with no reload.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Shoppers
from tests.browser.test_checkout import (
    MARKER,
    RESULT_TIMEOUT_MS,
    buy,
    expect_result_without_reload,
    scanned,
    status,
)
from tests.fakes.process import Served, serve
from tests.servers import ShopServer, free_port

pytestmark = pytest.mark.browser

PROVIDERS = ("sandbox", "alipay", "wechatpay", "stripe")  # the fakes' env file enables all four
# What each provider's page says of a trade once paid.
PAID_AT_PROVIDER = {"alipay": "TRADE_SUCCESS", "wechatpay": "SUCCESS", "stripe": "complete"}


@dataclass
class ProvidersShop:
    """A shop taking payments through the three fakes, and the fakes."""

    shop: ShopServer
    fakes: Served

    @property
    def url(self) -> str:
        return self.shop.url

    def address_of(self, provider: str) -> str:
        """The start of what `provider` gives the shopper to scan or open."""
        return {
            "alipay": self.fakes.ready["alipay"] + "/qr/",
            "wechatpay": "weixin://wxpay/bizpayurl?pr=",
            "stripe": self.fakes.ready["stripe"] + "/c/pay/",
        }[provider]

    def page_to_pay(self, provider: str, pay_url: str, biz: str) -> str:
        """Where the shopper's phone pays: the address itself, but for WeChat Pay's weixin://,
        which only WeChat opens; its fake has a page per trade instead."""
        if provider == "wechatpay":
            return f"{self.fakes.env['WECHATPAY_API_URL']}/pay/{biz}"
        return pay_url

    def diagnose(self, test_name: str) -> list[tuple[str, str]]:
        log = self.fakes.log.read_text(errors="replace").splitlines()[-40:]
        return [*self.shop.diagnose(test_name), ("payment fakes log", "\n".join(log))]


@pytest.fixture(scope="module")
def providers_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvidersShop]:
    # Stripe's fake sends its events to the one endpoint it is given when it starts: the shop's,
    # whose port is therefore chosen first.
    port = free_port()
    webhook = f"http://127.0.0.1:{port}/payments/notify/stripe/"
    fakes = serve(Path(tmp_path_factory.mktemp("fakes")), "--stripe-webhook-url", webhook)
    try:
        shop = ShopServer(
            name="shop", port=port, tmp_dir=tmp_path_factory.mktemp("shop"), env=fakes.env
        )
        with shop:
            yield ProvidersShop(shop, fakes)
    finally:
        fakes.stop()


def pay_with(page: Page, shop: ProvidersShop, provider: str) -> str:
    """Press `provider`'s button in the page's panel; check the pending panel it brings (the
    provider's address in `data-pay-url`, its QR code, a link where the address opens in a
    browser, a button for each other provider) and return the address."""
    page.locator(f'#payment-status button.pay[value="{provider}"]').click()
    expect(status(page)).to_have_attribute("data-status", "pending")
    # The pending panel offers every provider but the one being paid with: from pending to pending
    # (another way to pay), this is how the new panel is told from the one before.
    expect(status(page).locator(f'button.pay[value="{provider}"]')).to_have_count(0)
    for other in PROVIDERS:
        if other != provider:
            expect(status(page).locator(f'button.pay[value="{other}"]')).to_have_count(1)

    carriers = status(page).locator("[data-pay-url]")
    expect(carriers.first).to_be_attached()
    pay_urls = {carrier.get_attribute("data-pay-url") for carrier in carriers.all()}
    assert len(pay_urls) == 1, f"elements carry different addresses: {pay_urls}"
    (pay_url,) = pay_urls
    assert pay_url.startswith(shop.address_of(provider)), pay_url
    expect(status(page).locator("figure.qr svg")).to_be_visible()
    assert scanned(page) == pay_url, "the QR code on screen does not read the address verbatim"
    link = status(page).locator("a.cashier-link")
    if provider == "wechatpay":  # weixin:// opens only in WeChat: scanned, never followed
        expect(link).to_have_count(0)
    else:
        expect(link).to_have_attribute("href", pay_url)
    return pay_url


def pay_at_provider(phone: Page, url: str, provider: str) -> None:
    """Open the provider's page in `phone` and press Pay: the provider notifies the shop."""
    response = phone.goto(url)
    assert response is not None and response.ok, f"{url} answered {response and response.status}"
    with phone.expect_response(lambda r: r.request.method == "POST") as answer:
        phone.locator('button[name="action"][value="pay"]').click()
    assert answer.value.status < 400, f"{provider} answered {answer.value.status} to Pay"
    expect(phone.locator("#status")).to_have_attribute("data-status", PAID_AT_PROVIDER[provider])


@pytest.mark.parametrize("provider", ["alipay", "wechatpay", "stripe"])
def test_paying_on_the_providers_page_turns_the_open_page_paid_without_reload(
    providers_shop: ProvidersShop, shoppers: Shoppers, provider: str
) -> None:
    page = shoppers.new(providers_shop.url)
    biz = buy(page)
    order_url = page.url
    page.evaluate(f"{MARKER} = true")

    pay_url = pay_with(page, providers_shop, provider)
    phone = page.context.new_page()
    pay_at_provider(phone, providers_shop.page_to_pay(provider, pay_url, biz), provider)

    expect_result_without_reload(page, "paid", order_url, RESULT_TIMEOUT_MS)


def test_the_shopper_switches_from_alipay_to_card_and_pays_by_card(
    providers_shop: ProvidersShop, shoppers: Shoppers
) -> None:
    """From the pending panel, another provider's button starts a payment there (the shop closes
    the first one): the panel then shows Stripe's address, and paying it pays the order."""
    page = shoppers.new(providers_shop.url)
    biz = buy(page)
    order_url = page.url
    page.evaluate(f"{MARKER} = true")

    alipay_url = pay_with(page, providers_shop, "alipay")
    stripe_url = pay_with(page, providers_shop, "stripe")
    assert stripe_url != alipay_url

    phone = page.context.new_page()
    pay_at_provider(phone, providers_shop.page_to_pay("stripe", stripe_url, biz), "stripe")
    expect_result_without_reload(page, "paid", order_url, RESULT_TIMEOUT_MS)
