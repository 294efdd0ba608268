"""`python -m bench.profile`: where the push path and the notification endpoint spend their time.

The shop runs under uvicorn inside cProfile (stdlib, so nothing to pin) while the load generator
drives the push benchmark against it; the profile is written when the server stops, and the top
functions by own time and by cumulative time are printed. `bench/profile_notes.md` records what
was found and fixed.
"""

import argparse
import io
import os
import pstats
import tempfile
from pathlib import Path

from bench import servers
from bench.run import Bench
from bench.sizes import FULL


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--layer", default="local")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    tmp_dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    database_url = args.database_url or f"sqlite:///{tmp_dir / 'bench.sqlite3'}"
    bench = Bench(sizes=FULL, database_url=database_url, redis_url=args.redis_url, tmp_dir=tmp_dir)
    output = tmp_dir / "shop.prof"
    shop = servers.shop(
        "uvicorn",
        database_url=database_url,
        tmp_dir=tmp_dir,
        sandbox_url="http://127.0.0.1:9",
        layer=args.layer,
        redis_url=args.redis_url,
    )
    shop.command = ["-m", "bench.profiled_server", str(output)]
    bench.start(shop)
    try:
        result, _ = bench.drive(
            shop,
            {
                "scenario": "push",
                "sockets": args.sockets,
                "rates": [args.rate],
                "burst_seconds": args.seconds,
                "repeats": 1,
                "drain_seconds": 10,
            },
        )
    finally:
        shop.stop(timeout=30)
    print("latency:", {k: round(v, 1) for k, v in result["bursts"][0].items() if k != "rate"})
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(str(output), stream=text).sort_stats(order).print_stats(args.top)
        print(text.getvalue().split("\n", 6)[-1])
    print(f"profile: {output} (snakeviz / pstats)")


if __name__ == "__main__":
    main()
