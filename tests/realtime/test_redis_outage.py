"""A Redis outage: notifications are still recorded and acknowledged, pages still get results,
and when Redis is back the push resumes by itself.

Three shop processes on a Redis of the test's own: `net` watches its sockets every second (the
safety net), `push` only once an hour (so what reaches its sockets came through Redis), and
`notices` receives the notifications.
"""

import asyncio
import os
import time

import pytest
from asgiref.sync import sync_to_async

from checkout.models import Order, OrderStatus
from checkout.push import order_group
from tests.checkout import factories as f
from tests.realtime.streams import next_status, open_stream, post_notice, status_becomes

pytestmark = pytest.mark.django_db(transaction=True)


async def notify_paid(server, order) -> int:
    body = f.notice_body(order)
    return await sync_to_async(post_notice)(server, body, f.signed_headers(body))


def open_files(server) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


async def until(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def test_a_redis_outage_loses_no_result_and_the_push_resumes_when_redis_returns(
    shops, own_redis
):
    net = shops.start("net", REDIS_URL=own_redis.url, WATCH_INTERVAL="1")
    push = shops.start("push", REDIS_URL=own_redis.url, WATCH_INTERVAL="3600")
    notices = shops.start("notices", REDIS_URL=own_redis.url)
    shopper = await sync_to_async(f.shopper_session)()
    during, after = [
        await sync_to_async(f.order)(shopper, status=OrderStatus.PENDING) for _ in range(2)
    ]
    on_net = await open_stream(net.url, during.biz, shopper.session_key)
    on_push = await open_stream(push.url, after.biz, shopper.session_key)
    for stream in (on_net, on_push):
        assert await next_status(stream) == "pending"

    own_redis.stop()
    # Recorded and acknowledged although the push cannot go out.
    assert await notify_paid(notices, during) == 200
    assert await Order.objects.aget(pk=during.pk, status=OrderStatus.PAID)
    # The waiting page gets it from the database meanwhile.
    assert await status_becomes(on_net, "paid")
    # Many more results while Redis is away: each is acknowledged, and the failed pushes leave
    # nothing behind (no socket or file kept open per attempt).
    more = [await sync_to_async(f.order)(shopper, status=OrderStatus.PENDING) for _ in range(25)]
    files_before = open_files(notices)
    assert [await notify_paid(notices, order) for order in more] == [200] * len(more)
    assert open_files(notices) <= files_before + 3
    # 26 pushes failed within seconds: the log says so in a line or two, not 26.
    assert 1 <= notices.log_path.read_text().count("push failed") <= 2

    own_redis.start()
    group = "asgi__group__" + order_group(after.biz)
    # `push` re-subscribes by itself; nobody restarts or reconnects anything.
    assert await until(lambda: own_redis.subscribers(group) == 1), push.log_tail()
    assert await notify_paid(notices, after) == 200
    assert await status_becomes(on_push, "paid"), push.log_tail()

    assert all(server.running for server in (net, push, notices))
    for stream in (on_net, on_push):
        await stream.close()
