"""`POST /payments/notify/<provider>/`: the payment providers' result notifications (contract
sections 4 and 6), answered in each provider's own words.

A Channels consumer routed ahead of Django (`checkout.routing`, Channels' docs' layout for HTTP
consumers), not a Django view: a notification needs nothing of Django's request stack (no session,
no CSRF token, the provider signs it; no language, no page), and under an ASGI server that stack
costs each request a thread of its own and two thread hops per synchronous middleware, more than
half of a notification's CPU (docs/profile-history.md). Here the request costs one hop, the one
that applies the result, and the push goes out on the server's own event loop.
"""

from channels.generic.http import AsyncHttpConsumer
from django.conf import settings
from django.urls import reverse
from django.utils.datastructures import CaseInsensitiveMapping

from checkout import gateways
from checkout.services.notifications import MAX_BODY_BYTES, notification_receive

TEXT = [(b"Content-Type", b"text/plain; charset=utf-8")]


class NotifyConsumer(AsyncHttpConsumer):
    # It answers the provider and listens to nothing else: no channel of its own on the layer
    # (an alias that names no layer; `checkout.push` sends on the default one).
    channel_layer_alias = None

    async def handle(self, body: bytes) -> None:
        provider = self.scope["url_route"]["kwargs"]["provider"]
        if self.scope["method"] != "POST":
            await self.send_response(405, b"POST only.", headers=[*TEXT, (b"Allow", b"POST")])
            return
        if provider not in gateways.enabled():
            await self.send_response(404, b"No such payment provider.", headers=TEXT)
            return
        client = self.scope.get("client") or ("",)
        receipt = await notification_receive(
            gateway_name=provider,
            headers=headers_of(self.scope),
            # One byte past the limit is enough to know a body is too large; the rest is not read.
            body=body[: MAX_BODY_BYTES + 1],
            remote_addr=client[0],
        )
        status, answer, content_type = gateways.get_gateway(provider).notice_answer(
            status=receipt.http_status, verdict=receipt.verdict, outcome=receipt.outcome
        )
        await self.send_response(status, answer, headers=[(b"Content-Type", content_type.encode())])


def notify_url(provider: str) -> str:
    """The address `provider` sends its notifications to (registered with it, or sent with each
    payment)."""
    return settings.SITE_URL + reverse("notify", urlconf="checkout.routing", args=[provider])


def headers_of(scope: dict) -> CaseInsensitiveMapping:
    """The request's headers by name, any case, as Django's `request.headers` gives them: decoded
    as Latin-1, a repeated header's values joined by commas."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return CaseInsensitiveMapping(headers)
