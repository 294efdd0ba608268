"""The notification endpoint, contract section 4: verify, record, apply once, answer honestly."""

import hashlib
import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from checkout.models import Flag, Notification, Order, OrderStatus, Payment
from checkout.notify import headers_of, notify_url
from checkout.push import order_group
from tests import asgi
from tests.checkout import factories as f

URL = f.SANDBOX_ROUTE


def post(body: bytes, headers: dict | None = None):
    return asgi.post(URL, body, content_type="application/json", headers=headers)


def status_of(order: Order) -> str:
    return Order.objects.get(pk=order.pk).status


def test_route_is_the_contract_one(settings):
    settings.SITE_URL = "https://shop.example"
    assert notify_url("sandbox") == "https://shop.example" + URL


@pytest.mark.django_db
def test_signed_success_marks_the_order_paid_and_is_recorded():
    order = f.order(status=OrderStatus.PENDING)
    body = f.notice_body(order)
    response = f.notify(body)
    assert response.status_code == 200
    assert status_of(order) == OrderStatus.PAID
    record = Notification.objects.get()
    assert record.verdict == Notification.Verdict.ACCEPTED
    assert record.outcome == OrderStatus.PAID
    assert bytes(record.body) == body
    assert record.event_id == json.loads(body)["id"]
    assert Payment.objects.get(order=order).status == "succeeded"


@pytest.mark.django_db
def test_duplicate_delivery_changes_nothing_the_second_time():
    order = f.order(status=OrderStatus.PENDING)
    body = f.notice_body(order)
    assert f.notify(body).json()["outcome"] == "paid"
    second = f.notify(body)
    assert second.status_code == 200
    assert second.json()["outcome"] == "unchanged"
    assert Notification.objects.filter(verdict="accepted").count() == 2
    assert status_of(order) == OrderStatus.PAID


@pytest.mark.django_db
def test_failure_after_success_is_acknowledged_and_ignored():
    order = f.order(status=OrderStatus.PENDING)
    pay_id = f.payment_id()
    f.notify(f.notice_body(order, pay_id=pay_id))
    late = f.notify(f.notice_body(order, kind="failed", pay_id=pay_id))
    assert late.status_code == 200
    assert late.json()["outcome"] == "unchanged"
    assert status_of(order) == OrderStatus.PAID
    assert Payment.objects.get(order=order).status == "succeeded"


@pytest.mark.django_db
def test_success_after_close_pays_and_flags_for_a_person():
    order = f.order(status=OrderStatus.PENDING)
    pay_id = f.payment_id()
    f.notify(f.notice_body(order, kind="closed", pay_id=pay_id))
    assert status_of(order) == OrderStatus.EXPIRED
    f.notify(f.notice_body(order, kind="succeeded", pay_id=pay_id))
    assert status_of(order) == OrderStatus.PAID
    assert Flag.objects.filter(order=order, kind=Flag.Kind.PAID_AFTER_EXPIRY).exists()


@pytest.mark.django_db
def test_failure_ends_a_pending_order():
    order = f.order(status=OrderStatus.PENDING)
    assert f.notify(f.notice_body(order, kind="failed")).status_code == 200
    assert status_of(order) == OrderStatus.FAILED


@pytest.mark.django_db
@pytest.mark.parametrize("change", [{"amount": 1}, {"currency": "USD"}])
def test_mismatched_amount_or_currency_never_pays_and_is_flagged(change):
    order = f.order(status=OrderStatus.PENDING)
    response = f.notify(f.notice_body(order, **change))
    assert response.status_code == 200
    assert response.json()["outcome"] == Flag.Kind.AMOUNT_MISMATCH
    assert status_of(order) == OrderStatus.PENDING
    assert Flag.objects.filter(order=order, kind=Flag.Kind.AMOUNT_MISMATCH).count() == 1


