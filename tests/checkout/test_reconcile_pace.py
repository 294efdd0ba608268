"""A herd of due orders (a sale's first minute) is queried at a steady pace, per payment system:
at most RECONCILE_RATE queries started a second and RECONCILE_MAX_IN_FLIGHT waiting at once, and
an order whose result arrived while it waited its turn is not queried at all."""

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from checkout import reconcile
from checkout.gateways.base import GatewayPayment, GatewayThrottled
from checkout.models import Order, OrderStatus, Payment, PaymentStatus
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db(transaction=True)


class Gateway:
    """A payment system that answers "still pending" after a while, and counts what it is asked."""

    name = "sandbox"

    def __init__(self, answer_after: float, on_query=None) -> None:
        self.answer_after = answer_after
        self.on_query = on_query
        self.started: list[float] = []
        self.queried: list[str] = []
        self.waiting = self.most_waiting = 0

    async def query(self, *, biz: str, payment_id: str | None = None) -> GatewayPayment | None:
        self.started.append(time.monotonic())
        self.queried.append(biz)
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        if self.on_query:
            await self.on_query(biz)
        await asyncio.sleep(self.answer_after)
        self.waiting -= 1
        payment_id = (
            await Order.objects.filter(biz=biz).values_list("payment__payment_id", flat=True).aget()
        )
        return GatewayPayment(payment_id, biz, PaymentStatus.PENDING, 1999, "CNY")


def due_pending_orders(count: int) -> list[Order]:
    orders = []
    for _ in range(count):
        order = f.order(status=OrderStatus.PENDING)
        f.payment(order)
        orders.append(order)
    Order.objects.update(reconcile_after=timezone.now())
    return orders


def test_a_herd_of_due_orders_is_queried_at_the_rate_and_no_more_at_once(settings, monkeypatch):
    settings.RECONCILE_RATE, settings.RECONCILE_MAX_IN_FLIGHT = 40, 3
    gateway = Gateway(answer_after=0.05)
    monkeypatch.setattr(reconcile, "get_gateway", lambda name: gateway)
    orders = due_pending_orders(20)

    assert async_to_sync(reconcile.reconcile_once)() == 20

    assert sorted(gateway.queried) == sorted(order.biz for order in orders)
    assert gateway.most_waiting <= 3
    # The k-th start is at least k intervals after the first (each query follows its start by a
    # database read, whose time varies, so the gaps between two queries do too).
    span = gateway.started[-1] - gateway.started[0]
    assert span >= 19 / 40 - 0.1


def test_an_order_whose_result_arrived_while_it_waited_its_turn_is_not_queried(
    settings, monkeypatch
):
    settings.RECONCILE_RATE, settings.RECONCILE_MAX_IN_FLIGHT = 0, 1
    first, second = due_pending_orders(2)

    async def the_other_one_is_paid_meanwhile(biz: str) -> None:
        other = second if biz == first.biz else first
        await Payment.objects.filter(order=other).aupdate(status=PaymentStatus.SUCCEEDED)
        await Order.objects.filter(pk=other.pk).aupdate(status=OrderStatus.PAID)

    gateway = Gateway(answer_after=0, on_query=the_other_one_is_paid_meanwhile)
    monkeypatch.setattr(reconcile, "get_gateway", lambda name: gateway)

    assert async_to_sync(reconcile.reconcile_once)() == 2  # both claimed ...
    assert len(gateway.queried) == 1  # ... one asked about: the other had its result


def test_a_pending_order_is_looked_at_again_a_little_later_than_the_interval(settings):
    """Spread by a random fraction, so that a herd does not come back together."""
    settings.RECONCILE_QUERY_AFTER = 100
    orders = due_pending_orders(20)
    now = timezone.now()
    for order in orders:
        reconcile.order_reschedule(biz=order.biz, after=timedelta(seconds=100))
    delays = [
        (when - now).total_seconds()
        for when in Order.objects.values_list("reconcile_after", flat=True)
    ]
    assert all(100 <= delay <= 100 * (1 + reconcile.JITTER) + 1 for delay in delays)
    assert len({round(delay, 3) for delay in delays}) > 1  # not all at the same moment


def test_a_provider_that_says_too_many_is_left_alone_for_a_while(settings, monkeypatch):
    """After a 429 no query goes to that provider for THROTTLED_HOLD; the order comes back."""
    settings.RECONCILE_RATE, settings.RECONCILE_MAX_IN_FLIGHT = 0, 1
    monkeypatch.setattr(reconcile, "THROTTLED_HOLD", 0.5)
    throttled, later = due_pending_orders(2)

    class Throttling(Gateway):
        async def query(self, *, biz: str, payment_id: str | None = None):
            if not self.queried:
                self.started.append(time.monotonic())
                self.queried.append(biz)
                raise GatewayThrottled("HTTP 429")
            return await super().query(biz=biz, payment_id=payment_id)

    gateway = Throttling(answer_after=0)
    monkeypatch.setattr(reconcile, "get_gateway", lambda name: gateway)

    assert async_to_sync(reconcile.reconcile_once)() == 2
    assert len(gateway.queried) == 2
    assert gateway.started[1] - gateway.started[0] >= 0.5
    first = Order.objects.get(biz=gateway.queried[0])
    assert first.status == OrderStatus.PENDING  # nothing applied; looked at again soon
    assert first.reconcile_after <= timezone.now() + reconcile.RETRY_AFTER_ERROR * 1.3


def test_each_provider_has_its_own_rate(settings, monkeypatch):
    settings.RECONCILE_RATE, settings.RECONCILE_RATES = 0, {"alipay": 5}
    settings.RECONCILE_MAX_IN_FLIGHT = 10
    orders = due_pending_orders(3)
    Order.objects.update(provider="alipay")
    gateway = Gateway(answer_after=0)
    monkeypatch.setattr(reconcile, "get_gateway", lambda name: gateway)
    Payment.objects.update(gateway="alipay")

    assert async_to_sync(reconcile.reconcile_once)() == 3
    assert sorted(gateway.queried) == sorted(order.biz for order in orders)
    assert gateway.started[-1] - gateway.started[0] >= 2 / 5 - 0.1  # 5 a second, not unlimited
