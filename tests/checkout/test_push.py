"""What a push carries: the order's state, in primitives, from which any socket renders the panel
the order itself renders, with no query."""

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

from checkout.models import Order, OrderStatus
from checkout.panels import panel_order, panel_render, panel_state
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
