"""Whatever anyone sends to a notification route, the shop answers 2xx or 4xx, stores the request
(a refused one with its first KiB, its length and its hash), changes no order or payment unless the
notification is signed with the secret, and logs no error."""

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx
from django.conf import settings as django_settings
from hypothesis import given, strategies as st

from checkout.models import Order, OrderStatus
from checkout.services.notifications import MAX_BODY_BYTES, REFUSED_BODY_BYTES
from tests.checkout import factories as f
from tests.checkout.fuzz import (
    DELETE,
    FuzzTestCase,
    Sent,
    content_types,
    examples,
    header_text,
    json_values,
    other_headers,
    remote_addrs,
    replaced,
)

ROUTES = ["/payments/notify/sandbox/"]
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
        value = draw(st.one_of(json_values, st.just(DELETE)))
        return json.dumps(replaced(notice, draw(paths), value)).encode(), False
    if kind == "number":  # JSON numbers json.dumps cannot write: thousands of digits, exponents
        number = draw(st.sampled_from([b"9" * 5000, b"1e400", b"-0", b"1.0", b"2147483648"]))
        field = draw(st.sampled_from([b'"amount"', b'"created"']))
        text = json.dumps(notice).encode()
        start = text.index(field + b": ") + len(field) + 2
        end = text.index(b",", start)
        return text[:start] + number + text[end:], False
    encoding = draw(st.sampled_from(["utf-16", "utf-32", "utf-8-sig", "utf-16-be"]))
    return json.dumps(notice).encode(encoding), False


@st.composite
def requests(draw, order: Order) -> Sent:
    body, well_formed = draw(bodies(order))
    header, signed, exact = draw(signature_headers(body))
    headers = draw(other_headers)
    if header is not None:
        headers["Sandbox-Signature"] = header
    return Sent(
        body=body,
        content_type=draw(content_types),
        headers=headers,
        remote_addr=draw(remote_addrs),
        signed=signed,
        genuine=well_formed and exact,
    )


class NotifyFuzzTest(FuzzTestCase):
    def check(self, data, send: Callable[[str, Sent], httpx.Response]) -> None:
        order = f.order(status=OrderStatus.PENDING)
        route = data.draw(st.sampled_from(ROUTES))
        sent = data.draw(requests(order))

        response, _ = self.send_and_check(sent, lambda: send(route, sent))

        # The sandbox's own answers: 400 to what it refuses, 200 to a notice it takes.
        if not sent.signed:
            self.assertEqual(response.status_code, 400)
        elif sent.genuine:
            self.assertEqual(response.status_code, 200)

    @examples(200)
    @given(st.data())
    def test_any_request_is_answered_stored_and_changes_nothing_unless_genuine(self, data):
        self.check(data, self.post)
