"""The rules of an order's status: the only place that says which change is allowed.

The payment system is the truth about money. A payment it reports started makes an unpaid order
pending; a pending order's shopper may switch to another provider. A success is accepted from any state but paid (a success after our expiry or after a
failure still took the shopper's money); a failure or a close only ends an order that is still
waiting; paid is final.
"""

from checkout.models import OrderStatus, PaymentStatus

WAITING = frozenset({OrderStatus.UNPAID, OrderStatus.PENDING})
FINAL = frozenset({OrderStatus.PAID, OrderStatus.FAILED, OrderStatus.EXPIRED})

_REPORTED_TO_ORDER = {
    PaymentStatus.PENDING: OrderStatus.PENDING,
    PaymentStatus.SUCCEEDED: OrderStatus.PAID,
    PaymentStatus.FAILED: OrderStatus.FAILED,
    PaymentStatus.CLOSED: OrderStatus.EXPIRED,
}


def can_start_payment(status: str) -> bool:
    return status == OrderStatus.UNPAID


def can_switch_provider(status: str) -> bool:
    """A pending order may be paid with another provider: its payment is closed first."""
    return status == OrderStatus.PENDING


def status_after(current: str, reported: PaymentStatus) -> OrderStatus | None:
    """The order's new status when the payment system reports `reported`, or None for no change."""
    target = _REPORTED_TO_ORDER.get(reported)
    if target is None or current == OrderStatus.PAID:
        return None
    if target == OrderStatus.PAID:
        return target
    if target == OrderStatus.PENDING:
        return target if current == OrderStatus.UNPAID else None
    return target if current in WAITING else None
