"""The real providers' notification routes (contract sections 4 and 6), through the shop's URLs:
`POST /payments/notify/<provider>/` for Alipay, WeChat Pay and Stripe, each notice signed by the
provider's local fake with keys written to files for the test, answered in the provider's own
words, every request stored, and nothing changed unless the notice is genuine."""

import base64
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from asgiref.sync import sync_to_async
from hypothesis import given, strategies as st
from prometheus_client.parser import text_string_to_metric_families

from checkout.models import Flag, Notification, Order, OrderStatus, Payment, PaymentStatus
from checkout.notify import notify_url
from checkout.services.notifications import MAX_BODY_BYTES, REFUSED_BODY_BYTES
from tests import asgi
from tests.checkout import factories as f
from tests.checkout.fuzz import (
    DELETE,
    FuzzTestCase,
    Sent,
    content_types,
    examples,
    header_text,
    json_values,
    money,
    other_headers,
    remote_addrs,
    replaced,
)
from tests.checkout.providers import (
    ASYNC_FAILED,
    ASYNC_SUCCEEDED,
    COMPLETED,
    EXPIRED,
    FORGERIES,
    MALFORMED,
    NAMES,
    AlipayProvider,
    Notice,
    Provider,
    StripeProvider,
    WechatPayProvider,
    apost,
    enable,
    ghost,
    key,
    post,
)
from tests.fakes import private_pem

# Fixtures: one provider enabled (beside the sandbox), its settings from keys in tmp files.


@pytest.fixture(params=NAMES)
def provider(request, settings, tmp_path) -> Provider:
    """Each provider in turn, or the one a test names (`indirect`)."""
    return enable(settings, tmp_path, request.param)[request.param]


@pytest.fixture
def alipay(settings, tmp_path) -> AlipayProvider:
    return enable(settings, tmp_path, "alipay")["alipay"]


@pytest.fixture
def wechatpay(settings, tmp_path) -> WechatPayProvider:
    return enable(settings, tmp_path, "wechatpay")["wechatpay"]


@pytest.fixture
def stripe(settings, tmp_path) -> StripeProvider:
    return enable(settings, tmp_path, "stripe")["stripe"]


# Reading what a notification changed (`money`, everything it may change: tests.checkout.fuzz).


