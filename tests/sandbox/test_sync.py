"""The synchronous mode: one request that answers only once the payment is settled."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connections
from django.utils import timezone

from sandbox import waiting
from sandbox.models import NotificationType, Payment, PaymentStatus
from sandbox.payments import payment_decide
from tests.sandbox.conftest import AsyncApi, payment_body

pytestmark = pytest.mark.django_db(transaction=True)


async def start_sync(api: AsyncApi, key: str = "sync-1", **body) -> asyncio.Task:
    return asyncio.create_task(
        api.post(
            "/sandbox/v1/payments/sync", payment_body(**body), headers={"Idempotency-Key": key}
        )
    )


async def created_payment(out_trade_no: str = "0123456789abcdef0123456789abcdef") -> Payment:
    for _ in range(200):
        payment = await Payment.objects.filter(out_trade_no=out_trade_no).afirst()
        if payment is not None:
            return payment
        await asyncio.sleep(0.01)
    raise AssertionError("the sync request never created its payment")


async def test_sync_answers_once_the_shopper_decides(async_api: AsyncApi) -> None:
    request = await start_sync(async_api)
    payment = await created_payment()
    await asyncio.sleep(0.2)
    assert not request.done()  # still waiting for the shopper

    await sync_to_async(payment_decide)(payment_id=payment.id, approve=True)
    response = await asyncio.wait_for(request, timeout=10)
    assert response.status_code == 200
    data = response.json()
    assert data["payment_id"] == payment.id
    assert data["status"] == "succeeded"
    assert isinstance(data["paid_at"], int)
    assert set(data) == {"payment_id", "out_trade_no", "amount", "currency", "status", "paid_at"}
    # Like callback mode, the result is notified too.
    types = [n.type async for n in payment.notifications.all()]
    assert types == [NotificationType.SUCCEEDED]


async def test_sync_sees_a_decision_made_by_another_process(async_api: AsyncApi) -> None:
    request = await start_sync(async_api)
    payment = await created_payment()
    await asyncio.sleep(0.1)
    # A plain UPDATE wakes nobody in this process: only the database poll can see it.
    await Payment.objects.filter(pk=payment.pk).aupdate(status=PaymentStatus.FAILED)
    response = await asyncio.wait_for(request, timeout=2)
    assert response.json()["status"] == "failed"


async def test_sync_answers_closed_when_the_payment_expires(async_api: AsyncApi) -> None:
    request = await start_sync(async_api, expire_at=int(time.time()) + 2)
    response = await asyncio.wait_for(request, timeout=10)
    assert response.json()["status"] == "closed"
    payment = await created_payment()
    assert payment.status == PaymentStatus.CLOSED
    assert payment.expire_at <= timezone.now()
    types = [n.type async for n in payment.notifications.all()]
    assert types == [NotificationType.CLOSED]


async def test_many_sync_waiters_share_one_poller(async_api: AsyncApi) -> None:
    requests = [await start_sync(async_api, key=f"k{n}", out_trade_no=f"biz{n}") for n in range(5)]
    for n in range(5):
        await created_payment(f"biz{n}")
    await asyncio.sleep(0.15)
    assert len(waiting._pollers) == 1
    await Payment.objects.filter(out_trade_no__startswith="biz").aupdate(
        status=PaymentStatus.CLOSED
    )
    responses = await asyncio.wait_for(asyncio.gather(*requests), timeout=2)
    assert [r.json()["status"] for r in responses] == ["closed"] * 5
    await asyncio.sleep(waiting.POLL_SECONDS * 2)
    assert waiting._pollers == {}  # it stops when nobody waits


async def test_sync_refuses_a_bad_body_at_once(async_api: AsyncApi) -> None:
    response = await async_api.post(
        "/sandbox/v1/payments/sync", payment_body(amount=0), headers={"Idempotency-Key": "k"}
    )
    assert response.status_code == 400
    assert await Payment.objects.acount() == 0


async def test_the_poller_outlives_the_request_that_started_it(async_api: AsyncApi) -> None:
    """The poller starts in the first waiter's request and serves the waiters after it. Under
    Django's ASGI handler each request runs in a thread-sensitive context of its own (asgiref's),
    which ends with it: were it the poller's too, every poll after would fail, and a decision made
    by another process would reach the next waiter only at its recheck, seconds later."""
    started, leave = asyncio.Event(), asyncio.Event()
    thread = ThreadPoolExecutor(max_workers=1)

    async def first_request() -> None:
        async with ThreadSensitiveContext(executor=thread):  # as Django's ASGI handler enters one
            first = await start_sync(async_api, key="k1", out_trade_no="biz1")
            payment = await created_payment("biz1")
            await asyncio.sleep(0.15)  # waiting, the poller started from here
            started.set()
            await leave.wait()
            await sync_to_async(payment_decide)(payment_id=payment.id, approve=True)
            assert (await asyncio.wait_for(first, timeout=10)).status_code == 200

    request = asyncio.create_task(first_request())
    await asyncio.wait_for(started.wait(), timeout=10)
    second = await start_sync(async_api, key="k2", out_trade_no="biz2")
    payment = await created_payment("biz2")
    leave.set()
    await asyncio.wait_for(request, timeout=10)  # that request and its context have ended
    await Payment.objects.filter(pk=payment.pk).aupdate(status=PaymentStatus.FAILED)
    try:
        response = await asyncio.wait_for(second, timeout=2)  # well before RECHECK_SECONDS
    finally:
        thread.submit(connections.close_all).result()  # the request thread's own connection
        thread.shutdown()
    assert response.json()["status"] == "failed"
