"""Alipay face-to-face payment (`alipay.trade.precreate`, `query`, `close`), contract section 6.

Alipay knows a trade only once the shopper has scanned its code, and gives its own `trade_no` only
then; the shop needs an id from the start, so an Alipay payment's id is `alipay:<out_trade_no>`
throughout (`payment_id`), and closing one closes it by `out_trade_no`.
"""

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from checkout.gateways import http, rsa
from checkout.gateways.fields import BIZ, MAX_AMOUNT
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

DEFAULT_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
PAYMENT_ID_PREFIX = "alipay:"
# Alipay's times carry no zone: they are Beijing time, which has had no daylight saving since 1991.
BEIJING = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
NOTICE_TOLERANCE = 300  # seconds either way from the shop's clock
# A genuine notice is under 4 KiB even with its fund and voucher lists.
MAX_NOTICE_BYTES = 16 * 1024
MAX_NOTICE_FIELDS = 64
SUCCESS = "10000"
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"  # closing a trade that is already paid or closed
TRADE_STATUSES = {
    "WAIT_BUYER_PAY": PaymentStatus.PENDING,
    "TRADE_SUCCESS": PaymentStatus.SUCCEEDED,
    # No refund is possible any more: the same "paid" again, not a new result.
    "TRADE_FINISHED": PaymentStatus.SUCCEEDED,
    # An unpaid trade timed out or closed, OR a paid one fully refunded: the shop's rules must
    # never unpay an order on it.
    "TRADE_CLOSED": PaymentStatus.CLOSED,
}
TRADE_NO = re.compile(r"[0-9A-Za-z]{1,64}")
NOTIFY_ID = re.compile(r"[0-9A-Za-z_-]{1,56}")
YUAN = re.compile(r"(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?")


@dataclass(frozen=True)
class AlipayConfig:
    app_id: str
    private_key_pem: str  # the app's RSA private key: signs our requests
    public_key_pem: str  # Alipay's RSA public key: verifies its answers and notices
    gateway_url: str = DEFAULT_GATEWAY_URL

    @classmethod
    def from_settings(cls) -> "AlipayConfig":
        names = ("ALIPAY_APP_ID", "ALIPAY_PRIVATE_KEY_FILE", "ALIPAY_PUBLIC_KEY_FILE")
        values = required_settings("Alipay", *names)
        # The keys are kept as text here and parsed by the gateway.
        return cls(
            app_id=values["ALIPAY_APP_ID"],
            private_key_pem=key_file(
                "ALIPAY_PRIVATE_KEY_FILE", values["ALIPAY_PRIVATE_KEY_FILE"], str
            ),
            public_key_pem=key_file(
                "ALIPAY_PUBLIC_KEY_FILE", values["ALIPAY_PUBLIC_KEY_FILE"], str
            ),
            gateway_url=getattr(settings, "ALIPAY_GATEWAY_URL", None) or DEFAULT_GATEWAY_URL,
        )


