"""Tiny HTTP servers in a thread, for a payment system (or a shop) that misbehaves on purpose."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON and logs nothing."""

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up on a slow answer is the point of the tests


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free port, in a thread; yields the base URL (no trailing slash)."""
    server = QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def answering(
    status: int,
    body: bytes = b"{}",
    delay: float = 0.0,
    *,
    arrived: threading.Event | None = None,
    release: threading.Event | None = None,
) -> Iterator[str]:
    """Serve every request with `status` after `delay` seconds; yields the base URL.

    With `arrived` and `release`, each request sets `arrived` and is held until `release` is set,
    so a test can act while the caller is waiting for this answer.
    """

    class Handler(JsonHandler):
        def _answer(self) -> None:
            if arrived is not None:
                arrived.set()
            if release is not None:
                release.wait(30)
            time.sleep(delay)
            self.answer(status, body)

        do_GET = do_POST = _answer

    with serving(Handler) as url:
        yield url + "/"


class FailingProxy:
    """Forwards POSTs to `target` (a base URL), except that it answers 500 to the next `failures`
    requests: a shop that is down for a while, in front of a real one."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.failures = 0
        self.failed = 0
        self.forwarded = 0
        self.lock = threading.Lock()

    def fail_next(self, count: int) -> None:
        with self.lock:
            self.failures = count

    def _take_failure(self) -> bool:
        with self.lock:
            if self.failures > 0:
                self.failures -= 1
                self.failed += 1
                return True
            self.forwarded += 1
            return False


@contextmanager
def failing_proxy(target: str) -> Iterator[tuple[str, FailingProxy]]:
    """Serve a FailingProxy in a thread; yields its base URL and the proxy to steer it."""
    import urllib.error
    import urllib.request

    proxy = FailingProxy(target)

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if proxy._take_failure():
                status, answer = 500, b'{"error": "down for a while"}'
            else:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                request = urllib.request.Request(
                    proxy.target + self.path, data=body, headers=headers, method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status, answer = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, answer = error.code, error.read()
            self.answer(status, answer)

    with serving(Handler) as url:
        yield url, proxy


@contextmanager
def closing_kept_alive(
    status: int, body: bytes, *, hold: float = 0.0, later_answers_after: float = 0.0
) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Answer the first request on each connection with `status` and keep the connection alive;
    close it, unanswered, when a second request comes on it: as a server whose idle timeout closes
    a kept-alive connection just as the client sends on it. Yields the base URL and, for every
    request that came, its path and Idempotency-Key header ("" without one).

    `hold`: seconds such a request waits before its connection is closed; `later_answers_after`:
    seconds every answer but the very first waits."""
    came: list[tuple[str, str]] = []

    class Handler(JsonHandler):
        # Keep-alive: one handler per connection, serving its requests in turn.
        protocol_version = "HTTP/1.1"
        served = 0

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            came.append((self.path, self.headers.get("Idempotency-Key", "")))
            self.served += 1
            if self.served > 1:
                time.sleep(hold)
                self.close_connection = True  # closed under the request: no answer
                return
            if len(came) > 1:
                time.sleep(later_answers_after)
            self.answer(status, body)

    with serving(Handler) as url:
        yield url + "/", came
