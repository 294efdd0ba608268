"""`python -m bench.run [--quick]`: start the servers, drive each cell, write BENCHMARKS.md.

The cells, in order: one notification's verification CPU per payment provider (`bench.providers`,
no server), push latency on the embedded default (one daphne process, Channels'
InMemoryChannelLayer), the same while `manage.py reconcile` works through a herd of overdue
orders, and on Redis (daphne processes, channels_redis' layer) with memory per idle socket on the
way; a checkout taken apart step by step (CPU per step); the closed-loop checkout, the old
synchronous mode against the callback mode. Load comes from `bench.load`, a process of its
own; CPU and memory are read from /proc (psutil) at each step the load generator reports.
"""

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import processes, report
from bench.processes import ROOT


@dataclass(frozen=True)
class Sizes:
    embedded_sockets: tuple[int, ...] = (1000,)
    embedded_rate: int = 100
    # Waiting orders all due for the reconciler at once during the embedded cell's bursts.
    herd_orders: int = 1000
    redis_servers: int = 2
    redis_sockets: tuple[int, ...] = (1000, 5000)
    redis_rate: int = 200
    # Sockets (and a burst to them) before the memory baseline; each size's new sockets open in
    # `memory_parts` parts, memory per socket the median over the parts.
    warm_sockets: int = 50
    memory_parts: int = 3
    # After one burst not counted, `bursts` bursts of `burst_seconds` each; a push not seen
    # `drain_seconds` after its burst's last notification is lost.
    burst_seconds: float = 2.0
    bursts: int = 4
    drain_seconds: float = 4.0
    steps: int = 300
    steps_warm: int = 10
    # The closed loop: shoppers arrive over the ramp, decide `think` s after Pay; after the
    # warm-up, `windows` consecutive windows are measured.
    shoppers: int = 200
    callback_servers: int = 2
    think_seconds: float = 2.0
    ramp_seconds: float = 2.0
    warmup_seconds: float = 3.0
    window_seconds: float = 15.0
    windows: int = 3
    # Notification CPU per provider (bench.providers): notices timed per provider and round,
    # rounds, and notices verified before each timing.
    notices: int = 2000
    notice_rounds: int = 7
    notices_warm: int = 200


FULL = Sizes()
QUICK = Sizes(
    embedded_sockets=(30,),
    embedded_rate=20,
    herd_orders=10,
    redis_sockets=(20, 40),
    redis_rate=20,
    warm_sockets=4,
    memory_parts=2,
    burst_seconds=0.5,
    bursts=2,
    drain_seconds=5.0,
    steps=5,
    steps_warm=2,
    shoppers=5,
    think_seconds=0.3,
    ramp_seconds=0.3,
    warmup_seconds=0.5,
    window_seconds=1.5,
    windows=2,
    notices=20,
    notice_rounds=2,
    notices_warm=2,
)


def database_create(database_url: str) -> None:
    """Create the PostgreSQL database the URL names if it does not exist yet (the run migrates
    it), so that `make bench` runs on a machine where nobody made it by hand."""
    if not database_url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(make_conninfo(database_url, dbname="postgres"), autocommit=True) as db:
        if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def spent(start: dict, end: dict) -> dict:
    """CPU seconds each part spent between two samples, and the seconds between them."""
    return {
        "cpu": {part: end["cpu"][part] - cpu for part, cpu in start["cpu"].items()},
        "seconds": end["wall"] - start["wall"],
    }


