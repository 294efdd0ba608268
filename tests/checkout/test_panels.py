"""Every panel, in every language, keeps the `#payment-status` contract and is well-formed HTML.

The panels come from the designers' gallery samples (unsaved orders, no payment made), rendered by
`checkout.panels.panel_render` like the page, the Pay answer and the push.
"""

import re

import pytest
from django.conf import settings

from checkout.gallery import SAMPLE_PAY_URLS, SAMPLES, sample_render
from checkout.models import OrderStatus
from tests.checkout.html import by_id, parse_fragment, text_of

LANGUAGES = [code for code, _ in settings.LANGUAGES]
CASES = [pytest.param(s, lang, id=f"{s.name}-{lang}") for s in SAMPLES for lang in LANGUAGES]
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_the_samples_cover_every_status_the_error_and_reconnecting():
    assert {s.status for s in SAMPLES} == set(OrderStatus.values)
    assert any(s.error for s in SAMPLES) and any(s.reconnecting for s in SAMPLES)


@pytest.mark.parametrize("sample, language", CASES)
def test_panel_parses_strictly_and_has_one_live_payment_status(sample, language):
    root = parse_fragment(sample_render(sample, language))  # raises on any parse error
    [status] = by_id(root, "payment-status")
    assert status.get("data-status") == sample.status
    assert status.get("role") == "status"
    assert status.get("aria-live") == "polite"


@pytest.mark.parametrize("sample, language", CASES)
def test_panel_has_a_focusable_heading_in_the_panel(sample, language):
    [status] = by_id(parse_fragment(sample_render(sample, language)), "payment-status")
    heading = status.find(".//h2")
    assert heading is not None and text_of(heading)
    assert heading.get("tabindex") == "-1"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_chinese_panel_is_translated_and_english_is_not(sample):
    english = text_of(parse_fragment(sample_render(sample, "en")))
    chinese = text_of(parse_fragment(sample_render(sample, "zh-hans")))
    assert not HAN.search(english), english
    # Everything but the product's own name (catalogue data, not interface text) is Chinese.
    leftover = chinese.replace("Longjing green tea, 100 g", "")
    assert HAN.search(leftover) and not re.search(r"[A-Za-z]{3,}", leftover), chinese


@pytest.mark.parametrize("language", LANGUAGES)
def test_pending_panel_shows_the_qr_code_and_the_cashier_link(language):
    [pending] = [
        s
        for s in SAMPLES
        if s.status == OrderStatus.PENDING and not s.reconnecting and s.provider == "sandbox"
    ]
    root = parse_fragment(sample_render(pending, language))
    assert root.find(".//figure[@class='qr']/{http://www.w3.org/2000/svg}svg") is not None
    link = root.find(".//a[@href]")
    assert "cashier-link" in link.get("class") and "/sandbox/cashier/pay_" in link.get("href")


@pytest.mark.parametrize(
    ("provider", "opens"), [("alipay", True), ("wechatpay", False), ("stripe", True)]
)
def test_each_providers_pending_panel_carries_its_address_and_links_it_if_a_browser_can(
    provider, opens
):
    """Contract 6: what the shopper scans or opens, verbatim in data-pay-url, as a QR code, and
    as a link only where it opens in a browser (WeChat Pay's weixin:// does not)."""
    [sample] = [s for s in SAMPLES if s.status == OrderStatus.PENDING and s.provider == provider]
    root = parse_fragment(sample_render(sample, "en"))
    carriers = [e.get("data-pay-url") for e in root.iter() if e.get("data-pay-url") is not None]
    assert carriers and set(carriers) == {SAMPLE_PAY_URLS[provider]}
    assert root.find(".//figure[@class='qr']/{http://www.w3.org/2000/svg}svg") is not None
    links = [a.get("href") for a in root.iter("a") if "cashier-link" in (a.get("class") or "")]
    assert links == ([SAMPLE_PAY_URLS[provider]] if opens else [])


@pytest.mark.parametrize("language", LANGUAGES)
def test_money_is_written_per_language_in_yuan(language):
    [unpaid] = [s for s in SAMPLES if s.status == OrderStatus.UNPAID and not s.error]
    assert "¥19.99" in text_of(parse_fragment(sample_render(unpaid, language)))


def test_the_reconnecting_sample_shows_the_notice_outside_the_status():
    [sample] = [s for s in SAMPLES if s.reconnecting]
    root = parse_fragment(sample_render(sample, "zh-hans"))
    section = root.find(".//div[@class='checkout ws-down']")
    notice = section.find("p[@class='connection']")
    assert "正在重新连接" in text_of(notice)
    assert notice.get("role") == "status"


def test_with_several_providers_the_unpaid_panel_has_a_pay_button_each_in_order(settings):
    settings.PAYMENT_PROVIDERS = ["wechatpay", "sandbox", "stripe"]
    [unpaid] = [s for s in SAMPLES if s.status == OrderStatus.UNPAID and not s.error]
    root = parse_fragment(sample_render(unpaid, "en"))
    buttons = [b for b in root.iter("button") if b.get("name") == "provider"]
    assert [b.get("value") for b in buttons] == ["wechatpay", "sandbox", "stripe"]
    assert [text_of(b) for b in buttons] == ["WeChat Pay", "Sandbox", "Card"]
    assert all(b.get("hx-post", "").endswith("/pay/") for b in buttons)


def test_the_pending_panel_offers_the_other_providers(settings):
    settings.PAYMENT_PROVIDERS = ["alipay", "wechatpay", "stripe"]
    [sample] = [s for s in SAMPLES if s.status == OrderStatus.PENDING and s.provider == "alipay"]
    root = parse_fragment(sample_render(sample, "en"))
    others = [b.get("value") for b in root.iter("button") if b.get("name") == "provider"]
    assert others == ["wechatpay", "stripe"]
