"""The status socket's cookies and session, without keeping a middleware alive per socket.

Channels' session stack (CookieMiddleware, SessionMiddleware) keeps two coroutines suspended per
socket, each with its own copy of the scope, plus a session wrapper, for as long as the socket is
open: 2.3 KiB per idle socket (bench/profile_notes.md, "Memory per idle socket"). The socket only
reads the session once, to check who owns the order, and never saves it. So this adds `cookies`
and a lazily loaded `session` in one copy of the scope and hands back the consumer's coroutine
instead of awaiting it: nothing of the middleware outlives the handshake, and the consumer can let
the session go once it has read it. It belongs inside URLRouter, with no session middleware above.
"""

from importlib import import_module

from django.conf import settings
from django.http.cookie import parse_cookie


class SocketSession:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.store = import_module(settings.SESSION_ENGINE).SessionStore

    def __call__(self, scope: dict, receive, send):
        cookie = next((value for name, value in scope["headers"] if name == b"cookie"), b"")
        cookies = parse_cookie(cookie.decode("latin1"))
        # SessionStore reads nothing until the session is first used (in the consumer's thread).
        session = self.store(cookies.get(settings.SESSION_COOKIE_NAME))
        return self.inner(dict(scope, cookies=cookies, session=session), receive, send)
