from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from checkout.models import Order, Payment, PaymentStatus, Product


def order_fields(*, product: Product, owner: str, now=None) -> dict:
    """What a new order of `product` for `owner` starts with (its price, and when its time is up)."""
    expires_at = (now or timezone.now()) + timedelta(seconds=settings.ORDER_PAYMENT_TTL)
    return {
        "product": product,
        "amount": product.price,
        "currency": product.currency,
        "owner": owner,
        "expires_at": expires_at,
        # An order nobody pays for needs the reconciler only when its time is up.
        "reconcile_after": expires_at,
    }


def order_create(*, product: Product, owner: str) -> Order:
    return Order.objects.create(**order_fields(product=product, owner=owner))


def order_provider_choose(*, biz: str, provider: str, after_close: bool) -> int | None:
    """Record the provider the shopper pressed Pay for, before it is called (the reconciler asks
    it about a payment whose answer was lost); returns how many payments of that provider the
    order had before (closed when the shopper switched away), or None, recording nothing, when
    one of them was closed and the provider starts no payment `after_close` for the same order."""
    statuses = list(
        Payment.objects.filter(order__biz=biz, gateway=provider).values_list("status", flat=True)
    )
    if not after_close and PaymentStatus.CLOSED in statuses:
        return None
    Order.objects.filter(biz=biz).exclude(provider=provider).update(provider=provider)
    return len(statuses)
