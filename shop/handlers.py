"""Django's ASGI handler, with a synchronous view's middleware run in one worker thread.

Django builds its ASGI middleware chain for async views. Its own middleware (security, session,
locale, common, CSRF, auth, messages, clickjacking) are `MiddlewareMixin`s that say they can run
async, and so each of their hooks moves the request to the request's worker thread and back:
fifteen hops for the shop's MIDDLEWARE (Django ticket #37177; bench/profile_notes.md, "One hop for
a shopper's request"). A synchronous view gains nothing from that, as its own work runs in that
same thread anyway. Here a request for a synchronous view makes one hop into that thread, where it
goes through the chain Django builds for WSGI (the same middleware, in the same order, called
directly) and its view, as under a WSGI server. A request for an async view (Pay, the
notifications, healthz) keeps Django's async chain, so its awaits hold no thread.

The thread is the one Django gives the request for its synchronous parts (the request_started and
request_finished signals, the ORM), so connections and transactions are where they were. A view
guessed wrongly (a middleware that sets `request.urlconf`, say) only costs speed: each chain calls
either kind of view.
"""

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve


def view_is_async(request: HttpRequest) -> bool:
    """Whether the view at the request's path is async; False where there is none (the 404)."""
    try:
        return iscoroutinefunction(resolve(request.path_info).func)
    except Resolver404:
        return False


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()  # the async chain
        self.sync_handler = BaseHandler()
        self.sync_handler.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if view_is_async(request):
            return await super().get_response_async(request)
        get_response = sync_to_async(self.sync_handler.get_response, thread_sensitive=True)
        return await get_response(request)
