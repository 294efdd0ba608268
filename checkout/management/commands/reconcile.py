import asyncio

from django.core.management.base import BaseCommand

from checkout.reconcile import reconcile_forever, reconcile_once


class Command(BaseCommand):
    help = "Query payments the payment system has not told us about, and expire unpaid orders."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args, once: bool = False, **options) -> None:
        if once:
            count = asyncio.run(reconcile_once())
            self.stdout.write(f"Reconciled {count} orders.")
            return
        try:
            asyncio.run(reconcile_forever())
        except KeyboardInterrupt:
            # Stopping mid-pass is safe: a claimed order's lease runs out and it is taken again.
            self.stdout.write("Reconciler stopped.")
