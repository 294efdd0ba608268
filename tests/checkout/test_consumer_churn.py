"""The status stream under churn: shoppers' sockets opening and closing while their orders' results
are applied and pushed. Every socket still open at the end shows the paid panel, told by the push
alone (the watchlist, which would catch up a lost push, is kept from running)."""

import asyncio
import random

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from checkout.gateways.base import GatewayPayment
from checkout.models import OrderStatus, PaymentStatus
from checkout.services.results import result_receive
from shop.asgi import application
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = 8
PAID = 'data-status="paid"'


class Page:
    """One open checkout page: its socket and the last panel it showed."""

    def __init__(self, biz: str, session) -> None:
        cookie = f"{django_settings.SESSION_COOKIE_NAME}={session.session_key}".encode()
        headers = [(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)]
        self.socket = WebsocketCommunicator(application, f"/ws/order/{biz}/", headers=headers)
        self.panel = ""

    async def open(self) -> "Page":
        connected, _ = await self.socket.connect()
        assert connected
        self.panel = await self.socket.receive_from(timeout=5)
        return self

    async def shows_paid(self) -> bool:
        while PAID not in self.panel:
            try:
                self.panel = await self.socket.receive_from(timeout=5)
            except asyncio.TimeoutError:
                return False
        return True


async def pay(order) -> None:
    """The payment system's success, applied and pushed as a notification's would be."""
    payment = GatewayPayment(
        payment_id=f.payment_id(),
        biz=order.biz,
        status=PaymentStatus.SUCCEEDED,
        amount=order.amount,
        currency=order.currency,
    )
    applied = await result_receive(biz=order.biz, payment=payment, provider="sandbox")
    assert applied.changed


async def test_every_socket_open_at_the_end_shows_the_paid_panel(settings) -> None:
    settings.WATCH_INTERVAL = 3600  # no catching up: the push alone must tell every page
    rng = random.Random(5)
    orders = []
    for _ in range(ORDERS):
        session = await sync_to_async(f.shopper_session)()
        orders.append((session, await sync_to_async(f.order)(session, status=OrderStatus.PENDING)))
    pages = {o.biz: [await Page(o.biz, s).open() for _ in range(5)] for s, o in orders}
    closed: list[Page] = []

    async def close(page: Page) -> None:
        await page.socket.disconnect()
        closed.append(page)

    async def open_(biz: str, session) -> None:
        pages[biz].append(await Page(biz, session).open())

    async def pay_then_close(order, page: Page) -> None:
        await pay(order)
        await close(page)  # the moment the push is out: its receive may have just been woken

    churn = []
    for session, order in orders:
        first, second, third = rng.sample(pages[order.biz], 3)  # two of five stay
        churn += [close(first), close(second), pay_then_close(order, third)]
        churn += [open_(order.biz, session) for _ in range(2)]
    rng.shuffle(churn)
    await asyncio.gather(*churn)  # pages open and close while results are applied and pushed
    staying = [page for biz in pages for page in pages[biz] if page not in closed]
    assert len(staying) == ORDERS * 4
    shown = await asyncio.gather(*(page.shows_paid() for page in staying))
    assert all(shown), f"{shown.count(False)} of {len(staying)} open pages never showed paid"
    for page in staying:
        await page.socket.disconnect()
