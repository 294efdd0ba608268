"""uvicorn's protocols, holding less for each open socket.

A shopper's socket stays open, idle, for as long as the shopper looks at the order: during a busy
sale, thousands per process. uvicorn keeps things per socket that an idle socket does not need
(bench/profile_notes.md, "Memory per idle socket: what the server and the socket let go"):

- the opening handshake, request and response with their headers (websockets' `Request` and
  `Response`), used only to answer it; the ASGI scope keeps its own copy of the request's headers;
- an `asyncio.Queue` for what the browser sends (four deques, ~3.3 KiB): a `Mailbox` does the same;
- the HTTP protocol that read the upgrade request. It hands the connection to the WebSocket
  protocol and is dropped, but it and its parser refer to each other (the parser calls back its
  methods), so ~25 objects per socket wait for the cycle collector, and those that have lived
  through a collection or two wait for a full one ("The HTTP protocol left behind by an upgrade").

One behaviour differs: an accept that cannot go out because the browser has just left (its
connection closing, the loss not yet handled) is refused with uvicorn's `ClientDisconnected`, the
OSError the ASGI spec asks for a send on a closed connection, which uvicorn raises a moment later
anyway. uvicorn 0.54.0 drops that accept unsent and refuses the app's next send with a
RuntimeError, an "Exception in ASGI application" in the log for a shopper closing a tab.

And one thing uvicorn lacks: a time limit on a request's headers. uvicorn times a kept-alive
connection only while it is idle, between requests, and stops at its first byte, so a client that
opens connections and sends nothing, or a header's byte now and then (slowloris), holds them, and
their file descriptors, for as long as it likes. Here a request's headers must be in within
HTTP_HEADER_TIMEOUT seconds of the connection's opening or of the request's first byte, or the
connection is closed: a request that had begun is answered 408 first, with an access log line, as
nginx does in front (`client_header_timeout`); this covers the server reached directly. A
connection on which nothing came (a browser's preconnect) is closed without a word, as nginx does.

Everything else is uvicorn's own. `manage.py serve` (`uvicorn_config`) serves with these.
"""

import asyncio

from django.conf import settings
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import ClientDisconnected, get_client_addr
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from shop.mailbox import Mailbox


class HttpProtocol(HttpToolsProtocol):
    headers_due: asyncio.TimerHandle | None = None
    headers_coming = False  # a request has begun and its headers are not all in

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._time_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.headers_coming = True
        if self.headers_due is None:  # the next request on a kept-alive connection
            self._time_headers()

    def on_headers_complete(self) -> None:
        self.headers_coming = False
        self._untime_headers()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._untime_headers()
        super().connection_lost(exc)

    def _time_headers(self) -> None:
        if settings.HTTP_HEADER_TIMEOUT > 0:
            self.headers_due = self.loop.call_later(
                settings.HTTP_HEADER_TIMEOUT, self._headers_late
            )

    def _headers_late(self) -> None:
        """A request's headers, or a new connection's first request, did not come in time. The
        answer is uvicorn's `send_400_response` with 408, which that method cannot send."""
        self.headers_due = None
        answering = self.cycle is None or self.cycle.response_complete  # not inside another answer
        if self.headers_coming and answering:
            message = b"The request's headers did not all come in time."
            headers = [
                name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
            ]
            self.transport.write(
                b"".join(
                    [
                        STATUS_LINE[408],
                        *headers,
                        b"content-type: text/plain; charset=utf-8\r\n",
                        b"content-length: %d\r\n" % len(message),
                        b"connection: close\r\n\r\n",
                        message,
                    ]
                )
            )
            if self.access_log:  # as uvicorn logs a request it answered, the request line unknown
                self.access_logger.info('%s - "-" 408', get_client_addr(self.scope))
        self.transport.close()

    def _untime_headers(self) -> None:
        if self.headers_due is not None:
            self.headers_due.cancel()
            self.headers_due = None

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        # The transport now feeds the WebSocket protocol; nothing reads through this one again
        # (uvicorn lets go of the parser so when a connection is lost).
        self.parser = None


class SocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Mailbox()  # put_nowait, get and empty: all that uvicorn calls

    async def send(self, message) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and not self.handshake_complete:
            raise ClientDisconnected()  # the connection is closing: nothing was sent
        request = getattr(self, "request", None)
        if self.handshake_complete and request is not None:
            # Answered (accepted, or refused with a response): neither uvicorn nor websockets
            # reads them again. websockets' parser keeps the request until the socket closes (a
            # local of its generator), so its headers are emptied too.
            request.headers.clear()
            self.request = self.response = None
