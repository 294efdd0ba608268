"""The ASGI application for every server process: HTTP through Django, WebSockets through Channels."""

import contextvars
import gc
import os

import django
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from shop.handlers import OneHopASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does first

# The server serves its own static files (htmx, CSS) as runserver does, so `make run` needs nothing
# else; behind a reverse proxy, the proxy serves `collectstatic`'s STATIC_ROOT first.
# OneHopASGIHandler is Django's ASGIHandler, with a shopper's request run through the middleware
# in one hop to a worker thread instead of fifteen (shop/handlers.py).
django_asgi_app = ASGIStaticFilesHandler(OneHopASGIHandler())

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from checkout.gallery import sample_order  # noqa: E402
from checkout.models import OrderStatus  # noqa: E402
from checkout.panels import panel_render  # noqa: E402
from checkout.routing import websocket_urlpatterns  # noqa: E402
from shop.background import WithBackgroundLoops  # noqa: E402
from shop.collector import freeze_survivors  # noqa: E402
from shop.gate import Gate  # noqa: E402

application = WithBackgroundLoops(
    ProtocolTypeRouter(
        {
            "http": Gate(
                django_asgi_app, settings.HTTP_MAX_CONCURRENT, settings.MACHINE_MAX_CONCURRENT
            ),
            # checkout.socket_session adds the cookies and the session, inside the router.
            "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
        }
    )
)


def _render_each_status() -> None:
    for status in OrderStatus.values:
        panel_render(sample_order(status))


# A socket renders its panels on the event loop: the first of each status would load there what
# it needs (the template engine, the templates, the URLs, the number formats: ~15 ms in all),
# stalling every other socket. Render each once now, as the designers' gallery shows them, in a
# context of its own: what rendering sets (Django's per-thread storage of the language, the URL
# prefix) would otherwise be inherited by every connection's task, and copied again by asgiref
# on each of its trips to a thread.
contextvars.Context().run(_render_each_status)

# What start-up built lives as long as the process: leave it out of the cycle collector's full
# passes, whose pause grows with every object they walk; and so what each of them keeps, sockets
# mostly (shop/collector.py).
gc.freeze()
if settings.GC_FREEZE_SURVIVORS:
    freeze_survivors()
