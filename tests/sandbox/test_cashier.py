"""The cashier page the shopper's phone opens."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sandbox.models import NotificationType, Payment, PaymentStatus
from sandbox.payments import payment_decide
from tests.sandbox.conftest import make_payment

pytestmark = pytest.mark.django_db


def url(payment: Payment) -> str:
    return f"/sandbox/cashier/{payment.id}"


def test_the_page_shows_amount_description_and_both_decisions(client: Client) -> None:
    payment = make_payment(amount=1999, description="Pour-over coffee kit")
    response = client.get(url(payment))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert "<h1>¥19.99</h1>" in html
    assert "Pour-over coffee kit" in html
    assert 'name="decision" value="approve"' in html
    assert 'name="decision" value="decline"' in html
    assert "csrfmiddlewaretoken" in html
    assert "<script" not in html


def test_approving_marks_the_payment_succeeded_and_enqueues_its_notification(
    client: Client,
) -> None:
    payment = make_payment()
    response = client.post(url(payment), {"decision": "approve"})
    assert response.status_code == 200
    assert "Payment approved" in response.content.decode()
    assert 'value="approve"' not in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.paid_at is not None
    assert abs(payment.paid_at - timezone.now()) < timedelta(seconds=5)
    assert [n.type for n in payment.notifications.all()] == [NotificationType.SUCCEEDED]


def test_declining_marks_the_payment_failed(client: Client) -> None:
    payment = make_payment()
    response = client.post(url(payment), {"decision": "decline"})
    assert "Payment declined" in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert payment.paid_at is None
    assert [n.type for n in payment.notifications.all()] == [NotificationType.FAILED]


def test_a_decision_on_a_settled_payment_changes_nothing_and_says_so(client: Client) -> None:
    payment = make_payment()
    payment_decide(payment_id=payment.id, approve=False)
    response = client.post(url(payment), {"decision": "approve"})
    assert response.status_code == 200
    assert "already failed; nothing changed" in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED
    assert payment.notifications.count() == 1


def test_a_decision_without_the_csrf_token_is_refused() -> None:
    payment = make_payment()
    response = Client(enforce_csrf_checks=True).post(url(payment), {"decision": "approve"})
    assert response.status_code == 403
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING


def test_a_decision_with_the_pages_csrf_token_is_applied() -> None:
    payment = make_payment()
    browser = Client(enforce_csrf_checks=True)
    browser.get(url(payment))
    token = browser.cookies["csrftoken"].value
    response = browser.post(url(payment), {"decision": "approve", "csrfmiddlewaretoken": token})
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_an_unknown_decision_is_400_and_changes_nothing(client: Client) -> None:
    payment = make_payment()
    response = client.post(url(payment), {"decision": "maybe"})
    assert response.status_code == 400
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING


def test_an_unknown_payment_is_404(client: Client) -> None:
    assert client.get("/sandbox/cashier/pay_000000000000000000000000").status_code == 404


def test_a_decision_reads_the_payment_once_under_its_lock(
    client: Client, django_assert_num_queries
) -> None:
    payment = make_payment()
    # SAVEPOINT, the locked read, the payment's UPDATE, the knobs, the notification, RELEASE.
    with django_assert_num_queries(6):
        response = client.post(url(payment), {"decision": "approve"})
    assert "Payment approved" in response.content.decode()
