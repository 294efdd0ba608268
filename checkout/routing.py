from django.urls import re_path

from checkout.consumers import OrderStatusConsumer
from checkout.socket_session import SocketSession
from checkout.urls import BIZ

# SocketSession adds the cookies and the session: shop/asgi.py puts no session middleware above.
websocket_urlpatterns = [
    re_path(rf"^ws/order/{BIZ}/$", SocketSession(OrderStatusConsumer.as_asgi())),
]
