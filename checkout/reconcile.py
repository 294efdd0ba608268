"""The reconciler: asks the payment system about orders it has not heard of, and expires them.

A notification may never come. A pending payment with no word after RECONCILE_QUERY_AFTER seconds
is queried; an order past its time is closed at the payment system, queried once more, and only
then expired. Every answer goes through `result_receive`, the function notifications use. Orders
are claimed with row locks that skip what another reconciler holds, and leased while they are
worked on, so copies can run side by side and each order is handled by one of them.

A sale's first minute leaves a thousand orders due at once. Their queries are spread out: at most
RECONCILE_RATE started a second and RECONCILE_MAX_IN_FLIGHT waiting at once, per payment system,
and an order whose result arrived while it waited its turn is not queried at all. The next look at
an order still pending is a little later than RECONCILE_QUERY_AFTER, by a random fraction, so the
herd does not come back together.
"""

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from checkout import locks, states
from checkout.gateways import get_gateway
from checkout.gateways.base import GatewayError, GatewayPayment, GatewayThrottled
from checkout.models import Order, Payment, PaymentStatus
from checkout.selectors import order_is_unsettled
from checkout.services.results import result_receive

logger = logging.getLogger(__name__)

BATCH = 50
# After an outage, look again this soon (or sooner, if queries are due sooner).
RETRY_AFTER_ERROR = timedelta(seconds=30)


# A later look comes up to this fraction of its delay later, at random.
JITTER = 0.2
# Seconds no query goes to a provider that answered "too many requests".
THROTTLED_HOLD = 10.0


@dataclass(frozen=True)
class Leftover:
    """A pending payment that is not the order's current one: a provider the shopper switched
    from whose close found nothing to close (an Alipay code never scanned), or the current payment
    of an order another payment paid."""

    provider: str
    payment_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class Claim:
    biz: str
    payment_id: str | None  # None: the shop has not recorded a payment (yet)
    expired: bool
    gateway: str  # the provider of the payment, or the one Pay was pressed for; "" if never
    # False once the order is paid, failed or expired with its current payment settled: only its
    # leftovers are left to close.
    deciding: bool = True
    leftovers: tuple[Leftover, ...] = ()


class Pace:
    """At most `rate` steps started a second (0: no limit), and at most `limit` at once; none
    started for a while after the provider said it is asked too often (`hold`)."""

    def __init__(self, rate: float, limit: int) -> None:
        self.interval = 1 / rate if rate > 0 else 0.0
        self.next_start = 0.0
        self.slots = asyncio.Semaphore(limit)

    def hold(self, seconds: float) -> None:
        self.next_start = max(self.next_start, time.monotonic() + seconds)

    @asynccontextmanager
    async def step(self) -> AsyncIterator[None]:
        async with self.slots:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
            await asyncio.sleep(start - now)
            yield


def _lease() -> timedelta:
    # Claimed orders are worked on together, each with a few gateway calls (query, close, the GET
    # after a 409, query; a close and a query per leftover), so no other copy takes one back while
    # it is being worked on.
    return timedelta(seconds=30 + 8 * settings.PAYMENT_GATEWAY_TIMEOUT)


def orders_claim(*, now: datetime, limit: int = BATCH) -> list[Claim]:
    """Claim due orders, each leased to this reconciler until it reschedules them."""
    with transaction.atomic():
        orders = list(locks.orders_due_for_reconcile(now, limit))
        Order.objects.filter(pk__in=[o.pk for o in orders]).update(reconcile_after=now + _lease())
        leftovers: dict[int, list[Leftover]] = {}
        for row in Payment.objects.filter(order__in=orders, status=PaymentStatus.PENDING).exclude(
            pk__in=[o.payment_id for o in orders if o.payment_id]
        ):
            leftovers.setdefault(row.order_id, []).append(
                Leftover(row.gateway, row.payment_id, row.amount, row.currency)
            )
    return [
        Claim(
            biz=o.biz,
            payment_id=o.payment.payment_id if o.payment else None,
            expired=o.expires_at <= now,
            gateway=o.payment.gateway if o.payment else o.provider,
            deciding=o.status in states.WAITING
            or (o.payment is not None and o.payment.status == PaymentStatus.PENDING),
            leftovers=tuple(leftovers.get(o.pk, ())),
        )
        for o in orders
    ]


def order_reschedule(*, biz: str, after: timedelta) -> None:
    now = timezone.now()
    after *= 1 + random.uniform(0, JITTER)
    order = Order.objects.only("expires_at").get(biz=biz)
    # Never look later than the expiry, which must happen on time.
    when = now + after if now >= order.expires_at else min(now + after, order.expires_at)
    Order.objects.filter(biz=biz).update(reconcile_after=when)


