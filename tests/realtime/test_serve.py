"""`manage.py serve`, the server process `make run` and `deploy/run` start (uvicorn), for real.

What the README promises of it: the background loops run from boot, a stop closes every socket with
1012 so pages reconnect, X-Forwarded-* is trusted only with PROXY_HEADERS and only from
FORWARDED_ALLOW_IPS, HTTPS redirects, every request is on the access log, a request's headers
have HTTP_HEADER_TIMEOUT seconds to arrive, and an idle kept-alive connection stays open for
HTTP_KEEP_ALIVE_TIMEOUT seconds.
"""

import asyncio
import os
import re
import signal
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.utils import timezone

from checkout.management.commands import serve
from checkout.models import Order, OrderStatus
from tests.checkout import factories as f
from tests.realtime.streams import next_status, open_stream

pytestmark = pytest.mark.django_db(transaction=True)

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "test-serve-secret-key-0123456789-0123456789-0123456789",
    "SANDBOX_API_KEY": "sk_test",
    "SANDBOX_NOTIFY_SECRET": "whsec_test",
    "ALLOWED_HOSTS": "127.0.0.1",
}
FAR = "203.0.113.7"  # a shopper's address, as a proxy reports it (TEST-NET-3, never contacted)


async def test_the_background_loops_run_from_boot_before_any_request(shops):
    """The embedded reconciler expires a lapsed order with no request ever made to the server."""
    past = timezone.now() - timezone.timedelta(minutes=1)
    lapsed = await sync_to_async(f.order)(
        await sync_to_async(f.shopper_session)(),
        status=OrderStatus.PENDING,
        expires_at=past,
        reconcile_after=past,
    )
    server = shops.new(
        name="boot", database_url=shops.database_url, env={"RECONCILE_INTERVAL": "0.5"}
    )
    server.prepared = True
    server.start(request=False)

    deadline = time.monotonic() + 30
    while (await Order.objects.aget(pk=lapsed.pk)).status != OrderStatus.EXPIRED:
        assert time.monotonic() < deadline, server.log_tail()
        await asyncio.sleep(0.2)
    assert "Application startup complete" in server.log_text()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
async def test_a_stop_closes_every_socket_with_1012_and_the_server_exits_by_itself(shops, stop):
    server = shops.start("stopping")
    shopper = await sync_to_async(f.shopper_session)()
    order = await sync_to_async(f.order)(shopper, status=OrderStatus.PENDING)
    streams = [await open_stream(server.url, order.biz, shopper.session_key) for _ in range(3)]
    for stream in streams:
        assert await next_status(stream) == "pending"

    server.process.send_signal(stop)
    exited = await sync_to_async(server.process.wait)(timeout=10)

    for stream in streams:
        await asyncio.wait_for(stream.wait_closed(), 5)
        assert stream.close_code == 1012  # service restart: hx-ws reconnects
    assert exited in (0, -stop), server.log_tail()  # uvicorn re-raises SIGTERM once it is done
    log = server.log_text()
    assert "Traceback" not in log, server.log_tail()
    assert "Application shutdown complete" in log
    assert f'"WebSocket /ws/order/{order.biz}/" [accepted]' in log  # the access log
    assert "connection open" not in log  # websockets' own line for the same handshake


