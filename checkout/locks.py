"""Every row lock the shop takes, in one place (as Saleor's lock_objects.py does).

Call these inside `transaction.atomic()`. All paths that change an order lock its row first, so a
notification, a query result, an expiry and the shopper's own Pay request are applied one at a time.
"""

from django.db.models import Q, QuerySet

from checkout import rows
from checkout.models import Order, OrderStatus, PaymentStatus


def order_for_update(biz: str) -> Order:
    """The order, locked until the transaction ends, with its product and its payment (or none)
    attached (`checkout.rows`). Raises Order.DoesNotExist."""
    return rows.found(rows.order_locked(biz), biz)


def orders_due_for_reconcile(now, limit: int) -> QuerySet[Order]:
    """Orders due for a look, skipping those another reconciler holds right now.

    Waiting orders, and expired ones whose payment we still know as pending (a Pay that was in
    flight when the order expired): until that payment is final, a success could still come.
    """
    from checkout.states import WAITING

    unsettled = Q(status__in=WAITING) | Q(
        status=OrderStatus.EXPIRED, payment__status=PaymentStatus.PENDING
    )
    return (
        Order.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("payment")
        .filter(unsettled, reconcile_after__lte=now)
        .order_by("reconcile_after")[:limit]
    )
