"""An order with its product and its payment, read in SQL built once (`shop.sql`).

Every notification, Pay, order page and socket handshake reads an order so. Compiled by the ORM on
each call, the same reads cost about four times the CPU (bench/profile_notes.md, "The order's
reads, and request threads kept"). The instances are the ORM's own: they save, compare and follow
relations as any other, and `payment_or_none` needs no query.
"""

from functools import cache

from django.db import connection

from checkout.models import Order, Payment, Product
from shop import sql

ORDER_WIDTH = len(Order._meta.concrete_fields)
PRODUCT_WIDTH = len(Product._meta.concrete_fields)


def order_read(*, biz: str, owner: str | None = None) -> Order | None:
    """The order `biz`, if it exists (and `owner` created it, when given), in one query."""
    params = [biz] if owner is None else [biz, owner]
    with connection.cursor() as cursor:
        cursor.execute(_order_sql(lock=False, by_owner=owner is not None), params)
        row = cursor.fetchone()
    if row is None:
        return None
    payment_row = row[ORDER_WIDTH + PRODUCT_WIDTH :]
    return _order(row, None if payment_row[0] is None else payment_row)


def order_locked(biz: str) -> Order | None:
    """The order `biz`, if it exists, locked until the transaction ends; two queries.

    Only the order's row is locked, not its product (never created under an order's lock). The
    payment is read after the lock is granted: joined to the lock's query it would come from the
    statement's snapshot, taken before the lock, and miss a payment created by the lock's previous
    holder.
    """
    with connection.cursor() as cursor:
        cursor.execute(_order_sql(lock=True, by_owner=False), [biz])
        row = cursor.fetchone()
        if row is None:
            return None
        cursor.execute(_payment_sql(), [row[0]])
        payment_row = cursor.fetchone()
    return _order(row, payment_row)


def found(order: Order | None, biz: str) -> Order:
    """`order`, read by one of the functions above; Order.DoesNotExist if there was none."""
    if order is None:
        raise Order.DoesNotExist(f"no order {biz}")
    return order


def _order(row: tuple, payment_row: tuple | None) -> Order:
    order = sql.from_row(Order, row[:ORDER_WIDTH])
    order.product = sql.from_row(Product, row[ORDER_WIDTH : ORDER_WIDTH + PRODUCT_WIDTH])
    if payment_row is None:
        Order.payment.related.set_cached_value(order, None)  # payment_or_none: None, no query
    else:
        order.payment = sql.from_row(Payment, payment_row)
    return order


@cache
def _order_sql(*, lock: bool, by_owner: bool) -> str:
    """One order by its biz (and owner), with its product, and with its payment unless locked."""
    selected = [sql.columns(Order), sql.columns(Product)]
    product_of = f"{sql.column(Product, 'id')} = {sql.column(Order, 'product')}"
    joins = [f"JOIN {sql.table(Product)} ON {product_of}"]
    if not lock:
        selected.append(sql.columns(Payment))
        payment_of = f"{sql.column(Payment, 'order')} = {sql.column(Order, 'id')}"
        joins.append(f"LEFT JOIN {sql.table(Payment)} ON {payment_of}")
    where = [f"{sql.column(Order, 'biz')} = %s"]
    if by_owner:
        where.append(f"{sql.column(Order, 'owner')} = %s")
    statement = (
        f"SELECT {', '.join(selected)} FROM {sql.table(Order)} {' '.join(joins)}"
        f" WHERE {' AND '.join(where)}"
    )
    if lock and connection.features.has_select_for_update:
        statement += " " + connection.ops.for_update_sql(of=(sql.table(Order),))
    return statement


@cache
def _payment_sql() -> str:
    where = f"{sql.column(Payment, 'order')} = %s"
    return f"SELECT {sql.columns(Payment)} FROM {sql.table(Payment)} WHERE {where}"
