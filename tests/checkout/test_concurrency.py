"""Exactly once under real concurrency: parallel HTTP deliveries against PostgreSQL row locks."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from checkout import push
from checkout.models import Notification, Order, OrderStatus
from checkout.services import results
from tests.checkout import factories as f

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pushes(monkeypatch) -> list[str]:
    """Every push announced, whichever server thread announced it."""
    announced: list[str] = []
    lock = threading.Lock()

    async def record(biz: str) -> None:
        with lock:
            announced.append(biz)

    monkeypatch.setattr(results, "push_order_changed", record)
    return announced


def deliver_in_parallel(url: str, bodies: list[bytes]) -> list[int]:
    barrier = threading.Barrier(len(bodies))

    def send(body: bytes) -> int:
        headers = {"Content-Type": "application/json", **f.signed_headers(body)}
        barrier.wait()
        return httpx.post(url, content=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_the_same_event_twenty_times_in_parallel_changes_the_order_once(
    postgres, live_server, pushes
):
    order = f.order(status=OrderStatus.PENDING)
    body = f.notice_body(order)
    codes = deliver_in_parallel(f"{live_server.url}/payments/notify/sandbox/", [body] * 20)
    assert codes == [200] * 20
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    outcomes = list(Notification.objects.values_list("outcome", flat=True))
    assert sorted(outcomes) == ["paid"] + ["unchanged"] * 19
    assert pushes == [order.biz]


def test_conflicting_results_racing_give_one_change_and_success_wins(
    postgres, live_server, pushes
):
    order = f.order(status=OrderStatus.PENDING)
    pay_id = f.payment_id()
    bodies = [
        f.notice_body(order, kind=kind, pay_id=pay_id)
        for kind in ["succeeded", "failed", "closed"] * 6
    ]
    codes = deliver_in_parallel(f"{live_server.url}/payments/notify/sandbox/", bodies)
    assert codes == [200] * len(bodies)
    changes = list(
        Notification.objects.exclude(outcome="unchanged")
        .order_by("processed_at")
        .values_list("outcome", flat=True)
    )
    # Whichever came first ended the wait; a success after a failure or a close still pays.
    assert changes in (["paid"], ["failed", "paid"], ["expired", "paid"])
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert len(pushes) == len(changes)
