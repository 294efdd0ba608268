from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from checkout.services.notifications import MAX_BODY_BYTES, notification_receive


@csrf_exempt  # the payment system signs its requests instead
@require_POST
async def notify(request: HttpRequest, gateway: str) -> JsonResponse:
    """Payment result notifications from the payment system (contract section 4).

    Async, so that the push after the result is committed goes out on the server's own event loop
    and channel layer connection (field notes: `async_to_sync(group_send)` from a sync view opens
    a loop and a Redis connection each time)."""
    # One byte past the limit is enough to know a body is too large, without reading all of it.
    body = request.read(MAX_BODY_BYTES + 1)
    receipt = await notification_receive(
        gateway_name=gateway,
        headers=request.headers,
        body=body,
        remote_addr=request.META.get("REMOTE_ADDR", ""),
    )
    return JsonResponse(
        {"verdict": receipt.verdict, "outcome": receipt.outcome}, status=receipt.http_status
    )
