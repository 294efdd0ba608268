"""The reconciler against the real sandbox over HTTP: active query, expiry, outages, many copies.

The sandbox is served by pytest-django's `live_server` and its notifications are dropped (the
`drop` knob), so whatever the shop learns here it learns by asking, as when a callback never comes.
"""

import asyncio
import logging
import os
import socket
import subprocess
import sys
import threading
from asyncio.subprocess import PIPE
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from asgiref.sync import ThreadSensitiveContext, async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.db import connection, connections, transaction
from django.utils import timezone

from checkout import locks, reconcile
from checkout.gateways.base import PaymentRequest
from checkout.gateways.sandbox import SandboxGateway
from checkout.models import Flag, Order, OrderStatus, Payment, PaymentStatus
from checkout.panels import PanelState
from checkout.push import order_group
from checkout.services import results
from checkout.services.payments import payment_start
from checkout.services.orders import order_provider_choose
from checkout.services.results import Source, result_apply
from sandbox.knobs import knobs_update
from sandbox.models import Payment as SandboxPayment
from sandbox.payments import payment_decide
from shop.asgi import application
from tests import fake_http
from tests.checkout import factories as f
from tests.conftest import require
from tests.servers import ROOT

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sandbox(live_server, settings):
    """The shop talks to the sandbox served by live_server, which drops every notification."""
    settings.PAYMENT_GATEWAY_URL = live_server.url + "/sandbox/"
    settings.SITE_URL = live_server.url
    knobs_update({"drop": True})
    return live_server


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, str]]:
    """Every query and close the shop sends to the payment system, from any thread."""
    made: list[tuple[str, str]] = []
    query, close = SandboxGateway.query, SandboxGateway.close

    async def counted_query(self, *, biz, payment_id=None):
        made.append(("query", biz))
        return await query(self, biz=biz, payment_id=payment_id)

    async def counted_close(self, *, payment_id):
        made.append(("close", payment_id))
        return await close(self, payment_id=payment_id)

    monkeypatch.setattr(SandboxGateway, "query", counted_query)
    monkeypatch.setattr(SandboxGateway, "close", counted_close)
    return made


@pytest.fixture
def pushes(monkeypatch) -> list[str]:
    announced: list[str] = []
    real = results.push_order_changed

    async def record(state: PanelState, *, pressed_in: str | None = None) -> None:
        if state["status"] != OrderStatus.PENDING:  # results, not a Pay's own push
            announced.append(state["biz"])
        await real(state, pressed_in=pressed_in)

    monkeypatch.setattr(results, "push_order_changed", record)
    return announced


def pending_order(**changes) -> tuple[Order, str]:
    """An order whose Pay went through at the sandbox; returns it with its payment id."""
    order = f.order(**changes)
    order = Order.objects.select_related("product").get(pk=order.pk)
    async_to_sync(payment_start)(order=order, provider="sandbox")
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    return order, order.payment.payment_id


def due(order: Order, **changes) -> None:
    """Make the reconciler's next look at `order` due now (as if its time had passed)."""
    Order.objects.filter(pk=order.pk).update(reconcile_after=timezone.now(), **changes)


def past_its_time(order: Order) -> None:
    due(order, expires_at=timezone.now() - timedelta(seconds=1))


def run_once() -> int:
    return async_to_sync(reconcile.reconcile_once)()


def status_of(order: Order) -> str:
    return Order.objects.get(pk=order.pk).status


def test_a_pending_payment_is_not_queried_before_reconcile_query_after(sandbox, calls):
    order, _ = pending_order()
    wait = timedelta(seconds=django_settings.RECONCILE_QUERY_AFTER)
    assert Order.objects.get(pk=order.pk).reconcile_after > timezone.now() + wait / 2
    assert run_once() == 0
    assert calls == []


