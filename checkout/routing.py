from django.urls import re_path

from checkout.consumers import OrderStatusConsumer
from checkout.urls import BIZ

websocket_urlpatterns = [
    re_path(rf"^ws/order/{BIZ}/$", OrderStatusConsumer.as_asgi()),
]
