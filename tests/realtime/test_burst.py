"""A burst of 2,000 simultaneous WebSocket connects to one server process on Redis all succeed.

Each handshake reads the session and the order on the process's one database thread (Channels'
`database_sync_to_async`), so the last of 2,000 waits seconds for its turn: longer than daphne's
default 5 s for a handshake. The server runs as production does (deploy/supervisord.conf), with
`--websocket_connect_timeout` raised.

The pub/sub layer (the default) gets 2,000; the core layer, kept as an option, 400, which is four
times redis-py 8's default pool and enough to show its pool and read timeout are configured (2,000
take a minute on it). Each shopper has one order open in ten tabs, within the caps per session and
per order (checkout/caps.py) without switching them off; they come from up to 40 loopback addresses.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from checkout.models import OrderStatus
from tests.checkout import factories as f
from tests.realtime.streams import next_status, open_stream

pytestmark = pytest.mark.django_db(transaction=True)

SHOPPERS_PER_CLIENT = 5
TABS_PER_ORDER = 10  # 50 sockets per client address


def shoppers_with_orders(clients: int) -> list[tuple[str, str, str]]:
    """(client address, session key, biz) for every socket of the burst."""
    sockets = []
    for client in range(clients):
        for _ in range(SHOPPERS_PER_CLIENT):
            session = f.shopper_session()
            order = f.order(session, status=OrderStatus.PENDING)
            ip = f"127.0.{client // 200}.{client % 200 + 2}"
            sockets += [(ip, session.session_key, order.biz)] * TABS_PER_ORDER
    return sockets


@pytest.mark.parametrize(("layer", "sockets"), [("pubsub", 2000), ("core", 400)])
async def test_a_burst_of_simultaneous_connects_all_get_their_panel(
    shops, shared_redis, layer, sockets
):
    server = shops.start(
        "burst",
        daphne=True,
        reconcile=False,
        deliver=False,
        REDIS_URL=shared_redis,
        REDIS_CHANNEL_LAYER=layer,
    )
    plan = await sync_to_async(shoppers_with_orders)(sockets // 50)

    async def one(ip: str, key: str, biz: str) -> str:
        stream = await open_stream(server.url, biz, key, local_ip=ip)
        try:
            return await next_status(stream, timeout=120)
        finally:
            await stream.close()

    results = await asyncio.gather(*(one(*args) for args in plan), return_exceptions=True)

    failures = [repr(r) for r in results if r != "pending"]
    assert len(results) == sockets
    assert not failures, f"{len(failures)} failed, e.g. {failures[:3]}\n{server.log_tail()}"
