"""`manage.py sandbox_deliver`: the delivery loop as a process of its own, beside the server."""

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from sandbox.models import DeliveryState, Notification
from sandbox.payments import payment_decide
from tests.sandbox.conftest import make_payment
from tests.sandbox.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


def test_once_sends_the_due_notifications_and_exits(receiver: Receiver) -> None:
    payment = make_payment(notify_url=receiver.url)
    payment_decide(payment_id=payment.id, approve=True)
    out = StringIO()
    call_command("sandbox_deliver", "--once", stdout=out)
    assert out.getvalue() == "Notifications attempted: 1.\n"
    assert len(receiver.received) == 1
    assert Notification.objects.get(payment=payment).state == DeliveryState.DELIVERED


def command_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a `sandbox_deliver` process on the tests' database. SQLite's is in this
    process's memory: there the command gets an empty file and logs that its tables are missing."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        url = f"postgres://{user}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return os.environ | {"DEBUG": "1", "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}


def start_command(tmp_path: Path) -> subprocess.Popen[str]:
    """`manage.py sandbox_deliver`, once it has said that it is delivering (and so catches
    signals)."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox_deliver"],
        cwd=settings.BASE_DIR,
        env=command_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=(tmp_path / f"stderr-{time.monotonic_ns()}").open("w"),
        text=True,
    )
    with ThreadPoolExecutor(1) as reader:
        try:
            line = reader.submit(process.stdout.readline).result(timeout=30)
        except TimeoutError:
            process.kill()
            raise
    assert line.startswith("Delivering"), f"the command did not start: {line!r}"
    return process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_exits_0_at_once_on_sigterm_or_ctrl_c(tmp_path: Path, signum: int) -> None:
    """Honcho and supervisor stop a process with SIGTERM, a developer with Ctrl-C (SIGINT)."""
    process = start_command(tmp_path)
    stopped_at = time.monotonic()
    process.send_signal(signum)
    try:
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
    assert time.monotonic() - stopped_at < 2
    assert process.stdout.read() == "Sandbox deliveries stopped.\n"


@pytest.mark.usefixtures("postgres")
def test_two_deliverer_processes_send_each_notification_once(
    receiver: Receiver, tmp_path: Path
) -> None:
    processes = [start_command(tmp_path), start_command(tmp_path)]
    try:
        for n in range(20):
            payment = make_payment(out_trade_no=f"biz{n}", notify_url=receiver.url)
            payment_decide(payment_id=payment.id, approve=True)
        deadline = time.monotonic() + 10
        while Notification.objects.exclude(state=DeliveryState.DELIVERED).exists():
            assert time.monotonic() < deadline, "the notifications were not all delivered"
            time.sleep(0.05)
        time.sleep(0.5)  # room for a second send of any of them
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=5) for process in processes]
    assert codes == [0, 0]
    assert len(receiver.received) == 20
    assert len({request.body for request in receiver.received}) == 20
