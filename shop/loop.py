"""The event loop a request is served on, for its thread to hand work back to without waiting.

A request's synchronous part runs in a thread of its own (shop/handlers.py). `async_to_sync`
takes work from there to the loop, and the thread waits until that work is done: a round trip
through the loop even for work the request need not wait for (a push to other tabs). `hand_over`
only schedules it there.
"""

import asyncio
from collections.abc import Callable
from contextvars import ContextVar

# Set by the handler for each request; the request's thread sees it in the context asgiref copies.
serving: ContextVar[asyncio.AbstractEventLoop] = ContextVar("serving")


def hand_over(callback: Callable[..., object], *args: object) -> bool:
    """Call `callback(*args)` on the loop serving this request, without waiting; False when no
    loop serves it (Django's test client, a command's own thread): then nothing is scheduled."""
    loop = serving.get(None)
    if loop is None or loop.is_closed():
        return False
    loop.call_soon_threadsafe(callback, *args)
    return True
