"""Telling the shopper: announce an order's new state to the sockets watching it.

The message carries the order's state as the committing transaction left it (`PanelState`:
primitives, for msgpack on Redis), and when it was sent (for the result-to-push latency metric).
Each socket renders its own panel from it, in its own language, with no query and no thread hop.
Messages from two processes, or a push racing a socket's first read, may arrive out of order: the
state's version (`Order.version`) lets a socket ignore anything older than what it showed. A push
from a Pay names the panel it was pressed in (`pressed_in`): that page shows Pay's answer.
"""

import asyncio
import logging
import time

from channels.layers import get_channel_layer
from django.conf import settings

from checkout.metrics import PUSH_FAILURES
from checkout.panels import PanelState

logger = logging.getLogger(__name__)

# Seconds between two lines of the log about failed pushes. While Redis is away every result's
# push fails, and so do pushes that waited past PUSH_TIMEOUT in a process far behind: a line for
# each would bury the log. The counter `checkout_push_failures_total` counts every one.
FAILURE_LOG_EVERY = 10.0


class FailureLog:
    """The first failed push logged, then at most one line per FAILURE_LOG_EVERY, which says how
    many failed since the line before it."""

    def __init__(self) -> None:
        self.quiet_until = 0.0
        self.unlogged = 0

    def failed(self, biz: str, error: BaseException) -> None:
        PUSH_FAILURES.inc()
        now = time.monotonic()
        if now < self.quiet_until:
            self.unlogged += 1
            return
        more = f" more_since_last_line={self.unlogged}" if self.unlogged else ""
        logger.warning("push failed biz=%s error=%r%s", biz, error, more)
        self.quiet_until = now + FAILURE_LOG_EVERY
        self.unlogged = 0


failures = FailureLog()


def order_group(biz: str) -> str:
    return f"order_{biz}"


async def push_order_changed(state: PanelState, *, pressed_in: str | None = None) -> None:
    """Best effort: a lost message is caught up by the watchlist (`checkout.watch`).

    Call it once the change is committed, with the state that change left (`panel_state`). Bounded
    by PUSH_TIMEOUT, because a Redis that hangs rather than refuses (a stopped process, a full
    network buffer) would otherwise hold the payment system's request past its 5 s limit.
    """
    layer = get_channel_layer()
    try:
        # Sent right after the result is committed, so applied_at is when the result was applied.
        message = {"type": "order.changed", "applied_at": time.time(), "order": state}
        if pressed_in:
            message["pressed_in"] = pressed_in
        async with asyncio.timeout(settings.PUSH_TIMEOUT):
            await layer.group_send(order_group(state["biz"]), message)
    except Exception as error:  # TimeoutError included: the result is committed either way
        failures.failed(state["biz"], error)