class Bench:
    def __init__(self, *, sizes: Sizes, database_url: str, redis_url: str, logs: Path) -> None:
        self.sizes, self.redis_url, self.logs = sizes, redis_url, logs
        self.env = processes.base_env(database_url)
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.stdout}{migrate.stderr}")
        self.others = {
            "PostgreSQL": processes.postgres_pid(database_url),
            "Redis": processes.redis_pid(redis_url),
        }
        self.running: list[processes.Process] = []
        self.payment_system: list[processes.Process] = []

    # --- processes -------------------------------------------------------------------------------

    def start(self, *started: processes.Process) -> list[processes.Process]:
        """Launch all at once (their start-ups overlap), then wait until each serves."""
        for process in started:
            self.running.append(process.launch())
        for process in started:
            process.wait_ready()
        return list(started)

    def stop(self, stopped: list[processes.Process]) -> None:
        for process in stopped:
            process.stop()
            self.running.remove(process)

    def stop_all(self) -> None:
        self.stop(list(reversed(self.running)))

    def shop(self, count: int, *, redis: bool, sandbox: str = "http://127.0.0.1:9") -> list:
        env = {**self.env, "PAYMENT_GATEWAY_URL": sandbox + "/sandbox/"}
        if redis:
            import redis as redis_py

            redis_py.Redis.from_url(self.redis_url).flushdb()
            env["REDIS_URL"] = self.redis_url
        kind = "redis" if redis else "embedded"
        return self.start(
            *(processes.daphne(f"daphne-{kind}-{i + 1}", env, self.logs) for i in range(count))
        )

    def sandbox(self) -> list[processes.Process]:
        """The payment system, started once for every cell that needs it."""
        if not self.payment_system:
            self.payment_system = self.start(*processes.sandbox(self.env, self.logs))
        return self.payment_system

    def drive(self, params: dict, parts: dict[str, list[int]]) -> tuple[dict, list[dict]]:
        """Run the load generator; at each STEP it reports, sample every part's CPU (the load
        generator's too) and the shop servers' memory, then let it go on."""
        with (self.logs / "load.log").open("a") as log:
            log.write(f"--- {json.dumps(params)}\n")
            log.flush()
            load = subprocess.Popen(
                [sys.executable, "-m", "bench.load", json.dumps(params)],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
            assert load.stdin is not None and load.stdout is not None
            watched = {**parts, **{k: [v] for k, v in self.others.items() if v}}
            watched["load generator"] = [load.pid]
            samples, result = [], None
            for line in load.stdout:
                if line.startswith("STEP "):
                    _, name, info = line.split(" ", 2)
                    samples.append(
                        {
                            "name": name,
                            **json.loads(info),
                            "wall": time.perf_counter(),
                            "cpu": {k: processes.cpu_seconds(p) for k, p in watched.items()},
                            "rss": processes.rss_bytes(parts["shop"]),
                        }
                    )
                    load.stdin.write("\n")
                    load.stdin.flush()
                elif line.startswith("RESULT "):
                    result = json.loads(line[len("RESULT ") :])
            load.wait(timeout=60)
        if result is None:
            raise RuntimeError(f"load generator failed ({load.returncode}); see {log.name}")
        return result, samples

    # --- cells ----------------------------------------------------------------------------------

    def providers(self) -> dict:
        """One notification's verification CPU per payment provider: `bench.providers`, a
        process of its own with the servers' settings, while no server runs."""
        s = self.sizes
        args = ["--json", "--iterations", str(s.notices), "--rounds", str(s.notice_rounds)]
        args += ["--warm", str(s.notices_warm)] + (["--quick"] if s == QUICK else [])
        with (self.logs / "providers.log").open("w") as log:
            done = subprocess.run(
                [sys.executable, "-m", "bench.providers", *args],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        if done.returncode != 0:
            raise RuntimeError(f"bench.providers failed ({done.returncode}); see {log.name}")
        return json.loads(done.stdout)

    def push(
        self, *, servers: int, redis: bool, sockets: tuple[int, ...], rate: int, herd: int = 0
    ) -> dict:
        """Push latency; with a `herd`, while the reconciler works through that many due orders
        (on the in-memory layer it cannot push: its queries and writes only load the machine)."""
        s = self.sizes
        if (s.bursts + 1) * round(rate * s.burst_seconds) > sockets[-1]:
            raise ValueError(f"{sockets[-1]} sockets are too few for the bursts at {rate}/s")
        shops = self.shop(servers, redis=redis)
        watched, reconciler = {"shop": [shop.pid for shop in shops]}, []
        if herd:
            sandbox = self.sandbox()
            reconciler = self.start(processes.reconciler(self.env, sandbox[0].url, self.logs))
            watched["reconciler"] = [reconciler[0].pid]
            watched["payment system"] = [p.pid for p in sandbox]
        try:
            result, samples = self.drive(
                {
                    "scenario": "push",
                    "bases": [shop.url for shop in shops],
                    "sockets": list(sockets),
                    "memory_parts": s.memory_parts,
                    "warm": s.warm_sockets,
                    "rate": rate,
                    "burst_seconds": s.burst_seconds,
                    "bursts": s.bursts,
                    "drain_seconds": s.drain_seconds,
                    "herd": herd,
                },
                watched,
            )
        finally:
            self.stop(reconciler + shops)
        memory, before = [], samples[0]
        for size in sockets:
            parts = []
            for sample in (x for x in samples if x.get("size") == size):
                parts.append(
                    (sample["rss"] - before["rss"]) / (sample["sockets"] - before["sockets"])
                )
                before = sample
            memory.append({"sockets": size, "parts": parts, "per_socket": statistics.median(parts)})
        [start] = [x for x in samples if x["name"] == "bursts_start"]
        [end] = [x for x in samples if x["name"] == "bursts_end"]
        cell = {
            "servers": servers,
            "layer": "RedisPubSubChannelLayer" if redis else "InMemoryChannelLayer",
            "sockets": sockets[-1],
            "rate": rate,
            "failed_sockets": result["failed_sockets"],
            "bursts": result["bursts"],
            "memory": memory,
            "bursts_cpu": {**spent(start, end), "notifications": end["notifications"]},
        }
        if herd:  # orders the payment system had answered about by the bursts' start, and during
            during = end["reconciled"] - start["reconciled"]
            cell["herd"] = {"orders": herd, "before": start["reconciled"], "during": during}
        return cell

    def steps(self) -> dict:
        """One daphne process as production runs it (on Redis when there is one) and the sandbox."""
        sandbox = self.sandbox()
        [shop] = self.shop(1, redis=bool(self.redis_url), sandbox=sandbox[0].url)
        try:
            result, samples = self.drive(
                {
                    "scenario": "steps",
                    "bases": [shop.url],
                    "count": self.sizes.steps,
                    "warm": self.sizes.steps_warm,
                },
                {"shop": [shop.pid], "payment system": [p.pid for p in sandbox]},
            )
        finally:
            self.stop([shop])
        return {
            "count": result["count"],
            "steps": {b["name"]: spent(a, b) for a, b in zip(samples, samples[1:], strict=False)},
        }

    def checkout(self, mode: str) -> dict:
        s = self.sizes
        sandbox = self.sandbox()
        if mode == "sync":
            env = {**self.env, "PAYMENT_GATEWAY_URL": sandbox[0].url + "/sandbox/"}
            notified = processes.daphne("daphne-notifications", env, self.logs)
            served = processes.gunicorn("gunicorn", env, self.logs, notified_at=notified.url)
            shops = self.start(served, notified)
            bases = [served.url]  # the shoppers' requests; the payment system's go to `notified`
        else:
            shops = self.shop(
                s.callback_servers, redis=bool(self.redis_url), sandbox=sandbox[0].url
            )
            bases = [shop.url for shop in shops]
        seconds = s.ramp_seconds + s.warmup_seconds + s.windows * s.window_seconds
        try:
            result, samples = self.drive(
                {
                    "scenario": "checkout",
                    "mode": mode,
                    "bases": bases,
                    "sandbox": sandbox[0].url,
                    "shoppers": s.shoppers,
                    "think_seconds": s.think_seconds,
                    "ramp_seconds": s.ramp_seconds,
                    "warmup_seconds": s.warmup_seconds,
                    "window_seconds": s.window_seconds,
                    "windows": s.windows,
                    # Enough orders that no shopper runs out, however fast it goes.
                    "orders_each": int(seconds / s.think_seconds) + 2,
                },
                {"shop": [shop.pid for shop in shops], "payment system": [p.pid for p in sandbox]},
            )
        finally:
            self.stop(shops)
        [start] = [x for x in samples if x["name"] == "windows_start"]
        [end] = [x for x in samples if x["name"] == "windows_end"]
        sync = f"gunicorn, {processes.GUNICORN_WORKERS} sync workers, daphne for notifications"
        server = sync if mode == "sync" else f"daphne x{len(shops)}"
        return {"mode": mode, "server": server, "windows": result["windows"], **spent(start, end)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for `make test`")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--charts", default=str(ROOT / "docs" / "bench"))
    parser.add_argument(
        "--baseline", default="HEAD", help="the commit whose run the headline cells stand beside"
    )
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgres") or not args.redis_url:
        parser.error(
            "set DATABASE_URL (PostgreSQL) and REDIS_URL, or pass --database-url/--redis-url"
        )
    sizes = QUICK if args.quick else FULL
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    database_create(args.database_url)
    started = time.time()
    results: dict = {"quick": args.quick, "logs": str(logs), "start": report.yardstick()}
    bench = Bench(sizes=sizes, database_url=args.database_url, redis_url=args.redis_url, logs=logs)
    try:
        for name, cell in [
            ("providers", bench.providers),
            ("embedded", lambda: bench.push(servers=1, redis=False, sockets=sizes.embedded_sockets, rate=sizes.embedded_rate)),
            ("herd", lambda: bench.push(servers=1, redis=False, sockets=sizes.embedded_sockets, rate=sizes.embedded_rate, herd=sizes.herd_orders)),
            ("redis", lambda: bench.push(servers=sizes.redis_servers, redis=True, sockets=sizes.redis_sockets, rate=sizes.redis_rate)),
            ("steps", bench.steps),
            ("sync", lambda: bench.checkout("sync")),
            ("callback", lambda: bench.checkout("callback")),
        ]:  # fmt: skip
            print(f"bench: {name} ...", flush=True)
            results[name] = cell()
    finally:
        bench.stop_all()
    results["end"] = report.yardstick()
    results["seconds"] = time.time() - started
    results["sizes"] = dataclasses.asdict(sizes)
    results["environment"] = report.environment(args.database_url, args.redis_url)
    results["faults"] = report.faults(logs)
    report.write(
        results,
        out=Path(args.out),
        charts_dir=Path(args.charts),
        argv=argv or sys.argv[1:],
        baseline=args.baseline,
    )
    print(f"bench: wrote {args.out} in {results['seconds']:.0f} s (logs in {logs})")
    for fault in results["faults"]:
        print(f"bench: fault: {fault}")
    return results


if __name__ == "__main__":
    # Figures from servers that logged faults are not to be trusted: the run fails, its report
    # (which lists them) written all the same.
    sys.exit(1 if main()["faults"] else 0)
