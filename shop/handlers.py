"""Django's ASGI handler, with a request run in one thread hop, signals and middleware included,
and request threads kept from one request to the next.

Django builds its ASGI middleware chain for async views. Its own middleware (security, session,
locale, common, CSRF, auth, messages, clickjacking) are `MiddlewareMixin`s that say they can run
async, and so each of their hooks moves the request to the request's worker thread and back:
fifteen hops for the shop's MIDDLEWARE (Django ticket #37177; bench/profile_notes.md, "One hop for
a shopper's request"), and one more for each of the request signals. Here a request makes one hop
into that thread, where it is started (`request_started`), goes through the chain Django builds
for WSGI (the same middleware, in the same order, called directly) and its view, and is finished
(`request_finished`, by closing its response) as under a WSGI server, but before its body is sent
(from memory; a streaming response is closed after it, as Django has it). Sync views for machine
endpoints (`shop.middleware`: the payment system's notifications) go the same way, skipping the
shoppers' middleware; async ones (the sandbox's API) keep Django's async chain, where their awaits
hold no thread.

Awaiting from that thread goes through `async_to_sync`, as under a WSGI server: a shopper's async
view (healthz, which is not marked) is called so, and Pay, a sync view, calls the payment system
(over aiohttp) so. The awaits run on the event loop, which serves other requests meanwhile, while
the request's thread waits for them. The request gate (shop/gate.py, HTTP_MAX_CONCURRENT) counts
every shopper's request in flight, so it bounds how many threads wait so.

A browser that disconnects makes Django cancel the request, as on its async chain: asgiref passes
the cancellation on to what the thread awaits (Pay: the payment system's answer), and the thread
leaves the middleware with the CancelledError (no response, as before). Pay stays consistent:
either `payment_record` committed the payment to the order, or it did not run and the next Pay
sends the same idempotency key, so the payment system answers with the payment it made
(tests/shop/test_handlers.py).

The thread is the one Django gives the request for its synchronous parts (the request signals,
the ORM), so connections and transactions are where they were. A request routed otherwise than
guessed here (a middleware that sets `request.urlconf`) is still served:
`MachineEndpointMiddleware` runs in either chain.

Django gives each request a thread of its own, started for it and joined in one more new thread
after it (asgiref's `ThreadSensitiveContext`): two threads started per request, about a tenth of
a notification's CPU (bench/profile_notes.md, "The order's reads, and request threads kept").
Here a request takes an idle thread from `RequestThreads`, kept from an earlier request, and gives
it back when it ends, as a WSGI server's worker threads are kept. The request still has the thread
to itself from its start to its end, so its connection and transaction are its own as before; the
connection is closed (or returned to the pool) at the end of each request by Django's
`request_finished`, as under WSGI. A request whose client left is cancelled, but that signal is
still sent through the request's thread (unless the view's response was closed there already),
after whatever still runs there, and only then is the request ended: a thread given back is idle,
and no request waits behind another's view.
"""

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase
from django.urls import ResolverMatch, set_script_prefix

from shop.loop import serving
from shop.middleware import is_async_machine_endpoint, request_match


class RequestThreads:
    """Single-thread executors for requests, each used by one request at a time and kept for the
    next (the most recently used first).

    `keep` idle ones are kept for good. A burst can need more: notifications that waited their
    lane's patience, Pays waiting outside their lane for a late answer (shop/gate.py). Those are
    kept too, and let go once idle for `linger` seconds (when a request next ends): a thread is
    started on the event loop, which then waits until the new thread runs, behind every other
    thread that wants the GIL, and a burst that started its threads anew each time held up the
    loop so (5% of its GIL samples at 450 notifications/s; bench/profile_notes.md, sixteenth
    pass)."""

    def __init__(self, keep: int, linger: float = 60.0, clock=time.monotonic) -> None:
        self.keep, self.linger, self.clock = keep, linger, clock
        # (when given back, executor), the most recently given back last.
        self.idle: deque[tuple[float, ThreadPoolExecutor]] = deque()

    def take(self) -> ThreadPoolExecutor:
        if self.idle:
            return self.idle.pop()[1]
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        now = self.clock()
        self.idle.append((now, executor))
        while len(self.idle) > self.keep and now - self.idle[0][0] > self.linger:
            self.idle.popleft()[1].shutdown(wait=False)  # its thread ends once its work is done


