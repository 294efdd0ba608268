"""The real payment providers (Alipay, WeChat Pay, Stripe) as the shop's tests meet them: each
provider's settings made from keys generated for the test run and written to files, its local fake
from `tests.fakes` (used offline: only its state and its signing, no server), the payment Pay would
have recorded for an order, and notices signed exactly as the provider signs them.

    providers = enable(settings, tmp_path, "alipay", "stripe")  # pytest-django's `settings`
    alipay = providers["alipay"]
    payment_id = alipay.start(order)  # the order pending, with the payment Pay records
    notice = alipay.success(order)  # Notice(body, headers, content_type)
    response = post(alipay, notice)
    alipay.assert_accepted(response)

Setting the providers' settings through `settings` drops the gateways built from older ones
(`checkout.gateways.settings_changed`), so each test verifies with the keys it wrote.

The keys (`key`), the fakes made with them (`alipay_fake`, `wechatpay_fake`) and the shop's
settings for a fake (`use_fake`) serve `tests.checkout.provider_fakes` too, where the fakes are
served and the settings point at them.
"""

import base64
import functools
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, generate_private_key

from checkout.models import Order, OrderStatus, Payment
from tests import asgi
from tests.fakes import private_pem, public_pem, rsa_sign
from tests.fakes.alipay import FakeAlipay, Trade as AlipayTrade, beijing
from tests.fakes.stripe import FakeStripe
from tests.fakes.wechatpay import FakeWechatPay, Trade as WechatTrade

FORM = "application/x-www-form-urlencoded; charset=utf-8"
JSON = "application/json"
NAMES = ("alipay", "wechatpay", "stripe")
ALIPAY_APP_ID = "2021000000000001"
# The address of a fake that is not served: nothing listens there (a notice needs no call to the
# provider).
NOWHERE = "http://127.0.0.1:9"


# Keys, fakes and the shop's settings for them.


@functools.cache
def key(role: str) -> RSAPrivateKey:
    """An RSA key per role ("alipay", "alipay app", "wechatpay platform", ...), made once per test
    run: 2048-bit keys take a while to make."""
    return generate_private_key(public_exponent=65537, key_size=2048)


def alipay_fake() -> FakeAlipay:
    """Alipay's fake: it signs with the "alipay" key and knows the shop by the "alipay app" key."""
    return FakeAlipay(
        app_id=ALIPAY_APP_ID,
        app_public_key=public_pem(key("alipay app")),
        alipay_private_key=private_pem(key("alipay")),
    )


def wechatpay_fake() -> FakeWechatPay:
    return FakeWechatPay(
        merchant_key=key("wechatpay merchant"), platform_key=key("wechatpay platform")
    )


def use_fake(settings, fake: FakeAlipay | FakeWechatPay | FakeStripe, directory: Path) -> None:
    """Set the shop's settings for `fake`'s provider (`fake` from `alipay_fake`, `wechatpay_fake`,
    or any FakeStripe): its ids and secrets, its keys in files written under `directory`, and its
    address (NOWHERE while it is not served). `settings`: pytest-django's fixture."""

    def key_file(name: str, pem: str) -> str:
        (directory / name).write_text(pem)
        return str(directory / name)

    match fake:
        case FakeAlipay():
            values = {
                "ALIPAY_APP_ID": fake.app_id,
                "ALIPAY_PRIVATE_KEY_FILE": key_file(
                    "alipay-app.pem", private_pem(key("alipay app"))
                ),
                "ALIPAY_PUBLIC_KEY_FILE": key_file("alipay.pem", public_pem(key("alipay"))),
                "ALIPAY_GATEWAY_URL": fake.url or f"{NOWHERE}/gateway.do",
            }
        case FakeWechatPay():
            values = {
                "WECHATPAY_MCHID": fake.mchid,
                "WECHATPAY_APPID": fake.appid,
                "WECHATPAY_APIV3_KEY": fake.apiv3_key,
                "WECHATPAY_CERT_SERIAL": fake.cert_serial,
                "WECHATPAY_PRIVATE_KEY_FILE": key_file(
                    "wechatpay-merchant.pem", private_pem(fake.merchant_key)
                ),
                "WECHATPAY_PUBLIC_KEY_ID": fake.public_key_id,
                "WECHATPAY_PUBLIC_KEY_FILE": key_file(
                    "wechatpay.pem", public_pem(fake.platform_key)
                ),
                "WECHATPAY_API_URL": fake.url or NOWHERE,
            }
        case FakeStripe():
            values = {
                "STRIPE_SECRET_KEY": fake.secret_key,
                "STRIPE_WEBHOOK_SECRET": fake.webhook_secret,
                "STRIPE_API_URL": fake.url or NOWHERE,
            }
        case _:
            raise TypeError(f"no provider settings for {fake!r}")
    for name, value in values.items():
        setattr(settings, name, value)


