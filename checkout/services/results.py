"""Applying what the payment system says: the one function that changes an order's status.

Pay's answer, notifications, the reconciler's queries and its expiry all end in `result_apply`, so
the rules of `checkout.states` are applied in one place, under the order's row lock.
"""

from dataclasses import dataclass
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from checkout import locks, states
from checkout.gateways.base import GatewayPayment
from checkout.models import Flag, Notification, Order, OrderStatus, Payment, PaymentStatus
from checkout.panels import PanelState, panel_state
from checkout.push import push_order_changed


@dataclass(frozen=True)
class Applied:
    biz: str
    outcome: str  # the order's new status, or why nothing changed
    state: PanelState | None = None  # when the order changed: what its panel shows now
    order: Order | None = None  # as locked, with its product and payment

    @property
    def changed(self) -> bool:
        return self.state is not None


def result_apply(
    *, biz: str, payment: GatewayPayment | None, notification: Notification | None = None
) -> Applied:
    """Apply what the payment system says about an order's payment.

    `payment` None means the payment system has no payment for the order and its time is up.
    `notification`, the unsaved record of the request that brought the result, is saved with its
    outcome in the same transaction: never a result without its record.
    """
    with transaction.atomic():
        try:
            order = locks.order_for_update(biz)
        except Order.DoesNotExist:
            applied = Applied(biz, "unknown_order")
        else:
            applied = _apply_locked(order, payment)
        if notification is not None:
            notification.verdict = (
                Notification.Verdict.UNKNOWN_ORDER
                if applied.outcome == "unknown_order"
                else Notification.Verdict.ACCEPTED
            )
            notification.outcome = applied.outcome
            notification.processed_at = timezone.now()
            notification.save()
    return applied


async def result_receive(
    *,
    biz: str,
    payment: GatewayPayment | None,
    notification: Notification | None = None,
    pressed_in: str | None = None,
) -> Applied:
    """`result_apply`, then, once the change is committed, tell the shopper's page."""
    applied = await database_sync_to_async(result_apply)(
        biz=biz, payment=payment, notification=notification
    )
    if applied.changed:
        await push_order_changed(applied.state, pressed_in=pressed_in)
    return applied


def _apply_locked(order: Order, payment: GatewayPayment | None) -> Applied:
    reported = PaymentStatus.CLOSED
    if payment is not None:
        problem = _payment_mirror(order, payment)
        if problem:
            _flag(order, problem, f"{payment.payment_id}: {payment}")
            return Applied(order.biz, problem, order=order)
        reported = payment.status
    new_status = states.status_after(order.status, reported)
    if new_status is None:
        return Applied(order.biz, "unchanged", order=order)
    if new_status == OrderStatus.PAID:
        if order.status == OrderStatus.EXPIRED:
            _flag(order, Flag.Kind.PAID_AFTER_EXPIRY, "success reported after the order expired")
        elif order.status == OrderStatus.FAILED:
            _flag(order, Flag.Kind.PAID_AFTER_FAILURE, "success reported after a failure")
        order.paid_at = (payment.paid_at if payment else None) or timezone.now()
    if new_status == OrderStatus.PENDING:
        # No word from the payment system within this time: the reconciler asks it.
        query_at = timezone.now() + timedelta(seconds=settings.RECONCILE_QUERY_AFTER)
        order.reconcile_after = min(query_at, order.expires_at)
    order.status = new_status
    order.save_change("status", "paid_at", "reconcile_after")
    return Applied(order.biz, new_status, panel_state(order), order)


def _payment_mirror(order: Order, payment: GatewayPayment) -> str:
    """Record what the payment system said; return a problem that must stop the order changing."""
    row = order.payment_or_none
    if row is None:
        row = Payment.reported(order, payment)
    elif row.payment_id != payment.payment_id:
        return Flag.Kind.FOREIGN_PAYMENT
    # A payment only leaves pending, and succeeded is final, whatever order deliveries come in.
    if row.status == PaymentStatus.PENDING or payment.status == PaymentStatus.SUCCEEDED:
        row.status = payment.status
    # A notification can come before Pay's answer: the cashier link comes with the answer.
    row.cashier_url = row.cashier_url or payment.cashier_url
    row.last_heard_at = timezone.now()
    row.save()
    if payment.status == PaymentStatus.SUCCEEDED and (payment.amount, payment.currency) != (
        order.amount,
        order.currency,
    ):
        return Flag.Kind.AMOUNT_MISMATCH
    return ""


def _flag(order: Order, kind: str, detail: str) -> None:
    Flag.objects.get_or_create(order=order, kind=kind, defaults={"detail": detail})
