"""The shopper's status stream: `ws/order/<biz>/`, one socket per open checkout page.

Only the order's owner may subscribe. The socket joins the order's group first and then sends the
current panel, so a result that arrived before the socket opened (or while it reconnected) is shown.
Whatever the browser sends is ignored, never relayed, and a message over WS_MAX_MESSAGE_BYTES
closes the socket (1009). One client may hold only WS_MAX_PER_CLIENT sockets (`checkout.clients`).

A push carries the order's new state (`checkout.push`): the socket renders it in its own language,
in the event loop, with no query. Its first panel, and what the watchlist catches up, are read from
the database. Every panel shown records its state's version, and a state older than that is never
shown, however the messages and reads race. Pushes are at-most-once, so every socket is also on the
process's watchlist (`checkout.watch`), which catches up what a push lost.

The Pay button of a panel the socket sends carries the socket's panel id, and a Pay pressed there
names it in its push: that page shows Pay's answer, so the socket sends nothing, and the pending
panel is swapped in, and announced, once. Only while the socket's last panel is that button's:
a later one would have replaced the element Pay's answer was for, and htmx drops such an answer.
"""

import asyncio
import contextvars
import functools
import hashlib
import time

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from checkout.clients import client_of, slots
from checkout.languages import language_of_scope
from checkout.metrics import OPEN_SOCKETS, RESULT_PUSH_SECONDS
from checkout.models import OrderStatus
from checkout.panels import PanelState, panel_id_new, panel_order, panel_render, panel_state
from checkout.push import order_group
from checkout.selectors import order_for_owner
from checkout.shoppers import shopper_of
from checkout.watch import watchlist

MESSAGE_TOO_BIG = 1009


