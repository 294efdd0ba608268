import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import AsyncClient, Client

from sandbox.models import Payment
from sandbox.parsing import NewPayment
from sandbox.payments import payment_create
from tests.sandbox.receiver import Receiver, start_receiver


@pytest.fixture(autouse=True)
def sandbox_urls(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.sandbox.urls"


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.SANDBOX_API_KEY}"}


@pytest.fixture
def api(auth: dict[str, str]) -> Client:
    """A merchant's server: Bearer key, no browser CSRF cookie."""
    return Client(headers=auth)


class AsyncApi:
    """AsyncClient with the Bearer key on every request (its constructor's `headers` reach only
    WSGI-style requests) and JSON bodies."""

    def __init__(self, auth: dict[str, str]) -> None:
        self.client = AsyncClient()
        self.auth = auth

    async def get(self, path: str, data: Any = None, **extra: Any) -> Any:
        return await self.client.get(path, data, headers=self.auth | extra.pop("headers", {}))

    async def post(self, path: str, data: Any = None, **extra: Any) -> Any:
        headers = self.auth | extra.pop("headers", {})
        return await self.client.post(
            path, data, content_type="application/json", headers=headers, **extra
        )

    async def delete(self, path: str) -> Any:
        return await self.client.delete(path, headers=self.auth)


@pytest.fixture
def async_api(auth: dict[str, str]) -> AsyncApi:
    return AsyncApi(auth)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = start_receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def payment_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "out_trade_no": "0123456789abcdef0123456789abcdef",
        "amount": 1999,
        "currency": "CNY",
        "description": "Pour-over coffee kit",
        "notify_url": "http://127.0.0.1:9/payments/notify/sandbox/",
        "expire_at": int(time.time()) + 900,
    }
    return body | overrides


_keys = iter(range(10**9))


def make_payment(**overrides: Any) -> Payment:
    """A pending payment created through the service, as the create endpoint would."""
    body = payment_body(**overrides)
    payment, created = payment_create(
        request=NewPayment(**body), idempotency_key=f"test-key-{next(_keys)}"
    )
    assert created
    return payment
