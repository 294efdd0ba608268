"""The shop as a person meets it: accessible (axe-core), usable by keyboard, in two languages,
honest about its live connection. Also takes the README's screenshots.

axe-core comes from npm (package.json) and is served by the shop itself at
/static/vendor/axe-core/axe.min.js; nothing is loaded from outside.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from checkout.gallery import SAMPLES
from tests.browser.conftest import ARTIFACTS, Servers, Shoppers
from tests.browser.test_checkout import ORDER_PATH, RESULT_TIMEOUT_MS, decide, wait_for_stream
from tests.servers import ROOT, ShopServer

pytestmark = pytest.mark.browser

AXE = "/static/vendor/axe-core/axe.min.js"
BLOCKING = {"serious", "critical"}
SCREENSHOTS = ARTIFACTS / "screenshots"
# `UPDATE_SCREENSHOTS=1 make test` copies them into the README's folder.
README_SCREENSHOTS = ROOT / "docs" / "screenshots"
PHONE = {"width": 390, "height": 780}


def axe_violations(page: Page) -> list[dict]:
    """Serious and critical axe-core violations of the page as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(url=AXE)
    results = page.evaluate(
        "async () => { const r = await axe.run(document);"
        " return {passes: r.passes.length, violations: r.violations}; }"
    )
    assert results["passes"] > 0, "axe-core ran no check"
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in results["violations"]
        if v["impact"] in BLOCKING
    ]


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_SCREENSHOTS / path.name)


def status(page: Page):
    return page.locator("#payment-status")


def buy_first_product(page: Page) -> None:
    page.goto("/")
    page.locator(".product form button").first.click()
    page.wait_for_url(ORDER_PATH)
    expect(status(page)).to_have_attribute("data-status", "unpaid")
    wait_for_stream(page)


def focused(page: Page) -> str:
    """A short description of the focused element: tag, class and text."""
    return page.evaluate(
        "() => { const e = document.activeElement;"
        " return `${e.tagName.toLowerCase()}.${e.className} ${e.textContent.trim()}`; }"
    )


def test_catalogue_checkout_and_cashier_have_no_serious_accessibility_violations(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    page = shoppers.new(shop_server.url)
    asked = []
    page.context.on("request", lambda request: asked.append(request.url))
    page.goto("/")
    assert axe_violations(page) == [], "catalogue"
    screenshot(page, "catalogue")

    buy_first_product(page)
    assert axe_violations(page) == [], "checkout, unpaid"

    page.locator("#payment-status button.pay").click()
    expect(status(page)).to_have_attribute("data-status", "pending")
    assert axe_violations(page) == [], "checkout, pending"
    screenshot(page, "checkout-pending")

    cashier = page.context.new_page()
    cashier.goto(page.locator("a.cashier-link").get_attribute("href"))
    assert axe_violations(cashier) == [], "cashier"
    # Each page names its icon: a browser asks for /favicon.ico otherwise, a 404 and a warning in
    # the shop's log for every new visitor (Playwright does not report that request; the log has it).
    assert "/favicon.ico" not in shop_server.log_path.read_text()
    assert any(url.endswith("/static/img/icon.svg") for url in asked)


def test_a_keyboard_alone_pays_and_focus_lands_on_each_new_panel(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    page = shoppers.new(shop_server.url)
    buy_first_product(page)

    for _ in range(10):  # skip link, brand, two language buttons, then the Pay button
        page.keyboard.press("Tab")
        if focused(page).startswith("button.pay"):
            break
    assert focused(page).startswith("button.pay"), focused(page)
    page.keyboard.press("Enter")

    expect(status(page)).to_have_attribute("data-status", "pending")
    expect(status(page).locator("h2")).to_be_focused()
    page.keyboard.press("Tab")
    expect(status(page).locator("a.cashier-link")).to_be_focused()

    decide(page.context.new_page(), page.locator("a.cashier-link").get_attribute("href"), "approve")
    page.bring_to_front()
    expect(status(page)).to_have_attribute("data-status", "paid", timeout=RESULT_TIMEOUT_MS)
    expect(status(page).locator("h2")).to_be_focused()


def test_a_chinese_browser_gets_the_shop_and_every_pushed_panel_in_chinese(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    page = shoppers.new(shop_server.url, locale="zh-CN")  # Accept-Language: zh-CN
    buy_first_product(page)
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(status(page).locator("button.pay")).to_have_text(re.compile(r"支付 ¥\d+\.\d\d"))

    page.locator("#payment-status button.pay").click()
    expect(status(page).locator("h2")).to_have_text("等待付款")
    assert axe_violations(page) == [], "checkout in Chinese, pending"
    decide(page.context.new_page(), page.locator("a.cashier-link").get_attribute("href"), "approve")

    page.bring_to_front()
    # This panel came over the WebSocket: the consumer rendered it in the shopper's language.
    expect(status(page).locator("h2")).to_have_text("付款成功，谢谢！", timeout=RESULT_TIMEOUT_MS)
    page.set_viewport_size(PHONE)
    screenshot(page, "checkout-paid-zh-phone")


def test_the_language_switch_changes_the_page_and_keeps_the_order(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    page = shoppers.new(shop_server.url, locale="en-GB")
    buy_first_product(page)
    order_url = page.url
    expect(status(page).locator("h2")).to_have_text("Ready to pay")

    page.get_by_role("button", name="简体中文").click()

    page.wait_for_url(order_url)
    expect(status(page).locator("h2")).to_have_text("准备付款")
    expect(page.get_by_role("button", name="简体中文")).to_have_attribute("aria-pressed", "true")


def test_the_shopper_sees_when_the_live_connection_is_down_and_when_it_is_back(
    servers: Servers, shoppers: Shoppers
) -> None:
    shop = servers.new(name="shop").start()
    page = shoppers.new(shop.url)
    buy_first_product(page)
    notice = page.locator(".checkout .connection")
    expect(notice).to_be_hidden()

    shop.stop()
    expect(notice).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(notice).to_have_attribute("role", "status")
    screenshot(page, "checkout-reconnecting")

    shop.start()
    expect(notice).to_be_hidden(timeout=RESULT_TIMEOUT_MS)
    expect(status(page)).to_have_attribute("data-status", "unpaid")


def test_the_gallery_shows_every_panel_in_both_languages_for_designers(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    page = shoppers.new(shop_server.url)  # the test server runs with DEBUG on
    page.goto("/gallery/")
    panels = page.locator(".gallery-panel #payment-status")
    expect(panels).to_have_count(len(SAMPLES) * len(settings.LANGUAGES))
    expect(page.locator(".gallery-panel .connection").first).to_be_visible()
    expect(page.get_by_text("templates/checkout/panels/pending.html").first).to_be_visible()
    page.set_viewport_size({"width": 1100, "height": 900})
    page.evaluate("window.scrollTo(0, 0)")  # the samples' autofocus scrolled to the error panel
    screenshot(page, "gallery")
