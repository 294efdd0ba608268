"""Telling the shopper: announce that an order changed to the sockets watching it.

The message carries no state, only when it was sent (for the result-to-push latency metric). Each
socket reads the order from the database and renders its own panel, so the truth stays in the
database and a message can never show something stale.
"""

import asyncio
import logging
import time

from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)


def order_group(biz: str) -> str:
    return f"order_{biz}"


async def push_order_changed(biz: str) -> None:
    """Best effort: a lost message is caught up by the watchlist (`checkout.watch`).

    Bounded by PUSH_TIMEOUT, because a Redis that hangs rather than refuses (a stopped process, a
    full network buffer) would otherwise hold the payment system's request past its 5 s limit.
    """
    layer = get_channel_layer()
    try:
        # Sent right after the result is committed, so applied_at is when the result was applied.
        message = {"type": "order.changed", "applied_at": time.time()}
        async with asyncio.timeout(settings.PUSH_TIMEOUT):
            await layer.group_send(order_group(biz), message)
    except Exception as error:  # TimeoutError included: the result is committed either way
        logger.warning("push failed biz=%s error=%r", biz, error)