def fresh(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


def flags(order: Order) -> list[str]:
    return sorted(Flag.objects.filter(order=order).values_list("kind", flat=True))


def records() -> list[Notification]:
    return list(Notification.objects.order_by("pk"))


def pending(provider: Provider) -> Order:
    """An order whose shopper pressed Pay for `provider`: pending, with its payment recorded."""
    order = f.order()
    provider.start(order)
    return fresh(order)


def assert_refused_and_kept(provider: Provider, notice: Notice, verdict: str) -> Notification:
    """`notice`, posted, is refused in the provider's words and changes nothing; it is the one
    request stored, with `verdict`, keeping its first KiB, its length and its hash (of what was
    read). The stored notification."""
    before = money()
    provider.assert_refused(post(provider, notice))
    assert money() == before
    (record,) = records()
    assert (record.gateway, record.verdict) == (provider.name, verdict)
    read = notice.body[: MAX_BODY_BYTES + 1]
    assert bytes(record.body) == read[:REFUSED_BODY_BYTES]
    assert record.body_length == len(read)
    assert record.body_sha256 == hashlib.sha256(read).hexdigest()
    assert (record.event_id, record.biz, record.payment_id, record.outcome) == ("", "", "", "")
    return record


def cases(table: dict[str, list[str]]) -> list:
    """Each provider's cases in `table` (FORGERIES, MALFORMED), as (provider, case) parameters
    for the `provider` fixture (`indirect`)."""
    return [
        pytest.param(name, case, id=f"{name}: {case}") for name in NAMES for case in table[name]
    ]


# The routes.


def test_each_provider_has_the_contracts_route(settings):
    settings.SITE_URL = "https://shop.example"
    for name in NAMES:
        assert notify_url(name) == f"https://shop.example/payments/notify/{name}/"


@pytest.mark.django_db
def test_a_provider_that_is_not_enabled_is_404_and_stores_nothing(settings, provider):
    """Configured, but not listed in PAYMENT_PROVIDERS: its route does not exist."""
    order = pending(provider)
    notice = provider.success(order)
    settings.PAYMENT_PROVIDERS = ["sandbox"]
    before = money()
    assert post(provider, notice).status_code == 404
    assert money() == before
    assert Notification.objects.count() == 0
    # Any other name, listed or not, is no route either.
    settings.PAYMENT_PROVIDERS = ["sandbox", provider.name]
    assert asgi.post("/payments/notify/paypal/", b"{}").status_code == 404
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_each_enabled_provider_answers_on_its_own_route(settings, tmp_path):
    """With all three listed, each route verifies with its own provider's keys: a notice genuine
    for one is refused on the others' routes."""
    providers = enable(settings, tmp_path, *NAMES)
    for name, provider in providers.items():
        order = pending(provider)
        notice = provider.success(order)
        for other in providers.values():
            if other is not provider:
                other.assert_refused(post(other, notice))
        assert fresh(order).status == OrderStatus.PENDING
        provider.assert_accepted(post(provider, notice))
        assert fresh(order).status == OrderStatus.PAID, name
    # A form on a JSON route has no signature headers; JSON on Alipay's is no form.
    refused_as = {"alipay": "malformed", "wechatpay": "bad_signature", "stripe": "bad_signature"}
    expected = Counter({(name, "accepted"): 1 for name in NAMES})
    expected.update({(name, refused_as[name]): 2 for name in NAMES})
    assert Counter(Notification.objects.values_list("gateway", "verdict")) == expected


# Success, duplicates, results for orders that are not waiting.


@pytest.mark.django_db
def test_a_genuine_success_pays_the_pending_order_and_is_stored_accepted(provider):
    order = pending(provider)
    payment_id = provider.payment_id(order)
    notice = provider.success(order)

    response = post(provider, notice)

    provider.assert_accepted(response)
    paid = fresh(order)
    assert paid.status == OrderStatus.PAID and paid.paid_at is not None
    assert paid.version == order.version + 1
    assert (paid.provider, paid.payment.payment_id) == (provider.name, payment_id)
    assert Payment.objects.get(order=order).status == PaymentStatus.SUCCEEDED
    assert flags(order) == []
    (record,) = records()
    assert (record.gateway, record.verdict, record.outcome) == (provider.name, "accepted", "paid")
    assert (record.biz, record.payment_id) == (order.biz, payment_id)
    assert record.event_id and record.processed_at is not None
    assert bytes(record.body) == notice.body  # a genuine one is kept whole
    assert record.body_length == len(notice.body)
    assert record.body_sha256 == hashlib.sha256(notice.body).hexdigest()


@pytest.mark.django_db
def test_the_same_notice_twice_changes_the_order_once(provider):
    order = pending(provider)
    notice = provider.success(order)

    first, second = post(provider, notice), post(provider, notice)

    provider.assert_accepted(first)
    provider.assert_accepted(second)  # a duplicate is normal: acknowledged, or it comes again
    paid = fresh(order)
    assert paid.status == OrderStatus.PAID and paid.version == order.version + 1
    assert flags(order) == []
    assert [(r.gateway, r.verdict, r.outcome) for r in records()] == [
        (provider.name, "accepted", "paid"),
        (provider.name, "accepted", "unchanged"),
    ]
    assert Payment.objects.filter(order=order).count() == 1


@pytest.mark.django_db
def test_a_success_before_pays_answer_pays_and_records_the_payment(provider):
    """The notice can come before Pay's answer is recorded: the payment is made known by it."""
    order = f.order(status=OrderStatus.PENDING)
    provider.open(order)
    provider.assert_accepted(post(provider, provider.success(order)))
    paid = fresh(order)
    assert paid.status == OrderStatus.PAID
    assert (paid.provider, paid.payment.payment_id) == (provider.name, provider.payment_id(order))
    assert paid.payment.gateway == provider.name
    assert flags(order) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "flag"),
    [
        (OrderStatus.EXPIRED, Flag.Kind.PAID_AFTER_EXPIRY),
        (OrderStatus.FAILED, Flag.Kind.PAID_AFTER_FAILURE),
    ],
)
def test_a_success_for_an_order_no_longer_waiting_pays_it_and_is_flagged(provider, status, flag):
    """The shopper's money was taken: the order is paid, and a person looks at it."""
    order = pending(provider)
    Order.objects.filter(pk=order.pk).update(status=status)
    provider.assert_accepted(post(provider, provider.success(order)))
    assert fresh(order).status == OrderStatus.PAID
    assert flags(order) == [flag]
    (record,) = records()
    assert (record.gateway, record.verdict, record.outcome) == (provider.name, "accepted", "paid")


# Reordering: a late or repeated notice never unpays.


@pytest.mark.django_db
@pytest.mark.parametrize("late", ["WAIT_BUYER_PAY", "TRADE_FINISHED"])
def test_alipay_a_late_notice_after_success_changes_nothing(alipay, late):
    """An older WAIT_BUYER_PAY delivered late, or TRADE_FINISHED (no refund possible any more: the
    same "paid" again) after TRADE_SUCCESS: acknowledged, no change, no flag."""
    order = pending(alipay)
    alipay.assert_accepted(post(alipay, alipay.notice(order, "TRADE_SUCCESS")))
    paid = fresh(order)
    alipay.assert_accepted(post(alipay, alipay.notice(order, late)))
    assert fresh(order).status == OrderStatus.PAID
    assert fresh(order).version == paid.version
    assert Payment.objects.get(order=order).status == PaymentStatus.SUCCEEDED
    assert flags(order) == []
    assert [(r.gateway, r.verdict, r.outcome) for r in records()] == [
        ("alipay", "accepted", "paid"),
        ("alipay", "accepted", "unchanged"),
    ]


@pytest.mark.django_db
def test_alipay_trade_finished_pays_a_pending_order(alipay):
    order = pending(alipay)
    alipay.assert_accepted(post(alipay, alipay.notice(order, "TRADE_FINISHED")))
    assert fresh(order).status == OrderStatus.PAID
    assert flags(order) == []


