"""Every row lock the shop takes, in one place (as Saleor's lock_objects.py does).

Call these inside `transaction.atomic()`. All paths that change an order lock its row first, so a
notification, a query result, an expiry and the shopper's own Pay request are applied one at a time.
"""

from functools import cache

from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.db.models.expressions import Col

from checkout.models import Order, OrderStatus, Payment, PaymentStatus, Product


def order_for_update(biz: str) -> Order:
    """The order, locked until the transaction ends, with its product and its payment (or none)
    attached. Raises Order.DoesNotExist.

    Every notification and every Pay starts here, so the two reads are written in SQL once
    (`_order_sql`, `_payment_sql`, from the models' own tables and columns) rather than compiled
    by the ORM on each call: it cost about four times as much CPU (bench/profile_notes.md).

    The product comes in the lock's query and is not locked (a product is never created under an
    order's lock). The payment is read after the lock is granted: joined to the lock's query it
    would come from the statement's snapshot, taken before the lock, and miss a payment created by
    the lock's previous holder.
    """
    with connection.cursor() as cursor:
        cursor.execute(_order_sql(), [biz])
        row = cursor.fetchone()
        if row is None:
            raise Order.DoesNotExist(f"no order {biz}")
        cursor.execute(_payment_sql(), [row[0]])
        payment_row = cursor.fetchone()
    order_width = len(Order._meta.concrete_fields)
    order = _from_row(Order, row[:order_width])
    order.product = _from_row(Product, row[order_width:])
    if payment_row is None:
        Order.payment.related.set_cached_value(order, None)  # payment_or_none: None, no query
    else:
        order.payment = _from_row(Payment, payment_row)
    return order


def _columns(model: type[Model], table: str) -> str:
    return ", ".join(
        f"{table}.{connection.ops.quote_name(f.column)}" for f in model._meta.concrete_fields
    )


def _from_row(model: type[Model], row: tuple) -> Model:
    """An instance from one row of `_columns(model)`, its values converted as the ORM's would be."""
    values = list(row)
    for index, column, converters in _converters(model):
        for converter in converters:
            values[index] = converter(values[index], column, connection)
    return model.from_db(connection.alias, None, values)


@cache
def _converters(model: type[Model]) -> list[tuple[int, Col, list]]:
    """The database's converters for each column that has any (on PostgreSQL, none here)."""
    found = []
    for index, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((index, column, converters))
    return found


@cache
def _order_sql() -> str:
    quote = connection.ops.quote_name
    orders, products = quote(Order._meta.db_table), quote(Product._meta.db_table)
    lock = (
        connection.ops.for_update_sql(of=(orders,))
        if connection.features.has_select_for_update
        else ""
    )
    return (
        f"SELECT {_columns(Order, orders)}, {_columns(Product, products)}"
        f" FROM {orders} JOIN {products}"
        f" ON {products}.{quote(Product._meta.pk.column)} = {orders}.{quote(Order.product.field.column)}"
        f" WHERE {orders}.{quote(Order.biz.field.column)} = %s {lock}"
    )


@cache
def _payment_sql() -> str:
    quote = connection.ops.quote_name
    payments = quote(Payment._meta.db_table)
    return (
        f"SELECT {_columns(Payment, payments)} FROM {payments}"
        f" WHERE {payments}.{quote(Payment.order.field.column)} = %s"
    )


def orders_due_for_reconcile(now, limit: int) -> QuerySet[Order]:
    """Orders due for a look, skipping those another reconciler holds right now.

    Waiting orders, and expired ones whose payment we still know as pending (a Pay that was in
    flight when the order expired): until that payment is final, a success could still come.
    """
    from checkout.states import WAITING

    unsettled = Q(status__in=WAITING) | Q(
        status=OrderStatus.EXPIRED, payment__status=PaymentStatus.PENDING
    )
    return (
        Order.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("payment")
        .filter(unsettled, reconcile_after__lte=now)
        .order_by("reconcile_after")[:limit]
    )