@pytest.mark.parametrize(
    ("approve", "final"), [(True, OrderStatus.PAID), (False, OrderStatus.FAILED)]
)
def test_a_payment_nobody_notified_is_resolved_by_active_query(
    sandbox, calls, pushes, approve, final
):
    order, pay_id = pending_order()
    payment_decide(payment_id=pay_id, approve=approve)  # its notification is dropped
    due(order)

    assert run_once() == 1

    assert status_of(order) == final
    assert calls == [("query", order.biz)]
    assert Payment.objects.get(order=order).status == ("succeeded" if approve else "failed")
    assert pushes == [order.biz]
    assert run_once() == 0, "a settled order is never looked at again"


def test_a_payment_still_pending_is_asked_again_later_but_never_after_its_expiry(sandbox, calls):
    order, _ = pending_order()
    due(order)
    assert run_once() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert timezone.now() < order.reconcile_after <= order.expires_at
    assert calls == [("query", order.biz)]


def test_an_order_past_its_time_is_closed_then_queried_then_expired(sandbox, calls, pushes):
    order, pay_id = pending_order()
    past_its_time(order)

    assert run_once() == 1

    assert calls == [("close", pay_id), ("query", order.biz)]
    assert SandboxPayment.objects.get(pk=pay_id).status == "closed"
    assert status_of(order) == OrderStatus.EXPIRED
    assert Payment.objects.get(order=order).status == PaymentStatus.CLOSED
    assert pushes == [order.biz]
    assert run_once() == 0


def test_a_success_found_when_closing_pays_the_order(sandbox, calls):
    order, pay_id = pending_order()
    payment_decide(payment_id=pay_id, approve=True)
    past_its_time(order)
    assert run_once() == 1
    assert status_of(order) == OrderStatus.PAID
    assert not Flag.objects.exists(), "paid before the shop expired it: nothing to look at"


def test_an_order_nobody_pressed_pay_for_expires(sandbox, calls, pushes):
    order = f.order()
    assert run_once() == 0, "an unpaid order waits for its expiry without any query"
    past_its_time(order)
    assert run_once() == 1
    assert calls == [], "nobody to ask: no provider was ever called for it"
    assert status_of(order) == OrderStatus.EXPIRED
    assert pushes == [order.biz]


def test_an_order_whose_pay_answer_was_lost_is_asked_about_at_its_provider(sandbox, calls):
    order = f.order()
    order_provider_choose(
        biz=order.biz, provider="sandbox", after_close=True
    )  # Pay's first step; then nothing
    past_its_time(order)
    assert run_once() == 1
    assert calls == [("query", order.biz)]
    assert status_of(order) == OrderStatus.EXPIRED


def test_a_payment_started_while_the_order_expired_is_closed_too(sandbox, calls):
    order = f.order()
    order_provider_choose(biz=order.biz, provider="sandbox", after_close=True)
    order = Order.objects.select_related("product").get(pk=order.pk)
    # The shopper's Pay reaches the payment system; the shop has not recorded it yet ...
    started = async_to_sync(SandboxGateway().start)(_request(order))
    # ... when the reconciler finds the order past its time.
    past_its_time(order)
    assert run_once() == 1
    assert calls == [("query", order.biz), ("close", started.payment_id), ("query", order.biz)]
    assert SandboxPayment.objects.get(pk=started.payment_id).status == "closed"
    assert status_of(order) == OrderStatus.EXPIRED
    # The Pay request now finishes: the payment is already on record, closed; nothing is left.
    assert not result_apply(
        biz=order.biz, payment=started, provider="sandbox", source=Source.START
    ).changed
    assert Payment.objects.get(order=order).status == PaymentStatus.CLOSED
    assert status_of(order) == OrderStatus.EXPIRED
    due(order)
    assert run_once() == 0


def test_a_success_after_expiry_is_accepted_as_paid_and_flagged(sandbox, calls, pushes):
    order = f.order()
    order_provider_choose(biz=order.biz, provider="sandbox", after_close=True)
    order = Order.objects.select_related("product").get(pk=order.pk)
    past_its_time(order)
    assert run_once() == 1  # no payment yet: expired
    assert status_of(order) == OrderStatus.EXPIRED
    # A Pay that was in flight created the payment, and the shopper approved it at once.
    started = async_to_sync(SandboxGateway().start)(_request(order))
    payment_decide(payment_id=started.payment_id, approve=True)
    result_apply(biz=order.biz, payment=started, provider="sandbox", source=Source.START)
    due(order)

    assert run_once() == 1

    assert status_of(order) == OrderStatus.PAID
    assert Flag.objects.get(order=order).kind == Flag.Kind.PAID_AFTER_EXPIRY
    assert pushes == [order.biz, order.biz]  # expired, then paid


