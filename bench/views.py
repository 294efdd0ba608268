"""The way Pay used to work: the worker waits on the payment system until the shopper decided.

Not in the shop's URLs; `bench.urls` adds it for gunicorn only.
"""

import httpx
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from checkout.gateways.base import GatewayPayment
from checkout.models import PaymentStatus
from checkout.notify import notify_url
from checkout.panels import panel_render
from checkout.selectors import order_for_owner, order_with_payment
from checkout.services.results import Source, result_apply
from checkout.shoppers import shopper_of


@require_POST
def old_pay(request: HttpRequest, biz: str) -> HttpResponse:
    order = order_for_owner(biz=biz, owner=shopper_of(request.session))
    if order is None:
        raise Http404("No such order.")
    body = {
        "out_trade_no": order.biz,
        "amount": order.amount,
        "currency": order.currency,
        "description": order.product.name,
        "notify_url": notify_url("sandbox"),
        "expire_at": int(order.expires_at.timestamp()),
    }
    answer = httpx.post(
        settings.PAYMENT_GATEWAY_URL + "v1/payments/sync",
        json=body,
        headers={
            "Authorization": f"Bearer {settings.SANDBOX_API_KEY}",
            "Idempotency-Key": order.biz,
        },
        timeout=600,
    )
    answer.raise_for_status()
    data = answer.json()
    result_apply(
        biz=order.biz,
        payment=GatewayPayment(
            payment_id=data["payment_id"],
            biz=order.biz,
            status=PaymentStatus(data["status"]),
            amount=data["amount"],
            currency=data["currency"],
        ),
        provider="sandbox",
        source=Source.START,
    )
    return HttpResponse(panel_render(order_with_payment(biz=order.biz)))
