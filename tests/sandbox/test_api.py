"""The payment API as a merchant's server sees it: auth, create, idempotency, query, close."""

import json
import re
import time
from typing import Any

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from sandbox.models import Notification, NotificationType, Payment, PaymentStatus
from sandbox.parsing import MAX_AMOUNT, InvalidRequest, new_payment, notify_url_allowed
from sandbox.payments import payment_create, payment_decide
from tests.sandbox.conftest import make_payment, payment_body

pytestmark = pytest.mark.django_db

PAY_ID = re.compile(r"pay_[0-9a-f]{24}")


def create(api: Client, key: str = "order-1", **body: Any):
    return api.post(
        "/sandbox/v1/payments",
        payment_body(**body),
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/sandbox/v1/payments"),
        ("post", "/sandbox/v1/payments/sync"),
        ("get", "/sandbox/v1/payments?out_trade_no=x"),
        ("get", "/sandbox/v1/payments/pay_000000000000000000000000"),
        ("post", "/sandbox/v1/payments/pay_000000000000000000000000/close"),
        ("get", "/sandbox/v1/knobs"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "Basic c2s6"])
def test_every_api_route_refuses_a_missing_or_wrong_key_with_401(
    client: Client, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert Payment.objects.count() == 0


def test_create_answers_201_with_a_pending_payment_and_an_absolute_cashier_url(
    api: Client,
) -> None:
    response = create(api)
    assert response.status_code == 201
    data = response.json()
    assert set(data) == {
        "payment_id",
        "status",
        "cashier_url",
        "out_trade_no",
        "amount",
        "currency",
    }
    assert PAY_ID.fullmatch(data["payment_id"])
    assert data["status"] == "pending"
    assert data["cashier_url"] == f"http://testserver/sandbox/cashier/{data['payment_id']}"
    assert (data["out_trade_no"], data["amount"], data["currency"]) == (
        "0123456789abcdef0123456789abcdef",
        1999,
        "CNY",
    )
    payment = Payment.objects.get(pk=data["payment_id"])
    assert payment.status == PaymentStatus.PENDING
    assert payment.notifications.count() == 0


def test_create_requires_an_idempotency_key(api: Client) -> None:
    response = api.post("/sandbox/v1/payments", payment_body(), content_type="application/json")
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["message"]
    assert Payment.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": "1999"}, "amount"),
        ({"amount": 19.99}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": MAX_AMOUNT + 1}, "amount"),
        ({"currency": "cny"}, "currency"),
        ({"out_trade_no": ""}, "out_trade_no"),
        ({"out_trade_no": "has space"}, "out_trade_no"),
        ({"notify_url": "ftp://example.com/notify"}, "notify_url"),
        ({"notify_url": "/relative"}, "notify_url"),
        ({"notify_url": "http://169.254.169.254/latest/"}, "must point at the shop"),
        ({"expire_at": "soon"}, "expire_at"),
        ({"expire_at": 1_000_000}, "expire_at must be in the future"),
        ({"description": 5}, "description"),
        ({"colour": "red"}, "unknown fields: colour"),
    ],
)
def test_create_rejects_a_bad_field_with_a_400_that_names_it(
    api: Client, overrides: dict[str, Any], complaint: str
) -> None:
    response = create(api, **overrides)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert complaint in response.json()["message"]
    assert Payment.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://shop.example/payments/notify/sandbox/", True),
        ("https://shop.example:443/payments/notify/sandbox/", True),
        ("http://shop.example/payments/notify/sandbox/", False),  # another scheme
        ("https://shop.example:8443/payments/notify/sandbox/", False),  # another port
        ("https://shop.example.evil.example/notify/", False),
        ("https://evil.example/?https://shop.example/", False),
        ("http://127.0.0.1:8123/payments/notify/sandbox/", True),  # a host entry: any port
    ],
)
def test_the_sandbox_notifies_only_the_shops_own_origins(url: str, allowed: bool) -> None:
    assert notify_url_allowed(url, ["https://shop.example", "127.0.0.1"]) is allowed


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_create_rejects_a_body_that_is_not_a_json_object(api: Client, body: bytes) -> None:
    response = api.post(
        "/sandbox/v1/payments",
        body,
        content_type="application/json",
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["message"]


def test_create_rejects_a_missing_field(api: Client) -> None:
    body = payment_body()
    del body["notify_url"]
    response = api.post(
        "/sandbox/v1/payments",
        body,
        content_type="application/json",
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 400
    assert response.json()["message"] == "missing fields: notify_url"


@given(st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_any_positive_integer_amount_is_accepted(amount: int) -> None:
    assert new_payment(payment_body(amount=amount)).amount == amount


@given(st.integers(max_value=0) | st.floats() | st.booleans() | st.text())
def test_no_amount_but_a_positive_integer_is_accepted(amount: object) -> None:
    with pytest.raises(InvalidRequest, match="amount"):
        new_payment(payment_body(amount=amount))


def test_with_a_latency_set_every_call_is_answered_that_much_later(api: Client, settings) -> None:
    """SANDBOX_API_LATENCY makes the sandbox as slow as a real payment system across the internet,
    for the benchmark; the answer is the same."""
    settings.SANDBOX_API_LATENCY = 0.3
    started = time.monotonic()
    created = create(api)
    between = time.monotonic()
    found = api.get(f"/sandbox/v1/payments/{created.json()['payment_id']}")
    ended = time.monotonic()
    assert (created.status_code, found.status_code) == (201, 200)
    assert between - started >= 0.3 and ended - between >= 0.3


def test_the_same_idempotency_key_returns_the_same_payment(api: Client) -> None:
    expire_at = int(time.time()) + 900
    first = create(api, key="order-7", expire_at=expire_at)
    again = create(api, key="order-7", expire_at=expire_at)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1


def test_a_replay_reports_the_payment_as_it_stands_now(api: Client) -> None:
    expire_at = int(time.time()) + 900
    first = create(api, key="order-8", expire_at=expire_at).json()
    payment_decide(payment_id=first["payment_id"], approve=True)
    again = create(api, key="order-8", expire_at=expire_at).json()
    assert again["payment_id"] == first["payment_id"]
    assert again["status"] == "succeeded"


def test_the_same_key_with_a_different_body_is_409(api: Client) -> None:
    expire_at = int(time.time()) + 900
    create(api, key="order-9", expire_at=expire_at)
    response = create(api, key="order-9", expire_at=expire_at, amount=2999)
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_conflict"
    assert list(Payment.objects.values_list("amount", flat=True)) == [1999]


def test_different_keys_make_different_payments(api: Client) -> None:
    a = create(api, key="a").json()["payment_id"]
    b = create(api, key="b").json()["payment_id"]
    assert a != b
    assert Payment.objects.count() == 2


def test_a_payment_is_found_by_id_and_by_out_trade_no(api: Client) -> None:
    payment_id = create(api, key="k", out_trade_no="biz42").json()["payment_id"]
    expected = {
        "payment_id": payment_id,
        "out_trade_no": "biz42",
        "amount": 1999,
        "currency": "CNY",
        "status": "pending",
        "paid_at": None,
    }
    by_id = api.get(f"/sandbox/v1/payments/{payment_id}")
    by_biz = api.get("/sandbox/v1/payments", {"out_trade_no": "biz42"})
    assert by_id.status_code == by_biz.status_code == 200
    assert by_id.json() == by_biz.json() == expected


def test_query_by_out_trade_no_answers_the_newest_payment(api: Client) -> None:
    create(api, key="first", out_trade_no="biz43")
    newest = create(api, key="second", out_trade_no="biz43").json()["payment_id"]
    response = api.get("/sandbox/v1/payments", {"out_trade_no": "biz43"})
    assert response.json()["payment_id"] == newest


def test_paid_at_is_unix_seconds_once_paid(api: Client) -> None:
    payment = make_payment()
    before = int(time.time())
    payment_decide(payment_id=payment.id, approve=True)
    data = api.get(f"/sandbox/v1/payments/{payment.id}").json()
    assert data["status"] == "succeeded"
    assert isinstance(data["paid_at"], int)
    assert before <= data["paid_at"] <= int(time.time())


@pytest.mark.parametrize(
    "path",
    [
        "/sandbox/v1/payments/pay_000000000000000000000000",
        "/sandbox/v1/payments?out_trade_no=nobody",
    ],
)
def test_an_unknown_payment_is_a_404_json(api: Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_query_without_out_trade_no_is_400(api: Client) -> None:
    assert api.get("/sandbox/v1/payments").status_code == 400


def test_close_closes_a_pending_payment_and_notifies_it(api: Client) -> None:
    payment = make_payment()
    response = api.post(f"/sandbox/v1/payments/{payment.id}/close")
    assert response.status_code == 200
    assert response.json()["status"] == "closed"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLOSED
    assert [n.type for n in payment.notifications.all()] == [NotificationType.CLOSED]


def test_close_after_payment_is_409_and_leaves_it_paid(api: Client) -> None:
    payment = make_payment()
    payment_decide(payment_id=payment.id, approve=True)
    response = api.post(f"/sandbox/v1/payments/{payment.id}/close")
    assert response.status_code == 409
    assert response.json() == {"status": "succeeded"}
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert [n.type for n in payment.notifications.all()] == [NotificationType.SUCCEEDED]


@pytest.mark.parametrize("approve", [False, None])
def test_closing_a_failed_or_closed_payment_is_200_with_its_state_and_no_new_notification(
    api: Client, approve: bool | None
) -> None:
    payment = make_payment()
    if approve is None:
        api.post(f"/sandbox/v1/payments/{payment.id}/close")
    else:
        payment_decide(payment_id=payment.id, approve=approve)
    response = api.post(f"/sandbox/v1/payments/{payment.id}/close")
    assert response.status_code == 200
    assert response.json()["status"] == ("closed" if approve is None else "failed")
    assert Notification.objects.filter(payment=payment).count() == 1


def test_closing_an_unknown_payment_is_404(api: Client) -> None:
    response = api.post("/sandbox/v1/payments/pay_000000000000000000000000/close")
    assert response.status_code == 404


def test_a_wrong_method_is_405_json(api: Client) -> None:
    response = api.delete("/sandbox/v1/payments")
    assert response.status_code == 405
    assert json.loads(response.content)["error"] == "method_not_allowed"


def test_the_api_needs_no_csrf_token_but_the_cashier_form_does(auth: dict[str, str]) -> None:
    """A merchant's server authenticates with its key, not a browser's cookie; the cashier page,
    which a shopper's browser posts, keeps Django's CSRF protection."""
    merchant = Client(enforce_csrf_checks=True, headers=auth)
    response = create(merchant)
    assert response.status_code == 201
    payment_id = response.json()["payment_id"]
    assert merchant.post(f"/sandbox/v1/payments/{payment_id}/close").status_code == 200

    browser = Client(enforce_csrf_checks=True)
    refused = browser.post(f"/sandbox/cashier/{payment_id}", {"decision": "approve"})
    assert refused.status_code == 403


def test_creating_a_payment_is_one_insert(django_assert_num_queries) -> None:
    """A new key is inserted at once (the savepoint keeps a duplicate key from breaking an outer
    transaction); only a replay reads the payment its key already has."""
    request = new_payment(payment_body())
    with django_assert_num_queries(3):  # SAVEPOINT, INSERT, RELEASE
        payment, created = payment_create(request=request, idempotency_key="k-1")
    assert created
    # A replay: SAVEPOINT, the refused INSERT, ROLLBACK TO SAVEPOINT, RELEASE, then the read.
    with django_assert_num_queries(5):
        assert payment_create(request=request, idempotency_key="k-1") == (payment, False)
