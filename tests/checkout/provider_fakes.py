"""Alipay, WeChat Pay and Stripe fakes (tests/fakes) served on a thread of their own, and the shop's
settings pointing at them, for tests that run the shop synchronously (`async_to_sync`, Django's
test client) against all three providers.

The fakes' state (trades, sessions, requests) is read and changed from the test's thread while
their loop waits for the next request: the shop's calls are over by the time the test looks."""

import asyncio
import functools
import threading
from contextlib import contextmanager
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from checkout.models import Order
from tests.fakes import key_pair, private_pem, public_pem
from tests.fakes.alipay import FakeAlipay
from tests.fakes.stripe import FakeStripe
from tests.fakes.wechatpay import FakeWechatPay

ALIPAY_APP_ID = "2021000000000001"
PROVIDERS = ("alipay", "wechatpay", "stripe")


@functools.cache
def pem_pair(role: str) -> tuple[str, str]:
    """A key pair per role, made once per test run: (private PEM, public PEM)."""
    return key_pair()


@functools.cache
def rsa_key(role: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Fakes:
    """The three fakes, served by an event loop on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.alipay = FakeAlipay(
            app_id=ALIPAY_APP_ID,
            app_public_key=pem_pair("alipay-app")[1],
            alipay_private_key=pem_pair("alipay")[0],
        )
        self.wechatpay = FakeWechatPay(
            merchant_key=rsa_key("wechatpay-merchant"), platform_key=rsa_key("wechatpay")
        )
        self.stripe = FakeStripe()
        self.run(self._start())

    def run[T](self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(30)

    async def _start(self) -> None:
        await self.alipay.start()
        await self.wechatpay.start()
        await self.stripe.start()

    async def _stop(self) -> None:
        await self.alipay.stop()
        await self.wechatpay.stop()
        await self.stripe.stop()

    def stop(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    # What each fake was asked.

    def alipay_methods(self) -> list[str]:
        return [request["method"] for request in self.alipay.requests]

    def wechatpay_calls(self) -> list[tuple[str, str]]:
        """(method, path without the query) of each call."""
        return [(method, path.split("?")[0]) for method, path, _ in self.wechatpay.requests]

    def creates(self, provider: str) -> int:
        """How many times the shop asked `provider` to create a payment (replays included)."""
        if provider == "alipay":
            return self.alipay_methods().count("alipay.trade.precreate")
        if provider == "wechatpay":
            return [path for _, path in self.wechatpay_calls()].count("/v3/pay/transactions/native")
        return len(self.stripe.idempotency_keys)

    def pay_url(self, provider: str, order: Order) -> str:
        """What the provider gave the shopper to scan or open for `order`'s payment."""
        if provider == "alipay":
            return self.alipay.trades[order.biz].qr_code
        if provider == "wechatpay":
            return self.wechatpay.trades[order.biz].code_url
        return self.stripe.sessions[order.payment.payment_id]["url"]

    def pay(self, provider: str, order: Order) -> None:
        """The shopper pays `order`'s payment at the provider (no notice is sent)."""
        if provider == "alipay":
            self.alipay.pay(order.biz)
        elif provider == "wechatpay":
            self.wechatpay.pay(order.biz)
        else:
            self.stripe.complete(order.payment.payment_id)


@contextmanager
def providers_served(settings, tmp_path: Path) -> Iterator[Fakes]:
    """The shop takes payments through the three fakes, and nothing else; `settings` is
    pytest-django's fixture (each change clears the gateways built from the old settings)."""

    def key_file(name: str, pem: str) -> str:
        path = tmp_path / name
        path.write_text(pem)
        return str(path)

    fakes = Fakes()
    try:
        settings.PAYMENT_PROVIDERS = list(PROVIDERS)
        settings.ALIPAY_APP_ID = ALIPAY_APP_ID
        settings.ALIPAY_PRIVATE_KEY_FILE = key_file("alipay-app.pem", pem_pair("alipay-app")[0])
        settings.ALIPAY_PUBLIC_KEY_FILE = key_file("alipay.pem", pem_pair("alipay")[1])
        settings.ALIPAY_GATEWAY_URL = fakes.alipay.url
        wechat = fakes.wechatpay
        settings.WECHATPAY_MCHID = wechat.mchid
        settings.WECHATPAY_APPID = wechat.appid
        settings.WECHATPAY_APIV3_KEY = wechat.apiv3_key
        settings.WECHATPAY_CERT_SERIAL = wechat.cert_serial
        settings.WECHATPAY_PRIVATE_KEY_FILE = key_file(
            "wechatpay-merchant.pem", private_pem(wechat.merchant_key)
        )
        settings.WECHATPAY_PUBLIC_KEY_ID = wechat.public_key_id
        settings.WECHATPAY_PUBLIC_KEY_FILE = key_file(
            "wechatpay.pem", public_pem(wechat.platform_key)
        )
        settings.WECHATPAY_API_URL = wechat.url
        settings.STRIPE_SECRET_KEY = fakes.stripe.secret_key
        settings.STRIPE_WEBHOOK_SECRET = fakes.stripe.webhook_secret
        settings.STRIPE_API_URL = fakes.stripe.url
        yield fakes
    finally:
        fakes.stop()
