"""For operators: /healthz (database and channel layer) and Prometheus metrics at /metrics."""

import os
import socket
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.utils import timezone

from checkout import metrics
from checkout.models import Order, OrderStatus, Payment
from shop.settings import REDIS_LAYERS
from tests.checkout import factories as f
from tests.checkout.test_consumer import connect
from tests.conftest import require


def sample(name: str, **labels) -> float:
    """A sample's current value, read from the shop's metric objects (no database query)."""
    collectors = [
        metrics.NOTIFICATIONS,
        metrics.RESULT_PUSH_SECONDS,
        metrics.OPEN_SOCKETS,
        metrics.SOCKETS_REFUSED,
    ]
    if name.startswith("checkout_pending_payments"):
        collectors = [metrics.PendingPaymentsCollector()]
    for collector in collectors:
        for family in collector.collect():
            for found in family.samples:
                if found.name == name and found.labels == labels:
                    return found.value
    return 0.0


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/6"


def redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


def use_channel_layer(settings, backend: str, url: str) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": {"hosts": [url]}}}
    channel_layers.backends.clear()


@pytest.fixture(params=["pubsub", "core"])
def redis_channel_layer(settings, request):
    """The Redis channel layers the shop can run on (pub/sub by default), on a real Redis."""
    url = redis_url()
    require(redis_answers(url), f"needs Redis at {url}")
    use_channel_layer(settings, REDIS_LAYERS[request.param], url)
    yield
    channel_layers.backends.clear()


@pytest.fixture(params=["pubsub", "core"])
def broken_channel_layer(settings, request):
    """A Redis channel layer on a port nobody listens on: every send fails."""
    use_channel_layer(settings, REDIS_LAYERS[request.param], "redis://127.0.0.1:1/0")
    yield
    channel_layers.backends.clear()


@pytest.mark.django_db
async def test_healthz_is_200_when_database_and_channel_layer_answer(async_client):
    response = await async_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}


@pytest.mark.django_db
async def test_healthz_round_trips_a_message_through_redis(async_client, redis_channel_layer):
    response = await async_client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["channel_layer"] == "ok"


@pytest.mark.django_db
async def test_healthz_probes_on_pub_sub_reuse_one_subscription(async_client, settings):
    url = redis_url()
    require(redis_answers(url), f"needs Redis at {url}")
    use_channel_layer(settings, REDIS_LAYERS["pubsub"], url)
    try:
        for _ in range(3):
            assert (await async_client.get("/healthz")).status_code == 200
        from channels.layers import get_channel_layer

        # pub/sub keeps a subscription per channel it was asked for: one, not one per probe.
        assert len(get_channel_layer()._get_layer().channels) == 1
    finally:
        channel_layers.backends.clear()


@pytest.mark.django_db
async def test_healthz_answers_again_after_a_probe_that_timed_out(
    async_client, redis_channel_layer, monkeypatch
):
    from checkout.views import operators

    monkeypatch.setattr(operators, "CHANNEL_LAYER_TIMEOUT", 0)
    assert (await async_client.get("/healthz")).status_code == 503
    monkeypatch.setattr(operators, "CHANNEL_LAYER_TIMEOUT", 2.0)
    response = await async_client.get("/healthz")
    assert response.status_code == 200, response.json()


@pytest.mark.django_db
async def test_healthz_is_503_naming_the_channel_layer_when_it_does_not_answer(
    async_client, broken_channel_layer
):
    response = await async_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and body["checks"]["database"] == "ok"
    assert body["checks"]["channel_layer"] == "fail"  # the reason is logged, not shown


async def test_healthz_is_503_naming_the_database_when_it_cannot_be_queried(async_client):
    # No django_db mark: pytest-django refuses every query, as a database that is down would.
    response = await async_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["channel_layer"] == "ok"
    assert body["checks"]["database"] == "fail"


@pytest.mark.django_db
def test_metrics_are_served_to_localhost_in_prometheus_format(client):
    response = client.get("/metrics")  # the test client comes from 127.0.0.1
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in (
        "checkout_notifications_total",
        "checkout_result_push_seconds_bucket",
        "checkout_open_sockets",
        'checkout_pending_payments{le="+Inf"}',
    ):
        assert name in text, name


@pytest.mark.django_db
def test_metrics_are_refused_to_other_addresses_without_the_token(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 403
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7", headers=wrong).status_code == 403
    right = {"Authorization": "Bearer s3cret"}
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7", headers=right).status_code == 200


@pytest.mark.django_db
def test_metrics_without_a_token_setting_refuse_any_bearer(client, settings):
    settings.METRICS_TOKEN = ""
    headers = {"Authorization": "Bearer "}
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7", headers=headers).status_code == 403


@pytest.mark.django_db(transaction=True)
async def test_notifications_are_counted_by_verdict_and_outcome():
    order = await sync_to_async(f.order)(status=OrderStatus.PENDING)
    paid = sample(
        "checkout_notifications_total", provider="sandbox", verdict="accepted", outcome="paid"
    )
    forged = sample(
        "checkout_notifications_total", provider="sandbox", verdict="bad_signature", outcome="none"
    )
    body = f.notice_body(order)
    await f.anotify(body)
    await f.anotify(body, secret="wrong")
    assert (
        sample(
            "checkout_notifications_total", provider="sandbox", verdict="accepted", outcome="paid"
        )
        == paid + 1
    )
    assert sample(
        "checkout_notifications_total", provider="sandbox", verdict="bad_signature", outcome="none"
    ) == (forged + 1)


@pytest.mark.django_db(transaction=True)
async def test_open_sockets_and_result_to_push_latency_are_measured():
    session = await sync_to_async(f.shopper_session)()
    order = await sync_to_async(f.order)(session, status=OrderStatus.PENDING)
    sockets = sample("checkout_open_sockets")
    pushes = sample("checkout_result_push_seconds_count")
    socket = connect(order.biz, session)
    await socket.connect()
    await socket.receive_from()
    assert sample("checkout_open_sockets") == sockets + 1

    body = f.notice_body(order)
    await f.anotify(body)
    assert 'data-status="paid"' in await socket.receive_from()
    assert sample("checkout_result_push_seconds_count") == pushes + 1

    await socket.disconnect()
    assert sample("checkout_open_sockets") == sockets


@pytest.mark.django_db
def test_pending_payments_are_counted_by_age_at_scrape_time():
    now = timezone.now()
    for age in (timedelta(seconds=10), timedelta(minutes=10), timedelta(hours=2)):
        order = f.order(status=OrderStatus.PENDING)
        payment = f.payment(order)
        Payment.objects.filter(pk=payment.pk).update(created_at=now - age)
    f.order(status=OrderStatus.PAID)  # not pending: never counted
    assert Order.objects.count() == 4
    counts = {
        le: sample("checkout_pending_payments", le=le)
        for le in ("60", "300", "900", "3600", "+Inf")
    }
    assert counts == {"60": 1, "300": 1, "900": 2, "3600": 2, "+Inf": 3}
