"""The Stripe adapter against a local fake of Stripe's API, with the `stripe` package's own webhook
verifier as an independent oracle."""

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import stripe
from django.core.exceptions import ImproperlyConfigured
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from checkout.gateways import stripe as stripe_gateway
from checkout.gateways.base import GatewayError, NoticeRejected, PaymentRequest
from checkout.gateways.stripe import StripeConfig, StripeGateway
from checkout.models import PaymentStatus
from tests.fakes.stripe import FakeStripe, new_webhook_secret, sign

BIZ = "0123456789abcdef0123456789abcdef"
OTHER_BIZ = "fedcba9876543210fedcba9876543210"


def pay_request(*, biz: str = BIZ, minutes: int = 15) -> PaymentRequest:
    return PaymentRequest(
        biz=biz,
        amount=1999,
        currency="CNY",
        description="Tea",
        notify_url="https://shop.example/payments/notify/stripe/",
        expire_at=datetime.now(UTC) + timedelta(minutes=minutes),
        return_url=f"https://shop.example/orders/{biz}/",
    )


@pytest.fixture
async def fake():
    fake = FakeStripe()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def gateway(fake: FakeStripe) -> StripeGateway:
    return StripeGateway(StripeConfig(fake.secret_key, fake.webhook_secret, api_url=fake.url))


async def started(gateway: StripeGateway, **kwargs) -> str:
    payment = await gateway.start(pay_request(**kwargs))
    return payment.payment_id


# Configuration


def test_the_module_named_stripe_imports_the_stripe_package():
    assert stripe_gateway.stripe is stripe and stripe.VERSION == "16.1.0"


def test_configuration_names_the_first_missing_setting(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_x"
    settings.STRIPE_WEBHOOK_SECRET = ""
    with pytest.raises(ImproperlyConfigured, match="STRIPE_WEBHOOK_SECRET"):
        StripeConfig.from_settings()
    del settings.STRIPE_SECRET_KEY
    with pytest.raises(ImproperlyConfigured, match="STRIPE_SECRET_KEY"):
        StripeConfig.from_settings()


def test_the_api_address_defaults_to_stripes(settings):
    settings.STRIPE_SECRET_KEY = "sk_live_x"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    config = StripeConfig.from_settings()
    assert config.api_url == "https://api.stripe.com" and config.livemode


# Start


async def test_start_creates_a_payment_mode_session_for_the_order_in_fen(gateway, fake):
    """One line item of the order's amount in fen and currency cny, the order's biz as
    client_reference_id, the session's url as the cashier and its id as the payment id."""
    payment = await gateway.start(pay_request())
    (params,) = fake.created
    assert params["mode"] == "payment" and params["client_reference_id"] == BIZ
    assert params["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "cny",
                "unit_amount": "1999",
                "product_data": {"name": "Tea"},
            },
        }
    ]
    order_page = f"https://shop.example/orders/{BIZ}/"  # the request's return_url
    assert params["success_url"] == params["cancel_url"] == order_page
    assert payment.status == PaymentStatus.PENDING
    assert (payment.biz, payment.amount, payment.currency) == (BIZ, 1999, "CNY")
    assert payment.cashier_url == fake.sessions[payment.payment_id]["url"]
    assert payment.payment_id.startswith("cs_test_") and len(payment.payment_id) == 66


async def test_a_session_outlives_an_order_shorter_than_stripes_30_minutes(gateway, fake):
    """Stripe refuses an expires_at under 30 minutes ahead (the fake too): the session gets the
    order's expiry plus 31 minutes, and the shop expires it with the order."""
    request = pay_request(minutes=15)
    await gateway.start(request)
    expected = int((request.expire_at + timedelta(minutes=31)).timestamp())
    assert int(fake.created[0]["expires_at"]) == expected


