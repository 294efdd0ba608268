"""Benchmark: channels-redis's core layer against its pub/sub layer, end to end.

Starts two shop processes (`manage.py serve`) on PostgreSQL and Redis for each layer: N sockets
connect at once to the first (the connect burst), then notifications are POSTed one by one to the
second and the time until every socket of that order shows "paid" is taken (push latency across
processes, notification handling included). The watchlist is turned down to once an hour, so
only the channel layer delivers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/ws_fanout.py --sockets 2000 --pushes 50

The database is migrated and gets test orders; use one of its own. REDIS_MAX_CONNECTIONS=100 runs
with redis-py's default pool size. Results and what they mean: README "Real-time delivery".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

import django  # noqa: E402

django.setup()

from checkout.models import OrderStatus  # noqa: E402
from tests.checkout import factories as f  # noqa: E402
from tests.realtime.streams import next_status, open_stream, post_notice  # noqa: E402
from tests.servers import ShopServer  # noqa: E402

TABS_PER_ORDER = 10
PER_CLIENT = 50


def plan(sockets: int) -> list[tuple[str, str, object]]:
    made = []
    for client in range(max(1, sockets // PER_CLIENT)):
        session = f.shopper_session()
        for _ in range(PER_CLIENT // TABS_PER_ORDER):
            order = f.order(session, status=OrderStatus.PENDING)
            ip = f"127.0.{client // 200}.{client % 200 + 2}"
            made += [(ip, session.session_key, order)] * TABS_PER_ORDER
    return made[:sockets]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


async def run_layer(layer: str, args: argparse.Namespace) -> dict:
    env = {
        "REDIS_URL": os.environ["REDIS_URL"],
        "REDIS_CHANNEL_LAYER": layer,
        "WATCH_INTERVAL": "3600",
    }
    if "REDIS_MAX_CONNECTIONS" in os.environ:
        env["REDIS_MAX_CONNECTIONS"] = os.environ["REDIS_MAX_CONNECTIONS"]
    url = os.environ["DATABASE_URL"]
    sockets_side = ShopServer(name=f"{layer}-sockets", database_url=url, env=env).start()
    notices_side = ShopServer(name=f"{layer}-notices", database_url=url, env=env)
    notices_side.prepared = True
    notices_side.start()
    try:
        targets = await asyncio.to_thread(plan, args.sockets)
        by_order: dict[str, list] = {}

        async def one(ip, key, order):
            stream = await open_stream(sockets_side.url, order.biz, key, local_ip=ip)
            assert await next_status(stream, timeout=120) == "pending"
            by_order.setdefault(order.biz, []).append(stream)

        started = time.perf_counter()
        results = await asyncio.gather(*(one(*t) for t in targets), return_exceptions=True)
        burst = time.perf_counter() - started
        failed = [r for r in results if r is not None]

        latencies, lost = [], 0
        orders = {t[2].biz: t[2] for t in targets if t[2].biz in by_order}
        for order in list(orders.values())[: args.pushes]:
            streams = by_order[order.biz]
            body = f.notice_body(order)
            headers = f.signed_headers(body)
            sent = time.perf_counter()
            await asyncio.to_thread(post_notice, notices_side, body, headers)
            got = await asyncio.gather(
                *(next_status(s, timeout=30) for s in streams), return_exceptions=True
            )
            if all(status == "paid" for status in got):
                latencies.append(time.perf_counter() - sent)
            else:
                lost += 1  # a socket closed on the server's side, or never heard
        for streams in by_order.values():
            await asyncio.gather(*(s.close() for s in streams), return_exceptions=True)
        return {
            "layer": layer,
            "sockets": len(targets),
            "failed": len(failed),
            "pushes_lost": lost,
            "first_error": repr(failed[0]) if failed else "",
            "burst_s": burst,
            "push_p50_ms": pct(latencies, 0.5) if latencies else float("nan"),
            "push_p99_ms": pct(latencies, 0.99) if latencies else float("nan"),
            "push_mean_ms": statistics.mean(latencies) * 1000 if latencies else float("nan"),
        }
    finally:
        sockets_side.stop()
        notices_side.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--layers", default="core,pubsub")
    args = parser.parse_args()
    for layer in args.layers.split(","):
        result = await run_layer(layer, args)
        print(
            f"{result['layer']:7} sockets={result['sockets']} failed={result['failed']}"
            f" burst={result['burst_s']:.1f}s pushes_lost={result['pushes_lost']}"
            f" push p50={result['push_p50_ms']:.1f}ms"
            f" p99={result['push_p99_ms']:.1f}ms mean={result['push_mean_ms']:.1f}ms"
            f" {result['first_error'][:120]}",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
