"""What Channels serves ahead of Django (shop/asgi.py): the notification endpoint and the status
socket. `urlpatterns` are HTTP routes, so that `reverse` finds them given this module."""

from django.urls import path, re_path

from checkout.consumers import OrderStatusConsumer
from checkout.notify import NotifyConsumer
from checkout.urls import BIZ

urlpatterns = [
    path("payments/notify/<slug:provider>/", NotifyConsumer.as_asgi(), name="notify"),
]

websocket_urlpatterns = [
    re_path(rf"^ws/order/{BIZ}/$", OrderStatusConsumer.as_asgi()),
]
