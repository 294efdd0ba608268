"""The shopper's language outside a request: on the status socket, from its handshake."""

from django.http import HttpRequest
from django.utils import translation


def language_of_scope(scope: dict) -> str:
    """The language LocaleMiddleware would pick for the same browser: the set_language cookie,
    else Accept-Language, else LANGUAGE_CODE."""
    request = HttpRequest()
    request.COOKIES = dict(scope.get("cookies") or {})
    headers = dict(scope.get("headers") or [])
    request.META["HTTP_ACCEPT_LANGUAGE"] = headers.get(b"accept-language", b"").decode("latin-1")
    return translation.get_language_from_request(request)
