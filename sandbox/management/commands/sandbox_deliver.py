import asyncio
import signal

from django.core.management.base import BaseCommand

from sandbox.delivery import deliver_due, deliver_forever


class Command(BaseCommand):
    help = "Send the sandbox's notifications to merchants and close its overdue payments."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="one round, then exit")

    def handle(self, *args, once: bool = False, **options) -> None:
        if once:
            count = asyncio.run(deliver_due())
            self.stdout.write(f"Notifications attempted: {count}.")
            return
        asyncio.run(self.deliver_until_stopped())
        self.stdout.write("Sandbox deliveries stopped.")

    async def deliver_until_stopped(self) -> None:
        """The loop, until SIGTERM (how honcho and supervisor stop a process) or SIGINT (Ctrl-C)."""
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        self.stdout.write("Delivering sandbox notifications; stop with Ctrl-C or SIGTERM.")
        self.stdout.flush()
        try:
            await deliver_forever()
        except asyncio.CancelledError:
            # Stopping mid-send is safe: the claim's lease runs out and the attempt is made again.
            pass
