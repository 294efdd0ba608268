"""`manage.py serve`: the shop under uvicorn on HOST:PORT, as `make run` and `deploy/run` serve it.

uvicorn speaks the ASGI lifespan, so the background loops (`shop.background`) start at boot, not
with the first connection. On SIGTERM or Ctrl-C it stops listening, closes every WebSocket with
1012 (service restart, which htmx's hx-ws reconnects on) and lets requests in flight finish for up
to SHUTDOWN_TIMEOUT seconds, then stops the loops. The benchmark serves its "uvicorn" kind with
this same configuration (`bench/servers.py`).
"""

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from uvicorn.supervisors import Multiprocess

from shop.socket_protocol import HttpProtocol, SocketProtocol

# Requests in flight at shutdown may finish within this; a Pay waits for the payment system for up
# to PAYMENT_GATEWAY_TIMEOUT (10 s), and deploy/run kills what is still running after 20 s.
SHUTDOWN_TIMEOUT = 12


def uvicorn_config(*, workers: int = 1) -> uvicorn.Config:
    return uvicorn.Config(
        "shop.asgi:application",
        host=settings.HOST,
        port=settings.PORT,
        workers=workers,
        # What uvicorn's "standard" extra picks by itself, named so that a missing one fails here
        # instead of serving slower (bench/profile_notes.md): uvloop, httptools (HttpProtocol is
        # uvicorn's httptools protocol), and websockets' sans-I/O protocol, which holds ~10 KiB
        # less per idle socket than its legacy one. shop.socket_protocol's subclasses keep less
        # per socket again.
        loop="uvloop",
        http=HttpProtocol,
        ws=SocketProtocol,
        lifespan="on",  # a background loop that cannot start fails the boot
        # A frame or message over the cap is refused before it is buffered: closed with 1009.
        ws_max_size=settings.WS_MAX_MESSAGE_BYTES,
        # Decline the browsers' permessage-deflate, as daphne did: with it each socket keeps a
        # zlib compressor and decompressor, 71 KiB per idle socket instead of 32, for panels of a
        # few KiB (bench/profile_notes.md, "A browser's socket costs more").
        ws_per_message_deflate=False,
        # uvicorn trusts X-Forwarded-* from 127.0.0.1 unless told not to; only behind a proxy.
        proxy_headers=settings.PROXY_HEADERS,
        forwarded_allow_ips=settings.FORWARDED_ALLOW_IPS,
        timeout_keep_alive=settings.HTTP_KEEP_ALIVE_TIMEOUT,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT,
        # Logging is Django's LOGGING (shop/settings.py), access log included.
        log_config=None,
        access_log=True,
    )


class Command(BaseCommand):
    help = "Serve the shop (HTTP and WebSockets) with uvicorn, and its background loops."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help="processes sharing PORT (with REDIS_URL); deploy/run gives each its own port",
        )

    def handle(self, *args, workers: int = 1, **options) -> None:
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        if workers > 1 and not settings.REDIS_URL:
            # Each process would have its own embedded channel layer: a result applied in one would
            # not reach the sockets open on another until the watchlist's next sweep.
            raise CommandError(f"--workers {workers} needs REDIS_URL, which carries the pushes.")
        config = uvicorn_config(workers=workers)
        try:
            if workers > 1:
                Multiprocess(config, sockets=[config.bind_socket()]).run()
            else:
                uvicorn.Server(config).run()
        except KeyboardInterrupt:
            pass  # Ctrl-C: uvicorn has shut down gracefully, then raised SIGINT again