@pytest.mark.django_db
def test_alipay_trade_closed_on_a_paid_trade_is_a_refund_flagged_never_an_unpaying(alipay):
    order = pending(alipay)
    alipay.assert_accepted(post(alipay, alipay.notice(order, "TRADE_SUCCESS")))
    paid = fresh(order)
    closed = alipay.notice(order, "TRADE_CLOSED")

    alipay.assert_accepted(post(alipay, closed))
    alipay.assert_accepted(post(alipay, closed))  # delivered again: flagged once

    after = fresh(order)
    assert after.status == OrderStatus.PAID
    assert (after.version, after.paid_at) == (paid.version, paid.paid_at)
    assert flags(order) == [Flag.Kind.REFUNDED]
    assert Payment.objects.get(order=order).status == PaymentStatus.SUCCEEDED
    assert [(r.verdict, r.outcome) for r in records()] == [
        ("accepted", "paid"),
        ("accepted", "unchanged"),
        ("accepted", "unchanged"),
    ]


@pytest.mark.django_db
def test_alipay_trade_closed_on_an_unpaid_trade_ends_the_order(alipay):
    order = pending(alipay)
    alipay.assert_accepted(post(alipay, alipay.notice(order, "TRADE_CLOSED")))
    assert fresh(order).status == OrderStatus.EXPIRED
    assert flags(order) == []
    assert Payment.objects.get(order=order).status == PaymentStatus.CLOSED
    # A success after all (the code was paid as it closed): paid, and flagged.
    alipay.assert_accepted(post(alipay, alipay.notice(order, "TRADE_SUCCESS")))
    assert fresh(order).status == OrderStatus.PAID
    assert flags(order) == [Flag.Kind.PAID_AFTER_EXPIRY]


@pytest.mark.django_db
def test_stripe_expired_after_completed_never_unpays(stripe):
    order = pending(stripe)
    stripe.assert_accepted(post(stripe, stripe.notice(order, COMPLETED)))
    paid = fresh(order)
    stripe.assert_accepted(post(stripe, stripe.notice(order, EXPIRED)))
    after = fresh(order)
    assert after.status == OrderStatus.PAID
    assert (after.version, after.paid_at) == (paid.version, paid.paid_at)
    assert Payment.objects.get(order=order).status == PaymentStatus.SUCCEEDED
    # A paid payment reported closed is flagged for a person (the shop's one rule for every
    # provider, named after Alipay's refund): a paid Checkout Session never expires at Stripe, so
    # such an event is either a replay or Stripe's mistake, and the order itself is not touched.
    assert flags(order) == [Flag.Kind.REFUNDED]
    assert [(r.gateway, r.verdict, r.outcome) for r in records()] == [
        ("stripe", "accepted", "paid"),
        ("stripe", "accepted", "unchanged"),
    ]


@pytest.mark.django_db
def test_stripe_completed_unpaid_waits_then_async_payment_succeeded_pays(stripe):
    """A delayed payment method: the session completes unpaid, and the money comes later."""
    order = pending(stripe)
    stripe.assert_accepted(post(stripe, stripe.notice(order, COMPLETED, paid=False)))
    waiting = fresh(order)
    assert waiting.status == OrderStatus.PENDING and waiting.version == order.version
    assert Payment.objects.get(order=order).status == PaymentStatus.PENDING

    stripe.assert_accepted(post(stripe, stripe.notice(order, ASYNC_SUCCEEDED)))

    assert fresh(order).status == OrderStatus.PAID
    assert Payment.objects.get(order=order).status == PaymentStatus.SUCCEEDED
    assert flags(order) == []
    assert [(r.gateway, r.verdict, r.outcome) for r in records()] == [
        ("stripe", "accepted", "unchanged"),
        ("stripe", "accepted", "paid"),
    ]


@pytest.mark.django_db
def test_stripe_completed_unpaid_then_async_payment_failed_fails_the_order(stripe):
    order = pending(stripe)
    stripe.assert_accepted(post(stripe, stripe.notice(order, COMPLETED, paid=False)))
    stripe.assert_accepted(post(stripe, stripe.notice(order, ASYNC_FAILED)))
    assert fresh(order).status == OrderStatus.FAILED
    assert Payment.objects.get(order=order).status == PaymentStatus.FAILED
    assert flags(order) == []
    assert [r.outcome for r in records()] == ["unchanged", "failed"]


@pytest.mark.django_db
def test_stripe_a_late_completed_unpaid_after_async_success_changes_nothing(stripe):
    """Stripe does not promise its events in order: the earlier event arriving last."""
    order = pending(stripe)
    early = stripe.notice(order, COMPLETED, paid=False)
    stripe.assert_accepted(post(stripe, stripe.notice(order, ASYNC_SUCCEEDED)))
    paid = fresh(order)
    stripe.assert_accepted(post(stripe, early))
    assert fresh(order).status == OrderStatus.PAID
    assert fresh(order).version == paid.version
    assert Payment.objects.get(order=order).status == PaymentStatus.SUCCEEDED
    assert flags(order) == []


