"""The order's row lock reads the order, its product and its payment as the ORM would, in two
queries, and what it attached costs no more."""

import pytest
from django.db import transaction

from checkout import locks
from checkout.models import Order, Payment
from checkout.selectors import order_with_payment
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db


def field_values(instance) -> dict:
    return {
        field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields
    }


@pytest.mark.parametrize("with_payment", [True, False], ids=["payment", "no-payment"])
def test_the_locked_order_equals_the_orms_read_and_needs_no_more_queries(
    with_payment, django_assert_num_queries
):
    order = f.order(status="pending" if with_payment else "unpaid")
    if with_payment:
        Payment.objects.create(
            order=order,
            payment_id=f.payment_id(),
            amount=order.amount,
            currency=order.currency,
            cashier_url="https://pay.example/cashier/1",
        )
    expected = order_with_payment(biz=order.biz)
    with transaction.atomic():
        with django_assert_num_queries(2):  # the locked order with its product; its payment
            locked = locks.order_for_update(order.biz)
            payment = locked.payment_or_none
            product = locked.product
    assert field_values(locked) == field_values(expected)
    assert field_values(product) == field_values(expected.product)
    if with_payment:
        assert field_values(payment) == field_values(expected.payment)
        assert payment.order is locked
    else:
        assert payment is None
    # Saved instances, as the ORM's: a change saves as an UPDATE of that row.
    assert not locked._state.adding and locked._state.db == "default"
    locked.status = "paid"
    with transaction.atomic():
        locked.save_change("status")
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_an_unknown_order_raises_does_not_exist():
    with transaction.atomic(), pytest.raises(Order.DoesNotExist):
        locks.order_for_update("0" * 32)
