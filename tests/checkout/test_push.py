"""What a push carries: the order's state, in primitives, from which any socket renders the panel
the order itself renders, with no query; and what a push that fails leaves behind."""

import logging

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from prometheus_client import REGISTRY

from checkout import push
from checkout.models import Order, OrderStatus
from checkout.panels import PanelState, panel_order, panel_render, panel_state
from checkout.selectors import order_with_payment
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db

LANGUAGES = [code for code, _ in settings.LANGUAGES]
CASHIER = "https://pay.example/cashier/pay_0123456789abcdef01234567"


def saved_order(status: str, *, payment: bool = True) -> Order:
    """An order as the database has it, read as the socket reads it; with a payment if asked."""
    order = f.order(status=status)
    if payment:
        f.payment(order, cashier_url=CASHIER)
    return order_with_payment(biz=order.biz)


CASES = [
    pytest.param(
        status, payment, language, id=f"{status}-{'payment' if payment else 'none'}-{language}"
    )
    for status in OrderStatus.values
    for payment in (True, False)
    for language in LANGUAGES
]


@pytest.mark.parametrize("status, payment, language", CASES)
def test_a_state_renders_exactly_the_panel_of_its_order(status, payment, language):
    order = saved_order(status, payment=payment)
    pushed = panel_order(panel_state(order))
    assert panel_render(pushed, language=language) == panel_render(order, language=language)


def test_the_pending_state_brings_the_qr_code_and_the_cashier_link():
    html = panel_render(panel_order(panel_state(saved_order(OrderStatus.PENDING))))
    assert f'href="{CASHIER}"' in html and "<svg" in html


def test_rendering_a_state_makes_no_query(django_assert_num_queries):
    state = panel_state(saved_order(OrderStatus.PENDING))
    with django_assert_num_queries(0):
        panel_render(panel_order(state), language="zh-hans")


@pytest.mark.parametrize("payment", [True, False], ids=["payment", "none"])
def test_the_message_comes_through_the_redis_layers_msgpack_unchanged(payment):
    state = panel_state(saved_order(OrderStatus.PAID, payment=payment))
    message = {
        "type": "order.changed",
        "applied_at": 1795000000.25,
        "order": state,
        "pressed_in": "AbCdEf012_-x",
    }
    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:6379/0"])  # never connects here
    assert layer.deserialize(layer.serialize(message)) == message


class LayerAway:
    """A channel layer whose store is unreachable, as a Redis outage leaves it."""

    async def group_send(self, group, message):
        raise ConnectionError("Connection refused")


class Clock:
    """The push module's `time`, standing still until the test moves it."""

    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


def push_failures() -> float:
    return REGISTRY.get_sample_value("checkout_push_failures_total") or 0.0


async def test_failed_pushes_are_each_counted_and_logged_once_per_interval(monkeypatch, caplog):
    """While the layer is away every push fails: each is counted, but the log gets the first and
    then one line per interval, which says how many failed since the line before."""
    monkeypatch.setattr(push, "get_channel_layer", LayerAway)
    monkeypatch.setattr(push, "failures", push.FailureLog())
    clock = Clock()
    monkeypatch.setattr(push, "time", clock)
    # No order in the database: an async test's queries would run outside its transaction.
    state = PanelState(
        biz="0123456789abcdef0123456789abcdef",
        version=2,
        status=OrderStatus.PAID,
        amount=1200,
        currency="CNY",
        product="Tea",
        cashier_url=CASHIER,
    )
    counted = push_failures()
    caplog.set_level(logging.WARNING, logger="checkout.push")

    for _ in range(5):
        await push.push_order_changed(state)  # never raises: the result is committed anyway
    assert push_failures() == counted + 5
    assert [r.getMessage() for r in caplog.records] == [
        f"push failed biz={state['biz']} error=ConnectionError('Connection refused')"
    ]

    clock.now += push.FAILURE_LOG_EVERY - 0.1
    await push.push_order_changed(state)
    assert len(caplog.records) == 1
    clock.now += 0.1
    await push.push_order_changed(state)
    assert push_failures() == counted + 7
    assert caplog.records[-1].getMessage().endswith("more_since_last_line=5")
    assert len(caplog.records) == 2
