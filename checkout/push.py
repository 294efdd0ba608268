"""Telling the shopper: announce that an order changed to the sockets watching it.

The message carries no state, only when it was sent (for the result-to-push latency metric). Each
socket reads the order from the database and renders its own panel, so the truth stays in the
database and a message can never show something stale.
"""

import logging
import time

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def order_group(biz: str) -> str:
    return f"order_{biz}"


async def push_order_changed(biz: str) -> None:
    """Best effort: a lost message is caught up by the sockets' own check (see consumers)."""
    layer = get_channel_layer()
    try:
        # Sent right after the result is committed, so applied_at is when the result was applied.
        message = {"type": "order.changed", "applied_at": time.time()}
        await layer.group_send(order_group(biz), message)
    except Exception:
        logger.exception("push failed biz=%s", biz)
