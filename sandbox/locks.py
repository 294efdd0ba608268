"""Every row lock the sandbox takes, in one place. Call the payments' inside
`transaction.atomic()`; the notifications' claim is one statement, a transaction of its own.

A decision, a close and an expiry all lock the payment first, so exactly one of them wins and the
loser sees the winner's status. On SQLite `select_for_update` is a no-op; it runs a single process
and its IMMEDIATE transactions serialise writers anyway.
"""

from datetime import datetime
from functools import cache

from django.db import connection
from django.db.models import QuerySet

from sandbox.models import DeliveryState, Notification, Payment, PaymentStatus
from shop import sql


def payment_for_update(payment_id: str) -> Payment:
    """The payment, locked until the transaction ends. Raises Payment.DoesNotExist."""
    return sql.get(Payment, payment_id, lock=True)


def payments_overdue_for_update(now: datetime, limit: int) -> QuerySet[Payment]:
    """Pending payments past their expiry, skipping those another process is changing."""
    return (
        Payment.objects.select_for_update(skip_locked=True)
        .filter(status=PaymentStatus.PENDING, expire_at__lte=now)
        .order_by("expire_at")[:limit]
    )


def notifications_claim(now: datetime, lease_until: datetime, limit: int) -> list[Notification]:
    """Claim up to `limit` notifications due at `now`, the soonest first, skipping those another
    process is claiming right now: each one's next attempt moves to `lease_until`. One statement
    (the claim runs once per notification enqueued); the notifications come with CLAIMED's fields
    only."""
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), [lease_until, DeliveryState.PENDING, now, limit])
        rows = cursor.fetchall()
    return [Notification.from_db(connection.alias, CLAIMED, row) for row in rows]


CLAIMED = {"id", "url", "body", "copies", "probe", "attempts"}  # what an attempt needs


@cache
def _claim_sql() -> str:
    def name(field: str) -> str:
        return sql.name(Notification, field)

    # In the model's order of fields, as `Model.from_db` takes the values of some.
    returned = [f.name for f in Notification._meta.concrete_fields if f.name in CLAIMED]

    due = (
        f"SELECT {name('id')} FROM {sql.table(Notification)}"
        f" WHERE {name('state')} = %s AND {name('next_attempt_at')} <= %s"
        f" ORDER BY {name('next_attempt_at')} LIMIT %s"
    )
    if connection.features.has_select_for_update_skip_locked:
        due += " " + connection.ops.for_update_sql(skip_locked=True)
    return (
        f"UPDATE {sql.table(Notification)} SET {name('next_attempt_at')} = %s"
        f" WHERE {name('id')} IN ({due}) RETURNING {', '.join(map(name, returned))}"
    )
