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
    return_url: str = ""  # the order's page, where a provider's own page sends the shopper back
    # Earlier payments of this provider for this order (closed when the shopper switched away).
    attempt: int = 0

    @property
    def idempotency_key(self) -> str:
        """The same for a Pay sent again (a double click, a lost answer): the same payment. A new
        one for a provider chosen again after its payment was closed."""
        return self.biz if self.attempt == 0 else f"{self.biz}-{self.attempt}"


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


class GatewayThrottled(GatewayError):
    """The payment system refused the call as one too many (HTTP 429, or its own code for it)."""


class NoticeRejected(Exception):
    """A notification that is not genuine or not well-formed; `verdict` says which."""

    def __init__(self, verdict: str, detail: str) -> None:
        super().__init__(detail)
        self.verdict = verdict
        self.detail = detail


class Gateway(Protocol):
    name: str
    # Whether a new payment can be started for an order whose payment here was closed (the
    # shopper switched away and back): not where the order's biz is the trade's number for good
    # (Alipay's ACQ.TRADE_HAS_CLOSE, WeChat Pay's ORDERCLOSED).
    starts_after_close: bool

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

    def notice_answer(
        self, *, status: int, verdict: str = "", outcome: str = ""
    ) -> tuple[int, bytes, str]:
        """The provider's own answer to a notification, given the shop's as an HTTP status (2xx
        recorded, 4xx refused, 5xx not recorded: send it again) and what the shop made of it
        (`Notification.verdict`, `outcome`): status, body, content type."""
        ...
