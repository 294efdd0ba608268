"""Shop server processes for tests that need a real server: browser, multi-process, benchmarks.

`ShopServer` starts the shop the way `make run` does (`manage.py migrate`, `seed_demo`, then
`manage.py serve`: uvicorn plus the background loops) but on a free port and, unless told otherwise,
on its own SQLite file, so tests never touch the developer's database or port 8000. It can be
stopped (SIGTERM, then SIGKILL after a timeout) and started again on the same port and database,
which is what restart tests need. Its output goes to a log file whose tail `ServerError` and
`log_tail()` show, because a server that dies in a subprocess otherwise leaves no trace in pytest.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What the shop reads from the environment. None of it is inherited from the test run (pytest sets
# DJANGO_SETTINGS_MODULE=tests.settings, a developer may export DATABASE_URL or REDIS_URL): a server
# gets the embedded defaults plus exactly what its test asks for.
SHOP_ENV = frozenset(
    {
        "DJANGO_SETTINGS_MODULE",
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "HOST",
        "PORT",
        "SITE_URL",
        "DATABASE_URL",
        "REDIS_URL",
        "PAYMENT_GATEWAY_URL",
        "PAYMENT_GATEWAY_PROXY",
        "PAYMENT_GATEWAY_TIMEOUT",
        "SANDBOX_ENABLED",
        "SANDBOX_API_KEY",
        "SANDBOX_NOTIFY_SECRET",
        "SANDBOX_NOTIFY_SECRETS_OLD",
        "SANDBOX_RETRY_SCALE",
        "SANDBOX_API_LATENCY",
        "ORDER_PAYMENT_TTL",
        "RECONCILE_IN_SERVER",
        "RECONCILE_QUERY_AFTER",
        "RECONCILE_INTERVAL",
        "REDIS_CHANNEL_LAYER",
        "REDIS_MAX_CONNECTIONS",
        "WATCH_INTERVAL",
        "PUSH_TIMEOUT",
        "WS_MAX_MESSAGE_BYTES",
        "WS_MAX_PER_CLIENT",
        "PROXY_HEADERS",
        "FORWARDED_ALLOW_IPS",
        "HTTPS",
        "DATABASE_POOL_SIZE",
        "DATABASE_PREPARED_STATEMENTS",
        "HTTP_MAX_CONCURRENT",
        "HTTP_HEADER_TIMEOUT",
        "HTTP_KEEP_ALIVE_TIMEOUT",
        "MACHINE_MAX_CONCURRENT",
        "GC_FREEZE_SURVIVORS",
        "METRICS_ALLOWED_ADDRS",
        "METRICS_TOKEN",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
    }
)

_live: set[ShopServer] = set()


@atexit.register
def _stop_all() -> None:
    """No server outlives the test run, even when a test forgot to stop one."""
    for server in list(_live):
        server.stop(timeout=5)


class ServerError(RuntimeError):
    """A server did not start, or died; the message ends with the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


