"""Fan-out across processes: the socket on one server, the result from another process.

Two server processes and `manage.py reconcile --once` share PostgreSQL and Redis. The
socket's server has its watchlist turned down to once an hour, so a panel that arrives came through
the channel layer, not the safety net.
"""

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from checkout.models import OrderStatus
from tests.checkout import factories as f
from tests.realtime.streams import next_status, open_stream, post_notice, status_becomes

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 3
PUSH_ONLY = {"WATCH_INTERVAL": "3600"}


async def test_a_notification_on_one_server_and_the_reconciler_reach_a_socket_on_another(
    shops, shared_redis
):
    shopper = await sync_to_async(f.shopper_session)()
    socket_side = shops.start("socket-side", REDIS_URL=shared_redis, **PUSH_ONLY)
    notice_side = shops.start("notice-side", REDIS_URL=shared_redis)

    for _ in range(ROUNDS):
        paid = await sync_to_async(f.order)(shopper, status=OrderStatus.PENDING)
        stream = await open_stream(socket_side.url, paid.biz, shopper.session_key)
        assert await next_status(stream) == "pending"
        body = f.notice_body(paid)
        status = await sync_to_async(post_notice)(notice_side, body, f.signed_headers(body))
        assert status == 200
        assert await status_becomes(stream, "paid"), socket_side.log_tail()
        await stream.close()

    past = timezone.now() - timezone.timedelta(minutes=1)
    for _ in range(ROUNDS):
        lapsed = await sync_to_async(f.order)(
            shopper, status=OrderStatus.PENDING, expires_at=past, reconcile_after=past
        )
        stream = await open_stream(socket_side.url, lapsed.biz, shopper.session_key)
        assert await next_status(stream) == "pending"
        # The third process: asks the sandbox (mounted in the socket's server), finds no payment,
        # and expires the order.
        await sync_to_async(socket_side.manage)("reconcile", "--once")
        assert await status_becomes(stream, "expired"), socket_side.log_tail()
        await stream.close()
