"""The status stream `ws/order/<biz>/`: owner only, current panel first, every change after."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from checkout.models import Order, OrderStatus
from checkout.push import push_order_changed
from shop.asgi import application
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def connect(biz: str, session=None, origin: bytes = b"http://127.0.0.1:8000"):
    headers = [(b"origin", origin)]
    if session is not None:
        cookie = f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, f"/ws/order/{biz}/", headers=headers)


async def make_order(**changes):
    session = await sync_to_async(f.shopper_session)()
    order = await sync_to_async(f.order)(session, **changes)
    return session, order


async def set_status(order: Order, status: str) -> None:
    await Order.objects.filter(pk=order.pk).aupdate(status=status)


async def test_owner_gets_the_current_panel_on_connect():
    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    connected, _ = await socket.connect()
    assert connected
    html = await socket.receive_from()
    assert 'id="payment-status"' in html
    assert 'data-status="pending"' in html
    await socket.disconnect()


async def test_a_result_that_came_before_the_socket_opened_is_shown():
    session, order = await make_order(status=OrderStatus.PAID)
    socket = connect(order.biz, session)
    await socket.connect()
    assert 'data-status="paid"' in await socket.receive_from()
    await socket.disconnect()


async def test_each_change_is_pushed_as_the_new_panel():
    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    await set_status(order, OrderStatus.PAID)
    await push_order_changed(order.biz)
    assert 'data-status="paid"' in await socket.receive_from()
    await socket.disconnect()


async def test_an_announcement_without_a_change_sends_nothing():
    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    await push_order_changed(order.biz)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_another_session_is_refused_before_anything_is_sent():
    _, order = await make_order(status=OrderStatus.PAID)
    stranger = await sync_to_async(f.shopper_session)()
    connected, _ = await connect(order.biz, stranger).connect()
    assert not connected


async def test_no_session_is_refused():
    _, order = await make_order()
    connected, _ = await connect(order.biz).connect()
    assert not connected


async def test_a_foreign_origin_is_refused():
    session, order = await make_order()
    connected, _ = await connect(order.biz, session, origin=b"https://evil.example").connect()
    assert not connected


async def test_messages_from_the_browser_are_never_relayed():
    session, order = await make_order(status=OrderStatus.PENDING)
    sender, watcher = connect(order.biz, session), connect(order.biz, session)
    for socket in (sender, watcher):
        await socket.connect()
        await socket.receive_from()
    await sender.send_to(text_data='<div id="payment-status" data-status="paid"></div>')
    assert await watcher.receive_nothing(timeout=0.3)
    assert await sender.receive_nothing(timeout=0.1)
    for socket in (sender, watcher):
        await socket.disconnect()


async def test_a_closed_socket_leaves_the_group():
    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    await socket.disconnect()
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    from checkout.push import order_group

    layer = get_channel_layer()
    if not isinstance(layer, InMemoryChannelLayer):
        pytest.skip("reads the embedded layer's group table (REDIS_URL is set)")
    assert not layer.groups.get(order_group(order.biz))


async def test_a_dropped_push_is_caught_up_by_the_watchlist_sweep():
    from checkout.watch import watchlist

    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    await set_status(order, OrderStatus.PAID)  # changed, but the push never came
    assert await socket.receive_nothing(timeout=0.2)
    assert await watchlist.sweep() == 1
    assert 'data-status="paid"' in await socket.receive_from()
    assert await watchlist.sweep() == 0
    await socket.disconnect()
    assert order.biz not in watchlist.sockets


class FakeSocket:
    def __init__(self, biz: str, sent_status: str) -> None:
        self.biz, self.sent_status, self.sends = biz, sent_status, 0

    async def send_panel(self) -> None:
        self.sends += 1


def test_the_watchlist_sweep_costs_one_query_per_thousand_watched_orders():
    from asgiref.sync import async_to_sync
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from checkout.watch import CHUNK, Watchlist

    order = f.order(status=OrderStatus.PENDING)
    watchlist = Watchlist()
    stale = FakeSocket(order.biz, OrderStatus.UNPAID)
    watchlist.sockets[order.biz] = {stale, FakeSocket(order.biz, OrderStatus.PENDING)}
    for number in range(CHUNK + 10):  # pages of orders this test did not create: no rows
        watchlist.sockets[f"{number:032x}"] = {FakeSocket(f"{number:032x}", "pending")}

    # async_to_sync from this thread runs the ORM's sync part here, where the capture listens.
    with CaptureQueriesContext(connection) as queries:
        caught_up = async_to_sync(watchlist.sweep)()

    assert len(queries) == 2  # 1,011 orders watched: two chunks, one query each
    assert caught_up == 1 and stale.sends == 1


async def test_a_large_message_from_the_browser_closes_the_socket():
    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    await socket.send_to(text_data="x" * (settings.WS_MAX_MESSAGE_BYTES + 1))
    closed = await socket.receive_output()
    assert closed == {"type": "websocket.close", "code": 1009}


def from_client(socket: WebsocketCommunicator, ip: str) -> WebsocketCommunicator:
    socket.scope["client"] = (ip, 40000)
    return socket


async def test_a_client_flooding_connects_is_capped_and_others_still_connect(settings):
    settings.WS_MAX_PER_CLIENT = 3
    session, order = await make_order(status=OrderStatus.PENDING)
    flood = [from_client(connect(order.biz, session), "10.0.0.66") for _ in range(4)]
    accepted = [(await socket.connect())[0] for socket in flood]
    other = from_client(connect(order.biz, session), "10.0.0.7")

    assert accepted == [True, True, True, False]
    assert (await other.connect())[0]
    await flood[0].disconnect()
    again = from_client(connect(order.biz, session), "10.0.0.66")
    assert (await again.connect())[0]  # a closed socket gives its place back
    for socket in [*flood[1:3], other, again]:
        await socket.disconnect()


async def test_the_sweep_sends_nothing_to_a_socket_that_closed_meanwhile():
    from checkout.watch import Watchlist

    _, order = await make_order(status=OrderStatus.PAID)
    watch = Watchlist()
    sent: list[object] = []

    class Socket:
        biz = order.biz
        sent_status = "pending"

        async def send_panel(self) -> None:
            sent.append(self)
            for other in list(watch.sockets.get(self.biz, ())):
                watch.discard(other)  # the other tab closes while this one is being sent to

    watch.sockets[order.biz] = {Socket(), Socket()}
    await watch.sweep()
    assert len(sent) == 1
