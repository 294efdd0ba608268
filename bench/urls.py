from django.urls import include, path, re_path

from bench import views
from checkout.urls import BIZ

urlpatterns = [
    re_path(rf"^bench/old-pay/{BIZ}/$", views.old_pay, name="bench_old_pay"),
    path("", include("shop.urls")),
]
