"""The reconciler against Alipay, WeChat Pay and Stripe (their local fakes): what it asks each
provider, and what it makes of each answer, when a notification never comes (contract section 6,
issue 32). WeChat Pay notifies only success, Alipay knows a trade only once its code is scanned,
and Stripe looks a session up only by its id and refuses an expiry under 30 minutes."""

import logging
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from checkout import reconcile
from checkout.models import Order, OrderStatus, Payment, PaymentStatus
from checkout.services.payments import PaymentNotStarted, payment_start
from tests.checkout.test_reconcile import due, past_its_time, run_once
from tests.checkout import factories as f
from tests.checkout.provider_fakes import Fakes, providers_served
from tests.checkout.providers import NAMES

pytestmark = pytest.mark.django_db

QUERY = ("GET", "/v3/pay/transactions/out-trade-no/{}")
NATIVE = ("POST", "/v3/pay/transactions/native")


@pytest.fixture
def fakes(settings, tmp_path):
    with providers_served(settings, tmp_path) as served:
        yield served


def now(order: Order) -> Order:
    return Order.objects.select_related("product", "payment").get(pk=order.pk)


def start(order: Order, provider: str) -> Order:
    async_to_sync(payment_start)(order=now(order), provider=provider)
    return now(order)


def pending_order(provider: str) -> Order:
    """An order whose Pay for `provider` went through: pending, paying with its payment."""
    order = start(f.order(), provider)
    assert order.status == OrderStatus.PENDING and order.payment.gateway == provider
    return order


def outcomes(caplog, order: Order) -> list[str]:
    """The outcome of each reconcile step logged for `order`."""
    return [
        record.getMessage().split("outcome=")[1].split()[0]
        for record in caplog.records
        if record.name == "checkout.reconcile" and f"biz={order.biz}" in record.getMessage()
    ]


@pytest.fixture
def reconcile_log(caplog):
    with caplog.at_level(logging.INFO, logger="checkout.reconcile"):
        yield caplog


def wechat_calls(fakes: Fakes, order: Order) -> list[tuple[str, str]]:
    return [(method, path.replace(order.biz, "{}")) for method, path in fakes.wechatpay_calls()]


# Alipay


def test_an_alipay_code_never_scanned_waits_until_its_time_is_up_then_is_closed_and_expired(
    fakes, reconcile_log
):
    order = pending_order("alipay")
    due(order)

    assert run_once() == 1

    # Alipay knows no trade before its code is scanned: no payment yet, not a failure.
    assert fakes.alipay_methods() == ["alipay.trade.precreate", "alipay.trade.query"]
    waiting = now(order)
    assert waiting.status == OrderStatus.PENDING
    assert waiting.payment.status == PaymentStatus.PENDING
    assert timezone.now() < waiting.reconcile_after <= waiting.expires_at
    assert outcomes(reconcile_log, order) == ["no_payment"]

    past_its_time(order)
    assert run_once() == 1

    assert fakes.alipay_methods()[2:] == ["alipay.trade.close", "alipay.trade.query"]
    assert now(order).status == OrderStatus.EXPIRED
    assert outcomes(reconcile_log, order) == ["no_payment", OrderStatus.EXPIRED]
    # Its code expired with the order (time_expire): there is nothing left to ask Alipay about.
    due(order)
    assert run_once() == 0, "an expired order whose Alipay code was never scanned is claimed again"
    assert len(fakes.alipay_methods()) == 4
    assert now(order).payment.status == PaymentStatus.CLOSED


def test_an_alipay_payment_whose_notice_was_lost_is_found_paid_by_the_query(fakes):
    order = pending_order("alipay")
    trade = fakes.alipay.pay(order.biz)  # scanned and paid; the notice never comes
    due(order)

    assert run_once() == 1

    assert fakes.alipay_methods() == ["alipay.trade.precreate", "alipay.trade.query"]
    order = now(order)
    assert order.status == OrderStatus.PAID
    assert order.paid_at == trade.paid_at.replace(microsecond=0)  # send_pay_date, to the second
    assert order.payment.status == PaymentStatus.SUCCEEDED
    assert run_once() == 0


