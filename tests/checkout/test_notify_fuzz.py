"""Whatever anyone sends to a notification route, the shop answers 2xx or 4xx, stores the request
(a refused one with its first KiB, its length and its hash), changes no order or payment unless the
notification is signed with the secret, and logs no error."""

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from hypothesis import HealthCheck, event, given, settings, strategies as st
from hypothesis.extra.django import TestCase

from checkout.models import Flag, Notification, Order, OrderStatus, Payment
from checkout.services.notifications import MAX_BODY_BYTES, REFUSED_BODY_BYTES
from tests.checkout import factories as f

ROUTES = ["/payments/notify/sandbox/"]
KEPT_WHOLE = {
    Notification.Verdict.ACCEPTED,
    Notification.Verdict.UNKNOWN_ORDER,
    Notification.Verdict.RECEIVED,
}
HEX = "0123456789abcdef"
SIZES = [
    REFUSED_BODY_BYTES - 1,
    REFUSED_BODY_BYTES,
    REFUSED_BODY_BYTES + 1,
    60 * 1024,
    MAX_BODY_BYTES - 1,
    MAX_BODY_BYTES,
    MAX_BODY_BYTES + 1,
    MAX_BODY_BYTES + 4096,
]


def _v1(body: bytes, secret: str, at: str) -> str:
    return hmac.new(secret.encode(), at.encode() + b"." + body, hashlib.sha256).hexdigest()


def _now() -> str:
    return str(int(time.time()))


@dataclass
class Sent:
    """One request as sent; `signed` when its header carries the secret's signature, fresh."""

    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    remote_addr: str = "127.0.0.1"
    signed: bool = False
    # Exactly what the payment system sends: a notice in the contract's format, signed as it signs.
    genuine: bool = False


# Header text as a server hands it to Django: any bytes, read as latin-1 (so "²" as itself, and
# other scripts' digits as their UTF-8 bytes).
header_text = st.one_of(
    st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
    st.text(max_size=40),
)
timestamps = st.one_of(
    st.builds(_now),
    st.integers(min_value=-(10**12), max_value=10**13).map(str),
    st.integers(min_value=13, max_value=6000).map(lambda n: "9" * n),
    st.sampled_from(["²", "¹²³", "١٧٦٤٢٢٢٠٠٠", "𝟙𝟚", "½", "+1", " 1", "1_0", "0x10", "1e9", ""]),
    header_text,
)
hexes = st.one_of(
    st.text(HEX, min_size=64, max_size=64),
    st.text(HEX + "ABCDEF", max_size=130),
    st.text("٠١٢٣٤٥٦٧٨٩" + HEX, min_size=64, max_size=64),
    header_text,
)
parts = st.one_of(
    st.tuples(st.just("t"), timestamps).map("=".join),
    st.tuples(st.just("v1"), hexes).map("=".join),
    st.tuples(st.sampled_from(["", "v0", "v2", "T", "V1", " t", "t ", "t=t"]), header_text).map(
        "=".join
    ),
    st.sampled_from(["", " ", "=", "==", "t", "v1"]),
    header_text,
)


@st.composite
def signature_headers(draw, body: bytes) -> tuple[str | None, bool, bool]:
    """A Sandbox-Signature value (None: no header), whether it carries a fresh signature with the
    secret, and whether it is exactly as the payment system writes it."""
    secret = django_settings.SANDBOX_NOTIFY_SECRET
    kind = draw(
        st.sampled_from(["genuine", "genuine+junk", "other secret", "stale", "none", "junk"])
    )
    now = _now()
    if kind == "none":
        return None, False, False
    if kind == "genuine":
        return f"t={now},v1={_v1(body, secret, now)}", True, True
    if kind == "other secret":
        return f"t={now},v1={_v1(body, 'whsec_not_the_secret', now)}", False, False
    if kind == "stale":
        at = str(int(now) + draw(st.sampled_from([-1, 1])) * draw(st.integers(301, 10**12)))
        return f"t={at},v1={_v1(body, secret, at)}", False, False
    junk = draw(st.lists(parts, max_size=8))
    if draw(st.booleans()):  # many parts, or one very long one
        many = draw(st.integers(50, 2000))
        junk += draw(st.sampled_from([[f"v1={'0' * 64}"] * many, ["v1=" + "a" * many * 50]]))
    if kind == "genuine+junk":
        junk.insert(draw(st.integers(0, len(junk))), f"t={now},v1={_v1(body, secret, now)}")
    separator = draw(st.sampled_from([",", ", ", ";", " ,"]))
    return separator.join(junk), kind == "genuine+junk", False


_DELETE = object()


def _replaced(document: dict, path: tuple[str, ...], value: object) -> dict:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return copy


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
paths = st.sampled_from(
    [
        ("id",),
        ("type",),
        ("created",),
        ("data",),
        ("data", "payment_id"),
        ("data", "out_trade_no"),
        ("data", "amount"),
        ("data", "currency"),
        ("data", "status"),
        ("extra",),
        ("data", "extra"),
    ]
)


