"""The embedded channel layer: Channels' in-memory layer, minus its cost per message and per socket.

`InMemoryChannelLayer` sweeps every channel and group for expired entries on each `receive` and
`group_send`, so a message costs time proportional to all open sockets (measured here: p99 7.6 ms
at 1,000 sockets, 8.3 s at 5,000). The sweep only bounds memory, so here it runs at most once per
`sweep_interval` seconds; expiry is as exact as before to within that interval.

Every open socket waits in `receive` on its own channel, and the stock layer gives each channel an
`asyncio.Queue`: four deques, about 3.3 KiB per idle socket. An `Inbox` (two lists) holds the same
messages and waiting receivers in a tenth of that (bench/profile_notes.md, "Memory per idle
socket").
"""

import asyncio
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class Inbox:
    """One channel's messages, oldest first, as (expires_at, message), and the receivers waiting
    for one. Channels' ordering: first in, first out, to one receiver each."""

    __slots__ = ("messages", "waiters")

    def __init__(self) -> None:
        self.messages: list[tuple[float, dict]] = []
        self.waiters: list[asyncio.Future] = []

    def wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return


class LocalChannelLayer(InMemoryChannelLayer):
    def __init__(self, *, sweep_interval: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.channels: dict[str, Inbox] = {}
        self.sweep_interval = sweep_interval
        self._last_sweep = 0.0

    async def send(self, channel: str, message: dict) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        inbox = self.channels.get(channel)
        if inbox is None:
            inbox = self.channels[channel] = Inbox()
        if len(inbox.messages) >= self.get_capacity(channel):
            raise ChannelFull(channel)
        inbox.messages.append((time.time() + self.expiry, deepcopy(message)))
        inbox.wake_one()

    async def receive(self, channel: str) -> dict:
        self.require_valid_channel_name(channel)
        self._clean_expired()
        inbox = self.channels.get(channel)
        if inbox is None:
            inbox = self.channels[channel] = Inbox()
        try:
            while not inbox.messages:
                waiter = asyncio.get_running_loop().create_future()
                inbox.waiters.append(waiter)
                try:
                    await waiter
                except BaseException:
                    if waiter in inbox.waiters:
                        inbox.waiters.remove(waiter)
                    elif inbox.messages:
                        inbox.wake_one()  # it was woken for a message it will not take
                    raise
            return inbox.messages.pop(0)[1]
        finally:
            if not inbox.messages and not inbox.waiters and self.channels.get(channel) is inbox:
                del self.channels[channel]

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self.sweep_interval:
            return
        self._last_sweep = now
        wall = time.time()
        for channel, inbox in list(self.channels.items()):
            expired = False
            while inbox.messages and inbox.messages[0][0] < wall:
                inbox.messages.pop(0)
                expired = True
            if expired:
                self._remove_from_groups(
                    channel
                )  # Channels' rule: a dead channel leaves its groups
                if not inbox.messages and not inbox.waiters:
                    del self.channels[channel]
        timeout = int(wall) - self.group_expiry
        for members in self.groups.values():
            for name, joined in list(members.items()):
                if joined and joined < timeout:
                    del members[name]
