"""At most so many requests inside Django at once, in two lanes; the others wait their turn.

Under ASGI, Django gives every request a thread of its own for its synchronous parts (middleware,
signals, the ORM), created when the request first needs it and joined when it ends. With a
thousand requests in flight that is a thousand threads taking turns on one GIL, and every request
finishes about as late as the slowest. Waiting here costs a coroutine, and requests are served in
the order they came, but for the shoppers' lane's rule below (bench/profile_notes.md, "A thread
per request in flight").

- Shoppers: HTTP_MAX_CONCURRENT. Every shopper's request counts, and those that act (Pay, the buy
  form: any method but GET, HEAD and OPTIONS) go in before those that look (pages), each in the
  order they came: under more shoppers than the machine serves, the checkouts already started are
  finished first, as a shop's checkout queue does in a flash sale. Served in arrival order, a
  thousand shoppers arriving at once (a 2-core machine serving ~45 checkouts a second) queued
  their pages ahead of everyone's Pay: no checkout completed in the first seconds, and Pay's p99
  was 4-9 s; with Pays first, 16 places, 20-25% more checkouts a second for less of the shop's CPU
  each (22-23 ms against 26-34), Pay's p99 1.4-1.7 s, the pages' 9-18 s instead of 3-8 (ibid.,
  fifteenth pass). With 32 or 64 places the order did not help: they filled with pages first;
  with 8 instead of 16, Pay's p99 fell by a fifth to two fifths again (twenty-second pass).
  Pay's thread waits while the payment system is called (shop/handlers.py), so the limit also
  bounds the threads waiting for it, unless the answer is late (0.1 s): then the Pay gives its
  place back meanwhile (`without_place`), so that Pays held by a payment system that is slow or
  hangs cannot fill the lane ahead of the pages, and takes one again, ahead of them, when the
  answer comes.
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
import contextvars
from collections import deque

from django.urls import ResolverMatch

from shop.middleware import is_async_machine_endpoint, is_machine_endpoint, url_match

SHOPPERS, MACHINES = "shoppers", "machines"
# Seconds a machine's request waits for a place in its lane before it goes in without one.
MACHINE_PATIENCE = 0.1
# Methods of requests that only look; any other acts (Pay, buy).
LOOKING = frozenset({"GET", "HEAD", "OPTIONS"})


def lane_of(match: ResolverMatch | None) -> str | None:
    if is_async_machine_endpoint(match):
        return None
    return MACHINES if is_machine_endpoint(match) else SHOPPERS


class Lane:
    """`limit` places, given in arrival order, to requests that act before those that look."""

    def __init__(self, limit: int) -> None:
        self.limit, self.inside = limit, 0
        self.waiting: dict[bool, deque[asyncio.Future]] = {True: deque(), False: deque()}

    async def enter(self, acts: bool, patience: float | None = None) -> bool:
        """Wait for a place, for at most `patience` seconds if given; whether one was taken."""
        if self.inside < self.limit and not (self.waiting[True] or self.waiting[False]):
            self.inside += 1
            return True
        place = asyncio.get_running_loop().create_future()
        self.waiting[acts].append(place)
        try:
            async with asyncio.timeout(patience):
                await place
        except BaseException as error:
            # Cancelled while in line (a timeout, a browser gone), the task cancels the future it
            # awaited, which `leave` passes over. Given a place first, it holds one.
            if place.done() and not place.cancelled():
                if isinstance(error, TimeoutError):
                    return True  # the place came as its patience ran out: it goes in with it
                self.leave()  # the request is gone: the place goes to the next in line
                raise
            place.cancel()
            if isinstance(error, TimeoutError):
                return False
            raise
        return True

    def leave(self) -> None:
        """Give a place to the next in line, or back."""
        for line in (self.waiting[True], self.waiting[False]):
            while line:
                place = line.popleft()
                if not place.done():
                    place.set_result(None)
                    return
        self.inside -= 1


class Place:
    """A request's place in its lane, which it may give back while it waits for another machine
    and take again, ahead of those who look, when the answer comes."""

    def __init__(self, lane: Lane, acts: bool) -> None:
        self.lane, self.acts, self.held = lane, acts, False

    async def take(self, patience: float | None = None) -> None:
        if not self.held:
            self.held = await self.lane.enter(self.acts, patience)

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.lane.leave()


# The place of the request being served, for code that waits within it (`without_place`).
request_place: contextvars.ContextVar[Place | None] = contextvars.ContextVar(
    "request_place", default=None
)


async def without_place(awaitable):
    """Await another machine's answer without holding the request's place, so that requests
    waiting for a machine that hangs do not fill their lane; then take a place again, ahead of
    those who look. A request cancelled meanwhile (its browser gone) takes none."""
    place = request_place.get()
    if place is None or not place.held:
        return await awaitable
    place.give_back()
    try:
        answer = await awaitable
    except asyncio.CancelledError:
        raise
    except BaseException:
        await place.take()
        raise
    await place.take()
    return answer


class Gate:
    def __init__(self, app, limit: int, machine_limit: int = 0) -> None:
        """`limit` for the shoppers' lane, `machine_limit` for the machines'; 0: no limit."""
        self.app = app
        self.limits = {SHOPPERS: limit, MACHINES: machine_limit}
        self.lanes: dict[str, Lane] = {}

    async def __call__(self, scope, receive, send) -> None:
        name = lane_of(url_match(scope))
        if name is None or self.limits[name] <= 0:
            await self.app(scope, receive, send)
            return
        lane = self.lanes.get(name)
        if lane is None:
            lane = self.lanes[name] = Lane(self.limits[name])
        place = Place(lane, acts=scope.get("method", "GET") not in LOOKING)
        await place.take(MACHINE_PATIENCE if name == MACHINES else None)
        token = request_place.set(place)
        try:
            await self.app(scope, receive, send)
        finally:
            request_place.reset(token)
            place.give_back()