@pytest.mark.parametrize("hours", [2, 24])
async def test_a_long_order_gets_a_session_stripe_accepts(gateway, fake, hours):
    """Its expiry plus 31 minutes, and never past Stripe's 24 hours."""
    request = pay_request(minutes=hours * 60)
    await gateway.start(request)
    expected = min(
        request.expire_at + timedelta(minutes=31), datetime.now(UTC) + timedelta(hours=24)
    )
    assert abs(int(fake.created[0]["expires_at"]) - expected.timestamp()) <= 61


async def test_a_repeated_pay_replays_the_first_session(gateway, fake):
    """Same Idempotency-Key (the biz) and the same parameters, even a while later: Stripe replays
    the first answer instead of opening a second session."""
    request = pay_request()
    first = await gateway.start(request)
    again = await gateway.start(request)
    assert again == first and len(fake.sessions) == 1 and fake.replayed == 1


async def test_a_pay_whose_answer_was_lost_is_sent_again_with_its_key(gateway, fake):
    """The connection closes after Stripe created the session: the client sends the create again
    with the same key, and gets the same session."""
    fake.drop_next_answer = True
    payment = await gateway.start(pay_request())
    assert list(fake.sessions) == [payment.payment_id] and fake.replayed == 1


async def test_a_wrong_secret_key_is_a_gateway_error(fake):
    gateway = StripeGateway(StripeConfig("sk_test_wrong", fake.webhook_secret, api_url=fake.url))
    with pytest.raises(GatewayError, match="AuthenticationError"):
        await gateway.start(pay_request())


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda s: s | {"client_reference_id": OTHER_BIZ}, id="another order"),
        pytest.param(lambda s: s | {"amount_total": 1}, id="another amount"),
        pytest.param(lambda s: s | {"currency": "usd"}, id="another currency"),
        pytest.param(lambda s: s | {"amount_total": "1999"}, id="amount as text"),
        pytest.param(lambda s: s | {"amount_total": True}, id="amount as bool"),
        pytest.param(lambda s: s | {"url": None}, id="no url"),
        pytest.param(lambda s: s | {"status": "paid"}, id="unknown status"),
        pytest.param(lambda s: s | {"object": "payment_intent"}, id="another object"),
        pytest.param(lambda s: s | {"id": "cs_test_../../v1/x"}, id="bad id"),
        pytest.param(lambda s: [s], id="a list"),
        pytest.param(lambda s: "ok", id="a string"),
    ],
)
async def test_an_unexpected_answer_to_start_is_a_gateway_error(gateway, fake, tamper):
    fake.tamper = tamper
    with pytest.raises(GatewayError):
        await gateway.start(pay_request())


async def test_the_same_key_with_other_parameters_is_a_gateway_error(gateway, fake):
    """Stripe's idempotency_error: the order's key cannot open a session for another amount."""
    request = pay_request()
    await gateway.start(request)
    with pytest.raises(GatewayError, match="IdempotencyError"):
        await gateway.start(replace(request, amount=2999))


# Query


async def test_query_of_an_open_session_is_pending(gateway, fake):
    session_id = await started(gateway)
    payment = await gateway.query(biz=BIZ, payment_id=session_id)
    assert payment is not None and payment.status == PaymentStatus.PENDING


async def test_query_of_a_paid_session_is_succeeded(gateway, fake):
    session_id = await started(gateway)
    fake.complete(session_id)
    payment = await gateway.query(biz=BIZ, payment_id=session_id)
    assert payment is not None and payment.status == PaymentStatus.SUCCEEDED
    assert (payment.biz, payment.amount, payment.currency) == (BIZ, 1999, "CNY")


async def test_query_of_a_complete_but_unpaid_session_is_still_pending(gateway, fake):
    """A delayed payment method: complete now, paid or failed later."""
    session_id = await started(gateway)
    fake.complete(session_id, payment_status="unpaid")
    payment = await gateway.query(biz=BIZ, payment_id=session_id)
    assert payment is not None and payment.status == PaymentStatus.PENDING