class ShopperHandler(BaseHandler):
    """Django's synchronous handler, routing with the URL match the gate already made
    (`shop.middleware.url_match`) instead of resolving the path once more."""

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        # A middleware that set its own urlconf, or a path that matched nothing (Django's 404
        # page lists what it tried), goes Django's way.
        match = None if hasattr(request, "urlconf") else request_match(request)
        if match is None:
            return super().resolve_request(request)
        request.resolver_match = match
        return match


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()  # the async chain
        self.sync_handler = ShopperHandler()
        self.sync_handler.load_middleware(is_async=False)
        # For good: as many as the gate lets in at once (shop/gate.py); more while a burst lasts.
        self.threads = RequestThreads(
            keep=settings.HTTP_MAX_CONCURRENT + settings.MACHINE_MAX_CONCURRENT
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        serving.set(asyncio.get_running_loop())  # for the thread's pushes (`shop.loop`)
        executor = self.threads.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(executor)

    async def handle(self, scope, receive, send) -> None:
        """Django's `ASGIHandler.handle` (6.1), in fewer hops and without the reference cycle it
        made per request.

        Django sends `request_started`, runs the request and closes the response (which sends
        `request_finished`) in three trips to the request's thread. A request makes one (`_served`):
        the signal, the middleware and view, and, unless the response streams, its close, as a
        WSGI handler does them; its body is then sent from memory. (An async machine endpoint's
        goes Django's way: `get_response_async`.)

        Django ends the task that listens for the client's disconnect by raising an exception of
        a class it makes per request into an `asyncio.TaskGroup`, whose traceback then holds the
        request, its response and body file in a cycle only the cycle collector frees: 70 to 100
        objects per request (Django ticket #36700; bench/profile_notes.md, ninth pass). Here the
        listener is cancelled instead. The rest is Django's: the 400 for a request Django cannot
        build, a streamed response closed after it is sent, and a request whose client left
        cancelled and ended with `request_finished`.
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with closing(body_file):
            set_script_prefix(get_script_prefix(scope))
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                await signals.request_started.asend(sender=self.__class__, scope=scope)
                body_file.close()
                await self.send_response(error_response, send)
                await sync_to_async(error_response.close)()
                return
            response = await self._response_sent(request, receive, send)
            if response is None:
                # After whatever still runs in the request's thread, which may have closed it.
                await sync_to_async(self._finished, thread_sensitive=True)(request)
            elif not response.closed:
                await sync_to_async(response.close)()

    async def _response_sent(self, request, receive, send) -> HttpResponseBase | None:
        """The response, once sent; None if the client left first (the response is cancelled)."""
        responding = asyncio.create_task(self._respond(request, send))
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait((responding, listening), return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this request is cancelled: neither task outlives it
            for task in (listening, responding):
                task.cancel()
            await asyncio.wait((listening, responding))
        if not responding.cancelled():
            return responding.result()  # a view's exception goes up, as from Django's
        if not listening.cancelled() and not isinstance(listening.exception(), RequestAborted):
            raise listening.exception()  # a message that is not a disconnect, as Django has it
        return None

    async def _respond(self, request, send) -> HttpResponseBase:
        response = await self.run_get_response(request)
        await self.send_response(response, send)
        return response

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if is_async_machine_endpoint(request_match(request)):
            await signals.request_started.asend(sender=self.__class__, scope=request.scope)
            return await super().get_response_async(request)
        return await sync_to_async(self._served, thread_sensitive=True)(request)

    def _served(self, request: HttpRequest) -> HttpResponseBase:
        """A request from start to finish in its thread, as under a WSGI server, but finished
        (unless its response streams) before its body is sent: its connection goes back to the
        pool sooner, and no thread hop is made to close it."""
        signals.request_started.send(sender=self.__class__, scope=request.scope)
        response = self.sync_handler.get_response(request)
        if not response.streaming:
            response._handler_class = self.__class__  # request_finished's sender
            response.close()
            request.finished = True
        return response

    def _finished(self, request: HttpRequest) -> None:
        """`request_finished` for a request whose client left, unless `_served` sent it."""
        if not getattr(request, "finished", False):
            signals.request_finished.send(sender=self.__class__)
