"""The shop's ASGI handler (shop/handlers.py): a shopper's request through the middleware in one
thread hop (what it awaits still on the event loop), the middleware doing its work, and a
Pay whose browser left recorded consistently.

Django's test clients do not use the ASGI handler, so these requests go through
`shop.asgi.application`, as a server's would.
"""

import asyncio
import gc
import json
import re
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from aiohttp import web
from asgiref.sync import SyncToAsync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.contrib import messages
from django.core.signals import got_request_exception, request_finished, request_started
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import get_resolver, include, path
from django.urls.resolvers import URLResolver
from django.utils.deprecation import MiddlewareMixin
from django.views.decorators.csrf import csrf_exempt

from checkout import push
from checkout.models import Order, OrderStatus, Payment
from sandbox.models import Payment as SandboxPayment
from shop.asgi import django_asgi_app
from shop.gate import Gate
from shop.handlers import OneHopASGIHandler, RequestThreads
from shop.middleware import machine_endpoint
from tests import fake_http
from tests.checkout import factories as f
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)

seen_threads: dict[str, int] = {}
views_thread: list[threading.Thread] = []  # the thread objects, kept: an ident can be reused


@csrf_exempt
def message_add(request):
    messages.info(request, "Kept for the next page.")
    return redirect("/t/messages/")


def message_list(request):
    return HttpResponse(" | ".join(str(m) for m in messages.get_messages(request)))


def boom(request):
    raise RuntimeError("the view crashed")


def stream(request):
    return StreamingHttpResponse(f"part {n};" for n in range(3))


def where(request):
    seen_threads["view"] = threading.get_ident()
    views_thread.append(threading.current_thread())
    return HttpResponse("here")


both_inside = threading.Barrier(2, timeout=10)
hold_entered, hold_released = threading.Event(), threading.Event()


held_thread: list[threading.Thread] = []


def hold(request):
    """Runs until released (or 10 s), whoever is still waiting for it."""
    held_thread[:] = [threading.current_thread()]
    hold_entered.set()
    hold_released.wait(10)
    return HttpResponse("held")


@machine_endpoint
async def ping(request):
    return HttpResponse("pong")


def meet(request):
    """Answers once two requests are inside at once, each in its own thread (or times out)."""
    both_inside.wait()
    return HttpResponse(str(threading.get_ident()))


urlpatterns = [
    path("t/message/", message_add),
    path("t/messages/", message_list),
    path("t/boom/", boom),
    path("t/stream/", stream),
    path("t/where/", where),
    path("t/meet/", meet),
    path("t/hold/", hold),
    path("t/ping/", ping),
    path("", include("shop.urls")),
]


@pytest.fixture
def test_urls(settings):
    settings.ROOT_URLCONF = __name__


async def call(
    method: str, url: str, *, cookies: str = "", body: bytes = b"", headers=(), app=None
):
    """One request through the ASGI application; (status, headers as a dict of lists, body)."""
    sent = [(b"host", b"localhost"), *headers]
    if cookies:
        sent.append((b"cookie", cookies.encode()))
    if body:
        sent.append((b"content-type", b"application/x-www-form-urlencoded"))
    scope = {"type": "http", "http_version": "1.1", "method": method, "path": url}
    scope |= {"query_string": b"", "headers": sent}
    communicator = ApplicationCommunicator(app or django_asgi_app, scope)
    await communicator.send_input({"type": "http.request", "body": body})
    start = await communicator.receive_output(10)
    assert start["type"] == "http.response.start"
    content = b""
    while True:
        message = await communicator.receive_output(10)
        content += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await communicator.wait(timeout=10)  # the request finished too (response.close())
    got: dict[str, list[str]] = {}
    for name, value in start["headers"]:
        got.setdefault(name.decode().lower(), []).append(value.decode())
    return start["status"], got, content.decode()


def cookies_of(headers: dict[str, list[str]]) -> dict[str, str]:
    pairs = (c.split(";", 1)[0].split("=", 1) for c in headers.get("set-cookie", []))
    return dict(pairs)


def as_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


async def buy() -> tuple[dict[str, str], Order]:
    """The catalogue's buy form, as a browser posts it: a session and an order it owns."""
    await sync_to_async(f.product)()
    status, headers, page = await call("GET", "/")
    assert status == 200
    cookies = cookies_of(headers)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    status, headers, _ = await call(
        "POST",
        "/orders/",
        cookies=as_header(cookies),
        body=f"product=tea&csrfmiddlewaretoken={token}".encode(),
    )
    assert status == 302, status
    cookies |= cookies_of(headers)
    return cookies, await Order.objects.aget()


