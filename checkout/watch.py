"""The safety net under the push: channel layers are at-most-once, the database is not.

Each server process keeps the sockets it serves in a watchlist, and every WATCH_INTERVAL seconds
asks the database, in one query for all of them, which of their orders changed status since the
socket last sent a panel. Those orders' states are read in one more query, and their sockets render
them (a state older than the one a socket showed is ignored, as a push's would be). A dropped push
therefore shows within one interval, and the cost is one small query per process per interval, not
one poll per page; nor one read per socket when many pushes were lost at once (a Redis outage, an
overloaded process), which queued behind the sockets' handshakes for longer than the interval.
"""

import asyncio
import logging
from typing import Protocol

from django.conf import settings

from checkout.models import Order
from checkout.panels import PanelState, panel_state
from checkout.selectors import orders_with_payment

logger = logging.getLogger(__name__)

CHUNK = 1000


class Watcher(Protocol):
    biz: str
    sent_status: str | None

    async def catch_up(self, state: PanelState) -> bool: ...


class Watchlist:
    def __init__(self) -> None:
        self.sockets: dict[str, set[Watcher]] = {}
        self.task: asyncio.Task | None = None

    def add(self, socket: Watcher) -> None:
        self.sockets.setdefault(socket.biz, set()).add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def discard(self, socket: Watcher) -> None:
        group = self.sockets.get(socket.biz)
        if group is not None:
            group.discard(socket)
            if not group:
                del self.sockets[socket.biz]

    async def sweep(self) -> int:
        """Show every socket whose order's status differs from what it showed the order as it is
        now; return how many. Per CHUNK watched orders: one query for their statuses and, when
        some changed, one for those orders' states."""
        bizs = list(self.sockets)
        stale: list[tuple[Watcher, PanelState]] = []
        for start in range(0, len(bizs), CHUNK):
            chunk = bizs[start : start + CHUNK]
            behind: dict[str, list[Watcher]] = {}
            rows = Order.objects.filter(biz__in=chunk).values_list("biz", "status")
            async for biz, status in rows:
                sockets = [s for s in self.sockets.get(biz, ()) if s.sent_status != status]
                if sockets:
                    behind[biz] = sockets
            if behind:
                async for order in orders_with_payment(behind):
                    state = panel_state(order)
                    stale += [(socket, state) for socket in behind[order.biz]]
        for socket, state in stale:
            # A socket that closed while the queries ran is gone from the list: nothing to send to.
            if socket in self.sockets.get(socket.biz, ()):
                await socket.catch_up(state)
        return len(stale)

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(settings.WATCH_INTERVAL)
            try:
                caught_up = await self.sweep()
            except Exception:
                logger.exception("watchlist sweep failed")
                continue
            if caught_up:
                logger.warning("watchlist caught up sockets=%d (a push was lost)", caught_up)


watchlist = Watchlist()
