"""What the shop writes to its logs: one structured line per notification and per reconcile step,
and never a secret, whatever happens (forgeries, failures, outages), even at DEBUG."""

import logging

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from checkout import reconcile
from checkout.models import Order, OrderStatus
from checkout.services import results
from checkout.services.payments import PaymentNotStarted, payment_start
from sandbox.knobs import knobs_update
from sandbox.payments import payment_decide
from tests import asgi, fake_http
from tests.checkout import factories as f

URL = f.SANDBOX_ROUTE
SECRETS = {
    "SANDBOX_NOTIFY_SECRET": "whsec_LOGTEST_notify_5f0c1e",
    "SANDBOX_API_KEY": "sk_LOGTEST_api_9a7d44",
    "SECRET_KEY": "LOGTEST-django-secret-key-3b81a6e2c4d0",
}


@pytest.fixture
def logs(caplog, monkeypatch):
    """Everything logged at DEBUG, including the shop's own loggers (which do not propagate)."""
    for name in ("checkout", "sandbox"):
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
    caplog.set_level(logging.DEBUG)
    for name in ("checkout", "sandbox", "httpx", "httpcore", "django"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def secrets(settings):
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    return SECRETS


def everything_logged(caplog) -> str:
    # caplog.text is formatted with tracebacks; the records' args may hold more than the message.
    parts = [caplog.text]
    for record in caplog.records:
        parts += [record.getMessage(), repr(record.args), str(record.exc_info)]
    return "\n".join(parts)


@pytest.mark.django_db(transaction=True)
def test_no_secret_reaches_the_logs(live_server, settings, secrets, logs, monkeypatch):
    settings.PAYMENT_GATEWAY_URL = live_server.url + "/sandbox/"
    settings.SITE_URL = live_server.url
    knobs_update({"drop": True})
    # A payment start, with the API key on the wire, and its notification, signed and forged.
    order = Order.objects.select_related("product").get(pk=f.order().pk)
    async_to_sync(payment_start)(order=order, provider="sandbox")
    order.refresh_from_db()
    payment_decide(payment_id=order.payment.payment_id, approve=True)
    body = f.notice_body(order, pay_id=order.payment.payment_id)
    assert f.notify(body).status_code == 200
    assert f.notify(body, secret="forged").status_code == 400
    assert asgi.post(URL, b"{}", content_type="application/json").status_code == 400
    # A notification that cannot be applied (logged with its traceback).
    other = f.order(status=OrderStatus.PENDING)
    with monkeypatch.context() as patch:
        patch.setattr(results, "result_apply", _broken)
        assert f.notify(f.notice_body(other)).status_code == 500
    # Reconcile steps: an outage, then an answer.
    Order.objects.filter(pk=other.pk).update(reconcile_after=timezone.now(), provider="sandbox")
    with fake_http.answering(401) as down:
        settings.PAYMENT_GATEWAY_URL = down
        assert async_to_sync(reconcile.reconcile_once)() == 1
        unpaid = Order.objects.select_related("product").get(pk=f.order().pk)
        with pytest.raises(PaymentNotStarted):
            async_to_sync(payment_start)(order=unpaid, provider="sandbox")
    settings.PAYMENT_GATEWAY_URL = live_server.url + "/sandbox/"
    Order.objects.filter(pk=other.pk).update(reconcile_after=timezone.now())
    async_to_sync(reconcile.reconcile_once)()

    logged = everything_logged(logs)
    assert (
        "notification provider=sandbox id=" in logged and "reconcile step=" in logged
    )  # the lines were captured
    assert "payment start failed" in logged
    for name, value in secrets.items():
        assert value not in logged, f"{name} was written to the logs"


def _broken(**kwargs):
    raise RuntimeError("database went away")


@pytest.mark.django_db
def test_each_notification_logs_one_structured_line(caplog):
    order = f.order(status=OrderStatus.PENDING)
    body = f.notice_body(order)
    with caplog.at_level(logging.INFO, logger="checkout"):
        f.notify(body)
        f.notify(body, secret="forged")
    lines = [r.getMessage() for r in caplog.records if r.name == "checkout.services.notifications"]
    assert len(lines) == 2
    accepted, forged = (dict(p.split("=", 1) for p in line.split()[1:]) for line in lines)
    assert accepted["event"].startswith("evt_") and accepted["biz"] == order.biz
    assert (accepted["verdict"], accepted["outcome"]) == ("accepted", "paid")
    assert float(accepted["ms"]) >= 0
    assert (forged["event"], forged["biz"], forged["verdict"]) == ("-", "-", "bad_signature")
    assert forged["outcome"] == "-"
