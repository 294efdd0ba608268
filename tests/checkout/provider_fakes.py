"""Alipay, WeChat Pay and Stripe fakes (tests/fakes) served on a thread of their own, and the shop's
settings pointing at them, for tests that run the shop synchronously (`async_to_sync`, Django's
test client) against all three providers. The fakes and the shop's settings for them come from
`tests.checkout.providers` (`alipay_fake`, `wechatpay_fake`, `use_fake`), as for the offline tests.

The fakes' state (trades, sessions, requests) is read and changed from the test's thread while
their loop waits for the next request: the shop's calls are over by the time the test looks."""

import asyncio
import threading
from contextlib import contextmanager
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from checkout.models import Order
from tests.checkout.providers import NAMES, alipay_fake, use_fake, wechatpay_fake
from tests.fakes.stripe import FakeStripe


class Fakes:
    """The three fakes, served by an event loop on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.alipay = alipay_fake()
        self.wechatpay = wechatpay_fake()
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
    fakes = Fakes()
    try:
        settings.PAYMENT_PROVIDERS = list(NAMES)
        for fake in (fakes.alipay, fakes.wechatpay, fakes.stripe):
            use_fake(settings, fake, tmp_path)
        yield fakes
    finally:
        fakes.stop()