class AlipayGateway:
    name = "alipay"
    starts_after_close = False

    def __init__(self, config: AlipayConfig) -> None:
        self.config = config
        # Both parsed now, once per process, so that a bad key stops the server at start-up.
        try:
            self._public_key = rsa.public_key(config.public_key_pem)
        except ValueError as error:
            raise ImproperlyConfigured(f"ALIPAY_PUBLIC_KEY_FILE: {error}") from None
        try:
            self._private_key = rsa.private_key(config.private_key_pem)
        except ValueError as error:
            raise ImproperlyConfigured(f"ALIPAY_PRIVATE_KEY_FILE: {error}") from None

    async def start(self, request: PaymentRequest) -> GatewayPayment:
        if request.currency != "CNY":
            raise GatewayError(f"Alipay takes CNY only, not {request.currency}")
        answer = await self._call(
            "alipay.trade.precreate",
            {
                "out_trade_no": request.biz,
                "total_amount": yuan(request.amount),
                "subject": subject(request.description),
                # Truncating to the second keeps it no later than the order's expiry.
                "time_expire": beijing(request.expire_at),
            },
            notify_url=request.notify_url,
        )
        if answer.get("code") != SUCCESS:
            raise GatewayError(f"alipay.trade.precreate: {_error(answer)}")
        if answer.get("out_trade_no") != request.biz or not _text(answer.get("qr_code")):
            raise GatewayError("alipay.trade.precreate: answer is not about this order")
        return GatewayPayment(
            payment_id=payment_id(request.biz),
            biz=request.biz,
            status=PaymentStatus.PENDING,
            amount=request.amount,
            currency="CNY",
            cashier_url=answer["qr_code"],
        )

    async def query(self, *, biz: str, payment_id: str | None = None) -> GatewayPayment | None:
        answer = await self._call("alipay.trade.query", {"out_trade_no": biz})
        if answer.get("sub_code") == TRADE_NOT_EXIST:
            return None  # the code was not scanned yet
        if answer.get("code") != SUCCESS:
            raise GatewayError(f"alipay.trade.query: {_error(answer)}")
        try:
            if answer["out_trade_no"] != biz:
                raise ValueError("out_trade_no is not this order's")
            return _payment(answer, paid_at_field="send_pay_date")
        except (KeyError, ValueError, TypeError) as error:
            raise GatewayError(f"alipay.trade.query: unexpected answer: {error!r}") from error

    async def close(self, *, payment_id: str) -> GatewayPayment | None:
        """Close an unpaid trade; the payment as it then stands, or None when Alipay has none.

        None means the code was never scanned: Alipay has nothing to close, and the code stays
        payable until the precreate's `time_expire`, so a payment may still be notified."""
        biz = biz_of(payment_id)
        answer = await self._call("alipay.trade.close", {"out_trade_no": biz})
        sub_code = answer.get("sub_code")
        if sub_code == TRADE_NOT_EXIST:
            return None
        if answer.get("code") != SUCCESS and sub_code != TRADE_STATUS_ERROR:
            raise GatewayError(f"alipay.trade.close: {_error(answer)}")
        # The close answer carries no amount or status: ask for the trade as it now stands (closed,
        # or paid if the shopper was quicker, which TRADE_STATUS_ERROR also says).
        payment = await self.query(biz=biz)
        if payment is None:
            raise GatewayError("alipay.trade.close: the trade vanished after closing")
        return payment

    def verify_notice(self, *, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        fields = _notice_fields(body)
        signature = fields.pop("sign", "")
        if not signature:
            raise NoticeRejected("bad_signature", "unsigned")
        if fields.pop("sign_type", "") != "RSA2":
            raise NoticeRejected("bad_signature", "sign_type is not RSA2")
        # Notices are signed over every other field, empty ones included (the official SDK's
        # getSignCheckContentV1), unlike requests.
        if not rsa.verifies(self._public_key, string_to_sign(fields, keep_empty=True), signature):
            raise NoticeRejected("bad_signature", "signature does not verify")
        # Alipay signs every app's notices with the same key: another app's is genuine, not ours.
        if fields.get("app_id") != self.config.app_id:
            raise NoticeRejected("bad_signature", "app_id is not ours")
        try:
            notified = parse_beijing(fields["notify_time"])
        except (KeyError, ValueError) as error:
            raise NoticeRejected("malformed", f"notify_time: {error!r}") from None
        if abs(notified.timestamp() - time.time()) > NOTICE_TOLERANCE:
            raise NoticeRejected("bad_signature", "notify_time is more than 300 s off")
        try:
            return _notice(fields)
        except (KeyError, ValueError, TypeError) as error:
            raise NoticeRejected("malformed", f"not an Alipay trade notice: {error!r}") from None

    def notice_answer(
        self, *, status: int, verdict: str = "", outcome: str = ""
    ) -> tuple[int, bytes, str]:
        # Alipay takes exactly `success` as the acknowledgement and delivers again otherwise.
        if status < 300:
            return 200, b"success", "text/plain; charset=utf-8"
        return status, b"fail", "text/plain; charset=utf-8"

    def signed_params(
        self, method: str, biz_content: Mapping[str, str], *, now: datetime, **extra: str
    ) -> dict[str, str]:
        """A request's form fields, signed."""
        params = {
            "app_id": self.config.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": beijing(now),
            "version": "1.0",
            "biz_content": json.dumps(biz_content, ensure_ascii=False, separators=(",", ":")),
            **extra,
        }
        params["sign"] = rsa.sign(self._private_key, string_to_sign(params, keep_empty=False))
        return params

    async def _call(self, method: str, biz_content: Mapping[str, str], **extra: str) -> Any:
        """One call; its verified answer, the `<method>_response` object.

        Every call here is safe to repeat (precreate is idempotent per out_trade_no), so one lost
        kept-alive connection is retried, within PAYMENT_GATEWAY_TIMEOUT for both tries."""
        form = self.signed_params(method, biz_content, now=datetime.now(UTC), **extra)
        deadline = time.monotonic() + settings.PAYMENT_GATEWAY_TIMEOUT
        for last in (False, True):
            try:
                status, content = await _post(
                    self.config.gateway_url, form, deadline - time.monotonic()
                )
                break
            except (aiohttp.ClientError, TimeoutError) as error:
                if last or not http.connection_lost(error) or time.monotonic() >= deadline:
                    raise GatewayError(f"{method}: {type(error).__name__}: {error}") from error
        if status == 429:
            raise GatewayThrottled(f"{method}: HTTP 429")
        if status != 200:
            raise GatewayError(f"{method}: HTTP {status}")
        return self.verified_answer(method, content)

    def verified_answer(self, method: str, content: bytes) -> dict[str, Any]:
        """The `<method>_response` object of an answer whose `sign` verifies, or GatewayError."""
        key = method.replace(".", "_") + "_response"
        try:
            text = content.decode("utf-8")
            spans = top_level_spans(text)
            signed = text[slice(*spans[key])]
            answer = json.loads(signed)
            signature = json.loads(text[slice(*spans["sign"])]) if "sign" in spans else ""
        except (UnicodeDecodeError, ValueError, KeyError, RecursionError) as error:
            raise GatewayError(f"{method}: malformed answer: {error!r}") from error
        if not isinstance(answer, dict) or not isinstance(signature, str):
            raise GatewayError(f"{method}: malformed answer")
        if not signature:
            # Alipay leaves some gateway errors unsigned; name the claim, trust nothing in it.
            raise GatewayError(f"{method}: unsigned answer (claims {_error(answer)})")
        if not rsa.verifies(self._public_key, signed.encode(), signature):
            raise GatewayError(f"{method}: answer's signature does not verify")
        return answer


def payment_id(biz: str) -> str:
    return PAYMENT_ID_PREFIX + biz


def biz_of(payment_id: str) -> str:
    biz = payment_id.removeprefix(PAYMENT_ID_PREFIX)
    if biz == payment_id or not BIZ.fullmatch(biz):
        raise GatewayError(f"not an Alipay payment id: {payment_id!r}")
    return biz


def subject(description: str) -> str:
    # Alipay refuses a subject longer than 256 characters or holding `/`, `=` or `&`.
    return re.sub(r"[/=&]", " ", description)[:256] or "-"


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def fen(yuan: str) -> int:
    if not isinstance(yuan, str) or not YUAN.fullmatch(yuan):
        raise ValueError(f"not an amount in yuan: {yuan!r}")
    return int(Decimal(yuan) * 100)


def beijing(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING)


def string_to_sign(fields: Mapping[str, str], *, keep_empty: bool) -> bytes:
    """The sorted `key=value` pairs joined by `&`, without `sign`; without empty values for a
    request (keep_empty=False), with them for a notice, whose `sign_type` the caller removes."""
    pairs = sorted(
        (key, value)
        for key, value in fields.items()
        if key != "sign" and (keep_empty or value != "")
    )
    return "&".join(f"{key}={value}" for key, value in pairs).encode()


def top_level_spans(text: str) -> dict[str, tuple[int, int]]:
    """Where each value of a JSON object's top level lies in `text`: Alipay signs the exact text of
    the response value, so it is cut out as sent, never serialised again."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    at = _skip_space(text, 0)
    if text[at : at + 1] != "{":
        raise ValueError("not a JSON object")
    at = _skip_space(text, at + 1)
    if text[at : at + 1] == "}":
        return spans
    while True:
        key, length = decoder.raw_decode(text[at:])
        if not isinstance(key, str) or key in spans:
            raise ValueError("bad or repeated key")
        at = _skip_space(text, at + length)
        if text[at : at + 1] != ":":
            raise ValueError("expected ':'")
        at = _skip_space(text, at + 1)
        _, length = decoder.raw_decode(text[at:])
        spans[key] = (at, at + length)
        at = _skip_space(text, at + length)
        if text[at : at + 1] == "}":
            if text[at + 1 :].strip():
                raise ValueError("text after the object")
            return spans
        if text[at : at + 1] != ",":
            raise ValueError("expected ',' or '}'")
        at = _skip_space(text, at + 1)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _error(answer: Mapping[str, Any]) -> str:
    return " ".join(
        str(answer.get(key)) for key in ("code", "msg", "sub_code", "sub_msg") if answer.get(key)
    )


def _notice_fields(body: bytes) -> dict[str, str]:
    if len(body) > MAX_NOTICE_BYTES:
        raise NoticeRejected("malformed", f"body of {len(body)} bytes")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_NOTICE_FIELDS,
        )
    except ValueError as error:  # UnicodeDecodeError included
        raise NoticeRejected("malformed", f"not a form: {error}") from None
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise NoticeRejected("malformed", "a field is repeated")
    return fields


def _payment(data: Mapping[str, Any], *, paid_at_field: str) -> GatewayPayment:
    biz = data["out_trade_no"]
    if not isinstance(biz, str) or not BIZ.fullmatch(biz):
        raise ValueError("out_trade_no is not well-formed")
    status = TRADE_STATUSES[data["trade_status"]]
    amount = fen(data["total_amount"])
    if not 0 < amount <= MAX_AMOUNT:
        raise ValueError("total_amount must be positive and at most 2**31 - 1 fen")
    paid_at = data.get(paid_at_field)
    return GatewayPayment(
        payment_id=payment_id(biz),
        biz=biz,
        status=status,
        amount=amount,
        currency="CNY",
        paid_at=parse_beijing(paid_at) if status == PaymentStatus.SUCCEEDED and paid_at else None,
    )


def _notice(fields: Mapping[str, str]) -> PaymentNotice:
    for key, pattern in (("trade_no", TRADE_NO), ("notify_id", NOTIFY_ID)):
        if not pattern.fullmatch(fields[key]):
            raise ValueError(f"{key} is not well-formed")
    # A notice is about one change of one trade; Alipay delivers the same notify_id again until
    # it is answered `success`, so it names the event.
    return PaymentNotice(
        event_id=PAYMENT_ID_PREFIX + fields["notify_id"],
        payment=_payment(fields, paid_at_field="gmt_payment"),
    )


async def _post(url: str, form: Mapping[str, str], seconds: float) -> tuple[int, bytes]:
    async with http.session().post(
        url,
        data=form,  # form-encoded, UTF-8
        timeout=aiohttp.ClientTimeout(total=seconds),
        allow_redirects=False,
        proxy=settings.PAYMENT_GATEWAY_PROXY,
    ) as response:
        return response.status, await response.read()
