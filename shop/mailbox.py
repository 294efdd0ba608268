"""A queue for one socket's messages, smaller than `asyncio.Queue`.

Every open socket has two queues: uvicorn's for what the browser sends (`shop.socket_protocol`)
and the channel layer's for what the shop pushes (`shop.channel_layers`, both layers). An
`asyncio.Queue` is four deques, about 3.3 KiB even when empty; a socket mostly waits with nothing
queued.
"""

import asyncio


class Mailbox:
    """What a channel layer or uvicorn needs of an `asyncio.Queue` (put_nowait, get, empty), in
    two lists.

    First in, first out, one item to each receiver; a receiver cancelled after it was woken passes
    its wake-up on, so no item waits while a receiver sleeps.

    A waiter leaves `waiters` only when its receiver runs again: a receiver woken for an item that
    is gone when it runs (another receiver took it, or the sweep expired it) waits here again, so
    the layer must not drop this mailbox meanwhile for looking unused, or that receiver would wait
    in it forever while new items went to a new one.
    """

    __slots__ = ("items", "waiters")

    def __init__(self) -> None:
        self.items: list = []
        self.waiters: list[asyncio.Future] = []

    def empty(self) -> bool:
        return not self.items

    def put_nowait(self, item) -> None:
        self.items.append(item)
        self._wake_one()

    async def get(self):
        while not self.items:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                self.waiters.remove(waiter)
                if self.items and waiter.done() and not waiter.cancelled():
                    self._wake_one()  # it was woken for an item it will not take
                raise
            self.waiters.remove(waiter)
        return self.items.pop(0)

    def _wake_one(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():  # woken already, or cancelled: its receiver has yet to run
                waiter.set_result(None)
                return
