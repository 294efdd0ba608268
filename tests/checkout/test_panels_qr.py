"""The QR code of the pending panel: scannable, drawn only where a panel shows it, and once per
payment."""

import re
from unittest import mock

import pytest
import zxingcpp

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
    create = panels.zxingcpp.create_barcode
    with mock.patch.object(panels.zxingcpp, "create_barcode", wraps=create) as make:
        yield make
    panels.qr_svg.cache_clear()


def test_pending_panel_shows_the_qr_code_of_its_cashier_link(encodings):
    html = panels.panel_render(order_with_cashier(OrderStatus.PENDING))
    assert '<figure class="qr" aria-hidden="true"><svg' in html
    assert encodings.call_args.args[0] == CASHIER


def drawn(svg: str) -> memoryview:
    """The picture `svg` draws, one byte per module (0 dark, 255 light), eight pixels per module."""
    size = int(re.search(r'viewBox="0 0 (\d+) \1"', svg)[1])
    scale = 8
    pixels = bytearray(b"\xff" * (size * scale) ** 2)
    path = re.search(r'<path d="([^"]*)"', svg)[1]
    rectangles = re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-\3Z", path)
    assert "".join(f"M{x} {y}h{w}v{h}h-{w}Z" for x, y, w, h in rectangles) == path
    for x, y, w, h in (map(int, r) for r in rectangles):
        for row in range(y * scale, (y + h) * scale):
            start = row * size * scale + x * scale
            pixels[start : start + w * scale] = b"\x00" * (w * scale)
    return memoryview(pixels).cast("B", (size * scale, size * scale))


@pytest.mark.parametrize(
    "url",
    [CASHIER, "https://pay.example.com/sandbox/cashier/pay_ffffffffffffffffffffffff?lang=zh-hans"],
)
def test_the_code_drawn_reads_back_as_the_cashier_link(url):
    svg = panels.qr_svg.__wrapped__(url)
    assert svg.startswith('<svg viewBox="0 0 ') and svg.endswith("</svg>")
    code = zxingcpp.read_barcode(drawn(svg), formats=zxingcpp.BarcodeFormat.QRCode, is_pure=True)
    assert code is not None and code.text == url


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
