"""Requests from other machines skip the middleware that exists for shoppers.

A payment system's notification carries no cookie, session, CSRF token, user or language, yet under
ASGI each of Django's session, locale, common, CSRF, auth, messages and clickjacking middleware
moves the request to a worker thread and back, twice for most of them: about a third of what a
notification costs the server (see bench/profile_notes.md). A view marked `machine_endpoint` is
called straight from here instead, with its own decorators (method, CSRF exemption) still applied.
"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve

# Where a request's URL match is kept in its ASGI scope (see `url_match`).
MATCH = "shop.url_match"

View = TypeVar("View", bound=Callable)


def machine_endpoint(view: View) -> View:
    """Mark a view that only other machines call (see the module's docstring)."""
    view.machine_endpoint = True  # type: ignore[attr-defined]
    return view


def url_match(scope: dict) -> ResolverMatch | None:
    """The URL match of an HTTP request (None if nothing matches), resolved once and kept in its
    ASGI scope: the gate, the handler, this middleware and Django's own routing
    (`shop.handlers.ShopperHandler`) all ask, and each resolve costs 30-40 µs."""
    if MATCH not in scope:
        scope[MATCH] = _resolved(scope["path"].removeprefix(scope.get("root_path", "")))
    return scope[MATCH]


def request_match(request: HttpRequest) -> ResolverMatch | None:
    """`url_match` for a Django request; one without a scope (the WSGI test client) is resolved."""
    scope = getattr(request, "scope", None)
    return _resolved(request.path_info) if scope is None else url_match(scope)


def _resolved(path: str) -> ResolverMatch | None:
    try:
        return resolve(path)
    except Resolver404:
        return None


def is_machine_endpoint(match: ResolverMatch | None) -> bool:
    return match is not None and getattr(match.func, "machine_endpoint", False)


def is_async_machine_endpoint(match: ResolverMatch | None) -> bool:
    """A machine endpoint whose view is async (the sandbox's API): served on Django's async chain,
    it holds no thread while it awaits (shop/handlers.py, shop/gate.py)."""
    return is_machine_endpoint(match) and iscoroutinefunction(match.func)


class MachineEndpointMiddleware:
    """First in MIDDLEWARE: sends requests for machine endpoints to their view directly.

    It runs in either of Django's chains: the synchronous one (shop/handlers.py's, for every
    request but those for a machine endpoint's async view; Django's test client) and the async
    one (the rest; Django's async test client). A view of the other kind is adapted
    (`async_to_sync`, `sync_to_async`), so that in every chain such a request meets none of the
    shoppers' middleware.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        match = request_match(request)
        if not is_machine_endpoint(match):
            return self.get_response(request)
        request.resolver_match = match
        view = match.func
        if self.async_mode != iscoroutinefunction(view):
            view = sync_to_async(view) if self.async_mode else async_to_sync(view)
        return view(request, *match.args, **match.kwargs)
