"""Small builders for checkout tests: orders, sessions, and notifications signed like the sandbox's."""

import json
import secrets
import time

import httpx
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from checkout.models import Order, Payment, Product
from checkout.services.orders import order_create
from checkout.shoppers import SESSION_KEY
from sandbox import signature
from tests import asgi

SANDBOX_ROUTE = "/payments/notify/sandbox/"


def product(price: int = 1999, slug: str = "tea") -> Product:
    return Product.objects.get_or_create(
        slug=slug, defaults={"name": "Tea", "price": price, "currency": "CNY"}
    )[0]


def shopper_session() -> SessionStore:
    """A saved session that owns orders, as the buy form leaves it."""
    session = SessionStore()
    session[SESSION_KEY] = secrets.token_hex(16)
    session.save()
    return session


def order(session: SessionStore | None = None, **changes) -> Order:
    session = session or shopper_session()
    created = order_create(product=product(), owner=session[SESSION_KEY])
    if changes:
        Order.objects.filter(pk=created.pk).update(**changes)
        created.refresh_from_db()
    return created


def payment_id() -> str:
    return "pay_" + secrets.token_hex(12)


def payment(order: Order, *, cashier_url: str = "", provider: str = "sandbox") -> Payment:
    """The payment started for `order`, for its amount, as Pay records it: its current one."""
    created = Payment.objects.create(
        order=order,
        gateway=provider,
        payment_id=payment_id(),
        amount=order.amount,
        currency=order.currency,
        cashier_url=cashier_url,
    )
    order.payment, order.provider = created, provider
    Order.objects.filter(pk=order.pk).update(payment=created, provider=provider)
    return created


def started_body(order: Order, *, pay_id: str, cashier_url: str = "") -> bytes:
    """The payment system's answer to a Pay for `order`: pending, as the contract gives it."""
    return json.dumps(
        {
            "payment_id": pay_id,
            "status": "pending",
            "cashier_url": cashier_url,
            "out_trade_no": order.biz,
            "amount": order.amount,
            "currency": order.currency,
        }
    ).encode()


def notice_body(
    order: Order,
    *,
    kind: str = "succeeded",
    pay_id: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
    event_id: str | None = None,
) -> bytes:
    return json.dumps(
        {
            "id": event_id or "evt_" + secrets.token_hex(12),
            "type": f"payment.{kind}",
            "created": int(time.time()),
            "data": {
                "payment_id": pay_id or payment_id(),
                "out_trade_no": order.biz,
                "amount": order.amount if amount is None else amount,
                "currency": currency or order.currency,
                "status": kind,
            },
        }
    ).encode()


def signed_headers(body: bytes, *, secret: str | None = None, at: int | None = None) -> dict:
    header = signature.sign(body, secret or settings.SANDBOX_NOTIFY_SECRET, at or int(time.time()))
    return {"Sandbox-Signature": header}


def notify(body: bytes, **sign) -> httpx.Response:
    """POST `body` to the sandbox's notification route, signed (`signed_headers`'s arguments)."""
    return asgi.post(
        SANDBOX_ROUTE, body, content_type="application/json", headers=signed_headers(body, **sign)
    )


async def anotify(body: bytes, **sign) -> httpx.Response:
    """`notify` from a running event loop."""
    return await asgi.apost(
        SANDBOX_ROUTE, body, content_type="application/json", headers=signed_headers(body, **sign)
    )
