from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from checkout.models import Product
from checkout.selectors import products_for_sale
from checkout.services.orders import order_create
from checkout.shoppers import shopper_token


@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    return render(request, "checkout/catalogue.html", {"products": products_for_sale()})


@require_POST
def order_new(request: HttpRequest) -> HttpResponse:
    product = get_object_or_404(Product, slug=request.POST.get("product", ""))
    order = order_create(product=product, owner=shopper_token(request.session))
    return redirect(order)
