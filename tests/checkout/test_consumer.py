"""The status stream `ws/order/<biz>/`: owner only, current panel first, every change after."""

import asyncio
import re
from collections import Counter

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction

from checkout import gateways, locks
from checkout.models import Order, OrderStatus
from checkout.panels import PanelState, panel_state
from checkout.push import push_order_changed
from checkout.watch import watchlist
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
    """Change the status behind the shop's back: no new version, no push."""
    await Order.objects.filter(pk=order.pk).aupdate(status=status)


def commit_status(order: Order, status: str) -> PanelState:
    """Change the status as a result does, under the row lock, as the order's next version;
    returns the state the change pushes."""
    with transaction.atomic():
        locked = locks.order_for_update(order.biz)
        locked.status = status
        locked.save_change("status")
        return panel_state(locked)


async def change(order: Order, status: str) -> PanelState:
    return await sync_to_async(commit_status)(order, status)


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
    await push_order_changed(await change(order, OrderStatus.PAID))
    assert 'data-status="paid"' in await socket.receive_from()
    await socket.disconnect()


async def test_an_announcement_without_a_change_sends_nothing():
    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    await push_order_changed(await sync_to_async(panel_state)(order))  # what the socket showed
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


@pytest.fixture
def work_counted(monkeypatch) -> Counter:
    """Counts every query, from any thread, and every trip to a worker thread (sync_to_async)."""
    from asgiref.sync import SyncToAsync
    from django.db.backends.utils import CursorWrapper

    counts: Counter = Counter()

    def counting(name: str, real):
        def call(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(CursorWrapper, "execute", counting("queries", CursorWrapper.execute))
    monkeypatch.setattr(
        CursorWrapper, "executemany", counting("queries", CursorWrapper.executemany)
    )
    hop = SyncToAsync.__call__

    async def hopping(self, *args, **kwargs):
        counts["thread hops"] += 1
        return await hop(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", hopping)
    return counts


async def test_a_push_is_rendered_with_no_query(work_counted):
    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    paid = await change(order, OrderStatus.PAID)
    before = Counter(work_counted)
    await push_order_changed(paid)
    assert 'data-status="paid"' in await socket.receive_from()
    assert work_counted["queries"] == before["queries"] > 0  # counted, and none by the push
    await socket.disconnect()


async def test_an_older_state_arriving_after_a_newer_one_is_not_shown():
    """Two processes' pushes may cross: the Pay's pending arrives after the result's paid."""
    session, order = await make_order()
    socket = connect(order.biz, session)
    await socket.connect()
    assert 'data-status="unpaid"' in await socket.receive_from()
    pending = await change(order, OrderStatus.PENDING)
    paid = await change(order, OrderStatus.PAID)
    await push_order_changed(paid)
    assert 'data-status="paid"' in await socket.receive_from()
    await push_order_changed(pending)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


def pay_form_panel(html: str) -> str:
    """The panel id in a panel's Pay form, which Pay passes on as `panel`."""
    found = re.search(r'<input type="hidden" name="panel" value="([^"]+)">', html)
    assert found, "the panel has no panel id in its Pay form"
    return found[1]


async def test_a_pay_pressed_in_the_sockets_panel_is_left_to_pays_answer():
    """That page shows Pay's answer, pending: sent again, the same panel would be swapped in and
    announced twice. The order's other page (another tab) gets it, and both get what follows."""
    session, order = await make_order()
    pressed, other = connect(order.biz, session), connect(order.biz, session)
    panels = []
    for socket in (pressed, other):
        await socket.connect()
        panels.append(await socket.receive_from())
    pressed_in, other_panel = (pay_form_panel(html) for html in panels)
    assert pressed_in != other_panel

    await push_order_changed(await change(order, OrderStatus.PENDING), pressed_in=pressed_in)
    assert 'data-status="pending"' in await other.receive_from()
    assert await pressed.receive_nothing(timeout=0.3)
    assert await watchlist.sweep() == 0  # taken as shown: nothing to catch up either

    await push_order_changed(await change(order, OrderStatus.PAID))
    for socket in (pressed, other):
        assert 'data-status="paid"' in await socket.receive_from()
        await socket.disconnect()


async def test_a_pay_pressed_in_a_panel_the_socket_has_since_replaced_is_pushed():
    """Its answer is for an element no longer in the page (htmx drops it): the push must show it."""
    session, order = await make_order()
    socket = connect(order.biz, session)
    await socket.connect()
    pressed_in = pay_form_panel(await socket.receive_from())
    await set_status(order, OrderStatus.FAILED)  # shown by the watchlist's catch-up
    assert await watchlist.sweep() == 1
    assert 'data-status="failed"' in await socket.receive_from()
    await push_order_changed(await change(order, OrderStatus.PAID), pressed_in=pressed_in)
    assert 'data-status="paid"' in await socket.receive_from()
    await socket.disconnect()


async def test_a_push_older_than_the_handshakes_read_is_not_shown():
    session, order = await make_order(status=OrderStatus.PENDING)
    pending = await sync_to_async(panel_state)(order)  # a push still on its way...
    await change(order, OrderStatus.PAID)  # ...when a result lands and the socket opens
    socket = connect(order.biz, session)
    await socket.connect()
    assert 'data-status="paid"' in await socket.receive_from()
    await push_order_changed(pending)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


def racing_the_handshake(monkeypatch, before_read=None, after_read=None) -> None:
    """Run `before_read` / `after_read` in the handshake's database thread, around its read of the
    order: the socket has joined the group, and what they push is queued for it."""
    from checkout import consumers

    read = consumers.order_for_owner

    def order_for_owner(**kwargs):
        if before_read:
            before_read()
        found = read(**kwargs)
        if after_read:
            after_read()
        return found

    monkeypatch.setattr(consumers, "order_for_owner", order_for_owner)


async def test_a_stale_push_queued_during_the_handshake_is_not_shown(monkeypatch):
    session, order = await make_order(status=OrderStatus.PENDING)
    stale = await sync_to_async(panel_state)(order)

    def pay_then_late_push() -> None:
        commit_status(order, OrderStatus.PAID)  # the handshake will read paid
        async_to_sync(push_order_changed)(stale)  # and then hear of pending

    racing_the_handshake(monkeypatch, before_read=pay_then_late_push)
    socket = connect(order.biz, session)
    assert (await socket.connect())[0]
    assert 'data-status="paid"' in await socket.receive_from()
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_a_result_pushed_during_the_handshake_is_shown_after_it(monkeypatch):
    session, order = await make_order(status=OrderStatus.PENDING)

    def result_lands() -> None:
        async_to_sync(push_order_changed)(commit_status(order, OrderStatus.PAID))

    racing_the_handshake(monkeypatch, after_read=result_lands)  # the handshake read pending
    socket = connect(order.biz, session)
    assert (await socket.connect())[0]
    assert 'data-status="pending"' in await socket.receive_from()
    assert 'data-status="paid"' in await socket.receive_from()
    await socket.disconnect()


async def test_each_socket_renders_a_push_in_its_own_language():
    session, order = await make_order(status=OrderStatus.PENDING)
    english = connect(order.biz, session)
    chinese = WebsocketCommunicator(
        application,
        f"/ws/order/{order.biz}/",
        headers=[
            (b"origin", b"http://127.0.0.1:8000"),
            (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()),
            (b"accept-language", b"zh-CN,zh;q=0.9"),
        ],
    )
    for socket in (english, chinese):
        await socket.connect()
        await socket.receive_from()
    await push_order_changed(await change(order, OrderStatus.PAID))
    assert "Paid. Thank you!" in await english.receive_from()
    assert "付款成功" in await chinese.receive_from()
    for socket in (english, chinese):
        await socket.disconnect()


async def test_the_pays_push_shows_the_qr_code_and_the_cashier_link(monkeypatch):
    from checkout.gateways.base import GatewayPayment
    from checkout.models import PaymentStatus
    from checkout.selectors import order_with_payment
    from checkout.services import payments

    cashier = "https://pay.example/cashier/pay_1"

    class Gateway:
        starts_after_close = True

        async def start(self, request):
            return GatewayPayment(
                "pay_1",
                request.biz,
                PaymentStatus.PENDING,
                request.amount,
                request.currency,
                cashier,
            )

    monkeypatch.setattr(gateways, "get_gateway", lambda name: Gateway())
    session, order = await make_order()
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    order = await sync_to_async(order_with_payment)(biz=order.biz)
    await payments.payment_start(order=order, provider="sandbox")
    html = await socket.receive_from()
    assert 'data-status="pending"' in html and f'href="{cashier}"' in html and "<svg" in html
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
    assert not layer.channels  # its own channel is forgotten too: its receive was cancelled


def held(biz: str) -> dict:
    """What this process's open sockets hold: places under the caps, open-socket gauge, the
    order's watchlist entry and, on the embedded layer, its group's members."""
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    from checkout.caps import caps
    from checkout.push import order_group
    from tests.checkout.test_operators import sample  # (it imports this module)

    layer = get_channel_layer()
    members = layer.groups.get(order_group(biz)) if isinstance(layer, InMemoryChannelLayer) else 0
    return {
        "caps": (
            caps.total,
            caps.per_client.total(),
            caps.per_session.total(),
            caps.per_order[biz],
        ),
        "gauge": sample("checkout_open_sockets"),
        "watched": biz in watchlist.sockets,
        "group": len(members or ()),
    }


async def test_a_browser_gone_before_the_accept_leaves_nothing_held(monkeypatch):
    """A browser that closes during the handshake (after the owner check, before the accept goes
    out) may make the server refuse the accept with an OSError (the ASGI spec): the consumer
    ends there, and still gives back its slot, gauge, watchlist entry and group."""
    from checkout.consumers import OrderStatusConsumer

    session, order = await make_order(status=OrderStatus.PENDING)
    before = held(order.biz)

    async def gone(self, *args, **kwargs):
        raise OSError("the client has disconnected")

    monkeypatch.setattr(OrderStatusConsumer, "accept", gone)
    socket = connect(order.biz, session)
    with pytest.raises(OSError, match="the client has disconnected"):
        await socket.connect()
    assert held(order.biz) == before


async def test_an_error_handling_a_push_ends_the_consumer_as_in_channels(monkeypatch):
    """An error in a handler reaches the server, which closes the socket, as Channels has it, and
    what the socket held is given back."""
    from checkout.consumers import OrderStatusConsumer

    session, order = await make_order(status=OrderStatus.PENDING)
    before = held(order.biz)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    assert held(order.biz) != before

    async def broken(self, event):
        raise RuntimeError("the push handler broke")

    monkeypatch.setattr(OrderStatusConsumer, "order_changed", broken)
    await push_order_changed(await change(order, OrderStatus.PAID))
    # The consumer ends by itself (the communicator cancels nothing): its error is the app's.
    await asyncio.wait([socket.future], timeout=10)
    assert socket.future.done()
    with pytest.raises(RuntimeError, match="the push handler broke"):
        socket.future.result()
    assert held(order.biz) == before


async def test_the_browsers_events_and_the_pushes_are_handled_one_at_a_time(monkeypatch):
    """A push that arrives while the browser's event is being handled waits for it, as in
    Channels: the consumer never runs two handlers at once."""
    from checkout.consumers import OrderStatusConsumer

    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    inside, most, entered = 0, 0, asyncio.Event()
    receive, order_changed = OrderStatusConsumer.receive, OrderStatusConsumer.order_changed

    async def slow_receive(self, text_data=None, bytes_data=None):
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        entered.set()
        await asyncio.sleep(0.2)
        await receive(self, text_data, bytes_data)
        inside -= 1

    async def counted_push(self, event):
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await order_changed(self, event)
        inside -= 1

    monkeypatch.setattr(OrderStatusConsumer, "receive", slow_receive)
    monkeypatch.setattr(OrderStatusConsumer, "order_changed", counted_push)
    await socket.send_to(text_data="hello")
    await entered.wait()
    await push_order_changed(await change(order, OrderStatus.PAID))
    assert 'data-status="paid"' in await socket.receive_from()
    assert most == 1
    await socket.disconnect()


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
        self.biz, self.sent_status, self.shown = biz, sent_status, []

    async def catch_up(self, state: PanelState) -> None:
        self.shown.append(state["status"])


def test_the_watchlist_sweep_costs_one_query_per_thousand_watched_orders():
    """And one more for the states of the orders that changed, however many pushes were lost: a
    read per socket queued behind the sockets' handshakes, and under load a catch-up took longer
    than the interval (docs/profile-history.md, twentieth pass)."""
    from asgiref.sync import async_to_sync
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from checkout.watch import CHUNK, Watchlist

    orders = [f.order(status=OrderStatus.PAID) for _ in range(20)]
    watchlist = Watchlist()
    stale = [FakeSocket(order.biz, OrderStatus.PENDING) for order in orders]  # pushes lost
    for socket in stale:
        watchlist.sockets[socket.biz] = {socket, FakeSocket(socket.biz, OrderStatus.PAID)}
    for number in range(CHUNK + 10):  # pages of orders this test did not create: no rows
        watchlist.sockets[f"{number:032x}"] = {FakeSocket(f"{number:032x}", "pending")}

    # async_to_sync from this thread runs the ORM's sync part here, where the capture listens.
    with CaptureQueriesContext(connection) as queries:
        caught_up = async_to_sync(watchlist.sweep)()

    # 1,030 orders watched, in two chunks: one query each, and one for the changed orders' states.
    assert len(queries) == 3
    assert caught_up == 20 and all(socket.shown == ["paid"] for socket in stale)


async def test_a_large_message_from_the_browser_closes_the_socket():
    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    await socket.send_to(text_data="x" * (settings.WS_MAX_MESSAGE_BYTES + 1))
    closed = await socket.receive_output()
    assert closed == {"type": "websocket.close", "code": 4009}
    # A result before the browser's disconnect comes: nothing is sent after the close (a server
    # may refuse it with an error, and the consumer would end before cleaning up).
    await push_order_changed(await change(order, OrderStatus.PAID))
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()  # raises what the consumer died of, if it did


async def test_the_sweep_sends_nothing_to_a_socket_that_closed_meanwhile():
    from checkout.watch import Watchlist

    _, order = await make_order(status=OrderStatus.PAID)
    watch = Watchlist()
    sent: list[object] = []

    class Socket:
        biz = order.biz
        sent_status = "pending"

        async def catch_up(self, state: PanelState) -> None:
            sent.append(self)
            for other in list(watch.sockets.get(self.biz, ())):
                watch.discard(other)  # the other tab closes while this one is being sent to

    watch.sockets[order.biz] = {Socket(), Socket()}
    await watch.sweep()
    assert len(sent) == 1


async def test_a_push_to_a_socket_the_browser_just_closed_leaves_it_to_clean_up(monkeypatch):
    """A browser's close reaches the server before the disconnect reaches the consumer: a push in
    between is sent to a closed connection, which a server may refuse with an OSError (as the ASGI
    spec asks). The socket must live on to handle the disconnect: its places under the caps,
    watchlist entry and group are given back."""
    from checkout.caps import caps
    from checkout.consumers import OrderStatusConsumer
    from checkout.watch import watchlist

    session, order = await make_order(status=OrderStatus.PENDING)
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    open_before = caps.total
    refused = asyncio.Event()

    async def closed(self, *args, **kwargs):
        refused.set()
        raise OSError("the client has disconnected")

    monkeypatch.setattr(OrderStatusConsumer, "send", closed)
    await push_order_changed(await change(order, OrderStatus.PAID))
    await asyncio.wait_for(refused.wait(), timeout=5)
    await socket.disconnect()  # raises what the consumer died of, if it did
    assert order.biz not in watchlist.sockets
    assert caps.total == open_before - 1
