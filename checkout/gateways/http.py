"""The HTTP client every payment system is called with: one aiohttp session (a connection pool)
per event loop, since sessions must not cross loops, closed when its loop ends."""

import asyncio

import aiohttp

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
_closers: set[asyncio.Task] = set()


def session() -> aiohttp.ClientSession:
    """The running loop's session. No trust_env, which would look for a proxy in the environment
    and ~/.netrc on every request: the proxy, if any, is PAYMENT_GATEWAY_PROXY."""
    loop = asyncio.get_running_loop()
    found = _sessions.get(loop)
    if found is None:
        found = _sessions[loop] = aiohttp.ClientSession()
        closer = loop.create_task(_close_with_loop(loop, found))
        _closers.add(closer)
        closer.add_done_callback(_closers.discard)
    return found


async def _close_with_loop(loop: asyncio.AbstractEventLoop, found: aiohttp.ClientSession) -> None:
    """Close the loop's session when the loop ends: its runner (`asyncio.run`, asgiref's for a
    synchronous caller) cancels what is still waiting, this included, before it closes."""
    try:
        await asyncio.Event().wait()
    finally:
        _sessions.pop(loop, None)
        await found.close()


def connection_lost(error: BaseException) -> bool:
    """The connection closed or reset under a request, as aiohttp counts it (a connection that
    could not be made, or a request out of time, is not): a request with an idempotency key may
    then be sent again."""
    return isinstance(
        error, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
    ) and not isinstance(error, aiohttp.ClientConnectorError)
