"""The channel layers: the embedded one (Channels' in-memory layer, minus its cost per message and
per socket) and channels_redis' pub/sub layer, minus its cost per socket and with its publishes
apart from its subscriptions (`_Shard`).

`InMemoryChannelLayer` sweeps every channel and group for expired entries on each `receive` and
`group_send`, so a message costs time proportional to all open sockets (measured here: p99 7.6 ms
at 1,000 sockets, 8.3 s at 5,000). The sweep only bounds memory, so here it runs at most once per
`sweep_interval` seconds; expiry is as exact as before to within that interval.

Every open socket waits in `receive` on its own channel, and both stock layers give each channel
an `asyncio.Queue`: four deques, about 3.3 KiB per idle socket. A `Mailbox` (two lists) holds the
same messages and waiting receivers in a tenth of that (bench/profile_notes.md, "Memory per idle
socket"). The Redis swap was tried once and taken back for a loss that was later found in the
stock layer too (ibid., "Looked at again"); it is back, with tests against Redis.
"""

import asyncio
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis import pubsub
from channels_redis.utils import _wrap_close

from shop.mailbox import Mailbox


class LocalChannelLayer(InMemoryChannelLayer):
    def __init__(self, *, sweep_interval: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.channels: dict[str, Mailbox] = {}
        self.sweep_interval = sweep_interval
        self._last_sweep = 0.0

    async def send(self, channel: str, message: dict) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        box = self.channels.get(channel)
        if box is None:
            box = self.channels[channel] = Mailbox()
        if len(box.items) >= self.get_capacity(channel):
            raise ChannelFull(channel)
        box.put_nowait((time.time() + self.expiry, deepcopy(message)))

    async def receive(self, channel: str) -> dict:
        self.require_valid_channel_name(channel)
        self._clean_expired()
        box = self.channels.get(channel)
        if box is None:
            box = self.channels[channel] = Mailbox()
        try:
            return (await box.get())[1]
        finally:
            if not box.items and not box.waiters and self.channels.get(channel) is box:
                del self.channels[channel]

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.sweep_interval:
            return
        self._last_sweep = now
        wall = time.time()
        for channel, box in list(self.channels.items()):
            expired = False
            while box.items and box.items[0][0] < wall:
                box.items.pop(0)
                expired = True
            if expired:
                self._remove_from_groups(channel)  # Channels' rule: a dead channel leaves them
                if not box.items and not box.waiters:
                    del self.channels[channel]
        timeout = int(wall) - self.group_expiry
        for group, members in list(self.groups.items()):
            for name, joined in list(members.items()):
                if joined and joined < timeout:
                    del members[name]
            if not members:
                del self.groups[group]

    def _remove_from_groups(self, channel: str) -> None:
        # A group its last member left this way goes, as on group_discard: the stock layer keeps
        # it, one empty dict per such order for as long as the process runs.
        for group, members in list(self.groups.items()):
            if members.pop(channel, None) is not None and not members:
                del self.groups[group]


# Publishes in flight at once per Redis host and process, each on a pooled connection of its own.
PUBLISHES_AT_ONCE = 16


class _Shard(pubsub.RedisSingleShardConnection):
    """channels_redis 4.3.0's connection to one Redis, whose publishes do not queue behind its
    subscriptions.

    There every publish, subscribe and unsubscribe of a process takes one lock in turn, each for a
    round trip to Redis, and under load each hand-off of that lock waits for the busy event loop:
    when a thousand shoppers arrive, their sockets' subscriptions held pushes for over 2 s
    (bench/profile_notes.md, thirteenth pass). A subscription needs the lock (one pub/sub
    connection, the set of channels subscribed to); a publish takes any of the Redis client's
    pooled connections, so here it waits only for other publishes, PUBLISHES_AT_ONCE at a time (a
    bound on the connections a burst opens)."""

    def __init__(self, host, channel_layer) -> None:
        super().__init__(host, channel_layer)
        self._publishing = asyncio.Semaphore(PUBLISHES_AT_ONCE)

    async def publish(self, channel: str, message: bytes) -> None:
        async with self._publishing:
            self._ensure_redis()
            await self._redis.publish(channel, message)


class _PubSubLoopLayer(pubsub.RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [_Shard(shard.host, self) for shard in self._shards]

    async def _subscribe_to_channel(self, channel: str) -> None:
        # channels_redis 4.3.0's, with a Mailbox for its Queue: its shards' readers only call
        # put_nowait on it, and receive() only get().
        self.channels[channel] = Mailbox()
        await self._get_shard(channel).subscribe(channel)


class PubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    def _get_layer(self) -> pubsub.RedisPubSubLoopLayer:
        # channels_redis 4.3.0's, building the loop layer above (one per event loop, as there).
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _PubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer
