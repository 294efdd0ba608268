"""The safety net under the push: channel layers are at-most-once, the database is not.

Each server process keeps the sockets it serves in a watchlist, and every WATCH_INTERVAL seconds
asks the database, in one query for all of them, which of their orders changed status since the
socket last sent a panel. Those sockets read their order again and re-render (a state older than
the one a socket showed is ignored, as a push's would be). A dropped push therefore shows within one
interval, and the cost is one small query per process per interval, not one poll per page.
"""

import asyncio
import logging
from typing import Protocol

from django.conf import settings

from checkout.models import Order

logger = logging.getLogger(__name__)

CHUNK = 1000


class Watcher(Protocol):
    biz: str
    sent_status: str | None

    async def send_panel(self) -> bool: ...


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
        """Re-send to every socket whose order's status differs from what it showed; return how many."""
        bizs = list(self.sockets)
        stale: list[Watcher] = []
        for start in range(0, len(bizs), CHUNK):
            chunk = bizs[start : start + CHUNK]
            rows = Order.objects.filter(biz__in=chunk).values_list("biz", "status")
            async for biz, status in rows:
                stale += [s for s in self.sockets.get(biz, ()) if s.sent_status != status]
        for socket in stale:
            # A socket that closed while the query ran is gone from the list: nothing to send to.
            if socket in self.sockets.get(socket.biz, ()):
                await socket.send_panel()
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
