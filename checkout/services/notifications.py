"""Receiving a notification: store it, verify it, apply it, and say what the answer is."""

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.utils import timezone

from checkout.gateways import get_gateway
from checkout.gateways.base import NoticeRejected
from checkout.metrics import NOTIFICATIONS
from checkout.models import Notification
from checkout.services.results import result_receive

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# What a refused request keeps of its body: enough to see what was sent, and bounded, since anyone
# can send one as often as they like. A verified notification keeps all of it.
REFUSED_BODY_BYTES = 1024
# Headers worth keeping with the raw body: enough to re-verify and trace, nothing secret. The
# payment system's are short; a longer value is cut, as a refused body is.
KEPT_HEADERS = (
    "Content-Type",
    "Content-Length",
    "User-Agent",
    "Sandbox-Signature",
    "Stripe-Signature",
    "Wechatpay-Signature",
    "Wechatpay-Signature-Type",
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Serial",
)
KEPT_HEADER_CHARS = 1024
REMOTE_ADDR_CHARS = Notification._meta.get_field("remote_addr").max_length


@dataclass(frozen=True)
class Receipt:
    http_status: int
    verdict: str
    outcome: str = ""


async def notification_receive(
    *, gateway_name: str, headers: Mapping[str, str], body: bytes, remote_addr: str
) -> Receipt:
    """Handle one request to the notification endpoint.

    Every request is stored, forgeries and failures too, with its length and hash; its whole body
    only once it is verified (see REFUSED_BODY_BYTES). An accepted one is stored in the
    transaction that applies it; one that could not be applied is stored with the error after its
    transaction rolled back, and the caller answers 500 so that the payment system delivers it
    again.
    """
    started = time.perf_counter()
    record = Notification(
        gateway=gateway_name,
        remote_addr=_storable(remote_addr, REMOTE_ADDR_CHARS),
        headers={
            name: _storable(headers[name], KEPT_HEADER_CHARS)
            for name in KEPT_HEADERS
            if name in headers
        },
        body=body[:REFUSED_BODY_BYTES],
        body_length=len(body),
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    try:
        if len(body) > MAX_BODY_BYTES:
            raise NoticeRejected(Notification.Verdict.TOO_LARGE, f"body of {len(body)} bytes")
        notice = get_gateway(gateway_name).verify_notice(headers=headers, body=body)
    except NoticeRejected as rejected:
        record.verdict, record.detail = rejected.verdict, rejected.detail
        record.processed_at = timezone.now()
        await database_sync_to_async(record.save)()
        receipt = Receipt(400, rejected.verdict)
    else:
        record.body = body  # genuine: kept whole, to be verified again and traced
        record.event_id, record.biz = notice.event_id, notice.payment.biz
        record.payment_id = notice.payment.payment_id
        try:
            applied = await result_receive(
                biz=notice.payment.biz,
                payment=notice.payment,
                provider=gateway_name,
                notification=record,
            )
        except Exception as error:
            # Not applied: answer 500 so the payment system delivers it again.
            logger.exception("notification event=%s could not be applied", record.event_id)
            await database_sync_to_async(_record_failure)(record, error)
            receipt = Receipt(500, Notification.Verdict.RECEIVED, "error")
        else:
            # An unknown order is answered 200 too: a retry cannot make it known; it is on record.
            receipt = Receipt(200, record.verdict, applied.outcome)  # accepted, or unknown_order
    NOTIFICATIONS.labels(
        provider=gateway_name, verdict=receipt.verdict, outcome=receipt.outcome or "none"
    ).inc()
    logger.info(
        "notification provider=%s id=%s event=%s biz=%s verdict=%s outcome=%s ms=%.1f",
        gateway_name,
        record.pk or "-",
        record.event_id or "-",
        record.biz or "-",
        receipt.verdict,
        receipt.outcome or "-",
        (time.perf_counter() - started) * 1000,
    )
    return receipt


def _storable(text: str, limit: int) -> str:
    """`text` as its column can hold it: PostgreSQL's text and jsonb refuse NUL, and a client
    address comes from a proxy's header (daphne's `--proxy-headers`), of any length."""
    return text[:limit].replace("\x00", "\N{REPLACEMENT CHARACTER}")


def _record_failure(record: Notification, error: Exception) -> None:
    """Store a notification whose result could not be applied (its transaction rolled back)."""
    record.pk = None  # whatever the rolled-back transaction assigned was never committed
    record.verdict = Notification.Verdict.RECEIVED
    record.outcome, record.detail = "error", f"{type(error).__name__}: {error}"
    record.processed_at = None
    try:
        record.save(force_insert=True)
    except Exception:
        logger.exception("notification event=%s: the failure could not be stored", record.event_id)
