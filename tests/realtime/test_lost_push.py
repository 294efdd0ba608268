"""Beyond at-most-once: a push the channel layer lost still reaches the page, from the database.

The drop is real, not mocked: the server that receives the notification publishes to a Redis the
socket's server does not listen to (a split channel layer), so the message goes nowhere.
"""

import asyncio
import re

import pytest
from asgiref.sync import sync_to_async

from checkout.models import OrderStatus
from tests.checkout import factories as f
from tests.realtime.streams import next_status, open_stream, post_notice, status_becomes

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_result_whose_push_was_lost_reaches_the_page_within_the_watch_interval(
    shops, shared_redis, own_redis
):
    socket_side = shops.start("socket-side", REDIS_URL=shared_redis, WATCH_INTERVAL="1")
    elsewhere = shops.start("elsewhere", REDIS_URL=own_redis.url)
    shopper = await sync_to_async(f.shopper_session)()
    order = await sync_to_async(f.order)(shopper, status=OrderStatus.PENDING)
    stream = await open_stream(socket_side.url, order.biz, shopper.session_key)
    assert await next_status(stream) == "pending"

    body = f.notice_body(order)
    assert await sync_to_async(post_notice)(elsewhere, body, f.signed_headers(body)) == 200

    assert await status_becomes(stream, "paid", timeout=30)
    assert "watchlist caught up sockets=1" in socket_side.log_text()
    await stream.close()


async def test_hundreds_of_results_whose_pushes_were_lost_all_reach_their_pages(
    shops, shared_redis, own_redis
):
    """Hundreds of pushes lost at once (a Redis outage, a process lagging behind): the watchlist
    reads the changed orders' states together, not one per socket, and shows every one."""
    socket_side = shops.start(
        "socket-side", REDIS_URL=shared_redis, WATCH_INTERVAL="3", WS_MAX_PER_SESSION="0"
    )
    elsewhere = shops.start("elsewhere", REDIS_URL=own_redis.url)
    shopper = await sync_to_async(f.shopper_session)()
    orders = [await sync_to_async(f.order)(shopper, status=OrderStatus.PENDING) for _ in range(200)]
    streams = [await open_stream(socket_side.url, o.biz, shopper.session_key) for o in orders]
    for stream in streams:
        assert await next_status(stream) == "pending"

    for order in orders:
        body = f.notice_body(order)
        assert await sync_to_async(post_notice)(elsewhere, body, f.signed_headers(body)) == 200

    shown = await asyncio.gather(
        *(status_becomes(stream, "paid", timeout=30) for stream in streams)
    )
    assert all(shown)
    caught_up = re.findall(r"watchlist caught up sockets=(\d+)", socket_side.log_text())
    assert sum(map(int, caught_up)) == 200
    for stream in streams:
        await stream.close()
