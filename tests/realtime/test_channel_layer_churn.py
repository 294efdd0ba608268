"""The embedded layer (`shop.channel_layers.LocalChannelLayer`) under churn: sockets opening and
closing while pushes arrive, receives cancelled while a message is handed to them, members leaving
groups mid-send, several receivers on one channel.

Each history is a random schedule from a seed hypothesis draws; the event loop runs nothing
but the layer and the simulated consumers, so a seed always replays the same interleaving.
"""

import asyncio
import functools
import itertools
import random
import time
from dataclasses import dataclass, field
from unittest import mock

from channels.exceptions import StopConsumer
from channels.utils import await_many_dispatch
from hypothesis import given, settings, strategies as st

from shop.channel_layers import LocalChannelLayer

GROUPS = ("order-a", "order-b", "order-c")
DISCONNECT = {"type": "websocket.disconnect"}
DRAIN_ROUNDS = 500  # loop iterations the survivors get to receive what is still on its way


@dataclass(eq=False)
class Socket:
    """A consumer as Channels runs one: `await_many_dispatch` over the server's events and the
    layer's `receive`, re-created after every message and cancelled when the consumer stops."""

    name: str
    group: str
    joined: int  # the clock when group_add returned
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    got: list[tuple[str, int]] = field(default_factory=list)
    closing: bool = False
    dropped: bool = False  # stopped without leaving its group (a crash, a server shutdown)
    left: int | None = None  # the clock when group_discard returned
    task: asyncio.Future | None = None


@dataclass(frozen=True)
class Sent:
    sender: str
    seq: int
    at: int  # the clock when the send or group_send began (group_send reads its members then)
    group: str | None = None
    channel: str | None = None


class Churn:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        # A sweep on every call, so that it runs between wake-ups too; room for every message.
        self.layer = LocalChannelLayer(sweep_interval=0, capacity=10_000)
        self.clock = itertools.count()
        self.sockets: list[Socket] = []
        self.sent: list[Sent] = []
        self.seqs: dict[str, itertools.count] = {}
        self.pushing: list[asyncio.Task] = []

    async def run(self, steps: int) -> None:
        actions = [self.open, self.close, self.drop, self.push, self.push, self.send, self.pause]
        for _ in range(steps):
            await self.rng.choice(actions)()
        await asyncio.gather(*self.pushing)
        await self.drain()
        self.check_deliveries()
        for socket in self.live():
            await self.close(socket)
        await asyncio.gather(*(s.task for s in self.sockets), return_exceptions=True)
        self.check_nothing_waits_for_the_closed()

    # --- what happens ---------------------------------------------------------------------------

    async def open(self) -> None:
        name = f"specific.inmemory!s{len(self.sockets)}"
        group = self.rng.choice(GROUPS)
        await self.layer.group_add(group, name)
        socket = Socket(name, group, joined=next(self.clock))
        receive = functools.partial(self.layer.receive, name)
        socket.task = asyncio.ensure_future(
            await_many_dispatch([socket.events.get, receive], functools.partial(self.on, socket))
        )
        self.sockets.append(socket)

    async def on(self, socket: Socket, message: dict) -> None:
        """The consumer's dispatch: disconnect leaves the group and stops; a push takes a while."""
        if message is DISCONNECT:
            await self.pause()
            await self.layer.group_discard(socket.group, socket.name)
            socket.left = next(self.clock)
            raise StopConsumer
        socket.got.append((message["sender"], message["seq"]))
        await self.pause(3)  # reading the order, rendering the panel

    async def close(self, socket: Socket | None = None) -> None:
        socket = socket or self.pick()
        if socket is not None:
            socket.closing = True
            socket.events.put_nowait(DISCONNECT)

    async def drop(self) -> None:
        socket = self.pick()
        if socket is not None and self.rng.random() < 0.3:
            socket.closing = socket.dropped = True
            socket.task.cancel()  # await_many_dispatch cancels its receive on the way out

    async def push(self) -> None:
        # Left running, so pushes overlap each other and everything else.
        self.pushing.append(asyncio.ensure_future(self.group_send(self.rng.choice(GROUPS))))

    async def group_send(self, group: str) -> None:
        sent = self.record(f"group:{group}", group=group)  # group_send reads the members at once
        message = {"type": "order.changed", "sender": sent.sender, "seq": sent.seq}
        await self.layer.group_send(group, message)

    async def send(self) -> None:
        socket = self.pick()
        if socket is not None:
            sent = self.record(f"direct:{socket.name}", channel=socket.name)
            message = {"type": "order.changed", "sender": sent.sender, "seq": sent.seq}
            await self.layer.send(socket.name, message)

    async def pause(self, most: int = 2) -> None:
        for _ in range(self.rng.randrange(most + 1)):
            await asyncio.sleep(0)

    def record(self, sender: str, **to: str) -> Sent:
        seq = next(self.seqs.setdefault(sender, itertools.count()))
        sent = Sent(sender, seq, at=next(self.clock), **to)
        self.sent.append(sent)
        return sent

    def pick(self) -> Socket | None:
        open_ = [s for s in self.sockets if not s.closing]
        return self.rng.choice(open_) if open_ else None

    def live(self) -> list[Socket]:
        return [s for s in self.sockets if not s.closing]

    # --- what must hold -------------------------------------------------------------------------

    def owed(self, socket: Socket) -> set[tuple[str, int]]:
        """What a socket that never closed must get: its group's pushes begun after it joined,
        and every message sent to it."""
        return {
            (s.sender, s.seq)
            for s in self.sent
            if s.channel == socket.name or (s.group == socket.group and s.at > socket.joined)
        }

    async def drain(self) -> None:
        for _ in range(DRAIN_ROUNDS):
            if all(self.owed(s) <= set(s.got) for s in self.live()):
                return
            await asyncio.sleep(0)

    def check_deliveries(self) -> None:
        sent = {(s.sender, s.seq): s for s in self.sent}
        for socket in self.sockets:
            assert len(socket.got) == len(set(socket.got)), f"{socket.name} got a message twice"
            for sender in {sender for sender, _ in socket.got}:
                in_order = [seq for s, seq in socket.got if s == sender]
                assert in_order == sorted(in_order), f"{socket.name}: {sender} out of order"
            for key in socket.got:
                message = sent[key]
                assert message.channel in (None, socket.name), f"{socket.name} got {key}"
                if message.group is not None:
                    assert message.group == socket.group, f"{socket.name} got {key}"
                    assert message.at > socket.joined, f"{socket.name} got {key} before joining"
                    assert socket.left is None or message.at < socket.left, (
                        f"{socket.name} got {key} after leaving"
                    )
        for socket in self.live():
            missing = self.owed(socket) - set(socket.got)
            assert not missing, f"{socket.name} never got {sorted(missing)}"

    def check_nothing_waits_for_the_closed(self) -> None:
        layer = self.layer
        # Sockets that left their group left no trace in it; dropped ones stay until expiry.
        members = {name for group in layer.groups.values() for name in group}
        assert members <= {s.name for s in self.sockets if s.dropped}
        sent_at = {(s.sender, s.seq): s.at for s in self.sent}
        for name, box in layer.channels.items():
            assert not box.waiters, f"{name}: a receiver still waits after every socket closed"
            left = next(s.left for s in self.sockets if s.name == name)
            # A push can outlive its receiver (woken, then cancelled): never one sent after it left.
            for _, message in box.items:
                at = sent_at[(message["sender"], message["seq"])]
                assert left is None or at < left, f"{name} was sent {message} after leaving"
        # A day later (past expiry and group expiry) the next sweep leaves nothing at all.
        later = time.time() + layer.group_expiry + layer.expiry + 1
        with mock.patch.object(time, "time", return_value=later):
            layer._clean_expired()
        assert layer.channels == {}
        assert layer.groups == {}


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=20, max_value=120))
def test_under_churn_every_live_socket_gets_each_push_once_in_order(seed, steps) -> None:
    asyncio.run(Churn(random.Random(seed)).run(steps))


