"""The loops a server process runs beside its requests.

The sandbox's notification deliveries run wherever the sandbox is mounted; the reconciler runs in
the server only in the embedded mode (a scaled deployment runs `manage.py reconcile` instead).
They start with the ASGI lifespan where the server speaks it (uvicorn, so `manage.py serve`), and
otherwise (daphne, in the benchmark) on the first connection.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings

logger = logging.getLogger("checkout.background")

Loop = Callable[[], Awaitable[None]]


def background_loops() -> list[Loop]:
    loops: list[Loop] = []
    if settings.SANDBOX_ENABLED:
        from sandbox.delivery import deliver_forever

        loops.append(deliver_forever)
    if settings.RECONCILE_IN_SERVER:
        from checkout.reconcile import reconcile_forever

        loops.append(reconcile_forever)
    return loops


async def supervise(loop: Loop) -> None:
    """Keep a loop running: a crash is logged and the loop restarted, never silently gone."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("background loop %s crashed; restarting", loop.__qualname__)
            await asyncio.sleep(1)


class WithBackgroundLoops:
    def __init__(self, app) -> None:
        self.app = app
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        if not self.tasks:
            self.tasks = [asyncio.ensure_future(supervise(loop)) for loop in background_loops()]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        self.start()
        await self.app(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self.tasks:
                    task.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return
