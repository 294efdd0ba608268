"""Beyond at-most-once: a push the channel layer lost still reaches the page, from the database.

The drop is real, not mocked: the server that receives the notification publishes to a Redis the
socket's server does not listen to (a split channel layer), so the message goes nowhere.
"""

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
