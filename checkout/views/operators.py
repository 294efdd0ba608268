"""For the people who run the shop: a health check for load balancers and Prometheus metrics."""

import asyncio
import hmac
import logging
import secrets
import weakref

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

import checkout.metrics  # noqa: F401  (registers the shop's metrics)

logger = logging.getLogger(__name__)

CHANNEL_LAYER_TIMEOUT = 2.0


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            raise RuntimeError("SELECT 1 did not answer 1")


# One probe channel per layer, reused, and one probe at a time: the pub/sub layer keeps a Redis
# subscription for every channel until a receive on it is cancelled, so a new channel per probe
# would pile up one subscription per load-balancer check.
_probe_channels: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_probe_lock = asyncio.Lock()


async def _channel_layer() -> None:
    """A message sent to a channel of this process and received back: what a push needs."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    async with _probe_lock:
        if layer not in _probe_channels:
            _probe_channels[layer] = await layer.new_channel("healthz.")
        channel = _probe_channels[layer]
        nonce = secrets.token_hex(8)
        await layer.send(channel, {"type": "healthz.ping", "nonce": nonce})
        try:
            async with asyncio.timeout(CHANNEL_LAYER_TIMEOUT):
                while (await layer.receive(channel)).get("nonce") != nonce:
                    pass  # the answer to an earlier probe that timed out
        except BaseException:
            # A cancelled receive makes the pub/sub layer unsubscribe and forget the channel: the
            # next probe would send to nobody, time out in turn, and so would every one after.
            del _probe_channels[layer]
            raise


@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the channel layer both answer, else 503 naming the check that
    failed."""
    checks: dict[str, str] = {}
    for name, check in (
        ("database", sync_to_async(_database)),
        ("channel_layer", _channel_layer),
    ):
        try:
            await check()
        except Exception:
            # The reason goes to the log: an exception's text can name hosts and users.
            logger.exception("healthz: the %s check failed", name)
            checks[name] = "fail"
        else:
            checks[name] = "ok"
    healthy = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "fail", "checks": checks}, status=200 if healthy else 503
    )


def _may_scrape(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    return request.META.get("REMOTE_ADDR", "") in settings.METRICS_ALLOWED_ADDRS


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; only for METRICS_ALLOWED_ADDRS or a METRICS_TOKEN bearer."""
    if not _may_scrape(request):
        return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
