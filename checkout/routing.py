from django.urls import re_path

from checkout.consumers import OrderStatusConsumer
from checkout.socket_session import SocketSession
from checkout.urls import BIZ

# Served inside URLRouter without AuthMiddlewareStack: SocketSession adds the cookies and session.
websocket_urlpatterns = [
    re_path(rf"^ws/order/{BIZ}/$", SocketSession(OrderStatusConsumer.as_asgi())),
]
