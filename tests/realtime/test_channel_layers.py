"""The embedded channel layer (`shop.channel_layers`) keeps Channels' layer contract with a Mailbox
per channel instead of an asyncio.Queue."""

import asyncio
import time
from unittest import mock

import pytest
from channels.exceptions import ChannelFull

from shop.channel_layers import LocalChannelLayer


async def test_a_message_sent_before_receive_is_received_once() -> None:
    layer = LocalChannelLayer()
    await layer.send("socket.a", {"type": "order.changed", "n": 1})
    assert await layer.receive("socket.a") == {"type": "order.changed", "n": 1}
    assert layer.channels == {}  # an empty channel holds nothing


async def test_a_waiting_receiver_gets_messages_in_order() -> None:
    layer = LocalChannelLayer()
    waiting = asyncio.ensure_future(layer.receive("socket.a"))
    await asyncio.sleep(0)
    await layer.send("socket.a", {"type": "m", "n": 1})
    await layer.send("socket.a", {"type": "m", "n": 2})
    assert (await waiting)["n"] == 1
    assert (await layer.receive("socket.a"))["n"] == 2


async def test_a_cancelled_receiver_leaves_the_message_for_the_next() -> None:
    layer = LocalChannelLayer()
    first = asyncio.ensure_future(layer.receive("socket.a"))
    second = asyncio.ensure_future(layer.receive("socket.a"))
    await asyncio.sleep(0)
    await layer.send("socket.a", {"type": "m"})
    first.cancel()  # woken, but cancelled before it ran
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, 1) == {"type": "m"}


async def test_a_receiver_woken_for_a_message_another_took_gets_the_next() -> None:
    layer = LocalChannelLayer()
    first = asyncio.ensure_future(layer.receive("socket.a"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(layer.receive("socket.a"))  # to run before first wakes
    await layer.send("socket.a", {"type": "m", "n": 1})  # wakes first; second takes it
    assert (await second)["n"] == 1
    await layer.send("socket.a", {"type": "m", "n": 2})
    assert (await asyncio.wait_for(first, 1))["n"] == 2


async def test_a_receiver_woken_for_a_message_that_expired_gets_the_next() -> None:
    layer = LocalChannelLayer(sweep_interval=0)
    waiting = asyncio.ensure_future(layer.receive("socket.a"))
    await asyncio.sleep(0)
    await layer.send("socket.a", {"type": "m", "n": 1})  # wakes it
    with mock.patch.object(time, "time", return_value=time.time() + layer.expiry + 1):
        layer._clean_expired()  # and the message expires before it runs
    await layer.send("socket.a", {"type": "m", "n": 2})
    assert (await asyncio.wait_for(waiting, 1))["n"] == 2


async def test_a_cancelled_receive_leaves_no_channel_behind() -> None:
    layer = LocalChannelLayer()
    waiting = asyncio.ensure_future(layer.receive("socket.a"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert layer.channels == {}


async def test_a_full_channel_refuses_more() -> None:
    layer = LocalChannelLayer(capacity=2)
    await layer.send("socket.a", {"type": "m"})
    await layer.send("socket.a", {"type": "m"})
    with pytest.raises(ChannelFull):
        await layer.send("socket.a", {"type": "m"})


async def test_group_send_reaches_every_member_with_its_own_copy() -> None:
    layer = LocalChannelLayer()
    await layer.group_add("order-1", "socket.a")
    await layer.group_add("order-1", "socket.b")
    message = {"type": "m", "items": [1]}
    await layer.group_send("order-1", message)
    a, b = await layer.receive("socket.a"), await layer.receive("socket.b")
    assert a == b == message
    assert a is not message and a["items"] is not b["items"]


async def test_an_expired_message_is_dropped_and_its_channel_leaves_its_groups() -> None:
    layer = LocalChannelLayer(expiry=0, sweep_interval=0)
    await layer.group_add("order-1", "socket.a")
    await layer.send("socket.a", {"type": "m"})
    await asyncio.sleep(0.01)
    layer._clean_expired()
    assert layer.channels == {}
    assert "socket.a" not in layer.groups.get("order-1", {})


async def test_a_group_left_empty_by_expiry_is_forgotten() -> None:
    layer = LocalChannelLayer(sweep_interval=0)
    await layer.group_add("order-1", "socket.a")  # its socket is gone and never receives
    await layer.group_add("order-2", "socket.b")  # nor this one, nor is it sent anything
    await layer.group_send("order-1", {"type": "m"})
    with mock.patch.object(time, "time", return_value=time.time() + layer.expiry + 1):
        layer._clean_expired()
    assert layer.channels == {}
    assert list(layer.groups) == ["order-2"]
    with mock.patch.object(time, "time", return_value=time.time() + layer.group_expiry + 1):
        layer._clean_expired()
    assert layer.groups == {}
