"""The shopper's status stream: `ws/order/<biz>/`, one socket per open checkout page.

Only the order's owner may subscribe. The socket joins the order's group first and then sends the
current panel, so a result that arrived before the socket opened (or while it reconnected) is shown.
Whatever the browser sends is ignored, never relayed; a message over WS_MAX_MESSAGE_BYTES closes
the socket (4009). A socket over one of the caps on sockets per session, per order, per client
address or per process is refused before it is accepted (`checkout.caps`).

A push carries the order's new state (`checkout.push`), which the socket renders in its own
language with no query. Every panel shown records its state's version, and an older state is never
shown, however pushes and reads race. Pushes are at-most-once, so every socket is also on the
process's watchlist (`checkout.watch`), which catches up what a push lost.

The Pay button of a panel the socket sends carries the socket's panel id, and a Pay pressed there
names it in its push: that page shows Pay's answer, so the socket sends nothing, and the pending
panel is swapped in, and announced, once.
"""

import hashlib
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from checkout.caps import Held, caps, client_of
from checkout.languages import language_of_scope
from checkout.metrics import OPEN_SOCKETS, RESULT_PUSH_SECONDS, SOCKETS_REFUSED
from checkout.models import OrderStatus
from checkout.panels import PanelState, panel_id_new, panel_order, panel_render, panel_state
from checkout.push import order_group
from checkout.selectors import order_for_owner
from checkout.shoppers import shopper_of
from checkout.watch import watchlist

# 1009's meaning (message too big) in the range an application may send: daphne sends only 1000
# and 3000-4999.
MESSAGE_TOO_BIG = 4009


class OrderStatusConsumer(AsyncWebsocketConsumer):
    biz: str
    group: str | None = None  # set while the socket is in its order's group
    held: Held | None = None  # set while the socket counts against the caps
    shown_digest: bytes | None = None  # of the last panel sent
    shown_version = -1  # of the last state shown: an older one is never shown
    sent_status: str | None = None
    panel_id: str | None = None  # in this socket's Pay forms (unpaid.html)
    language: str | None = None
    accepted = False
    closed = False

    async def __call__(self, scope, receive, send) -> None:
        """Channels' consumer, which gives back what the socket held however it ends: a
        disconnect, a browser gone mid-handshake, an error in a handler."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.leave()

    async def connect(self) -> None:
        self.biz = self.scope["url_route"]["kwargs"]["biz"]
        self.held = caps.take_client(client_of(self.scope))
        if self.held is None:
            SOCKETS_REFUSED.labels(reason="cap").inc()
            await self.close()  # before accept, and before any query: refused
            return
        self.language = language_of_scope(self.scope)  # pushed panels speak the page's language
        # Joined before the order is read: a result applied after the read is pushed here.
        self.group, state = order_group(self.biz), None
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
            owned = await self.owner_state()
            if owned is None:
                SOCKETS_REFUSED.labels(reason="not_owner").inc()
            else:
                # The session's and the order's places only once the owner check has named them:
                # a stranger's sockets never count against a shopper's.
                shopper, found = owned
                if caps.take_shopper(self.held, shopper=shopper, biz=self.biz):
                    state = found
                else:
                    SOCKETS_REFUSED.labels(reason="cap").inc()
        finally:
            if state is None:  # not the owner, over a cap, or the handshake failed: nothing kept
                await self.leave()
        if state is None:
            await self.close()  # before accept: the handshake is refused
            return
        await self.accept()
        self.accepted = True
        OPEN_SOCKETS.inc()
        await self.show(state)
        watchlist.add(self)

    async def disconnect(self, code: int) -> None:
        await self.leave()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Shoppers have nothing to say on this stream: ignore it, and close on anything large."""
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_MESSAGE_BYTES:
            await self.close(code=MESSAGE_TOO_BIG)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close, and send nothing more: a push or a sweep can still come before the disconnect."""
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
        if await self.show(event["order"], answered=answered) and "applied_at" in event:
            RESULT_PUSH_SECONDS.observe(max(0.0, time.time() - event["applied_at"]))

    async def catch_up(self, state: PanelState) -> bool:
        """The watchlist's: the order's state as the database has it now."""
        return await self.show(state)

    async def show(self, state: PanelState, *, answered: bool = False) -> bool:
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
        html = panel_render(
            panel_order(state), language=self.language, panel_id=self.panel_id or ""
        )
        digest = hashlib.blake2b(html.encode(), digest_size=16).digest()
        if digest == self.shown_digest:
            return False
        self.shown_digest = digest
        try:
            await self.send(text_data=html)
        except OSError:
            # The browser closed the socket and its disconnect is on the way: a server may refuse
            # a send on a closed connection with an OSError (the ASGI spec).
            return False
        return True

    async def leave(self) -> None:
        """Give back the socket's places under the caps, the watchlist entry and the group; once,
        however often called."""
        if self.held is not None:
            caps.give_back(self.held)
            self.held = None
        if self.accepted:
            self.accepted = False
            OPEN_SOCKETS.dec()
        group, self.group = self.group, None
        if group is not None:
            watchlist.discard(self)
            await self.channel_layer.group_discard(group, self.channel_name)

    @database_sync_to_async
    def owner_state(self) -> tuple[str, PanelState] | None:
        """The owner's shopper token and the order's state if this socket's session owns it; None
        for anyone else."""
        order = order_for_owner(biz=self.biz, owner=shopper_of(self.scope.get("session")))
        return None if order is None else (order.owner, panel_state(order))
