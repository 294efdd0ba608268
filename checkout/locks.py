"""Every row lock the shop takes, in one place (as Saleor's lock_objects.py does).

Call these inside `transaction.atomic()`. All paths that change an order lock its row first, so a
notification, a query result, an expiry and the shopper's own Pay are applied one at a time.
"""

from datetime import datetime

from django.db.models import QuerySet

from checkout.models import Order
from checkout.selectors import unsettled


def order_for_update(biz: str) -> Order:
    """The order with its product, locked until the transaction ends. Raises Order.DoesNotExist.

    Its payment is read on first use, after the lock is granted: joined to the locking query it
    would come from the snapshot taken before the wait, and miss a payment the previous holder of
    the lock created.
    """
    return Order.objects.select_for_update(of=("self",)).select_related("product").get(biz=biz)


def orders_due_for_reconcile(now: datetime, limit: int) -> QuerySet[Order]:
    """Unsettled orders due for a look, skipping those another reconciler holds right now."""
    return (
        Order.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("payment")
        .filter(unsettled(), reconcile_after__lte=now)
        .order_by("reconcile_after")[:limit]
    )