@pytest.mark.django_db
def test_success_of_another_payment_of_the_order_pays_and_is_flagged_after_a_failure():
    """Money taken by any payment of the order's (one whose Pay answer was lost, or of a provider
    the shopper switched from) counts: after a failure, paid and flagged for a person."""
    order = f.order(status=OrderStatus.PENDING)
    f.notify(f.notice_body(order, kind="failed"))
    f.notify(f.notice_body(order, kind="succeeded"))  # a different, unknown payment id
    assert status_of(order) == OrderStatus.PAID
    assert Flag.objects.filter(order=order, kind=Flag.Kind.PAID_AFTER_FAILURE).exists()
    assert Payment.objects.filter(order=order).count() == 2


@pytest.mark.django_db
def test_a_second_payment_paid_after_the_order_was_paid_is_flagged_paid_twice():
    order = f.order(status=OrderStatus.PENDING)
    first = f.payment(order)
    f.notify(f.notice_body(order, pay_id=first.payment_id))
    f.notify(f.notice_body(order))  # another payment of the order's, paid too
    assert status_of(order) == OrderStatus.PAID
    assert Flag.objects.filter(order=order, kind=Flag.Kind.PAID_TWICE).count() == 1


@pytest.mark.django_db
def test_a_payment_of_another_order_never_pays_this_one():
    order, other = f.order(status=OrderStatus.PENDING), f.order(status=OrderStatus.PENDING)
    theirs = f.payment(other)
    f.notify(f.notice_body(order, pay_id=theirs.payment_id))
    assert status_of(order) == OrderStatus.PENDING
    assert status_of(other) == OrderStatus.PENDING
    assert Flag.objects.filter(order=order, kind=Flag.Kind.FOREIGN_PAYMENT).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Sandbox-Signature": "t=1,v1=abc"},
        {"Sandbox-Signature": "garbage"},
        {"Sandbox-Signature": f"t={int(time.time())},v1={'0' * 64}"},
        {"Sandbox-Signature": f"t=\N{SUPERSCRIPT TWO},v1={'0' * 64}"},
        {"Sandbox-Signature": f"t={'9' * 5000},v1={'0' * 64}"},
        {"Sandbox-Signature": f"t={int(time.time())},t=1,v1={'0' * 64}"},
    ],
    ids=["missing", "stale-and-wrong", "malformed", "wrong", "non-ascii-digit", "huge-t", "two-t"],
)
def test_bad_signature_is_refused_recorded_and_changes_nothing(headers):
    order = f.order(status=OrderStatus.PENDING)
    response = post(f.notice_body(order), headers)
    assert response.status_code == 400
    assert status_of(order) == OrderStatus.PENDING
    assert Notification.objects.get().verdict == Notification.Verdict.BAD_SIGNATURE


@pytest.mark.django_db
def test_signature_with_another_secret_is_refused():
    order = f.order(status=OrderStatus.PENDING)
    assert f.notify(f.notice_body(order), secret="not-the-secret").status_code == 400
    assert status_of(order) == OrderStatus.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamp_outside_300_seconds_is_refused(skew):
    order = f.order(status=OrderStatus.PENDING)
    response = f.notify(f.notice_body(order), at=int(time.time()) + skew)
    assert response.status_code == 400
    assert status_of(order) == OrderStatus.PENDING


@pytest.mark.django_db
def test_one_matching_v1_among_several_is_enough(settings):
    settings.SANDBOX_NOTIFY_SECRETS_OLD = ["whsec_old"]
    order = f.order(status=OrderStatus.PENDING)
    body = f.notice_body(order)
    now = int(time.time())
    old = f.signed_headers(body, secret="whsec_old", at=now)["Sandbox-Signature"]
    header = f"t={now},v1={'f' * 64},{old.split(',')[1]}"
    assert post(body, {"Sandbox-Signature": header}).status_code == 200
    assert status_of(order) == OrderStatus.PAID


