"""The ASGI application for every server process: HTTP through Django but for the notification
endpoint, which Channels serves ahead of it, as it serves the status WebSocket (its docs' layout)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
# Set up Django before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from checkout import gateways  # noqa: E402
from checkout import routing  # noqa: E402

# A listed payment provider without its settings stops the server here, naming the variable.
gateways.check_configured()

application = ProtocolTypeRouter(
    {
        "http": URLRouter([*routing.urlpatterns, re_path(r"", django_asgi_app)]),
        # Channels' AllowedHostsOriginValidator checks the host alone; production wants the
        # scheme and port too (WS_ALLOWED_ORIGINS).
        "websocket": OriginValidator(
            SessionMiddlewareStack(URLRouter(routing.websocket_urlpatterns)),
            settings.WS_ALLOWED_ORIGINS,
        ),
    }
)
