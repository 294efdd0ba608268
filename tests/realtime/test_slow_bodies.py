"""Slow and large request bodies on the production server (daphne): connections that send a
POST's headers and then a trickle of its body hold nothing a shopper needs, and a notification
over the limit is refused and recorded. In production nginx refuses a declared length over 64 KiB
before reading it (deploy/nginx.conf: client_max_body_size) and buffers every body before it
reaches the shop (proxy_request_buffering, on by default)."""

import socket
import time

import httpx
import pytest

from tests.servers import daphne_server

NOTIFY = "/payments/notify/sandbox/"


@pytest.fixture
def server(tmp_path):
    shop = daphne_server(name="bodies", tmp_dir=tmp_path)
    shop.start()
    yield shop
    shop.stop()


def slow_post(port: int, path: str, declared: int) -> socket.socket:
    """A POST whose headers are all sent, and a few bytes of its body."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    conn.sendall(head.encode() + b'{"id": ')
    return conn


def test_eight_slow_bodies_do_not_keep_a_ninth_shopper_waiting(server):
    slow = [slow_post(server.port, NOTIFY, 100_000) for _ in range(8)]
    try:
        for conn in slow:
            conn.sendall(b" ")  # still coming
        started = time.monotonic()
        page = httpx.get(server.url + "/", timeout=5)
        elapsed = time.monotonic() - started
        assert page.status_code == 200
        assert elapsed < 1.0, f"the ninth shopper waited {elapsed:.2f} s"
    finally:
        for conn in slow:
            conn.close()


def test_a_notification_over_the_limit_is_refused_and_recorded(server):
    answer = httpx.post(
        server.url + NOTIFY,
        content=b"{" + b" " * (1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
        timeout=15,
    )
    assert answer.status_code == 400
    assert answer.json()["verdict"] == "too_large"
    assert "verdict=too_large" in server.log_text()  # stored, and its line logged