def test_an_alipay_trade_scanned_but_unpaid_at_expiry_is_closed_at_alipay(fakes):
    order = pending_order("alipay")
    fakes.alipay.scan(order.biz)
    past_its_time(order)

    assert run_once() == 1

    assert fakes.alipay_methods()[1:] == [
        "alipay.trade.close",
        "alipay.trade.query",  # the close's answer has no status: the trade as it then stands
        "alipay.trade.query",
    ]
    assert fakes.alipay.trades[order.biz].status == "TRADE_CLOSED"
    order = now(order)
    assert order.status == OrderStatus.EXPIRED and order.payment.status == PaymentStatus.CLOSED
    due(order)
    assert run_once() == 0


def test_a_success_of_an_alipay_code_switched_from_is_found_when_its_notice_is_lost(fakes):
    """Switched from before it was scanned, the Alipay code could not be closed (Alipay had no
    trade yet) and stays payable: a success of it still counts, also when only a query can tell."""
    order = pending_order("alipay")
    order = start(order, "stripe")
    assert order.payment.gateway == "stripe"
    fakes.alipay.pay(order.biz)  # the old code scanned and paid; the notice never comes
    past_its_time(order)

    run_once()

    assert fakes.stripe.sessions[order.payment.payment_id]["status"] == "expired"
    assert "alipay.trade.query" in fakes.alipay_methods()[2:], (
        "the paid Alipay trade is never asked about"
    )
    order = now(order)
    assert order.status == OrderStatus.PAID
    assert order.payments.get(gateway="alipay").status == PaymentStatus.SUCCEEDED


# WeChat Pay: only success is notified


@pytest.mark.parametrize(
    ("trade_state", "status", "payment"),
    [
        ("PAYERROR", OrderStatus.FAILED, PaymentStatus.FAILED),
        ("CLOSED", OrderStatus.EXPIRED, PaymentStatus.CLOSED),
        ("REVOKED", OrderStatus.EXPIRED, PaymentStatus.CLOSED),
        ("USERPAYING", OrderStatus.PENDING, PaymentStatus.PENDING),
        ("NOTPAY", OrderStatus.PENDING, PaymentStatus.PENDING),
        ("SUCCESS", OrderStatus.PAID, PaymentStatus.SUCCEEDED),
    ],
)
def test_what_a_wechat_pay_query_finds_is_applied_by_the_rules(fakes, trade_state, status, payment):
    order = pending_order("wechatpay")
    fakes.wechatpay.pay(order.biz, trade_state)  # WeChat Pay notifies none but SUCCESS
    due(order)

    assert run_once() == 1

    assert wechat_calls(fakes, order) == [NATIVE, QUERY]
    order = now(order)
    assert (order.status, order.payment.status) == (status, payment)


def test_a_wechat_pay_trade_unpaid_at_expiry_is_closed_at_wechat_pay_then_expired(fakes):
    order = pending_order("wechatpay")
    past_its_time(order)

    assert run_once() == 1

    close = ("POST", "/v3/pay/transactions/out-trade-no/{}/close")
    assert wechat_calls(fakes, order) == [NATIVE, close, QUERY, QUERY]
    assert fakes.wechatpay.trades[order.biz].trade_state == "CLOSED"
    order = now(order)
    assert order.status == OrderStatus.EXPIRED and order.payment.status == PaymentStatus.CLOSED
    due(order)
    assert run_once() == 0


# Stripe


def test_a_stripe_session_outliving_its_order_is_expired_by_the_shop(fakes, settings):
    assert settings.ORDER_PAYMENT_TTL < 30 * 60  # shorter than any session Stripe allows
    order = pending_order("stripe")
    session = fakes.stripe.sessions[order.payment.payment_id]
    assert session["expires_at"] >= (order.expires_at + timedelta(minutes=30)).timestamp()
    due(order)
    run_once()  # not yet expired: a query, and the session stays open
    assert session["status"] == "open" and now(order).status == OrderStatus.PENDING

    past_its_time(order)
    assert run_once() == 1

    assert session["status"] == "expired"
    order = now(order)
    assert order.status == OrderStatus.EXPIRED and order.payment.status == PaymentStatus.CLOSED
    due(order)
    assert run_once() == 0


