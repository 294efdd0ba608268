"""`shop.socket_protocol`, uvicorn's protocols as `manage.py serve` runs them: what they let go of
once the handshake is answered, and that sockets still work as uvicorn's do.

A uvicorn server in this process, on a free port, serving a small ASGI app; the client is
`websockets`. Everything the shop itself does over the protocol is in test_serve.py.
"""

import asyncio
import contextlib
import gc
from collections import Counter

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from shop.mailbox import Mailbox
from shop.socket_protocol import HttpProtocol, SocketProtocol
from tests.servers import free_port


async def echo(scope, receive, send) -> None:
    """Accepts (or refuses a path under /refuse), echoes text frames, closes with 4000 on "bye"."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    if scope["path"].startswith("/refuse"):
        await send({"type": "websocket.close"})
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4000})
            return
        await send({"type": "websocket.send", "text": "echo " + message["text"]})


class Watched(SocketProtocol):
    """SocketProtocol, remembering each handshake request it was given."""

    requests: list = []

    def handle_connect(self, event) -> None:
        self.requests.append(event)
        super().handle_connect(event)


@contextlib.asynccontextmanager
async def serving(app=echo, http=HttpProtocol, ws=Watched):
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free_port(),
        http=http,
        ws=ws,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    try:
        yield server, f"ws://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def connections(server: uvicorn.Server) -> list[WebSocketsSansIOProtocol]:
    kind = WebSocketsSansIOProtocol
    return [c for c in server.server_state.connections if isinstance(c, kind)]


async def test_an_open_socket_keeps_neither_its_handshake_nor_an_asyncio_queue():
    Watched.requests.clear()
    async with serving() as (server, url):
        async with connect(url + "/chat", additional_headers={"X-Big": "x" * 2000}) as socket:
            await socket.send("hello")
            assert await socket.recv() == "echo hello"
            [protocol] = connections(server)
            assert protocol.request is None and protocol.response is None
            # websockets' parser holds on to the request until the socket closes: emptied.
            [request] = Watched.requests
            assert len(request.headers) == 0
            assert isinstance(protocol.queue, Mailbox)
            # The app's scope has its own copy of the headers, untouched.
            assert (b"x-big", b"x" * 2000) in protocol.scope["headers"]


async def test_frames_flow_both_ways_and_the_apps_close_code_reaches_the_browser():
    async with serving() as (_, url):
        async with connect(url + "/chat") as socket:
            for n in range(3):
                await socket.send(f"frame {n}")
                assert await socket.recv() == f"echo frame {n}"
            await socket.send("bye")
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
    assert closed.value.rcvd.code == 4000


async def test_a_refused_handshake_is_a_403_and_leaves_nothing_open():
    async with serving() as (server, url):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url + "/refuse"):
                pass
        assert refused.value.response.status_code == 403
        for _ in range(100):
            if not connections(server):
                break
            await asyncio.sleep(0.01)
        assert connections(server) == []


async def test_a_browser_that_leaves_is_a_disconnect_for_the_app():
    left: list[dict] = []

    async def app(scope, receive, send) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            left.append(await receive())

    async with serving(app) as (_, url):
        async with connect(url + "/"):
            pass
        for _ in range(500):
            if left:
                break
            await asyncio.sleep(0.01)
    assert [message["type"] for message in left] == ["websocket.disconnect"]


class Closing:
    """A transport whose connection has begun to close: the browser has left, and the loss has
    not been handled yet."""

    def __init__(self, transport) -> None:
        self.transport = transport

    def is_closing(self) -> bool:
        return True

    def __getattr__(self, name: str):
        return getattr(self.transport, name)


@pytest.mark.parametrize(("ws", "refused"), [(Watched, OSError), (WebSocketsSansIOProtocol, None)])
async def test_an_accept_the_browser_left_before_is_refused_as_a_closed_connection(ws, refused):
    """The app accepts just as the browser leaves: the accept is refused as a send on a closed
    connection is (an OSError, which the app handles as the browser gone). uvicorn's own protocol
    (the second case) takes the accept and refuses the next send with a RuntimeError instead."""
    go, failed = asyncio.Event(), []

    async def app(scope, receive, send) -> None:
        await receive()
        await go.wait()
        try:
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "too late"})
        except Exception as error:
            failed.append(error)

    async with serving(app, ws=ws) as (server, url):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.config.port)
        writer.write(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await writer.drain()
        for _ in range(500):
            if connections(server) and connections(server)[0].scope:
                break
            await asyncio.sleep(0.01)
        try:
            [protocol] = connections(server)
            protocol.transport = Closing(protocol.transport)
        finally:
            go.set()
        for _ in range(500):
            if failed:
                break
            await asyncio.sleep(0.01)
        writer.close()
    [error] = failed
    if refused is None:
        assert type(error) is RuntimeError and "got 'websocket.send'" in str(error)
    else:
        assert isinstance(error, refused) and not isinstance(error, RuntimeError)


def left_for_the_collector() -> Counter[type]:
    """How many objects of each type the cycle collector finds unreachable now; then frees them.
    (type(), not isinstance(): a dead weak proxy among them raises on any other look.)"""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = Counter(type(thing) for thing in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    gc.collect()  # they were kept only to be counted
    return found


@pytest.mark.parametrize(("http", "left"), [(HttpProtocol, 0), (HttpToolsProtocol, 3)])
async def test_an_upgraded_connection_leaves_its_http_protocol_to_reference_counting(http, left):
    """uvicorn's own HTTP protocol, once it has handed the connection over, waits for the cycle
    collector with its parser (the second case shows the test can tell; if uvicorn's stops doing
    that, HttpProtocol can go)."""
    async with serving(http=http) as (_, url):
        left_for_the_collector()
        gc.disable()
        try:
            for n in range(3):
                async with connect(url + "/chat") as socket:
                    await socket.send(f"frame {n}")
                    assert await socket.recv() == f"echo frame {n}"
            found = left_for_the_collector()
        finally:
            gc.enable()
    assert sum(n for kind, n in found.items() if issubclass(kind, HttpToolsProtocol)) == left
