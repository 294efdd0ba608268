from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from checkout.models import Order, Product


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