async def test_query_of_an_expired_session_is_closed(gateway, fake):
    session_id = await started(gateway)
    fake.expire(session_id)
    payment = await gateway.query(biz=BIZ, payment_id=session_id)
    assert payment is not None and payment.status == PaymentStatus.CLOSED


async def test_query_of_an_unknown_session_is_none(gateway, fake):
    assert await gateway.query(biz=BIZ, payment_id="cs_test_" + "a" * 58) is None


async def test_query_without_the_session_id_is_none(gateway, fake):
    """Stripe has no look-up by client_reference_id."""
    await started(gateway)
    assert await gateway.query(biz=BIZ) is None


async def test_query_answered_for_another_order_is_a_gateway_error(gateway, fake):
    session_id = await started(gateway)
    with pytest.raises(GatewayError, match="for order"):
        await gateway.query(biz=OTHER_BIZ, payment_id=session_id)


async def test_query_with_a_malformed_id_is_a_gateway_error_without_a_request(gateway, fake):
    with pytest.raises(GatewayError, match="not a Stripe Checkout Session id"):
        await gateway.query(biz=BIZ, payment_id="cs_test_x/../../v1/charges")


# Close


async def test_close_expires_an_open_session(gateway, fake):
    session_id = await started(gateway)
    payment = await gateway.close(payment_id=session_id)
    assert payment.status == PaymentStatus.CLOSED
    assert fake.sessions[session_id]["status"] == "expired"


async def test_close_of_a_session_paid_first_returns_it_paid(gateway, fake):
    session_id = await started(gateway)
    fake.complete(session_id)
    payment = await gateway.close(payment_id=session_id)
    assert payment.status == PaymentStatus.SUCCEEDED


async def test_close_of_an_expired_session_returns_it_closed(gateway, fake):
    session_id = await started(gateway)
    await gateway.close(payment_id=session_id)
    payment = await gateway.close(payment_id=session_id)
    assert payment.status == PaymentStatus.CLOSED


async def test_close_of_an_unknown_session_is_a_gateway_error(gateway, fake):
    with pytest.raises(GatewayError):
        await gateway.close(payment_id="cs_test_" + "b" * 58)


async def test_no_answer_in_time_is_a_gateway_error(gateway, fake, settings):
    """A Stripe that takes the connection and never answers: retries included, the call gives up
    after PAYMENT_GATEWAY_TIMEOUT."""
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    settings.PAYMENT_GATEWAY_TIMEOUT = 0.3
    gateway.config = replace(gateway.config, api_url=f"http://127.0.0.1:{port}")
    started_at = time.monotonic()
    with pytest.raises(GatewayError, match="no answer within"):
        await gateway.query(biz=BIZ, payment_id="cs_test_" + "c" * 58)
    assert time.monotonic() - started_at < 1
    silent.close()


# Notices


@pytest.mark.parametrize(
    ("event_type", "complete_as", "status"),
    [
        ("checkout.session.completed", "paid", PaymentStatus.SUCCEEDED),
        ("checkout.session.completed", "no_payment_required", PaymentStatus.SUCCEEDED),
        ("checkout.session.completed", "unpaid", PaymentStatus.PENDING),
        ("checkout.session.async_payment_succeeded", "paid", PaymentStatus.SUCCEEDED),
        ("checkout.session.async_payment_failed", "unpaid", PaymentStatus.FAILED),
        ("checkout.session.expired", None, PaymentStatus.CLOSED),
    ],
)
async def test_a_genuine_notice_is_accepted(gateway, fake, event_type, complete_as, status):
    session_id = await started(gateway)
    if complete_as is None:
        fake.expire(session_id)
    else:
        fake.complete(session_id, payment_status=complete_as)
    headers, body = fake.notice(session_id, event_type)
    notice = gateway.verify_notice(headers=headers, body=body)
    assert notice.event_id == json.loads(body)["id"]
    payment = notice.payment
    assert (payment.payment_id, payment.biz, payment.status) == (session_id, BIZ, status)
    assert (payment.amount, payment.currency) == (1999, "CNY")
    assert (payment.paid_at is not None) == (status == PaymentStatus.SUCCEEDED)