def hops_counted(monkeypatch) -> list[str]:
    """The names of the functions sent to a worker thread from now on."""
    hops: list[str] = []
    original = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    return hops


@asynccontextmanager
async def a_client_leaving_a_held_view() -> AsyncIterator[ApplicationCommunicator]:
    """A request to `/t/hold/` whose client leaves while its view holds; the view goes on once
    the block ends."""
    hold_entered.clear()
    hold_released.clear()
    scope = {"type": "http", "http_version": "1.1", "method": "GET", "path": "/t/hold/"}
    scope |= {"query_string": b"", "headers": [(b"host", b"localhost")]}
    leaving = ApplicationCommunicator(django_asgi_app, scope)
    await leaving.send_input({"type": "http.request", "body": b""})
    try:
        assert await asyncio.to_thread(hold_entered.wait, 10)
        await leaving.send_input({"type": "http.disconnect"})
        yield leaving
    finally:
        hold_released.set()


async def test_the_session_persists_and_only_its_owner_sees_the_order():
    cookies, order = await buy()
    assert "sessionid" in cookies
    status, _, page = await call("GET", f"/orders/{order.biz}/", cookies=as_header(cookies))
    assert status == 200 and 'data-status="unpaid"' in page
    status, _, _ = await call("GET", f"/orders/{order.biz}/")
    assert status == 404


async def test_a_synchronous_views_middleware_takes_one_hop(monkeypatch):
    cookies, order = await buy()
    hops = hops_counted(monkeypatch)
    status, _, _ = await call("GET", f"/orders/{order.biz}/", cookies=as_header(cookies))
    assert status == 200
    # request_started's receivers, the middleware with the view and response.close(), in one:
    # Django's own handler made eighteen (one per middleware hook, the view's, each signal's).
    assert hops == ["OneHopASGIHandler._served"]


async def test_a_forged_post_is_refused_by_csrf():
    cookies, order = await buy()
    status, _, _ = await call(
        "POST", "/orders/", cookies=as_header(cookies), body=b"product=tea&csrfmiddlewaretoken=x"
    )
    assert status == 403
    status, _, _ = await call("POST", f"/orders/{order.biz}/pay/", cookies=as_header(cookies))
    assert status == 403  # Pay checks it too
    assert await Order.objects.acount() == 1


async def test_the_page_speaks_the_shoppers_language():
    cookies, order = await buy()
    for sent, expected, language in (
        ([(b"accept-language", b"zh-CN,zh;q=0.9")], "等待", "zh-hans"),
        ([(b"accept-language", b"en")], "Waiting", "en"),
    ):
        await Order.objects.filter(pk=order.pk).aupdate(status=OrderStatus.PENDING)
        status, headers, page = await call(
            "GET", f"/orders/{order.biz}/", cookies=as_header(cookies), headers=sent
        )
        assert status == 200 and expected in page
        assert headers["content-language"] == [language]
        assert headers["x-frame-options"] == ["DENY"]  # clickjacking middleware, on the way out


async def test_the_language_switch_is_kept_for_the_next_page():
    cookies, order = await buy()
    await Order.objects.filter(pk=order.pk).aupdate(status=OrderStatus.PENDING)
    status, headers, _ = await call(
        "POST",
        "/i18n/setlang/",
        cookies=as_header(cookies),
        body=f"language=zh-hans&next=/&csrfmiddlewaretoken={cookies['csrftoken']}".encode(),
    )
    assert status == 302 and cookies_of(headers)["django_language"] == "zh-hans"
    cookies |= cookies_of(headers)
    status, _, page = await call(
        "GET",
        f"/orders/{order.biz}/",
        cookies=as_header(cookies),
        headers=[(b"accept-language", b"en")],
    )
    assert status == 200 and "等待" in page


async def test_a_message_survives_to_the_next_page(test_urls):
    status, headers, _ = await call("POST", "/t/message/")
    assert status == 302
    status, _, body = await call("GET", "/t/messages/", cookies=as_header(cookies_of(headers)))
    assert status == 200 and body == "Kept for the next page."


