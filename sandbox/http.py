"""What every API view shares: Bearer authentication and JSON errors."""

import hmac
from functools import wraps
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status)


def _refused(request: HttpRequest) -> HttpResponse | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    expected = settings.SANDBOX_API_KEY
    if scheme.lower() == "bearer" and hmac.compare_digest(key.strip().encode(), expected.encode()):
        return None
    response = error(401, "unauthorized", "send Authorization: Bearer <SANDBOX_API_KEY>")
    response["WWW-Authenticate"] = 'Bearer realm="sandbox"'
    return response


def api_view(view: Any) -> Any:
    """Bearer auth for a sync or async view; CSRF-exempt, since the merchant is a server, not a
    browser with cookies."""
    if iscoroutinefunction(view):

        @wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if (refused := _refused(request)) is not None:
                return refused
            return await view(request, *args, **kwargs)

        return csrf_exempt(async_wrapper)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (refused := _refused(request)) is not None:
            return refused
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


def method_not_allowed(allowed: list[str]) -> JsonResponse:
    response = error(405, "method_not_allowed", f"use {' or '.join(allowed)}")
    response["Allow"] = ", ".join(allowed)
    return response
