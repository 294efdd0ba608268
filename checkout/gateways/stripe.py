"""Stripe Checkout Sessions, through the official `stripe` package's async calls (contract 6).

`import stripe` below is the package, not this module: imports are absolute.
"""

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import aiohttp
import stripe
from django.conf import settings

from checkout.gateways import http, signed_header
from checkout.gateways.fields import BIZ, MAX_AMOUNT, field
from checkout.gateways.config import required_settings
from checkout.gateways.base import (
    GatewayError,
    GatewayThrottled,
    GatewayPayment,
    NoticeRejected,
    PaymentNotice,
    PaymentRequest,
)
from checkout.models import PaymentStatus

HEADER = "Stripe-Signature"
DEFAULT_API_URL = "https://api.stripe.com"
# Stripe refuses an `expires_at` less than 30 minutes or more than 24 hours ahead.
SESSION_OUTLIVES_ORDER = timedelta(minutes=31)
LONGEST_SESSION = timedelta(hours=23, minutes=59)
MAX_NOTICE_BYTES = 64 * 1024  # contract section 4
# Stripe's ids are opaque, at most 255 characters; these are the prefixes it documents.
SESSION_ID = re.compile(r"cs_(test|live)_[0-9A-Za-z]{1,247}", re.ASCII)
EVENT_ID = re.compile(r"evt_[0-9A-Za-z_]{1,251}", re.ASCII)
CURRENCY = re.compile(r"[a-z]{3}", re.ASCII)
LIVE_KEY = re.compile(r"(sk|rk)_live_")

