import asyncio
import signal

from django.core.management.base import BaseCommand

from checkout.reconcile import reconcile_forever, reconcile_once


async def until_stopped() -> None:
    """The reconciler, until SIGTERM or SIGINT (how process managers and Ctrl-C stop it)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await reconcile_forever()
    except asyncio.CancelledError:
        pass  # stopping mid-pass is safe: a claimed order's lease runs out and it is taken again


class Command(BaseCommand):
    help = "Query payments the payment system has not told us about, and expire unpaid orders."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args, once: bool = False, **options) -> None:
        if once:
            count = asyncio.run(reconcile_once())
            self.stdout.write(f"Reconciled {count} orders.")
            return
        asyncio.run(until_stopped())
        self.stdout.write("Reconciler stopped.")
