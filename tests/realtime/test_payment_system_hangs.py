"""A payment system that is slow, or hangs, holds the Pays waiting for it, and nothing else.

A Pay waits for the payment system's answer for up to PAYMENT_GATEWAY_TIMEOUT. Were its
database connection kept all that time, a few such Pays would take every connection of the
process's pool, and every other page, socket and notification would wait for one: an outage of
the payment system would stop the shop. Pay is an async view whose database steps give their
connection back when done (Channels' `database_sync_to_async`).
"""

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from checkout.models import Order, OrderStatus
from tests import fake_http
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


def cookie(session) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


@dataclass
class Shoppers:
    """One shopper about to pay, another looking at an order, and the payment system's answer
    to the first one's Pay."""

    paying_session: Any
    paying: Order
    browsing_session: Any
    browsing: Order
    answer: bytes

    def pay(self, browser: httpx.AsyncClient) -> asyncio.Task:
        """The Pay, pressed in the order's page (htmx), left running."""
        csrf = "a" * 32
        return asyncio.create_task(
            browser.post(
                f"/orders/{self.paying.biz}/pay/",
                headers={
                    "Cookie": f"{cookie(self.paying_session)}; csrftoken={csrf}",
                    "X-CSRFToken": csrf,
                    "HX-Request": "true",
                },
            )
        )

    async def browse(self, browser: httpx.AsyncClient) -> httpx.Response:
        """The other shopper's order page."""
        return await browser.get(
            f"/orders/{self.browsing.biz}/", headers={"Cookie": cookie(self.browsing_session)}
        )


async def shoppers() -> Shoppers:
    paying_session = await sync_to_async(f.shopper_session)()
    paying = await sync_to_async(f.order)(paying_session)
    browsing_session = await sync_to_async(f.shopper_session)()
    browsing = await sync_to_async(f.order)(browsing_session)
    pay_id = f.payment_id()
    answer = f.started_body(
        paying, pay_id=pay_id, cashier_url=f"http://127.0.0.1:9/sandbox/cashier/{pay_id}"
    )
    return Shoppers(paying_session, paying, browsing_session, browsing, answer)


def one_connection(shops, name: str, gateway: str, **env: str):
    """A shop served as in production with one connection in its pool: a Pay that kept its own
    while it waits would leave none to anyone."""
    return shops.start(
        name,
        daphne=True,
        reconcile=False,
        deliver=False,
        DATABASE_POOL_SIZE="1",
        PAYMENT_GATEWAY_URL=gateway,
        SANDBOX_ENABLED="0",
        **env,
    )


async def test_pays_waiting_for_the_payment_system_hold_no_database_connection(shops):
    two = await shoppers()
    waiting = await sync_to_async(f.order)(status=OrderStatus.PENDING)
    arrived, release = threading.Event(), threading.Event()
    held = fake_http.answering(201, two.answer, arrived=arrived, release=release)
    with held as gateway:
        server = one_connection(shops, "hanging", gateway)
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as browser:
            paying = two.pay(browser)
            assert await sync_to_async(arrived.wait)(10), "the Pay never reached the gateway"

            # While that Pay waits: another shopper's page, and a result for a third order.
            page = await two.browse(browser)
            body = f.notice_body(waiting)
            notified = await browser.post(
                "/payments/notify/sandbox/",
                content=body,
                headers={"Content-Type": "application/json", **f.signed_headers(body)},
            )
            assert not paying.done()  # the payment system has still not answered
            release.set()
            paid = await paying

    assert page.status_code == 200 and two.browsing.biz in page.text
    assert notified.status_code == 200
    await waiting.arefresh_from_db()
    assert waiting.status == OrderStatus.PAID
    assert paid.status_code == 200 and 'data-status="pending"' in paid.text
