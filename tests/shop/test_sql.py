"""`shop.sql` writes the rows the ORM's `save()` would, in one statement each."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Min
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checkout.models import Notification, Order, Payment
from shop import sql
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db


def stored(instance) -> dict:
    """The row as the ORM reads it back."""
    fresh = type(instance).objects.get(pk=instance.pk)
    return {field.attname: getattr(fresh, field.attname) for field in fresh._meta.concrete_fields}


PROCESSED_AT = timezone.now()


def notification() -> Notification:
    return Notification(
        gateway="sandbox",
        remote_addr="127.0.0.1",
        headers={"Content-Type": "application/json", "Sandbox-Signature": "t=1,v1=ab"},
        body=b'{"id":"evt_1"}\x00\xff',
        event_id="evt_1",
        biz="b" * 32,
        verdict=Notification.Verdict.ACCEPTED,
        outcome="paid",
        processed_at=PROCESSED_AT,
    )


def test_an_insert_stores_the_row_the_orm_would_in_one_statement():
    ours, orms = notification(), notification()
    orms.save(force_insert=True)
    with CaptureQueriesContext(connection) as queries:
        sql.insert(ours)
    assert len(queries) == 1
    assert ours.pk is not None and ours.pk != orms.pk
    assert not ours._state.adding  # a later save() updates this row
    ours_row, orms_row = stored(ours), stored(orms)
    for row in (ours_row, orms_row):
        del row["id"]
        row["received_at"] = bool(row["received_at"])  # auto_now_add stamped, at its own time
        row["body"] = bytes(row["body"])
    assert ours_row == orms_row
    assert ours_row["body"] == b'{"id":"evt_1"}\x00\xff'  # bytes and JSON as the ORM stores them
    assert ours_row["headers"]["Sandbox-Signature"] == "t=1,v1=ab"


def test_an_insert_keeps_a_foreign_key_and_sets_the_auto_now_stamps():
    order = f.order()
    payment = Payment(order=order, payment_id="pay_1", amount=order.amount, currency="CNY")
    sql.insert(payment)
    row = stored(payment)
    assert row["order_id"] == order.pk
    assert row["created_at"] == payment.created_at and row["updated_at"] == payment.updated_at
    assert Order.objects.get(pk=order.pk).payment == payment


def test_an_update_writes_the_named_fields_only_and_stamps_auto_now():
    order = f.order(status="unpaid")
    before = stored(order)
    order.status, order.paid_at = "paid", timezone.now()
    order.amount = 1  # not named: not written
    with CaptureQueriesContext(connection) as queries:
        sql.update(order, "status", "paid_at", "updated_at")
    assert len(queries) == 1
    after = stored(order)
    assert after["status"] == "paid" and after["paid_at"] == order.paid_at
    assert after["amount"] == before["amount"]
    assert after["updated_at"] == order.updated_at > before["updated_at"]
    assert {k: v for k, v in after.items() if k not in ("status", "paid_at", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("status", "paid_at", "updated_at")
    }


def test_an_update_of_a_missing_row_fails_and_changes_nothing():
    order = f.order()
    ghost = Order.objects.get(pk=order.pk)
    ghost.pk = order.pk + 1000
    ghost.expires_at = timezone.now() + timedelta(days=1)
    with pytest.raises(DatabaseError, match="no row to update"):
        sql.update(ghost, "expires_at")
    assert stored(order)["expires_at"] == order.expires_at


def test_a_get_reads_the_row_the_orm_reads_or_raises_as_it_does():
    order = f.order()
    assert stored(sql.get(Order, order.pk)) == stored(order)
    assert (
        sql.get(Order, order.pk).__dict__.keys() == Order.objects.get(pk=order.pk).__dict__.keys()
    )
    with pytest.raises(Order.DoesNotExist):
        sql.get(Order, order.pk + 1000)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres")
def test_a_locked_get_holds_the_row_until_the_transaction_ends():
    order = f.order()

    def try_lock() -> str:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM checkout_order WHERE id = %s FOR UPDATE NOWAIT", [order.pk]
                )
            return "got it"
        except OperationalError:
            return "locked"
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as other:
        with transaction.atomic():
            assert sql.get(Order, order.pk, lock=True).biz == order.biz
            assert other.submit(try_lock).result() == "locked"
        assert other.submit(try_lock).result() == "got it"


def test_a_minimum_is_the_orms_aggregate_converted_as_it_converts():
    earliest = PROCESSED_AT - timedelta(minutes=5)
    for verdict, at in [
        (Notification.Verdict.ACCEPTED, PROCESSED_AT),
        (Notification.Verdict.ACCEPTED, earliest),
        (Notification.Verdict.BAD_SIGNATURE, earliest - timedelta(minutes=1)),
    ]:
        record = notification()
        record.verdict, record.processed_at = verdict, at
        sql.insert(record)
    accepted = Notification.objects.filter(verdict=Notification.Verdict.ACCEPTED)
    expected = accepted.aggregate(t=Min("processed_at"))["t"]
    found = sql.minimum(Notification, "processed_at", verdict=Notification.Verdict.ACCEPTED)
    assert found == expected == earliest and found.tzinfo is not None
    assert sql.minimum(Notification, "processed_at", verdict="unknown_order") is None
    assert sql.minimum(Notification, "processed_at") == earliest - timedelta(minutes=1)
