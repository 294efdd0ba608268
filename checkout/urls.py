from django.urls import path, re_path

from checkout.views import catalogue, gallery, operators, orders

app_name = "checkout"

BIZ = r"(?P<biz>[0-9a-f]{32})"

urlpatterns = [
    path("", catalogue.catalogue, name="catalogue"),
    path("orders/", catalogue.order_new, name="order_new"),
    re_path(rf"^orders/{BIZ}/$", orders.order_page, name="order"),
    re_path(rf"^orders/{BIZ}/pay/$", orders.order_pay, name="order_pay"),
    path("gallery/", gallery.gallery, name="gallery"),
    path("healthz", operators.healthz, name="healthz"),
    path("metrics", operators.metrics, name="metrics"),
]
