"""The shop's pages under its Content-Security-Policy (shop/settings.py) in Chromium: each page a
shopper, a designer or an operator opens carries the policy and breaks none of it, and what htmx does
live (the socket, the swaps, the reconnecting notice) works with no inline script and no eval.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Servers, Shoppers
from tests.browser.test_checkout import (
    RESULT_TIMEOUT_MS,
    buy,
    decide,
    expect_result_without_reload,
    pay,
    status,
)
from tests.servers import ShopServer

pytestmark = pytest.mark.browser

# Test instrumentation: every violation a page reports, handed to the test as it happens (a page's
# own variables would not outlive its navigations).
VIOLATION_PROBE = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolation(
    `${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'}`
    + ` at ${e.sourceFile || e.documentURI}:${e.lineNumber} ${e.sample || ''}`);
});
"""
ADMIN_PASSWORD = "csp-test-password"  # a test server's throwaway superuser
CREATE_ADMIN = (
    "from django.contrib.auth.models import User;"
    "User.objects.filter(username='admin').exists()"
    f" or User.objects.create_superuser('admin', 'admin@example.com', '{ADMIN_PASSWORD}')"
)


class Policed:
    """A shopper's browser context, watched: the policy each page (a document) came with, and each
    violation Chromium reported, as a securitypolicyviolation event or a console message."""

    def __init__(self, context: BrowserContext) -> None:
        self.policies: dict[str, str | None] = {}
        self.violations: list[str] = []
        context.expose_binding("__cspViolation", self._reported)
        context.add_init_script(VIOLATION_PROBE)
        context.on("console", self._console)
        context.on("response", self._response)

    def _reported(self, source: dict, text: str) -> None:
        self.violations.append(f"{source['frame'].url}: {text}")

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(f"console.{message.type}: {message.text}")

    def _response(self, response) -> None:
        if response.request.resource_type == "document":
            self.policies[response.url] = response.headers.get("content-security-policy")


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


def assert_strict(policies: dict[str, str | None]) -> None:
    """Every page came with the policy, and the policy lets no inline script or eval in."""
    assert policies, "no page was loaded"
    for url, policy in policies.items():
        assert policy, f"{url} came without a Content-Security-Policy"
        rules = directives(policy)
        assert rules["default-src"] == ["'self'"], policy
        assert rules.get("script-src", rules["default-src"]) == ["'self'"], policy
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, policy
        assert rules["object-src"] == ["'none'"], policy
        assert rules["base-uri"] == ["'none'"], policy
        assert rules["form-action"] == ["'self'"], policy
        assert rules["frame-ancestors"] == ["'none'"], policy


def test_a_whole_purchase_breaks_no_rule_of_the_policy_and_the_result_still_arrives_by_itself(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    """Catalogue, the order page unpaid, pending with its QR code, the cashier on another page,
    and the paid panel, which arrives over the socket with no reload."""
    page = shoppers.new(shop_server.url)
    policed = Policed(page.context)

    buy(page)  # the catalogue, then the order page with its stream open
    order_url = page.url
    cashier_url = pay(page)  # the pending panel, its QR code scanned off the screen
    decide(page.context.new_page(), cashier_url, "approve")
    page.bring_to_front()
    expect_result_without_reload(page, "paid", order_url, RESULT_TIMEOUT_MS)

    assert policed.violations == []
    assert_strict(policed.policies)
    assert any("/sandbox/cashier/" in url for url in policed.policies), policed.policies


def test_the_gallery_and_the_admin_break_no_rule_of_the_policy(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    shop_server.manage("shell", "-c", CREATE_ADMIN)
    page = shoppers.new(shop_server.url)
    policed = Policed(page.context)

    page.goto("/gallery/")
    expect(page.locator(".gallery-panel .connection").first).to_be_visible()

    page.goto("/admin/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    page.goto("/admin/checkout/order/")
    expect(page.locator("#changelist")).to_be_visible()
    page.goto("/admin/checkout/product/1/change/")
    expect(page.locator("#product_form")).to_be_visible()

    assert policed.violations == []
    assert_strict(policed.policies)


def test_the_reconnecting_notice_shows_and_goes_without_eval(
    servers: Servers, shoppers: Shoppers
) -> None:
    """The notice used to be toggled by hx-on, which htmx evaluates: under the policy it would
    never show. It is now swapped in and out by htmx on the socket's events."""
    shop = servers.new(name="shop").start()
    page = shoppers.new(shop.url)
    policed = Policed(page.context)
    buy(page)
    notice = page.locator(".checkout .connection")
    expect(notice).to_be_hidden()

    shop.stop()
    expect(notice).to_be_visible(timeout=RESULT_TIMEOUT_MS)

    shop.start()
    expect(notice).to_be_hidden(timeout=RESULT_TIMEOUT_MS)
    expect(status(page)).to_have_attribute("data-status", "unpaid")
    assert policed.violations == []


def test_an_inline_script_and_an_hx_on_attribute_are_refused_and_heard(
    shop_server: ShopServer, shoppers: Shoppers
) -> None:
    """What an HTML injection would try: an inline script, and an hx-on attribute, which htmx
    evaluates. Neither runs, and the probe of the tests above hears both."""
    page: Page = shoppers.new(shop_server.url)
    policed = Policed(page.context)
    page.goto("/")
    page.evaluate(
        """() => {
          const script = document.createElement('script');
          script.textContent = 'window.__inlineRan = true';
          document.head.append(script);
          const button = document.querySelector('.product button');
          button.setAttribute('hx-on:click', 'window.__evalRan = true');
          button.setAttribute('type', 'button');
          htmx.process(button);
        }"""
    )
    # A real click: one made inside page.evaluate would be let through, as DevTools' own are.
    page.locator(".product button").first.click()
    for _ in range(50):  # the click's handler runs after it
        if any("blocked eval" in v for v in policed.violations):
            break
        page.wait_for_timeout(100)
    assert page.evaluate("[window.__inlineRan, window.__evalRan]") == [None, None]
    assert any("blocked inline" in v for v in policed.violations), policed.violations
    assert any("blocked eval" in v for v in policed.violations), policed.violations
