from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from checkout.models import Order, Product


def order_create(*, product: Product, owner: str) -> Order:
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.ORDER_PAYMENT_TTL)
    return Order.objects.create(
        product=product,
        amount=product.price,
        currency=product.currency,
        owner=owner,
        expires_at=expires_at,
        # An order nobody pays for needs the reconciler only when its time is up.
        reconcile_after=expires_at,
    )