@pytest.mark.django_db
def test_stripe_expired_ends_a_pending_order(stripe):
    order = pending(stripe)
    stripe.assert_accepted(post(stripe, stripe.notice(order, EXPIRED)))
    assert fresh(order).status == OrderStatus.EXPIRED
    assert Payment.objects.get(order=order).status == PaymentStatus.CLOSED
    assert flags(order) == []


@pytest.mark.django_db
def test_wechatpay_a_redelivery_signed_anew_is_a_duplicate(wechatpay):
    """WeChat Pay signs each attempt with the time it is sent: the same event, new headers."""
    order = pending(wechatpay)
    notice = wechatpay.success(order)
    again = wechatpay.signed(notice.body)
    assert again.headers["Wechatpay-Nonce"] != notice.headers["Wechatpay-Nonce"]
    wechatpay.assert_accepted(post(wechatpay, notice))
    wechatpay.assert_accepted(post(wechatpay, again))
    assert fresh(order).status == OrderStatus.PAID
    assert fresh(order).version == order.version + 1
    assert [r.outcome for r in records()] == ["paid", "unchanged"]
    assert flags(order) == []


# Forgeries: refused in the provider's words, stored, nothing changed.


@pytest.mark.django_db
@pytest.mark.parametrize(("provider", "forgery"), cases(FORGERIES), indirect=["provider"])
def test_a_forged_notice_is_refused_stored_and_changes_nothing(provider, forgery):
    notice, verdict = provider.forgery(pending(provider), forgery)

    record = assert_refused_and_kept(provider, notice, verdict)

    assert record.processed_at is not None and record.detail


@pytest.mark.django_db
@pytest.mark.parametrize("skew", [-290, 290])
def test_a_notice_signed_within_300_seconds_either_way_is_accepted(provider, skew):
    """The other side of the forgeries' old and future timestamps."""
    order = pending(provider)
    at = datetime.now(UTC) + timedelta(seconds=skew)
    match provider:
        case AlipayProvider():
            notice = provider.form(provider.fields(order, notify_time=at))
        case WechatPayProvider():
            notice = provider.signed(provider.success(order).body, timestamp=int(at.timestamp()))
        case StripeProvider():
            notice = provider.signed(provider.success(order).body, timestamp=int(at.timestamp()))
    provider.assert_accepted(post(provider, notice))
    assert fresh(order).status == OrderStatus.PAID


@pytest.mark.django_db
def test_a_stripe_test_mode_event_to_a_live_mode_shop_is_refused(stripe, settings):
    """A live secret key takes live events only: a test-mode payment is no money."""
    settings.STRIPE_SECRET_KEY = "sk_live_" + "a" * 99
    order = pending(stripe)
    before = money()
    response = post(stripe, stripe.success(order))
    stripe.assert_refused(response)
    assert money() == before
    assert [(r.gateway, r.verdict) for r in records()] == [("stripe", "malformed")]


@pytest.mark.django_db
def test_a_refused_body_keeps_its_first_kib_its_length_and_its_hash(provider):
    """Anyone can send refused requests, as many as they like: each keeps 1 KiB of its body."""
    notice = provider.padded(pending(provider), 8 * 1024, genuine=False)
    assert len(notice.body) == 8 * 1024
    assert_refused_and_kept(provider, notice, "bad_signature")


@pytest.mark.django_db
def test_a_genuine_padded_notice_is_kept_whole(provider):
    order = pending(provider)
    notice = provider.padded(order, 8 * 1024)
    provider.assert_accepted(post(provider, notice))
    assert fresh(order).status == OrderStatus.PAID
    (record,) = records()
    assert bytes(record.body) == notice.body and record.body_length == 8 * 1024


# Amounts, unknown orders.


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("provider", "change"),
    [
        ("alipay", "amount"),
        ("wechatpay", "amount"),
        ("wechatpay", "currency"),
        ("stripe", "amount"),
        ("stripe", "currency"),
    ],
    indirect=["provider"],
)
def test_a_success_for_another_amount_never_pays_and_is_flagged(provider, change):
    """Genuine, so acknowledged (a retry cannot change it), and kept for a person."""
    order = pending(provider)
    provider.assert_accepted(post(provider, provider.wrong_amount(order, change)))
    after = fresh(order)
    assert after.status == OrderStatus.PENDING and after.version == order.version
    assert flags(order) == [Flag.Kind.AMOUNT_MISMATCH]
    (record,) = records()
    assert (record.gateway, record.verdict, record.outcome) == (
        provider.name,
        "accepted",
        Flag.Kind.AMOUNT_MISMATCH,
    )
    # The genuine success for the right amount still pays it.
    provider.assert_accepted(post(provider, provider.success(order)))
    assert fresh(order).status == OrderStatus.PAID


