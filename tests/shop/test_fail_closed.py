"""Without configuration the shop runs as production: it refuses to start without its secrets,
naming the one missing, and once they are given it mounts no sandbox, shows no debug page, and
opens the status stream only to its own pages."""

import asyncio
import subprocess
import sys
import urllib.error
import urllib.request

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from shop.settings import env_rates
from tests.realtime.shopper import buy
from tests.realtime.streams import next_status, open_stream
from tests.servers import ROOT, clean_env, daphne_command, daphne_server, free_port

SECRETS = {
    "SECRET_KEY": "a-production-secret-key-of-fifty-characters-or-more-0123456789",
    "SANDBOX_API_KEY": "sk_live_test_only",
    "SANDBOX_NOTIFY_SECRET": "whsec_live_test_only",
    "ALLOWED_HOSTS": "127.0.0.1",
}


def check(**env: str) -> subprocess.CompletedProcess:
    """`manage.py check` with nothing of the shop's environment but `env`."""
    return run(["manage.py", "check"], DJANGO_SETTINGS_MODULE="shop.settings", **env)


def start(**env: str) -> subprocess.CompletedProcess:
    """A daphne server started with nothing of the shop's environment but `env`, expected to
    refuse to start (it would serve until the timeout)."""
    return run(daphne_command(free_port()), **env)


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", list(SECRETS))
def test_without_a_required_setting_the_shop_refuses_to_start_naming_it(missing):
    given = {name: value for name, value in SECRETS.items() if name != missing}
    if missing == "SECRET_KEY":
        given = {}  # with nothing at all, the first it needs is named
    result = check(**given)
    assert result.returncode != 0
    assert f"{missing} must be set when DEBUG is false" in result.stderr


@pytest.mark.parametrize(
    ("name", "weak"),
    [
        ("SECRET_KEY", "short-secret-key"),
        ("SECRET_KEY", "dev-only-insecure-secret-key"),
        ("SANDBOX_API_KEY", "sk_sandbox_dev_only"),
        ("SANDBOX_NOTIFY_SECRET", "whsec_short"),
    ],
)
def test_a_weak_secret_is_refused_naming_it(name, weak):
    result = check(**{**SECRETS, name: weak})
    assert result.returncode != 0
    assert f"{name} is too weak for production" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("WS_MAX_PER_SESSION", "twenty", "WS_MAX_PER_SESSION must be a whole number, not 'twenty'"),
        ("ORDER_PAYMENT_TTL", "15m", "ORDER_PAYMENT_TTL must be a whole number, not '15m'"),
        ("PUSH_TIMEOUT", "nan", "PUSH_TIMEOUT must be a number, not 'nan'"),
        ("RECONCILE_RATE", "", "RECONCILE_RATE must be a number, not ''"),
        (
            "RECONCILE_RATES",
            "alipay=10,stripe",
            "RECONCILE_RATES items are provider=number, not 'stripe'",
        ),
        ("RECONCILE_RATES", "=5", "RECONCILE_RATES items are provider=number, not '=5'"),
        (
            "RECONCILE_RATES",
            "alipay=fast",
            "RECONCILE_RATES items are provider=number, not 'alipay=fast'",
        ),
    ],
)
def test_a_setting_that_is_not_a_number_is_refused_naming_it(name, value, said):
    result = check(**{**SECRETS, name: value})
    assert result.returncode != 0
    assert said in result.stderr


def test_numbers_per_provider_are_read(monkeypatch):
    monkeypatch.setenv("RECONCILE_RATES", "alipay=10, stripe = 2.5")
    assert env_rates("RECONCILE_RATES") == {"alipay": 10.0, "stripe": 2.5}
    monkeypatch.setenv("RECONCILE_RATES", "")
    assert env_rates("RECONCILE_RATES") == {}


def test_a_server_started_with_no_configuration_refuses_to_start_naming_the_secret():
    result = start()
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is false" in result.stderr


def test_with_its_secrets_the_shop_starts_as_production():
    assert check(**SECRETS).returncode == 0


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_production_server_mounts_no_sandbox_shows_no_debug_page_and_checks_origins(tmp_path):
    server = daphne_server(
        name="production", tmp_dir=tmp_path, env={"DEBUG": None, "HTTPS": "0", **SECRETS}
    )
    server.start()
    try:
        status, page = get(server.url + "/sandbox/cashier/pay_000000000000000000000000")
        assert status == 404
        assert "URLconf" not in page and "Traceback" not in page  # no debug page
        assert get(server.url + "/gallery/")[0] == 404  # designers' gallery: DEBUG or staff only
        with httpx.Client(base_url=server.url, timeout=15) as browser:
            biz = buy(browser)
            session = browser.cookies["sessionid"]
        other_scheme = server.url.replace("http://", "https://")
        other_port = f"http://127.0.0.1:{free_port()}"
        origins = [server.url, other_scheme, other_port, "http://evil.example"]
        opened = asyncio.run(stream_opens(server.url, biz, session, origins))
        # Only the shop's own pages (SITE_URL: scheme, host and port).
        assert opened == [True, False, False, False]
    finally:
        server.stop()


async def stream_opens(url: str, biz: str, session: str, origins: list[str]) -> list[bool]:
    """Whether the order's status stream opens for a page of each origin."""
    opened = []
    for origin in origins:
        try:
            stream = await open_stream(url, biz, session, origin=origin)
        except InvalidStatus:
            opened.append(False)
        else:
            opened.append(await next_status(stream) == "unpaid")
            await stream.close()
    return opened