class OrderStatusConsumer(AsyncWebsocketConsumer):
    biz: str
    group: str | None = None
    shown_digest: bytes | None = None  # of the last panel sent, not the panel (it can be 3 KB)
    shown_version = -1  # of the last state shown: an older one is never shown
    sent_status: str | None = None
    panel_id: str | None = None  # in this socket's Pay forms, made with the first (unpaid.html)
    language: str | None = None
    client: str | None = None
    closed = False  # this consumer sent the close: nothing may be sent after it

    async def __call__(self, scope, receive, send) -> None:
        """Channels' `AsyncConsumer.__call__`, with one task per socket where Channels keeps two.

        Channels waits for the browser's events and the channel layer's messages with
        `await_many_dispatch`: a task for each, made anew after every message, and a wait over
        both, about 2.7 KiB per idle socket (bench/profile_notes.md, fifth pass). Here the browser's
        events are awaited in place, and the layer's by one task that lives as long as the socket.
        A lock keeps Channels' rule that a consumer handles one message at a time, and either side
        ending the consumer (a disconnect, StopConsumer, an error) ends it all, as in Channels.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        self.handling = asyncio.Lock()
        pushes = asyncio.ensure_future(self._pushes(asyncio.current_task()))
        try:
            while True:
                message = await receive()
                async with self.handling:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            ended = pushes.done() and not pushes.cancelled() and pushes.exception()
            if not ended:
                raise  # cancelled from outside
            if not isinstance(ended, StopConsumer):
                raise ended from None
        finally:
            # Cancelled, the layer's receive forgets the channel (as Channels' tasks are).
            pushes.cancel()
            await asyncio.gather(pushes, return_exceptions=True)
            # However it ended (a disconnect, an error, a browser gone before the accept went
            # out), what the socket took is given back.
            await self._leave()

    async def _pushes(self, consumer: asyncio.Task) -> None:
        """The layer's messages, each handled in turn with the browser's; ending here (a handler's
        StopConsumer or error) ends the consumer's own loop too, which then raises it on."""
        try:
            while True:
                message = await self.channel_receive()
                async with self.handling:
                    await self.dispatch(message)
        except asyncio.CancelledError:
            raise
        except BaseException:
            consumer.cancel()
            raise

    async def dispatch(self, message: dict) -> None:
        """Channels' dispatch without its trip to a database thread before every message.

        Channels 4.3 runs `close_old_connections` there for each push, connect and frame, on the
        one thread all sockets' database work shares. This consumer queries only inside
        `database_sync_to_async`, which closes old connections around each call itself, so a push,
        which needs no query, needs no thread either.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.biz = self.scope["url_route"]["kwargs"]["biz"]
        client = client_of(self.scope)
        if not slots.take(client):
            await self.close()  # before accept, and before any query: refused
            return
        self.client = client
        self.language = language_of_scope(self.scope)  # pushed panels speak the page's language
        group, shown = order_group(self.biz), None
        try:
            # Joined before the order is read: a result applied after the read is pushed here.
            await self.channel_layer.group_add(group, self.channel_name)
            shown = await self._owner_state()
        finally:
            if shown is None:  # not the owner, or the handshake failed: leave, give the slot back
                self._give_back_slot()
                await self.channel_layer.group_discard(group, self.channel_name)
        if shown is None:
            await self.close()  # before accept: the handshake is refused
            return
        self.group = group
        OPEN_SOCKETS.inc()
        await self.accept()  # an OSError if the browser left meanwhile: `__call__` cleans up
        self._forget_handshake()
        await self._show(shown)
        watchlist.add(self)

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def websocket_disconnect(self, message: dict) -> None:
        """Channels' own, without its trip to a database thread to close old connections (see
        `dispatch`); the consumer joins no `groups` of Channels' kind."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Shoppers have nothing to say on this stream: ignore it, and close on anything large.

        `manage.py serve` has uvicorn refuse such frames before they are buffered; this check
        keeps the cap under any other ASGI server too.
        """
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_MESSAGE_BYTES:
            await self.close(code=MESSAGE_TOO_BIG)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close, and send nothing more: a push or a sweep can still come before the disconnect,
        and a server refuses a send after the close (uvicorn with a RuntimeError, which would end
        the consumer before `disconnect` gives back the slot, the watchlist entry and the group)."""
        self.closed = True
        await super().close(code=code, reason=reason)

    async def order_changed(self, event: dict) -> None:
        """A push: the committed state, rendered here and now; or, from a Pay pressed in the
        panel this socket showed last, only taken as shown, Pay's answer showing it."""
        answered = (
            self.panel_id is not None
            and event.get("pressed_in") == self.panel_id
            and self.sent_status == OrderStatus.UNPAID
        )
        if await self._show(event["order"], answered=answered) and "applied_at" in event:
            RESULT_PUSH_SECONDS.observe(max(0.0, time.time() - event["applied_at"]))

    async def catch_up(self, state: PanelState) -> bool:
        """The watchlist's: the order's state as the database has it now."""
        return await self._show(state)

    async def _show(self, state: PanelState, *, answered: bool = False) -> bool:
        """Send the state's panel unless this socket showed a newer state, or this very panel, last,
        or the page shows it by a request's answer (`answered`); return whether it was sent."""
        if self.closed or state["version"] < self.shown_version:
            return False
        self.shown_version, self.sent_status = state["version"], state["status"]
        if answered:
            self.shown_digest = None
            return False
        if state["status"] == OrderStatus.UNPAID and self.panel_id is None:
            self.panel_id = panel_id_new()
        # Rendered in a context of its own: switching the language sets context variables, and
        # left in the socket's context they would stay for as long as it is open (~0.7 KiB).
        render = contextvars.copy_context().run
        order = panel_order(state)
        html = render(panel_render, order, language=self.language, panel_id=self.panel_id or "")
        digest = hashlib.blake2b(html.encode(), digest_size=16).digest()
        if digest == self.shown_digest:
            return False
        self.shown_digest = digest
        try:
            await self.send(text_data=html)
        except OSError:
            # The browser closed the socket and its disconnect is on the way, behind this push: a
            # server refuses a send on a closed connection with an OSError (the ASGI spec; uvicorn's
            # ClientDisconnected). Raised on, it would end the consumer before `disconnect` gives
            # back the slot, the watchlist entry and the group.
            return False
        return True

    def _forget_handshake(self) -> None:
        """Let go of the request's headers and cookies: the socket stays open for minutes, and
        what it needed of them (owner, language, client) was read at connect. The headers list is
        the server's own scope's too (the scope is copied, not its headers), so it is emptied in
        place: about 2 KiB per idle socket, more with a browser's headers."""
        headers = self.scope.get("headers")
        if isinstance(headers, list):
            headers.clear()
        self.scope.pop("cookies", None)

    async def _leave(self) -> None:
        """Give back the client slot, the watchlist entry and the group; once, however often
        called (the disconnect, then the end of `__call__`)."""
        self._give_back_slot()
        group, self.group = self.group, None
        if group:
            OPEN_SOCKETS.dec()
            watchlist.discard(self)
            await self.channel_layer.group_discard(group, self.channel_name)

    def _give_back_slot(self) -> None:
        if self.client is not None:
            slots.give_back(self.client)
            self.client = None

    @database_sync_to_async
    def _owner_state(self) -> PanelState | None:
        """The order's state if this socket's session owns it; None for anyone else.

        One trip to a database thread for the handshake. The session is read here only, and
        dropped: the socket outlives its handshake by minutes.
        """
        owner = shopper_of(self.scope.pop("session", None))
        order = order_for_owner(biz=self.biz, owner=owner)
        return None if order is None else panel_state(order)
