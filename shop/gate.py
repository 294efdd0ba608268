"""At most HTTP_MAX_CONCURRENT requests inside Django at once; the others wait their turn.

Under ASGI, Django gives every request a thread of its own for its synchronous parts (middleware,
signals, the ORM), created when the request first needs it and joined when it ends. With a
thousand requests in flight that is a thousand threads taking turns on one GIL, and every request
finishes about as late as the slowest. Waiting here costs a coroutine, and requests are served in
the order they came (bench/profile_notes.md, "A thread per request in flight"). Every shopper's
request counts: Pay's thread waits while the payment system is called (shop/handlers.py), so the
limit also bounds the threads waiting for it (the call itself runs on the event loop, which never
waits for it).

Machine endpoints (`shop.middleware`) never wait: the payment system's notifications carry the
results shoppers are waiting for, and one held past the payment system's time limit is only
delivered again, adding to the queue; the sandbox's API answers the shop's Pay, which a shopper
is waiting for.
"""

import asyncio

from shop.middleware import is_machine_endpoint, url_match


class Gate:
    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit
        self.semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope, receive, send) -> None:
        if self.limit <= 0 or is_machine_endpoint(url_match(scope)):
            await self.app(scope, receive, send)
            return
        if self.semaphore is None:
            self.semaphore = asyncio.Semaphore(self.limit)
        async with self.semaphore:
            await self.app(scope, receive, send)