@pytest.fixture
async def paid(gateway, fake) -> tuple[str, bytes]:
    """A session paid at the fake, and its genuine checkout.session.completed event."""
    session_id = await started(gateway)
    fake.complete(session_id)
    return session_id, fake.event(session_id, "checkout.session.completed")


def refused(gateway: StripeGateway, header: str | None, body: bytes) -> str:
    headers = {} if header is None else {"Stripe-Signature": header}
    with pytest.raises(NoticeRejected) as caught:
        gateway.verify_notice(headers=headers, body=body)
    return caught.value.verdict


def test_forged_notices_are_refused(gateway, fake, paid):
    _, body = paid
    now = int(time.time())
    good = sign(body, fake.webhook_secret, now)
    forgeries = {
        "no header": None,
        "empty header": "",
        "bad signature": f"t={now},v1={'0' * 64}",
        "wrong secret": fake.signature_header(body, secret=new_webhook_secret()),
        "old timestamp": fake.signature_header(body, timestamp=now - 301),
        # 303, not 301: still over 300 s ahead when the check runs a second or two later.
        "future timestamp": fake.signature_header(body, timestamp=now + 303),
        "signed for another time": f"t={now - 1},v1={good}",
        "v0 only": f"t={now},v0={good}",
        "two timestamps": f"t={now},t={now},v1={good}",
        "uppercase hex": f"t={now},v1={good.upper()}",
        "timestamp not digits": f"t=+{now},v1={good}",
    }
    for name, header in forgeries.items():
        assert refused(gateway, header, body) == "bad_signature", name


def test_a_tampered_body_is_refused(gateway, fake, paid):
    _, body = paid
    header = fake.signature_header(body)
    tampered = body.replace(b'"amount_total": 1999', b'"amount_total": 1')
    assert tampered != body
    assert refused(gateway, header, tampered) == "bad_signature"


def test_one_matching_signature_among_several_is_enough(gateway, fake, paid):
    """Stripe signs with the old and the new secret while a secret is rolled."""
    _, body = paid
    now = int(time.time())
    other, ours = sign(body, new_webhook_secret(), now), sign(body, fake.webhook_secret, now)
    header = f"t={now},v1={other},v1={ours}"
    assert gateway.verify_notice(headers={"Stripe-Signature": header}, body=body)


def signed(fake: FakeStripe, event: object) -> tuple[str, bytes]:
    body = json.dumps(event).encode()
    return fake.signature_header(body), body


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda e: e | {"livemode": True}, id="a live event to a test key"),
        pytest.param(lambda e: e | {"type": "payment_intent.succeeded"}, id="unhandled type"),
        pytest.param(lambda e: e | {"object": "charge"}, id="not an event"),
        pytest.param(lambda e: e | {"id": 7}, id="id not text"),
        pytest.param(lambda e: e | {"created": "now"}, id="created not a number"),
        pytest.param(lambda e: e | {"created": 10**30}, id="created out of range"),
        pytest.param(lambda e: e | {"data": []}, id="data not an object"),
        pytest.param(lambda e: e | {"type": "checkout.session.expired"}, id="type vs status"),
        pytest.param(
            lambda e: e | {"type": "checkout.session.async_payment_failed"}, id="failed but paid"
        ),
        pytest.param(lambda e: _session(e, amount_total="1999"), id="amount as text"),
        pytest.param(lambda e: _session(e, amount_total=True), id="amount as bool"),
        pytest.param(lambda e: _session(e, amount_total=0), id="amount zero"),
        pytest.param(lambda e: _session(e, amount_total=2**31), id="amount too large"),
        pytest.param(lambda e: _session(e, client_reference_id=None), id="no biz"),
        pytest.param(lambda e: _session(e, client_reference_id="../x"), id="bad biz"),
        pytest.param(lambda e: _session(e, currency="CNYY"), id="bad currency"),
        pytest.param(lambda e: _session(e, id="pi_123"), id="not a session id"),
        pytest.param(lambda e: _session(e, livemode=True), id="a live session"),
        pytest.param(lambda e: _session(e, mode="subscription"), id="not payment mode"),
        pytest.param(lambda e: _session(e, payment_status="refunded"), id="unknown status"),
    ],
)
def test_a_well_signed_notice_that_is_not_a_checkout_event_is_malformed(
    gateway, fake, paid, change
):
    _, body = paid
    header, changed = signed(fake, change(json.loads(body)))
    assert refused(gateway, header, changed) == "malformed"


