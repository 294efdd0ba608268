"""SQL built once from the models, for the rows that every notification, Pay and payment touches.

Django's ORM compiles each statement again on every call; for the few statements on those paths
that costs more than the rest of their work (bench/profile_notes.md: a row's `save()` about 0.22
ms of CPU here against 0.08-0.12 ms for the same statement built once; an order's read about four
times its cost). Here a statement is built once per model and fields, from the models' own tables
and columns, and what goes in or comes out passes through the ORM's own field methods, so the
rows are the ones the ORM would write and read.

`insert` and `update` write what `save(force_insert=True)` and `save(update_fields=...)` would:
each field's `pre_save` (auto_now stamps) and `get_db_prep_save` (JSON, bytes, time zones). What
they leave out: model signals (the project connects none) and `save()`'s own hooks (none
overridden on the models written here).
"""

from functools import cache

from django.db import DatabaseError, connection
from django.db.models import Field, Model
from django.db.models.expressions import Col


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def name(model: type[Model], field: str) -> str:
    """A field's column, quoted and unqualified (as SET and RETURNING take it)."""
    return connection.ops.quote_name(model._meta.get_field(field).column)


def column(model: type[Model], field: str) -> str:
    return f"{table(model)}.{name(model, field)}"


def columns(model: type[Model]) -> str:
    """Every concrete column of `model`, in its fields' order (`Model.from_db`'s)."""
    return ", ".join(column(model, field.name) for field in model._meta.concrete_fields)


def from_row(model: type[Model], row: tuple) -> Model:
    """An instance from one row of `columns(model)`, its values converted as the ORM's would be."""
    values = list(row)
    for index, col, converters in _converters(model):
        for converter in converters:
            values[index] = converter(values[index], col, connection)
    return model.from_db(connection.alias, None, values)


@cache
def _converters(model: type[Model]) -> list[tuple[int, Col, list]]:
    """The database's converters for each column that has any (on PostgreSQL, none here)."""
    found = []
    for index, field in enumerate(model._meta.concrete_fields):
        col, converters = _field_converters(model, field.name)
        if converters:
            found.append((index, col, converters))
    return found


@cache
def _field_converters(model: type[Model], field: str) -> tuple[Col, list]:
    col = model._meta.get_field(field).get_col(model._meta.db_table)
    return col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)


def minimum(model: type[Model], field: str, **equal) -> object:
    """`objects.filter(**equal).aggregate(Min(field))`'s value, None when no row matches; the
    conditions are equalities on fields."""
    names = tuple(sorted(equal))
    meta = model._meta
    values = [meta.get_field(name).get_db_prep_value(equal[name], connection) for name in names]
    with connection.cursor() as cursor:
        cursor.execute(_minimum_sql(model, field, names), values)
        (value,) = cursor.fetchone()
    col, converters = _field_converters(model, field)
    for converter in converters:
        value = converter(value, col, connection)
    return value


def get(model: type[Model], pk, *, lock: bool = False) -> Model:
    """The row whose primary key is `pk`, as `objects.get(pk=pk)` has it (raises
    `model.DoesNotExist`); with `lock`, locked until the transaction ends (`select_for_update()`,
    where the database has it)."""
    with connection.cursor() as cursor:
        cursor.execute(_get_sql(model, lock), [pk])
        row = cursor.fetchone()
    if row is None:
        raise model.DoesNotExist(f"no {model.__name__} {pk}")
    return from_row(model, row)


def insert(instance: Model) -> None:
    """Insert `instance` as a new row and set its primary key."""
    model = type(instance)
    sql, fields = _insert_sql(model)
    values = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        (instance.pk,) = cursor.fetchone()
    instance._state.adding, instance._state.db = False, connection.alias


def update(instance: Model, *names: str) -> None:
    """Write the fields `names` of `instance`'s row (an auto_now field among them gets the time)."""
    model = type(instance)
    sql, fields = _update_sql(model, names)
    values = [
        field.get_db_prep_save(field.pre_save(instance, False), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, instance.pk])
        if cursor.rowcount != 1:
            raise DatabaseError(f"{model.__name__} {instance.pk}: no row to update")


@cache
def _get_sql(model: type[Model], lock: bool) -> str:
    pk = column(model, model._meta.pk.name)
    statement = f"SELECT {columns(model)} FROM {table(model)} WHERE {pk} = %s"
    if lock and connection.features.has_select_for_update:
        statement += " " + connection.ops.for_update_sql()
    return statement


@cache
def _minimum_sql(model: type[Model], field: str, names: tuple[str, ...]) -> str:
    where = " AND ".join(f"{column(model, name)} = %s" for name in names) or "TRUE"
    return f"SELECT MIN({column(model, field)}) FROM {table(model)} WHERE {where}"


@cache
def _insert_sql(model: type[Model]) -> tuple[str, list[Field]]:
    meta = model._meta
    # An explicit primary key is written; a generated one (AutoField) comes back.
    fields = [f for f in meta.concrete_fields if not (f.primary_key and f.db_returning)]
    names = ", ".join(name(model, f.name) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    returning = name(model, meta.pk.name)
    return f"INSERT INTO {table(model)} ({names}) VALUES ({marks}) RETURNING {returning}", fields


@cache
def _update_sql(model: type[Model], names: tuple[str, ...]) -> tuple[str, list[Field]]:
    fields = [model._meta.get_field(field) for field in names]
    sets = ", ".join(f"{name(model, f.name)} = %s" for f in fields)
    where = f"{name(model, model._meta.pk.name)} = %s"
    return f"UPDATE {table(model)} SET {sets} WHERE {where}", fields
