"""`manage.py serve`: daphne on HOST:PORT, with the background loops started at boot.

Daphne has no ASGI lifespan, so without this the loops would wait for the first connection, and
deliveries or expiries due after a restart would wait with them.
"""

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the shop with daphne (HTTP and WebSockets) and its background loops."

    def handle(self, *args, **options) -> None:
        import daphne.server  # noqa: F401 - installs the asyncio reactor before twisted's default
        from daphne.cli import CommandLineInterface
        from twisted.internet import reactor

        from shop.asgi import application

        reactor.callWhenRunning(lambda: asyncio.get_event_loop().call_soon(application.start))
        CommandLineInterface().run(
            ["-b", settings.HOST, "-p", str(settings.PORT), "shop.asgi:application"]
        )