async def test_an_exception_gives_the_500_page_and_the_signal(test_urls):
    caught = []

    def receiver(sender, request, **kwargs):
        caught.append(request.path)

    got_request_exception.connect(receiver)
    try:
        status, _, body = await call("GET", "/t/boom/")
    finally:
        got_request_exception.disconnect(receiver)
    assert status == 500 and "Server Error (500)" in body
    assert caught == ["/t/boom/"]


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
async def test_a_streaming_response_streams(test_urls):
    status, _, body = await call("GET", "/t/stream/")
    assert status == 200 and body == "part 0;part 1;part 2;"


async def test_the_request_signals_run_in_the_views_thread(test_urls):
    """close_old_connections runs on request_started and request_finished: in the thread that
    holds the request's database connection, or it closes another one."""

    def started(**kwargs):
        seen_threads["started"] = threading.get_ident()

    def finished(**kwargs):
        seen_threads["finished"] = threading.get_ident()

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        status, _, _ = await call("GET", "/t/where/")
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert status == 200
    assert seen_threads["started"] == seen_threads["view"] == seen_threads["finished"]
    assert seen_threads["view"] != threading.get_ident()  # a worker, not the event loop


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
async def test_each_request_is_started_and_finished_once_after_its_view(test_urls):
    """request_started before the view and request_finished after it, once each, whether the
    response is sent whole, streamed, or never read because the client left (shop/handlers.py)."""
    signals: list[str] = []

    def started(**kwargs):
        signals.append("started")

    def finished(**kwargs):
        signals.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        for path in ("/t/where/", "/t/stream/", "/payments/notify/sandbox/", "/t/ping/"):
            signals.clear()
            await call("GET", path)
            assert signals == ["started", "finished"], path
        signals.clear()
        async with a_client_leaving_a_held_view() as leaving:
            await asyncio.sleep(0.1)
            assert signals == ["started"]  # the view still runs: the request has not ended
        await leaving.wait(timeout=10)
        assert signals == ["started", "finished"]
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)


async def test_a_requests_thread_is_kept_for_the_next_request(test_urls):
    """No thread started and joined per request (shop/handlers.py): the next request is served by
    the thread the last one gave back, and two requests at once each have their own."""
    views_thread.clear()
    await call("GET", "/t/where/")
    await call("GET", "/t/where/")
    assert views_thread[0] is views_thread[1] is not threading.current_thread()
    answers = await asyncio.gather(call("GET", "/t/meet/"), call("GET", "/t/meet/"))
    assert [status for status, _, _ in answers] == [200, 200]
    assert len({body for _, _, body in answers}) == 2


async def test_a_thread_goes_back_only_once_the_request_that_left_is_done_with_it(test_urls):
    """Django cancels a request whose client left but cannot stop its thread, and ends the request
    only after `request_finished`, which it sends through that thread, after the view. So a thread
    is idle when given back, and a request never waits behind another's view (shop/handlers.py)."""
    async with a_client_leaving_a_held_view() as leaving:
        done, _ = await asyncio.wait({leaving.future}, timeout=0.3)
        assert not done  # the client left; its view still runs, and the request waits for it
    await leaving.wait(timeout=10)
    views_thread.clear()
    status, _, body = await asyncio.wait_for(call("GET", "/t/where/"), timeout=5)
    assert (status, body) == (200, "here")
    assert views_thread[0] is held_thread[0]  # the same thread, idle again


def test_request_threads_keep_their_number_for_good_and_more_while_a_burst_lasts():
    now = [0.0]
    threads = RequestThreads(keep=1, linger=60, clock=lambda: now[0])
    a, b, c = threads.take(), threads.take(), threads.take()
    assert len({a, b, c}) == 3
    threads.give_back(a)
    threads.give_back(b)  # one more than kept, in a burst: kept too
    assert threads.take() is b  # the most recently used first
    now[0] = 30.0
    threads.give_back(b)
    now[0] = 61.0
    threads.give_back(c)  # `a` idle for over a minute: let go
    assert [executor for _, executor in threads.idle] == [b, c]
    with pytest.raises(RuntimeError):
        a.submit(print)  # shut down
    now[0] = 200.0
    threads.give_back(threads.take())
    assert [executor for _, executor in threads.idle] == [c]  # `keep` of them, for good
    with pytest.raises(RuntimeError):
        b.submit(print)


def threads_inside_middleware() -> list[int]:
    code = MiddlewareMixin.__call__.__code__
    inside = []
    for ident, frame in sys._current_frames().items():
        while frame is not None:
            if frame.f_code is code:
                inside.append(ident)
                break
            frame = frame.f_back
    return inside


