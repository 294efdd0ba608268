"""The reconciler: asks the payment system about orders it has not heard of, and expires them.

A notification may never come. A pending payment with no word after RECONCILE_QUERY_AFTER seconds
is queried; an order past its time is closed at the payment system, queried once more, and only
then expired. Every answer goes through `result_receive`, the function notifications use. Orders
are claimed with row locks that skip what another reconciler holds, so copies can run side by side.
"""

import asyncio
import logging
import time
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from checkout import locks
from checkout.gateways import get_gateway
from checkout.gateways.base import GatewayError, GatewayPayment
from checkout.models import Order
from checkout.services.results import result_receive

logger = logging.getLogger(__name__)

BATCH = 50
# How long a claimed order stays away from other reconcilers while this one works on it.
LEASE = timedelta(seconds=30)
RETRY_AFTER_ERROR = timedelta(seconds=30)


def orders_claim(*, now, limit: int = BATCH) -> list[tuple[str, str | None, bool]]:
    """Claim due orders: (biz, payment id, expired?), each leased to this reconciler."""
    with transaction.atomic():
        orders = list(locks.orders_due_for_reconcile(now, limit))
        Order.objects.filter(pk__in=[o.pk for o in orders]).update(reconcile_after=now + LEASE)
    return [
        (o.biz, o.payment.payment_id if o.payment_or_none else None, o.expires_at <= now)
        for o in orders
    ]


def order_reschedule(*, biz: str, after: timedelta) -> None:
    now = timezone.now()
    order = Order.objects.only("expires_at").get(biz=biz)
    # Never look later than the expiry, which must happen on time.
    when = now + after if now >= order.expires_at else min(now + after, order.expires_at)
    Order.objects.filter(biz=biz).update(reconcile_after=when)


async def order_reconcile(*, biz: str, payment_id: str | None, expired: bool) -> str:
    gateway = get_gateway()
    found: GatewayPayment | None
    if expired and payment_id:
        await gateway.close(payment_id=payment_id)
    found = await gateway.query(biz=biz)
    if found is None and not expired:
        return "no_payment"
    applied = await result_receive(biz=biz, payment=found)
    return applied.outcome


async def reconcile_once() -> int:
    """One pass over every due order; returns how many were looked at."""
    claimed = await sync_to_async(orders_claim)(now=timezone.now())
    for biz, payment_id, expired in claimed:
        started = time.perf_counter()
        step = "expire" if expired else "query"
        try:
            outcome = await order_reconcile(biz=biz, payment_id=payment_id, expired=expired)
            after = timedelta(seconds=settings.RECONCILE_QUERY_AFTER)
        except GatewayError as error:
            outcome, after = f"gateway_error: {error}", RETRY_AFTER_ERROR
        await sync_to_async(order_reschedule)(biz=biz, after=after)
        logger.info(
            "reconcile step=%s biz=%s outcome=%s ms=%.1f",
            step,
            biz,
            outcome,
            (time.perf_counter() - started) * 1000,
        )
    return len(claimed)


async def reconcile_forever() -> None:
    while True:
        count = await reconcile_once()
        if count < BATCH:
            await asyncio.sleep(settings.RECONCILE_INTERVAL)