def _request(order: Order) -> PaymentRequest:
    return PaymentRequest(
        biz=order.biz,
        amount=order.amount,
        currency=order.currency,
        description=order.product.name,
        notify_url=django_settings.SITE_URL + "/payments/notify/sandbox/",
        expire_at=timezone.now() + timedelta(minutes=5),
    )


def test_a_gateway_outage_leaves_the_order_waiting_and_it_is_resolved_later(
    sandbox, settings, caplog
):
    order, pay_id = pending_order()
    payment_decide(payment_id=pay_id, approve=True)
    past_its_time(order)
    with fake_http.answering(503) as down:
        settings.PAYMENT_GATEWAY_URL = down
        with caplog.at_level(logging.INFO, logger="checkout.reconcile"):
            assert run_once() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING, "never expired without the payment system's word"
    assert order.reconcile_after > timezone.now()
    assert "outcome=gateway_error" in caplog.text
    assert run_once() == 0, "rescheduled, not retried in a busy loop"

    settings.PAYMENT_GATEWAY_URL = sandbox.url + "/sandbox/"
    due(order)
    assert run_once() == 1
    assert status_of(order) == OrderStatus.PAID


def test_each_reconcile_step_logs_one_structured_line(sandbox, caplog):
    order, pay_id = pending_order()
    payment_decide(payment_id=pay_id, approve=True)
    due(order)
    with caplog.at_level(logging.INFO, logger="checkout.reconcile"):
        run_once()
    lines = [r.getMessage() for r in caplog.records if r.name == "checkout.reconcile"]
    assert len(lines) == 1
    fields = dict(part.split("=", 1) for part in lines[0].split()[1:])
    assert fields["step"] == "query"
    assert fields["biz"] == order.biz
    assert fields["payment"] == pay_id
    assert fields["outcome"] == "paid"
    assert float(fields["ms"]) >= 0


async def test_the_shoppers_socket_gets_the_expired_panel(sandbox):
    session = await sync_to_async(f.shopper_session)()
    order = await sync_to_async(f.order)(session)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={session.session_key}".encode()
    socket = WebsocketCommunicator(
        application,
        f"/ws/order/{order.biz}/",
        headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)],
    )
    connected, _ = await socket.connect()
    assert connected
    assert 'data-status="unpaid"' in await socket.receive_from()
    await sync_to_async(past_its_time)(order)

    assert await reconcile.reconcile_once() == 1

    assert 'data-status="expired"' in await socket.receive_from(timeout=5)
    await socket.disconnect()


# --- several reconcilers at once (PostgreSQL row locks) ------------------------------------------


def test_a_reconciler_skips_orders_another_one_holds(postgres):
    orders = [f.order() for _ in range(6)]
    for order in orders:
        past_its_time(order)
    holding, release, claimed_by_b = threading.Event(), threading.Event(), []

    def reconciler_a() -> None:
        try:
            with transaction.atomic():
                held = list(locks.orders_due_for_reconcile(timezone.now(), 3))
                assert len(held) == 3
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    a = threading.Thread(target=reconciler_a)
    a.start()
    assert holding.wait(10)
    try:
        # B neither waits for A's rows nor takes them: it gets the other three at once.
        claimed_by_b = reconcile.orders_claim(now=timezone.now())
    finally:
        release.set()
        a.join()
    assert len(claimed_by_b) == 3
    assert {c.biz for c in claimed_by_b} <= {o.biz for o in orders}
    held_bizs = {o.biz for o in orders} - {c.biz for c in claimed_by_b}
    assert len(held_bizs) == 3