async def share_a_channel(rng: random.Random, messages: int) -> None:
    """Receivers on one channel, cancelled and replaced at random while messages arrive: each
    message goes to exactly one receiver, and each receiver takes them oldest first."""
    layer = LocalChannelLayer(sweep_interval=0, capacity=10_000)
    got: list[list[int]] = []

    async def receiver() -> None:
        mine: list[int] = []
        got.append(mine)
        while True:
            mine.append((await layer.receive("work"))["n"])
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)

    receivers = [asyncio.ensure_future(receiver()) for _ in range(3)]
    for n in range(messages):
        await layer.send("work", {"type": "job", "n": n})
        if rng.random() < 0.3:
            victim = rng.randrange(len(receivers))
            receivers[victim].cancel()  # at once, or after a pause: woken or still waiting
            receivers[victim] = asyncio.ensure_future(receiver())
        for _ in range(rng.randrange(3)):
            await asyncio.sleep(0)
    # One receiver, any of them, is left; it alone must take what is still sent.
    last = receivers.pop(rng.randrange(len(receivers)))
    for task in receivers:
        task.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)
    for n in range(messages, messages + 2):
        await layer.send("work", {"type": "job", "n": n})
    for _ in range(DRAIN_ROUNDS):
        if sum(map(len, got)) >= messages + 2:
            break
        await asyncio.sleep(0)
    last.cancel()
    await asyncio.gather(last, return_exceptions=True)
    received = sorted(n for ns in got for n in ns)
    assert received == list(range(messages + 2)), f"lost or doubled: got {received}"
    assert all(ns == sorted(ns) for ns in got)
    assert layer.channels == {}


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=60))
def test_receivers_sharing_a_channel_get_each_message_once(seed, messages) -> None:
    asyncio.run(share_a_channel(random.Random(seed), messages))