@pytest.mark.django_db
def test_a_notice_about_an_order_the_shop_does_not_have_is_recorded_and_acknowledged(provider):
    """Well signed, about no order of ours: a retry cannot make it known, so success."""
    unrelated = pending(provider)
    nobody = ghost()
    notice = provider.success(nobody)
    before = money()

    provider.assert_accepted(post(provider, notice))

    assert money() == before
    assert not Order.objects.filter(biz=nobody.biz).exists()
    assert fresh(unrelated).status == OrderStatus.PENDING
    (record,) = records()
    assert (record.gateway, record.verdict, record.outcome) == (
        provider.name,
        "unknown_order",
        "unknown_order",
    )
    assert record.biz == nobody.biz
    assert bytes(record.body) == notice.body


# Malformed and oversized bodies.


@pytest.mark.django_db
@pytest.mark.parametrize(("provider", "case"), cases(MALFORMED), indirect=["provider"])
def test_a_malformed_body_is_refused_stored_and_changes_nothing(provider, case):
    notice, verdict = provider.malformed(pending(provider), case)
    assert_refused_and_kept(provider, notice, verdict)


@pytest.mark.django_db
@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 4 * MAX_BODY_BYTES])
def test_a_body_over_64_kib_is_refused_stored_and_changes_nothing(provider, size):
    """Even genuinely signed: the shop reads 64 KiB and one byte, and stops."""
    notice = provider.padded(pending(provider), size)
    assert len(notice.body) == size
    record = assert_refused_and_kept(provider, notice, "too_large")
    assert record.body_length == MAX_BODY_BYTES + 1


@pytest.mark.django_db
def test_a_genuine_notice_of_exactly_64_kib_is_accepted_where_the_provider_allows_it(provider):
    """64 KiB is the shop's limit; Alipay's notices are never over 16 KiB, so its adapter stops
    there (malformed), the others take the whole 64 KiB."""
    order = pending(provider)
    notice = provider.padded(order, MAX_BODY_BYTES)
    response = post(provider, notice)
    (record,) = records()
    if isinstance(provider, AlipayProvider):
        provider.assert_refused(response)
        assert record.verdict == "malformed"
        assert fresh(order).status == OrderStatus.PENDING
    else:
        provider.assert_accepted(response)
        assert record.verdict == "accepted" and bytes(record.body) == notice.body
        assert fresh(order).status == OrderStatus.PAID


# Metrics.


def notifications_counted(client, **labels: str) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.content.decode()):
        if family.name == "checkout_notifications":
            for sample in family.samples:
                if sample.name == "checkout_notifications_total" and sample.labels == labels:
                    return sample.value
    return 0.0


@pytest.mark.django_db
def test_metrics_count_notifications_per_provider_verdict_and_outcome(client, provider):
    order = pending(provider)
    paid = {"provider": provider.name, "verdict": "accepted", "outcome": "paid"}
    forged = {"provider": provider.name, "verdict": "bad_signature", "outcome": "none"}
    before = notifications_counted(client, **paid), notifications_counted(client, **forged)

    forgery, _ = provider.forgery(order, FORGERIES[provider.name][0])  # refused: bad_signature
    provider.assert_refused(post(provider, forgery))
    provider.assert_accepted(post(provider, provider.success(order)))

    after = notifications_counted(client, **paid), notifications_counted(client, **forged)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


# From a running event loop, as daphne calls the endpoint, committed for real.


@pytest.mark.django_db(transaction=True)
async def test_a_genuine_success_is_applied_from_an_async_caller(provider):
    order = await sync_to_async(pending)(provider)
    notice = await sync_to_async(provider.success)(order)
    response = await apost(provider, notice)
    provider.assert_accepted(response)
    assert not response.cookies
    assert (await Order.objects.aget(pk=order.pk)).status == OrderStatus.PAID
    record = await Notification.objects.aget()
    assert (record.gateway, record.verdict, record.outcome) == (provider.name, "accepted", "paid")


# Across providers.


@pytest.mark.django_db
def test_a_success_from_a_provider_switched_from_after_the_order_was_paid_is_flagged_paid_twice(
    settings, tmp_path
):
    """The shopper scanned Alipay's code, then paid with WeChat Pay, then paid Alipay's code too:
    the order is paid once, and flagged so that a person refunds one of the payments."""
    providers = enable(settings, tmp_path, "alipay", "wechatpay")
    alipay, wechatpay = providers["alipay"], providers["wechatpay"]
    order = pending(alipay)
    wechatpay.open(order)

    wechatpay.assert_accepted(post(wechatpay, wechatpay.success(order)))
    paid = fresh(order)
    assert paid.status == OrderStatus.PAID and flags(order) == []
    alipay.assert_accepted(post(alipay, alipay.success(order)))

    after = fresh(order)
    assert after.status == OrderStatus.PAID
    assert (after.version, after.paid_at) == (paid.version, paid.paid_at)
    assert flags(order) == [Flag.Kind.PAID_TWICE]
    assert dict(Payment.objects.filter(order=order).values_list("gateway", "status")) == {
        "alipay": PaymentStatus.SUCCEEDED,
        "wechatpay": PaymentStatus.SUCCEEDED,
    }
    assert [(r.gateway, r.outcome) for r in records()] == [
        ("wechatpay", "paid"),
        ("alipay", "unchanged"),
    ]


