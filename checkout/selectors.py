"""Reads: nothing here writes."""

from collections.abc import Iterable

from django.db.models import QuerySet

from checkout.models import Order, Product


def products_for_sale() -> list[Product]:
    return list(Product.objects.all())


def orders_with_payment(bizs: Iterable[str]) -> QuerySet[Order]:
    """The orders of `bizs` with their products and payments, as their panels show them."""
    return Order.objects.filter(biz__in=bizs).select_related("product", "payment")


def order_for_owner(*, biz: str, owner: str | None) -> Order | None:
    """The order if `owner` created it; None for anyone else, so strangers learn nothing."""
    if not owner:
        return None
    return orders_with_payment([biz]).filter(owner=owner).first()


def order_with_payment(*, biz: str) -> Order:
    """The order with its product and payment. Raises Order.DoesNotExist."""
    return orders_with_payment([biz]).get()