@st.composite
def bodies(draw, order: Order) -> tuple[bytes, bool]:
    """A body, and whether it is a well-formed notice for `order` within the limit."""
    notice = json.loads(f.notice_body(order))
    kind = draw(
        st.sampled_from(
            ["bytes", "size", "notice", "padded", "nested", "wrong type", "number", "encoded"]
        )
    )
    if kind == "bytes":
        return draw(st.binary(max_size=2048)), False
    if kind == "size":
        pattern = draw(st.binary(min_size=1, max_size=8))
        size = draw(st.sampled_from(SIZES))
        return (pattern * (size // len(pattern) + 1))[:size], False
    if kind == "notice":
        return f.notice_body(order, kind=draw(st.sampled_from(["succeeded", "failed"]))), True
    if kind == "padded":  # a genuine notice just under, at, or just over the limit
        body = json.dumps({**notice, "pad": ""}).encode()
        size = draw(st.sampled_from([MAX_BODY_BYTES - 1, MAX_BODY_BYTES, MAX_BODY_BYTES + 1]))
        padded = body[:-2] + b"x" * (size - len(body)) + b'"}'
        return padded, len(padded) <= MAX_BODY_BYTES
    if kind == "nested":
        depth = draw(st.integers(1, 40_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        deep = opener * depth + b"1" + closer * depth
        if draw(st.booleans()):  # inside a notice, so it reaches the parser of its fields
            deep = json.dumps({**notice, "data": None}).encode().replace(b"null", deep)
        return deep, False
    if kind == "wrong type":
        value = draw(st.one_of(json_values, st.just(_DELETE)))
        return json.dumps(_replaced(notice, draw(paths), value)).encode(), False
    if kind == "number":  # JSON numbers json.dumps cannot write: thousands of digits, exponents
        number = draw(st.sampled_from([b"9" * 5000, b"1e400", b"-0", b"1.0", b"2147483648"]))
        field = draw(st.sampled_from([b'"amount"', b'"created"']))
        text = json.dumps(notice).encode()
        start = text.index(field + b": ") + len(field) + 2
        end = text.index(b",", start)
        return text[:start] + number + text[end:], False
    encoding = draw(st.sampled_from(["utf-16", "utf-32", "utf-8-sig", "utf-16-be"]))
    return json.dumps(notice).encode(encoding), False


content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-16",
            "application/json; charset=no-such-charset",
            "text/plain",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "",
        ]
    ),
    st.text(st.characters(max_codepoint=127), max_size=40),
)
other_headers = st.dictionaries(
    st.sampled_from(
        [
            "User-Agent",
            "Accept-Language",
            "Cookie",
            "Content-Encoding",
            "Accept",
            "X-Forwarded-For",
            "X-Forwarded-Proto",
            "Origin",
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


@st.composite
def requests(draw, order: Order) -> Sent:
    body, well_formed = draw(bodies(order))
    header, signed, exact = draw(signature_headers(body))
    headers = draw(other_headers)
    if header is not None:
        headers["Sandbox-Signature"] = header
    # A server reads header bytes as latin-1; text beyond it arrives as its UTF-8 bytes.
    headers = {name: value.encode().decode("latin-1") for name, value in headers.items()}
    return Sent(
        body=body,
        content_type=draw(content_types),
        headers=headers,
        remote_addr=draw(remote_addrs),
        signed=signed,
        genuine=well_formed and exact,
    )


def _money() -> tuple:
    """What a notification may change: orders, payments, flags."""
    return (
        list(Order.objects.order_by("pk").values_list("pk", "status", "version", "paid_at")),
        list(Payment.objects.order_by("pk").values_list("pk", "status", "amount")),
        Flag.objects.count(),
    )


class NotifyFuzzTest(TestCase):
    @pytest.fixture(autouse=True)
    def _logs(self, caplog, monkeypatch):
        # The shop's and Django's loggers do not propagate to caplog's handler by default.
        for name in ("checkout", "django"):
            monkeypatch.setattr(logging.getLogger(name), "propagate", True)
        caplog.set_level(logging.INFO)
        self.logs = caplog

    def check(self, data, send: Callable) -> None:
        order = f.order(status=OrderStatus.PENDING)
        route = data.draw(st.sampled_from(ROUTES))
        sent = data.draw(requests(order))
        before, stored = _money(), Notification.objects.count()
        self.logs.clear()

        response = send(sent, route)

        self.assertTrue(200 <= response.status_code < 500, response.status_code)
        self.assertEqual(Notification.objects.count(), stored + 1, "every request is stored")
        record = Notification.objects.order_by("pk").last()
        event(f"{response.status_code} {record.verdict} {record.outcome or '-'}")
        read = sent.body[: MAX_BODY_BYTES + 1]  # the view stops reading there
        self.assertEqual(record.body_length, len(read))
        self.assertEqual(record.body_sha256, hashlib.sha256(read).hexdigest())
        kept = read if record.verdict in KEPT_WHOLE else read[:REFUSED_BODY_BYTES]
        self.assertEqual(bytes(record.body), kept)
        if not sent.signed:
            self.assertEqual(response.status_code, 400)
            self.assertEqual(_money(), before, "only a genuine notification changes anything")
        elif sent.genuine:
            self.assertEqual(response.status_code, 200)
            self.assertEqual(record.verdict, Notification.Verdict.ACCEPTED)
        errors = [r for r in self.logs.records if r.levelno >= logging.ERROR or r.exc_info]
        self.assertEqual(errors, [], "nothing an outsider sends is logged as an error")

    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def test_any_request_is_answered_stored_and_changes_nothing_unless_genuine(self, data):
        def send(sent: Sent, route: str):
            return self.client.generic(
                "POST",
                route,
                sent.body,
                content_type=sent.content_type,
                headers=sent.headers,
                REMOTE_ADDR=sent.remote_addr,
            )

        self.check(data, send)

    @settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def test_the_same_holds_on_djangos_async_chain(self, data):
        @async_to_sync
        async def send(sent: Sent, route: str):
            return await self.async_client.generic(
                "POST", route, sent.body, content_type=sent.content_type, headers=sent.headers
            )

        self.check(data, send)
