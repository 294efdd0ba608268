"""Applying a payment result: the one function every path uses.

Notifications, the reconciler's active queries and its expiry all end here, so the state rules of
`checkout.states` are applied in exactly one place, under the order's row lock.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from checkout import locks, states
from checkout.gateways.base import GatewayPayment
from checkout.models import Flag, Notification, Order, OrderStatus, Payment, PaymentStatus
from checkout.panels import PanelState, panel_state
from checkout.push import push_order_changed, push_soon
from shop import sql
from shop.db import db_step


@dataclass(frozen=True)
class Applied:
    biz: str
    changed: bool
    outcome: str  # the order's new status, or why nothing changed
    state: PanelState | None = None  # when changed: what the shopper's panel shows now


def result_apply(
    *, biz: str, payment: GatewayPayment | None, notification: Notification | None = None
) -> Applied:
    """Apply what the payment system says about an order's payment.

    `payment` None means the payment system has no payment for the order and its time is up.
    `notification`, the unsaved record of the request that brought the result, is saved with its
    outcome in the same transaction: one commit, and never a result without its record.
    """
    with transaction.atomic():
        try:
            order = locks.order_for_update(biz)
        except Order.DoesNotExist:
            applied = Applied(biz, False, "unknown_order")
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
            sql.insert(notification)
    return applied


def result_settle(
    *, biz: str, payment: GatewayPayment | None, notification: Notification | None = None
) -> Applied:
    """Apply a result, then, once it is committed, hand the push to the shopper's page to the
    event loop (`push_soon`): for a request's thread (a notification's)."""
    applied = result_apply(biz=biz, payment=payment, notification=notification)
    if applied.state is not None:
        push_soon(applied.state)
    return applied


async def result_receive(*, biz: str, payment: GatewayPayment | None) -> Applied:
    """Apply a result, then, once it is committed, tell the shopper's page: for the event loop
    (the reconciler's), which waits for the push, a standalone reconciler's loop possibly ending
    right after."""
    applied = await db_step(result_apply)(biz=biz, payment=payment)
    if applied.state is not None:
        await push_order_changed(applied.state)
    return applied


def _apply_locked(order: Order, payment: GatewayPayment | None) -> Applied:
    reported = PaymentStatus.CLOSED
    if payment is not None:
        problem = _payment_mirror(order, payment)
        if problem:
            _flag(order, problem, f"{payment.payment_id}: {payment}")
            return Applied(order.biz, False, problem)
        reported = payment.status
    new_status = states.status_after(order.status, reported)
    if new_status is None:
        return Applied(order.biz, False, "unchanged")
    if new_status == OrderStatus.PAID:
        if order.status == OrderStatus.EXPIRED:
            _flag(order, Flag.Kind.PAID_AFTER_EXPIRY, "success reported after the order expired")
        elif order.status == OrderStatus.FAILED:
            _flag(order, Flag.Kind.PAID_AFTER_FAILURE, "success reported after a failure")
        order.paid_at = (payment.paid_at if payment else None) or timezone.now()
    order.status = new_status
    order.save_change("status", "paid_at")
    return Applied(order.biz, True, new_status, panel_state(order))


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
    row.last_heard_at = timezone.now()
    if row.pk is None:
        sql.insert(row)
    else:
        sql.update(row, "status", "last_heard_at", "updated_at")
    if payment.status == PaymentStatus.SUCCEEDED and (payment.amount, payment.currency) != (
        order.amount,
        order.currency,
    ):
        return Flag.Kind.AMOUNT_MISMATCH
    return ""


def _flag(order: Order, kind: str, detail: str) -> None:
    Flag.objects.get_or_create(order=order, kind=kind, defaults={"detail": detail})