@pytest.mark.django_db
def test_a_stripe_session_of_another_order_never_pays_this_one(stripe):
    """Well signed, but the session is another order's: flagged, neither order paid."""
    order, other = pending(stripe), pending(stripe)
    body = json.loads(stripe.event(other))
    body["data"]["object"]["client_reference_id"] = order.biz
    stripe.assert_accepted(post(stripe, stripe.signed(json.dumps(body).encode())))
    assert fresh(order).status == fresh(other).status == OrderStatus.PENDING
    assert flags(order) == [Flag.Kind.FOREIGN_PAYMENT] and flags(other) == []
    (record,) = records()
    assert (record.verdict, record.outcome) == ("accepted", Flag.Kind.FOREIGN_PAYMENT)


@pytest.mark.django_db(transaction=True)
def test_a_genuine_stripe_event_with_a_long_id_is_stored_and_applied(stripe, postgres):
    """PostgreSQL enforces the column's length (SQLite would store the id whole)."""
    order = pending(stripe)
    body = json.loads(stripe.event(order))
    body["id"] = "evt_" + "A" * 96  # within the adapter's EVENT_ID pattern (up to 255)
    notice = stripe.signed(json.dumps(body).encode())

    response = post(stripe, notice)

    assert response.status_code == 200, response.status_code
    assert fresh(order).status == OrderStatus.PAID
    (record,) = records()
    assert (record.verdict, record.event_id) == ("accepted", body["id"])


# Fuzz: whatever anyone sends to a provider's route.

ALIPAY_MAX_BYTES = 16 * 1024  # the Alipay adapter's own limit: a genuine notice is under 4 KiB
SIZES = [
    REFUSED_BODY_BYTES - 1,
    REFUSED_BODY_BYTES + 1,
    ALIPAY_MAX_BYTES + 1,
    60 * 1024,
    MAX_BODY_BYTES,
    MAX_BODY_BYTES + 1,
    MAX_BODY_BYTES + 4096,
]


@st.composite
def mutations(draw, body: bytes) -> bytes:
    """`body` with a few bytes flipped, inserted or deleted, or cut short (maybe back as it was)."""
    data = bytearray(body)
    for kind, at, value in draw(
        st.lists(
            st.tuples(
                st.sampled_from(["flip", "insert", "delete", "cut"]),
                st.integers(0, 2**20),
                st.integers(1, 255),
            ),
            min_size=1,
            max_size=3,
        )
    ):
        at %= max(len(data), 1)
        if kind == "flip" and data:
            data[at] ^= value
        elif kind == "insert":
            data.insert(at, value)
        elif kind == "delete" and data:
            del data[at]
        elif kind == "cut":
            del data[at:]
    return bytes(data)