def test_two_reconcilers_at_once_handle_each_order_exactly_once(
    postgres, sandbox, calls, pushes, caplog
):
    orders = []
    for i in range(8):
        order, pay_id = pending_order()
        payment_decide(payment_id=pay_id, approve=i % 2 == 0)
        due(order)
        orders.append(order)
    calls.clear()
    start = threading.Barrier(2)
    counts: list[int] = []

    def reconciler() -> None:
        async def one_pass() -> int:
            # Its own worker thread, so its own database connection, as a second process has.
            async with ThreadSensitiveContext():
                try:
                    start.wait(10)
                    return await reconcile.reconcile_once()
                finally:
                    await sync_to_async(connections.close_all)()

        counts.append(asyncio.run(one_pass()))

    with caplog.at_level(logging.INFO, logger="checkout.reconcile"):
        threads = [threading.Thread(target=reconciler) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert sum(counts) == len(orders)
    assert sorted(biz for _, biz in calls) == sorted(o.biz for o in orders)
    steps = [r.getMessage() for r in caplog.records if r.name == "checkout.reconcile"]
    for order in orders:
        assert sum(f"biz={order.biz}" in line for line in steps) == 1
    assert sorted(pushes) == sorted(o.biz for o in orders)
    assert [status_of(o) for o in orders] == [
        OrderStatus.PAID if i % 2 == 0 else OrderStatus.FAILED for i in range(len(orders))
    ]


# --- the command ---------------------------------------------------------------------------------


def reconcile_command_env(sandbox, **extra: str) -> dict[str, str]:
    """`manage.py reconcile` as its own process, on this test's database and sandbox (PostgreSQL:
    the SQLite test database is in memory, which another process cannot open)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "PAYMENT_GATEWAY_URL": sandbox.url + "/sandbox/",
        "SITE_URL": sandbox.url,
        **extra,
    }


def test_manage_py_reconcile_once_makes_one_pass_and_exits(postgres, sandbox):
    order, pay_id = pending_order()
    payment_decide(payment_id=pay_id, approve=True)
    due(order)
    done = subprocess.run(
        [sys.executable, "manage.py", "reconcile", "--once"],
        cwd=ROOT,
        env=reconcile_command_env(sandbox),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Reconciled 1 orders." in done.stdout
    assert f"biz={order.biz}" in done.stderr and "outcome=paid" in done.stderr
    assert status_of(order) == OrderStatus.PAID


def test_a_reconciler_process_pushes_to_the_shoppers_server_through_redis(postgres, sandbox):
    """Scaled deployment: the shopper's socket lives in a server process, the reconciler in its
    own; the announcement crosses over Redis."""
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/3"
    require(_answers(redis_url), f"needs Redis at {redis_url}")
    from django.utils.module_loading import import_string

    from shop.settings import REDIS_LAYERS

    order, pay_id = pending_order()
    payment_decide(payment_id=pay_id, approve=True)
    due(order)
    env = reconcile_command_env(sandbox, REDIS_URL=redis_url)
    # The layer a server process with this REDIS_URL uses (pub/sub unless REDIS_CHANNEL_LAYER says).
    layer_class = import_string(REDIS_LAYERS[env.get("REDIS_CHANNEL_LAYER", "pubsub")])

    async def reconcile_in_another_process() -> tuple[int, str, dict]:
        layer = layer_class(hosts=[redis_url])
        channel = await layer.new_channel()
        await layer.group_add(order_group(order.biz), channel)  # as the shopper's socket does
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "manage.py", "reconcile", "--once",
                cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(process.communicate(), 60)
            message = await asyncio.wait_for(layer.receive(channel), 10)
        finally:
            await layer.group_discard(order_group(order.biz), channel)
        return process.returncode, err.decode(), message

    code, err, message = async_to_sync(reconcile_in_another_process)()
    assert code == 0, err
    assert message["type"] == "order.changed"
    assert status_of(order) == OrderStatus.PAID


def _answers(redis_url: str) -> bool:
    url = urlsplit(redis_url)
    try:
        with socket.create_connection((url.hostname, url.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _database_url(database: dict) -> str:
    user = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    return f"postgres://{user}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
