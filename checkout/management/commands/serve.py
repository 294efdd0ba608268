"""`manage.py serve`: daphne on HOST:PORT, with the background loops started at boot.

Daphne has no ASGI lifespan, so without this the loops would wait for the first connection, and
deliveries or expiries due after a restart would wait with them.

On SIGTERM daphne cancels its connections without a close frame (the browser sees 1006). Here every
WebSocket is first closed with 1012 (service restart), which htmx's hx-ws reconnects on, so a
deploy reads as a restart to the page, which reconnects and gets the current panel.
"""

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger("checkout.serve")

SERVICE_RESTART = 1012
# Long enough for the close frames to go out, and the browsers' replies to come back.
CLOSE_GRACE = 0.5


def sockets_close(server) -> int:
    """Send 1012 on every open WebSocket of a daphne server; return how many."""
    from daphne.ws_protocol import WebSocketProtocol

    closed = 0
    for protocol in list(server.connections):
        if isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN:
            # autobahn's public sendClose() only takes 1000 and 3000-4999; 1012 is a code of the
            # protocol itself (RFC 6455 registry), so the frame is sent one level down.
            protocol.sendCloseFrame(code=SERVICE_RESTART, isReply=False)
            closed += 1
    return closed


def stop_gracefully(cli, reactor) -> None:
    """On SIGTERM/SIGINT: close the sockets with 1012, then stop daphne as it would stop itself.

    This replaces twisted's signal handlers rather than adding a shutdown trigger, because
    daphne's trigger cancels every connection first. A second signal stops at once.
    """
    loop = asyncio.get_event_loop()
    stopping = False

    async def stop() -> None:
        try:
            closed = sockets_close(cli.server)
            logger.info("shutdown: closed %d sockets with %d", closed, SERVICE_RESTART)
            await asyncio.sleep(CLOSE_GRACE)
        finally:
            reactor.stop()

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:
            loop.call_soon_threadsafe(reactor.stop)
            return
        stopping = True
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(stop()))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


class Command(BaseCommand):
    help = "Serve the shop with daphne (HTTP and WebSockets) and its background loops."

    def handle(self, *args, **options) -> None:
        import daphne.server  # noqa: F401 - installs the asyncio reactor before twisted's default
        from daphne.cli import CommandLineInterface
        from twisted.internet import reactor

        from shop.asgi import application

        cli = CommandLineInterface()
        reactor.callWhenRunning(lambda: asyncio.get_event_loop().call_soon(application.start))
        # After the reactor has installed its own signal handlers, which these replace.
        reactor.callWhenRunning(stop_gracefully, cli, reactor)
        max_bytes = str(settings.WS_MAX_MESSAGE_BYTES)
        arguments = ["-b", settings.HOST, "-p", str(settings.PORT)]
        arguments += ["--websocket-max-message-size", max_bytes]
        arguments += ["--websocket-max-frame-size", max_bytes]
        # Daphne drops a handshake the application has not answered within 5 s; in a burst of
        # thousands, the last connects wait behind the first ones' database reads for longer.
        arguments += ["--websocket_connect_timeout", str(settings.WS_CONNECT_TIMEOUT)]
        if settings.PROXY_HEADERS:
            arguments.append("--proxy-headers")  # the client is X-Forwarded-For, from the proxy
        cli.run([*arguments, "shop.asgi:application"])
