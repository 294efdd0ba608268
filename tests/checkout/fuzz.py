"""What the notification fuzz tests share: the sandbox's (`test_notify_fuzz.py`) and the real
providers' (`test_providers_notify.py`). A request as sent, strategies for what anyone can put in
one, what a notification may change (`money`), and `FuzzTestCase.send_and_check`: what holds for
every answer, whoever the route is for. Each test draws its own requests and adds its route's own
checks."""

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, settings, strategies as st
from hypothesis.extra.django import TestCase

from checkout.models import Flag, Notification, Order, Payment
from checkout.services.notifications import MAX_BODY_BYTES, REFUSED_BODY_BYTES
from tests import asgi

KEPT_WHOLE = {
    Notification.Verdict.ACCEPTED,
    Notification.Verdict.UNKNOWN_ORDER,
    Notification.Verdict.RECEIVED,
}
DELETE = object()  # as a value for `replaced`: the field removed


@dataclass
class Sent:
    """One request as sent. `signed`: the payment system's signature is on it and fresh, so the
    shop may act on it; `genuine`: exactly a notice the payment system sends about the order, so it
    must be acknowledged (and `pays`: it pays the order)."""

    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    remote_addr: str = "127.0.0.1"
    signed: bool = False
    genuine: bool = False
    pays: bool = False


# Header text as a server hands it to Django: any bytes, read as latin-1 (so "²" as itself, and
# other scripts' digits as their UTF-8 bytes).
header_text = st.one_of(
    st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
    st.text(max_size=40),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**31 - 2, max_value=2**70)
    | st.floats()
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=utf-16",
            "application/json; charset=no-such-charset",
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            "text/plain",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
    st.text(st.characters(max_codepoint=127), max_size=40),
)
# Headers no route reads, as browsers, proxies and htmx send them.
other_headers = st.dictionaries(
    st.sampled_from(
        [
            "User-Agent",
            "Accept",
            "Accept-Language",
            "Cookie",
            "Content-Encoding",
            "Origin",
            "Request-ID",
            "X-Forwarded-For",
            "X-Forwarded-Proto",
            "HX-Request",
            "HX-Current-URL",
        ]
    ),
    header_text,
    max_size=4,
)
remote_addrs = st.one_of(
    st.sampled_from(["127.0.0.1", "::1", "2001:db8::1", ""]), header_text, st.text(min_size=65)
)


def replaced(document: Any, path: tuple, value: object) -> Any:
    """A copy of the JSON `document` with the value at `path` set to `value` (DELETE: removed)."""
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return copy


def examples(count: int) -> settings:
    """Hypothesis' settings for a fuzz test of `count` requests, each a round trip through Django
    and the database (so no deadline, and big draws are fine)."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def money() -> tuple:
    """Orders, payments and flags, as a notification may change them."""
    return (
        list(
            Order.objects.order_by("pk").values_list(
                "pk", "status", "version", "paid_at", "payment_id", "provider"
            )
        ),
        list(Payment.objects.order_by("pk").values_list("pk", "payment_id", "status", "amount")),
        list(Flag.objects.order_by("pk").values_list("order_id", "kind")),
    )


class FuzzTestCase(TestCase):
    """Sends drawn requests to the shop's ASGI application and checks what every answer must be."""

    @pytest.fixture(autouse=True)
    def _logs(self, caplog, monkeypatch):
        # The shop's and Django's loggers do not propagate to caplog's handler by default.
        for name in ("checkout", "django"):
            monkeypatch.setattr(logging.getLogger(name), "propagate", True)
        caplog.set_level(logging.INFO)
        self.logs = caplog

    def post(self, route: str, sent: Sent) -> httpx.Response:
        return asgi.post(
            route,
            sent.body,
            content_type=sent.content_type,
            headers=sent.headers,
            client=(sent.remote_addr, 50000),
        )

    def send_and_check(
        self, sent: Sent, send: Callable[[], httpx.Response]
    ) -> tuple[httpx.Response, Notification]:
        """Send `sent` (`send()`) and check that it is answered 2xx or 4xx, stored (a refused one
        with its first KiB, its length and its hash), refused and changes nothing unless signed,
        accepted if genuine, and logs no error. The answer and the stored notification."""
        before, stored = money(), Notification.objects.count()
        self.logs.clear()

        response = send()

        self.assertTrue(200 <= response.status_code < 500, response.status_code)
        self.assertEqual(Notification.objects.count(), stored + 1, "every request is stored")
        record = Notification.objects.order_by("pk").last()
        event(f"{record.gateway} {response.status_code} {record.verdict} {record.outcome or '-'}")
        read = sent.body[: MAX_BODY_BYTES + 1]  # the endpoint reads no further
        self.assertEqual(record.body_length, len(read))
        self.assertEqual(record.body_sha256, hashlib.sha256(read).hexdigest())
        kept = read if record.verdict in KEPT_WHOLE else read[:REFUSED_BODY_BYTES]
        self.assertEqual(bytes(record.body), kept)
        if not sent.signed:
            self.assertGreaterEqual(response.status_code, 400)
            self.assertEqual(money(), before, "only a genuine notification changes anything")
        if sent.genuine:
            self.assertLess(response.status_code, 300)
            self.assertEqual(record.verdict, Notification.Verdict.ACCEPTED)
        errors = [r for r in self.logs.records if r.levelno >= logging.ERROR or r.exc_info]
        self.assertEqual(errors, [], "nothing anyone sends is logged as an error")
        return response, record
