"""A push's message goes through the Redis pub/sub layer (msgpack) and comes out as it was sent."""

import asyncio

from channels_redis.pubsub import RedisPubSubChannelLayer

from checkout.gallery import sample_order
from checkout.models import OrderStatus
from checkout.panels import panel_order, panel_render, panel_state
from checkout.push import order_group


async def test_a_pushed_state_comes_through_redis_unchanged_and_renders_the_same_panel(
    shared_redis,
):
    order = sample_order(OrderStatus.PENDING)  # unsaved, with a payment and its cashier link
    message = {"type": "order.changed", "applied_at": 1795000000.25, "order": panel_state(order)}
    layer = RedisPubSubChannelLayer(hosts=[shared_redis])
    channel = await layer.new_channel()
    group = order_group(order.biz)
    await layer.group_add(group, channel)
    try:
        await layer.group_send(group, message)
        received = await asyncio.wait_for(layer.receive(channel), 5)
    finally:
        await layer.group_discard(group, channel)
        await layer.flush()
    assert received == message
    assert panel_render(panel_order(received["order"])) == panel_render(order)
