"""`python -m bench.cost [N]`: CPU time a notification and a shopper's requests cost the shop,
measured in one process.

The shop runs in this process, with no server in front of it and no network but Pay's call to the
payment system, so the figure is steadier than a load test's on a shared machine:
  - request: N signed `payment.succeeded` notifications through the shop's ASGI application (the
    middleware, the view, the transaction that records and applies the result, the push), one
    after another, each for a different waiting order;
  - page, poll, pay: a shopper's requests through the same application, each by a different
    shopper with a saved session: the order page (a synchronous view), the bench's polled panel
    (`bench.views.poll`, synchronous) and Pay (CSRF-checked), which calls the sandbox,
    running as a process of its own as in the benchmark, over loopback (the answer's QR code
    included; only the shop's process is measured);
  - connect: N status sockets opened (Channels' communicator), each checking its owner and
    sending the pending panel;
  - push: a push to each of them (the paid order's state, as a result's transaction leaves it),
    the socket rendering and sending the paid panel.
CPU is the process's (every thread), divided by N, and beside it PostgreSQL's (all of the server's
processes, so any other work it does meanwhile too; for pay, the sandbox's queries included) when
the server runs on this machine (lines as `bench.cpu` has them). Needs DATABASE_URL (PostgreSQL).
"""

import asyncio
import os
import secrets
import sys
import tempfile
import time

from bench import servers

os.environ.update({**servers.base_env(os.environ["DATABASE_URL"]), "SANDBOX_ENABLED": "0"})

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from channels.testing import WebsocketCommunicator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db.models import F  # noqa: E402

from bench import fixtures  # noqa: E402
from bench.asgi_request import asgi_request  # noqa: E402
from bench.cpu import Cost  # noqa: E402
from checkout.models import Order  # noqa: E402
from checkout.panels import PanelState, panel_state  # noqa: E402
from checkout.push import push_order_changed  # noqa: E402
from checkout.selectors import orders_with_payment  # noqa: E402
from shop.asgi import application  # noqa: E402

WARM = 20


def paid_states(bizs: list[str]) -> dict[str, PanelState]:
    """Mark the orders paid, as a result would (one version more); their states, as pushed."""
    Order.objects.filter(biz__in=bizs).update(status="paid", version=F("version") + 1)
    return {order.biz: panel_state(order) for order in orders_with_payment(bizs)}


POSTGRES = servers.postgres_pid(os.environ["DATABASE_URL"])


def clock() -> tuple[float, float]:
    return time.process_time(), servers.usage(POSTGRES)["cpu"] if POSTGRES else 0.0


def cost_since(started: tuple[float, float], count: int) -> Cost:
    (shop, postgres), (shop_then, postgres_then) = clock(), started
    return Cost(
        (shop - shop_then) * 1000 / count,
        (postgres - postgres_then) * 1000 / count if POSTGRES else None,
    )


async def requests(count: int) -> Cost:
    shoppers = await sync_to_async(fixtures.shoppers_create)(WARM + count, pending=True)
    for i, shopper in enumerate(shoppers):
        if i == WARM:
            started = clock()
        body = fixtures.notice(shopper.orders[0], shopper.payment_ids[0])
        status, _ = await asgi_request(
            application, "POST", "/payments/notify/sandbox/", body, fixtures.signed(body)
        )
        assert status == 200, status
    return cost_since(started, count)


async def shopper_requests(count: int) -> dict[str, Cost]:
    """CPU per order page, per poll and per Pay, each by its own shopper and order."""
    payment_system = servers.sandbox(
        database_url=os.environ["DATABASE_URL"], tmp_dir=tempfile.mkdtemp(prefix="cost-")
    )
    with payment_system:
        settings.PAYMENT_GATEWAY_URL = payment_system.url + "/sandbox/"
        return await _shopper_requests(count)


async def _shopper_requests(count: int) -> dict[str, Cost]:
    shoppers = await sync_to_async(fixtures.shoppers_create)(WARM + count)
    token = secrets.token_hex(16)  # the CSRF cookie's secret, sent back in the header as htmx does
    figures = {}
    for name, method, path in (
        ("page", "GET", "/orders/{}/"),
        ("poll", "GET", "/bench/poll/{}/"),
        ("pay", "POST", "/orders/{}/pay/"),
    ):
        for i, shopper in enumerate(shoppers):
            if i == WARM:
                started = clock()
            headers = {
                "Cookie": f"sessionid={shopper.session_key}; csrftoken={token}",
                "X-CSRFToken": token,
                "HX-Request": "true",
            }
            url = path.format(shopper.orders[0])
            status, _ = await asgi_request(application, method, url, headers=headers)
            assert status == 200, (name, status)
        figures[name] = cost_since(started, count)
    return figures


async def sockets_and_pushes(count: int) -> tuple[Cost, Cost]:
    shoppers = await sync_to_async(fixtures.shoppers_create)(count, pending=True)
    sockets = []
    started = clock()
    for shopper in shoppers:
        socket = WebsocketCommunicator(
            application,
            f"/ws/order/{shopper.orders[0]}/",
            headers=[
                (b"cookie", f"sessionid={shopper.session_key}".encode()),
                (b"origin", b"http://127.0.0.1"),
                (b"host", b"127.0.0.1"),
            ],
        )
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_from()  # the pending panel
        sockets.append((shopper.orders[0], socket))
    connect = cost_since(started, count)
    states = await sync_to_async(paid_states)([biz for biz, _ in sockets])
    started = clock()
    for biz, socket in sockets:
        await push_order_changed(states[biz])
        assert 'data-status="paid"' in await socket.receive_from()
    push = cost_since(started, count)
    for _, socket in sockets:
        await socket.disconnect()
    return connect, push


async def main(count: int) -> None:
    print((await requests(count)).line("request", "notification", count))
    for name, cost in (await shopper_requests(count)).items():
        print(cost.line(name, "shopper request", count))
    connect, push = await sockets_and_pushes(count)
    print(connect.line("connect", "socket opened", count))
    print(push.line("push", "push to one socket", count))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
