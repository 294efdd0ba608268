"""The caps on status sockets (`checkout.caps`): per session, per order, per client address and per
process. A socket over any of them is refused before it is accepted and keeps nothing; a closed
socket gives its places back."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from checkout.caps import caps
from checkout.models import OrderStatus
from checkout.shoppers import shopper_of
from tests.checkout import factories as f
from tests.checkout.test_consumer import connect, held
from tests.checkout.test_operators import sample

pytestmark = pytest.mark.django_db(transaction=True)


def from_client(socket: WebsocketCommunicator, ip: str) -> WebsocketCommunicator:
    socket.scope["client"] = (ip, 40000)
    return socket


async def shopper(orders: int = 1):
    """A session and its `orders` pending orders."""
    session = await sync_to_async(f.shopper_session)()
    made = [
        await sync_to_async(f.order)(session, status=OrderStatus.PENDING) for _ in range(orders)
    ]
    return session, made


async def opened(socket: WebsocketCommunicator) -> bool:
    """Whether the socket was accepted and showed its panel."""
    connected, _ = await socket.connect()
    if connected:
        assert 'data-status="pending"' in await socket.receive_from()
    return connected


async def close_all(sockets: list[WebsocketCommunicator]) -> None:
    for socket in sockets:
        await socket.disconnect()


def counted() -> tuple:
    return caps.total, dict(caps.per_client), dict(caps.per_session), dict(caps.per_order)


async def test_one_session_is_held_to_its_cap_and_other_sessions_still_connect(settings):
    settings.WS_MAX_PER_SESSION = 3
    session, (first, second) = await shopper(orders=2)
    tabs = [connect(order.biz, session) for order in (first, second, first)]
    assert [await opened(socket) for socket in tabs] == [True, True, True]

    before = held(second.biz)
    refusals = sample("checkout_sockets_refused_total", reason="cap")
    assert not await opened(connect(second.biz, session))  # a fourth, on another of its orders
    assert held(second.biz) == before  # refused after the owner check, and nothing kept
    assert sample("checkout_sockets_refused_total", reason="cap") == refusals + 1  # counted

    other_session, (other,) = await shopper()
    neighbour = connect(other.biz, other_session)
    assert await opened(neighbour)
    await close_all([*tabs, neighbour])


async def test_one_order_is_held_to_its_cap_and_the_sessions_other_orders_still_connect(settings):
    settings.WS_MAX_PER_ORDER = 2
    session, (order, another) = await shopper(orders=2)
    tabs = [connect(order.biz, session) for _ in range(3)]
    assert [await opened(socket) for socket in tabs] == [True, True, False]
    elsewhere = connect(another.biz, session)
    assert await opened(elsewhere)
    await close_all([*tabs[:2], elsewhere])


async def test_a_strangers_refused_sockets_take_none_of_the_orders_places(settings):
    settings.WS_MAX_PER_ORDER = 2
    session, (order,) = await shopper()
    stranger = await sync_to_async(f.shopper_session)()
    for _ in range(3):
        assert not await opened(connect(order.biz, stranger))
    tabs = [connect(order.biz, session) for _ in range(2)]
    assert [await opened(socket) for socket in tabs] == [True, True]
    await close_all(tabs)


async def test_the_process_total_refuses_before_the_session_or_the_order_is_read(
    settings, monkeypatch
):
    from checkout import consumers

    settings.WS_MAX_SOCKETS = 2
    reads = []

    def counted_read(session):
        reads.append(session)
        return shopper_of(session)  # the session's first read, then the order's

    monkeypatch.setattr(consumers, "shopper_of", counted_read)
    shoppers = [await shopper() for _ in range(3)]
    sockets = [connect(orders[0].biz, session) for session, orders in shoppers]

    assert [await opened(socket) for socket in sockets] == [True, True, False]
    assert len(reads) == 2
    await sockets[0].disconnect()
    again = connect(shoppers[2][1][0].biz, shoppers[2][0])
    assert await opened(again)  # a closed socket gives its place back
    await close_all([sockets[1], again])


async def test_a_client_address_is_only_a_ceiling_and_other_addresses_still_connect(settings):
    settings.WS_MAX_PER_CLIENT = 3
    shoppers = [await shopper() for _ in range(4)]
    flood = [from_client(connect(o[0].biz, s), "10.0.0.66") for s, o in shoppers]
    assert [await opened(socket) for socket in flood] == [True, True, True, False]
    session, (order,) = shoppers[3]
    other = from_client(connect(order.biz, session), "10.0.0.7")
    assert await opened(other)
    await close_all([*flood[:3], other])


async def test_many_shoppers_behind_one_address_all_connect_under_the_default_caps():
    """More than the old cap of 50 per address: a NAT's shoppers are told apart by session."""
    shoppers = [await shopper() for _ in range(60)]
    sockets = [from_client(connect(o[0].biz, s), "10.0.0.1") for s, o in shoppers]
    assert all([await opened(socket) for socket in sockets])
    await close_all(sockets)


async def test_every_place_is_given_back_when_the_sockets_close(settings):
    settings.WS_MAX_PER_SESSION = settings.WS_MAX_PER_ORDER = 2
    before = counted()
    sockets, refused = [], 0
    for _ in range(3):
        session, orders = await shopper(orders=2)
        for order in orders * 2:  # four tabs: two refused by the session's cap
            socket = connect(order.biz, session)
            if await opened(socket):
                sockets.append(socket)
            else:
                refused += 1
    assert (len(sockets), refused) == (6, 6)
    assert caps.total == before[0] + 6

    await close_all(sockets)
    assert counted() == before
