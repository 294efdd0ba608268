"""The shop's HTTP client for the payment system, when a kept-alive connection closes under it."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from checkout.gateways.base import GatewayError, PaymentRequest
from checkout.gateways.sandbox import SandboxGateway
from tests import fake_http

BIZ = "0123456789abcdef0123456789abcdef"
PAY_ID = "pay_0123456789abcdef01234567"
STARTED = json.dumps(
    {
        "payment_id": PAY_ID,
        "status": "pending",
        "cashier_url": "https://pay.example/cashier/" + PAY_ID,
        "out_trade_no": BIZ,
        "amount": 1200,
        "currency": "CNY",
    }
).encode()


def pay_request() -> PaymentRequest:
    return PaymentRequest(
        biz=BIZ,
        amount=1200,
        currency="CNY",
        description="Tea",
        notify_url="https://shop.example/payments/notify/sandbox/",
        expire_at=timezone.now() + timedelta(minutes=15),
    )


@pytest.fixture
def closing(settings):
    with fake_http.closing_kept_alive(201, STARTED) as (url, came):
        settings.PAYMENT_GATEWAY_URL = url
        yield came


async def test_a_pay_whose_kept_connection_closes_under_it_is_sent_again_with_its_key(closing):
    """The payment system's idle timeout closes the connection the last Pay left open just as the
    next goes out on it: that one is sent again, on a new connection, with the same idempotency
    key (the same payment, however many copies arrive), and the shopper sees pending, not an
    error (two Pays failed so in a benchmark run before)."""
    gateway = SandboxGateway()
    first = await gateway.start(pay_request())
    again = await gateway.start(pay_request())  # a double click, on the kept connection
    assert again == first and again.payment_id == PAY_ID
    assert closing == [("/v1/payments", BIZ)] * 3  # answered, closed under it, answered


async def test_a_request_without_an_idempotency_key_is_not_sent_again(closing):
    """Closing a payment carries no key: sent once, its lost connection is the caller's error (the
    reconciler asks again on its next round)."""
    gateway = SandboxGateway()
    await gateway.start(pay_request())
    with pytest.raises(GatewayError, match="ServerDisconnectedError|ClientOSError"):
        await gateway.close(payment_id=PAY_ID)
    assert closing == [("/v1/payments", BIZ), (f"/v1/payments/{PAY_ID}/close", "")]


async def test_the_second_try_has_only_what_is_left_of_the_time_limit(settings):
    """A Pay whose connection was held most of PAYMENT_GATEWAY_TIMEOUT before it closed gets only
    the rest for its second try: the shopper hears within the limit, not up to twice as late."""
    settings.PAYMENT_GATEWAY_TIMEOUT = 1.0
    slow = fake_http.closing_kept_alive(201, STARTED, hold=0.7, later_answers_after=0.6)
    with slow as (url, came):
        settings.PAYMENT_GATEWAY_URL = url
        gateway = SandboxGateway()
        await gateway.start(pay_request())
        with pytest.raises(GatewayError, match="TimeoutError"):
            await gateway.start(pay_request())  # 0.3 s left for an answer that takes 0.6
    assert len(came) == 3  # it was sent again, and ran out of time
