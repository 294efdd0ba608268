"""Everything that creates a payment or changes its status. Each change that settles a payment
(decision, close, expiry) goes through `_settle`, which also enqueues its notification."""

from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from sandbox import locks, wakeups
from sandbox.models import Payment, PaymentStatus
from sandbox.notifications import notification_enqueue
from sandbox.parsing import InvalidRequest, NewPayment


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


def payment_get(*, payment_id: str) -> Payment:
    """Raises Payment.DoesNotExist."""
    return Payment.objects.get(pk=payment_id)


def payment_latest_for(*, out_trade_no: str) -> Payment:
    """The newest payment for a merchant order. Raises Payment.DoesNotExist."""
    payment = Payment.objects.filter(out_trade_no=out_trade_no).order_by("-created").first()
    if payment is None:
        raise Payment.DoesNotExist(out_trade_no)
    return payment


def payment_create(*, request: NewPayment, idempotency_key: str) -> tuple[Payment, bool]:
    """The payment for this key, created unless it exists; True if it was created now."""
    fingerprint = request.fingerprint()
    # Only a new payment must expire in the future; a replay of an old request is answered. A new
    # key is the usual case: insert at once, and let the unique key find a replay (no read first).
    if request.expire_at > timezone.now().timestamp():
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    out_trade_no=request.out_trade_no,
                    amount=request.amount,
                    currency=request.currency,
                    description=request.description,
                    notify_url=request.notify_url,
                    expire_at=datetime.fromtimestamp(request.expire_at, UTC),
                    idempotency_key=idempotency_key,
                    request_fingerprint=fingerprint,
                )
            return payment, True
        except IntegrityError:
            pass  # the key was used before, or by a parallel request that won the insert
    existing = Payment.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        raise InvalidRequest("expire_at must be in the future")
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyConflict(idempotency_key)
    return existing, False


def _settle(payment: Payment, status: PaymentStatus, now: datetime) -> None:
    payment.status = status
    if status == PaymentStatus.SUCCEEDED:
        payment.paid_at = now
    payment.save(update_fields=["status", "paid_at", "updated"])
    notification_enqueue(payment=payment)
    transaction.on_commit(lambda: wakeups.payment_changed(payment.id))


def payment_decide(*, payment_id: str, approve: bool) -> tuple[Payment, bool]:
    """Apply the shopper's decision to a pending payment; False if it was no longer pending."""
    now = timezone.now()
    with transaction.atomic():
        payment = locks.payment_for_update(payment_id)
        if payment.is_overdue(now):
            _settle(payment, PaymentStatus.CLOSED, now)
            return payment, False
        if payment.status != PaymentStatus.PENDING:
            return payment, False
        _settle(payment, PaymentStatus.SUCCEEDED if approve else PaymentStatus.FAILED, now)
        return payment, True


def payment_close(*, payment_id: str) -> Payment:
    """Close a pending payment; any other payment is returned as it stands."""
    now = timezone.now()
    with transaction.atomic():
        payment = locks.payment_for_update(payment_id)
        if payment.status == PaymentStatus.PENDING:
            _settle(payment, PaymentStatus.CLOSED, now)
        return payment


def payment_expire_if_overdue(payment: Payment) -> Payment:
    """The payment as it stands, closing it first if it is pending past its expiry."""
    now = timezone.now()
    if not payment.is_overdue(now):
        return payment
    with transaction.atomic():
        payment = locks.payment_for_update(payment.id)
        if payment.is_overdue(now):
            _settle(payment, PaymentStatus.CLOSED, now)
        return payment


def payments_expire_overdue(*, limit: int = 100) -> int:
    """Close pending payments past their expiry; how many were closed."""
    now = timezone.now()
    # Most rounds find nothing: look without a transaction or a lock first.
    if not Payment.objects.filter(status=PaymentStatus.PENDING, expire_at__lte=now).exists():
        return 0
    with transaction.atomic():
        overdue = list(locks.payments_overdue_for_update(now, limit))
        for payment in overdue:
            _settle(payment, PaymentStatus.CLOSED, now)
    return len(overdue)
