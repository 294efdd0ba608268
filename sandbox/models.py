"""What the sandbox payment system stores: payments, the notifications about them, and the knobs."""

import secrets
from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone


def new_payment_id() -> str:
    return "pay_" + secrets.token_hex(12)


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


class PaymentStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CLOSED = "closed"


class Payment(models.Model):
    id = models.CharField(primary_key=True, max_length=28, default=new_payment_id, editable=False)
    out_trade_no = models.CharField(max_length=64, db_index=True)
    amount = models.PositiveBigIntegerField(help_text="In minor units (fen, cents).")
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=256, blank=True)
    notify_url = models.URLField(max_length=1000)
    expire_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)
    # The unique key makes a retried create return the first payment, even when two race.
    idempotency_key = models.CharField(max_length=255, unique=True)
    # A hash of the create request, so a reused key with a different body is refused (409).
    request_fingerprint = models.CharField(max_length=64)

    class Meta:
        ordering = ["-created"]
        indexes = [
            # The expiry sweep looks only at pending payments.
            models.Index(
                fields=["expire_at"],
                condition=Q(status="pending"),
                name="sandbox_payment_pending_expiry",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="sandbox_payment_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return self.id

    def is_overdue(self, now: datetime) -> bool:
        return self.status == PaymentStatus.PENDING and self.expire_at <= now


class NotificationType(models.TextChoices):
    SUCCEEDED = "payment.succeeded"
    FAILED = "payment.failed"
    CLOSED = "payment.closed"


class DeliveryState(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    GAVE_UP = "gave_up"
    DROPPED = "dropped", "Dropped (knob)"


class Notification(models.Model):
    """One event about a payment, and where its delivery to the merchant stands."""

    id = models.CharField(primary_key=True, max_length=28, default=new_event_id, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="notifications")
    type = models.CharField(max_length=24, choices=NotificationType.choices)
    # The exact bytes sent: every retry and duplicate sends these, only the signature is fresh.
    body = models.BinaryField()
    url = models.URLField(max_length=1000)
    created = models.DateTimeField(default=timezone.now)
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    # The knobs as they were when the notification was enqueued.
    copies = models.PositiveSmallIntegerField(default=1, help_text="1 + the duplicate knob.")
    probe = models.BooleanField(default=False, help_text="Send a bad-signature probe first.")
    attempts = models.PositiveIntegerField(default=0)
    # While pending: when the next attempt is due (or when a claimed attempt's lease runs out).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="sandbox_notification_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class AttemptKind(models.TextChoices):
    ORIGINAL = "original"
    DUPLICATE = "duplicate"
    PROBE = "probe", "Bad-signature probe"


class DeliveryAttempt(models.Model):
    """One HTTP request made for a notification: what was answered, or what went wrong."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField(help_text="Which attempt of the notification.")
    kind = models.CharField(max_length=16, choices=AttemptKind.choices)
    sent_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["sent_at", "id"]

    def __str__(self) -> str:
        return f"{self.notification_id} #{self.number} {self.kind}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Knobs(models.Model):
    """The one row of test knobs, in the database so that every process sees them."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    delay_ms = models.PositiveIntegerField(default=0)
    duplicate = models.PositiveSmallIntegerField(default=0)
    reorder_ms = models.PositiveIntegerField(default=0)
    drop = models.BooleanField(default=False)
    bad_signature_probes = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "knobs"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="sandbox_knobs_singleton")]

    def __str__(self) -> str:
        return "Sandbox knobs"