SESSION_STATUS = {"open", "complete", "expired"}
PAYMENT_STATUS = {"paid", "unpaid", "no_payment_required"}
# Each event type, with the session states it may carry, and what it says about the payment.
# A completed session is paid only when its payment_status says so: a delayed payment method
# (a bank debit) completes first and succeeds or fails later.
EVENTS: dict[str, tuple[set[str], set[str]]] = {
    "checkout.session.completed": ({"complete"}, PAYMENT_STATUS),
    "checkout.session.async_payment_succeeded": ({"complete"}, {"paid"}),
    "checkout.session.async_payment_failed": ({"complete"}, {"unpaid"}),
    "checkout.session.expired": ({"expired"}, PAYMENT_STATUS),
}


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str
    webhook_secret: str
    api_url: str = DEFAULT_API_URL

    @classmethod
    def from_settings(cls) -> Self:
        values = required_settings("Stripe", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")
        api_url = getattr(settings, "STRIPE_API_URL", None) or DEFAULT_API_URL
        return cls(
            secret_key=values["STRIPE_SECRET_KEY"],
            webhook_secret=values["STRIPE_WEBHOOK_SECRET"],
            api_url=api_url.rstrip("/"),
        )

    @property
    def livemode(self) -> bool:
        return LIVE_KEY.match(self.secret_key) is not None


class StripeGateway:
    name = "stripe"
    starts_after_close = True

    def __init__(self, config: StripeConfig) -> None:
        self.config = config

    async def start(self, request: PaymentRequest) -> GatewayPayment:
        params = {
            "mode": "payment",
            "client_reference_id": request.biz,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "success_url": request.return_url,
            "cancel_url": request.return_url,
            "expires_at": _session_expiry(request.expire_at),
        }
        # The order's id is the idempotency key: a Pay whose answer was lost repeats the create,
        # and Stripe replays the first answer (for 24 h) instead of opening a second session.
        options = {"idempotency_key": request.idempotency_key}
        session = await self._call(
            lambda client: client.v1.checkout.sessions.create_async(params, options)
        )
        payment = _payment(session, biz=request.biz)
        if (payment.amount, payment.currency) != (request.amount, request.currency.upper()):
            raise GatewayError(f"Stripe answered a session for another amount: {payment}")
        if not payment.cashier_url:
            raise GatewayError("Stripe answered a session without a url")
        return payment

    async def query(self, *, biz: str, payment_id: str | None = None) -> GatewayPayment | None:
        """The session `payment_id`. Stripe has no look-up by client_reference_id (its search is
        eventually consistent): without the session's id there is nothing to ask, so None."""
        if payment_id is None:
            return None
        _check_session_id(payment_id)
        try:
            session = await self._call(
                lambda client: client.v1.checkout.sessions.retrieve_async(payment_id)
            )
        except _NotFound:
            return None
        return _payment(session, biz=biz, payment_id=payment_id)

    async def close(self, *, payment_id: str) -> GatewayPayment:
        """Expire the session; a session that is no longer open (paid, or already expired) cannot
        be expired, and is returned as it stands."""
        _check_session_id(payment_id)
        try:
            session = await self._call(
                lambda client: client.v1.checkout.sessions.expire_async(payment_id)
            )
        except _Refused:
            session = await self._call(
                lambda client: client.v1.checkout.sessions.retrieve_async(payment_id)
            )
            payment = _payment(session, payment_id=payment_id)
            if session["status"] == "open":  # checked by _payment
                raise GatewayError(f"Stripe refused to expire the open session {payment_id}")
            return payment
        return _payment(session, payment_id=payment_id)

    def verify_notice(self, *, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        if len(body) > MAX_NOTICE_BYTES:
            raise NoticeRejected("malformed", "body over 64 KiB")
        # Both sides of the 300 s window: stripe-python's own check refuses only old timestamps.
        try:
            signed_header.verify(
                headers.get(HEADER), body, [self.config.webhook_secret], now=int(time.time())
            )
        except signed_header.SignatureError as error:
            raise NoticeRejected("bad_signature", str(error)) from None
        try:
            return _notice(json.loads(body), livemode=self.config.livemode)
        except (ValueError, TypeError, KeyError, RecursionError) as error:
            raise NoticeRejected("malformed", f"not a Stripe checkout event: {error}") from None

    def notice_answer(
        self, *, status: int, verdict: str = "", outcome: str = ""
    ) -> tuple[int, bytes, str]:
        """Stripe counts any 2xx as delivered and retries anything else for three days."""
        return status, json.dumps({"received": status < 300}).encode(), "application/json"

    async def _call(
        self, call: Callable[[stripe.StripeClient], Awaitable[stripe.checkout.Session]]
    ) -> stripe.checkout.Session:
        """One Stripe request, with at most one retry (connection lost, 409, 5xx; a POST keeps its
        idempotency key), all within PAYMENT_GATEWAY_TIMEOUT."""
        seconds = settings.PAYMENT_GATEWAY_TIMEOUT
        client = stripe.StripeClient(
            self.config.secret_key,
            base_addresses={"api": self.config.api_url},
            max_network_retries=1,
            http_client=stripe.AIOHTTPClient(
                session=http.session(),
                timeout=aiohttp.ClientTimeout(total=seconds),
                proxy=settings.PAYMENT_GATEWAY_PROXY,
            ),
        )
        try:
            async with asyncio.timeout(seconds):
                return await call(client)
        except stripe.InvalidRequestError as error:
            if error.http_status == 404 and error.code == "resource_missing":
                raise _NotFound(str(error)) from error
            if error.http_status == 400:
                raise _Refused(str(error)) from error
            raise GatewayError(f"Stripe: HTTP {error.http_status}: {error}") from error
        except stripe.RateLimitError as error:
            raise GatewayThrottled(f"Stripe: HTTP 429: {error}") from error
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe: {type(error).__name__}: {error}") from error
        except TimeoutError as error:
            raise GatewayError(f"Stripe: no answer within {seconds} s") from error
        except (ValueError, TypeError, AttributeError) as error:  # a body that is no object
            raise GatewayError(f"Stripe: malformed answer: {error!r}") from error


class _NotFound(GatewayError):
    """Stripe has no such object."""


class _Refused(GatewayError):
    """Stripe refused the request as invalid (HTTP 400)."""


def _session_expiry(order_expiry: datetime) -> int:
    """A value from the order alone, so that a repeated create has the same parameters, as
    Stripe's idempotency replay requires; at least 31 minutes ahead, since the order had not
    expired when Pay was pressed. The shop expires the session itself when the order expires."""
    latest = datetime.now(UTC) + LONGEST_SESSION
    return int(min(order_expiry + SESSION_OUTLIVES_ORDER, latest).timestamp())


def _check_session_id(payment_id: str) -> None:
    if not SESSION_ID.fullmatch(payment_id):
        raise GatewayError(f"not a Stripe Checkout Session id: {payment_id!r}")


def _status(session: Mapping[str, Any]) -> PaymentStatus:
    status = field(session, "status", str)
    paid = field(session, "payment_status", str)
    if status not in SESSION_STATUS or paid not in PAYMENT_STATUS:
        raise ValueError("unknown status or payment_status")
    if status == "expired":
        return PaymentStatus.CLOSED
    # Complete but unpaid: a delayed payment method, succeeded or failed by a later event.
    if status == "complete" and paid != "unpaid":
        return PaymentStatus.SUCCEEDED
    return PaymentStatus.PENDING


def _payment(
    session: stripe.checkout.Session, *, biz: str | None = None, payment_id: str | None = None
) -> GatewayPayment:
    """The session as a payment, refused unless it is the one asked about."""
    try:
        data = session.to_dict()
        payment = _session_payment(data, cashier_url=data.get("url") or "")
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise GatewayError(f"unexpected session from Stripe: {error!r}") from error
    if biz is not None and payment.biz != biz:
        raise GatewayError(f"Stripe answered a session for order {payment.biz}, not {biz}")
    if payment_id is not None and payment.payment_id != payment_id:
        raise GatewayError(f"Stripe answered session {payment.payment_id}, not {payment_id}")
    return payment


def _session_payment(data: Mapping[str, Any], *, cashier_url: str = "") -> GatewayPayment:
    if field(data, "object", str) != "checkout.session" or data.get("mode") != "payment":
        raise ValueError("not a payment-mode checkout.session")
    if not isinstance(cashier_url, str):
        raise TypeError("url must be str")
    amount = field(data, "amount_total", int)
    if not 0 < amount <= MAX_AMOUNT:
        raise ValueError("amount_total must be positive and at most 2**31 - 1")
    return GatewayPayment(
        payment_id=field(data, "id", str, SESSION_ID),
        biz=field(data, "client_reference_id", str, BIZ),
        status=_status(data),
        amount=amount,
        currency=field(data, "currency", str, CURRENCY).upper(),
        cashier_url=cashier_url,
    )


def _notice(event: Any, *, livemode: bool) -> PaymentNotice:
    if not isinstance(event, dict) or field(event, "object", str) != "event":
        raise TypeError("body must be an event object")
    kinds = EVENTS.get(field(event, "type", str))
    if kinds is None:
        raise ValueError(f"unhandled event type {event['type']!r}")
    data = event["data"]
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise TypeError("data.object must be an object")
    session = data["object"]
    # A test-mode event is no payment for a live shop, nor the other way round.
    if field(event, "livemode", bool) is not livemode or session.get("livemode") is not livemode:
        raise ValueError("livemode does not match the secret key's mode")
    payment = _session_payment(session)
    statuses, payment_statuses = kinds
    if session["status"] not in statuses or session["payment_status"] not in payment_statuses:
        raise ValueError("the session's status does not match the event type")
    created = field(event, "created", int)
    if not 0 < created < 2**36:
        raise ValueError("created is out of range")
    if event["type"] == "checkout.session.async_payment_failed":
        payment = replace(payment, status=PaymentStatus.FAILED)
    elif payment.status == PaymentStatus.SUCCEEDED:
        payment = replace(payment, paid_at=datetime.fromtimestamp(created, UTC))
    return PaymentNotice(event_id=field(event, "id", str, EVENT_ID), payment=payment)
