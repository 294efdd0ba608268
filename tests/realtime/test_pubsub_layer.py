"""The Redis pub/sub layer the shop uses (`shop.channel_layers.PubSubChannelLayer`): channels_redis'
own, with a `Mailbox` per channel instead of an `asyncio.Queue`, against a real Redis.

Its contract is channels_redis': messages in order and once each, a cancelled receive forgets its
channel (unsubscribes), group_send to every member. Then churn: consumers leaving while the others
are pushed to, none of whose messages may go astray.
"""

import asyncio
import random
import uuid

import pytest

from shop.channel_layers import PubSubChannelLayer
from shop.mailbox import Mailbox


@pytest.fixture
async def layer(shared_redis):
    # A prefix of its own, so that nothing else on this Redis is heard.
    layer = PubSubChannelLayer(hosts=[shared_redis], prefix=f"test-{uuid.uuid4().hex[:8]}")
    try:
        yield layer
    finally:
        await layer.flush()


async def settle() -> None:
    """A SUBSCRIBE reaches Redis on the layer's own connection: let it be acknowledged before
    anything is published to it (pub/sub drops what comes before)."""
    await asyncio.sleep(0.2)


async def test_messages_to_a_channel_come_once_each_and_in_order(layer):
    channel = await layer.new_channel()
    await settle()
    for n in range(5):
        await layer.send(channel, {"type": "order.changed", "n": n})
    got = [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(5)]
    assert got == [0, 1, 2, 3, 4]
    assert isinstance(layer._get_layer().channels[channel], Mailbox)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)  # nothing more, and this cancels


async def test_a_cancelled_receive_forgets_its_channel(layer):
    channel = await layer.new_channel()
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.05)
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving
    assert channel not in layer._get_layer().channels


async def test_group_send_reaches_every_member_and_no_one_else(layer):
    members = [await layer.new_channel() for _ in range(3)]
    stranger = await layer.new_channel()
    for channel in members:
        await layer.group_add("order-a", channel)
    await settle()
    await layer.group_send("order-a", {"type": "order.changed", "n": 1})
    for channel in members:
        assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(stranger), 0.3)


async def test_consumers_leaving_while_the_others_are_pushed_to_lose_nothing(layer):
    """Sixty consumers in six groups, each receiving as Channels' consumers do (one receive at a
    time, made anew after each message); a third of them leave (their receive cancelled, as at a
    socket's close) while 300 messages go to the groups. Every one that stayed got every message
    of its group, once and in order."""
    rng = random.Random(5)
    groups = [f"order-{n}" for n in range(6)]
    got: dict[str, list[int]] = {}
    members: dict[str, str] = {}
    for n in range(60):
        channel = await layer.new_channel()
        members[channel] = groups[n % len(groups)]
        got[channel] = []
        await layer.group_add(members[channel], channel)
    await settle()

    async def consume(channel: str) -> None:
        while True:
            got[channel].append((await layer.receive(channel))["n"])

    consumers = {channel: asyncio.ensure_future(consume(channel)) for channel in members}
    leaving = set(rng.sample(sorted(members), 20))
    sent: dict[str, list[int]] = {group: [] for group in groups}
    for n in range(300):
        group = rng.choice(groups)
        sent[group].append(n)
        await layer.group_send(group, {"type": "order.changed", "n": n})
        if n % 15 == 7 and leaving:  # one leaves every 15 messages, mid-stream
            channel = leaving.pop()
            await layer.group_discard(members[channel], channel)
            consumers.pop(channel).cancel()
        if n % 10 == 0:
            await asyncio.sleep(0)  # let the consumers run between bursts, as a server would
    staying = set(consumers)
    for _ in range(100):  # until every message has come through Redis
        if all(len(got[c]) == len(sent[members[c]]) for c in staying):
            break
        await asyncio.sleep(0.05)
    for task in consumers.values():
        task.cancel()
    await asyncio.gather(*consumers.values(), return_exceptions=True)
    assert {c: got[c] for c in staying} == {c: sent[members[c]] for c in staying}
    assert set(layer._get_layer().channels) == set()  # every channel forgotten at the end


async def test_a_push_does_not_wait_behind_the_subscriptions(layer):
    """channels_redis makes every publish wait for the lock its subscriptions take, one round trip
    to Redis at a time; under load a burst of new sockets held pushes for seconds."""
    member = await layer.new_channel()
    await layer.group_add("order_1", member)
    await settle()
    [shard] = layer._get_layer()._shards
    async with shard._lock:  # a subscription under way, its round trip not answered yet
        await asyncio.wait_for(layer.group_send("order_1", {"type": "order.changed"}), 2)
    assert (await asyncio.wait_for(layer.receive(member), 5))["type"] == "order.changed"
