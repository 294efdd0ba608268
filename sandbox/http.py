"""What every API view shares: Bearer authentication and JSON errors."""

import asyncio
import hmac
from functools import wraps
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
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
    """Bearer auth for a sync or async view of the API, which is exempt from CSRF: only the
    merchant's server calls it, with its key rather than a browser's cookie.

    SANDBOX_API_LATENCY is waited out in the event loop, so that it holds no thread; a sync view
    then runs in a worker thread, as Django itself runs one under ASGI.
    """
    run = view if iscoroutinefunction(view) else sync_to_async(view)

    @wraps(view)
    async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (refused := _refused(request)) is not None:
            return refused
        if settings.SANDBOX_API_LATENCY > 0:
            await asyncio.sleep(settings.SANDBOX_API_LATENCY)
        return await run(request, *args, **kwargs)

    return csrf_exempt(wrapper)


def method_not_allowed(allowed: list[str]) -> JsonResponse:
    response = error(405, "method_not_allowed", f"use {' or '.join(allowed)}")
    response["Allow"] = ", ".join(allowed)
    return response