@st.composite
def garbage(draw) -> bytes:
    """Bodies that are nobody's notice: random bytes, any size around the limits, deep nesting."""
    kind = draw(st.sampled_from(["bytes", "size", "nested"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2048))
    if kind == "size":
        pattern = draw(st.binary(min_size=1, max_size=8))
        size = draw(st.sampled_from(SIZES))
        return (pattern * (size // len(pattern) + 1))[:size]
    depth = draw(st.integers(1, 40_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    return opener * depth + b"1" + closer * depth


def alipay_says(body: bytes) -> tuple[dict[str, str], bytes]:
    """What an Alipay notice says: its fields but `sign`, and its signature's bytes.

    This is the fuzz's oracle, so it reads the form by the notice format's own rules (UTF-8
    `name=value` pairs, each name once, empty values kept, the signature strict base64) and
    borrows nothing from the adapter it checks. python-alipay-sdk cannot stand in: it reads no
    form, and its base64 skips stray characters the adapter rightly refuses."""
    pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise ValueError("a field is repeated")
    return fields, base64.b64decode(fields.pop("sign"), validate=True)


def alipay_same(body: bytes, original: bytes) -> bool:
    """Whether `body` says exactly what `original` does, as Alipay signed it (a changed `%3A`
    that is `%3a` now, or a signature's unused base64 bits, change nothing)."""
    if len(body) > ALIPAY_MAX_BYTES:
        return False
    try:
        return alipay_says(body) == alipay_says(original)
    except (ValueError, KeyError):
        return False


@st.composite
def alipay_requests(draw, alipay: AlipayProvider, order: Order) -> Sent:
    kind = draw(
        st.sampled_from(
            ["notice", "reshaped", "wrong key", "stale", "mutated", "padded", "not a form", "junk"]
        )
    )
    signed = genuine = pays = False
    if kind == "notice":
        status = draw(
            st.sampled_from(["TRADE_SUCCESS", "TRADE_FINISHED", "WAIT_BUYER_PAY", "TRADE_CLOSED"])
        )
        body = alipay.notice(order, status).body
        signed = genuine = True
        pays = status in ("TRADE_SUCCESS", "TRADE_FINISHED")
    elif kind == "reshaped":  # signed by Alipay, but with a field changed, removed or added
        fields = alipay.fields(order)
        name = draw(st.sampled_from([*sorted(fields), "sign_type", "extra"]))
        value = draw(st.one_of(st.text(max_size=30), st.just(DELETE)))
        if value is DELETE:
            fields.pop(name, None)
        else:
            fields[name] = value
        body = urlencode(alipay.fake.sign_notice(fields)).encode()
        signed = True
    elif kind == "wrong key":
        body = alipay.form(alipay.fields(order), key=private_pem(key("stranger"))).body
    elif kind == "stale":
        skew = draw(st.sampled_from([-1, 1])) * draw(st.integers(310, 10**8))
        at = datetime.now(UTC) + timedelta(seconds=skew)
        body = alipay.form(alipay.fields(order, notify_time=at)).body
    elif kind == "mutated":
        original = alipay.notice(order).body
        body = draw(mutations(original))
        signed = genuine = pays = alipay_same(body, original)
    elif kind == "padded":
        size = draw(st.sampled_from([ALIPAY_MAX_BYTES, ALIPAY_MAX_BYTES + 1, MAX_BODY_BYTES + 1]))
        body = alipay.padded(order, size).body
        signed = genuine = pays = size <= ALIPAY_MAX_BYTES
    elif kind == "not a form":
        body = json.dumps(alipay.fake.sign_notice(alipay.fields(order))).encode()
    else:
        body = draw(garbage())
    return Sent(
        body, draw(content_types), draw(other_headers), signed=signed, genuine=genuine, pays=pays
    )


WECHATPAY_HEADERS = [
    "Wechatpay-Serial",
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Signature",
    "Wechatpay-Signature-Type",
]


@st.composite
def wechatpay_headers(
    draw, wechatpay: WechatPayProvider, body: bytes, original: bytes
) -> tuple[dict[str, str], bool, bool]:
    """Headers, whether they carry WeChat Pay's fresh signature of `body`, and whether exactly as
    WeChat Pay sends them. `original`: the body before any mutation."""
    kind = draw(
        st.sampled_from(
            ["genuine", "original", "wrong key", "stale", "one changed", "none", "junk"]
        )
    )
    if kind == "genuine":
        return wechatpay.signed(body).headers, True, True
    if kind == "original":  # signed before the body was changed
        return wechatpay.signed(original).headers, body == original, body == original
    if kind == "wrong key":
        return wechatpay.signed(body, key=key("stranger")).headers, False, False
    if kind == "stale":
        skew = draw(st.sampled_from([-1, 1])) * draw(st.integers(310, 10**8))
        return wechatpay.signed(body, timestamp=int(time.time()) + skew).headers, False, False
    if kind == "one changed":  # may still verify (an empty Signature-Type is WeChat's default)
        headers = wechatpay.signed(body).headers
        name = draw(st.sampled_from(WECHATPAY_HEADERS))
        value = draw(st.one_of(header_text, st.just(None)))
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
        return headers, True, False
    if kind == "none":
        return {}, False, False
    names = draw(st.lists(st.sampled_from(WECHATPAY_HEADERS), unique=True))
    return {name: draw(header_text) for name in names}, False, False


@st.composite
def wechatpay_requests(draw, wechatpay: WechatPayProvider, order: Order) -> Sent:
    kind = draw(st.sampled_from(["notice", "envelope", "transaction", "mutated", "padded", "junk"]))
    well_formed = False
    envelope = wechatpay.envelope(wechatpay.transaction(order))
    if kind == "notice":
        body = envelope
        well_formed = True
    elif kind == "envelope":  # a field of the envelope changed, removed or added
        path = draw(
            st.sampled_from(
                [
                    ("id",),
                    ("create_time",),
                    ("resource_type",),
                    ("event_type",),
                    ("resource",),
                    ("resource", "algorithm"),
                    ("resource", "ciphertext"),
                    ("resource", "nonce"),
                    ("resource", "associated_data"),
                    ("resource", "original_type"),
                    ("extra",),
                ]
            )
        )
        value = draw(st.one_of(json_values, st.just(DELETE)))
        body = json.dumps(replaced(json.loads(envelope), path, value)).encode()
    elif kind == "transaction":  # the encrypted transaction changed, removed or added to
        transaction = wechatpay.transaction(order)
        path = draw(
            st.sampled_from(
                [(name,) for name in sorted(transaction)]
                + [("amount", "total"), ("amount", "currency"), ("extra",)]
            )
        )
        value = draw(st.one_of(json_values, st.just(DELETE)))
        body = wechatpay.envelope(replaced(transaction, path, value))
    elif kind == "mutated":
        body = draw(mutations(envelope))
    elif kind == "padded":
        size = draw(st.sampled_from([MAX_BODY_BYTES, MAX_BODY_BYTES + 1]))
        body = wechatpay.padded(order, size).body
        well_formed = size <= MAX_BODY_BYTES
    else:
        body = draw(garbage())
    original = envelope if kind == "mutated" else body
    headers, signed, exact = draw(wechatpay_headers(wechatpay, body, original))
    within = len(body) <= MAX_BODY_BYTES
    genuine = (well_formed or body == envelope) and exact
    headers |= draw(other_headers)
    return Sent(
        body,
        draw(content_types),
        headers,
        signed=signed and within,
        genuine=genuine,
        pays=genuine,
    )


stripe_parts = st.one_of(
    st.tuples(st.sampled_from(["t", "v1", "v0", "T", " t"]), header_text).map("=".join),
    st.sampled_from(["", " ", "=", "t", "v1", f"v1={'0' * 64}"]),
    header_text,
)


@st.composite
def stripe_header(
    draw, stripe: StripeProvider, body: bytes, original: bytes
) -> tuple[str | None, bool, bool]:
    """A Stripe-Signature value (None: no header), whether it carries a fresh signature of
    `body` with the webhook secret, and whether exactly as Stripe writes it."""
    kind = draw(
        st.sampled_from(
            ["genuine", "original", "genuine+junk", "other secret", "stale", "none", "junk"]
        )
    )
    header = stripe.fake.signature_header
    if kind == "genuine":
        return header(body), True, True
    if kind == "original":
        return header(original), body == original, body == original
    if kind == "other secret":
        return header(body, secret="whsec_" + "z" * 32), False, False
    if kind == "stale":
        skew = draw(st.sampled_from([-1, 1])) * draw(st.integers(310, 10**8))
        return header(body, timestamp=int(time.time()) + skew), False, False
    if kind == "none":
        return None, False, False
    junk = draw(st.lists(stripe_parts, max_size=6))
    if kind == "genuine+junk":
        junk.insert(draw(st.integers(0, len(junk))), header(body))
    return draw(st.sampled_from([",", ", ", ";"])).join(junk), kind == "genuine+junk", False


@st.composite
def stripe_requests(draw, stripe: StripeProvider, order: Order) -> Sent:
    kind = draw(st.sampled_from(["notice", "event", "reshaped", "mutated", "padded", "junk"]))
    well_formed = pays = False
    completed = stripe.event(order)
    if kind == "notice":
        body = completed
        well_formed = pays = True
    elif kind == "event":  # another of the events the shop takes, about the same session
        event_type, paid = draw(
            st.sampled_from(
                [
                    (COMPLETED, False),
                    (ASYNC_SUCCEEDED, True),
                    (ASYNC_FAILED, False),
                    (EXPIRED, False),
                ]
            )
        )
        body = stripe.event(order, event_type, paid=paid)
        well_formed, pays = True, event_type == ASYNC_SUCCEEDED
    elif kind == "reshaped":
        path = draw(
            st.sampled_from(
                [
                    ("id",),
                    ("object",),
                    ("type",),
                    ("created",),
                    ("livemode",),
                    ("data",),
                    ("data", "object"),
                    *[("data", "object", name) for name in sorted(stripe.open(order))],
                    ("extra",),
                ]
            )
        )
        value = draw(st.one_of(json_values, st.just(DELETE)))
        body = json.dumps(replaced(json.loads(completed), path, value)).encode()
    elif kind == "mutated":
        body = draw(mutations(completed))
    elif kind == "padded":
        size = draw(st.sampled_from([MAX_BODY_BYTES, MAX_BODY_BYTES + 1]))
        body = stripe.padded(order, size).body
        well_formed = pays = size <= MAX_BODY_BYTES
    else:
        body = draw(garbage())
    original = completed if kind == "mutated" else body
    header, signed, exact = draw(stripe_header(stripe, body, original))
    headers = draw(other_headers)
    if header is not None:
        headers["Stripe-Signature"] = header
    genuine = (well_formed or body == completed) and exact
    return Sent(
        body,
        draw(content_types),
        headers,
        signed=signed and len(body) <= MAX_BODY_BYTES,
        genuine=genuine,
        pays=genuine and (pays or body == completed),
    )


REQUESTS = {"alipay": alipay_requests, "wechatpay": wechatpay_requests, "stripe": stripe_requests}


class ProvidersNotifyFuzzTest(FuzzTestCase):
    """On each provider's route, besides what holds on every route (`FuzzTestCase`): every answer
    in the provider's own words, and a genuine notice that pays pays the order."""

    @pytest.fixture(autouse=True)
    def _providers(self, settings, tmp_path):
        self.providers = enable(settings, tmp_path, *NAMES)

    def check(self, data, send: Callable[[str, Sent], httpx.Response]) -> None:
        provider = self.providers[data.draw(st.sampled_from(NAMES), label="provider")]
        order = pending(provider)
        sent = data.draw(REQUESTS[provider.name](provider, order))
        sent.remote_addr = data.draw(remote_addrs)

        response, record = self.send_and_check(sent, lambda: send(provider.route, sent))

        self.assertEqual(record.gateway, provider.name)
        if response.status_code < 300:
            provider.assert_accepted(response)
        else:
            provider.assert_refused(response)
        if sent.pays:
            self.assertEqual(fresh(order).status, OrderStatus.PAID)

    @examples(100)
    @given(st.data())
    def test_any_request_is_answered_stored_and_changes_nothing_unless_genuine(self, data):
        self.check(data, self.post)
