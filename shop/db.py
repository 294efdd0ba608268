"""Database connections in async requests that also wait for something slower than a query.

A request keeps its database connection (from the process's pool, on PostgreSQL) until it ends,
as Django has it. For a request that then waits on something else, a payment system that hangs
or a Redis that does, that would let a handful of such requests hold the whole pool and stop every
other page, socket and notification for as long. These give it back early instead. Inside a
transaction (a test's) the connection stays: it cannot be given back there.
"""

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection

P = ParamSpec("P")
R = TypeVar("R")


def _give_back() -> None:
    if not connection.in_atomic_block:
        connection.close()


# Awaited from an async view, runs in the request's thread, whose connection it gives back; the
# next query there takes one again.
give_back = sync_to_async(_give_back)


def db_step(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`sync_to_async(func)` for a request's last database work before it waits on something
    else (a notification's push): the connection goes back to the pool when `func` is done, not
    when the request ends, at no extra cost (nothing takes one again)."""

    @wraps(func)
    def step(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            _give_back()

    return sync_to_async(step)
