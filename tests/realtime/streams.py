"""Talking to real shop processes from tests and benchmarks: status streams, notifications, Redis.

A status stream is a `websockets` client carrying the order owner's session cookie and an allowed
Origin. `local_ip` picks the loopback address it comes from (any of 127.0.0.0/8), so a test can be
several clients at once, as a burst from many shoppers is.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from tests.servers import ShopServer, free_port

SESSION_COOKIE = "sessionid"


async def open_stream(
    server_url: str,
    biz: str,
    session_key: str,
    *,
    local_ip: str = "127.0.0.1",
    origin: str | None = None,
) -> ClientConnection:
    """The order's status stream, as the page served by `server_url` opens it (or a page of
    `origin`)."""
    url = server_url.replace("http://", "ws://", 1) + f"/ws/order/{biz}/"
    return await connect(
        url,
        origin=origin or server_url,
        additional_headers={"Cookie": f"{SESSION_COOKIE}={session_key}"},
        local_addr=(local_ip, 0),
        open_timeout=120,
        ping_interval=None,
        max_size=2**20,
    )


async def next_status(stream: ClientConnection, timeout: float = 30) -> str:
    """The data-status of the next panel the stream sends."""
    html = await asyncio.wait_for(stream.recv(), timeout)
    marker = 'data-status="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


async def status_becomes(stream: ClientConnection, status: str, timeout: float = 30) -> bool:
    """Read panels until one shows `status`; False if the stream ends or falls silent first."""
    try:
        async with asyncio.timeout(timeout):
            while await next_status(stream, timeout) != status:
                pass
        return True
    except Exception:  # timed out, or the stream closed
        return False


def post_notice(server: ShopServer, body: bytes, headers: dict, timeout: float = 15) -> int:
    request = urllib.request.Request(
        server.url + "/payments/notify/sandbox/",
        data=body,
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def postgres_url(settings_dict: dict) -> str:
    """The URL of the database the test runs on, for server processes to share it."""
    user = settings_dict["USER"] or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict["PASSWORD"] else ""
    host = settings_dict["HOST"] or "127.0.0.1"
    port = settings_dict["PORT"] or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


class RedisServer:
    """A redis-server of the test's own on a free port, which the test may stop and start again."""

    def __init__(self, tmp_dir: Path) -> None:
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.tmp_dir = tmp_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = (self.tmp_dir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            cwd=self.tmp_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server on {self.port} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip()

    def subscribers(self, channel: str) -> int:
        """How many connections are subscribed to a pub/sub channel (PUBSUB NUMSUB)."""
        lines = self.cli("PUBSUB", "NUMSUB", channel).splitlines()
        return int(lines[1]) if len(lines) == 2 else 0
