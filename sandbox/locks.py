"""Every row lock the sandbox takes, in one place. Call these inside `transaction.atomic()`.

A decision, a close and an expiry all lock the payment first, so exactly one of them wins and the
loser sees the winner's status. On SQLite `select_for_update` is a no-op; it runs a single process
and its IMMEDIATE transactions serialise writers anyway.
"""

from datetime import datetime

from django.db.models import QuerySet

from sandbox.models import DeliveryState, Notification, Payment, PaymentStatus
from shop import sql


def payment_for_update(payment_id: str) -> Payment:
    """The payment, locked until the transaction ends. Raises Payment.DoesNotExist."""
    payment = sql.get(Payment, payment_id, lock=True)
    if payment is None:
        raise Payment.DoesNotExist(payment_id)
    return payment


def payments_overdue_for_update(now: datetime, limit: int) -> QuerySet[Payment]:
    """Pending payments past their expiry, skipping those another process is changing."""
    return (
        Payment.objects.select_for_update(skip_locked=True)
        .filter(status=PaymentStatus.PENDING, expire_at__lte=now)
        .order_by("expire_at")[:limit]
    )


def notifications_due_for_update(now: datetime, limit: int) -> QuerySet[Notification]:
    """Notifications due for an attempt, skipping those another process is claiming right now."""
    return (
        Notification.objects.select_for_update(skip_locked=True)
        .filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")[:limit]
    )