def _session(event: dict, **changes: object) -> dict:
    event["data"]["object"].update(changes)
    return event


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe", b"[]", b"null", b"[" * 30_000 + b"]" * 30_000],
    ids=["empty", "not json", "not utf-8", "a list", "null", "nested too deep"],
)
def test_well_signed_malformed_bodies_are_refused(gateway, fake, body):
    assert refused(gateway, fake.signature_header(body), body) == "malformed"


def test_an_oversized_body_is_refused_before_its_signature(gateway, fake, paid):
    _, body = paid
    event = json.loads(body)
    event["data"]["object"]["metadata"] = {"pad": "x" * 70_000}
    header, big = signed(fake, event)
    assert refused(gateway, header, big) == "malformed"


@hypothesis_settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.text(max_size=200), body=st.binary(max_size=300))
def test_any_header_and_body_is_a_refusal_never_an_exception(gateway, header, body):
    with pytest.raises(NoticeRejected):
        gateway.verify_notice(headers={"Stripe-Signature": header}, body=body)


@hypothesis_settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    )
)
def test_any_well_signed_json_is_a_notice_or_a_refusal(gateway, fake, event):
    header, body = signed(fake, event)
    with pytest.raises(NoticeRejected):
        gateway.verify_notice(headers={"Stripe-Signature": header}, body=body)


def test_the_answers_are_stripes(gateway):
    status, body, content_type = gateway.notice_answer(status=200)
    assert (status, json.loads(body), content_type) == (200, {"received": True}, "application/json")
    assert gateway.notice_answer(status=400)[0] == 400


# The stripe package as an independent oracle


def test_the_fakes_notices_verify_under_the_stripe_package(fake, paid):
    session_id, body = paid
    event = stripe.Webhook.construct_event(
        body, fake.signature_header(body), fake.webhook_secret, tolerance=300
    )
    assert event.type == "checkout.session.completed"
    assert event.data.object.id == session_id


def test_the_stripe_packages_signatures_verify_under_the_adapter(gateway, fake, paid):
    session_id, body = paid
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), fake.webhook_secret)
    assert gateway.verify_notice(headers={"Stripe-Signature": header}, body=body)
    assert stripe.WebhookSignature.verify_header(body, header, fake.webhook_secret, tolerance=300)


def test_both_refuse_what_the_other_refuses_except_a_future_timestamp(gateway, fake, paid):
    """The package refuses only old timestamps: a notice signed an hour ahead passes it (why the
    adapter checks both sides itself)."""
    _, body = paid
    now = int(time.time())
    for header in (
        fake.signature_header(body, secret=new_webhook_secret()),
        fake.signature_header(body, timestamp=now - 301),
        f"t={now},v1={'0' * 64}",
    ):
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.WebhookSignature.verify_header(body, header, fake.webhook_secret, tolerance=300)
        assert refused(gateway, header, body) == "bad_signature"
    future = fake.signature_header(body, timestamp=now + 3600)
    assert stripe.WebhookSignature.verify_header(body, future, fake.webhook_secret, tolerance=300)
    assert refused(gateway, future, body) == "bad_signature"
