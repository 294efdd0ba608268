"""The one small interface between the shop and a payment system: start, query, close, verify.

Answers are typed dataclasses, never raw dicts, so the rest of the shop never parses a gateway's
wire format. A second real gateway is a new module implementing `Gateway`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from checkout.models import PaymentStatus


@dataclass(frozen=True)
class PaymentRequest:
    biz: str  # our order id, the payment system's out_trade_no
    amount: int
    currency: str
    description: str
    notify_url: str
    expire_at: datetime


@dataclass(frozen=True)
class GatewayPayment:
    """A payment as the payment system reports it."""

    payment_id: str
    biz: str
    status: PaymentStatus
    amount: int
    currency: str
    cashier_url: str = ""
    paid_at: datetime | None = None


@dataclass(frozen=True)
class PaymentNotice:
    """A verified notification: which event, and what it says about which payment."""

    event_id: str
    payment: GatewayPayment


class GatewayError(Exception):
    """The payment system is down, too slow, or answered with an error."""


class NoticeRejected(Exception):
    """A notification that is not genuine or not well-formed; `verdict` says which."""

    def __init__(self, verdict: str, detail: str) -> None:
        super().__init__(detail)
        self.verdict = verdict
        self.detail = detail


class Gateway(Protocol):
    name: str

    async def start(self, request: PaymentRequest) -> GatewayPayment:
        """Create the payment (idempotent per order) and return at once, still pending."""
        ...

    async def query(self, *, biz: str, payment_id: str | None = None) -> GatewayPayment | None:
        """The payment for an order, or None if the payment system has none. `payment_id`, when
        the shop has recorded one, for a payment system that looks payments up only by its own id
        (Stripe's Checkout Sessions)."""
        ...

    async def close(self, *, payment_id: str) -> GatewayPayment | None:
        """Close a pending payment; returns the payment as it then stands (maybe succeeded), or
        None when the payment system has nothing to close (an Alipay code never scanned)."""
        ...

    def verify_notice(self, *, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        """Check signature and format; raise NoticeRejected otherwise."""
        ...
