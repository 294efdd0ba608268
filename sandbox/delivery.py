"""The delivery loop: sends due notifications to merchants and closes overdue payments.

Notifications are rows (enqueued by `sandbox.notifications`), so a restart resumes them and any
number of deliverers can share them: `sandbox.attempts` claims each attempt for one of them. The
`sandbox_deliver` command runs `deliver_forever` in a process of its own; `deliver_due` is one
round, for `sandbox_deliver --once` and the tests.
"""

import asyncio
import logging
from contextlib import suppress
from datetime import datetime, timedelta

import aiohttp
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.models import Min
from django.utils import timezone

from sandbox.attempts import Claim, claim_due, record, send
from sandbox.models import DeliveryState, Notification, Payment, PaymentStatus
from sandbox.payments import payments_expire_overdue

logger = logging.getLogger("sandbox.delivery")

BATCH = 100
MAX_IN_FLIGHT = 500
# The longest sleep, so how soon a notification enqueued by the web server goes out; an idle look
# for work is one indexed query.
POLL_SECONDS = 0.2
# How often overdue payments are looked for, at the least (README: closed "within 1 s").
SWEEP_SECONDS = 1.0
ERROR_PAUSE_SECONDS = 1.0


def _client() -> aiohttp.ClientSession:
    """The merchants' HTTP client. Each request's time is bounded in `sandbox.attempts`; there is
    no connection cap, so that a burst of notifications never fails waiting for the pool."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
    )


async def _deliver(client: aiohttp.ClientSession, claim: Claim) -> bool:
    """Send and record one attempt; True if the merchant took it."""
    sent = await send(client, claim)
    return await sync_to_async(record)(claim, sent)


def notifications_next_due() -> datetime | None:
    """When the soonest pending notification is due (or its claim's lease runs out)."""
    pending = Notification.objects.filter(state=DeliveryState.PENDING)
    return pending.aggregate(soonest=Min("next_attempt_at"))["soonest"]


class Expiries:
    """When the loop next closes overdue payments: at the soonest expiry it saw, and at least every
    SWEEP_SECONDS (for payments created since); not on every poll, which stays one query."""

    def __init__(self) -> None:
        self.next_at: datetime | None = None

    def sweep_if_due(self, now: datetime) -> None:
        if self.next_at is not None and now < self.next_at:
            return
        payments_expire_overdue()
        pending = Payment.objects.filter(status=PaymentStatus.PENDING)
        soonest = pending.aggregate(soonest=Min("expire_at"))["soonest"]
        self.next_at = now + timedelta(seconds=SWEEP_SECONDS)
        if soonest is not None:
            self.next_at = min(self.next_at, soonest)


def look_for_work(room: int, expiries: Expiries) -> tuple[list[Claim], float]:
    """One look for work, in one trip to a worker thread: close what is overdue, claim up to `room`
    due notifications; how long to sleep before looking again."""
    now = timezone.now()
    expiries.sweep_if_due(now)
    due = notifications_next_due()
    if due is not None and due <= now:
        claims = claim_due(room) if room > 0 else []
        if claims:
            return claims, 0.0  # more may be due already
        # The loop is full (a finishing send wakes it), or other deliverers hold what is due.
        return [], POLL_SECONDS
    pause = POLL_SECONDS
    for at in (due, expiries.next_at):
        if at is not None:
            pause = min(pause, (at - now).total_seconds())
    return [], max(0.0, pause)


async def deliver_due() -> int:
    """One round: close overdue payments, send every due notification, wait for the answers.
    Returns how many notifications were attempted."""
    await sync_to_async(payments_expire_overdue)()
    async with _client() as client:
        claims = await sync_to_async(claim_due)(BATCH)
        await asyncio.gather(*(_deliver(client, claim) for claim in claims))
    return len(claims)


async def deliver_forever() -> None:
    """Deliver until cancelled. Sends run as tasks of their own, so that one slow merchant never
    holds back the next notification."""
    in_flight: set[asyncio.Task[bool]] = set()
    expiries = Expiries()
    wake = asyncio.Event()

    def finished(task: asyncio.Task[bool]) -> None:
        was_full = len(in_flight) >= MAX_IN_FLIGHT
        in_flight.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            logger.error("delivery failed", exc_info=task.exception())
        # A failed attempt's retry may fall due before the loop's sleep ends, and a full loop
        # waits for room: let it look again. A delivered one leaves nothing to look for.
        if was_full or task.exception() is not None or not task.result():
            wake.set()

    async def dispatch(client: aiohttp.ClientSession) -> float:
        """Start what is due; how long to sleep before looking again."""
        room = min(BATCH, MAX_IN_FLIGHT - len(in_flight))
        claims, pause = await sync_to_async(look_for_work)(room, expiries)
        for claim in claims:
            task = asyncio.create_task(_deliver(client, claim))
            in_flight.add(task)
            task.add_done_callback(finished)
        return pause

    async with _client() as client:
        try:
            while True:
                wake.clear()
                try:
                    pause = await dispatch(client)
                except Exception:
                    logger.exception("delivery round failed; retrying")
                    # A database restart leaves a broken connection in the worker thread.
                    await sync_to_async(connections.close_all)()
                    pause = ERROR_PAUSE_SECONDS
                if pause > 0:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), pause)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
