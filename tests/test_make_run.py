"""`make run` serves the embedded defaults as the Procfile lists them, under honcho: the server
(`runserver`), the reconciler and the sandbox's deliveries. Together they take a payment, and a
Ctrl-C stops every one of them."""

import asyncio
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

import httpx
import psutil

from tests.conftest import require
from tests.realtime.shopper import approve, buy, pay
from tests.realtime.streams import SESSION_COOKIE, next_status, open_stream, status_becomes
from tests.servers import ROOT, clean_env, free_port, kill_all, sqlite_url

PROCFILE_COMMANDS = ("runserver", "reconcile", "sandbox_deliver")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except (OSError, urllib.error.URLError):
        return False


def procfile_processes(make: psutil.Process) -> dict[str, list[psutil.Process]]:
    """make's descendants by the Procfile command they run (runserver's autoreloader is two)."""
    found: dict[str, list[psutil.Process]] = {}
    for process in make.children(recursive=True):
        try:
            command = process.cmdline()
        except psutil.NoSuchProcess:
            continue
        for name in PROCFILE_COMMANDS:
            if name in command and "manage.py" in command:
                found.setdefault(name, []).append(process)
    return found


async def pays(url: str) -> bool:
    """A purchase through the forms, approved at the embedded sandbox's cashier, shows paid."""
    with httpx.Client(base_url=url, timeout=15) as shopper:
        biz = buy(shopper)
        cashier = pay(shopper, biz)
        session_key = shopper.cookies[SESSION_COOKIE]
    stream = await open_stream(url, biz, session_key)
    try:
        assert await next_status(stream) == "pending"
        approve(cashier)
        return await status_becomes(stream, "paid", timeout=20)
    finally:
        await stream.close()


def test_make_run_takes_a_payment_and_ctrl_c_stops_all_its_processes(tmp_path):
    require(shutil.which("make") is not None, "needs make")
    port = free_port()
    # What a developer's shell would have: no settings of the test run, no outer make's flags.
    env = {
        key: value
        for key, value in clean_env().items()
        if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    }
    env |= {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": sqlite_url(tmp_path / "shop.sqlite3"),  # not the developer's db.sqlite3
        "SANDBOX_RETRY_SCALE": "0.01",
    }
    log_path = tmp_path / "make-run.log"
    log = lambda: log_path.read_text(errors="replace")[-6000:]  # noqa: E731
    with log_path.open("ab") as log_file:
        run = subprocess.Popen(
            # The test runs in the venv already: never reinstall it (or node_modules) mid-test.
            ["make", "-o", ".venv/.installed", "-o", "node_modules/.installed", "run"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, as a terminal gives a job
        )
    make = psutil.Process(run.pid)
    started: list[psutil.Process] = []
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 45
        while not (answers(url + "/") and len(procfile_processes(make)) == 3):
            assert run.poll() is None, f"make run exited {run.returncode}\n{log()}"
            assert time.monotonic() < deadline, f"make run did not serve {url}\n{log()}"
            time.sleep(0.3)
        assert f"Shop: {url}/" in log_path.read_text()

        assert asyncio.run(pays(url)), log()

        started = make.children(recursive=True)
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in the terminal
        run.wait(timeout=15)
        _, alive = psutil.wait_procs(started, timeout=5)
        assert alive == [], f"{[p.cmdline() for p in alive]}\n{log()}"
    finally:
        if run.poll() is None:
            started += make.children(recursive=True)
        kill_all([make, *started])
        run.wait()
