"""An order read by `checkout.rows` equals the ORM's read of it, costs one query (two under the row
lock), and its product and payment come with it."""

import pytest
from django.db import transaction

from checkout import locks, rows
from checkout.gateways.base import GatewayPayment
from checkout.models import Order, PaymentStatus
from checkout.services.payments import payment_record
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db


def field_values(instance) -> dict:
    return {
        field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields
    }


def saved_order(with_payment: bool) -> Order:
    order = f.order(status="pending" if with_payment else "unpaid")
    if with_payment:
        f.payment(order, cashier_url="https://pay.example/cashier/1")
    return order


# Each read, and the queries it makes: the order with its product and payment; under the row lock,
# the locked order with its product, then its payment.
READS = {
    "by biz": (lambda order: rows.order_read(biz=order.biz), 1),
    "by owner": (lambda order: rows.order_read(biz=order.biz, owner=order.owner), 1),
    "locked": (lambda order: locks.order_for_update(order.biz), 2),
}


@pytest.mark.parametrize("read", READS)
@pytest.mark.parametrize("with_payment", [True, False], ids=["payment", "no-payment"])
def test_a_read_equals_the_orms_and_brings_product_and_payment(
    read, with_payment, django_assert_num_queries
):
    order = saved_order(with_payment)
    expected = Order.objects.select_related("product", "payment").get(pk=order.pk)
    function, queries = READS[read]
    with transaction.atomic(), django_assert_num_queries(queries):
        got = function(order)
        payment, product = got.payment_or_none, got.product
    assert field_values(got) == field_values(expected)
    assert field_values(product) == field_values(expected.product)
    if with_payment:
        assert field_values(payment) == field_values(expected.payment)
        assert payment.order is got
    else:
        assert payment is None
    # Saved instances, as the ORM's: a change saves as an UPDATE of that row.
    assert not got._state.adding and got._state.db == "default"
    got.status = "paid"
    with transaction.atomic():
        got.save_change("status")
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_another_owner_or_an_unknown_order_reads_none():
    order = saved_order(with_payment=True)
    assert rows.order_read(biz=order.biz, owner="someone else") is None
    assert rows.order_read(biz="0" * 32) is None
    with transaction.atomic(), pytest.raises(Order.DoesNotExist):
        locks.order_for_update("0" * 32)


@pytest.mark.parametrize("started", [False, True], ids=["new-payment", "payment-started-before"])
def test_pay_records_and_answers_with_the_payment_attached(started, django_assert_num_queries):
    """payment_record returns the order the Pay answer renders: its payment, created or read by
    the lock, comes with it, and reading it costs no query."""
    order = f.order()
    existing = f.payment(order) if started else None
    reported = GatewayPayment(
        payment_id=existing.payment_id if existing else f.payment_id(),
        biz=order.biz,
        status=PaymentStatus.PENDING,
        amount=order.amount,
        currency=order.currency,
        cashier_url="https://pay.example/cashier/2",
    )
    recorded, changed = payment_record(payment=reported)
    assert changed
    with django_assert_num_queries(0):
        payment = recorded.payment_or_none
    assert payment.payment_id == reported.payment_id and payment.order is recorded
    assert payment.cashier_url == reported.cashier_url  # kept, or filled in where it was empty