@pytest.mark.django_db
def test_body_over_64_kib_is_refused():
    order = f.order(status=OrderStatus.PENDING)
    body = f.notice_body(order)[:-1] + b', "pad": "' + b"x" * (64 * 1024) + b'"}'
    response = f.notify(body)
    assert response.status_code == 400
    record = Notification.objects.get()
    assert record.verdict == Notification.Verdict.TOO_LARGE
    assert len(record.body) == 1024 and record.body_length == 64 * 1024 + 1  # read up to there
    assert status_of(order) == OrderStatus.PENDING


def _padded_to_60_kib(order: Order) -> bytes:
    body = f.notice_body(order)[:-1] + b', "pad": "'
    return body + b"x" * (60 * 1024 - len(body) - 2) + b'"}'


@pytest.mark.django_db
def test_a_refused_body_keeps_its_first_kib_its_length_and_its_hash():
    """Anyone can send refused requests, as many as they like: each keeps 1 KiB of its body."""
    order = f.order(status=OrderStatus.PENDING)
    body = _padded_to_60_kib(order)
    assert f.notify(body, secret="forged").status_code == 400
    record = Notification.objects.get()
    assert record.verdict == Notification.Verdict.BAD_SIGNATURE
    assert bytes(record.body) == body[:1024]
    assert record.body_length == len(body) == 60 * 1024
    assert record.body_sha256 == hashlib.sha256(body).hexdigest()


@pytest.mark.django_db
def test_an_accepted_body_is_kept_whole_with_its_length_and_hash():
    """A genuine notification keeps all of it, to be verified again and traced."""
    order = f.order(status=OrderStatus.PENDING)
    body = _padded_to_60_kib(order)
    assert f.notify(body).status_code == 200
    record = Notification.objects.get()
    assert record.verdict == Notification.Verdict.ACCEPTED
    assert bytes(record.body) == body
    assert record.body_length == len(body) == 60 * 1024
    assert record.body_sha256 == hashlib.sha256(body).hexdigest()


@pytest.mark.django_db
def test_an_address_or_header_its_column_cannot_hold_is_stored_cut():
    """Behind `--proxy-headers` the address is the first X-Forwarded-For entry, any text at all;
    PostgreSQL's text and jsonb hold no NUL, and the address column 64 characters."""
    address = "203.0.113.7\x00" + "9" * 100
    headers = {"User-Agent": "probe\x00", "Sandbox-Signature": "t=" + "1" * 5000}
    response = asgi.post(
        URL, b"{}", content_type="application/json", headers=headers, client=(address, 50000)
    )
    assert response.status_code == 400
    record = Notification.objects.get()
    assert record.remote_addr == "203.0.113.7\N{REPLACEMENT CHARACTER}" + "9" * 52
    assert record.headers["User-Agent"] == "probe\N{REPLACEMENT CHARACTER}"
    assert record.headers["Sandbox-Signature"] == "t=" + "1" * 1022


def _malformed(order: Order) -> list[bytes]:
    good = json.loads(f.notice_body(order))
    nested = b"[" * 100_000 + b"]" * 100_000  # deeper than json.loads can go
    cases = [b"not json", b"[]", json.dumps({"id": good["id"]}).encode(), nested[:60_000]]
    for path, value in [
        (("type",), "payment.refunded"),
        (("data", "status"), "failed"),  # does not match type
        (("data", "amount"), "1999"),
        (("data", "amount"), True),
        (("data", "amount"), -5),
        (("data", "amount"), 2**31),  # more than an order's or a payment's row can hold
        (("data", "out_trade_no"), "../etc"),
        (("id",), "evt_short"),
        (("created",), "yesterday"),
    ]:
        body = json.loads(json.dumps(good))
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        cases.append(json.dumps(body).encode())
    return cases


@pytest.mark.django_db
def test_malformed_bodies_are_refused_even_when_signed():
    order = f.order(status=OrderStatus.PENDING)
    for body in _malformed(order):
        response = f.notify(body)
        assert response.status_code == 400, body
    assert status_of(order) == OrderStatus.PENDING
    assert set(Notification.objects.values_list("verdict", flat=True)) == {"malformed"}


