"""Shoppers, orders and signed notifications, written straight to the database in bulk.

The load generator makes thousands of them before it measures anything, so it does not go through
the buy form; the rows are the ones `checkout.services.orders.order_create` and a saved session
would leave.
"""

import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from checkout.models import Order, OrderStatus, Payment, Product
from checkout.services.orders import order_fields
from checkout.shoppers import SESSION_KEY
from sandbox import signature


@dataclass(frozen=True)
class Shopper:
    session_key: str
    orders: list[str]  # biz of each order this shopper owns
    payment_ids: list[str]  # the matching payment ids ("" where the order has no payment yet)


def product() -> Product:
    return Product.objects.get_or_create(
        slug="bench-tea", defaults={"name": "Bench tea", "price": 1999, "currency": "CNY"}
    )[0]


def shoppers_create(count: int, *, orders_each: int = 1, pending: bool = False) -> list[Shopper]:
    """`count` shoppers with a saved session each, owning `orders_each` orders.

    `pending` orders already have a started payment, as after Pay: a socket on them shows the
    pending panel and waits for the result.
    """
    item = product()
    now = timezone.now()
    sessions, orders, shoppers = [], [], []
    for _ in range(count):
        token = secrets.token_hex(16)
        key = secrets.token_hex(16)
        sessions.append(
            Session(
                session_key=key,
                session_data=SessionStore().encode({SESSION_KEY: token}),
                expire_date=now + timedelta(days=1),
            )
        )
        mine = [
            Order(
                **order_fields(product=item, owner=token, now=now),
                status=OrderStatus.PENDING if pending else OrderStatus.UNPAID,
            )
            for _ in range(orders_each)
        ]
        orders += mine
        payment_ids = ["pay_" + secrets.token_hex(12) if pending else "" for _ in mine]
        shoppers.append(Shopper(key, [o.biz for o in mine], payment_ids))
    Session.objects.bulk_create(sessions, batch_size=1000)
    Order.objects.bulk_create(orders, batch_size=1000)
    if pending:
        by_biz = {o.biz: o for o in orders}
        payments = Payment.objects.bulk_create(
            [
                Payment(
                    order=by_biz[biz],
                    payment_id=pay_id,
                    amount=item.price,
                    currency=item.currency,
                    # No cashier link, so no QR code: encoding one costs ~10 ms per socket
                    # opened, which is setup here, and would make polling look dearer still.
                    cashier_url="",
                )
                for s in shoppers
                for biz, pay_id in zip(s.orders, s.payment_ids, strict=True)
            ],
            batch_size=1000,
        )
        for payment in payments:  # each order's current payment (PostgreSQL gives their pks)
            payment.order.payment, payment.order.provider = payment, "sandbox"
        Order.objects.bulk_update(orders, ["payment", "provider"], batch_size=1000)
    return shoppers


def herd_create(count: int) -> list[str]:
    """`count` waiting orders whose pending payments exist at the sandbox too, as after Pay, with
    no word from the payment system yet; not due for the reconciler until `herd_due`."""
    from sandbox.models import Payment as SandboxPayment

    shoppers = shoppers_create(count, pending=True)
    bizs = [s.orders[0] for s in shoppers]
    orders = Order.objects.filter(biz__in=bizs).select_related("payment")
    SandboxPayment.objects.bulk_create(
        [
            SandboxPayment(
                id=o.payment.payment_id,
                out_trade_no=o.biz,
                amount=o.amount,
                currency=o.currency,
                notify_url="http://127.0.0.1:9/payments/notify/sandbox/",
                expire_at=o.expires_at,
                idempotency_key=o.biz,
                request_fingerprint="bench",
            )
            for o in orders
        ],
        batch_size=1000,
    )
    return bizs


def herd_due(bizs: list[str]) -> None:
    """All at once past the active-query mark, as a sale's first minute leaves them; every other
    order (left waiting by earlier cells, or runs on the same database) out of the reconciler's
    way for a day, so that what it works through is the herd the cell measures."""
    now = timezone.now()
    Order.objects.exclude(biz__in=bizs).update(reconcile_after=now + timedelta(days=1))
    Order.objects.filter(biz__in=bizs).update(reconcile_after=now)


def herd_heard(bizs: list[str]) -> int:
    """How many of these orders the reconciler has had the payment system's answer for."""
    return Payment.objects.filter(order__biz__in=bizs, last_heard_at__isnull=False).count()


def sandbox_leftovers_drop() -> tuple[int, int]:
    """Silently close the payments earlier cells (or runs) left undecided, and give up their
    pending notifications: their shoppers and often their shops are gone, and the sandbox would
    otherwise expire those payments and retry those notices while this cell is measured."""
    from sandbox.models import DeliveryState, Notification, Payment, PaymentStatus

    closed = Payment.objects.filter(status=PaymentStatus.PENDING).update(
        status=PaymentStatus.CLOSED
    )
    given_up = Notification.objects.filter(state=DeliveryState.PENDING).update(
        state=DeliveryState.GAVE_UP, next_attempt_at=None
    )
    return closed, given_up


def notice(biz: str, payment_id: str, *, amount: int = 1999, currency: str = "CNY") -> bytes:
    """A `payment.succeeded` notification body, as the sandbox sends it."""
    return json.dumps(
        {
            "id": "evt_" + secrets.token_hex(12),
            "type": "payment.succeeded",
            "created": int(time.time()),
            "data": {
                "payment_id": payment_id,
                "out_trade_no": biz,
                "amount": amount,
                "currency": currency,
                "status": "succeeded",
            },
        }
    ).encode()


def signed(body: bytes) -> dict[str, str]:
    header = signature.sign(body, settings.SANDBOX_NOTIFY_SECRET, int(time.time()))
    return {signature.HEADER: header, "Content-Type": "application/json"}


def database_close() -> None:
    """Close the process's connection pool (PostgreSQL), before the process exits.

    The fixtures run in worker threads (`asyncio.to_thread`), whose connections are never given
    back; left to the interpreter's exit, the pool waits 5 s for each of its four threads to stop,
    20 s added to every load run."""
    close_pool = getattr(connections[DEFAULT_DB_ALIAS], "close_pool", None)
    if close_pool is not None:
        close_pool()
