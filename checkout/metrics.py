"""Prometheus metrics: do results reach shoppers, and how fast?

Counters, the histogram and the gauge live in each server process (scrape every process, or sum in
Prometheus); the pending payments are counted from the database at scrape time, so any process
gives the same answer.
"""

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from checkout.models import Order, OrderStatus

NOTIFICATIONS = Counter(
    "checkout_notifications",
    "Requests to the notification endpoints, by provider, verdict and what they did to the order.",
    ["provider", "verdict", "outcome"],
)
RESULT_PUSH_SECONDS = Histogram(
    "checkout_result_push_seconds",
    "From a payment result applied to the database to the new panel sent on a shopper's socket.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PUSH_FAILURES = Counter(
    "checkout_push_failures",
    "Pushes to an order's sockets that failed or ran out of time (the watchlist catches them up).",
)
OPEN_SOCKETS = Gauge("checkout_open_sockets", "Status sockets open in this process.")
SOCKETS_REFUSED = Counter(
    "checkout_sockets_refused",
    "Status sockets refused at the handshake: over a cap (checkout.caps), or not the owner's.",
    ["reason"],
)

# Upper bounds, in seconds, of the age buckets of pending payments (cumulative, like `le`).
PENDING_AGE_BUCKETS = (60, 300, 900, 3600)


class PendingPaymentsCollector:
    """Orders waiting for the payment system, by how long since the payment was started."""

    def describe(self):
        # Registering calls describe(), not collect(): no query at import time.
        return [self._family()]

    def collect(self):
        family = self._family()
        for bound, count in pending_payments_by_age().items():
            family.add_metric([bound], count)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "checkout_pending_payments",
            "Orders whose payment is pending, waiting at most `le` seconds (cumulative).",
            labels=["le"],
        )


def pending_payments_by_age() -> dict[str, int]:
    now = timezone.now()
    counts = {
        str(bound): Count("pk", filter=Q(payment__created_at__gte=now - timedelta(seconds=bound)))
        for bound in PENDING_AGE_BUCKETS
    }
    row = Order.objects.filter(status=OrderStatus.PENDING).aggregate(
        **counts, **{"+Inf": Count("pk")}
    )
    return {bound: row[bound] for bound in [*counts, "+Inf"]}


REGISTRY.register(PendingPaymentsCollector())
