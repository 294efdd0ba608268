"""The stream's guards on a real server process (daphne, as `runserver` serves it)."""

import pytest
from asgiref.sync import sync_to_async
from websockets.exceptions import ConnectionClosed, InvalidStatus

from checkout.models import OrderStatus
from tests.checkout import factories as f
from tests.realtime.streams import next_status, open_stream

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_server_closes_a_stream_on_an_oversized_frame_and_caps_sockets_per_session(
    shops, shared_redis
):
    server = shops.start("guards", REDIS_URL=shared_redis, WS_MAX_PER_SESSION="3")
    shopper = await sync_to_async(f.shopper_session)()
    order = await sync_to_async(f.order)(shopper, status=OrderStatus.PENDING)

    talker = await open_stream(server.url, order.biz, shopper.session_key)
    assert await next_status(talker) == "pending"
    await talker.send("x" * 10_000)  # over WS_MAX_MESSAGE_BYTES (4096)
    with pytest.raises(ConnectionClosed):
        await talker.recv()
    assert talker.close_code == 4009  # message too big (checkout.consumers)

    flood = [await open_stream(server.url, order.biz, shopper.session_key) for _ in range(3)]
    with pytest.raises(InvalidStatus):  # a fourth of the session's, whatever its address
        await open_stream(server.url, order.biz, shopper.session_key, local_ip="127.0.0.9")
    # Another shopper on the same address is not held to the first one's cap.
    other = await sync_to_async(f.shopper_session)()
    theirs = await sync_to_async(f.order)(other, status=OrderStatus.PENDING)
    neighbour = await open_stream(server.url, theirs.biz, other.session_key)
    assert await next_status(neighbour) == "pending"
    for stream in [*flood, neighbour]:
        await stream.close()
