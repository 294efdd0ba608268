"""Requests from other machines skip the middleware that exists for shoppers.

A payment system's notification carries no cookie, session, CSRF token, user or language, yet under
ASGI each of Django's session, locale, common, CSRF, auth, messages and clickjacking middleware
moves the request to a worker thread and back, twice for most of them: about a third of what a
notification costs the server (see bench/profile_notes.md). A view marked `machine_endpoint` is
called straight from here instead, with its own decorators (method, CSRF exemption) still applied.
"""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

View = TypeVar("View", bound=Callable)


def machine_endpoint(view: View) -> View:
    """Mark an async view that only other machines call (see the module's docstring)."""
    if not iscoroutinefunction(view):
        raise TypeError(f"{view.__name__}: a machine endpoint must be an async view")
    view.machine_endpoint = True  # type: ignore[attr-defined]
    return view


def machine_endpoint_at(path: str) -> bool:
    """Whether `path` is served by a view marked machine_endpoint."""
    try:
        return getattr(resolve(path).func, "machine_endpoint", False)
    except Resolver404:
        return False


class MachineEndpointMiddleware:
    """First in MIDDLEWARE: sends requests for machine endpoints to their view directly."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return await self.get_response(request)
        if not getattr(match.func, "machine_endpoint", False):
            return await self.get_response(request)
        request.resolver_match = match
        return await match.func(request, *match.args, **match.kwargs)
