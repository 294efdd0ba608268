"""Waiting for a payment to settle, for the synchronous API, without a thread or a transaction.

A waiter sleeps on an asyncio.Event that a decision, close or expiry in this process sets at once
(`sandbox.wakeups`). For changes made by other processes, one poller per event loop asks the
database about all awaited payments together, so a thousand waiters cost one query per interval.
"""

import asyncio
import contextvars
import logging
from contextlib import suppress
from datetime import datetime

from asgiref.sync import sync_to_async
from django.db.models import Q
from django.utils import timezone

from sandbox import wakeups
from sandbox.models import Payment, PaymentStatus
from sandbox.payments import payment_expire_if_overdue, payment_get

logger = logging.getLogger("sandbox.waiting")

POLL_SECONDS = 0.1
# A waiter rereads its payment at least this often, should the poller ever fail.
RECHECK_SECONDS = 5.0

_pollers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


def _settled_or_overdue(payment_ids: list[str], now: datetime) -> list[str]:
    return list(
        Payment.objects.filter(pk__in=payment_ids)
        .filter(~Q(status=PaymentStatus.PENDING) | Q(expire_at__lte=now))
        .values_list("pk", flat=True)
    )


async def _poll(loop: asyncio.AbstractEventLoop) -> None:
    try:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            awaited = wakeups.payments_awaited(loop)
            if not awaited:
                return  # nobody waits; the next waiter starts a new poller
            try:
                ready = await sync_to_async(_settled_or_overdue)(awaited, timezone.now())
            except Exception:
                logger.exception("polling awaited payments failed")
                continue
            for payment_id in ready:
                wakeups.payment_changed(payment_id)
    finally:
        if _pollers.get(loop) is asyncio.current_task():
            del _pollers[loop]


def _ensure_poller() -> None:
    loop = asyncio.get_running_loop()
    task = _pollers.get(loop)
    if task is None or task.done():
        # In a context of its own: the waiter's would end with its request, asgiref's
        # thread-sensitive context included, and then every query of the poller's would fail.
        _pollers[loop] = loop.create_task(_poll(loop), context=contextvars.Context())


def _current(payment_id: str) -> Payment:
    return payment_expire_if_overdue(payment_get(payment_id=payment_id))


async def payment_wait_settled(*, payment_id: str) -> Payment:
    """The payment once it is no longer pending (decided, closed, or expired and so closed)."""
    with wakeups.listening_for_payment(payment_id) as changed:
        _ensure_poller()
        while True:
            changed.clear()  # before reading, so a change after the read still wakes us
            payment = await sync_to_async(_current)(payment_id)
            if payment.status != PaymentStatus.PENDING:
                return payment
            until_expiry = (payment.expire_at - timezone.now()).total_seconds()
            with suppress(TimeoutError):
                await asyncio.wait_for(
                    changed.wait(), max(0.0, min(RECHECK_SECONDS, until_expiry + 0.01))
                )
