"""The QR code of the pending panel: drawn only where a panel shows it, and once per payment."""

from unittest import mock

import pytest

from checkout import panels
from checkout.models import OrderStatus
from checkout.selectors import order_with_payment
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db

CASHIER = "http://127.0.0.1:8000/sandbox/cashier/pay_0123456789abcdef01234567"


def order_with_cashier(status: str):
    order = f.order(status=status)
    f.payment(order, cashier_url=CASHIER)
    return order_with_payment(biz=order.biz)


@pytest.fixture
def encodings():
    panels.qr_svg.cache_clear()
    with mock.patch.object(panels.segno, "make", wraps=panels.segno.make) as make:
        yield make
    panels.qr_svg.cache_clear()


def test_pending_panel_shows_the_qr_code_of_its_cashier_link(encodings):
    html = panels.panel_render(order_with_cashier(OrderStatus.PENDING))
    assert '<figure class="qr" aria-hidden="true"><svg' in html
    assert encodings.call_args.args == (CASHIER,)


def test_the_same_payment_is_encoded_once_for_the_pay_answer_and_each_socket(encodings):
    order = order_with_cashier(OrderStatus.PENDING)
    first, second = panels.panel_render(order), panels.panel_render(order)
    assert first == second
    assert encodings.call_count == 1


@pytest.mark.parametrize("status", [OrderStatus.PAID, OrderStatus.FAILED, OrderStatus.EXPIRED])
def test_panels_without_a_qr_code_never_encode_one(encodings, status):
    html = panels.panel_render(order_with_cashier(status))
    assert f'data-status="{status}"' in html
    assert "<svg" not in html
    assert encodings.call_count == 0
