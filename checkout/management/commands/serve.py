"""`manage.py serve`: daphne on HOST:PORT, with the background loops started at boot.

Daphne has no ASGI lifespan, so without this the loops would wait for the first connection, and
deliveries or expiries due after a restart would wait with them.

On SIGTERM daphne cancels its connections without a close frame (the browser sees 1006). Here every
status stream is first closed with 1012 (service restart), which htmx's hx-ws reconnects on, so a
deploy reads as a restart to the page, which reconnects and gets the current panel.
"""

import asyncio
import logging

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger("checkout.serve")

SERVICE_RESTART = 1012
# Long enough for the close frames to be written before the reactor stops.
CLOSE_GRACE = 0.5


async def streams_close() -> None:
    from checkout.watch import watchlist

    closed = await watchlist.close_all(code=SERVICE_RESTART)
    logger.info("shutdown: closed %d status streams with %d", closed, SERVICE_RESTART)
    await asyncio.sleep(CLOSE_GRACE)


class Command(BaseCommand):
    help = "Serve the shop with daphne (HTTP and WebSockets) and its background loops."

    def handle(self, *args, **options) -> None:
        import daphne.server  # noqa: F401 - installs the asyncio reactor before twisted's default
        from daphne.cli import CommandLineInterface
        from twisted.internet import defer, reactor

        from shop.asgi import application

        reactor.callWhenRunning(lambda: asyncio.get_event_loop().call_soon(application.start))
        # Registered before daphne's own trigger, which cancels every connection: ours runs first.
        reactor.addSystemEventTrigger(
            "before",
            "shutdown",
            lambda: defer.Deferred.fromFuture(asyncio.ensure_future(streams_close())),
        )
        max_bytes = str(settings.WS_MAX_MESSAGE_BYTES)
        arguments = ["-b", settings.HOST, "-p", str(settings.PORT)]
        arguments += ["--websocket-max-message-size", max_bytes]
        arguments += ["--websocket-max-frame-size", max_bytes]
        # Daphne drops a handshake the application has not answered within 5 s; in a burst of
        # thousands, the last connects wait behind the first ones' database reads for longer.
        arguments += ["--websocket_connect_timeout", str(settings.WS_CONNECT_TIMEOUT)]
        if settings.PROXY_HEADERS:
            arguments.append("--proxy-headers")  # the client is X-Forwarded-For, from the proxy
        CommandLineInterface().run([*arguments, "shop.asgi:application"])
