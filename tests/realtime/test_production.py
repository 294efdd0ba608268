"""The production recipe: `deploy/run` (N servers + the reconciler) and `check --deploy`.

`deploy/run` serves with DEBUG off on PostgreSQL and Redis, plain HTTP on loopback (HTTPS=0; in
production nginx terminates TLS, see deploy/nginx.conf). The payment system is a separate sandbox
process. A purchase goes through it end to end: bought and paid on one worker, the socket on the
other, the sandbox's notification to the first.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import httpx
import pytest
from asgiref.sync import sync_to_async

from tests.checkout import factories as f
from tests.realtime.streams import next_status, open_stream, status_becomes
from tests.servers import ROOT, free_port

pytestmark = pytest.mark.django_db(transaction=True)

SANDBOX_SECRET = "whsec_sandbox_dev_only"  # what the sandbox process (DEBUG) signs with
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "shop.settings",
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "SANDBOX_NOTIFY_SECRET": SANDBOX_SECRET,
    "SANDBOX_API_KEY": "sk_sandbox_dev_only",
    "ALLOWED_HOSTS": "127.0.0.1",
    "PROXY_HEADERS": "1",
}


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
    """A port P such that P and P+1 are free right now (deploy/run takes consecutive ports)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def wait_answers(url: str, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"deploy/run exited {process.returncode}\n{log()}"
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
        page = client.get("/").text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        slug = re.search(r'name="product" value="([^"]+)"', page)[1]
        bought = client.post("/orders/", data={"product": slug, "csrfmiddlewaretoken": token})
        assert bought.status_code == 302, bought.text
        biz = re.search(r"/orders/([0-9a-f]{32})/", bought.headers["location"])[1]
        csrf = client.cookies["csrftoken"]
        htmx = {"X-CSRFToken": csrf, "HX-Request": "true"}
        paid = client.post(f"/orders/{biz}/pay/", headers=htmx)
        assert paid.status_code == 200 and 'data-status="pending"' in paid.text, paid.text
        cashier = re.search(r'<a [^>]*class="[^"]*cashier-link[^>]*href="([^"]+)"', paid.text)[1]
        return client.cookies["sessionid"], biz, cashier


def approve(cashier_url: str) -> None:
    with httpx.Client(timeout=15) as phone:
        form = phone.get(cashier_url).text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)[1]
        answer = phone.post(cashier_url, data={"csrfmiddlewaretoken": token, "decision": "approve"})
        assert answer.status_code < 400, answer.text


async def test_deploy_run_serves_a_purchase_across_its_processes_and_stops_cleanly(
    shops, shared_database, shared_redis, tmp_path
):
    await sync_to_async(f.product)()  # the catalogue
    payments = shops.start("payments", RECONCILE_IN_SERVER="0")
    port = two_free_ports()
    first, second = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
    env = production_env(
        DATABASE_URL=shared_database,
        REDIS_URL=shared_redis,
        HTTPS="0",
        PAYMENT_GATEWAY_URL=payments.url + "/sandbox/",
        SITE_URL=first,  # the notify_url the sandbox calls: the first worker
        WATCH_INTERVAL="3600",  # what reaches the socket comes through Redis
    )
    log_path = tmp_path / "deploy-run.log"
    with log_path.open("ab") as log_file:
        run = subprocess.Popen(
            [sys.executable, "deploy/run", "--workers", "2", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    log = lambda: log_path.read_text(errors="replace")[-6000:]  # noqa: E731
    try:
        for url in (first, second):
            await sync_to_async(wait_answers)(url + "/", run, log)
        session_key, biz, cashier = await sync_to_async(buy_and_pay)(first)
        stream = await open_stream(second, biz, session_key)
        assert await next_status(stream) == "pending"

        await sync_to_async(approve)(cashier)

        assert await status_becomes(stream, "paid"), log()
        started = re.findall(r"deploy/run: started .+ pid (\d+)", log_path.read_text())
        children = [int(pid) for pid in started]
        assert len(children) == 3  # two servers and the reconciler

        run.send_signal(signal.SIGTERM)
        assert await sync_to_async(run.wait)(timeout=40) == 0, log()
        await stream.wait_closed()
        assert stream.close_code == 1012  # service restart: the page reconnects
        for pid in children:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
