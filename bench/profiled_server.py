"""`python -m bench.profiled_server OUT PORT`: the shop under uvicorn, inside cProfile.

uvicorn re-raises SIGTERM after its graceful shutdown, which would end the process before the
profile is written; this server forgets the signal once it has shut down, then writes OUT.
"""

import cProfile
import sys

import uvicorn


class Server(uvicorn.Server):
    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def main() -> None:
    out, port = sys.argv[1], int(sys.argv[2])
    config = uvicorn.Config(
        "shop.asgi:application",
        host="127.0.0.1",
        port=port,
        lifespan="on",
        ws="websockets",
        access_log=False,
        log_level="warning",
    )
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        Server(config).run()
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
