"""One delivery attempt of a notification: claim it, send it (with its copies and probe), record it.

A claim is a short transaction that pushes the notification's `next_attempt_at` a lease ahead, so
the send happens with no transaction open and no row locked, and two deliverers never claim the
same attempt. If a deliverer dies mid-send, the lease runs out and the attempt is made again:
delivery is at least once, as with every real payment system.
"""

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sandbox import locks, signature
from sandbox.models import AttemptKind, DeliveryAttempt, DeliveryState, Notification

logger = logging.getLogger("sandbox.delivery")

# WeChat Pay API v3: 15s,15s,30s,3m,10m,20m,30m,30m,30m,60m,3h,3h,3h,6h,6h, then it gives up.
# fmt: off
SCHEDULE_SECONDS = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800,
                    21600, 21600)
# fmt: on
TIMEOUT_SECONDS = 5.0  # an answer later than this counts as a failure, as WeChat Pay counts it
LEASE = timedelta(seconds=60)  # longer than a probe plus an attempt, both bounded by the timeout
CLAIMED_FIELDS = ("url", "body", "copies", "probe", "attempts")  # what an attempt needs


def retry_delay(failed_attempts: int) -> timedelta | None:
    """How long after this many failed attempts the next one is due; None once the schedule is
    used up."""
    if failed_attempts > len(SCHEDULE_SECONDS):
        return None
    return timedelta(seconds=SCHEDULE_SECONDS[failed_attempts - 1] * settings.SANDBOX_RETRY_SCALE)


@dataclass(frozen=True)
class Claim:
    notification_id: str
    url: str
    body: bytes
    copies: int
    probe: bool
    number: int  # which attempt this is, from 1


@dataclass(frozen=True)
class Sent:
    kind: AttemptKind
    sent_at: datetime
    duration_ms: int
    status_code: int | None
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def claim_due(limit: int) -> list[Claim]:
    """Claim up to `limit` due notifications, the soonest first: each one's next attempt moves to
    the end of a lease, so that no other deliverer takes it meanwhile."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(locks.notifications_due_for_update(now, limit))
        if not ids:
            return []
        Notification.objects.filter(pk__in=ids).update(next_attempt_at=now + LEASE)
        claimed = Notification.objects.only(*CLAIMED_FIELDS).in_bulk(ids)
    return [
        Claim(
            notification_id=n.pk,
            url=n.url,
            body=bytes(n.body),
            copies=n.copies,
            probe=n.probe and n.attempts == 0,  # one probe per notification, never retried
            number=n.attempts + 1,
        )
        for n in (claimed[pk] for pk in ids)
    ]


async def _post(client: aiohttp.ClientSession, claim: Claim, kind: AttemptKind) -> Sent:
    secret = settings.SANDBOX_NOTIFY_SECRET
    if kind == AttemptKind.PROBE:
        # Like WeChat Pay's SIGNTEST probes: a well-formed header that no merchant secret matches.
        secret = "signtest_" + secrets.token_hex(16)
    headers = {
        "Content-Type": "application/json",
        signature.HEADER: signature.sign(claim.body, secret, int(time.time())),
    }
    sent_at, started = timezone.now(), time.monotonic()
    status_code, error = None, ""
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            # A redirect is an answer (not 2xx: a failure), not a place to send the notification
            # again; the body is read so that the connection can be kept.
            async with client.post(
                claim.url, data=claim.body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
        status_code = response.status
    except TimeoutError:
        error = f"no answer within {TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # whatever went wrong, the attempt failed and will be retried
        error = f"{type(exc).__name__}: {exc}"[:1000]
    duration_ms = round((time.monotonic() - started) * 1000)
    return Sent(kind, sent_at, duration_ms, status_code, error)


async def send(client: aiohttp.ClientSession, claim: Claim) -> list[Sent]:
    """The probe first if due, then the notification and its duplicates all at once."""
    sent = []
    if claim.probe:
        sent.append(await _post(client, claim, AttemptKind.PROBE))
    kinds = [AttemptKind.ORIGINAL] + [AttemptKind.DUPLICATE] * (claim.copies - 1)
    sent += await asyncio.gather(*(_post(client, claim, kind) for kind in kinds))
    return sent


def record(claim: Claim, sent: list[Sent]) -> bool:
    """Store the attempt and what follows from it; True if it was delivered."""
    real = [s for s in sent if s.kind != AttemptKind.PROBE]
    # Every copy must be accepted: a merchant that fails a duplicate gets the retry it asked for.
    failure = next((s for s in real if not s.ok), None)
    shown = failure or real[0]
    now = timezone.now()
    fields: dict[str, object] = {
        "attempts": claim.number,
        "last_status": shown.status_code,
        "last_error": shown.error,
    }
    if failure is None:
        fields |= {"state": DeliveryState.DELIVERED, "delivered_at": now, "next_attempt_at": None}
    elif (delay := retry_delay(claim.number)) is None:
        fields |= {"state": DeliveryState.GAVE_UP, "next_attempt_at": None}
        logger.warning("gave up on %s after %d attempts", claim.notification_id, claim.number)
    else:
        fields["next_attempt_at"] = now + delay
    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(
                notification_id=claim.notification_id,
                number=claim.number,
                kind=s.kind,
                sent_at=s.sent_at,
                duration_ms=s.duration_ms,
                status_code=s.status_code,
                error=s.error,
            )
            for s in sent
        )
        Notification.objects.filter(pk=claim.notification_id).update(**fields)
    return failure is None
