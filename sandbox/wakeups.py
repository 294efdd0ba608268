"""In-process wake-ups: a synchronous-API request waiting for its payment hears of a decision made
in this process at once, instead of at its next poll.

They only make things faster: every waiter also polls the database, which is what works across
processes. Status changes happen in sync code (a view's `transaction.on_commit`, in a worker
thread), so waiters are woken through their loop's `call_soon_threadsafe`.
"""

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Event]

_lock = threading.Lock()
_payment_waiters: dict[str, set[Waiter]] = {}


def payment_changed(payment_id: str) -> None:
    """Wake whoever in this process waits for this payment to settle."""
    with _lock:
        waiters = list(_payment_waiters.get(payment_id, ()))
    for loop, event in waiters:
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop is closed, and its waiter went with it
            pass


@contextmanager
def listening_for_payment(payment_id: str) -> Iterator[asyncio.Event]:
    waiter = (asyncio.get_running_loop(), asyncio.Event())
    with _lock:
        _payment_waiters.setdefault(payment_id, set()).add(waiter)
    try:
        yield waiter[1]
    finally:
        with _lock:
            waiters = _payment_waiters.get(payment_id, set())
            waiters.discard(waiter)
            if not waiters:
                _payment_waiters.pop(payment_id, None)


def payments_awaited(loop: asyncio.AbstractEventLoop) -> list[str]:
    """The payments somebody on `loop` is waiting for."""
    with _lock:
        return [
            payment_id
            for payment_id, waiters in _payment_waiters.items()
            if any(waiter_loop is loop for waiter_loop, _ in waiters)
        ]
