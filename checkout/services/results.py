"""Applying what the payment system says: the one function that changes an order's status.

Pay's answer, notifications, the reconciler's queries and its expiry all end in `result_apply`, so
the rules of `checkout.states` are applied in one place, under the order's row lock.

An order has one current payment (`Order.payment`), the one its shopper is paying with; a payment
of a provider the shopper switched from was closed first, and of what its provider still reports
only a success counts (the money was taken: the order is paid, or flagged as paid twice).
"""

from dataclasses import dataclass
from enum import StrEnum
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


class Source(StrEnum):
    """What brings a result."""

    REPORT = "report"  # a notification or the reconciler's query: what the provider says
    START = "start"  # Pay's answer: the payment the shopper pays with from now on
    SWITCH = "switch"  # the current payment, closed because the shopper chose another provider


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
    *,
    biz: str,
    payment: GatewayPayment | None,
    provider: str,
    notification: Notification | None = None,
    source: Source = Source.REPORT,
) -> Applied:
    """Apply what `provider` says about an order's payment.

    `payment` None means the provider has no payment for the order: its time is up (REPORT), or
    there was nothing to close (SWITCH). `notification`, the unsaved record of the request that
    brought the result, is saved with its outcome in the same transaction: never a result without
    its record.
    """
    with transaction.atomic():
        try:
            order = locks.order_for_update(biz)
        except Order.DoesNotExist:
            applied = Applied(biz, "unknown_order")
        else:
            applied = _apply_locked(order, payment, provider, source)
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
    provider: str,
    notification: Notification | None = None,
    source: Source = Source.REPORT,
    pressed_in: str | None = None,
) -> Applied:
    """`result_apply`, then, once the change is committed, tell the shopper's page."""
    applied = await database_sync_to_async(result_apply)(
        biz=biz, payment=payment, provider=provider, notification=notification, source=source
    )
    if applied.changed:
        await push_order_changed(applied.state, pressed_in=pressed_in)
    return applied


def _apply_locked(
    order: Order, payment: GatewayPayment | None, provider: str, source: Source
) -> Applied:
    if source == Source.SWITCH:
        return _switched_from(order, payment)
    reported: PaymentStatus | None = PaymentStatus.CLOSED
    switched = False
    row: Payment | None = None
    if payment is not None:
        # Pay's answer for a waiting order is news: a payment closed before it was ever paid (an
        # Alipay code never scanned, chosen again) is open again. For an order that has ended, it
        # is an old answer overtaken by the reconciler's close.
        reopen = source == Source.START and order.status in states.WAITING
        row, problem = _payment_mirror(order, provider, payment, reopen=reopen)
        if problem:
            _flag(order, problem, f"{payment.payment_id}: {payment}")
            return Applied(order.biz, problem, order=order)
        # Pay's answer makes its payment the current one, and so does a report that comes before
        # it (a notification overtaking Pay's answer), if it is of the provider Pay was last
        # pressed for (an order from before providers were recorded has none). An answer
        # overtaken by a Pay pressed for another provider leaves a pending payment that is not
        # the current one, as a switch does (a leftover: `checkout.reconcile`).
        pressed = order.provider in ("", provider)
        if pressed and (source == Source.START or order.payment_id is None):
            switched = order.payment_id != row.pk
            order.payment, order.provider = row, provider
        # A payment the shopper switched from counts only if it took the money.
        reported = payment.status
        if order.payment != row and reported != PaymentStatus.SUCCEEDED:
            reported = None
    new_status = None if reported is None else states.status_after(order.status, reported)
    if new_status is None:
        if switched:  # the same status, with another provider's code to show
            order.save_change("payment", "provider")
            return Applied(order.biz, "switched", panel_state(order), order)
        return Applied(order.biz, "unchanged", order=order)
    if payment is None and order.payment and order.payment.status == PaymentStatus.PENDING:
        # The time is up and the provider has no such payment (an Alipay code never scanned):
        # none can come now.
        _payment_closed(order.payment)
    if new_status == OrderStatus.PAID and row is not None and order.payment != row:
        # Paid by a payment it had switched from: that one is the order's now, and the reconciler
        # soon closes the one the shopper was paying with (a leftover, `checkout.reconcile`).
        if order.payment and order.payment.status == PaymentStatus.PENDING:
            order.reconcile_after = timezone.now()
        order.payment = row
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
    order.save_change("status", "paid_at", "reconcile_after", "payment", "provider")
    return Applied(order.biz, new_status, panel_state(order), order)


def _switched_from(order: Order, payment: GatewayPayment | None) -> Applied:
    """The current payment closed at its provider before another provider's starts: a success
    meanwhile pays the order; otherwise the order has no current payment until the other's answer,
    which the shopper is shown (Pay's answer) instead of this in-between state."""
    row = order.payment
    if row is None or row.status != PaymentStatus.PENDING:
        return Applied(order.biz, "unchanged", order=order)
    if payment is not None and payment.status == PaymentStatus.SUCCEEDED:
        return _apply_locked(order, payment, row.gateway, Source.REPORT)
    if payment is not None:
        _payment_closed(row)
    # Nothing to close (an Alipay code never scanned) leaves the payment pending: it can still be
    # paid until the order's time is up, and the reconciler asks about it until then.
    order.payment = None
    order.save(update_fields=["payment", "updated_at"])
    return Applied(order.biz, "closed", order=order)


def _payment_mirror(
    order: Order, provider: str, payment: GatewayPayment, *, reopen: bool
) -> tuple[Payment, str]:
    """Record what the provider said on the payment's row; return it, and a problem that must stop
    the order changing."""
    row = (
        order.payment if order.payment and order.payment.payment_id == payment.payment_id else None
    )
    row = row or Payment.objects.filter(payment_id=payment.payment_id).first()
    if row is None:
        row = Payment.reported(order, provider, payment)
    elif row.order_id != order.pk or row.gateway != provider:
        return row, Flag.Kind.FOREIGN_PAYMENT
    before = row.status
    newly_paid = payment.status == PaymentStatus.SUCCEEDED and before != PaymentStatus.SUCCEEDED
    # A payment only leaves pending, and succeeded is final, whatever order deliveries come in.
    if before == PaymentStatus.PENDING or newly_paid or reopen and before == PaymentStatus.CLOSED:
        row.status = payment.status
    # A notification can come before Pay's answer: the cashier link comes with the answer.
    row.cashier_url = row.cashier_url or payment.cashier_url
    row.last_heard_at = timezone.now()
    row.save()
    if payment.status == PaymentStatus.SUCCEEDED and (payment.amount, payment.currency) != (
        order.amount,
        order.currency,
    ):
        return row, Flag.Kind.AMOUNT_MISMATCH
    if before == PaymentStatus.SUCCEEDED and payment.status == PaymentStatus.CLOSED:
        _flag(order, Flag.Kind.REFUNDED, f"{payment.payment_id} closed after it was paid")
    if newly_paid and order.status == OrderStatus.PAID:
        # Another payment paid the order first: a provider the shopper switched from, paid after
        # all. The order stays paid; a person refunds one of them.
        _flag(order, Flag.Kind.PAID_TWICE, f"{payment.payment_id} paid after the order was paid")
    return row, ""


def _payment_closed(row: Payment) -> None:
    row.status, row.last_heard_at = PaymentStatus.CLOSED, timezone.now()
    row.save(update_fields=["status", "last_heard_at", "updated_at"])


def _flag(order: Order, kind: str, detail: str) -> None:
    Flag.objects.get_or_create(order=order, kind=kind, defaults={"detail": detail})