@dataclass(frozen=True)
class Notice:
    """A request to a notification route: body, headers, content type."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON


def post(provider: "Provider", notice: Notice, **extra):
    """POST `notice` to `provider`'s route (`tests.asgi.post`'s keyword arguments)."""
    return asgi.post(
        provider.route,
        notice.body,
        content_type=notice.content_type,
        headers=notice.headers,
        **extra,
    )


async def apost(provider: "Provider", notice: Notice):
    """`post` from a running event loop."""
    return await asgi.apost(
        provider.route, notice.body, content_type=notice.content_type, headers=notice.headers
    )


def ghost(amount: int = 1999) -> Order:
    """An order the shop does not have (never saved): a notice about it is about an unknown order."""
    return Order(biz=secrets.token_hex(16), amount=amount, currency="CNY")


class Provider:
    name: str
    fake: FakeAlipay | FakeWechatPay | FakeStripe

    @property
    def route(self) -> str:
        return f"/payments/notify/{self.name}/"

    def configure(self, settings, directory: Path) -> None:
        """Set the provider's settings (key files written under `directory`)."""
        use_fake(settings, self.fake, directory)

    def payment_id(self, order: Order) -> str:
        """The id the shop gives the provider's payment for `order`."""
        raise NotImplementedError

    def start(self, order: Order) -> str:
        """What Pay leaves behind: the payment opened at the provider's fake and recorded as the
        order's current one, the order pending. The payment's id."""
        self.open(order)
        payment = Payment.objects.create(
            order=order,
            gateway=self.name,
            payment_id=self.payment_id(order),
            amount=order.amount,
            currency=order.currency,
        )
        Order.objects.filter(pk=order.pk).update(
            payment=payment, provider=self.name, status=OrderStatus.PENDING
        )
        order.refresh_from_db()
        return payment.payment_id

    def open(self, order: Order) -> None:
        """The payment exists at the provider's fake (idempotent)."""
        raise NotImplementedError

    def success(self, order: Order) -> Notice:
        """A genuine notice that `order`'s payment succeeded, for `order.amount`."""
        raise NotImplementedError

    def wrong_amount(self, order: Order, change: str) -> Notice:
        """A genuine success whose amount ("amount") or currency ("currency") is not the order's."""
        raise NotImplementedError

    def forgery(self, order: Order, name: str) -> tuple[Notice, str]:
        """A request claiming `order` was paid that is not genuine, and the verdict it earns."""
        raise NotImplementedError

    def malformed(self, order: Order, name: str) -> tuple[Notice, str]:
        """A request that is not a well-formed notice (signed where the provider signs), and the
        verdict it earns."""
        raise NotImplementedError

    def padded(self, order: Order, size: int, *, genuine: bool = True) -> Notice:
        """A success notice of exactly `size` bytes, signed (by the provider when `genuine`, else
        with a stranger's key)."""
        raise NotImplementedError

    # The provider's own answers.

    def assert_accepted(self, response) -> None:
        raise NotImplementedError

    def assert_refused(self, response) -> None:
        raise NotImplementedError


