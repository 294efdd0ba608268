"""The delivery loop: sends due notifications to merchants and expires overdue payments.

Notifications are rows (enqueued by `sandbox.notifications`), so a restart resumes them;
`sandbox.attempts` makes each attempt. The lead's `shop.background` runs `deliver_forever` in every
server process; tests call `deliver_due` for one round at a time.
"""

import asyncio
import logging
from contextlib import suppress

import httpx
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.models import Min
from django.utils import timezone

from sandbox import wakeups
from sandbox.attempts import Claim, claim_due, record, send
from sandbox.models import DeliveryState, Notification, Payment, PaymentStatus
from sandbox.payments import payments_expire_overdue

logger = logging.getLogger("sandbox.delivery")

BATCH = 100
MAX_IN_FLIGHT = 500
IDLE_SECONDS = 1.0  # the longest sleep: how soon work enqueued by another process is seen
ERROR_PAUSE_SECONDS = 1.0


def _client() -> httpx.AsyncClient:
    # The time of each request is bounded in sandbox.attempts; no connection cap, so that a
    # burst of notifications never fails waiting for the pool.
    return httpx.AsyncClient(
        timeout=None, limits=httpx.Limits(max_connections=None, max_keepalive_connections=100)
    )


async def _deliver(client: httpx.AsyncClient, claim: Claim) -> None:
    sent = await send(client, claim)
    await sync_to_async(record)(claim, sent)


def _seconds_until_due() -> float:
    now = timezone.now()
    next_times = [
        Notification.objects.filter(state=DeliveryState.PENDING).aggregate(
            t=Min("next_attempt_at")
        )["t"],
        Payment.objects.filter(status=PaymentStatus.PENDING).aggregate(t=Min("expire_at"))["t"],
    ]
    seconds = [(t - now).total_seconds() for t in next_times if t is not None]
    return max(0.0, min([IDLE_SECONDS, *seconds]))


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
    in_flight: set[asyncio.Task[None]] = set()

    with wakeups.listening_for_notifications() as wake:

        def finished(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            if not task.cancelled() and task.exception() is not None:
                logger.error("delivery failed", exc_info=task.exception())
            # A failed attempt was rescheduled after the loop chose its sleep: let it look again.
            wake.set()

        async def dispatch(client: httpx.AsyncClient) -> float:
            """Start what is due; how long to sleep before looking again."""
            await sync_to_async(payments_expire_overdue)()
            room = min(BATCH, MAX_IN_FLIGHT - len(in_flight))
            if room <= 0:
                return IDLE_SECONDS  # a finishing send wakes the loop
            claims = await sync_to_async(claim_due)(room)
            for claim in claims:
                task = asyncio.create_task(_deliver(client, claim))
                in_flight.add(task)
                task.add_done_callback(finished)
            if len(claims) == room:
                return 0.0  # there may be more due right now
            return await sync_to_async(_seconds_until_due)()

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