@pytest.mark.django_db
def test_notification_for_an_unknown_order_is_recorded_and_acknowledged():
    ghost = Order(biz="0" * 32, amount=1999, currency="CNY")
    response = f.notify(f.notice_body(ghost))
    assert response.status_code == 200
    assert Notification.objects.get().verdict == Notification.Verdict.UNKNOWN_ORDER


@pytest.mark.django_db(transaction=True)
async def test_a_change_is_pushed_to_the_orders_group_after_commit():
    from asgiref.sync import sync_to_async

    order = await sync_to_async(f.order)(status=OrderStatus.PENDING)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(order_group(order.biz), channel)
    body = f.notice_body(order)
    response = await f.anotify(body)
    assert response.status_code == 200
    message = await layer.receive(channel)
    # The order's state as committed, and when the result was applied (for the metric).
    assert set(message) == {"type", "applied_at", "order"} and message["type"] == "order.changed"
    paid = await Order.objects.select_related("product").aget(pk=order.pk)
    assert paid.status == OrderStatus.PAID and paid.version == order.version + 1
    assert message["order"] == {
        "biz": order.biz,
        "version": paid.version,
        "status": "paid",
        "amount": order.amount,
        "currency": order.currency,
        "product": paid.product.name,
        "cashier_url": "",  # the payment the notification made known has no cashier link
        "provider": "sandbox",
    }
    # A duplicate changes nothing, so nothing is pushed.
    await asgi.apost(URL, body, content_type="application/json", headers=f.signed_headers(body))
    layer_queue = layer.channels.get(channel)
    assert layer_queue is None or layer_queue.empty()


@pytest.mark.django_db
def test_a_notification_that_cannot_be_applied_answers_500_and_is_kept(monkeypatch):
    from checkout.services import results

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(results, "result_apply", broken)
    order = f.order(status=OrderStatus.PENDING)
    response = f.notify(f.notice_body(order))
    assert response.status_code == 500
    record = Notification.objects.get()
    assert record.outcome == "error" and "database went away" in record.detail
    assert status_of(order) == OrderStatus.PENDING


@pytest.mark.django_db
def test_a_notification_needs_no_cookie_or_csrf_token_and_leaves_no_session():
    """The payment system signs its requests: no CSRF token, no session is made for it."""
    order = f.order(status=OrderStatus.PENDING)
    response = f.notify(f.notice_body(order))
    assert response.status_code == 200 and response.json()["outcome"] == "paid"
    assert not response.cookies
    refused = asgi.request("GET", URL)
    assert refused.status_code == 405 and refused.headers["Allow"] == "POST"
    assert Notification.objects.count() == 1  # the POST's alone


def test_the_endpoint_reads_headers_as_django_does():
    """Any case; Latin-1, as a server reads header bytes; a repeated header's values joined by
    commas, so a second signature header is no way around the first."""
    scope = {
        "headers": [
            (b"sandbox-signature", b"t=1,v1=aa"),
            (b"Sandbox-Signature", b"t=2,v1=bb"),
            (b"user-agent", "caf\N{LATIN SMALL LETTER E WITH ACUTE}".encode()),
        ]
    }
    headers = headers_of(scope)
    assert headers["SANDBOX-SIGNATURE"] == "t=1,v1=aa,t=2,v1=bb"
    assert headers["User-Agent"] == "caf\N{LATIN CAPITAL LETTER A WITH TILDE}\N{COPYRIGHT SIGN}"
    assert "Content-Type" not in headers


@pytest.mark.django_db(transaction=True)
async def test_a_notification_is_applied_from_an_async_caller_and_committed():
    """On the ASGI application from a running event loop, as daphne calls it, committed for real."""
    order = await sync_to_async(f.order)(status=OrderStatus.PENDING)
    body = f.notice_body(order)
    response = await f.anotify(body)
    assert response.status_code == 200 and response.json()["outcome"] == "paid"
    assert not response.cookies
    assert (await Order.objects.aget(pk=order.pk)).status == OrderStatus.PAID
