"""The delivery loop: sends due notifications to merchants and expires overdue payments.

Notifications are rows (enqueued by `sandbox.notifications`), so a restart resumes them;
`sandbox.attempts` makes each attempt. The lead's `shop.background` runs `deliver_forever` in every
server process; tests call `deliver_due` for one round at a time.
"""

import asyncio
import logging
from contextlib import suppress
from datetime import datetime, timedelta

import aiohttp
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from sandbox import wakeups
from sandbox.attempts import Claim, claim_due, record, send
from sandbox.models import DeliveryState, Notification, Payment, PaymentStatus
from sandbox.payments import payments_expire_overdue
from shop import sql

logger = logging.getLogger("sandbox.delivery")

BATCH = 100
MAX_IN_FLIGHT = 500
IDLE_SECONDS = 1.0  # the longest sleep: how soon work enqueued by another process is seen
ERROR_PAUSE_SECONDS = 1.0


def _client() -> aiohttp.ClientSession:
    """The merchants' HTTP client, aiohttp: about a quarter of httpx's CPU per request, which
    also walks every pooled connection on each one (bench/profile_notes.md, "The payment
    system's HTTP clients"). The time of each request is bounded in sandbox.attempts; no
    connection cap, so that a burst of notifications never fails waiting for the pool."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
    )


async def _deliver(client: aiohttp.ClientSession, claim: Claim) -> bool:
    """Send and record one attempt; True if the merchant took it."""
    sent = await send(client, claim)
    return await sync_to_async(record)(claim, sent)


class Expiries:
    """When the loop next closes overdue payments: at the soonest expiry it saw, and at least every
    IDLE_SECONDS (for payments created since, here or in another process). Not on every round: a
    busy loop runs a round per notification, and the sweep was two of its queries."""

    def __init__(self) -> None:
        self.next_at: datetime | None = None

    def sweep_if_due(self, now: datetime) -> None:
        if self.next_at is not None and now < self.next_at:
            return
        payments_expire_overdue()
        soonest = sql.minimum(Payment, "expire_at", status=PaymentStatus.PENDING)
        self.next_at = now + timedelta(seconds=IDLE_SECONDS)
        if soonest is not None:
            self.next_at = min(self.next_at, soonest)


def _round(room: int, expiries: Expiries) -> tuple[list[Claim], float]:
    """One look for work, in one trip to a worker thread: close what is overdue, claim up to
    `room` due notifications; how long to sleep before looking again."""
    now = timezone.now()
    expiries.sweep_if_due(now)
    if room <= 0:
        return [], IDLE_SECONDS  # a finishing send wakes the loop
    claims = claim_due(room)
    if len(claims) == room:
        return claims, 0.0  # there may be more due right now
    next_times = [
        sql.minimum(Notification, "next_attempt_at", state=DeliveryState.PENDING),
        expiries.next_at,
    ]
    seconds = [(t - now).total_seconds() for t in next_times if t is not None]
    return claims, max(0.0, min([IDLE_SECONDS, *seconds]))


async def deliver_due() -> int:
    """One round: expire overdue payments, send every due notification, wait for the answers.
    Returns how many notifications were attempted."""
    await sync_to_async(payments_expire_overdue)()
    async with _client() as client:
        claims = await sync_to_async(claim_due)(BATCH)
        await asyncio.gather(*(_deliver(client, claim) for claim in claims))
    return len(claims)


async def deliver_forever() -> None:
    """The delivery loop each server process runs; it returns only when cancelled.

    Sends run as their own tasks, so one slow merchant never holds back the next notification;
    an enqueue in this process wakes the loop at once, one in another process within IDLE_SECONDS.
    """
    in_flight: set[asyncio.Task[bool]] = set()
    expiries = Expiries()

    with wakeups.listening_for_notifications() as wake:

        def finished(task: asyncio.Task[bool]) -> None:
            was_full = len(in_flight) >= MAX_IN_FLIGHT
            in_flight.discard(task)
            if task.cancelled():
                return
            if task.exception() is not None:
                logger.error("delivery failed", exc_info=task.exception())
            # A failed attempt was rescheduled after the loop chose its sleep, and a full loop
            # waits for room: let it look again. A delivered one leaves nothing to look for.
            if was_full or task.exception() is not None or not task.result():
                wake.set()

        async def dispatch(client: aiohttp.ClientSession) -> float:
            """Start what is due; how long to sleep before looking again."""
            room = min(BATCH, MAX_IN_FLIGHT - len(in_flight))
            claims, pause = await sync_to_async(_round)(room, expiries)
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
