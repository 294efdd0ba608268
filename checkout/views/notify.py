from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from checkout import gateways
from checkout.services.notifications import MAX_BODY_BYTES, notification_receive


@csrf_exempt  # the payment provider signs its requests instead
@require_POST
async def notify(request: HttpRequest, provider: str) -> HttpResponse:
    """Payment result notifications from an enabled provider (contract sections 4 and 6),
    answered in the provider's own words.

    Async, so that the push after the result is committed goes out on the server's own event loop
    and channel layer connection (field notes: `async_to_sync(group_send)` from a sync view opens
    a loop and a Redis connection each time)."""
    if provider not in gateways.enabled():
        raise Http404("No such payment provider.")
    # One byte past the limit is enough to know a body is too large, without reading all of it.
    body = request.read(MAX_BODY_BYTES + 1)
    receipt = await notification_receive(
        gateway_name=provider,
        headers=request.headers,
        body=body,
        remote_addr=request.META.get("REMOTE_ADDR", ""),
    )
    status, answer, content_type = gateways.get_gateway(provider).notice_answer(
        status=receipt.http_status, verdict=receipt.verdict, outcome=receipt.outcome
    )
    return HttpResponse(answer, status=status, content_type=content_type)