async def test_behind_a_proxy_its_headers_give_the_client_and_the_scheme(shops):
    server = shops.new(
        name="proxied",
        database_url=shops.database_url,
        env={
            **PRODUCTION,
            "PROXY_HEADERS": "1",
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "METRICS_ALLOWED_ADDRS": "127.0.0.1,127.0.0.9",
        },
    )
    server.prepared = True
    server.start(request=False)  # every plain request is redirected to https
    https = {"X-Forwarded-Proto": "https"}

    async with httpx.AsyncClient(base_url=server.url) as proxy:
        plain = await proxy.get("/healthz")
        assert plain.status_code == 301
        assert plain.headers["location"] == f"https://127.0.0.1:{server.port}/healthz"
        secure = await proxy.get("/healthz", headers=https)
        assert secure.status_code == 200 and "strict-transport-security" in secure.headers
        assert (await proxy.get("/metrics", headers=https)).status_code == 200
        # The client is the one the proxy names: not loopback, so not allowed to scrape.
        forwarded = {**https, "X-Forwarded-For": FAR}
        assert (await proxy.get("/metrics", headers=forwarded)).status_code == 403

    # 127.0.0.9 is not in FORWARDED_ALLOW_IPS: its X-Forwarded-For is not believed.
    untrusted = httpx.AsyncHTTPTransport(local_address="127.0.0.9")
    async with httpx.AsyncClient(base_url=server.url, transport=untrusted) as stranger:
        assert (await stranger.get("/metrics", headers=forwarded)).status_code == 200

    log = server.log_text()
    assert f'{FAR}:0 - "GET /metrics HTTP/1.1" 403' in log  # the access log names the real client
    assert '"GET /healthz HTTP/1.1" 301' in log


async def test_without_proxy_headers_a_forwarded_for_header_is_ignored(shops):
    server = shops.start("direct", **PRODUCTION, HTTPS="0", METRICS_ALLOWED_ADDRS="127.0.0.1")
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get("/metrics", headers={"X-Forwarded-For": FAR})
        assert (await client.get("/no-such-page/")).status_code == 404
    assert answer.status_code == 200  # the peer, 127.0.0.1, not what it claims
    # Django's own log lines reach the server's log with DEBUG off (a 500's traceback goes there).
    assert "WARNING django.request Not Found: /no-such-page/" in server.log_text()
    assert "127.0.0.1:" in server.log_text() and '"GET /metrics HTTP/1.1" 200' in server.log_text()


@pytest.mark.parametrize(
    ("workers", "message"),
    [(2, "--workers 2 needs REDIS_URL"), (0, "--workers must be at least 1")],
)
def test_serve_refuses_workers_it_cannot_serve_right(settings, monkeypatch, workers, message):
    """Several processes on the embedded layer could not push across themselves: refused at start,
    before anything listens."""

    def served(*args, **kwargs):
        raise AssertionError("serve started serving")

    monkeypatch.setattr(serve, "uvicorn_config", served)
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match=message):
        call_command("serve", "--workers", str(workers))


async def test_with_workers_each_process_serves_and_all_stop_on_sigterm(shops, shared_redis):
    """`serve --workers 2`, as the benchmark's "uvicorn x2": processes on one port, via Redis."""
    server = shops.new(
        name="workers",
        database_url=shops.database_url,
        env={"REDIS_URL": shared_redis},
        command=("manage.py", "serve", "--workers", "2"),
    )
    server.prepared = True
    server.start()
    shopper = await sync_to_async(f.shopper_session)()
    order = await sync_to_async(f.order)(shopper, status=OrderStatus.PENDING)
    streams = [await open_stream(server.url, order.biz, shopper.session_key) for _ in range(6)]
    for stream in streams:
        assert await next_status(stream) == "pending"
    group = server.process.pid  # its own session: the workers are in its process group

    server.stop()

    for stream in streams:
        await asyncio.wait_for(stream.wait_closed(), 5)
        assert stream.close_code == 1012
    assert server.log_text().count("Application startup complete") == 2
    assert "SIGKILL" not in server.log_text(), server.log_tail()  # it stopped by itself
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break  # no worker left behind
        assert time.monotonic() < deadline, server.log_tail()
        await asyncio.sleep(0.2)


async def test_sockets_decline_compression_so_none_holds_a_zlib_state(shops):
    server = shops.start("plain")
    shopper = await sync_to_async(f.shopper_session)()
    order = await sync_to_async(f.order)(shopper, status=OrderStatus.PENDING)
    stream = await open_stream(server.url, order.biz, shopper.session_key)  # offers deflate

    assert "permessage-deflate" in stream.request.headers["Sec-WebSocket-Extensions"]
    assert "Sec-WebSocket-Extensions" not in stream.response.headers
    assert await next_status(stream) == "pending"
    await stream.close()


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes | None:
    """What the server sent before it closed the connection (the reader's end), if it closed it
    within `within` seconds; None if it did not."""
    sent = b""
    try:
        async with asyncio.timeout(within):
            while data := await reader.read(4096):
                sent += data
        return sent
    except TimeoutError:
        return None


