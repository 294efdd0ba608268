"""Sample panels for designers: every state, with unsaved sample data, in every language.

Each sample is rendered by `checkout.panels.panel_render`, the function the page and the push use,
so what a designer sees after editing a template is exactly what a shopper gets.
"""

from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.html import format_html
from django.utils.translation import gettext_lazy

from checkout.models import Order, OrderStatus, Payment, Product
from checkout.panels import panel_render, panel_template

SAMPLE_BIZ = "0123456789abcdef0123456789abcdef"
SAMPLE_PAYMENT_ID = "pay_0123456789abcdef01234567"
CONNECTION_TEMPLATE = "checkout/panels/_connection.html"
# The same message the Pay button shows when the payment system does not answer.
SAMPLE_ERROR = gettext_lazy(
    "The payment system did not answer. Your order is kept: please try again."
)


# What each provider gives the shopper to scan or open (the shapes their docs show).
SAMPLE_PAY_URLS = {
    "alipay": "https://qr.alipay.com/bax03431ljhokirwl38f00a7",
    "wechatpay": "weixin://wxpay/bizpayurl?pr=aIQrOYOzz",
    "stripe": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3d4e5f6g7h8i9j0",
}


@dataclass(frozen=True)
class Sample:
    name: str
    status: str
    error: str = ""
    reconnecting: bool = False  # shown inside the page's section with its socket down
    provider: str = "sandbox"  # whose payment a pending or later sample has

    @property
    def templates(self) -> list[str]:
        names = [panel_template(self.status)]
        return [*names, CONNECTION_TEMPLATE] if self.reconnecting else names


SAMPLES = [
    Sample("Unpaid", OrderStatus.UNPAID),
    Sample("Unpaid, payment system error", OrderStatus.UNPAID, error=SAMPLE_ERROR),
    Sample("Pending", OrderStatus.PENDING),
    Sample("Pending, reconnecting", OrderStatus.PENDING, reconnecting=True),
    Sample("Pending, Alipay", OrderStatus.PENDING, provider="alipay"),
    Sample("Pending, WeChat Pay", OrderStatus.PENDING, provider="wechatpay"),
    Sample("Pending, Stripe", OrderStatus.PENDING, provider="stripe"),
    Sample("Paid", OrderStatus.PAID),
    Sample("Failed", OrderStatus.FAILED),
    Sample("Expired", OrderStatus.EXPIRED),
]


def sample_order(status: str, provider: str = "sandbox") -> Order:
    """An order as the panels see it, never saved; pending and later ones have a payment."""
    product = Product(slug="green-tea", name="Longjing green tea, 100 g", price=1999)
    order = Order(
        biz=SAMPLE_BIZ, product=product, amount=1999, currency="CNY", owner="", status=status
    )
    if status != OrderStatus.UNPAID:
        cashier = f"{settings.SITE_URL}/sandbox/cashier/{SAMPLE_PAYMENT_ID}"
        order.payment = Payment(
            order=order,
            gateway=provider,
            payment_id=SAMPLE_PAYMENT_ID,
            amount=order.amount,
            currency=order.currency,
            cashier_url=SAMPLE_PAY_URLS.get(provider, cashier),
        )
    return order


def sample_render(sample: Sample, language: str) -> str:
    order = sample_order(sample.status, sample.provider)
    html = panel_render(order, error=sample.error, language=language)
    if not sample.reconnecting:
        return html
    # As on the order page while its socket is down: the section has .ws-down, the notice shows.
    with translation.override(language):
        notice = render_to_string(CONNECTION_TEMPLATE)
    return format_html('<div class="checkout ws-down">{}{}</div>', notice, html)
