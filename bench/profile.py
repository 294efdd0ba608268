"""`python -m bench.profile`: where the shop's process spends its time under the push benchmark.

The shop runs as `manage.py serve` runs it (uvicorn, one process); the load generator opens the
sockets, then sends signed notifications at the rate in two bursts (the push benchmark's warm-up
burst and a measured one). During the bursts py-spy samples the server from outside: every thread,
without pausing it (`--nonblocking`), and only while a thread holds the GIL (`--gil`), so the
samples are the process's Python work, not its waits. It prints each function's share of the
samples, inclusive (on the stack) and own (at its top), and leaves the stacks in py-spy's collapsed
format, one `frame;frame;... count` per line, for a flame graph.

cProfile, used here before, sees every thread's calls as one stream since Python 3.12 (it runs on
`sys.monitoring`; CPython gh-110770), so under this server's request threads its cumulative times
came out longer than the run itself. py-spy needs permission to trace the server: root, or
`kernel.yama.ptrace_scope` 0.
"""

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.run import Bench
from bench.sizes import FULL

SAMPLES_PER_SECOND = 200
BURSTS = 2  # the push scenario's warm-up burst, then the measured one


def py_spy(pid: int, seconds: int, out: Path) -> subprocess.Popen:
    """Start sampling `pid` for `seconds` into `out` (collapsed stacks)."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")), "record",
            "--pid", str(pid), "--duration", str(seconds), "--rate", str(SAMPLES_PER_SECOND),
            "--gil", "--nonblocking", "--format", "raw", "--output", str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _function(frame: str) -> str:
    """`name (path:line)` -> `name (path)`: a function's samples, whichever of its lines ran."""
    return re.sub(r":\d+\)$", ")", frame)


def shares(stacks: list[str]) -> tuple[int, Counter[str], Counter[str]]:
    """The samples in all, and each function's: inclusive (anywhere on the stack, counted once per
    stack) and own (at the top of it)."""
    total, inclusive, own = 0, Counter[str](), Counter[str]()
    for line in stacks:
        stack, _, count = line.rstrip().rpartition(" ")
        frames = [_function(frame) for frame in stack.split(";")]
        total += int(count)
        inclusive.update(dict.fromkeys(frames, int(count)))
        own[frames[-1]] += int(count)
    return total, inclusive, own


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=2.0, help="of each burst")
    parser.add_argument("--layer", default="local")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    if args.sockets < BURSTS * args.rate * args.seconds:
        # Each notification goes to a socket no burst used; reopening used ones would be sampled.
        parser.error(f"--sockets must be at least {BURSTS} x --rate x --seconds")
    tmp_dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    database_url = args.database_url or f"sqlite:///{tmp_dir / 'bench.sqlite3'}"
    bench = Bench(sizes=FULL, database_url=database_url, redis_url=args.redis_url, tmp_dir=tmp_dir)
    shop = bench.shop("uvicorn", layer=args.layer)
    out = tmp_dir / "stacks.txt"
    sampling: list[subprocess.Popen] = []

    def on_step(name: str) -> None:
        if name == f"open_{args.sockets}":  # the sockets are open; the bursts come next
            seconds = math.ceil(BURSTS * args.seconds)
            sampling.append(py_spy(shop.process.pid, seconds, out))

    try:
        result, _ = bench.drive(
            shop,
            {
                "scenario": "push",
                "sockets": [args.sockets],
                "rates": [args.rate],
                "burst_seconds": args.seconds,
                "repeats": 1,
                "drain_seconds": 10,
            },
            on_step=on_step,
        )
    finally:
        errors = [spy.communicate(timeout=60)[1] for spy in sampling]
        bench.stop(shop)
    if not sampling or sampling[0].returncode != 0:
        raise SystemExit(
            f"py-spy failed: {''.join(errors).strip()}\n"
            "It needs permission to trace the server: root, or kernel.yama.ptrace_scope 0."
        )
    burst = result["bursts"][0]
    print("latency ms:", {k: round(burst[k], 1) for k in ("p50", "p99", "max")}, end=" ")
    print(f"({burst['n']} notifications, {burst['lost']} lost)")
    total, inclusive, own = shares(out.read_text().splitlines())
    print(f"{total} samples of the shop's process holding the GIL ({SAMPLES_PER_SECOND}/s)")
    for title, counts in (("inclusive", inclusive), ("own", own)):
        print(f"\n{title}:")
        for function, count in counts.most_common(args.top):
            print(f"{100 * count / total:5.1f}%  {function}")
    print(f"\nstacks: {out} (py-spy's collapsed format, for a flame graph)")


if __name__ == "__main__":
    main()
