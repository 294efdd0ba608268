"""Reads: nothing here writes."""

from checkout.models import Order, Product


def products_for_sale() -> list[Product]:
    return list(Product.objects.all())


def order_for_owner(*, biz: str, owner: str | None) -> Order | None:
    """The order if `owner` created it; None for anyone else, so strangers learn nothing."""
    if not owner:
        return None
    return Order.objects.select_related("product", "payment").filter(biz=biz, owner=owner).first()


def order_with_payment(*, biz: str) -> Order:
    return Order.objects.select_related("product", "payment").get(biz=biz)
