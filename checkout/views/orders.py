from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from checkout import gateways
from checkout.models import Order
from checkout.panels import panel_id_of, panel_render
from checkout.selectors import order_for_owner
from checkout.services.payments import PaymentNotStarted, payment_start
from checkout.shoppers import shopper_of


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def page_response(
    request: HttpRequest, order: Order, *, error: str = "", status: int = 200
) -> HttpResponse:
    token = get_token(request)  # one for the page's htmx header and the panel's Pay form
    panel = panel_render(order, error=error, csrf_token=token)
    context = {
        "order": order,
        "panel": panel,
        "csrf_token": token,
        "page_path": order.get_absolute_url(),  # for the language form, also after Pay's POST
    }
    return render(request, "checkout/order.html", context, status=status)


def own_order(request: HttpRequest, biz: str) -> Order:
    """The order if this session created it; 404 for anyone else."""
    order = order_for_owner(biz=biz, owner=shopper_of(request.session))
    if order is None:
        raise Http404("No such order.")
    return order


@require_GET
def order_page(request: HttpRequest, biz: str) -> HttpResponse:
    return page_response(request, own_order(request, biz))


@require_POST
async def order_pay(request: HtmxHttpRequest, biz: str) -> HttpResponse:
    """The Pay button: start the payment and answer at once. htmx gets the pending panel to swap
    in; a browser that posted the button's form itself (Pay pressed before htmx set the page up)
    gets the order's page.

    Async: while the payment system answers, the request holds no thread and no database
    connection."""
    order = await database_sync_to_async(own_order)(request, biz)  # the session, then the order
    pressed_in = panel_id_of(request.POST.get("panel"))  # a socket's panel, if it was one
    # One provider's button may omit its name (contract section 6): the first is meant.
    provider = request.POST.get("provider") or gateways.enabled()[0]
    error, status = "", 200
    try:
        order = await payment_start(order=order, provider=provider, pressed_in=pressed_in)
    except PaymentNotStarted as failed:
        error, status = str(failed), failed.status
    if request.htmx:
        # A retry from the error's panel names the same socket's panel: that page shows this one.
        answer = panel_render(order, error=error, panel_id=pressed_in or "")
        return HttpResponse(answer, status=status)
    if error:
        return await sync_to_async(page_response)(request, order, error=error, status=status)
    return redirect(order)  # so that reloading it does not post again
