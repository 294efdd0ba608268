"""WeChat Pay API v3, Native pay (contract section 6): the shopper scans `code_url`.

Every request carries a `WECHATPAY2-SHA256-RSA2048` signature made with the merchant's API key;
every answer and every notification is checked against WeChat Pay's public key (public-key mode,
`PUB_KEY_ID_...`) and its `Wechatpay-Timestamp` must be within 300 s of our clock either way,
before anything in it is trusted. Only success is notified: failures and closures come from
`query`.

WeChat's `transaction_id` exists only once the shopper has paid, so the shop names the payment
`wechatpay:<out_trade_no>` from the start: one id for Pay's answer, the queries and the notice.
"""

import base64
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from yarl import URL

from checkout.gateways import http, rsa
from checkout.gateways.fields import MAX_AMOUNT
from checkout.gateways.config import key_file, required_settings
from checkout.gateways.base import (
    GatewayError,
    GatewayThrottled,
    GatewayPayment,
    NoticeRejected,
    PaymentNotice,
    PaymentRequest,
)
from checkout.models import PaymentStatus

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
DEFAULT_API_URL = "https://api.mch.weixin.qq.com"
PAYMENT_ID_PREFIX = "wechatpay:"
TOLERANCE_SECONDS = 300
# WeChat Pay sends answers signed `WECHATPAY/SIGNTEST/...` now and then, to find merchants that
# do not verify: they must be refused (they would fail anyway; this says why in the log).
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_CHARS = 1024
BEIJING = timezone(timedelta(hours=8))

TRADE_STATES = {
    "SUCCESS": PaymentStatus.SUCCEEDED,
    # Paid, then (partly) refunded: still paid as far as the order goes, never unpaid.
    "REFUND": PaymentStatus.SUCCEEDED,
    "NOTPAY": PaymentStatus.PENDING,
    "USERPAYING": PaymentStatus.PENDING,
    "CLOSED": PaymentStatus.CLOSED,
    "REVOKED": PaymentStatus.CLOSED,
    "PAYERROR": PaymentStatus.FAILED,
}
PAID_STATES = {"SUCCESS", "REFUND"}
# WeChat allows `[0-9A-Za-z_-|*]{6,32}`; we send only what needs no escaping in a URL path, so the
# path we sign is the path WeChat sees.
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_-]{6,32}", re.ASCII)
TRANSACTION_ID = re.compile(r"[0-9]{1,32}", re.ASCII)
TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
NONCE = re.compile(r"[0-9A-Za-z]{1,64}", re.ASCII)
EVENT_ID = re.compile(r"[0-9A-Za-z_-]{1,64}", re.ASCII)
CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)
APIV3_KEY = re.compile(r"[\x21-\x7e]{32}", re.ASCII)


@dataclass(frozen=True)
class WechatPayConfig:
    mchid: str
    appid: str
    apiv3_key: str
    cert_serial: str
    private_key: crypto_rsa.RSAPrivateKey  # the merchant API key, which signs our requests
    public_key_id: str
    public_key: crypto_rsa.RSAPublicKey  # WeChat Pay's, which signs its answers and notices
    api_url: str = DEFAULT_API_URL

    @classmethod
    def from_settings(cls) -> "WechatPayConfig":
        """Read the contract's WECHATPAY_* settings; ImproperlyConfigured names the first bad one."""
        values = required_settings(
            "WeChat Pay",
            "WECHATPAY_MCHID",
            "WECHATPAY_APPID",
            "WECHATPAY_APIV3_KEY",
            "WECHATPAY_CERT_SERIAL",
            "WECHATPAY_PRIVATE_KEY_FILE",
            "WECHATPAY_PUBLIC_KEY_ID",
            "WECHATPAY_PUBLIC_KEY_FILE",
        )
        # An AES-256 key: a key of another length fails only at the first notification.
        if not APIV3_KEY.fullmatch(values["WECHATPAY_APIV3_KEY"]):
            raise ImproperlyConfigured("WECHATPAY_APIV3_KEY must be exactly 32 ASCII characters")
        if not values["WECHATPAY_PUBLIC_KEY_ID"].startswith("PUB_KEY_ID_"):
            raise ImproperlyConfigured("WECHATPAY_PUBLIC_KEY_ID must start with PUB_KEY_ID_")
        return cls(
            mchid=values["WECHATPAY_MCHID"],
            appid=values["WECHATPAY_APPID"],
            apiv3_key=values["WECHATPAY_APIV3_KEY"],
            cert_serial=values["WECHATPAY_CERT_SERIAL"],
            private_key=key_file(
                "WECHATPAY_PRIVATE_KEY_FILE", values["WECHATPAY_PRIVATE_KEY_FILE"], rsa.private_key
            ),
            public_key_id=values["WECHATPAY_PUBLIC_KEY_ID"],
            public_key=key_file(
                "WECHATPAY_PUBLIC_KEY_FILE", values["WECHATPAY_PUBLIC_KEY_FILE"], rsa.public_key
            ),
            api_url=getattr(settings, "WECHATPAY_API_URL", "") or DEFAULT_API_URL,
        )


