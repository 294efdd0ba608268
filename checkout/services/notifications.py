"""Receiving a notification: store it, verify it, apply it, and say what the answer is."""

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.utils import timezone

from checkout.gateways import get_gateway
from checkout.gateways.base import NoticeRejected
from checkout.metrics import NOTIFICATIONS
from checkout.models import Notification
from checkout.services.results import result_receive

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# Headers worth keeping with the raw body: enough to re-verify and trace, nothing secret.
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "Sandbox-Signature")


@dataclass(frozen=True)
class Receipt:
    http_status: int
    verdict: str
    outcome: str = ""


async def notification_receive(
    *, gateway_name: str, headers: Mapping[str, str], body: bytes, remote_addr: str
) -> Receipt:
    """Handle one request to the notification endpoint.

    The request is stored before anything else, so forgeries and failures are on record too. An
    error after that propagates: the caller answers 500 and the payment system retries.
    """
    started = time.perf_counter()
    event_id = biz = ""
    too_large = len(body) > MAX_BODY_BYTES
    record = await Notification.objects.acreate(
        gateway=gateway_name,
        remote_addr=remote_addr,
        headers={name: headers[name] for name in KEPT_HEADERS if name in headers},
        body=body[:MAX_BODY_BYTES],
    )
    try:
        if too_large:
            raise NoticeRejected(Notification.Verdict.TOO_LARGE, f"body of {len(body)} bytes")
        notice = get_gateway(gateway_name).verify_notice(headers=headers, body=body)
    except NoticeRejected as rejected:
        await Notification.objects.filter(pk=record.pk).aupdate(
            verdict=rejected.verdict, detail=rejected.detail, processed_at=timezone.now()
        )
        receipt = Receipt(400, rejected.verdict)
    else:
        event_id, biz = notice.event_id, notice.payment.biz
        await Notification.objects.filter(pk=record.pk).aupdate(
            event_id=event_id, biz=biz, payment_id=notice.payment.payment_id
        )
        try:
            applied = await result_receive(
                biz=notice.payment.biz, payment=notice.payment, notification_id=record.pk
            )
        except Exception as error:
            # Not applied: answer 500 so the payment system delivers it again.
            logger.exception("notification id=%s could not be applied", record.pk)
            await _record_failure(record.pk, error)
            receipt = Receipt(500, Notification.Verdict.RECEIVED, "error")
        else:
            # An unknown order is answered 200 too: a retry cannot make it known; it is on record.
            receipt = Receipt(200, Notification.Verdict.ACCEPTED, applied.outcome)
    NOTIFICATIONS.labels(verdict=receipt.verdict, outcome=receipt.outcome or "none").inc()
    logger.info(
        "notification id=%s event=%s biz=%s verdict=%s outcome=%s ms=%.1f",
        record.pk,
        event_id or "-",
        biz or "-",
        receipt.verdict,
        receipt.outcome or "-",
        (time.perf_counter() - started) * 1000,
    )
    return receipt


async def _record_failure(pk: int, error: Exception) -> None:
    try:
        await Notification.objects.filter(pk=pk).aupdate(
            outcome="error", detail=f"{type(error).__name__}: {error}"
        )
    except Exception:
        logger.exception("notification id=%s: the failure could not be recorded either", pk)
