"""An order with its product and its payment, read in SQL written once from the models.

Every notification, Pay, order page and socket handshake reads an order so. Compiled by the ORM on
each call, the same reads cost about four times the CPU (bench/profile_notes.md, "The order's
reads, and request threads kept"); here each statement is built once from the models' tables and
columns. The instances are the ORM's own (`Model.from_db`, each value through the database's
converters): they save, compare and follow relations as any other, and `payment_or_none` needs
no query.
"""

from functools import cache

from django.db import connection
from django.db.models import Model
from django.db.models.expressions import Col

from checkout.models import Order, Payment, Product

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


def _order(row: tuple, payment_row: tuple | None) -> Order:
    order = _from_row(Order, row[:ORDER_WIDTH])
    order.product = _from_row(Product, row[ORDER_WIDTH : ORDER_WIDTH + PRODUCT_WIDTH])
    if payment_row is None:
        Order.payment.related.set_cached_value(order, None)  # payment_or_none: None, no query
    else:
        order.payment = _from_row(Payment, payment_row)
    return order


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


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _column(model: type[Model], field: str) -> str:
    return f"{_table(model)}.{connection.ops.quote_name(model._meta.get_field(field).column)}"


def _columns(model: type[Model]) -> str:
    return ", ".join(_column(model, field.name) for field in model._meta.concrete_fields)


@cache
def _order_sql(*, lock: bool, by_owner: bool) -> str:
    """One order by its biz (and owner), with its product, and with its payment unless locked."""
    columns = [_columns(Order), _columns(Product)]
    joins = [f"JOIN {_table(Product)} ON {_column(Product, 'id')} = {_column(Order, 'product')}"]
    if not lock:
        columns.append(_columns(Payment))
        joins.append(
            f"LEFT JOIN {_table(Payment)} ON {_column(Payment, 'order')} = {_column(Order, 'id')}"
        )
    where = [f"{_column(Order, 'biz')} = %s"]
    if by_owner:
        where.append(f"{_column(Order, 'owner')} = %s")
    sql = (
        f"SELECT {', '.join(columns)} FROM {_table(Order)} {' '.join(joins)}"
        f" WHERE {' AND '.join(where)}"
    )
    if lock and connection.features.has_select_for_update:
        sql += " " + connection.ops.for_update_sql(of=(_table(Order),))
    return sql


@cache
def _payment_sql() -> str:
    return (
        f"SELECT {_columns(Payment)} FROM {_table(Payment)} WHERE {_column(Payment, 'order')} = %s"
    )