FORGERIES: dict[str, list[str]] = {}
MALFORMED: dict[str, list[str]] = {}


# Alipay


class AlipayProvider(Provider):
    """Form-encoded notices signed RSA2 with Alipay's key over the sorted fields (contract 6)."""

    name = "alipay"

    def __init__(self) -> None:
        self.fake = alipay_fake()

    def payment_id(self, order: Order) -> str:
        return f"alipay:{order.biz}"

    def open(self, order: Order) -> AlipayTrade:
        trade = self.fake.trades.get(order.biz)
        if trade is None:
            trade = self.fake.trades[order.biz] = AlipayTrade(
                out_trade_no=order.biz,
                total_amount=yuan(order.amount),
                subject="Tea",
                notify_url=f"https://shop.example{self.route}",
                qr_code=f"https://qr.alipay.com/{secrets.token_hex(8)}",
            )
        return trade

    def fields(
        self, order: Order, status: str = "TRADE_SUCCESS", **overrides: Any
    ) -> dict[str, str]:
        """The unsigned fields of a notice saying `order`'s trade is now `status`."""
        trade = self.open(order)
        self.fake.scan(order.biz)
        trade.status = status
        if status in ("TRADE_SUCCESS", "TRADE_FINISHED") and trade.paid_at is None:
            trade.paid_at = datetime.now(UTC)
        return self.fake.notice_fields(order.biz, **overrides)

    def form(self, fields: dict[str, str], **signing: Any) -> Notice:
        return Notice(urlencode(self.fake.sign_notice(fields, **signing)).encode(), {}, FORM)

    def notice(self, order: Order, status: str = "TRADE_SUCCESS", **overrides: Any) -> Notice:
        """A genuine notice: `order`'s trade is `status` (TRADE_SUCCESS, TRADE_FINISHED,
        TRADE_CLOSED, WAIT_BUYER_PAY); `overrides` change fields before signing."""
        return self.form(self.fields(order, status, **overrides))

    def success(self, order: Order) -> Notice:
        return self.notice(order)

    def wrong_amount(self, order: Order, change: str) -> Notice:
        assert change == "amount", "Alipay notices carry CNY only"
        return self.notice(order, total_amount=yuan(order.amount - 1))

    def forgery(self, order: Order, name: str) -> tuple[Notice, str]:
        fields = self.fields(order)
        now = datetime.now(UTC)
        match name:
            case "bad signature":
                signed = self.fake.sign_notice(fields)
                raw = bytearray(base64.b64decode(signed["sign"]))
                raw[0] ^= 1
                signed["sign"] = base64.b64encode(raw).decode()
                return Notice(urlencode(signed).encode(), {}, FORM), "bad_signature"
            case "wrong key":
                return self.form(fields, key=private_pem(key("stranger"))), "bad_signature"
            case "tampered after signing":
                signed = self.fake.sign_notice(self.fields(order, "WAIT_BUYER_PAY"))
                signed["trade_status"] = "TRADE_SUCCESS"
                return Notice(urlencode(signed).encode(), {}, FORM), "bad_signature"
            case "old notify_time":
                fields["notify_time"] = beijing(now - timedelta(seconds=301))
                return self.form(fields), "bad_signature"
            case "future notify_time":
                # Three seconds past the limit, so a clock tick during the test cannot bring it in.
                fields["notify_time"] = beijing(now + timedelta(seconds=303))
                return self.form(fields), "bad_signature"
            case "another app's notice":
                # Alipay signs every app's notices with one key: genuine, but not for us.
                fields["app_id"] = fields["auth_app_id"] = "2021000000000002"
                return self.form(fields), "bad_signature"
            case "unsigned":
                return Notice(urlencode(fields).encode(), {}, FORM), "bad_signature"
            case "signed as a request is":
                return self.form(fields, request_rule=True), "bad_signature"
            case "sign_type RSA":
                signed = self.fake.sign_notice(fields) | {"sign_type": "RSA"}
                return Notice(urlencode(signed).encode(), {}, FORM), "bad_signature"
        raise LookupError(name)

    def malformed(self, order: Order, name: str) -> tuple[Notice, str]:
        fields = self.fields(order)
        match name:
            case "empty":
                # An empty form: no fields, so no `sign` either.
                return Notice(b"", {}, FORM), "bad_signature"
            case "not UTF-8":
                return Notice(b"trade_status=\xff\xfe", {}, FORM), "malformed"
            case "not a form":
                return Notice(json.dumps(fields).encode(), {}, FORM), "malformed"
            case "a field repeated":
                body = urlencode(self.fake.sign_notice(fields)) + "&trade_status=TRADE_CLOSED"
                return Notice(body.encode(), {}, FORM), "malformed"
            case "too many fields":
                many = fields | {f"x{n}": "1" for n in range(70)}
                return self.form(many), "malformed"
            case "over 16 KiB":
                return self.form(fields | {"body": "x" * (17 * 1024)}), "malformed"
            case "unknown trade_status":
                return self.form(fields | {"trade_status": "TRADE_REFUNDED"}), "malformed"
            case "amount not yuan":
                return self.form(fields | {"total_amount": "1e3"}), "malformed"
            case "amount zero":
                return self.form(fields | {"total_amount": "0.00"}), "malformed"
            case "out_trade_no not an order id":
                return self.form(fields | {"out_trade_no": "../etc/passwd"}), "malformed"
            case "no trade_no":
                fields.pop("trade_no")
                return self.form(fields), "malformed"
            case "no notify_time":
                fields.pop("notify_time")
                return self.form(fields), "malformed"
            case "notify_time not a time":
                return self.form(fields | {"notify_time": "yesterday"}), "malformed"
        raise LookupError(name)

    def padded(self, order: Order, size: int, *, genuine: bool = True) -> Notice:
        fields = self.fields(order)
        signing = {} if genuine else {"key": private_pem(key("stranger"))}
        # The signature's URL-encoded length varies (`+`, `/` and `=` take three characters each,
        # always an even number more). The padding makes up the rest: a field of `n` x's, some
        # written `%78` (two characters more, the same value), `n` chosen for the parity.
        n = size - len(self.form(fields | {"body": ""}, **signing).body) - 64
        for n in (n, n - 1):
            signed = self.fake.sign_notice(fields | {"body": "x" * n}, **signing)
            rest = urlencode({name: value for name, value in signed.items() if name != "body"})
            extra = size - len(rest) - len("&body=") - n
            if extra % 2 == 0 and 0 <= extra // 2 <= n:
                pad = "%78" * (extra // 2) + "x" * (n - extra // 2)
                return Notice(f"{rest}&body={pad}".encode(), {}, FORM)
        raise AssertionError(f"no Alipay notice of exactly {size} bytes")

    def assert_accepted(self, response) -> None:
        # Alipay stops delivering on exactly these seven characters.
        assert (response.status_code, response.content) == (200, b"success"), response.content
        assert response.headers["Content-Type"].startswith("text/plain")

    def assert_refused(self, response) -> None:
        assert 400 <= response.status_code < 500, response.status_code
        assert response.content == b"fail"
        assert response.content.strip() != b"success"


FORGERIES["alipay"] = [
    "bad signature",
    "wrong key",
    "tampered after signing",
    "old notify_time",
    "future notify_time",
    "another app's notice",
    "unsigned",
    "signed as a request is",
    "sign_type RSA",
]
MALFORMED["alipay"] = [
    "empty",
    "not UTF-8",
    "not a form",
    "a field repeated",
    "too many fields",
    "over 16 KiB",
    "unknown trade_status",
    "amount not yuan",
    "amount zero",
    "out_trade_no not an order id",
    "no trade_no",
    "no notify_time",
    "notify_time not a time",
]


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


# WeChat Pay


class WechatPayProvider(Provider):
    """JSON envelopes with an AES-256-GCM resource, signed in the Wechatpay-* headers."""

    name = "wechatpay"

    def __init__(self) -> None:
        self.fake = wechatpay_fake()

    def payment_id(self, order: Order) -> str:
        return f"wechatpay:{order.biz}"

    def open(self, order: Order) -> WechatTrade:
        trade = self.fake.trades.get(order.biz)
        if trade is None:
            expiry = datetime.now(UTC) + timedelta(minutes=15)
            trade = self.fake.trades[order.biz] = WechatTrade(
                appid=self.fake.appid,
                mchid=self.fake.mchid,
                description="Tea",
                out_trade_no=order.biz,
                total=order.amount,
                notify_url=f"https://shop.example{self.route}",
                time_expire=expiry.isoformat(timespec="seconds"),
                code_url="weixin://wxpay/bizpayurl?pr=" + secrets.token_urlsafe(6),
            )
        return trade

    def transaction(self, order: Order, **changes: Any) -> dict[str, Any]:
        """`order`'s transaction, paid, as a notice's resource carries it, with `changes`."""
        trade = self.open(order)
        if trade.trade_state != "SUCCESS":
            self.fake.pay(order.biz)
        return trade.as_json() | changes

    def envelope(
        self, transaction: dict[str, Any], *, apiv3_key: str | None = None, **changes: Any
    ) -> bytes:
        body = self.fake.notice_body(
            transaction, apiv3_key=apiv3_key, event_id="EV-" + secrets.token_hex(16)
        )
        if changes:
            body = json.dumps(json.loads(body) | changes, ensure_ascii=False).encode()
        return body

    def signed(self, body: bytes, **signing: Any) -> Notice:
        """`body` with the headers WeChat Pay signs it with (`signing`: the fake's knobs)."""
        try:
            body.decode()
        except UnicodeDecodeError:
            # The fake signs text; WeChat Pay signs the bytes it sends, whatever they are.
            headers = self.fake.signed_headers(b"")
            message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n"
            signature = rsa_sign(self.fake.platform_key, message.encode() + body + b"\n")
            return Notice(body, headers | {"Wechatpay-Signature": signature}, JSON)
        return Notice(body, self.fake.signed_headers(body, **signing), JSON)

    def notice(self, order: Order, **changes: Any) -> Notice:
        """A genuine TRANSACTION.SUCCESS notice for `order` (`changes` to the transaction)."""
        return self.signed(self.envelope(self.transaction(order, **changes)))

    def success(self, order: Order) -> Notice:
        return self.notice(order)

    def wrong_amount(self, order: Order, change: str) -> Notice:
        amount = self.transaction(order)["amount"]
        if change == "amount":
            return self.notice(order, amount=amount | {"total": order.amount + 1})
        return self.notice(order, amount=amount | {"currency": "USD"})

    def forgery(self, order: Order, name: str) -> tuple[Notice, str]:
        body = self.envelope(self.transaction(order))
        headers = self.fake.signed_headers(body)
        now = int(time.time())
        match name:
            case "bad signature":
                raw = bytearray(base64.b64decode(headers["Wechatpay-Signature"]))
                raw[0] ^= 1
                signature = base64.b64encode(raw).decode()
                return Notice(body, headers | {"Wechatpay-Signature": signature}), "bad_signature"
            case "wrong key":
                return self.signed(body, key=key("stranger")), "bad_signature"
            case "old timestamp":
                return self.signed(body, timestamp=now - 301), "bad_signature"
            case "future timestamp":
                # Three seconds past the limit, so a clock tick during the test cannot bring it in.
                return self.signed(body, timestamp=now + 303), "bad_signature"
            case "tampered after signing":
                envelope = json.loads(body) | {"id": "EV-" + "0" * 20}
                return Notice(json.dumps(envelope).encode(), headers), "bad_signature"
            case "tampered ciphertext, signed again":
                envelope = json.loads(body)
                ciphertext = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
                ciphertext[0] ^= 1
                envelope["resource"]["ciphertext"] = base64.b64encode(ciphertext).decode()
                return self.signed(json.dumps(envelope).encode()), "bad_signature"
            case "encrypted with another APIv3 key":
                other = self.envelope(self.transaction(order), apiv3_key="k" * 32)
                return self.signed(other), "bad_signature"
            case "wrong mchid":
                other = self.envelope(self.transaction(order, mchid="1900000000"))
                return self.signed(other), "bad_signature"
            case "wrong appid":
                other = self.envelope(self.transaction(order, appid="wx0000000000000000"))
                return self.signed(other), "bad_signature"
            case "another public key id":
                return self.signed(body, serial="PUB_KEY_ID_0000000000000000"), "bad_signature"
            case "SIGNTEST probe":
                probe = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
                return Notice(body, headers | {"Wechatpay-Signature": probe}), "bad_signature"
            case "no signature headers":
                return Notice(body, {}), "bad_signature"
        raise LookupError(name)

    def malformed(self, order: Order, name: str) -> tuple[Notice, str]:
        genuine = json.loads(self.envelope(self.transaction(order)))
        amount = self.transaction(order)["amount"]

        def envelope(**changes: Any) -> bytes:
            return json.dumps(genuine | changes).encode()

        def resource(**changes: Any) -> bytes:
            return envelope(resource=genuine["resource"] | changes)

        def transaction(value: Any) -> bytes:
            return envelope(resource=self.fake.encrypt(json.dumps(value).encode()))

        bodies = {
            "empty": b"",
            "not JSON": b'{"id":',
            "not UTF-8": b"\xff\xfe{}",
            "an array": b"[]",
            "deeply nested": b"[" * 30_000 + b"]" * 30_000,
            "no resource": envelope(resource=None),
            "refund event": envelope(event_type="REFUND.SUCCESS"),
            "plain resource": envelope(resource_type="plain"),
            "bad create_time": envelope(create_time="yesterday"),
            "other algorithm": resource(algorithm="AEAD_SM4_GCM"),
            "ciphertext not base64": resource(ciphertext="!!!"),
            "resource not JSON": envelope(resource=self.fake.encrypt(b"paid")),
            "unpaid transaction": transaction(self.transaction(order, trade_state="NOTPAY")),
            "unknown trade_state": transaction(self.transaction(order, trade_state="PAID")),
            "amount a string": transaction(
                self.transaction(order, amount=amount | {"total": "19.99"})
            ),
            "amount zero": transaction(self.transaction(order, amount=amount | {"total": 0})),
            "out_trade_no too long": transaction(self.transaction(order, out_trade_no="a" * 33)),
        }
        return self.signed(bodies[name]), "malformed"

    def padded(self, order: Order, size: int, *, genuine: bool = True) -> Notice:
        bare = len(self.envelope(self.transaction(order), pad=""))
        body = self.envelope(self.transaction(order), pad="x" * (size - bare))
        return self.signed(body) if genuine else self.signed(body, key=key("stranger"))

    def assert_accepted(self, response) -> None:
        # WeChat Pay takes 200 or 204 as delivered; the shop answers 204, with no body.
        assert response.status_code in (200, 204), response.status_code
        if response.status_code == 204:
            assert response.content == b""

    def assert_refused(self, response) -> None:
        assert 400 <= response.status_code < 500, response.status_code
        assert response.headers["Content-Type"].startswith("application/json")
        answer = json.loads(response.content)
        assert answer["code"] == "FAIL" and isinstance(answer["message"], str), answer


FORGERIES["wechatpay"] = [
    "bad signature",
    "wrong key",
    "old timestamp",
    "future timestamp",
    "tampered after signing",
    "tampered ciphertext, signed again",
    "encrypted with another APIv3 key",
    "wrong mchid",
    "wrong appid",
    "another public key id",
    "SIGNTEST probe",
    "no signature headers",
]
MALFORMED["wechatpay"] = [
    "empty",
    "not JSON",
    "not UTF-8",
    "an array",
    "deeply nested",
    "no resource",
    "refund event",
    "plain resource",
    "bad create_time",
    "other algorithm",
    "ciphertext not base64",
    "resource not JSON",
    "unpaid transaction",
    "unknown trade_state",
    "amount a string",
    "amount zero",
    "out_trade_no too long",
]


# Stripe

COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"


class StripeProvider(Provider):
    """Checkout Session events, HMAC-signed in `Stripe-Signature` with the webhook secret."""

    name = "stripe"

    def __init__(self) -> None:
        self.fake = FakeStripe()
        self.sessions: dict[str, str] = {}  # each order's session id, by biz

    def payment_id(self, order: Order) -> str:
        self.open(order)
        return self.sessions[order.biz]

    def open(self, order: Order) -> dict[str, Any]:
        """The order's Checkout Session, open, as Stripe's create answers it."""
        if order.biz not in self.sessions:
            page = f"https://shop.example/orders/{order.biz}/"
            session = self.fake.open_session(
                client_reference_id=order.biz,
                amount=order.amount,
                currency=order.currency.lower(),
                success_url=page,
                cancel_url=page,
            )
            self.sessions[order.biz] = session["id"]
        return self.fake.sessions[self.sessions[order.biz]]

    def event(
        self, order: Order, event_type: str = COMPLETED, *, paid: bool = True, **changes: Any
    ) -> bytes:
        """The body of an event of `event_type` about `order`'s session, the session put in the
        state that event carries (COMPLETED with `paid` False: a delayed payment method);
        `changes` to the session as this event shows it."""
        session = self.open(order)
        session_id = session["id"]
        match event_type:
            case "checkout.session.completed":
                self.fake.complete(session_id, payment_status="paid" if paid else "unpaid")
            case "checkout.session.async_payment_succeeded":
                self.fake.complete(session_id, payment_status="paid")
            case "checkout.session.async_payment_failed":
                self.fake.complete(session_id, payment_status="unpaid")
            case "checkout.session.expired":
                self.fake.expire(session_id)
        body = json.loads(self.fake.event(session_id, event_type))
        body["data"]["object"].update(changes)  # this event only: the session stays as it is
        return json.dumps(body).encode()

    def signed(self, body: bytes, **signing: Any) -> Notice:
        return Notice(body, {"Stripe-Signature": self.fake.signature_header(body, **signing)})

    def notice(
        self, order: Order, event_type: str = COMPLETED, *, paid: bool = True, **changes: Any
    ) -> Notice:
        """A genuine event about `order`'s session (see `event`)."""
        return self.signed(self.event(order, event_type, paid=paid, **changes))

    def success(self, order: Order) -> Notice:
        return self.notice(order)

    def wrong_amount(self, order: Order, change: str) -> Notice:
        if change == "amount":
            return self.notice(order, amount_total=order.amount + 1)
        return self.notice(order, currency="usd")

    def forgery(self, order: Order, name: str) -> tuple[Notice, str]:
        body = self.event(order)
        now = int(time.time())
        match name:
            case "no signature header":
                return Notice(body, {}), "bad_signature"
            case "bad signature":
                return Notice(body, {"Stripe-Signature": f"t={now},v1={'0' * 64}"}), "bad_signature"
            case "wrong secret":
                return self.signed(body, secret="whsec_" + "x" * 32), "bad_signature"
            case "old timestamp":
                return self.signed(body, timestamp=now - 301), "bad_signature"
            case "future timestamp":
                # stripe-python's own check refuses only old ones; the contract, both.
                return self.signed(body, timestamp=now + 303), "bad_signature"
            case "tampered after signing":
                header = self.fake.signature_header(self.event(order, paid=False))
                return Notice(body, {"Stripe-Signature": header}), "bad_signature"
            case "signed for another time":
                header = self.fake.signature_header(body, timestamp=now - 1)
                signature = header.split(",v1=")[1]
                return Notice(body, {"Stripe-Signature": f"t={now},v1={signature}"}), (
                    "bad_signature"
                )
            case "a live event to a test-mode shop":
                event = json.loads(body) | {"livemode": True}
                event["data"]["object"]["livemode"] = True
                # Signed with our secret: genuine in form, but no payment of this shop's mode.
                return self.signed(json.dumps(event).encode()), "malformed"
        raise LookupError(name)

    def malformed(self, order: Order, name: str) -> tuple[Notice, str]:
        event = json.loads(self.event(order))

        def changed(**changes: Any) -> bytes:
            return json.dumps(event | changes).encode()

        def session(**changes: Any) -> bytes:
            copy = json.loads(json.dumps(event))
            copy["data"]["object"].update(changes)
            return json.dumps(copy).encode()

        bodies = {
            "empty": b"",
            "not JSON": b"not json",
            "not UTF-8": b"\xff\xfe{}",
            "an array": b"[]",
            "deeply nested": b"[" * 30_000 + b"]" * 30_000,
            "not an event": changed(object="charge"),
            "unhandled type": changed(type="payment_intent.succeeded"),
            "type does not match the session": changed(type=EXPIRED),
            "data not an object": changed(data=[]),
            "amount as text": session(amount_total="19.99"),
            "amount zero": session(amount_total=0),
            "no client_reference_id": session(client_reference_id=None),
            "not a session id": session(id="pi_123"),
            "not payment mode": session(mode="subscription"),
        }
        return self.signed(bodies[name]), "malformed"

    def padded(self, order: Order, size: int, *, genuine: bool = True) -> Notice:
        bare = len(self.event(order, metadata={"pad": ""}))
        body = self.event(order, metadata={"pad": "x" * (size - bare)})
        return self.signed(body) if genuine else self.signed(body, secret="whsec_" + "y" * 32)

    def assert_accepted(self, response) -> None:
        assert response.status_code == 200, response.status_code
        assert json.loads(response.content) == {"received": True}

    def assert_refused(self, response) -> None:
        assert response.status_code == 400, response.status_code
        assert json.loads(response.content) == {"received": False}


FORGERIES["stripe"] = [
    "no signature header",
    "bad signature",
    "wrong secret",
    "old timestamp",
    "future timestamp",
    "tampered after signing",
    "signed for another time",
    "a live event to a test-mode shop",
]
MALFORMED["stripe"] = [
    "empty",
    "not JSON",
    "not UTF-8",
    "an array",
    "deeply nested",
    "not an event",
    "unhandled type",
    "type does not match the session",
    "data not an object",
    "amount as text",
    "amount zero",
    "no client_reference_id",
    "not a session id",
    "not payment mode",
]

CLASSES: dict[str, type[Provider]] = {
    "alipay": AlipayProvider,
    "wechatpay": WechatPayProvider,
    "stripe": StripeProvider,
}


def configure(settings, directory: Path, *names: str) -> dict[str, Provider]:
    """Set `names`' settings (key files under `directory`), without enabling them."""
    providers = {name: CLASSES[name]() for name in names}
    for provider in providers.values():
        provider.configure(settings, directory)
    return providers


def enable(settings, directory: Path, *names: str) -> dict[str, Provider]:
    """Configure `names` and list them in PAYMENT_PROVIDERS, after the sandbox."""
    providers = configure(settings, directory, *names)
    settings.PAYMENT_PROVIDERS = ["sandbox", *names]
    return providers