def pending_answer(order: Order, digit: str) -> bytes:
    """The payment system's answer to a Pay for `order`, with a payment id made of `digit`."""
    return f.started_body(order, pay_id="pay_" + digit * 24)


def pay(cookies: dict[str, str], order: Order, app=None):
    """Pay pressed, as htmx sends it: the CSRF token in the header."""
    return call(
        "POST",
        f"/orders/{order.biz}/pay/",
        cookies=as_header(cookies),
        headers=[(b"x-csrftoken", cookies["csrftoken"].encode())],
        app=app,
    )


async def test_pay_takes_one_hop(monkeypatch, settings):
    """Pay runs in one hop, the request signals, its middleware and its view in the request's
    thread, whose trip to the event loop for the payment system is no hop (and its push is only
    handed over); Django's async chain made seventeen hops more, and an async Pay view three more."""
    cookies, order = await buy()
    hops = hops_counted(monkeypatch)
    with fake_http.answering(201, pending_answer(order, "2")) as url:
        settings.PAYMENT_GATEWAY_URL = url
        status, _, panel = await pay(cookies, order)
    assert status == 200 and 'data-status="pending"' in panel
    # request_started's receivers, the middleware with the view and response.close(), in one.
    assert hops == ["OneHopASGIHandler._served"]


async def notify(order: Order, app=None) -> tuple[int, dict]:
    """The payment system's notification that `order` is paid."""
    body = f.notice_body(order)
    signed = [
        (name.lower().encode(), value.encode()) for name, value in f.signed_headers(body).items()
    ]
    status, _, answer = await call(
        "POST", "/payments/notify/sandbox/", body=body, headers=signed, app=app
    )
    return status, json.loads(answer)


async def test_a_notification_takes_one_hop(monkeypatch):
    """Verified, applied and recorded in the request's thread, its push handed to the event loop
    there: one hop, where Django's async chain and an async view made three (each signal's, the
    database step's)."""
    order = await sync_to_async(f.order)(status=OrderStatus.PENDING)
    hops = hops_counted(monkeypatch)
    status, answer = await notify(order)
    assert (status, answer["outcome"]) == (200, "paid")
    assert hops == ["OneHopASGIHandler._served"]


async def test_a_burst_of_notifications_in_their_lane_is_applied_whole():
    """Twelve at once for two places: each waits for a place (or for its patience) and none is
    refused or lost."""
    orders = [await sync_to_async(f.order)(status=OrderStatus.PENDING) for _ in range(12)]
    gate = Gate(django_asgi_app, limit=64, machine_limit=2)
    answers = await asyncio.gather(*(notify(order, app=gate) for order in orders))
    assert [(status, answer["outcome"]) for status, answer in answers] == [(200, "paid")] * 12
    assert await Order.objects.filter(status=OrderStatus.PAID).acount() == 12
    assert gate.lanes["machines"].inside == 0


async def test_the_loop_serves_other_requests_while_a_pay_waits(settings):
    """While Pay waits for the payment system, its thread waits inside the middleware (one
    thread, bounded by the gate), and the event loop goes on serving: a page is answered."""
    cookies, order = await buy()
    arrived, release = threading.Event(), threading.Event()
    with fake_http.answering(
        201, pending_answer(order, "0"), arrived=arrived, release=release
    ) as url:
        settings.PAYMENT_GATEWAY_URL = url
        paying = asyncio.ensure_future(pay(cookies, order))
        try:
            assert await asyncio.to_thread(arrived.wait, 10)
            inside = threads_inside_middleware()
            status, _, page = await call("GET", f"/orders/{order.biz}/", cookies=as_header(cookies))
            assert status == 200 and 'data-status="unpaid"' in page
            assert not paying.done()
        finally:
            release.set()
        status, _, panel = await paying
    assert status == 200 and 'data-status="pending"' in panel
    assert len(inside) == 1 and inside[0] != threading.get_ident()


def resolves_counted(monkeypatch) -> list[str]:
    """The paths resolved from the root urlconf from now on (an include's own resolve is part of
    its root's)."""
    paths: list[str] = []
    original = URLResolver.resolve

    def counted(self, path):
        if self is get_resolver():
            paths.append(path)
        return original(self, path)

    monkeypatch.setattr(URLResolver, "resolve", counted)
    return paths


