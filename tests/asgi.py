"""Requests to the shop's ASGI application (`shop.asgi`), made from a test as a server makes them.

The notification endpoint is a Channels consumer routed ahead of Django (`checkout.routing`), which
Django's test clients do not reach. `request` runs in the test's own thread (`async_to_sync`), so
the endpoint's database work joins the test's transaction, as a Django test client's does."""

import httpx
from asgiref.sync import async_to_sync

CLIENT = ("127.0.0.1", 50000)


async def arequest(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    client: tuple[str, int] = CLIENT,
) -> httpx.Response:
    """`method` `path` with `body`; header text is sent as its UTF-8 bytes, as a client sends it."""
    from shop.asgi import application  # once pytest-django has set Django up

    sent = {name: value.encode() for name, value in (headers or {}).items()}
    if content_type is not None:
        sent["Content-Type"] = content_type.encode()
    transport = httpx.ASGITransport(app=application, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.request(method, path, content=body, headers=sent)


request = async_to_sync(arequest)


def post(path: str, body: bytes = b"", **kwargs) -> httpx.Response:
    return request("POST", path, body, **kwargs)


async def apost(path: str, body: bytes = b"", **kwargs) -> httpx.Response:
    return await arequest("POST", path, body, **kwargs)
