"""Database connections in async requests that also wait for something slower than a query."""

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection

P = ParamSpec("P")
R = TypeVar("R")


def db_step(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`sync_to_async(func)` for a step of a request that goes on to wait for the payment system or
    a push: the request's thread gives its database connection back (to the pool, on PostgreSQL)
    once the step is done, not at the end of the request. Otherwise each Pay waiting for a payment
    system that hangs (up to PAYMENT_GATEWAY_TIMEOUT) would hold one of the process's few pooled
    connections, and a handful of such Pays would stop every other page, socket and notification.

    Inside a transaction (a test's) the connection stays: it cannot be given back there.
    """

    @wraps(func)
    def step(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        finally:
            if not connection.in_atomic_block:
                connection.close()

    return sync_to_async(step)
