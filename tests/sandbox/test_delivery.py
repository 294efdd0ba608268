"""Notifications go to the merchant over real HTTP, signed, and are retried until answered 2xx."""

import asyncio
import json
import re
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from checkout.gateways import signed_header
from sandbox import attempts, delivery, signature
from sandbox.attempts import SCHEDULE_SECONDS, retry_delay
from sandbox.delivery import deliver_due, deliver_forever
from sandbox.models import DeliveryState, Notification, Payment
from sandbox.payments import payment_decide
from tests.sandbox.conftest import make_payment
from tests.sandbox.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


async def decided(receiver_url: str, *, approve: bool = True, **overrides) -> Payment:
    payment = await sync_to_async(make_payment)(notify_url=receiver_url, **overrides)
    payment, applied = await sync_to_async(payment_decide)(payment_id=payment.id, approve=approve)
    assert applied
    return payment


async def notification_of(payment: Payment) -> Notification:
    return await Notification.objects.aget(payment=payment)


async def until_state(payment: Payment, state: DeliveryState, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while (await notification_of(payment)).state != state:
        assert time.monotonic() < deadline, f"notification never became {state}"
        await asyncio.sleep(0.01)


def verifies(headers: dict[str, str], body: bytes) -> bool:
    """As the merchant checks it (the shop's own verifier)."""
    try:
        signed_header.verify(
            headers.get(signature.HEADER),
            body,
            [settings.SANDBOX_NOTIFY_SECRET],
            now=int(time.time()),
        )
    except signed_header.SignatureError:
        return False
    return True


@pytest.mark.parametrize(("approve", "status"), [(True, "succeeded"), (False, "failed")])
async def test_the_notification_has_the_contract_body_and_a_valid_signature(
    receiver: Receiver, approve: bool, status: str
) -> None:
    payment = await decided(receiver.url, approve=approve, amount=1999, out_trade_no="biz7")
    before = int(time.time())
    assert await deliver_due() == 1
    [request] = await receiver.wait_for(1)
    assert request.headers["Content-Type"] == "application/json"
    assert verifies(request.headers, request.body)
    assert re.fullmatch(r"t=(\d+),v1=[0-9a-f]{64}", request.headers[signature.HEADER])
    body = json.loads(request.body)
    assert re.fullmatch(r"evt_[0-9a-f]{24}", body["id"])
    assert body == {
        "id": body["id"],
        "type": f"payment.{status}",
        "created": body["created"],
        "data": {
            "payment_id": payment.id,
            "out_trade_no": "biz7",
            "amount": 1999,
            "currency": "CNY",
            "status": status,
        },
    }
    assert before - 5 <= body["created"] <= int(time.time())
    # Compact JSON, byte for byte what is stored.
    assert b" " not in request.body.replace(b"Pour-over coffee kit", b"")
    notification = await notification_of(payment)
    assert bytes(notification.body) == request.body
    assert notification.id == body["id"]
    assert notification.state == DeliveryState.DELIVERED
    assert notification.attempts == 1
    assert notification.last_status == 200


async def test_a_failed_attempt_is_retried_on_schedule_with_the_same_bytes(
    receiver: Receiver, settings
) -> None:
    settings.SANDBOX_RETRY_SCALE = 1  # the real schedule: the first retry is 15 s later
    receiver.statuses = [500]
    payment = await decided(receiver.url)
    assert await deliver_due() == 1
    notification = await notification_of(payment)
    assert notification.state == DeliveryState.PENDING
    assert (notification.attempts, notification.last_status) == (1, 500)
    expected = timezone.now() + timedelta(seconds=SCHEDULE_SECONDS[0])
    assert abs(notification.next_attempt_at - expected) < timedelta(seconds=5)

    assert await deliver_due() == 0  # not due yet
    # The 15 s are over (moved rather than waited for): the retry goes.
    await Notification.objects.filter(pk=notification.pk).aupdate(next_attempt_at=timezone.now())
    assert await deliver_due() == 1
    first, second = await receiver.wait_for(2)
    assert first.body == second.body
    assert verifies(first.headers, first.body) and verifies(second.headers, second.body)
    await notification.arefresh_from_db()
    assert notification.state == DeliveryState.DELIVERED
    assert notification.attempts == 2
    assert [a.status_code async for a in notification.attempt_log.all()] == [500, 200]


async def test_an_answer_slower_than_the_timeout_counts_as_a_failure(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attempts, "TIMEOUT_SECONDS", 0.2)
    receiver.delay = 0.5
    payment = await decided(receiver.url)
    await deliver_due()
    notification = await notification_of(payment)
    assert notification.state == DeliveryState.PENDING
    assert notification.last_status is None
    assert "no answer within 0.2 s" in notification.last_error


async def test_an_unreachable_merchant_is_retried() -> None:
    payment = await decided("http://127.0.0.1:9/payments/notify/sandbox/")  # discard port: closed
    assert await deliver_due() == 1
    notification = await notification_of(payment)
    assert notification.state == DeliveryState.PENDING
    assert notification.attempts == 1
    assert "ClientConnectorError" in notification.last_error
    assert notification.next_attempt_at is not None


async def test_delivery_gives_up_after_the_whole_schedule(receiver: Receiver, settings) -> None:
    settings.SANDBOX_RETRY_SCALE = 0.00001  # the 24 hours of the schedule in under a second
    receiver.default = 503
    payment = await decided(receiver.url)
    for _ in range(100):
        await deliver_due()
        notification = await notification_of(payment)
        if notification.state != DeliveryState.PENDING:
            break
        await asyncio.sleep(0.01)
    assert notification.state == DeliveryState.GAVE_UP
    assert notification.attempts == len(SCHEDULE_SECONDS) + 1 == 16
    assert notification.next_attempt_at is None
    assert len(receiver.received) == 16
    assert await deliver_due() == 0


def test_the_retry_schedule_is_wechat_pays_scaled_by_the_setting(settings) -> None:
    settings.SANDBOX_RETRY_SCALE = 1
    delays = [retry_delay(n).total_seconds() for n in range(1, 16)]
    assert delays == [
        15,
        15,
        30,
        180,
        600,
        1200,
        1800,
        1800,
        1800,
        3600,
        10800,
        10800,
        10800,
        21600,
        21600,
    ]
    assert sum(delays) == 24 * 3600 + 4 * 60
    assert retry_delay(16) is None
    settings.SANDBOX_RETRY_SCALE = 0.01
    assert retry_delay(1) == timedelta(seconds=0.15)


async def test_the_loop_sends_a_decision_made_in_another_process_within_a_poll(
    receiver: Receiver,
) -> None:
    """The web server enqueues, the deliverer (another process) sees it at its next poll."""
    loop = asyncio.create_task(deliver_forever())
    try:
        await asyncio.sleep(0.3)  # let it reach its idle sleep
        decided_at = time.monotonic()
        await decided(receiver.url)
        [request] = await receiver.wait_for(1, timeout=5)
        assert request.at - decided_at < delivery.POLL_SECONDS + 0.5
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_the_loop_resumes_notifications_left_from_before_a_restart(
    receiver: Receiver,
) -> None:
    # Enqueued while no loop ran, as when the server stopped before sending.
    payment = await decided(receiver.url)
    loop = asyncio.create_task(deliver_forever())
    try:
        await receiver.wait_for(1, timeout=3)
        await until_state(payment, DeliveryState.DELIVERED)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_the_loop_retries_until_the_merchant_answers(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long sleeps, so that only the retry's own due time can explain how soon it goes.
    monkeypatch.setattr(delivery, "POLL_SECONDS", 30.0)
    monkeypatch.setattr(delivery, "SWEEP_SECONDS", 30.0)
    receiver.statuses = [500, 502]
    payment = await decided(receiver.url)
    loop = asyncio.create_task(deliver_forever())
    try:
        # Two retries due 0.15 s apart (scale 0.01), long before an idle sleep would end.
        await receiver.wait_for(3, timeout=10)
        await until_state(payment, DeliveryState.DELIVERED)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    notification = await notification_of(payment)
    assert notification.state == DeliveryState.DELIVERED
    assert notification.attempts == 3


@pytest.mark.usefixtures("postgres")
async def test_no_row_stays_locked_while_a_notification_is_on_the_wire(
    receiver: Receiver,
) -> None:
    receiver.delay = 0.5  # the merchant takes its time to answer
    payment = await decided(receiver.url)
    sending = asyncio.create_task(deliver_due())
    await receiver.wait_for(1)

    def lock_now() -> None:
        # NOWAIT raises at once if any transaction still holds these rows.
        try:
            with transaction.atomic():
                Notification.objects.select_for_update(nowait=True).get(payment=payment)
                Payment.objects.select_for_update(nowait=True).get(pk=payment.pk)
        finally:
            connection.close()

    await sync_to_async(lock_now, thread_sensitive=False)()
    assert not sending.done()  # the answer was still outstanding while we held the locks
    assert await sending == 1


@pytest.mark.django_db
def test_an_idle_look_for_work_is_one_query(django_assert_num_queries) -> None:
    """The deliverer polls every POLL_SECONDS; with nothing due it only asks when the next
    notification is due, and sleeps until then or the next poll, whichever is sooner."""
    expiries = delivery.Expiries()
    expiries.sweep_if_due(timezone.now())  # the sweep runs once per SWEEP_SECONDS, not per poll
    with django_assert_num_queries(1):
        claims, pause = delivery.look_for_work(delivery.BATCH, expiries)
    assert claims == []
    assert pause == delivery.POLL_SECONDS


@pytest.mark.django_db
def test_a_look_for_work_claims_what_is_due_and_looks_again_at_once(receiver: Receiver) -> None:
    payment = make_payment(notify_url=receiver.url)
    payment_decide(payment_id=payment.id, approve=True)
    expiries = delivery.Expiries()
    claims, pause = delivery.look_for_work(delivery.BATCH, expiries)
    assert [c.notification_id for c in claims] == [payment.notifications.get().id]
    assert pause == 0
    # Claimed: its lease keeps it from the next look, which sleeps until the next poll.
    assert delivery.look_for_work(delivery.BATCH, expiries) == ([], delivery.POLL_SECONDS)