def test_a_stripe_session_paid_before_the_shop_expires_it_pays_the_order(fakes):
    order = pending_order("stripe")
    fakes.stripe.complete(order.payment.payment_id)  # its event never comes
    past_its_time(order)

    assert run_once() == 1

    order = now(order)
    assert order.status == OrderStatus.PAID and order.payment.status == PaymentStatus.SUCCEEDED
    assert fakes.stripe.sessions[order.payment.payment_id]["status"] == "complete"


def test_a_pay_whose_stripe_answer_was_lost_gets_the_same_session_when_pressed_again(
    fakes, reconcile_log
):
    order = f.order()
    # Stripe creates the session; its answer is lost, and so is the answer to the client's retry.
    fakes.stripe.drop_answers = 2
    with pytest.raises(PaymentNotStarted):
        start(order, "stripe")
    order = now(order)
    assert (order.status, order.provider, order.payment) == (OrderStatus.UNPAID, "stripe", None)
    assert not Payment.objects.exists()
    (created,) = fakes.stripe.sessions
    assert fakes.stripe.idempotency_keys == [order.biz, order.biz]

    # Without the session's id Stripe has nothing to look up: the order waits.
    due(order)
    assert run_once() == 1
    assert outcomes(reconcile_log, order) == ["no_payment"]
    assert now(order).status == OrderStatus.UNPAID
    assert len(fakes.stripe.idempotency_keys) == 2

    order = start(order, "stripe")

    # The same create, with the same key and parameters: Stripe replays the session it made.
    assert fakes.stripe.idempotency_keys == [order.biz] * 3
    assert fakes.stripe.replayed == 2 and list(fakes.stripe.sessions) == [created]
    assert order.status == OrderStatus.PENDING and order.payment.payment_id == created
    assert order.payment.cashier_url == fakes.stripe.sessions[created]["url"]


# Throttled


def throttle(fakes: Fakes, provider: str, count: int) -> None:
    getattr(fakes, provider).throttle = count


@pytest.mark.parametrize("provider", NAMES)
def test_a_provider_that_says_too_many_leaves_the_order_waiting_and_it_comes_back_soon(
    fakes, reconcile_log, provider
):
    order = pending_order(provider)
    throttle(fakes, provider, 1)
    due(order)

    before = timezone.now()
    assert run_once() == 1
    after = timezone.now()

    assert getattr(fakes, provider).throttle == 0  # the provider was asked, and said 429
    assert outcomes(reconcile_log, order) == ["throttled"]
    waiting = now(order)
    assert waiting.status == OrderStatus.PENDING
    assert waiting.payment.status == PaymentStatus.PENDING
    # Looked at again sooner than a payment still pending is (RECONCILE_QUERY_AFTER).
    retry = reconcile.RETRY_AFTER_ERROR
    assert before + retry <= waiting.reconcile_after <= after + retry * (1 + reconcile.JITTER)

    fakes.pay(provider, waiting)  # paid meanwhile; the next look finds it
    due(order)
    assert run_once() == 1
    assert now(order).status == OrderStatus.PAID
    assert outcomes(reconcile_log, order) == ["throttled", OrderStatus.PAID]


# Nobody to ask


def test_an_order_whose_pay_was_never_pressed_is_never_queried_only_expired(fakes, reconcile_log):
    order = f.order()
    due(order)
    assert run_once() == 1
    assert now(order).status == OrderStatus.UNPAID
    past_its_time(order)
    assert run_once() == 1
    assert now(order).status == OrderStatus.EXPIRED
    assert outcomes(reconcile_log, order) == ["no_payment", OrderStatus.EXPIRED]
    assert fakes.alipay.requests == [] and fakes.wechatpay.requests == []
    assert fakes.stripe.idempotency_keys == [] and fakes.stripe.sessions == {}
