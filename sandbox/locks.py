"""Every row lock the sandbox takes, in one place; call them inside `transaction.atomic()`.

A decision, a close and an expiry all lock the payment first, so exactly one of them wins and the
loser sees the winner's status. SQLite has no row locks (`select_for_update` does nothing there),
but its IMMEDIATE transactions (see the settings) let one writer at a time in, which serves too.
"""

from datetime import datetime

from django.db.models import QuerySet

from sandbox.models import DeliveryState, Notification, Payment, PaymentStatus


def payment_for_update(payment_id: str) -> Payment:
    """The payment, locked until the transaction ends. Raises Payment.DoesNotExist."""
    return Payment.objects.select_for_update().get(pk=payment_id)


def payments_overdue_for_update(now: datetime, limit: int) -> QuerySet[Payment]:
    """Pending payments past their expiry, skipping those another process is changing."""
    return (
        Payment.objects.select_for_update(skip_locked=True)
        .filter(status=PaymentStatus.PENDING, expire_at__lte=now)
        .order_by("expire_at")[:limit]
    )


def notifications_due_for_update(now: datetime, limit: int) -> QuerySet[Notification]:
    """The ids of up to `limit` notifications due at `now`, soonest first, skipping those another
    deliverer is claiming right now."""
    return (
        Notification.objects.select_for_update(skip_locked=True)
        .filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
