"""The cashier page the shopper's phone opens: shows the payment, takes approve or decline."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from sandbox.models import Payment, PaymentStatus
from sandbox.money import format_amount
from sandbox.payments import payment_decide, payment_expire_if_overdue, payment_get

DECISIONS = {"approve": True, "decline": False}
RESULTS = {
    PaymentStatus.SUCCEEDED: "Payment approved. You can return to the shop.",
    PaymentStatus.FAILED: "Payment declined. Nothing was charged.",
    PaymentStatus.CLOSED: "This payment was closed or has expired. Nothing was charged.",
}


def _page(request: HttpRequest, payment: Payment, message: str = "", status: int = 200):
    context = {
        "payment": payment,
        "amount": format_amount(payment.amount, payment.currency),
        "pending": payment.status == PaymentStatus.PENDING,
        "message": message,
    }
    return render(request, "sandbox/cashier.html", context, status=status)


@require_http_methods(["GET", "POST"])
def cashier(request: HttpRequest, payment_id: str) -> HttpResponse:
    decision = request.POST.get("decision", "") if request.method == "POST" else None
    if decision in DECISIONS:
        # The decision reads the payment under its lock (and closes it if overdue): no read before.
        try:
            payment, applied = payment_decide(payment_id=payment_id, approve=DECISIONS[decision])
        except Payment.DoesNotExist:
            raise Http404("No such payment.") from None
        if applied:
            return _page(request, payment, RESULTS[payment.status])
        already = (
            f"This payment was already {payment.get_status_display().lower()}; nothing changed."
        )
        return _page(request, payment, already)
    try:
        payment = payment_expire_if_overdue(payment_get(payment_id=payment_id))
    except Payment.DoesNotExist:
        raise Http404("No such payment.") from None
    if decision is None:
        return _page(request, payment, RESULTS.get(payment.status, ""))
    return _page(request, payment, "Choose approve or decline.", status=400)
