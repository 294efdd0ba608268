"""Starting a payment: call the payment system, return at once, record what it said."""

import asyncio
import logging
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from checkout import locks, states
from checkout.gateways import get_gateway
from checkout.gateways.base import GatewayError, GatewayPayment, PaymentRequest
from checkout.models import Order, OrderStatus, Payment
from checkout.panels import panel_state
from checkout.push import push_soon
from shop import sql
from shop.db import give_back
from shop.gate import without_place

logger = logging.getLogger(__name__)


# Seconds: above the sandbox's answer on loopback (a few ms), below a real payment system's across
# the internet (0.1-0.5 s), which then holds neither a connection nor a place for most of its wait.
GIVE_BACK_AFTER = 0.1


class PaymentNotStarted(Exception):
    """The payment could not be started; the message is for the shopper, the order stays payable."""


def payment_start(*, order: Order, pressed_in: str | None = None) -> Order:
    """Start paying for `order` in callback mode; returns the order, pending. `pressed_in`: the
    panel id of the socket whose panel's button was pressed (`checkout.panels`), if any.

    Called in the request's thread. The payment system is called on the event loop
    (`async_to_sync`), the thread waiting for it, and the push is handed to the loop without
    waiting (`push_soon`): one trip, where an async Pay view made a thread hop for each database
    step and for the render, and under load each trip waits its turn for the loop and the GIL
    (bench/profile_notes.md, twelfth pass). No transaction is open while the payment system is
    called, and a slow answer holds no database connection (`_answer`). A double click or a retry
    sends the same idempotency key, so the payment system answers with the same payment.
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
        payment = async_to_sync(_answer)(request)
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
    order, changed = payment_record(payment=payment)
    if changed:
        # To the order's other sockets (another tab): this Pay's answer shows it without waiting,
        # and the socket whose panel was pressed leaves it to the answer.
        push_soon(panel_state(order), pressed_in=pressed_in)  # the locked order: no query
    return order


async def _answer(request: PaymentRequest) -> GatewayPayment:
    """The payment system's answer to a Pay. The request keeps its database connection and its
    place in the gate while it waits, unless the answer takes longer than GIVE_BACK_AFTER: then
    it gives both back meanwhile, so that Pays waiting for a slow payment system, or one that
    hangs (up to PAYMENT_GATEWAY_TIMEOUT), neither hold the process's pool and stop every other
    request (`shop.db`) nor fill the gate, where they go before pages (`shop.gate`). Held for a
    real payment system's 0.3 s, the pool's 8 connections let a process through ~27 Pays a
    second, most of its CPU idle (bench/profile_notes.md, twenty-second pass). Not on every Pay:
    taking a connection again after the answer queues behind every request that came meanwhile,
    and at 1,000 shoppers Pay's median went from 0.26 to 6 s (ibid.). Nor the place alone: a Pay
    holding its connection must never wait for a place, which a page may hold while it waits for
    that connection (ibid., twenty-third pass)."""
    answer = asyncio.ensure_future(get_gateway().start(request))
    try:
        done, _ = await asyncio.wait({answer}, timeout=GIVE_BACK_AFTER)
        if not done:
            await give_back()
            return await without_place(answer)
        return await answer
    finally:
        answer.cancel()  # nothing once answered; a Pay cancelled (its browser left) stops waiting


def payment_record(*, payment: GatewayPayment) -> tuple[Order, bool]:
    """Remember the started payment and mark the order pending, unless a result came first.

    Returns the order as locked, with its product and payment attached, and whether it changed."""
    with transaction.atomic():
        order = locks.order_for_update(payment.biz)
        # Payments are created only under their order's lock, so the one the lock read is current.
        row = order.payment_or_none
        if row is None:
            row = Payment.reported(order, payment)
            sql.insert(row)
        elif not row.cashier_url:
            row.cashier_url = payment.cashier_url
            sql.update(row, "cashier_url", "updated_at")
        changed = order.status == OrderStatus.UNPAID
        if changed:
            order.status = OrderStatus.PENDING
            # No word from the payment system within this time: the reconciler asks it.
            order.reconcile_after = min(
                timezone.now() + timedelta(seconds=settings.RECONCILE_QUERY_AFTER),
                order.expires_at,
            )
            order.save_change("status", "reconcile_after")
    # The caller (the Pay answer) renders this order with its payment attached (read by the lock, or
    # cached on it by the create): no second read for it.
    return order, changed
