"""Shop server processes for tests that need a real server: browser, multi-process, benchmarks.

`ShopServer` starts the shop the way `make run` does (`manage.py migrate`, `seed_demo`, then the
Procfile's processes: `runserver`, `sandbox_deliver` and `reconcile`) but on a free port, without
the autoreloader and, unless told otherwise, on its own SQLite file, so tests never touch the
developer's database or port 8000. It can be stopped (SIGTERM, then SIGKILL after a timeout) and
started again on the same port and database, which is what restart tests need. All its processes
write to one log file, whose tail `ServerError` and `log_tail()` show, because a server that dies
in a subprocess otherwise leaves no trace in pytest.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent

# The payment providers' settings (contract section 6), which the fakes' env file holds too.
PROVIDER_ENV = frozenset(
    {
        "PAYMENT_PROVIDERS",
        "ALIPAY_APP_ID",
        "ALIPAY_PRIVATE_KEY_FILE",
        "ALIPAY_PUBLIC_KEY_FILE",
        "ALIPAY_GATEWAY_URL",
        "WECHATPAY_MCHID",
        "WECHATPAY_APPID",
        "WECHATPAY_APIV3_KEY",
        "WECHATPAY_CERT_SERIAL",
        "WECHATPAY_PRIVATE_KEY_FILE",
        "WECHATPAY_PUBLIC_KEY_ID",
        "WECHATPAY_PUBLIC_KEY_FILE",
        "WECHATPAY_API_URL",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_API_URL",
    }
)
# What the shop reads from the environment (shop/settings.py). None of it is inherited from the
# test run (pytest sets DJANGO_SETTINGS_MODULE=tests.settings, a developer may export DATABASE_URL
# or REDIS_URL): a server gets the embedded defaults plus exactly what its test asks for.
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
        "DATABASE_POOL_SIZE",
        "REDIS_URL",
        "REDIS_CHANNEL_LAYER",
        "PAYMENT_GATEWAY_URL",
        "PAYMENT_GATEWAY_PROXY",
        "PAYMENT_GATEWAY_TIMEOUT",
        "SANDBOX_ENABLED",
        "SANDBOX_NOTIFY_ORIGINS",
        "SANDBOX_API_KEY",
        "SANDBOX_NOTIFY_SECRET",
        "SANDBOX_NOTIFY_SECRETS_OLD",
        "SANDBOX_RETRY_SCALE",
        "SANDBOX_API_LATENCY",
        "ORDER_PAYMENT_TTL",
        "RECONCILE_QUERY_AFTER",
        "RECONCILE_INTERVAL",
        "RECONCILE_RATE",
        "RECONCILE_RATES",
        "RECONCILE_MAX_IN_FLIGHT",
        "WATCH_INTERVAL",
        "PUSH_TIMEOUT",
        "WS_MAX_MESSAGE_BYTES",
        "WS_MAX_PER_SESSION",
        "WS_MAX_PER_ORDER",
        "WS_MAX_PER_CLIENT",
        "WS_MAX_SOCKETS",
        "WS_ALLOWED_ORIGINS",
        "PROXY_HEADERS",
        "HTTPS",
        "METRICS_ALLOWED_ADDRS",
        "METRICS_TOKEN",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
    }
    | PROVIDER_ENV
)


def clean_env() -> dict[str, str]:
    """This process's environment with none of the shop's settings in it (SHOP_ENV)."""
    return {key: value for key, value in os.environ.items() if key not in SHOP_ENV}


_live: set[ShopServer] = set()


@atexit.register
def _stop_all() -> None:
    """No server outlives the test run, even when a test forgot to stop one."""
    for server in list(_live):
        server.stop(timeout=5)


def daphne_command(port: int) -> list[str]:
    """A `ShopServer` command: the server as deploy/supervisord.conf runs it in production, where
    `runserver` (the default) is what `make run` runs. runserver's migration check keeps a database
    connection in its main thread, which matters to a test that sizes the pool."""
    return [
        "-m",
        "daphne",
        *("--bind", "127.0.0.1", "--port", str(port)),
        *("--websocket_connect_timeout", "60"),
        "shop.asgi:application",
    ]


def kill_all(processes: Iterable[psutil.Process]) -> None:
    """SIGKILL whatever of `processes` still runs: a test's clean-up after it failed."""
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def daphne_server(*, name: str, tmp_dir: Path, **kwargs) -> ShopServer:
    """A `ShopServer` of daphne alone, as production serves the shop, on its own SQLite file."""
    port = free_port()
    kwargs.setdefault("reconcile", False)
    kwargs.setdefault("deliver", False)
    return ShopServer(name=name, port=port, command=daphne_command(port), tmp_dir=tmp_dir, **kwargs)


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
    """A shop on 127.0.0.1:<port>: the server, and beside it the sandbox's deliveries and the
    reconciler (each left out with `deliver=False`, `reconcile=False`).

    `env` is applied last, over `DEBUG=1` (the embedded defaults); a value of None removes a
    variable. The log file, and the SQLite database unless `database_url` is given, live in
    `tmp_dir` (a new temporary directory by default), so two servers share a database by being
    given the same `database_url`. `command` is what serves, run with this venv's Python from the
    project root (default: `manage.py runserver --noreload` on the port, which serves the static
    files in DEBUG); a test that passes one passes `port` too, since the command names it.
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
        command: Sequence[str] | None = None,
        reconcile: bool = True,
        deliver: bool = True,
    ) -> None:
        self.name = name
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.command = list(command or ("manage.py", "runserver", "--noreload", self.address))
        # The Procfile's other processes, as `make run` starts them beside the server.
        self.background: list[list[str]] = []
        if deliver:
            self.background.append(["manage.py", "sandbox_deliver"])
        if reconcile:
            self.background.append(["manage.py", "reconcile"])
        self.tmp_dir = Path(tmp_dir) if tmp_dir else Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or sqlite_url(self.tmp_dir / f"{name}.sqlite3")
        self.log_path = self.tmp_dir / f"{name}.log"
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.env = self._environment(env or {})
        # The server's process, and the background processes started with it.
        self.process: subprocess.Popen[bytes] | None = None
        self.processes: list[subprocess.Popen[bytes]] = []
        self.prepared = False
        self.returncodes: list[int] = []

    def __repr__(self) -> str:
        state = f"pid {self.process.pid}" if self.running and self.process else "stopped"
        return f"<ShopServer {self.name} {self.url} {state}>"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _environment(self, overrides: Mapping[str, str | None]) -> dict[str, str]:
        env = clean_env()
        env.update(
            {
                "DEBUG": "1",
                # SITE_URL's default: the notify_url, and the embedded sandbox's address.
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

    def _spawn(self, args: Sequence[str]) -> subprocess.Popen[bytes]:
        # Appending ("ab"), so that the processes' lines interleave rather than overwrite.
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, not to servers
            )
        self._log(f"{' '.join(args)}: pid {process.pid}")
        return process

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
        self._log(f"starting on {self.url}")
        self.process = self._spawn(self.command)
        self.processes = [self.process, *(self._spawn(args) for args in self.background)]
        _live.add(self)
        try:
            self.wait_ready(self._answers if request else self._listens)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, ready: Callable[[], bool] | None = None) -> None:
        """Wait until `ready()` (by default: it answers HTTP), while every process is running."""
        ready = ready or self._answers
        deadline = time.monotonic() + self.ready_timeout
        while True:
            for process in self.processes:
                if process.poll() is not None:
                    raise ServerError(
                        f"{self.name}: {' '.join(map(str, process.args[1:]))} exited"
                        f" ({process.returncode}) before the server answered\n" + self.log_tail()
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

    def _signal(self, process: subprocess.Popen[bytes], signum: int) -> None:
        """To the process's group: its session holds what it started (an autoreloader's child)."""
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass

    def stop(self, *, timeout: float | None = None) -> int | None:
        """SIGTERM to every process, wait, SIGKILL after `timeout`; returns the server's exit code
        (None if it was not started)."""
        if self.process is None:
            return None
        running = [process for process in self.processes if process.poll() is None]
        if running:
            self._log("SIGTERM")
        for process in running:
            self._signal(process, signal.SIGTERM)
        deadline = time.monotonic() + (self.stop_timeout if timeout is None else timeout)
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._log(f"pid {process.pid} still running after SIGTERM: SIGKILL")
                self._signal(process, signal.SIGKILL)
                process.wait(timeout=10)
        codes = ", ".join(f"{process.pid}: {process.returncode}" for process in self.processes)
        self._log(f"exited ({codes})")
        self.returncodes.append(self.process.returncode)
        self.process = None
        self.processes = []
        _live.discard(self)
        return self.returncodes[-1]

    def kill(self) -> int | None:
        """SIGKILL at once: a crash, not a shutdown."""
        if self.processes:
            self._log("SIGKILL")
        for process in self.processes:
            if process.poll() is None:
                self._signal(process, signal.SIGKILL)
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
