"""The shop's database connections: given back early by requests that then wait on something
slower, and their prepared statements planned again after a schema change.

A request keeps its database connection (from the process's pool, on PostgreSQL) until it ends,
as Django has it. For a request that then waits on something else, a payment system that hangs
or a Redis that does, that would let a handful of such requests hold the whole pool and stop every
other page, socket and notification for as long. `give_back` and `db_step` give it back early
instead. Inside a transaction (a test's) the connection stays: it cannot be given back there.
"""

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection
from django.db.utils import NotSupportedError

P = ParamSpec("P")
R = TypeVar("R")


def _give_back() -> None:
    if not connection.in_atomic_block:
        connection.close()


# Awaited on the event loop for a request (Pay's wait for the payment system), runs in the
# request's thread, whose connection it gives back; the next query there takes one again.
give_back = sync_to_async(_give_back)


def db_step(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`sync_to_async(func)` for database work the event loop waits for before it waits on
    something else (the reconciler's push): the connection goes back to the pool when `func` is
    done, not when a request ends (the reconciler serves none), at no extra cost."""

    @wraps(func)
    def step(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            _give_back()

    return sync_to_async(step)


# PostgreSQL's refusal to run a prepared statement whose result columns changed type since it was
# prepared: after a migration's ALTER COLUMN ... TYPE (widening a varchar too) under a running
# server. psycopg keeps its prepared statements until a rollback or a DEALLOCATE ALL on the
# connection (psycopg/psycopg#511), so a pooled connection would refuse them until it is renewed.
PLAN_CHANGED = "cached plan must not change result type"


def replan_changed_statements(execute, sql, params, many, context):
    """Django execute wrapper: a statement a schema change outdated is prepared again.

    Outside a transaction the refused statement did nothing: the connection forgets its prepared
    statements and runs it again. Inside one, the transaction is aborted and the error goes up;
    its rollback makes psycopg forget them, so that one transaction fails and the next works."""
    try:
        return execute(sql, params, many, context)
    except NotSupportedError as error:
        db = context["connection"]
        if PLAN_CHANGED not in str(error) or not db.get_autocommit():
            raise
        db.connection.execute("DEALLOCATE ALL")  # psycopg empties its cache on seeing it
        return execute(sql, params, many, context)


def replan_on_connect(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: PostgreSQL connections get `replan_changed_statements`, once
    (the pool hands the same connection out again and again)."""
    if connection.vendor == "postgresql" and (
        replan_changed_statements not in connection.execute_wrappers
    ):
        connection.execute_wrappers.append(replan_changed_statements)
