"""Pay with Alipay, WeChat Pay and Stripe, against their local fakes, as the shopper's browser does
(`POST /orders/<biz>/pay/` with `provider=`): one payment per provider however often Pay is
pressed, switching closes the current payment first, and a payment switched from still counts
when it takes the money (contract section 6, issue 32)."""

import re

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from checkout import reconcile
from checkout.models import Flag, Order, OrderStatus, Payment, PaymentStatus
from checkout.services import payments as pay_service, results
from checkout.services.results import Applied
from tests import asgi
from tests.checkout import factories as f
from tests.checkout.provider_fakes import Fakes, providers_served
from tests.checkout.providers import NAMES

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
FORM = "application/x-www-form-urlencoded; charset=utf-8"


@pytest.fixture
def fakes(settings, tmp_path):
    with providers_served(settings, tmp_path) as served:
        yield served


def buy(client) -> Order:
    f.product()
    response = client.post(reverse("checkout:order_new"), {"product": "tea"})
    assert response.status_code == 302
    return Order.objects.get()


def press(client, order: Order, provider: str, status: int = 200) -> str:
    """Pay pressed for `provider` on the order's page (htmx): the panel answered."""
    response = client.post(f"/orders/{order.biz}/pay/", {"provider": provider}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == status, html
    assert html.count('id="payment-status"') == 1
    return html


def now(order: Order) -> Order:
    return Order.objects.select_related("payment").get(pk=order.pk)


def pay_urls(html: str) -> set[str]:
    return set(re.findall(r'data-pay-url="([^"]*)"', html))


def payments(order: Order) -> list[tuple[str, str]]:
    """(provider, status) of the order's payments, oldest first."""
    return list(order.payments.order_by("pk").values_list("gateway", "status"))


def notify_stripe(fakes: Fakes, session_id: str, event: str) -> None:
    headers, body = fakes.stripe.notice(session_id, event)
    response = asgi.post(
        "/payments/notify/stripe/", body, content_type="application/json", headers=headers
    )
    assert response.status_code == 200, response.content


def notify_alipay(fakes: Fakes, order: Order) -> None:
    """Alipay's TRADE_SUCCESS notice for the order's trade, as it now stands."""
    response = asgi.post(
        "/payments/notify/alipay/", fakes.alipay.notice(order.biz), content_type=FORM
    )
    assert response.status_code == 200 and response.content == b"success", response.content


# Pay with each provider


@pytest.mark.parametrize("provider", NAMES)
def test_pay_shows_the_providers_code_and_pressing_it_again_is_the_same_payment(
    client, fakes, provider
):
    order = buy(client)

    html = press(client, order, provider)

    order = now(order)
    assert order.status == OrderStatus.PENDING and order.provider == provider
    assert order.payment.gateway == provider and order.payment.status == PaymentStatus.PENDING
    url = fakes.pay_url(provider, order)
    assert order.payment.cashier_url == url
    assert 'data-status="pending"' in html
    # Verbatim, as Django escapes an attribute, on every element that carries it.
    assert f'data-pay-url="{escape(url)}"' in html and pay_urls(html) == {escape(url)}
    assert '<figure class="qr"' in html and "<svg" in html
    # A link only where the address opens in a browser (WeChat Pay's weixin:// opens its app).
    assert ('class="cashier-link' in html) == (provider != "wechatpay")
    if provider != "wechatpay":
        assert f'href="{escape(url)}"' in html
    # The other providers are offered; this one is not offered again.
    offered = set(re.findall(r'<button class="pay" name="provider" value="(\w+)"', html))
    assert offered == set(NAMES) - {provider}
    assert fakes.creates(provider) == 1

    again = press(client, order, provider)

    assert pay_urls(again) == {escape(url)} and 'data-status="pending"' in again
    assert fakes.creates(provider) == 1, "a second payment was asked for at the provider"
    assert Payment.objects.filter(order=order).count() == 1
    assert now(order).payment_id == order.payment_id


def test_a_provider_that_is_not_offered_is_refused_and_nobody_is_called(client, fakes):
    order = buy(client)
    html = press(client, order, "sandbox", status=400)
    assert 'data-status="unpaid"' in html and "not offered" in html
    assert now(order).status == OrderStatus.UNPAID and not Payment.objects.exists()
    assert [fakes.creates(name) for name in NAMES] == [0, 0, 0]


# Switching


@pytest.mark.parametrize("scanned", [False, True], ids=["code not scanned", "code scanned"])
def test_switching_from_alipay_to_stripe_closes_the_alipay_trade_first(client, fakes, scanned):
    order = buy(client)
    press(client, order, "alipay")
    if scanned:
        fakes.alipay.scan(order.biz)  # scanned, left unpaid: Alipay now knows the trade

    html = press(client, order, "stripe")

    # Closed first: a trade Alipay knows is closed (and looked at as it then stands); a code never
    # scanned is unknown to Alipay (TRADE_NOT_EXIST), nothing to close.
    expected = ["alipay.trade.precreate", "alipay.trade.close"]
    assert fakes.alipay_methods() == expected + (["alipay.trade.query"] if scanned else [])
    trade = fakes.alipay.trades[order.biz]
    assert trade.status == ("TRADE_CLOSED" if scanned else "WAIT_BUYER_PAY")
    (session,) = fakes.stripe.sessions.values()
    assert session["client_reference_id"] == order.biz and session["status"] == "open"
    order = now(order)
    assert order.status == OrderStatus.PENDING and order.provider == "stripe"
    assert order.payment.gateway == "stripe" and order.payment.payment_id == session["id"]
    # A code never scanned had nothing to close: it stays payable until the order's time is up,
    # so the shop keeps it pending (a leftover the reconciler asks about until then).
    alipay_status = "closed" if scanned else "pending"
    assert payments(order) == [("alipay", alipay_status), ("stripe", "pending")]
    assert pay_urls(html) == {escape(session["url"])} and 'data-status="pending"' in html


@pytest.mark.parametrize(
    ("first", "then"),
    [("alipay", "stripe"), ("wechatpay", "alipay"), ("stripe", "wechatpay")],
)
def test_a_payment_found_paid_when_it_is_closed_for_a_switch_pays_the_order_and_nothing_starts(
    client, fakes, first, then
):
    order = buy(client)
    press(client, order, first)
    fakes.pay(first, now(order))  # paid at the provider; its notice has not come (yet)

    html = press(client, order, then)

    assert 'data-status="paid"' in html
    order = now(order)
    assert order.status == OrderStatus.PAID and order.paid_at is not None
    assert order.payment.gateway == first and order.payment.status == PaymentStatus.SUCCEEDED
    assert payments(order) == [(first, "succeeded")]
    assert fakes.creates(then) == 0, f"{then} was asked for a payment of a paid order"
    assert not Flag.objects.exists()


def test_a_pay_answer_overtaken_by_a_press_for_another_provider_is_left_over(
    client, fakes, monkeypatch
):
    """Alipay pressed and its answer slow; Stripe pressed meanwhile and answered. Alipay's answer,
    applied last, does not take the order back to a way the shopper left: Stripe's payment stays
    the current one, the Alipay code a pending payment beside it."""
    order = buy(client)
    late = []

    async def held(**answer) -> Applied:  # Alipay answered; the answer not yet applied
        late.append(answer)
        return Applied(answer["biz"], "held")

    monkeypatch.setattr(pay_service, "result_receive", held)
    press(client, order, "alipay")
    monkeypatch.setattr(pay_service, "result_receive", results.result_receive)
    press(client, order, "stripe")

    (answer,) = late
    assert async_to_sync(results.result_receive)(**answer).outcome == "unchanged"
    order = now(order)
    assert order.status == OrderStatus.PENDING and order.provider == "stripe"
    assert order.payment.gateway == "stripe"
    # Recorded when its answer came, last; as after a switch, the code stays payable until the
    # order's time is up (a leftover).
    assert payments(order) == [("stripe", "pending"), ("alipay", "pending")]


def test_switching_back_to_stripe_opens_a_new_session_with_another_idempotency_key(client, fakes):
    order = buy(client)
    press(client, order, "stripe")
    first = now(order).payment.payment_id
    press(client, order, "alipay")

    html = press(client, order, "stripe")

    keys = fakes.stripe.idempotency_keys
    assert keys == [order.biz, f"{order.biz}-1"]
    assert fakes.stripe.replayed == 0 and len(fakes.stripe.sessions) == 2
    order = now(order)
    second = order.payment.payment_id
    assert second != first
    assert fakes.stripe.sessions[first]["status"] == "expired"  # closed when switching away
    assert fakes.stripe.sessions[second]["status"] == "open"
    assert order.status == OrderStatus.PENDING and order.payment.gateway == "stripe"
    # The Alipay code was never scanned: nothing to close, pending until the order's time is up.
    assert payments(order) == [("stripe", "closed"), ("alipay", "pending"), ("stripe", "pending")]
    assert pay_urls(html) == {escape(fakes.stripe.sessions[second]["url"])}
    # And pressed again: still that session, no third one.
    press(client, order, "stripe")
    assert len(fakes.stripe.idempotency_keys) == 2 and len(fakes.stripe.sessions) == 2


def test_switching_back_to_alipay_makes_its_code_the_current_pending_payment(client, fakes):
    """Alipay's payment is its out_trade_no, the order's biz: pressed again after a switch away,
    its (never scanned) code is shown again, and it is the payment the shopper pays with."""
    order = buy(client)
    press(client, order, "alipay")
    press(client, order, "stripe")

    html = press(client, order, "alipay")

    order = now(order)
    assert order.status == OrderStatus.PENDING and order.payment.gateway == "alipay"
    assert pay_urls(html) == {escape(fakes.alipay.trades[order.biz].qr_code)}
    assert fakes.stripe.sessions[order.payments.get(gateway="stripe").payment_id]["status"] == (
        "expired"
    )
    # The current payment is waiting for the shopper, whatever became of it before.
    assert order.payment.status == PaymentStatus.PENDING


# A payment switched from, paid after all


def test_a_success_of_the_alipay_code_switched_from_pays_the_order(client, fakes):
    order = buy(client)
    press(client, order, "alipay")
    press(client, order, "stripe")  # the Alipay code was never scanned: it stays payable
    stripe_payment = now(order).payment

    fakes.alipay.pay(order.biz)  # the shopper scans the old code after all, and pays
    notify_alipay(fakes, order)

    order = now(order)
    assert order.status == OrderStatus.PAID and order.paid_at is not None
    assert order.payments.get(gateway="alipay").status == PaymentStatus.SUCCEEDED
    # The payment that paid is the order's now; the Stripe session, still open, is left for the
    # reconciler to expire at once (nothing to flag: nobody paid twice).
    assert order.payment.gateway == "alipay"
    assert order.payments.get(pk=stripe_payment.pk).status == PaymentStatus.PENDING
    assert order.reconcile_after <= timezone.now()
    assert not Flag.objects.exists()
    assert async_to_sync(reconcile.reconcile_once)() == 1
    assert fakes.stripe.sessions[stripe_payment.payment_id]["status"] == "expired"
    assert order.payments.get(pk=stripe_payment.pk).status == PaymentStatus.CLOSED
    assert now(order).status == OrderStatus.PAID


def test_a_success_of_the_alipay_code_switched_from_after_stripe_paid_is_flagged_paid_twice(
    client, fakes
):
    order = buy(client)
    press(client, order, "alipay")
    press(client, order, "stripe")
    session_id = now(order).payment.payment_id
    fakes.stripe.complete(session_id)
    notify_stripe(fakes, session_id, "checkout.session.completed")
    paid = now(order)
    assert paid.status == OrderStatus.PAID and not Flag.objects.exists()

    fakes.alipay.pay(order.biz)
    notify_alipay(fakes, order)

    order = now(order)
    assert order.status == OrderStatus.PAID and order.paid_at == paid.paid_at
    assert order.payment.payment_id == session_id
    assert payments(order) == [("alipay", "succeeded"), ("stripe", "succeeded")]
    (flag,) = Flag.objects.all()
    assert flag.order == order and flag.kind == Flag.Kind.PAID_TWICE


def test_a_report_other_than_success_of_a_payment_switched_from_changes_nothing(client, fakes):
    """The Alipay code switched from times out (TRADE_CLOSED notice): the order goes on waiting
    for the Stripe session."""
    order = buy(client)
    press(client, order, "alipay")
    press(client, order, "stripe")
    before = now(order)
    fakes.alipay.scan(order.biz).status = "TRADE_CLOSED"

    notify_alipay(fakes, order)

    order = now(order)
    assert order.status == OrderStatus.PENDING and order.payment == before.payment
    assert order.version == before.version


@pytest.mark.parametrize("provider", ["wechatpay", "alipay"])
def test_a_provider_whose_trade_was_closed_is_not_asked_again_for_the_order(
    client, fakes, provider
):
    """WeChat Pay and Alipay keep the order's biz as the trade's number for good: once closed
    (ORDERCLOSED, ACQ.TRADE_HAS_CLOSE) it cannot start again. The shopper is told to choose
    another way, and nothing is sent or recorded."""
    order = buy(client)
    press(client, order, provider)
    if provider == "alipay":
        fakes.alipay.scan(order.biz)  # a trade Alipay knows, so the switch really closes it
    press(client, order, "stripe")
    creates = fakes.creates(provider)
    html = press(client, order, provider, status=409)
    assert "can no longer be paid with" in html and 'data-status="pending"' in html
    assert fakes.creates(provider) == creates
    order = now(order)
    assert order.provider == "stripe" and order.payment.gateway == "stripe"
    assert payments(order) == [(provider, "closed"), ("stripe", "pending")]
