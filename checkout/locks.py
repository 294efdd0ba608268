"""Every row lock the shop takes, in one place (as Saleor's lock_objects.py does).

Call these inside `transaction.atomic()`. All paths that change an order lock its row first, so a
notification, a query result, an expiry and the shopper's own Pay request are applied one at a time.
"""

from django.db.models import QuerySet

from checkout.models import Order


def order_for_update(biz: str) -> Order:
    """The order, locked until the transaction ends. Raises Order.DoesNotExist."""
    return Order.objects.select_for_update().get(biz=biz)


def orders_due_for_reconcile(now, limit: int) -> QuerySet[Order]:
    """Waiting orders due for a look, skipping those another reconciler holds right now."""
    from checkout.states import WAITING

    return (
        Order.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("payment")
        .filter(status__in=WAITING, reconcile_after__lte=now)
        .order_by("reconcile_after")[:limit]
    )
