"""Reads: nothing here writes."""

from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Q, QuerySet

from checkout.models import Order, OrderStatus, Payment, PaymentStatus, Product


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


def unsettled() -> Q:
    """Orders the payment system may still change: waiting ones, and any with a payment we still
    know as pending (a Pay in flight when the order expired, a provider the shopper switched from,
    the current payment of an order another one paid), since until it is final a success could
    still come."""
    waiting = Q(status__in=[OrderStatus.UNPAID, OrderStatus.PENDING])
    pending = Payment.objects.filter(order=OuterRef("pk"), status=PaymentStatus.PENDING)
    return waiting | Q(Exists(pending))


def order_is_unsettled(*, biz: str) -> bool:
    return Order.objects.filter(unsettled(), biz=biz).exists()


def order_with_payment(*, biz: str) -> Order:
    """The order with its product and payment. Raises Order.DoesNotExist."""
    return orders_with_payment([biz]).get()
