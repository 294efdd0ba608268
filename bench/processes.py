"""The processes a bench cell runs, started as production starts them, and what they spend.

Servers are daphne processes (deploy/supervisord.conf's command line, without nginx's
`--proxy-headers`), the old mode's gunicorn sync workers, the reconciler, and the sandbox as the
payment system: one daphne process serving its API and cashier, and `manage.py sandbox_deliver`
sending its notifications. Each is a process group of its own, its output in `<name>.log`, stopped
for sure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
# Pinned, not tuned per run: the old way as it used to be served, 2 sync workers per core.
GUNICORN_WORKERS = 4
SECRETS = {
    "SECRET_KEY": "bench-secret-key-not-for-production-of-fifty-characters",
    "SANDBOX_API_KEY": "sk_bench_0123456789abcdef",
    "SANDBOX_NOTIFY_SECRET": "whsec_bench_0123456789abcdef",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(database_url: str) -> dict[str, str]:
    """Production settings (DEBUG off) on plain HTTP, and nothing inherited but PATH and HOME: a
    developer's exported REDIS_URL or DEBUG must not leak into a cell."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "DEBUG": "0",
        "HTTPS": "0",  # no TLS proxy in front, so no redirect to https
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        # The watchlist's catch-up would hide a lost push; a push lost here counts as lost.
        "WATCH_INTERVAL": "3600",
        # Every bench socket comes from 127.0.0.1: the per-client cap (50) would refuse the rest.
        "WS_MAX_PER_CLIENT": "0",
        "SANDBOX_ENABLED": "0",
        "SANDBOX_RETRY_SCALE": "0.01",
        **SECRETS,
    }


class Process:
    """One process group: a server (answering HTTP on `port`) or a worker (no port)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path, port=None):
        self.name, self.args, self.env, self.port = name, args, env, port
        self.log_path = logs / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def launch(self) -> Process:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, *self.args],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Until a server answers HTTP; raises, with the log's tail, if it exits or is late."""
        assert self.popen is not None
        deadline = time.monotonic() + timeout
        while self.port and not self._answers():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} did not start; its log ends:\n{tail}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # any answer: it serves
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL after 5 s: gunicorn's workers blocked on a payment, and
        whatever a server forked, go with it."""
        if self.popen is None:
            return
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # any child left behind
        except ProcessLookupError:
            pass
        self.popen = None


def daphne(name: str, env: dict[str, str], logs: Path) -> Process:
    port = free_port()
    # Each server's own address is where the payment system sends the results of the Pays it took.
    env = {**env, "PORT": str(port), "SITE_URL": f"http://127.0.0.1:{port}"}
    args = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "shop.asgi:application"]
    return Process(name, args, env, logs, port)


def gunicorn(name: str, env: dict[str, str], logs: Path, *, notified_at: str) -> Process:
    """The old mode's server. The notification endpoint is a Channels consumer, which a WSGI
    server does not serve: the payment system reaches the shop at `notified_at`, a daphne process
    (the split Channels documents: plain HTTP under WSGI, what needs ASGI under daphne)."""
    port = free_port()
    env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PORT": str(port),
        "SITE_URL": notified_at,
    }
    args = [
        "-m", "gunicorn", "bench.wsgi:application", "-b", f"127.0.0.1:{port}",
        "-w", str(GUNICORN_WORKERS), "--worker-class", "sync", "--timeout", "600",
        "--backlog", "2048", "--log-level", "warning",
    ]  # fmt: skip
    return Process(name, args, env, logs, port)


def sandbox(env: dict[str, str], logs: Path) -> list[Process]:
    """The payment system: its API and cashier, and its deliveries, in processes of their own."""
    # It notifies the shop's servers, each on a port of its own.
    env = {**env, "SANDBOX_ENABLED": "1", "SANDBOX_NOTIFY_ORIGINS": "127.0.0.1"}
    deliver = Process("sandbox-deliver", ["manage.py", "sandbox_deliver"], env, logs)
    return [daphne("sandbox", env, logs), deliver]


def reconciler(env: dict[str, str], sandbox: str, logs: Path) -> Process:
    """`manage.py reconcile`, as production runs it, querying the payment system at `sandbox`."""
    # It looks for due orders every second rather than every 5 s, so that it takes the herd up
    # sooner; while due orders remain it does not sleep, so its work on them is the same.
    env = {**env, "PAYMENT_GATEWAY_URL": sandbox + "/sandbox/", "RECONCILE_INTERVAL": "1"}
    return Process("reconcile", ["manage.py", "reconcile"], env, logs)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and their children so far (/proc, through psutil)."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue  # exited between the listing and the reading
            total += times.user + times.system
    return total


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def postgres_pid(database_url: str) -> int | None:
    """PostgreSQL's postmaster (its backends are its children), if it runs on this machine."""
    if not database_url.startswith("postgres"):
        return None
    import psycopg

    with psycopg.connect(database_url) as db:
        (backend,) = db.execute("SELECT pg_backend_pid()").fetchone()
        try:  # while the backend still runs: it exits with the connection
            return psutil.Process(backend).ppid()
        except psutil.Error:
            return None


def redis_pid(redis_url: str) -> int | None:
    if not redis_url:
        return None
    import redis

    pid = redis.Redis.from_url(redis_url).info("server")["process_id"]
    return pid if psutil.pid_exists(pid) else None
