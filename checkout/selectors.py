"""Reads: nothing here writes."""

from collections.abc import Iterable

from django.db.models import QuerySet

from checkout import rows
from checkout.models import Order, Product


def products_for_sale() -> list[Product]:
    return list(Product.objects.all())


def order_for_owner(*, biz: str, owner: str | None) -> Order | None:
    """The order if `owner` created it; None for anyone else, so strangers learn nothing."""
    if not owner:
        return None
    return rows.order_read(biz=biz, owner=owner)


def order_with_payment(*, biz: str) -> Order:
    """The order with its product and payment. Raises Order.DoesNotExist."""
    return rows.found(rows.order_read(biz=biz), biz)


def orders_with_payment(bizs: Iterable[str]) -> QuerySet[Order]:
    """The orders of `bizs` with their products and payments, as their panels show them."""
    return Order.objects.filter(biz__in=bizs).select_related("product", "payment")
