"""The production recipe: `deploy/supervisord.conf` (two daphne processes and the reconciler under
supervisor) and `check --deploy`.

supervisord runs as `make prod` runs it, with DEBUG off on PostgreSQL and Redis and plain HTTP on
loopback (HTTPS=0; in production nginx terminates TLS, see deploy/nginx.conf). The payment system is
a separate sandbox process. A purchase goes through it end to end: the socket on the first server,
the sandbox's notification to the second, the push between them through Redis.
"""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import psutil
import pytest
from asgiref.sync import sync_to_async

from tests.checkout import factories as f
from tests.realtime.shopper import approve, buy, pay
from tests.realtime.streams import SESSION_COOKIE, next_status, open_stream, status_becomes
from tests.servers import ROOT, free_port, kill_all

pytestmark = pytest.mark.django_db(transaction=True)

# The payment system's key and signing secret, shared by the sandbox process and the shop.
SANDBOX_SECRETS = {
    "SANDBOX_NOTIFY_SECRET": "whsec_" + secrets.token_hex(16),
    "SANDBOX_API_KEY": "sk_" + secrets.token_hex(16),
}
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "shop.settings",
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    **SANDBOX_SECRETS,
    "ALLOWED_HOSTS": "127.0.0.1",
    "PROXY_HEADERS": "1",
}
VENV_BIN = str(Path(sys.executable).parent)


def production_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "VIRTUAL_ENV"}}
    return {**keep, **PRODUCTION, **extra}


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def two_free_ports() -> int:
    """A port P such that P and P+1 are free right now (the servers take consecutive ports)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def wait_answers(url: str, supervisord: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert supervisord.poll() is None, f"supervisord exited {supervisord.returncode}\n{log()}"
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            assert time.monotonic() < deadline, f"{url} never answered\n{log()}"
            time.sleep(0.2)


def buy_and_pay(base: str) -> tuple[str, str, str]:
    """Through the HTTP forms: (session key, biz, cashier URL)."""
    with httpx.Client(base_url=base, timeout=15) as client:
        biz = buy(client)
        cashier = pay(client, biz)
        return client.cookies[SESSION_COOKIE], biz, cashier


def programs(supervisord: psutil.Process) -> dict[str, psutil.Process]:
    """supervisord's programs by what they run: `web <port>` and `reconcile`."""
    found = {}
    for child in supervisord.children(recursive=True):
        command = child.cmdline()
        if "daphne" in command:
            found[f"web {command[command.index('--port') + 1]}"] = child
        elif "reconcile" in command:
            found["reconcile"] = child
    return found


async def test_supervisor_serves_a_purchase_across_its_processes_and_stops_them_all(
    shops, shared_database, shared_redis, tmp_path
):
    await sync_to_async(f.product)()  # the catalogue
    # The payment system: the sandbox (DEBUG), its deliveries beside it, no reconciler.
    payments = shops.new(
        name="payments", database_url=shops.database_url, reconcile=False, env=SANDBOX_SECRETS
    )
    payments.prepared = True  # the test database is migrated already
    await sync_to_async(payments.start)()
    port = two_free_ports()
    first, second = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
    env = production_env(
        PATH=f"{VENV_BIN}:{os.environ['PATH']}",  # as `make prod` sets it, for `python`
        HOST="127.0.0.1",
        PORT=str(port),
        SERVERS="2",
        DATABASE_URL=shared_database,
        REDIS_URL=shared_redis,
        HTTPS="0",
        PAYMENT_GATEWAY_URL=payments.url + "/sandbox/",
        SITE_URL=second,  # the notify_url the sandbox calls: the second server
        # Behind nginx every page has the shop's one origin; here each server has its own.
        WS_ALLOWED_ORIGINS=f"{first},{second}",
        WATCH_INTERVAL="3600",  # what reaches the socket comes through Redis
    )
    log_path = tmp_path / "supervisord.log"
    with log_path.open("ab") as log_file:  # appending: supervisor reopens /dev/stdout in "ab"
        run = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", "deploy/supervisord.conf"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    log = lambda: log_path.read_text(errors="replace")[-6000:]  # noqa: E731
    supervisord = psutil.Process(run.pid)
    children: list[psutil.Process] = []
    try:
        for url in (first, second):
            await sync_to_async(wait_answers)(url + "/", run, log)
        session_key, biz, cashier = await sync_to_async(buy_and_pay)(first)
        stream = await open_stream(first, biz, session_key)
        assert await next_status(stream) == "pending"

        await sync_to_async(approve)(cashier)

        assert await status_becomes(stream, "paid"), log() + "\n" + payments.log_tail()
        running = programs(supervisord)
        assert sorted(running) == sorted([f"web {port}", f"web {port + 1}", "reconcile"]), log()
        children = supervisord.children(recursive=True)

        run.send_signal(signal.SIGTERM)
        assert await sync_to_async(run.wait)(timeout=30) == 0, log()
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == [], log()
        await asyncio.wait_for(stream.wait_closed(), 10)  # the page would reconnect elsewhere
    finally:
        if run.poll() is None:
            children += supervisord.children(recursive=True)
        kill_all([supervisord, *children])
        run.wait()
