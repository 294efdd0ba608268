"""`python -m bench.profiled_server OUT`: the shop as `manage.py serve` runs it, inside cProfile.

HOST and PORT come from the environment, as for `manage.py serve`. uvicorn re-raises SIGTERM after
its graceful shutdown, which would end the process before the profile is written; this server
forgets the signal once it has shut down, then writes OUT.
"""

import cProfile
import os
import sys

import django
import uvicorn


class Server(uvicorn.Server):
    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    django.setup()
    from checkout.management.commands.serve import uvicorn_config

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        Server(uvicorn_config()).run()
    finally:
        profiler.disable()
        profiler.dump_stats(sys.argv[1])


if __name__ == "__main__":
    main()
