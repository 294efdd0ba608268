"""What must hold when requests really run at once: PostgreSQL, real threads, real row locks."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client

from sandbox.attempts import claim_due
from sandbox.models import DeliveryState, Notification, Payment, PaymentStatus
from sandbox.payments import payment_close, payment_decide
from tests.sandbox.conftest import make_payment, payment_body

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres")]


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in parallel threads, released together; each thread closes its connection."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait()
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_parallel_creates_with_one_key_make_one_payment(auth: dict[str, str]) -> None:
    def create() -> tuple[int, dict[str, Any]]:
        response = Client(headers=auth).post(
            "/sandbox/v1/payments",
            body,
            content_type="application/json",
            headers={"Idempotency-Key": "same-key"},
        )
        return response.status_code, response.json()

    body = payment_body()
    answers = at_once(*[create] * 8)
    assert {status for status, _ in answers} == {201}
    assert len({data["payment_id"] for _, data in answers}) == 1
    assert Payment.objects.count() == 1


@pytest.mark.parametrize("round_", range(5))
def test_a_decision_racing_a_close_settles_the_payment_once(round_: int) -> None:
    payment = make_payment()
    decision, closed = at_once(
        lambda: payment_decide(payment_id=payment.id, approve=True),
        lambda: payment_close(payment_id=payment.id),
    )
    payment.refresh_from_db()
    _, applied = decision
    if applied:
        assert payment.status == closed.status == PaymentStatus.SUCCEEDED
    else:
        assert payment.status == closed.status == PaymentStatus.CLOSED
    # One settlement, one notification, whichever won.
    assert Notification.objects.filter(payment=payment).count() == 1


def test_a_notification_claimed_by_one_process_is_skipped_by_another() -> None:
    for n in range(3):
        payment_decide(payment_id=make_payment(out_trade_no=f"biz{n}").id, approve=True)
    held = threading.Event()
    release = threading.Event()

    def hold_all() -> list[str]:
        # Another process in the middle of its claim: rows locked, transaction open.
        try:
            with transaction.atomic():
                due = Notification.objects.select_for_update().filter(state=DeliveryState.PENDING)
                ids = [n.pk for n in due]
                held.set()
                release.wait(5)
                return ids
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        holder = pool.submit(hold_all)
        assert held.wait(5)
        claimed_meanwhile = claim_due(100)
        release.set()
        assert len(holder.result()) == 3
    assert claimed_meanwhile == []
    assert len(claim_due(100)) == 3  # once released, they are claimable (once)
    assert claim_due(100) == []  # and the claim's lease keeps them from a second claim


def test_deliverers_claiming_at_once_take_each_notification_once() -> None:
    for n in range(20):
        payment_decide(payment_id=make_payment(out_trade_no=f"biz{n}").id, approve=True)
    claimed = at_once(*[lambda: claim_due(100)] * 4)
    ids = [claim.notification_id for claims in claimed for claim in claims]
    assert len(ids) == len(set(ids)) == 20
