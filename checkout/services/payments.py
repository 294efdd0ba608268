"""Starting a payment: call the payment system, answer at once, record what it said."""

import logging

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from checkout import states
from checkout.gateways import get_gateway
from checkout.gateways.base import GatewayError, PaymentRequest
from checkout.models import Order
from checkout.services.results import result_receive

logger = logging.getLogger(__name__)


class PaymentNotStarted(Exception):
    """The payment could not be started; the message is for the shopper, the order stays payable."""


async def payment_start(*, order: Order, pressed_in: str | None = None) -> Order:
    """Start paying for `order` in callback mode; returns the order as it then stands.

    `pressed_in`: the panel id of the socket whose Pay button was pressed, if any (its page shows
    this answer, `checkout.consumers`). No transaction or database connection is held while the
    payment system answers. A double click or a retry sends the same idempotency key, so the
    payment system answers with the same payment.
    """
    if not states.can_start_payment(order.status):
        return order
    if order.expires_at <= timezone.now():
        raise PaymentNotStarted(_("The time to pay for this order is over."))
    request = PaymentRequest(
        biz=order.biz,
        amount=order.amount,
        currency=order.currency,
        description=order.product.name,
        notify_url=settings.SITE_URL + reverse("checkout:notify"),
        expire_at=order.expires_at,
    )
    try:
        payment = await get_gateway().start(request)
    except GatewayError as error:
        logger.warning("payment start failed biz=%s error=%s", order.biz, error)
        raise PaymentNotStarted(
            _("The payment system did not answer. Your order is kept: please try again.")
        ) from error
    if (payment.biz, payment.amount, payment.currency) != (order.biz, order.amount, order.currency):
        logger.error(
            "payment start answered for another order biz=%s payment=%s", order.biz, payment
        )
        raise PaymentNotStarted(
            _("The payment system gave an unexpected answer. Please try again.")
        )
    applied = await result_receive(biz=order.biz, payment=payment, pressed_in=pressed_in)
    return applied.order or order