class ShopServer:
    """One `manage.py serve` process on 127.0.0.1:<port>.

    `env` is applied last; a value of None removes a variable. The log file, and the SQLite
    database unless `database_url` is given, live in `tmp_dir` (a new temporary directory by
    default), so two servers share a database by being given the same `database_url`.
    `command` is what serves, run with this venv's Python from the project root.
    """

    def __init__(
        self,
        *,
        name: str = "shop",
        port: int | None = None,
        database_url: str | None = None,
        tmp_dir: Path | str | None = None,
        env: Mapping[str, str | None] | None = None,
        ready_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        command: Sequence[str] = ("manage.py", "serve"),
    ) -> None:
        self.name = name
        self.command = list(command)
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.tmp_dir = Path(tmp_dir) if tmp_dir else Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or sqlite_url(self.tmp_dir / f"{name}.sqlite3")
        self.log_path = self.tmp_dir / f"{name}.log"
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.env = self._environment(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.prepared = False
        self.returncodes: list[int] = []

    def __repr__(self) -> str:
        state = f"pid {self.process.pid}" if self.running and self.process else "stopped"
        return f"<ShopServer {self.name} {self.url} {state}>"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _environment(self, overrides: Mapping[str, str | None]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in SHOP_ENV}
        env.update(
            {
                "HOST": self.host,
                "PORT": str(self.port),
                "DATABASE_URL": self.database_url,
                "SANDBOX_RETRY_SCALE": "0.01",
                "PYTHONUNBUFFERED": "1",
            }
        )
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    # --- running ---------------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        with self.log_path.open("a") as log:
            log.write(f"--- [{time.strftime('%H:%M:%S')}] {self.name}: {line}\n")

    def manage(self, *args: str, timeout: float = 120.0) -> None:
        """Run a one-off `manage.py` command with this server's environment, output to the log."""
        self._log(f"manage.py {' '.join(args)}")
        with self.log_path.open("ab") as log:
            result = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        if result.returncode != 0:
            raise ServerError(
                f"{self.name}: manage.py {' '.join(args)} exited {result.returncode}\n"
                + self.log_tail()
            )

    def start(self, *, prepare: bool | None = None, request: bool = True) -> ShopServer:
        """Start serving and wait until it answers HTTP.

        `prepare` (migrate + seed_demo) defaults to the first start only: a restart keeps the port
        and the database, like a redeploy of the same server. With `request=False` it only waits
        until the port accepts connections, so no request reaches the application.
        """
        if self.running:
            raise ServerError(f"{self.name} is already running")
        if prepare if prepare is not None else not self.prepared:
            self.manage("migrate", "--noinput")
            self.manage("seed_demo")
            self.prepared = True
        self._log(f"{' '.join(self.command)} on {self.url}")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self.command],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, not to servers
            )
        _live.add(self)
        try:
            self.wait_ready(self._answers if request else self._listens)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, ready: Callable[[], bool] | None = None) -> None:
        ready = ready or self._answers
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise ServerError(
                    f"{self.name} exited ({code}) before answering\n" + self.log_tail()
                )
            if ready():
                return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.name} did not answer {self.url} within {self.ready_timeout:.0f} s\n"
                    + self.log_tail()
                )
            time.sleep(0.1)

    def _listens(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=2):
                return True
        except OSError:
            return False

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer means it is up; the tests judge the answer
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, *, timeout: float | None = None) -> int | None:
        """SIGTERM, wait, SIGKILL after `timeout`; returns the exit code (None if not running)."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            self._log("SIGTERM")
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self._log("still running after SIGTERM: SIGKILL")
                process.kill()
                process.wait(timeout=10)
        self._log(f"exited {process.returncode}")
        self.returncodes.append(process.returncode)
        self.process = None
        _live.discard(self)
        return self.returncodes[-1]

    def kill(self) -> int | None:
        """SIGKILL at once: a crash, not a shutdown."""
        if self.process is not None and self.process.poll() is None:
            self._log("SIGKILL")
            self.process.kill()
        return self.stop(timeout=10)

    def restart(self) -> ShopServer:
        self.stop()
        return self.start()

    def __enter__(self) -> ShopServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- diagnostics -----------------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def diagnose(self, test_name: str = "") -> list[tuple[str, str]]:
        """Report sections for a failed test (see tests/browser/conftest.py)."""
        return [(f"{self.name} server log ({self.url})", self.log_tail())]

    def log_tail(self, lines: int = 60) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)


class Servers:
    """Servers a test starts itself (several processes, restarts); all stopped at teardown."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.started: list[ShopServer] = []

    def new(self, **kwargs) -> ShopServer:
        kwargs.setdefault("tmp_dir", self.tmp_dir)
        server = ShopServer(**kwargs)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()

    def diagnose(self, test_name: str) -> list[tuple[str, str]]:
        return [section for server in self.started for section in server.diagnose(test_name)]