async def test_a_requests_url_is_resolved_once_for_the_gate_the_handler_and_django(monkeypatch):
    """The gate resolves the URL and keeps the match in the scope; the handler, the machine
    endpoints' middleware and Django's routing use it (they resolved it three times more)."""
    cookies, order = await buy()
    gate = Gate(django_asgi_app, limit=64)
    resolves = resolves_counted(monkeypatch)
    status, _, page = await call(
        "GET", f"/orders/{order.biz}/", cookies=as_header(cookies), app=gate
    )
    assert status == 200 and 'data-status="unpaid"' in page
    paid = await sync_to_async(f.payment)(order)
    body = f.notice_body(order, pay_id=paid.payment_id)
    status, _, _ = await call(
        "POST",
        "/payments/notify/sandbox/",
        body=body,
        headers=[(k.lower().encode(), v.encode()) for k, v in f.signed_headers(body).items()],
        app=gate,
    )
    assert status == 200
    assert resolves == [f"/orders/{order.biz}/", "/payments/notify/sandbox/"]
    assert (await Order.objects.aget()).status == OrderStatus.PAID


async def test_a_path_that_matches_nothing_still_gets_djangos_404():
    gate = Gate(django_asgi_app, limit=64)
    status, _, _ = await call("GET", "/no-such-page/", app=gate)
    assert status == 404


class Elsewhere:
    """A urlconf that serves /healthz with another view than the shop's."""

    urlpatterns = [path("healthz", where)]


def other_urlconf(get_response):
    """A middleware that routes with its own urlconf, as a multi-site project's might."""

    def middleware(request):
        request.urlconf = Elsewhere
        return get_response(request)

    return middleware


async def test_a_middlewares_own_urlconf_routes_the_request_not_the_gates_match(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.other_urlconf"]
    app = Gate(OneHopASGIHandler(), limit=64)
    status, _, page = await call("GET", "/healthz", app=app)
    assert (status, page) == (200, "here")


@pytest.mark.parametrize("late", [False, True])
async def test_the_gate_counts_pay_while_it_waits_unless_the_answer_is_late(
    settings, monkeypatch, late
):
    """With one place, a page waits while Pay is inside. Past GIVE_BACK_AFTER, Pay waits for the
    payment system outside the gate, so that Pays held by one that hangs cannot fill it (they go
    in before pages), and takes a place again for the rest of its work. Each gives its place
    back."""
    monkeypatch.setattr("checkout.services.payments.GIVE_BACK_AFTER", 0.05 if late else 5)
    cookies, order = await buy()
    gate = Gate(django_asgi_app, limit=1)
    arrived, release = threading.Event(), threading.Event()
    with fake_http.answering(
        201, pending_answer(order, "1"), arrived=arrived, release=release
    ) as url:
        settings.PAYMENT_GATEWAY_URL = url
        paying = asyncio.ensure_future(pay(cookies, order, app=gate))
        assert await asyncio.to_thread(arrived.wait, 10)
        page = asyncio.ensure_future(
            call("GET", f"/orders/{order.biz}/", cookies=as_header(cookies), app=gate)
        )
        await asyncio.sleep(0.3)
        assert page.done() is late  # else waiting for Pay's place
        release.set()
        status, _, html = await paying
        assert status == 200 and 'data-status="pending"' in html
        status, _, html = await page
    assert status == 200 and f'data-status="{"unpaid" if late else "pending"}"' in html
    assert gate.lanes["shoppers"].inside == 0


class HeldAnswers:
    """The in-process sandbox (its API through the same ASGI application) behind an HTTP server of
    the test's own, for the shop to call: each answer is held, once the sandbox has made it, until
    `release` is set."""

    def __init__(self) -> None:
        self.sandbox = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=django_asgi_app), base_url="http://localhost"
        )
        self.answered, self.release = asyncio.Event(), asyncio.Event()

    async def answer(self, request: web.Request) -> web.Response:
        sent = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        answer = await self.sandbox.request(
            request.method, request.path_qs, content=await request.read(), headers=sent
        )
        self.answered.set()
        await self.release.wait()
        return web.Response(
            status=answer.status_code, body=answer.content, content_type="application/json"
        )


