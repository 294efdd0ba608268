"""Starting a payment: call the provider, answer at once, record what it said."""

import logging
from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from checkout import gateways, states
from checkout.gateways.base import Gateway, GatewayError, PaymentRequest
from checkout.models import Order, OrderStatus
from checkout.notify import notify_url
from checkout.panels import PROVIDER_NAMES
from checkout.services.orders import order_provider_choose
from checkout.services.results import Source, result_receive

logger = logging.getLogger(__name__)


class PaymentNotStarted(Exception):
    """The payment could not be started; the message is for the shopper, the order stays payable.
    `status`: the answer's HTTP status, 503 (the provider did not answer; try again) unless the
    request itself cannot succeed."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.status = status


async def payment_start(*, order: Order, provider: str, pressed_in: str | None = None) -> Order:
    """Start paying for `order` with `provider` in callback mode; returns the order as it then
    stands.

    `pressed_in`: the panel id of the socket whose Pay button was pressed, if any (its page shows
    this answer, `checkout.consumers`). No transaction or database connection is held while the
    provider answers. Pay pressed again for the same provider is the same payment (the same
    idempotency key, or out_trade_no). Pressed for another provider while the order is pending,
    the current payment is closed first: if it was paid meanwhile, the order is paid and nothing
    else is started.
    """
    if provider not in gateways.enabled():
        raise PaymentNotStarted(_("This way to pay is not offered."), status=400)
    current = order.payment
    switching = states.can_switch_provider(order.status) and (
        current is None or current.gateway != provider
    )
    if not (switching or states.can_start_payment(order.status)):
        return order
    if order.expires_at <= timezone.now():
        raise PaymentNotStarted(_("The time to pay for this order is over."))
    gateway = gateways.get_gateway(provider)
    attempt = await database_sync_to_async(order_provider_choose)(
        biz=order.biz, provider=provider, after_close=gateway.starts_after_close
    )
    if attempt is None:
        raise PaymentNotStarted(
            _("This order can no longer be paid with %(provider)s. Please choose another way.")
            % {"provider": PROVIDER_NAMES[provider]},
            status=409,
        )
    if switching and current is not None:
        closed = await _call(
            order, current.gateway, "close", lambda g: g.close(payment_id=current.payment_id)
        )
        applied = await result_receive(
            biz=order.biz,
            payment=closed,
            provider=current.gateway,
            source=Source.SWITCH,
            pressed_in=pressed_in,
        )
        if applied.order is not None and applied.order.status == OrderStatus.PAID:
            return applied.order
    request = PaymentRequest(
        biz=order.biz,
        amount=order.amount,
        currency=order.currency,
        description=order.product.name,
        notify_url=notify_url(provider),
        expire_at=order.expires_at,
        return_url=settings.SITE_URL + order.get_absolute_url(),
        attempt=attempt,
    )
    payment = await _call(order, provider, "start", lambda g: g.start(request))
    if (payment.biz, payment.amount, payment.currency) != (order.biz, order.amount, order.currency):
        logger.error(
            "payment start answered for another order biz=%s payment=%s", order.biz, payment
        )
        raise PaymentNotStarted(
            _("The payment system gave an unexpected answer. Please try again.")
        )
    applied = await result_receive(
        biz=order.biz,
        payment=payment,
        provider=provider,
        source=Source.START,
        pressed_in=pressed_in,
    )
    return applied.order or order


async def _call[T](
    order: Order, provider: str, step: str, call: Callable[[Gateway], Awaitable[T]]
) -> T:
    """`call` on the provider's gateway; its failure is told to the shopper as PaymentNotStarted."""
    try:
        return await call(gateways.get_gateway(provider))
    except GatewayError as error:
        logger.warning(
            "payment %s failed biz=%s provider=%s error=%s", step, order.biz, provider, error
        )
        raise PaymentNotStarted(
            _("The payment system did not answer. Your order is kept: please try again.")
        ) from error
