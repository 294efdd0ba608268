from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from checkout.models import Order
from checkout.panels import panel_render
from checkout.selectors import order_for_owner
from checkout.services.payments import PaymentNotStarted, payment_start
from checkout.shoppers import shopper_of


def own_order(request: HttpRequest, biz: str) -> Order:
    """The order if this session created it; 404 for anyone else."""
    order = order_for_owner(biz=biz, owner=shopper_of(request.session))
    if order is None:
        raise Http404("No such order.")
    return order


@require_GET
def order_page(request: HttpRequest, biz: str) -> HttpResponse:
    order = own_order(request, biz)
    return render(request, "checkout/order.html", {"order": order, "panel": panel_render(order)})


@require_POST
def order_pay(request: HttpRequest, biz: str) -> HttpResponse:
    """The Pay button (htmx): start the payment and answer with the pending panel at once.

    A sync view, in the request's thread like its middleware (`shop.handlers`); it waits there for
    the payment system, which is called on the event loop (`payment_start`)."""
    order = own_order(request, biz)
    try:
        order = payment_start(order=order)
    except PaymentNotStarted as error:
        return HttpResponse(panel_render(order, error=str(error)), status=503)
    # payment_start returns the order as it stands under its row lock, payment attached: the
    # answer renders it without reading it again.
    return HttpResponse(panel_render(order))
