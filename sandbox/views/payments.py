"""The payment API (contract section 3): create, create-and-wait, query and close."""

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from sandbox import parsing
from sandbox.http import api_view, error, method_not_allowed
from sandbox.models import Payment, PaymentStatus
from sandbox.payments import (
    IdempotencyConflict,
    payment_close,
    payment_create,
    payment_expire_if_overdue,
    payment_get,
    payment_latest_for,
)
from sandbox.waiting import payment_wait_settled

MAX_KEY_LENGTH = 255


def payment_json(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": payment.id,
        "out_trade_no": payment.out_trade_no,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status,
        "paid_at": None if payment.paid_at is None else int(payment.paid_at.timestamp()),
    }


def created_json(request: HttpRequest, payment: Payment) -> dict[str, Any]:
    # Built from the request, so the link works at whatever address the merchant called.
    cashier_url = request.build_absolute_uri(reverse("sandbox:cashier", args=[payment.id]))
    return {
        "payment_id": payment.id,
        "status": payment.status,
        "cashier_url": cashier_url,
        "out_trade_no": payment.out_trade_no,
        "amount": payment.amount,
        "currency": payment.currency,
    }


def _create(request: HttpRequest) -> tuple[Payment, bool]:
    """Parse the request and create (or find) its payment. Raises InvalidRequest or
    IdempotencyConflict."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise parsing.InvalidRequest(
            f"the Idempotency-Key header is required (1 to {MAX_KEY_LENGTH} characters)"
        )
    new = parsing.new_payment(parsing.json_object(request.body))
    return payment_create(request=new, idempotency_key=key)


def _create_failed(exc: Exception) -> JsonResponse:
    if isinstance(exc, IdempotencyConflict):
        return error(
            409, "idempotency_conflict", "this Idempotency-Key was used for another request"
        )
    return error(400, "invalid_request", str(exc))


@api_view
def payments(request: HttpRequest) -> HttpResponse:
    """POST creates a payment (callback mode); GET ?out_trade_no= finds the newest one."""
    if request.method == "POST":
        try:
            payment, created = _create(request)
        except (parsing.InvalidRequest, IdempotencyConflict) as exc:
            return _create_failed(exc)
        response = JsonResponse(created_json(request, payment), status=201)
        if not created:
            response["Idempotent-Replayed"] = "true"  # as Stripe marks a replayed answer
        return response
    if request.method == "GET":
        out_trade_no = request.GET.get("out_trade_no", "")
        if not out_trade_no:
            return error(400, "invalid_request", "the out_trade_no query parameter is required")
        try:
            payment = payment_latest_for(out_trade_no=out_trade_no)
        except Payment.DoesNotExist:
            return error(404, "not_found", "no payment for this out_trade_no")
        return JsonResponse(payment_json(payment_expire_if_overdue(payment)))
    return method_not_allowed(["GET", "POST"])


@api_view
async def payments_sync(request: HttpRequest) -> HttpResponse:
    """The old synchronous mode: answers only once the shopper decided or the payment expired."""
    if request.method != "POST":
        return method_not_allowed(["POST"])
    try:
        payment, _ = await sync_to_async(_create)(request)
    except (parsing.InvalidRequest, IdempotencyConflict) as exc:
        return _create_failed(exc)
    payment = await payment_wait_settled(payment_id=payment.id)
    return JsonResponse(payment_json(payment))


@api_view
def payment_detail(request: HttpRequest, payment_id: str) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed(["GET"])
    try:
        payment = payment_get(payment_id=payment_id)
    except Payment.DoesNotExist:
        return error(404, "not_found", "no such payment")
    return JsonResponse(payment_json(payment_expire_if_overdue(payment)))


@api_view
def payment_close_view(request: HttpRequest, payment_id: str) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed(["POST"])
    try:
        payment = payment_close(payment_id=payment_id)
    except Payment.DoesNotExist:
        return error(404, "not_found", "no such payment")
    if payment.status == PaymentStatus.SUCCEEDED:
        return JsonResponse({"status": "succeeded"}, status=409)
    return JsonResponse(payment_json(payment))
