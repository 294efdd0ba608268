"""What the shop knows: products, orders, the payments started for them, and every notification."""

import secrets
from typing import TYPE_CHECKING

from django.db import models
from django.urls import reverse

if TYPE_CHECKING:
    from checkout.gateways.base import GatewayPayment


def new_biz() -> str:
    # The order's public id: 128 random bits, so nobody can guess another shopper's order.
    return secrets.token_hex(16)


class Product(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    price = models.PositiveIntegerField(help_text="In minor units (fen).")
    currency = models.CharField(max_length=3, default="CNY")

    class Meta:
        ordering = ["price"]

    def __str__(self) -> str:
        return self.name


class OrderStatus(models.TextChoices):
    UNPAID = "unpaid"
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"


class Order(models.Model):
    biz = models.CharField(max_length=32, unique=True, default=new_biz, editable=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    amount = models.PositiveIntegerField(help_text="In minor units (fen).")
    currency = models.CharField(max_length=3)
    # The shopper's session token (not the session key, which Django rotates on login).
    owner = models.CharField(max_length=64, db_index=True)
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.UNPAID, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    # When the reconciler should next look at this order (active query, expiry).
    reconcile_after = models.DateTimeField(db_index=True)
    # One more with every change its shopper is told of (`save_change`): a socket that receives
    # pushes out of order shows none older than the last it showed (`checkout.consumers`).
    version = models.PositiveIntegerField(default=0, editable=False)
    # The payment provider the shopper last pressed Pay for, recorded before it is called: the
    # reconciler asks it about a payment whose answer was lost. Blank until Pay.
    provider = models.CharField(max_length=32, blank=True)
    # The payment the shopper is paying with now; earlier ones (another provider the shopper
    # switched from) were closed first, and only a success of theirs still counts.
    payment = models.ForeignKey(
        "Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.biz

    def get_absolute_url(self) -> str:
        """The order's page (what `redirect(order)` goes to)."""
        return reverse("checkout:order", kwargs={"biz": self.biz})

    def save_change(self, *fields: str) -> None:
        """Save `fields` as the order's next version; only under its row lock (`checkout.locks`).

        A counter, not `updated_at`: the row lock orders the changes, whereas two processes'
        clocks need not agree with it.
        """
        self.version += 1
        self.save(update_fields=[*fields, "version", "updated_at"])


class PaymentStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CLOSED = "closed"


class Payment(models.Model):
    """One payment at a payment provider for an order (the order's biz is its out_trade_no); one
    per provider the shopper chose, the order's `payment` the current one."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    gateway = models.CharField("provider", max_length=32, default="sandbox", db_index=True)
    # Stripe allows its ids up to 255 characters (a Checkout Session's are 66 and more).
    payment_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    cashier_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set whenever the payment system told us the payment's state (notification or query).
    last_heard_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.payment_id

    @classmethod
    def reported(cls, order: Order, provider: str, payment: "GatewayPayment") -> "Payment":
        """A new row, not saved, for the payment as the payment system reported it."""
        return cls(
            order=order,
            gateway=provider,
            payment_id=payment.payment_id,
            amount=payment.amount,
            currency=payment.currency,
            cashier_url=payment.cashier_url,
        )


class Notification(models.Model):
    """Every request to the notification endpoint, stored with what came of it."""

    class Verdict(models.TextChoices):
        RECEIVED = "received"
        ACCEPTED = "accepted"
        BAD_SIGNATURE = "bad_signature"
        MALFORMED = "malformed"
        TOO_LARGE = "too_large"
        UNKNOWN_ORDER = "unknown_order"

    received_at = models.DateTimeField(auto_now_add=True)
    gateway = models.CharField("provider", max_length=32, default="sandbox", db_index=True)
    remote_addr = models.CharField(max_length=64, blank=True)
    headers = models.JSONField(default=dict)
    # Whole for a notification that passed verification (to verify it again and trace it); only
    # its first KiB for a refused request, which anyone can send as often as they like.
    body = models.BinaryField()
    # Of the body as read, whatever part of it is kept.
    body_length = models.PositiveIntegerField(default=0)
    body_sha256 = models.CharField(max_length=64, blank=True)
    # Stripe allows its ids up to 255 characters, as for payment_id.
    event_id = models.CharField(max_length=255, blank=True, db_index=True)
    biz = models.CharField(max_length=32, blank=True, db_index=True)
    payment_id = models.CharField(max_length=255, blank=True, db_index=True)
    verdict = models.CharField(
        max_length=16, choices=Verdict.choices, default=Verdict.RECEIVED, db_index=True
    )
    outcome = models.CharField(max_length=32, blank=True)
    detail = models.TextField(blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return self.event_id or f"notification {self.pk}"


class Flag(models.Model):
    """A case a person must look at: money and order disagree."""

    class Kind(models.TextChoices):
        AMOUNT_MISMATCH = "amount_mismatch"
        PAID_AFTER_EXPIRY = "paid_after_expiry"
        PAID_AFTER_FAILURE = "paid_after_failure"
        FOREIGN_PAYMENT = "foreign_payment"
        # A second payment succeeded for an order already paid (a provider the shopper switched
        # from, paid after all): one of them must be refunded.
        PAID_TWICE = "paid_twice"
        # A paid payment reported closed: the provider refunded it (Alipay's TRADE_CLOSED).
        REFUNDED = "refunded"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="flags")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.order.biz}"