async def answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bytes:
    """Send `request` on a kept-alive connection and read its whole answer: its status line."""
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE)[1])
    await reader.readexactly(length)
    return head.partition(b"\r\n")[0]


async def test_an_idle_kept_alive_connection_stays_open_longer_than_the_clients_pools(shops):
    """uvicorn closes an idle kept-alive connection after 5 s, before the clients' pools let go of
    theirs (the sandbox's aiohttp keeps them 15 s): a notification sent on one just as it closed
    failed, and waited for the payment system's retry. It stays open HTTP_KEEP_ALIVE_TIMEOUT
    seconds (75), and is closed then."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", shops.start("plain").port)
    assert await answer(reader, writer, request) == b"HTTP/1.1 200 OK"
    await asyncio.sleep(6)  # idle past uvicorn's own time
    assert await answer(reader, writer, request) == b"HTTP/1.1 200 OK"
    writer.close()

    short = shops.start("short", HTTP_KEEP_ALIVE_TIMEOUT="1")
    reader, writer = await asyncio.open_connection("127.0.0.1", short.port)
    assert await answer(reader, writer, request) == b"HTTP/1.1 200 OK"
    assert await closed_by_server(reader, within=3) == b""


async def test_a_request_whose_headers_do_not_come_in_time_is_answered_408_and_closed(shops):
    """uvicorn gives a request's headers all the time in the world, so a client that opens
    connections and sends nothing, or a byte now and then (slowloris), holds them and their file
    descriptors for ever. Each request's headers now have HTTP_HEADER_TIMEOUT seconds, from the
    connection's opening or the request's first byte; an open WebSocket is not timed. A request
    that had begun is answered 408 and logged, as nginx does; a connection on which nothing came
    is closed without a word."""
    server = shops.start("headers", HTTP_HEADER_TIMEOUT="1")
    shopper = await sync_to_async(f.shopper_session)()
    order = await sync_to_async(f.order)(shopper, status=OrderStatus.PENDING)
    stream = await open_stream(server.url, order.biz, shopper.session_key)
    assert await next_status(stream) == "pending"

    silent_reader, _ = await asyncio.open_connection("127.0.0.1", server.port)
    trickling_reader, trickling = await asyncio.open_connection("127.0.0.1", server.port)
    kept_reader, kept = await asyncio.open_connection("127.0.0.1", server.port)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"

    # One whole request, answered; then the next one's first line.
    assert await answer(kept_reader, kept, request + b"\r\n") == b"HTTP/1.1 200 OK"
    kept.write(request)

    async def trickle() -> None:
        trickling.write(request)
        for _ in range(50):
            await asyncio.sleep(0.2)
            if trickling.is_closing():
                return
            trickling.write(b"X")

    trickler = asyncio.ensure_future(trickle())
    try:
        silent, trickled, kept_waiting = [
            await closed_by_server(reader, within=10)
            for reader in (silent_reader, trickling_reader, kept_reader)
        ]
    finally:
        trickler.cancel()
    assert silent == b""
    for sent in (trickled, kept_waiting):
        assert sent.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), sent
        assert b"\r\nconnection: close\r\n" in sent
    assert server.log_text().count('- "-" 408') == 2, server.log_tail()

    # Headers that come in time are answered, however late after the connection opened.
    late_reader, late = await asyncio.open_connection("127.0.0.1", server.port)
    await asyncio.sleep(0.5)
    late.write(request + b"Connection: close\r\n\r\n")
    assert (await asyncio.wait_for(late_reader.read(), 5)).startswith(b"HTTP/1.1 200 ")
    # The WebSocket, open for longer than the headers' time: still answers.
    await asyncio.wait_for(await stream.ping(), 5)
    await stream.close()
    assert "Traceback" not in server.log_text(), server.log_tail()