async def pay_then_disconnect(cookies: dict[str, str], order: Order, when: asyncio.Event) -> None:
    """Pay pressed, and the browser gone once `when` is set; the request must still end."""
    sent = [
        (b"host", b"localhost"),
        (b"cookie", as_header(cookies).encode()),
        (b"x-csrftoken", cookies["csrftoken"].encode()),
    ]
    scope = {"type": "http", "http_version": "1.1", "method": "POST"}
    scope |= {"path": f"/orders/{order.biz}/pay/", "query_string": b"", "headers": sent}
    communicator = ApplicationCommunicator(django_asgi_app, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    await asyncio.wait_for(when.wait(), 10)
    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(timeout=10)
    assert communicator.output_queue.empty()  # no answer was sent to a browser that left


@pytest.fixture
async def held(settings) -> AsyncIterator[HeldAnswers]:
    """The shop's payment system is the in-process sandbox, its answers held (`HeldAnswers`)."""
    answers = HeldAnswers()
    server = web.AppRunner(web.Application())
    server.app.router.add_route("*", "/{path:.*}", answers.answer)
    await server.setup()
    port = free_port()
    await web.TCPSite(server, "127.0.0.1", port).start()
    settings.SANDBOX_ENABLED = True
    settings.PAYMENT_GATEWAY_URL = f"http://127.0.0.1:{port}/sandbox/"
    try:
        yield answers
    finally:
        answers.release.set()
        await server.cleanup()
        await answers.sandbox.aclose()


async def test_a_browser_gone_while_the_payment_system_answers_and_pay_again(held):
    """The payment system made the payment, the browser left before its answer came back: the
    order is untouched, and the next Pay is answered with the same payment (idempotency key)."""
    cookies, order = await buy()
    await pay_then_disconnect(cookies, order, held.answered)
    assert (await Order.objects.aget()).status == OrderStatus.UNPAID
    assert await Payment.objects.acount() == 0
    assert await SandboxPayment.objects.acount() == 1
    held.release.set()
    status, _, panel = await pay(cookies, order)
    assert status == 200 and 'data-status="pending"' in panel
    assert (await Order.objects.aget()).status == OrderStatus.PENDING
    assert (await Payment.objects.aget()).payment_id == (await SandboxPayment.objects.aget()).id


@pytest.fixture
def hanging_push(monkeypatch) -> asyncio.Event:
    """Every push hangs, as with a Redis that does not answer; the event is set once one began."""
    pushing = asyncio.Event()

    async def push_hangs(state, *, pressed_in=None) -> None:
        pushing.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(push, "push_order_changed", push_hangs)
    return pushing


async def the_push_went_on_by_itself(pushing: asyncio.Event) -> None:
    """One push began, left to the event loop and still hanging there; cancelled, none is left."""
    await asyncio.wait_for(pushing.wait(), 10)
    [hanging] = push.unwaited
    hanging.cancel()
    await asyncio.gather(hanging, return_exceptions=True)
    assert not push.unwaited


async def test_pay_answers_without_waiting_for_its_push(hanging_push, held):
    """The pending panel's push (to the order's other tabs) hangs: Pay still answers at once, the
    payment recorded, and the push goes on by itself."""
    held.release.set()
    cookies, order = await buy()
    status, _, panel = await asyncio.wait_for(pay(cookies, order), 10)
    assert status == 200 and 'data-status="pending"' in panel
    assert (await Payment.objects.aget()).payment_id == (await SandboxPayment.objects.aget()).id
    await the_push_went_on_by_itself(hanging_push)


async def test_a_notification_answers_without_waiting_for_its_push(hanging_push):
    """The paid panel's push hangs: the payment system still gets its answer at once, the result
    applied, and the push goes on by itself."""
    order = await sync_to_async(f.order)(status=OrderStatus.PENDING)
    status, answer = await asyncio.wait_for(notify(order), 10)
    assert (status, answer["outcome"]) == (200, "paid")
    assert (await Order.objects.aget(pk=order.pk)).status == OrderStatus.PAID
    await the_push_went_on_by_itself(hanging_push)


async def test_a_request_leaves_nothing_for_the_cycle_collector(test_urls):
    """Django's own `handle` left each request's objects (request, response, body file, frames)
    in a reference cycle that only the cycle collector frees, about 70 objects a request here (Django
    ticket #36700); the shop's frees them as each request ends. (A shopper's request still makes
    cycles of its own through the middleware's request attributes: messages, user, htmx.)"""
    await call("GET", "/t/ping/")
    gc.collect()
    gc.disable()
    try:
        for _ in range(10):
            status, _, body = await call("GET", "/t/ping/")
            assert (status, body) == (200, "pong")
        assert gc.collect() == 0
    finally:
        gc.enable()