async def order_reconcile(claim: Claim) -> str:
    """Ask the payment system about one order and apply its answer; returns the outcome."""
    outcome = await _current_reconcile(claim) if claim.deciding else "settled"
    for leftover in claim.leftovers:
        await _leftover_close(claim, leftover)
    return outcome


async def _leftover_close(claim: Claim, leftover: Leftover) -> None:
    """Close a payment the order no longer needs; a success found so pays the order (or is
    flagged paid twice). Nothing to close (an Alipay code never scanned) is asked again until the
    order's time is up, when the code can no longer be paid."""
    found = await get_gateway(leftover.provider).close(payment_id=leftover.payment_id)
    if found is None:
        if not claim.expired:
            return
        found = GatewayPayment(
            payment_id=leftover.payment_id,
            biz=claim.biz,
            status=PaymentStatus.CLOSED,
            amount=leftover.amount,
            currency=leftover.currency,
        )
    await result_receive(biz=claim.biz, payment=found, provider=leftover.provider)


async def _current_reconcile(claim: Claim) -> str:
    if not claim.gateway:
        # Pay was never pressed: there is nobody to ask, and the order expires when its time is up.
        if not claim.expired:
            return "no_payment"
        return (await result_receive(biz=claim.biz, payment=None, provider="")).outcome
    gateway = get_gateway(claim.gateway)
    payment_id = claim.payment_id
    found: GatewayPayment | None = None
    if claim.expired and payment_id is None:
        # The shopper's Pay may be in flight: a payment we have not recorded yet is closed too.
        found = await gateway.query(biz=claim.biz)
        if found is not None and found.status == PaymentStatus.PENDING:
            payment_id = found.payment_id
    if claim.expired and payment_id is not None:
        # Closed first, so that no success can come after the answer that expires the order.
        await gateway.close(payment_id=payment_id)
    if payment_id is not None or not claim.expired:
        found = await gateway.query(biz=claim.biz, payment_id=payment_id)
    if found is None and not claim.expired:
        return "no_payment"
    # None after the time is up: there is no payment, and now none can be started.
    applied = await result_receive(biz=claim.biz, payment=found, provider=claim.gateway)
    return applied.outcome


async def _reconcile_step(claim: Claim, pace: Pace) -> None:
    async with pace.step():
        if await database_sync_to_async(order_is_unsettled)(biz=claim.biz):
            await _reconcile_unsettled(claim, pace)


async def _reconcile_unsettled(claim: Claim, pace: Pace) -> None:
    started = time.perf_counter()
    after = timedelta(seconds=settings.RECONCILE_QUERY_AFTER)
    error = ""
    try:
        outcome = await order_reconcile(claim)
    except GatewayThrottled as failure:
        # The provider asks to be asked less often: its other orders wait, this one comes back.
        pace.hold(THROTTLED_HOLD)
        outcome, error, after = "throttled", str(failure), min(after, RETRY_AFTER_ERROR)
    except GatewayError as failure:
        # Nothing was applied; the order stays waiting and is looked at again.
        outcome, error, after = "gateway_error", str(failure), min(after, RETRY_AFTER_ERROR)
    except Exception as failure:
        logger.exception("reconcile biz=%s failed", claim.biz)
        outcome, error, after = "error", type(failure).__name__, min(after, RETRY_AFTER_ERROR)
    await database_sync_to_async(order_reschedule)(biz=claim.biz, after=after)
    logger.info(
        "reconcile step=%s biz=%s payment=%s outcome=%s ms=%.1f%s",
        "expire" if claim.expired else "query",
        claim.biz,
        claim.payment_id or "-",
        outcome,
        (time.perf_counter() - started) * 1000,
        f" error={error!r}" if error else "",
    )


async def reconcile_once() -> int:
    """One pass over every due order; returns how many were looked at."""
    claims = await database_sync_to_async(orders_claim)(now=timezone.now())
    paces: dict[str, Pace] = {}
    for claim in claims:
        if claim.gateway not in paces:
            rate = settings.RECONCILE_RATES.get(claim.gateway, settings.RECONCILE_RATE)
            paces[claim.gateway] = Pace(rate, settings.RECONCILE_MAX_IN_FLIGHT)
    await asyncio.gather(*(_reconcile_step(claim, paces[claim.gateway]) for claim in claims))
    return len(claims)


async def reconcile_forever() -> None:
    while True:
        try:
            count = await reconcile_once()
        except Exception:
            logger.exception("reconcile pass failed; retrying")
            count = 0
        if count < BATCH:
            await asyncio.sleep(settings.RECONCILE_INTERVAL)
