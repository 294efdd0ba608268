"""The knobs: set over HTTP (so another process can), applied to the notifications that follow."""

import asyncio
import itertools
import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from sandbox import notifications, signature
from sandbox.delivery import deliver_due
from sandbox.knobs import knobs_update
from sandbox.models import AttemptKind, DeliveryState, Notification
from tests.sandbox.conftest import AsyncApi
from tests.sandbox.receiver import Received, Receiver
from tests.sandbox.test_delivery import decided, notification_of, verifies

pytestmark = pytest.mark.django_db(transaction=True)

DEFAULTS = {
    "delay_ms": 0,
    "duplicate": 0,
    "reorder_ms": 0,
    "drop": False,
    "bad_signature_probes": False,
}


async def set_knobs(api: AsyncApi, **knobs: object) -> dict[str, object]:
    response = await api.post("/sandbox/v1/knobs", knobs)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
def test_knobs_are_read_set_in_part_and_reset_over_http(api: Client) -> None:
    assert api.get("/sandbox/v1/knobs").json() == DEFAULTS
    set_one = api.post("/sandbox/v1/knobs", {"duplicate": 2}, content_type="application/json")
    assert set_one.json() == DEFAULTS | {"duplicate": 2}
    api.post("/sandbox/v1/knobs", {"drop": True}, content_type="application/json")
    assert api.get("/sandbox/v1/knobs").json() == DEFAULTS | {"duplicate": 2, "drop": True}
    assert api.delete("/sandbox/v1/knobs").json() == DEFAULTS
    assert api.get("/sandbox/v1/knobs").json() == DEFAULTS


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{"duplicate": -1}, {"delay_ms": "100"}, {"drop": 1}, {"jitter": 5}, {"duplicate": 21}],
)
def test_a_bad_knob_is_400_and_changes_nothing(api: Client, body: dict[str, object]) -> None:
    response = api.post("/sandbox/v1/knobs", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert api.get("/sandbox/v1/knobs").json() == DEFAULTS


async def test_delay_holds_a_notification_before_its_first_attempt(
    async_api: AsyncApi, receiver: Receiver
) -> None:
    await set_knobs(async_api, delay_ms=60_000)
    payment = await decided(receiver.url)
    held = await notification_of(payment)
    assert (held.next_attempt_at - held.created).total_seconds() == pytest.approx(60, abs=1)
    assert await deliver_due() == 0
    # The hold is over (moved rather than waited for): now it goes.
    await Notification.objects.filter(pk=held.pk).aupdate(next_attempt_at=held.created)
    assert await deliver_due() == 1
    assert len(receiver.received) == 1


async def test_duplicate_sends_extra_identical_copies_at_once(
    async_api: AsyncApi, receiver: Receiver
) -> None:
    await set_knobs(async_api, duplicate=2)
    payment = await decided(receiver.url)
    assert await deliver_due() == 1
    requests = await receiver.wait_for(3)
    assert len({r.body for r in requests}) == 1
    assert all(verifies(r.headers, r.body) for r in requests)
    notification = await notification_of(payment)
    assert notification.state == DeliveryState.DELIVERED
    kinds = sorted([a.kind async for a in notification.attempt_log.all()])
    assert kinds == [AttemptKind.DUPLICATE, AttemptKind.DUPLICATE, AttemptKind.ORIGINAL]


async def test_reorder_holds_each_notification_a_random_time_up_to_the_knob(
    async_api: AsyncApi, receiver: Receiver
) -> None:
    await set_knobs(async_api, reorder_ms=400)
    for n in range(6):
        await decided(receiver.url, out_trade_no=f"biz{n}")
    holds = [
        (n.next_attempt_at - n.created).total_seconds()
        async for n in Notification.objects.order_by("created")
    ]
    assert all(0 <= hold <= 0.4 for hold in holds)


async def test_reorder_delivers_in_the_order_of_the_holds_not_of_the_decisions(
    async_api: AsyncApi, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2000, 1600, ... ms: the last decided is due first. The gaps are wide so that slow decisions
    # on a loaded machine cannot undo the order the holds give.
    holds = itertools.count(2000, -400)
    monkeypatch.setattr(notifications.random, "randint", lambda low, high: next(holds))
    await set_knobs(async_api, reorder_ms=2000)
    for n in range(5):
        await decided(receiver.url, out_trade_no=f"biz{n}")
    deadline = time.monotonic() + 8
    while len(receiver.received) < 5 and time.monotonic() < deadline:
        await deliver_due()
        await asyncio.sleep(0.01)
    arrived = [json.loads(r.body)["data"]["out_trade_no"] for r in receiver.received]
    assert arrived == ["biz4", "biz3", "biz2", "biz1", "biz0"]


async def test_drop_records_the_notification_and_never_sends_it(
    async_api: AsyncApi, receiver: Receiver
) -> None:
    await set_knobs(async_api, drop=True)
    payment = await decided(receiver.url)
    assert await deliver_due() == 0
    await asyncio.sleep(0.2)
    assert await deliver_due() == 0
    assert receiver.received == []
    notification = await notification_of(payment)
    assert notification.state == DeliveryState.DROPPED
    assert notification.attempts == 0


async def test_probes_send_one_bad_signature_first_and_never_retry_it(
    async_api: AsyncApi, receiver: Receiver
) -> None:
    def merchant(request: Received) -> int:
        return 200 if verifies(request.headers, request.body) else 400

    receiver.answer = merchant
    await set_knobs(async_api, bad_signature_probes=True)
    payment = await decided(receiver.url)
    assert await deliver_due() == 1
    probe, real = await receiver.wait_for(2)
    assert probe.body == real.body
    assert signature.HEADER in probe.headers
    assert not verifies(probe.headers, probe.body)
    assert verifies(real.headers, real.body)
    notification = await notification_of(payment)
    assert notification.state == DeliveryState.DELIVERED
    log = [(a.kind, a.status_code) async for a in notification.attempt_log.all()]
    assert log == [(AttemptKind.PROBE, 400), (AttemptKind.ORIGINAL, 200)]
    await asyncio.sleep(0.2)
    assert await deliver_due() == 0
    assert len(receiver.received) == 2


async def test_knobs_reset_restores_plain_delivery(async_api: AsyncApi, receiver: Receiver) -> None:
    await set_knobs(async_api, drop=True, duplicate=3)
    await async_api.delete("/sandbox/v1/knobs")
    await decided(receiver.url)
    assert await deliver_due() == 1
    await asyncio.sleep(0.1)
    assert len(receiver.received) == 1


async def test_knobs_written_to_the_database_by_another_process_apply_here(
    receiver: Receiver,
) -> None:
    await sync_to_async(knobs_update)({"duplicate": 1})
    await decided(receiver.url)
    await deliver_due()
    assert len(await receiver.wait_for(2)) == 2
