"""The sandbox expires pending payments itself, and says so with payment.closed."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from sandbox.delivery import deliver_due
from sandbox.models import Notification, NotificationType, Payment, PaymentStatus
from tests.sandbox.conftest import make_payment
from tests.sandbox.receiver import Receiver


def make_overdue_payment(**overrides) -> Payment:
    payment = make_payment(**overrides)
    # Creating it overdue is refused; move the clock of this one payment instead.
    Payment.objects.filter(pk=payment.pk).update(expire_at=timezone.now() - timedelta(seconds=1))
    return payment


@pytest.mark.django_db
def test_an_overdue_payment_is_reported_and_stored_closed_with_one_notification(
    api: Client,
) -> None:
    payment = make_overdue_payment()
    first = api.get(f"/sandbox/v1/payments/{payment.id}").json()
    second = api.get("/sandbox/v1/payments", {"out_trade_no": payment.out_trade_no}).json()
    assert first["status"] == second["status"] == "closed"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLOSED
    assert [n.type for n in payment.notifications.all()] == [NotificationType.CLOSED]


@pytest.mark.django_db
def test_a_decision_on_an_overdue_payment_closes_it_instead(client: Client) -> None:
    payment = make_overdue_payment()
    response = client.post(f"/sandbox/cashier/{payment.id}", {"decision": "approve"})
    assert "closed" in response.content.decode()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CLOSED
    assert payment.paid_at is None


@pytest.mark.django_db
def test_the_cashier_page_of_an_overdue_payment_offers_no_decision(client: Client) -> None:
    payment = make_overdue_payment()
    html = client.get(f"/sandbox/cashier/{payment.id}").content.decode()
    assert "has expired" in html
    assert 'value="approve"' not in html


@pytest.mark.django_db(transaction=True)
async def test_the_delivery_round_closes_overdue_payments_and_sends_payment_closed(
    receiver: Receiver,
) -> None:
    payment = await sync_to_async(make_overdue_payment)(notify_url=receiver.url)
    assert await deliver_due() == 1
    [request] = await receiver.wait_for(1)
    assert b'"type":"payment.closed"' in request.body
    await payment.arefresh_from_db()
    assert payment.status == PaymentStatus.CLOSED
    assert await Notification.objects.filter(payment=payment).acount() == 1