def request_message(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """What a request's signature covers, as WeChat documents it: five lines, each ending in
    `\\n`, the body line empty for a GET. `path` keeps its query string."""
    return f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def answer_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the signature of an answer or a notification covers: the raw body, not a re-encoding."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def authorization(
    config: WechatPayConfig, method: str, path: str, body: bytes, *, timestamp: int, nonce: str
) -> str:
    signature = rsa.sign(config.private_key, request_message(method, path, timestamp, nonce, body))
    return (
        f'{SCHEMA} mchid="{config.mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{config.cert_serial}"'
    )


def payment_id(biz: str) -> str:
    return PAYMENT_ID_PREFIX + biz


class _Unverified(Exception):
    """An answer or notice whose signature headers do not prove it comes from WeChat Pay."""


class _Foreign(ValueError):
    """Genuine in form, but about another merchant or app."""


class WechatPayGateway:
    name = "wechatpay"
    starts_after_close = False

    def __init__(self, config: WechatPayConfig) -> None:
        self.config = config
        self._aead = AESGCM(config.apiv3_key.encode("ascii"))

    async def start(self, request: PaymentRequest) -> GatewayPayment:
        if request.currency != "CNY":
            raise GatewayError(f"WeChat Pay Native takes CNY only, not {request.currency}")
        if "?" in request.notify_url:
            raise GatewayError("WeChat Pay refuses a notify_url with a query string")
        body = {
            "appid": self.config.appid,
            "mchid": self.config.mchid,
            # WeChat counts the limit in UTF-8 bytes; a longer description is refused.
            "description": request.description.encode()[:127].decode(errors="ignore"),
            "out_trade_no": _out_trade_no(request.biz),
            "time_expire": request.expire_at.astimezone(BEIJING).isoformat(timespec="seconds"),
            "notify_url": request.notify_url,
            "amount": {"total": request.amount, "currency": "CNY"},
        }
        # out_trade_no is the idempotency key: the same order asked again gets the same code_url;
        # an order paid meanwhile answers ORDERPAID, and then the payment is what a query says.
        status, data = await self._call(
            "POST", "/v3/pay/transactions/native", body=body, allowed=("ORDERPAID",)
        )
        if status >= 300:
            paid = await self.query(biz=request.biz)
            if paid is None:
                raise GatewayError("native: ORDERPAID, but the query finds no payment")
            return paid
        code_url = data.get("code_url") if isinstance(data, dict) else None
        if not isinstance(code_url, str) or not code_url.startswith("weixin://"):
            raise GatewayError("native: the answer has no weixin:// code_url")
        return GatewayPayment(
            payment_id=payment_id(request.biz),
            biz=request.biz,
            status=PaymentStatus.PENDING,
            amount=request.amount,
            currency="CNY",
            cashier_url=code_url,
        )

    async def query(self, *, biz: str, payment_id: str | None = None) -> GatewayPayment | None:
        path = f"/v3/pay/transactions/out-trade-no/{_out_trade_no(biz)}?mchid={self.config.mchid}"
        status, data = await self._call("GET", path, allowed=("ORDER_NOT_EXIST",))
        if status >= 300:
            return None  # never created at WeChat (Pay's request was lost): no payment yet
        try:
            payment = _transaction(data, self.config)
        except (KeyError, ValueError, TypeError) as error:
            raise GatewayError(f"query: unexpected transaction: {error!r}") from error
        if payment.biz != biz:
            raise GatewayError(f"query for {biz} answered about {payment.biz}")
        return payment

    async def close(self, *, payment_id: str) -> GatewayPayment:
        """Close by out_trade_no (WeChat closes by nothing else), then report the payment as it
        then stands: closed, or paid if the shopper was quicker."""
        if not payment_id.startswith(PAYMENT_ID_PREFIX):
            raise GatewayError(f"not a WeChat Pay payment: {payment_id}")
        biz = payment_id.removeprefix(PAYMENT_ID_PREFIX)
        path = f"/v3/pay/transactions/out-trade-no/{_out_trade_no(biz)}/close"
        await self._call("POST", path, body={"mchid": self.config.mchid}, allowed=("ORDERPAID",))
        payment = await self.query(biz=biz)
        if payment is None:
            raise GatewayError(f"close: WeChat Pay has no payment {payment_id}")
        return payment

    def verify_notice(self, *, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        if len(body) > MAX_BODY_BYTES:
            raise NoticeRejected("malformed", f"body of {len(body)} bytes")
        try:
            self._check_signature(headers, body, now=int(time.time()))
        except _Unverified as error:
            raise NoticeRejected("bad_signature", str(error)) from None
        try:
            resource = _encrypted_resource(json.loads(body))
        except (ValueError, TypeError, KeyError, RecursionError) as error:
            raise NoticeRejected("malformed", f"not a WeChat Pay notice: {error}") from None
        event_id, nonce, ciphertext, associated_data = resource
        try:
            plain = self._aead.decrypt(nonce, ciphertext, associated_data)
        except (InvalidTag, ValueError):
            raise NoticeRejected(
                "bad_signature", "resource does not decrypt with our key"
            ) from None
        try:
            payment = _transaction(json.loads(plain), self.config)
        except _Foreign as error:
            raise NoticeRejected("bad_signature", str(error)) from None
        except (ValueError, TypeError, KeyError, RecursionError) as error:
            raise NoticeRejected("malformed", f"not a transaction: {error}") from None
        if payment.status != PaymentStatus.SUCCEEDED:
            raise NoticeRejected("malformed", "TRANSACTION.SUCCESS for an unpaid transaction")
        return PaymentNotice(event_id=event_id, payment=payment)

    def notice_answer(
        self, *, status: int, verdict: str = "", outcome: str = ""
    ) -> tuple[int, bytes, str]:
        """WeChat Pay's own answer: 204 once accepted; otherwise `status` (4xx/5xx) with FAIL,
        and it delivers the notice again."""
        if status < 300:
            return 204, b"", "application/json"
        body = json.dumps({"code": "FAIL", "message": "not accepted"}).encode()
        return status, body, "application/json"

    def _check_signature(self, headers: Mapping[str, str], body: bytes, *, now: int) -> None:
        """Raise _Unverified unless WeChat Pay's key signs `body` with a timestamp within 300 s."""
        # Django's and aiohttp's headers ignore case, a plain dict does not.
        found = {key.lower(): value[:MAX_HEADER_CHARS] for key, value in headers.items()}

        def get(name: str) -> str:
            return found.get(name, "")

        if get("wechatpay-serial") != self.config.public_key_id:
            raise _Unverified(f"Wechatpay-Serial is not {self.config.public_key_id}")
        if get("wechatpay-signature-type") not in ("", SCHEMA):
            raise _Unverified("unknown Wechatpay-Signature-Type")
        timestamp, nonce, signature = (
            get("wechatpay-timestamp"),
            get("wechatpay-nonce"),
            get("wechatpay-signature"),
        )
        if not TIMESTAMP.fullmatch(timestamp) or not NONCE.fullmatch(nonce):
            raise _Unverified("malformed Wechatpay-Timestamp or Wechatpay-Nonce")
        if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
            raise _Unverified(f"Wechatpay-Timestamp is {int(timestamp) - now} s from our clock")
        if signature.startswith(PROBE_PREFIX):
            raise _Unverified("WeChat Pay's signature probe")
        if not rsa.verifies(
            self.config.public_key, answer_message(timestamp, nonce, body), signature
        ):
            raise _Unverified("Wechatpay-Signature does not verify")

    async def _call(
        self, method: str, path: str, *, body: Any = None, allowed: tuple[str, ...] = ()
    ) -> tuple[int, Any]:
        """One signed request; returns the status and the verified answer's JSON (None if empty).

        An error answer is an error, unless its `code` is `allowed`: then it means something
        (not found, already paid) and is verified like a success."""
        content = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        header = authorization(
            self.config,
            method,
            path,
            content,
            timestamp=int(time.time()),
            nonce=secrets.token_hex(16).upper(),
        )
        try:
            status, headers, answer = await _send(
                self.config.api_url, method, path, content, header
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise GatewayError(f"{method} {path}: {type(error).__name__}: {error}") from error
        if not 200 <= status < 300 and _error_code(answer) not in allowed:
            # WeChat Pay answers FREQUENCY_LIMITED with 429 when it is asked too often.
            failed = GatewayThrottled if status == 429 else GatewayError
            raise failed(f"{method} {path}: HTTP {status} {_error_code(answer)}")
        try:
            self._check_signature(headers, answer, now=int(time.time()))
        except _Unverified as error:
            raise GatewayError(f"{method} {path}: answer not trusted: {error}") from None
        try:
            return status, json.loads(answer) if answer else None
        except (ValueError, RecursionError) as error:
            raise GatewayError(f"{method} {path}: HTTP {status}, answer is not JSON") from error


async def _send(
    api_url: str, method: str, path: str, content: bytes, authorization: str
) -> tuple[int, Mapping[str, str], bytes]:
    headers = {"Authorization": authorization, "Accept": "application/json"}
    if content:
        headers["Content-Type"] = "application/json"
    async with http.session().request(
        method,
        # Sent as signed: aiohttp must not re-encode the path or the query.
        URL(api_url.rstrip("/") + path, encoded=True),
        data=content or None,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=settings.PAYMENT_GATEWAY_TIMEOUT),
        allow_redirects=False,
        proxy=getattr(settings, "PAYMENT_GATEWAY_PROXY", None),
    ) as response:
        return response.status, response.headers, await response.read()


def _error_code(answer: bytes) -> str | None:
    """The `code` of an error answer (`{"code": ..., "message": ...}`), if it has one."""
    try:
        data = json.loads(answer)
    except (ValueError, RecursionError):
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


def _out_trade_no(biz: str) -> str:
    if not OUT_TRADE_NO.fullmatch(biz):
        raise GatewayError(f"{biz!r} cannot be a WeChat Pay out_trade_no")
    return biz


def _string(data: Mapping[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str:
    value = data[key]
    if type(value) is not str:
        raise TypeError(f"{key} must be a string")
    if pattern is not None and not pattern.fullmatch(value):
        raise ValueError(f"{key} is not well-formed")
    return value


def _encrypted_resource(envelope: Any) -> tuple[str, bytes, bytes, bytes]:
    """The event id, and the resource's nonce, ciphertext and associated data, checked."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("resource"), dict):
        raise TypeError("the notice must be an object with a resource object")
    resource = envelope["resource"]
    for key, expected in (
        ("resource_type", "encrypt-resource"),
        ("event_type", "TRANSACTION.SUCCESS"),
    ):
        if _string(envelope, key) != expected:
            raise ValueError(f"{key} is not {expected}")
    for key, expected in (("algorithm", "AEAD_AES_256_GCM"), ("original_type", "transaction")):
        if _string(resource, key) != expected:
            raise ValueError(f"resource.{key} is not {expected}")
    datetime.fromisoformat(_string(envelope, "create_time"))
    return (
        _string(envelope, "id", EVENT_ID),
        _string(resource, "nonce").encode(),
        # b64decode with validate: a ciphertext with stray characters is not WeChat's.
        base64.b64decode(_string(resource, "ciphertext"), validate=True),
        _string(resource, "associated_data").encode(),
    )


def _transaction(data: Any, config: WechatPayConfig) -> GatewayPayment:
    """A transaction (a query's answer, a notice's resource) as a payment; raises _Foreign when
    it is not about our mchid and appid, KeyError, TypeError or ValueError when malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("amount"), dict):
        raise TypeError("a transaction must be an object with an amount object")
    if _string(data, "mchid") != config.mchid or _string(data, "appid") != config.appid:
        raise _Foreign("the transaction is for another mchid or appid")
    trade_state = _string(data, "trade_state")
    status = TRADE_STATES[trade_state]
    amount = data["amount"]
    total = amount["total"]
    if type(total) is not int or not 0 < total <= MAX_AMOUNT:
        raise ValueError("amount.total must be a positive int, at most 2**31 - 1")
    paid = trade_state in PAID_STATES
    # An unpaid transaction's amount may carry only payer_currency; Native pay is CNY only.
    currency = _string(amount, "currency", CURRENCY) if paid or "currency" in amount else "CNY"
    paid_at = None
    if paid:
        _string(data, "transaction_id", TRANSACTION_ID)
        paid_at = datetime.fromisoformat(_string(data, "success_time"))
        if paid_at.tzinfo is None:
            raise ValueError("success_time has no offset")
    biz = _string(data, "out_trade_no", OUT_TRADE_NO)
    return GatewayPayment(
        payment_id=payment_id(biz),
        biz=biz,
        status=status,
        amount=total,
        currency=currency,
        paid_at=paid_at,
    )
