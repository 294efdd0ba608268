"""`python -m bench.run [--quick]`: start the servers, drive them, write BENCHMARKS.md and charts.

Every comparison runs its variants in the same run, one after the other on the same machine, and
the load generator (`bench.load`) is always a separate process from the server it measures.
"""

import argparse
import dataclasses
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import cpu, logs, report, servers
from bench.sizes import FULL, QUICK, Sizes
from tests.servers import ROOT


def database_create(database_url: str) -> None:
    """Create the PostgreSQL database the URL names if it does not exist yet (the servers migrate
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


def cpu_over(start: dict, end: dict) -> dict:
    """CPU seconds each measured process spent between two samples (the server's as "shop"), and
    the seconds between them."""
    spent = {"shop": end["cpu"] - start["cpu"]}
    spent.update((part, end["cpu_of"][part] - cpu) for part, cpu in start["cpu_of"].items())
    return {"spent": spent, "seconds": end["wall"] - start["wall"]}


class Bench:
    def __init__(self, *, sizes: Sizes, database_url: str, redis_url: str, tmp_dir: Path) -> None:
        self.sizes, self.database_url, self.redis_url = sizes, database_url, redis_url
        self.tmp_dir = tmp_dir
        self.prepared = False
        self.load_log = tmp_dir / "load.log"
        self.postgres = servers.postgres_pid(database_url)

    # --- processes -------------------------------------------------------------------------------

    def start(self, server):
        server.start(prepare=not self.prepared)
        self.prepared = True
        return server

    def sandbox(self):
        return self.start(
            servers.sandbox(
                database_url=self.database_url,
                tmp_dir=self.tmp_dir,
                latency=self.sizes.payment_latency,
            )
        )

    def shop(
        self,
        kind: str,
        layer: str = "local",
        sandbox_url: str = "http://127.0.0.1:9",
        env: dict[str, str] | None = None,
    ):
        if layer == "redis":
            import redis

            redis.Redis.from_url(self.redis_url).flushdb()
        return self.start(
            servers.shop(
                kind,
                database_url=self.database_url,
                tmp_dir=self.tmp_dir,
                sandbox_url=sandbox_url,
                layer=layer,
                redis_url=self.redis_url,
                env=env,
            )
        )

    @staticmethod
    def stop(server) -> None:
        """Stop a server and whatever it forked: gunicorn's workers outlive a SIGKILLed master."""
        group = server.process.pid if server.running else None
        # Nothing is measured any more, and gunicorn's sync workers blocked on a payment ignore
        # SIGTERM: waiting 5 s for each cost a quarter of a minute per run.
        server.stop(timeout=1)
        if group is not None:
            try:
                os.killpg(group, signal.SIGKILL)  # its own session (tests.servers starts it so)
            except ProcessLookupError:
                pass

    def drive(
        self,
        server,
        params: dict,
        timeout: float = 600,
        on_step=lambda name: None,
        watch: dict[str, int | None] | None = None,
    ) -> tuple[dict, dict]:
        """Run the load generator against `server`; sample the server at each STEP it reports
        (and the CPU time of the load generator and of each process in `watch`, by name), then
        call `on_step(name)` before the load goes on; what that returns, if anything, is the load
        generator's answer."""
        env = {**os.environ, **servers.base_env(self.database_url), "PYTHONUNBUFFERED": "1"}
        params = {**params, "base": server.url, "api_key": servers.SECRETS["SANDBOX_API_KEY"]}
        with self.load_log.open("a") as log:
            log.write(f"--- {server.name} {json.dumps(params)}\n")
            log.flush()
            load = subprocess.Popen(
                [sys.executable, "-m", "bench.load", json.dumps(params)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
            killer = threading.Timer(timeout, load.kill)
            killer.start()
            samples: dict[str, dict] = {}
            result: dict | None = None
            try:
                assert load.stdout is not None and load.stdin is not None
                for line in load.stdout:
                    if line.startswith("STEP "):
                        _, name, info = line.split(" ", 2)
                        watched = {"load generator": load.pid, **(watch or {})}
                        samples[name] = {
                            **servers.usage(server.process.pid),
                            "cpu_of": {
                                part: servers.usage(pid)["cpu"]
                                for part, pid in watched.items()
                                if pid is not None
                            },
                            "wall": time.perf_counter(),
                            **json.loads(info),
                        }
                        load.stdin.write((on_step(name) or "") + "\n")
                        load.stdin.flush()
                    elif line.startswith("RESULT "):
                        result = json.loads(line[len("RESULT ") :])
                load.wait()
            finally:
                killer.cancel()
        if result is None:
            raise RuntimeError(f"load generator failed ({load.returncode}); see {self.load_log}")
        return result, samples

    # --- the machine's speed ---------------------------------------------------------------------

    def cost(self) -> list[dict]:
        """`python -m bench.cost`: the shop's CPU and PostgreSQL's per request in one process, with
        no load generator and no other server: what the machine's speed was, for reading this
        run's figures beside another run's. Needs PostgreSQL; nothing on SQLite."""
        if not self.database_url.startswith("postgres"):
            return []
        if not self.prepared:
            servers.sandbox(database_url=self.database_url, tmp_dir=self.tmp_dir).manage(
                "migrate", "--noinput"
            )
        tool = subprocess.run(
            [sys.executable, "-m", "bench.cost", str(self.sizes.cost_steps)],
            cwd=ROOT,
            # Its sandbox's log goes with the run's other logs.
            env={
                "PATH": os.environ["PATH"],
                "DATABASE_URL": self.database_url,
                "TMPDIR": str(self.tmp_dir),
            },
            capture_output=True,
            text=True,
            timeout=600,
        )
        if tool.returncode != 0:
            raise RuntimeError(f"bench.cost failed ({tool.returncode}):\n{tool.stderr[-3000:]}")
        return cpu.parse(tool.stdout)

    # --- 1. sync vs callback ---------------------------------------------------------------------

    def checkout(self) -> list[dict]:
        """Each mode at each number of shoppers: one load run, measured in consecutive windows.

        The old mode gets fresh servers for each number of shoppers: its workers stay blocked on
        payments nobody decides once the load generator stopped, and so do the sandbox's
        synchronous waits. The callback mode leaves nothing blocked, so its servers serve every
        number of shoppers in turn (what a run leaves, undecided payments, costs nothing).
        """
        s = self.sizes
        seconds = s.checkout_ramp_seconds + s.checkout_warmup_seconds
        seconds += s.checkout_runs * s.checkout_window_seconds
        rows = []
        for mode in ("sync", "callback"):
            # Ours as it is deployed: several processes behind Redis (one without REDIS_URL).
            kind = "gunicorn" if mode == "sync" else "uvicorn"
            if mode == "callback" and self.redis_url:
                kind = s.callback_server
            layer = "redis" if " x" in kind else "local"
            servers_ = None
            try:
                for shoppers in s.shoppers:
                    if servers_ is None or mode == "sync":
                        if servers_ is not None:
                            self.stop(servers_[1])
                            self.stop(servers_[0])
                        sandbox = self.sandbox()
                        servers_ = (sandbox, self.shop(kind, layer, sandbox_url=sandbox.url))
                    sandbox, shop = servers_
                    result, samples = self.drive(
                        shop,
                        {
                            "scenario": "checkout",
                            "mode": mode,
                            "sandbox": sandbox.url,
                            "shoppers": shoppers,
                            "think_seconds": s.think_seconds,
                            "ramp_seconds": s.checkout_ramp_seconds,
                            "warmup_seconds": s.checkout_warmup_seconds,
                            "window_seconds": s.checkout_window_seconds,
                            "windows": s.checkout_runs,
                            "orders_each": math.ceil(seconds / s.think_seconds) + 2,
                        },
                        watch={"payment system": sandbox.process.pid, "PostgreSQL": self.postgres},
                    )
                    rows.append(
                        {
                            "mode": mode,
                            "server": f"{kind}, {layer} layer",
                            "shoppers": shoppers,
                            "runs": result["windows"],
                            "errors_outside_windows": result["errors_outside_windows"],
                            "cpu": cpu_over(samples["windows_start"], samples["windows_end"]),
                        }
                    )
            finally:
                if servers_ is not None:
                    self.stop(servers_[1])
                    self.stop(servers_[0])
        return rows

    # --- 2. and 3. push latency, memory per socket -----------------------------------------------

    def push_cells(self) -> list[tuple[str, str, tuple[int, ...], tuple[int, ...]]]:
        """(server, layer, fleet sizes, rates): one server and one growing fleet each."""
        s = self.sizes
        cells = []
        for layer in (*s.push_layers, "inmemory"):
            if layer == "redis" and not self.redis_url:
                continue
            if layer == "inmemory" and not s.inmemory_rates:
                continue  # `--set 'inmemory_rates=[]'`: no "before" cell
            kinds = (s.inmemory_server,) if layer == "inmemory" else s.push_servers
            for kind in kinds:
                sizes = s.sockets
                if (kind, layer) in {tuple(pair) for pair in s.push_small_only}:
                    sizes = s.sockets[:1]
                rates = s.inmemory_rates if layer == "inmemory" else s.rates
                cells.append((kind, layer, tuple(sizes), tuple(rates)))
        for kind, layer in s.push_largest_only:
            if layer != "redis" or self.redis_url:
                cells.append((kind, layer, tuple(s.sockets[-1:]), tuple(s.rates)))
        return cells

    def push(self) -> list[dict]:
        s = self.sizes
        rows = []
        for kind, layer, sizes, rates in self.push_cells():
            shop = self.shop(kind, layer)

            def on_step(name: str, shop=shop) -> str:
                # Several processes accepting on one port: one may take a whole burst of sockets.
                # The memory baseline waits until each has served some (and loaded what they use).
                if name == "warm" and 0 in servers.sockets_held(shop.process.pid, shop.port):
                    return "more"
                return ""

            try:
                result, samples = self.drive(
                    shop,
                    {
                        "scenario": "push",
                        "sockets": list(sizes),
                        "rates": list(rates),
                        "burst_seconds": s.burst_seconds,
                        "repeats": s.repeats,
                        "drain_seconds": s.drain_seconds,
                        "memory_parts": s.memory_parts,
                    },
                    on_step=on_step,
                )
            finally:
                self.stop(shop)
            # Memory per idle socket: growth while only opening sockets, over the sockets opened,
            # in each part of a size's opening. The first size from the warm-up; each larger one
            # from after the previous size's bursts, so what those bursts allocated is not
            # counted against the new sockets.
            before = samples["warm"]
            for size in sizes:
                parts = [samples[f"open_{size}_part_{i}"] for i in range(1, s.memory_parts)]
                per_part = []
                for opened in (*parts, samples[f"open_{size}"]):
                    sockets = opened["sockets"] - before.get("sockets", 0)
                    per_part.append((opened["rss"] - before["rss"]) / max(1, sockets))
                    before = opened
                rows.append(
                    {
                        "server": kind,
                        "layer": layer,
                        "sockets": size,
                        "failed_sockets": result["failed_sockets"][str(size)],
                        "bytes_per_socket": statistics.median(per_part),
                        "bytes_per_socket_parts": per_part,
                        "bursts": [b for b in result["bursts"] if b["sockets"] == size],
                    }
                )
                before = {**samples[f"bursts_{size}"], "sockets": size}
        return rows

    # --- 2b. push while shoppers come and go ---------------------------------------------------

    def churn(self) -> list[dict]:
        """The largest fleet under the shop's server (on Redis when there is one), once with the
        shop's collector policy (shop/collector.py) and once with Python's own, each its own
        server: sockets close and open while notifications arrive, so the collector's full passes
        fall among them (the bursts of section 2 open no socket while they run)."""
        s = self.sizes
        if s.churn_seconds <= 0:
            return []
        layer = "redis" if self.redis_url else "local"
        rows = []
        for collector, env in (("shop's", {}), ("Python's", {"GC_FREEZE_SURVIVORS": "0"})):
            shop = self.shop("uvicorn", layer, env=env)
            try:
                result, _ = self.drive(
                    shop,
                    {
                        "scenario": "push",
                        "sockets": [s.sockets[-1]],
                        "rates": [s.churn_rate],
                        "repeats": 0,  # the warm-up burst only, then the churn
                        "burst_seconds": s.burst_seconds,
                        "drain_seconds": s.drain_seconds,
                        "churn_warmup_seconds": s.churn_warmup_seconds,
                        "churn_seconds": s.churn_seconds,
                        "churn_windows": s.churn_windows,
                        "churn_rate": s.churn_rate,
                        "churn_reopens": s.churn_reopens,
                        "churn_late_seconds": s.churn_late_seconds,
                    },
                )
            finally:
                self.stop(shop)
            rows.append(
                {
                    "collector": collector,
                    "layer": layer,
                    "sockets": s.sockets[-1],
                    **result["churn"],
                }
            )
        return rows

    # --- 4. push vs polling ----------------------------------------------------------------------

    def waiting(self) -> list[dict]:
        s = self.sizes
        rows = []
        for mode in ("push", "poll"):
            runs = []
            for _ in range(s.waiting_runs):
                shop = self.shop("uvicorn")
                try:
                    result, samples = self.drive(
                        shop,
                        {
                            "scenario": "waiting",
                            "mode": mode,
                            "shoppers": s.waiting_shoppers,
                            "interval": s.poll_interval,
                            "idle_seconds": s.idle_seconds,
                            "results": s.waiting_results,
                            "result_seconds": s.result_seconds,
                            "drain_seconds": s.result_seconds
                            + (s.drain_seconds if mode == "push" else s.poll_drain_seconds),
                        },
                    )
                finally:
                    self.stop(shop)
                idle, waiting_ = samples["idle_done"], samples["waiting"]
                results_done = samples["results_done"]
                runs.append(
                    {
                        "cpu_per_minute_waiting": (idle["cpu"] - waiting_["cpu"])
                        / (idle["wall"] - waiting_["wall"])
                        * 60,
                        "cpu_per_minute_results": (results_done["cpu"] - idle["cpu"])
                        / (results_done["wall"] - idle["wall"])
                        * 60,
                        "polls_per_second": idle["polls"] / (idle["wall"] - waiting_["wall"])
                        if "polls" in idle
                        else 0.0,
                        **result,
                    }
                )
            rows.append({"mode": mode, "shoppers": s.waiting_shoppers, "runs": runs})
        return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--charts", default=str(ROOT / "docs" / "bench"))
    parser.add_argument(
        "--only", nargs="*", default=["cost", "checkout", "push", "churn", "waiting"]
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=JSON",
        help='override a size, e.g. --set "sockets=[1000]" "push_servers=["uvicorn"]"',
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name] = json.loads(value)
        if isinstance(overrides[name], list):
            overrides[name] = tuple(overrides[name])
    if overrides:
        sizes = dataclasses.replace(
            sizes, **overrides, notes=[*sizes.notes, f"sizes changed: {' '.join(args.set)}"]
        )
    tmp_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    database_url = args.database_url or f"sqlite:///{tmp_dir / 'bench.sqlite3'}"
    database_create(database_url)
    bench = Bench(
        sizes=sizes,
        database_url=database_url,
        redis_url=args.redis_url,
        tmp_dir=tmp_dir,
    )
    started = time.time()
    results: dict = {
        "quick": args.quick,
        "logs": str(tmp_dir),
        # Other work shares the machine; its load is part of what the figures mean.
        "load_start": list(os.getloadavg()),
        "cpu_start": report.cpu_clock(),
        "loop_start": report.loop_seconds(),
    }
    for part in args.only:
        print(f"bench: {part} ...", flush=True)
        results[part] = getattr(bench, part)()
    results["seconds"] = time.time() - started
    results["faults"] = [str(fault) for fault in logs.faults(tmp_dir)]
    results["environment"] = report.environment(database_url, args.redis_url, bench.sizes)
    report.write(results, out=Path(args.out), charts=Path(args.charts), argv=sys.argv[1:])
    # The raw figures too, every run and burst, for whoever wants to chart them differently.
    (Path(args.charts) / "results.json").write_text(json.dumps(results, indent=1))
    print(f"bench: wrote {args.out} in {results['seconds']:.0f} s (logs in {tmp_dir})")
    for fault in results["faults"]:
        print(f"bench: fault in {tmp_dir}/{fault}")
    return results


if __name__ == "__main__":
    # Figures from servers that logged faults are not to be trusted: the run fails, its report
    # (which lists them) written all the same.
    sys.exit(1 if main()["faults"] else 0)
