"""The sandbox payment system, spoken to over HTTP only (contract sections 3 and 4)."""

import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from django.conf import settings

from checkout.gateways import http, signed_header
from checkout.gateways.fields import BIZ, MAX_AMOUNT, field
from checkout.gateways.base import (
    GatewayError,
    GatewayThrottled,
    GatewayPayment,
    NoticeRejected,
    PaymentNotice,
    PaymentRequest,
)
from checkout.models import PaymentStatus

HEADER = "Sandbox-Signature"
NOTICE_TYPES = {
    "payment.succeeded": PaymentStatus.SUCCEEDED,
    "payment.failed": PaymentStatus.FAILED,
    "payment.closed": PaymentStatus.CLOSED,
}
EVENT_ID = re.compile(r"evt_[0-9a-f]{24}")
PAYMENT_ID = re.compile(r"pay_[0-9a-f]{24}")
CURRENCY = re.compile(r"[A-Z]{3}")


class SandboxGateway:
    name = "sandbox"
    starts_after_close = True

    async def start(self, request: PaymentRequest) -> GatewayPayment:
        body = {
            "out_trade_no": request.biz,
            "amount": request.amount,
            "currency": request.currency,
            "description": request.description,
            "notify_url": request.notify_url,
            "expire_at": int(request.expire_at.timestamp()),
        }
        # The order's id is the idempotency key: a double click or a retry is the same payment.
        data = await self._call(
            "POST",
            "v1/payments",
            body=body,
            headers={"Idempotency-Key": request.idempotency_key},
            idempotent=True,
        )
        return _payment(data)

    async def query(self, *, biz: str, payment_id: str | None = None) -> GatewayPayment | None:
        data = await self._call("GET", "v1/payments", params={"out_trade_no": biz}, missing_ok=True)
        return None if data is None else _payment(data)

    async def close(self, *, payment_id: str) -> GatewayPayment:
        data = await self._call("POST", f"v1/payments/{payment_id}/close", conflict_ok=True)
        if set(data) == {"status"}:  # 409: it was paid first; ask for the whole payment
            data = await self._call("GET", f"v1/payments/{payment_id}")
        return _payment(data)

    def verify_notice(self, *, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        secrets = [settings.SANDBOX_NOTIFY_SECRET, *settings.SANDBOX_NOTIFY_SECRETS_OLD]
        try:
            signed_header.verify(headers.get(HEADER), body, secrets, now=int(time.time()))
        except signed_header.SignatureError as error:
            raise NoticeRejected("bad_signature", str(error)) from None
        try:
            return _notice(json.loads(body))
        except (ValueError, TypeError, KeyError, RecursionError) as error:
            raise NoticeRejected("malformed", f"not a sandbox notification: {error}") from None

    def notice_answer(
        self, *, status: int, verdict: str = "", outcome: str = ""
    ) -> tuple[int, bytes, str]:
        """Any 2xx is delivered (contract section 4); the body says what the shop made of it, for
        the sandbox's delivery log."""
        answer = {"verdict": verdict, "outcome": outcome}
        return status, json.dumps(answer).encode(), "application/json"

    async def _call(
        self,
        method: str,
        path: str,
        *,
        missing_ok: bool = False,
        conflict_ok: bool = False,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> Any:
        """One request; sent a second time if its connection was lost and it is `idempotent`.

        A kept-alive connection can be closed by the payment system (its idle timeout) just as a
        request goes out on it: aiohttp retries an idempotent method (GET) by itself, and a POST
        with an idempotency key is safe to retry too. Both tries together take at most
        PAYMENT_GATEWAY_TIMEOUT."""
        deadline = time.monotonic() + settings.PAYMENT_GATEWAY_TIMEOUT
        for last in (not idempotent, True):
            try:
                left = deadline - time.monotonic()
                status, content = await _send(method, path, body, params, headers or {}, left)
                break
            except (aiohttp.ClientError, TimeoutError) as error:
                if last or not http.connection_lost(error) or time.monotonic() >= deadline:
                    raise GatewayError(
                        f"{method} {path}: {type(error).__name__}: {error}"
                    ) from error
        if status == 404 and missing_ok:
            return None
        if status == 429:
            raise GatewayThrottled(f"{method} {path}: HTTP 429")
        if not (200 <= status < 300 or (status == 409 and conflict_ok)):
            raise GatewayError(f"{method} {path}: HTTP {status}")
        try:
            return json.loads(content)
        except ValueError as error:
            raise GatewayError(f"{method} {path}: answer is not JSON") from error


async def _send(
    method: str,
    path: str,
    body: Any,
    params: Mapping[str, str] | None,
    headers: Mapping[str, str],
    seconds: float,
) -> tuple[int, bytes]:
    async with http.session().request(
        method,
        settings.PAYMENT_GATEWAY_URL + path,
        json=body,
        params=params,
        headers={"Authorization": f"Bearer {settings.SANDBOX_API_KEY}", **headers},
        timeout=aiohttp.ClientTimeout(total=seconds),
        allow_redirects=False,
        proxy=settings.PAYMENT_GATEWAY_PROXY,
    ) as response:
        return response.status, await response.read()


def _timestamp(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _payment(data: Mapping[str, Any]) -> GatewayPayment:
    try:
        return GatewayPayment(
            payment_id=data["payment_id"],
            biz=data["out_trade_no"],
            status=PaymentStatus(data["status"]),
            amount=data["amount"],
            currency=data["currency"],
            cashier_url=data.get("cashier_url", ""),
            paid_at=_timestamp(data.get("paid_at")),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise GatewayError(f"unexpected payment from the sandbox: {error!r}") from error


def _notice(body: Any) -> PaymentNotice:
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise TypeError("body must be an object with a data object")
    data = body["data"]
    status = NOTICE_TYPES.get(field(body, "type", str))
    if status is None:
        raise ValueError("unknown type")
    if field(data, "status", str) != status.value:
        raise ValueError("data.status does not match type")
    field(body, "created", int)
    amount = field(data, "amount", int)
    if not 0 < amount <= MAX_AMOUNT:
        raise ValueError("amount must be positive and at most 2**31 - 1")
    return PaymentNotice(
        event_id=field(body, "id", str, EVENT_ID),
        payment=GatewayPayment(
            payment_id=field(data, "payment_id", str, PAYMENT_ID),
            biz=field(data, "out_trade_no", str, BIZ),
            status=status,
            amount=amount,
            currency=field(data, "currency", str, CURRENCY),
        ),
    )
