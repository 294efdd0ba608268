from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from checkout.services.notifications import MAX_BODY_BYTES, notification_receive
from shop.middleware import machine_endpoint


@machine_endpoint
@csrf_exempt  # the payment system signs its requests instead
@require_POST
def notify(request: HttpRequest, gateway: str) -> JsonResponse:
    """Payment result notifications from the payment system (contract section 4).

    A sync view: verifying, applying and recording a result is one step in the request's thread
    (`shop.handlers`: one hop for the whole request), and the push is handed to the event loop."""
    # One byte past the limit is enough to know a body is too large, without reading all of it.
    body = request.read(MAX_BODY_BYTES + 1)
    receipt = notification_receive(
        gateway_name=gateway,
        headers=request.headers,
        body=body,
        remote_addr=request.META.get("REMOTE_ADDR", ""),
    )
    return JsonResponse(
        {"verdict": receipt.verdict, "outcome": receipt.outcome}, status=receipt.http_status
    )
