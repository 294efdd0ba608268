"""The status panels: one function renders them for the page, the htmx answer, the push and the
designers' gallery.

Each status has its template, `templates/checkout/panels/<status>.html`, whose root element is
`<div id="payment-status" data-status="...">`, so the first render and every update are the same
markup.

A socket renders from a `PanelState`: what a panel shows of an order, in primitives, so that a push
can carry it over any channel layer (msgpack on Redis) and the socket renders it without a query.
`panel_state` takes it from an order, `panel_order` turns it back into one `panel_render` renders.

A socket's Pay form carries the socket's panel id (`panel_id_new`), and Pay names it in its push:
the page whose button it was shows Pay's answer, so its socket need not send the same panel again
(`checkout.consumers`).
"""

import re
import secrets
from contextlib import nullcontext
from functools import lru_cache, partial
from typing import TypedDict

import zxingcpp
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy

from checkout import gateways
from checkout.models import Order, Payment, Product

# What the shopper reads on each provider's Pay button.
PROVIDER_NAMES = {
    "sandbox": gettext_lazy("Sandbox"),
    "alipay": gettext_lazy("Alipay"),
    "wechatpay": gettext_lazy("WeChat Pay"),
    "stripe": gettext_lazy("Card"),
}


def panel_template(status: str) -> str:
    return f"checkout/panels/{status}.html"


# zxing-cpp draws a QR code as a square SVG of one path of rectangles: its side in modules, then
# moves and numbers, nothing to escape.
QR_DRAWING = re.compile(r'<svg width="(\d+)" height="\1".*?<path d="([MhvZ0-9 -]+)"', re.DOTALL)


# Encoding a QR code is the costliest step of rendering a pending panel, and the same payment's
# code is drawn again for the Pay answer, the socket's first panel and every reconnect: keep the
# recent ones. Each Pay is a new payment, so the Pay answer always encodes one.
@lru_cache(maxsize=1024)
def qr_svg(url: str) -> SafeString:
    """The cashier link's QR code as an inline SVG, in module units (quiet zone included), sized
    by the page's CSS. zxing-cpp's SVG is a standalone document, of which the panel keeps the path.
    """
    code = zxingcpp.create_barcode(url, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    drawn = QR_DRAWING.search(code.to_svg(add_quiet_zones=True))
    if drawn is None:  # zxing-cpp changed how it draws (tests/checkout/test_panels_qr.py)
        raise ValueError("zxing-cpp's SVG has no square of one path of rectangles")
    size, path = drawn.groups()
    return mark_safe(
        f'<svg viewBox="0 0 {size} {size}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path d="{path}"/></svg>'
    )


PANEL_ID = re.compile(r"[A-Za-z0-9_-]{12}")


def panel_id_new() -> str:
    return secrets.token_urlsafe(9)  # 12 characters of PANEL_ID


def panel_id_of(value: str | None) -> str | None:
    """The panel id a Pay names, if well-formed; None otherwise (the push then goes to all)."""
    return value if value and PANEL_ID.fullmatch(value) else None


def opens_in_browser(url: str) -> bool:
    """Whether a link to `url` opens a page (Alipay's, Stripe's, the sandbox's cashier), not only
    an app that scans it (WeChat Pay's weixin:// code)."""
    return url.startswith(("https://", "http://"))


def panel_context(
    order: Order, *, error: str = "", csrf_token: str = "", panel_id: str = ""
) -> dict:
    payment = order.payment
    payment_url = payment.cashier_url if payment else ""
    paying_with = payment.gateway if payment else ""
    providers = [(name, PROVIDER_NAMES[name]) for name in gateways.enabled()]
    return {
        "order": order,
        "payment": payment,
        # What the shopper scans or opens: the provider's code or page, verbatim (data-pay-url).
        "payment_url": payment_url,
        "payment_url_opens": opens_in_browser(payment_url),
        # A callable: the template calls it only where the panel shows the code (pending).
        "qr": partial(qr_svg, payment_url) if payment_url else "",
        "provider_name": PROVIDER_NAMES.get(paying_with, ""),
        # The Pay buttons: every enabled provider (unpaid), the others while paying (pending).
        "providers": providers,
        "other_providers": [(name, label) for name, label in providers if name != paying_with],
        "error": error,
        "csrf_token": csrf_token,  # for the Pay form's post without htmx (unpaid.html)
        "panel_id": panel_id,  # the socket's, in its Pay form (unpaid.html)
    }


def panel_render(
    order: Order,
    *,
    error: str = "",
    language: str | None = None,
    csrf_token: str = "",
    panel_id: str = "",
) -> str:
    """The order's panel; in `language` if given (the socket has no request to take it from),
    else in the active one. The page passes its request's `csrf_token`; the socket has none, and
    passes its `panel_id` instead."""
    with translation.override(language) if language else nullcontext():
        context = panel_context(order, error=error, csrf_token=csrf_token, panel_id=panel_id)
        return render_to_string(panel_template(order.status), context)


class PanelState(TypedDict):
    biz: str
    version: int  # Order.version: a socket shows no state older than the last it showed
    status: str
    amount: int
    currency: str
    product: str  # the product's name
    cashier_url: str | None  # the current payment's; None while the order has no payment
    provider: str  # the current payment's provider, or ""


def panel_state(order: Order) -> PanelState:
    """What the panels show of `order`; give it the order with its product and payment loaded, or
    call it where a query may run."""
    payment = order.payment
    return {
        "biz": order.biz,
        "version": order.version,
        "status": order.status,
        "amount": order.amount,
        "currency": order.currency,
        "product": order.product.name,
        "cashier_url": payment.cashier_url if payment else None,
        "provider": payment.gateway if payment else "",
    }


def panel_order(state: PanelState) -> Order:
    """An unsaved order that renders as the one `state` was taken from, with no query."""
    order = Order(
        biz=state["biz"],
        version=state["version"],
        status=state["status"],
        amount=state["amount"],
        currency=state["currency"],
        product=Product(name=state["product"]),
    )
    if state["cashier_url"] is not None:
        order.payment = Payment(gateway=state["provider"], cashier_url=state["cashier_url"])
    return order
