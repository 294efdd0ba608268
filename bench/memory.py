"""What an idle socket holds: tracemalloc in the server, before and after opening N sockets.

    python -m bench.memory --server uvicorn --layer local --sockets 1000 [--top 30]

Runs the shop (as the push benchmark does, `bench.servers.shop`) under tracemalloc, opens 20
sockets to load the code paths, snapshots, opens N more, snapshots again, and prints the growth
per socket: by package, then by the innermost line of site-packages or project code that allocated
it. RSS under tracemalloc is about twice the real one (it stores a traceback per block), so take
KiB per socket from `python -m bench.run --only push` and the shares from here. DATABASE_URL (and
REDIS_URL for --layer redis) as for the benchmark. Findings: bench/profile_notes.md.
"""

import argparse
import asyncio
import collections
import gc
import os
import runpy
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

WARM = 20
FRAMES = 30


def serve(command: list[str]) -> None:
    """In the server process: trace allocations, dump a snapshot to $MEMORY_SNAPSHOT_n on SIGUSR1."""
    tracemalloc.start(FRAMES)
    taken = 0

    def snapshot(signum: int, frame: object) -> None:
        nonlocal taken
        gc.collect()
        path = Path(f"{os.environ['MEMORY_SNAPSHOT']}_{taken}")
        tracemalloc.take_snapshot().dump(f"{path}.part")
        os.rename(f"{path}.part", path)  # complete before the driver sees it
        taken += 1

    signal.signal(signal.SIGUSR1, snapshot)
    if command[0] == "-m":
        sys.argv = command[1:]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = command
        sys.path.insert(0, os.getcwd())
        runpy.run_path(command[0], run_name="__main__")


def where(traceback: tracemalloc.Traceback) -> str:
    """The innermost frame in a package or the project: who asked for the block."""
    for frame in reversed(traceback):
        name = frame.filename
        if "site-packages/" in name:
            return f"{name.split('site-packages/')[1]}:{frame.lineno}"
        if "/.venv/" not in name and not name.startswith(sys.base_prefix) and "<" not in name:
            return f"{os.path.relpath(name)}:{frame.lineno}"
    return f"stdlib {Path(traceback[-1].filename).name}:{traceback[-1].lineno}"


def growth(before: Path, after: Path) -> collections.Counter:
    sizes: collections.Counter = collections.Counter()
    for sign, path in ((-1, before), (1, after)):
        for trace in tracemalloc.Snapshot.load(str(path)).traces:
            sizes[where(trace.traceback)] += sign * trace.size
    return sizes


async def open_sockets(base: str, sockets: int, snapshot) -> None:
    from bench import fixtures, load

    shoppers = await asyncio.to_thread(fixtures.shoppers_create, WARM + sockets, pending=True)
    fleet = [load.Socket(s, s.orders[0], s.payment_ids[0]) for s in shoppers]
    async with load.client() as http:
        failed = await load.open_all(http, base, fleet[:WARM])
        await asyncio.to_thread(snapshot, 0)
        failed += await load.open_all(http, base, fleet[WARM:])
        await asyncio.to_thread(snapshot, 1)
        for socket in fleet:
            await socket.close()
    if failed:
        print(f"{failed} sockets failed to open")


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="uvicorn")
    parser.add_argument("--layer", choices=["local", "inmemory", "redis"], default="local")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    from bench import servers

    database_url = os.environ["DATABASE_URL"]
    os.environ.update(servers.base_env(database_url))  # the same SECRET_KEY signs the sessions
    import django

    django.setup()
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    sandbox = servers.sandbox(database_url=database_url, tmp_dir=tmp).start()
    shop = servers.shop(
        args.server,
        database_url=database_url,
        tmp_dir=tmp,
        sandbox_url=sandbox.url,
        layer=args.layer,
        redis_url=os.environ.get("REDIS_URL", ""),
    )
    shop.command = ["-m", "bench.memory", "serve", *shop.command]
    shop.env["MEMORY_SNAPSHOT"] = str(tmp / "snapshot")
    try:
        shop.start()

        def snapshot(n: int) -> None:
            os.kill(shop.process.pid, signal.SIGUSR1)
            while not (tmp / f"snapshot_{n}").exists():
                time.sleep(0.2)

        asyncio.run(open_sockets(shop.url, args.sockets, snapshot))
    finally:
        shop.stop()
        sandbox.stop()
    sizes = growth(tmp / "snapshot_0", tmp / "snapshot_1")
    per = args.sockets
    print(f"traced growth: {sum(sizes.values()) / per / 1024:.1f} KiB per socket")
    packages: collections.Counter = collections.Counter()
    for place, size in sizes.items():
        packages[place.split("/")[0].split(":")[0]] += size
    print(", ".join(f"{p} {s / per / 1024:.1f}" for p, s in packages.most_common(10) if s > 0))
    for place, size in sizes.most_common(args.top):
        print(f"{size / per:8.0f} B  {place}")


if __name__ == "__main__":
    main()
