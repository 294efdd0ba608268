"""At most so many requests inside Django at once, in two lanes; the others wait their turn.

Under ASGI, Django gives every request a thread of its own for its synchronous parts (middleware,
signals, the ORM), created when the request first needs it and joined when it ends. With a
thousand requests in flight that is a thousand threads taking turns on one GIL, and every request
finishes about as late as the slowest. Waiting here costs a coroutine, and requests are served in
the order they came (bench/profile_notes.md, "A thread per request in flight").

- Shoppers: HTTP_MAX_CONCURRENT. Every shopper's request counts. Pay's thread waits while the
  payment system is called (shop/handlers.py), so the limit also bounds the threads waiting for it
  (the call itself runs on the event loop, which never waits for it).
- Machines: MACHINE_MAX_CONCURRENT, for the machine endpoints (`shop.middleware`) whose view runs
  in a thread: the payment system's notifications. They never wait behind shoppers, whose results
  they carry (and one held past the payment system's time limit is only delivered again), only
  behind each other. A burst of them each in its thread spent its CPU handing the GIL around: at
  500 notifications/s on one process the push's p99 was 82-317 ms without the lane and 17-85
  with four at a time (ibid., fourteenth pass). The lane is there to spread a burst, never to
  hold results back: one waits for a place at most MACHINE_PATIENCE, then goes in all the same.
  Under a thousand shoppers each notification takes longer inside, its thread sharing the GIL
  with the shoppers', and four places then let fewer through than arrived: without that bound
  some waited past the payment system's 5 s time limit and were delivered again. An async
  machine endpoint (the sandbox's API, which answers the shop's Pay, or blocks for the old mode's
  payments) holds no thread while it waits, and waits for no lane.
"""

import asyncio

from django.urls import ResolverMatch

from shop.middleware import is_async_machine_endpoint, is_machine_endpoint, url_match

SHOPPERS, MACHINES = "shoppers", "machines"
# Seconds a machine's request waits for a place in its lane before it goes in without one.
MACHINE_PATIENCE = 0.1


def lane_of(match: ResolverMatch | None) -> str | None:
    if is_async_machine_endpoint(match):
        return None
    return MACHINES if is_machine_endpoint(match) else SHOPPERS


class Gate:
    def __init__(self, app, limit: int, machine_limit: int = 0) -> None:
        """`limit` for the shoppers' lane, `machine_limit` for the machines'; 0: no limit."""
        self.app = app
        self.limits = {SHOPPERS: limit, MACHINES: machine_limit}
        self.semaphores: dict[str, asyncio.Semaphore] = {}

    async def __call__(self, scope, receive, send) -> None:
        lane = lane_of(url_match(scope))
        if lane is None or self.limits[lane] <= 0:
            await self.app(scope, receive, send)
            return
        semaphore = self.semaphores.get(lane)
        if semaphore is None:
            semaphore = self.semaphores[lane] = asyncio.Semaphore(self.limits[lane])
        placed = await _place(semaphore, MACHINE_PATIENCE if lane == MACHINES else None)
        try:
            await self.app(scope, receive, send)
        finally:
            if placed:
                semaphore.release()


async def _place(semaphore: asyncio.Semaphore, patience: float | None) -> bool:
    """Wait for a place, for at most `patience` seconds if given; whether one was taken."""
    try:
        async with asyncio.timeout(patience):
            await semaphore.acquire()
    except TimeoutError:
        return False
    return True
