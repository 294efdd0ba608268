"""Shoppers who share one address (a carrier-grade NAT, an office, a proxy whose X-Forwarded-For is
not read) are told apart by their sessions: 2,000 of them, each with a session and an order of their
own, all from 127.0.0.1 to one server process, all get their panel; one session opening hundreds of
sockets is held to WS_MAX_PER_SESSION while they stay open (checkout/caps.py).
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from websockets.exceptions import InvalidStatus

from bench.fixtures import shoppers_create
from tests.realtime.streams import next_status, open_stream

pytestmark = pytest.mark.django_db(transaction=True)

SHOPPERS = 2000
FLOOD = 300  # one session's sockets, ten to each of its orders (WS_MAX_PER_ORDER)
SESSION_CAP = 20  # WS_MAX_PER_SESSION's default


async def panel_shown(url: str, biz: str, session_key: str):
    """The open stream once it showed its panel; the exception if it was refused or stayed
    silent."""
    try:
        stream = await open_stream(url, biz, session_key)
    except Exception as error:
        return error
    try:
        assert await next_status(stream, timeout=120) == "pending"
    except BaseException as error:
        await stream.close()
        return error
    return stream


async def test_shoppers_sharing_an_address_all_connect_and_one_session_is_held_to_its_cap(
    shops, shared_redis
):
    server = shops.start("nat", daphne=True, reconcile=False, deliver=False, REDIS_URL=shared_redis)
    shoppers = await sync_to_async(shoppers_create)(SHOPPERS, pending=True)
    (flooder,) = await sync_to_async(shoppers_create)(1, orders_each=FLOOD // 10, pending=True)
    streams = []
    try:
        opened = await asyncio.gather(
            *(panel_shown(server.url, s.orders[0], s.session_key) for s in shoppers)
        )
        streams += [stream for stream in opened if not isinstance(stream, BaseException)]
        failures = [repr(error) for error in opened if isinstance(error, BaseException)]
        assert not failures, f"{len(failures)} refused, e.g. {failures[:3]}\n{server.log_tail()}"

        # While the 2,000 stay open, from the same address.
        flood = await asyncio.gather(
            *(panel_shown(server.url, biz, flooder.session_key) for biz in flooder.orders * 10)
        )
        streams += [stream for stream in flood if not isinstance(stream, BaseException)]
        refused = [error for error in flood if isinstance(error, InvalidStatus)]
        assert len(streams) - SHOPPERS == SESSION_CAP
        assert len(refused) == FLOOD - SESSION_CAP
        assert {error.response.status_code for error in refused} == {403}
    finally:
        await asyncio.gather(*(stream.close() for stream in streams))
