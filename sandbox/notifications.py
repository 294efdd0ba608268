"""Enqueueing a notification (contract section 4) in the transaction that changes the payment.

Writing it in the same transaction as the status change means a committed change always has its
notification, and a rolled-back one never does; the delivery loop (`sandbox.delivery`, run by the
`sandbox_deliver` command) finds it at its next poll and sends it.
"""

import json
import random
from datetime import timedelta

from django.utils import timezone

from sandbox.knobs import knobs_current
from sandbox.models import DeliveryState, Notification, NotificationType, Payment, new_event_id

TYPES = {
    "succeeded": NotificationType.SUCCEEDED,
    "failed": NotificationType.FAILED,
    "closed": NotificationType.CLOSED,
}


def notification_body(*, event_id: str, payment: Payment, created: int) -> bytes:
    body = {
        "id": event_id,
        "type": TYPES[payment.status].value,
        "created": created,
        "data": {
            "payment_id": payment.id,
            "out_trade_no": payment.out_trade_no,
            "amount": payment.amount,
            "currency": payment.currency,
            "status": payment.status,
        },
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def notification_enqueue(*, payment: Payment) -> Notification:
    """The notification of the payment's new (final) status. Call inside its transaction."""
    knobs = knobs_current()
    now = timezone.now()
    event_id = new_event_id()
    hold_ms = knobs.delay_ms + (random.randint(0, knobs.reorder_ms) if knobs.reorder_ms else 0)
    return Notification.objects.create(
        id=event_id,
        payment=payment,
        type=TYPES[payment.status],
        body=notification_body(event_id=event_id, payment=payment, created=int(now.timestamp())),
        url=payment.notify_url,
        created=now,
        state=DeliveryState.DROPPED if knobs.drop else DeliveryState.PENDING,
        copies=1 + knobs.duplicate,
        probe=knobs.bad_signature_probes,
        next_attempt_at=None if knobs.drop else now + timedelta(milliseconds=hold_ms),
    )
