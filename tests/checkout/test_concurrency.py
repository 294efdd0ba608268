"""Exactly once under real concurrency: parallel deliveries against PostgreSQL row locks.

Each delivery runs on a thread of its own with its own database connection (`tests.asgi`: the
endpoint's database work runs on the thread that sends), so the transactions race as those of
several server processes do."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connections

from checkout.models import Notification, Order, OrderStatus, Payment
from checkout.panels import PanelState
from checkout.services import results
from tests import fake_http
from tests.checkout import factories as f

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pushes(monkeypatch) -> list[str]:
    """Every push announced, whichever server thread announced it."""
    announced: list[str] = []
    lock = threading.Lock()

    async def record(state: PanelState, *, pressed_in: str | None = None) -> None:
        with lock:
            announced.append(state["biz"])

    monkeypatch.setattr(results, "push_order_changed", record)
    return announced


def deliver_in_parallel(bodies: list[bytes]) -> list[int]:
    barrier = threading.Barrier(len(bodies))

    def send(body: bytes) -> int:
        barrier.wait()
        try:
            return f.notify(body).status_code
        finally:
            connections.close_all()  # this thread's

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_the_same_event_twenty_times_in_parallel_changes_the_order_once(postgres, pushes):
    order = f.order(status=OrderStatus.PENDING)
    body = f.notice_body(order)
    codes = deliver_in_parallel([body] * 20)
    assert codes == [200] * 20
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    outcomes = list(Notification.objects.values_list("outcome", flat=True))
    assert sorted(outcomes) == ["paid"] + ["unchanged"] * 19
    assert pushes == [order.biz]


def test_conflicting_results_racing_give_one_change_and_success_wins(postgres, pushes):
    order = f.order(status=OrderStatus.PENDING)
    pay_id = f.payment_id()
    bodies = [
        f.notice_body(order, kind=kind, pay_id=pay_id)
        for kind in ["succeeded", "failed", "closed"] * 6
    ]
    codes = deliver_in_parallel(bodies)
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


def test_a_failure_racing_a_close_gives_exactly_one_change_and_one_push(postgres, pushes):
    order = f.order(status=OrderStatus.PENDING)
    pay_id = f.payment_id()
    bodies = [f.notice_body(order, kind=kind, pay_id=pay_id) for kind in ["failed", "closed"] * 10]
    codes = deliver_in_parallel(bodies)
    assert codes == [200] * len(bodies)
    changes = list(
        Notification.objects.exclude(outcome="unchanged").values_list("outcome", flat=True)
    )
    assert changes in (["failed"], ["expired"])
    assert Order.objects.get(pk=order.pk).status == changes[0]
    assert pushes == [order.biz]


def test_the_shoppers_pay_racing_a_success_notification_ends_paid_with_one_payment(
    postgres, live_server, pushes, settings
):
    """The payment system calls back while the Pay request still waits for its answer."""
    session = f.shopper_session()
    order = f.order(session)
    pay_id = f.payment_id()
    cashier_url = f"{live_server.url}/sandbox/cashier/{pay_id}"
    arrived, release = threading.Event(), threading.Event()
    csrf = "a" * 32
    cookies = {settings.SESSION_COOKIE_NAME: session.session_key, "csrftoken": csrf}
    with fake_http.answering(
        201,
        f.started_body(order, pay_id=pay_id, cashier_url=cashier_url),
        arrived=arrived,
        release=release,
    ) as gateway:
        settings.PAYMENT_GATEWAY_URL = gateway
        with ThreadPoolExecutor(1) as pool:
            pay = pool.submit(
                httpx.post,
                f"{live_server.url}/orders/{order.biz}/pay/",
                headers={"X-CSRFToken": csrf, "HX-Request": "true"},
                cookies=cookies,
                timeout=30,
            )
            assert arrived.wait(10), "the Pay request never reached the payment system"
            body = f.notice_body(order, pay_id=pay_id)
            codes = deliver_in_parallel([body] * 20)
            release.set()
            answer = pay.result(timeout=30)

    assert codes == [200] * 20
    assert answer.status_code == 200
    assert 'data-status="paid"' in answer.text
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    payment = Payment.objects.get(order=order)
    assert payment.payment_id == pay_id and payment.cashier_url == cashier_url
    outcomes = sorted(Notification.objects.values_list("outcome", flat=True))
    assert outcomes == ["paid"] + ["unchanged"] * 19
    assert pushes == [order.biz], "the Pay that came second changed nothing and pushed nothing"
