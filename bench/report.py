"""BENCHMARKS.md and its charts, from the figures `bench.run` collected.

Each figure in a table is the median over runs (or over bursts, for push latency); ratios compare
variants measured in the same run.
"""

import dataclasses
import json
import os
import platform
import shlex
import subprocess
import sysconfig
import time
from importlib import metadata
from pathlib import Path

import psutil

from bench import servers
from bench.stats import median
from tests.servers import ROOT

PACKAGES = (
    "Django", "channels", "channels-redis", "daphne", "uvicorn", "uvloop", "httptools",
    "websockets", "gunicorn", "aiohttp", "psycopg", "httpx",
)  # fmt: skip
PROFILE_NOTES = Path(__file__).with_name("profile_notes.md")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _database(url: str) -> str:
    if url.startswith("sqlite"):
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    try:
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=3) as c:
            return "PostgreSQL " + c.execute("SHOW server_version").fetchone()[0]
    except Exception as error:
        return f"PostgreSQL (version unknown: {type(error).__name__})"


def _redis(url: str) -> str:
    if not url:
        return "not used (no REDIS_URL)"
    import redis

    return "Redis " + redis.Redis.from_url(url).info()["redis_version"]


def _python_build() -> str:
    """Whether this interpreter was compiled with profile-guided and link-time optimization: in
    one process the shop's steps spent a tenth to a fifth less CPU on one that was
    (bench/profile_notes.md, eighteenth pass), so the machine's speed a run records depends on it
    too."""
    flags = shlex.split(sysconfig.get_config_var("CONFIG_ARGS") or "")
    optimized = [f"`{flag}`" for flag in ("--enable-optimizations", "--with-lto") if flag in flags]
    if len(optimized) == 2:
        return "built with profile-guided and link-time optimization"
    if not optimized:
        return "built without profile-guided or link-time optimization"
    return f"built with {optimized[0]} only"


def _build_note(env: dict) -> str:
    build = env.get("python_build")  # not recorded before the eighteenth pass
    return f" ({build})" if build else ""


def _git() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def cpu_clock() -> dict[str, float]:
    """The machine's CPU time so far, all cores: in all, and stolen (the time a virtual machine's
    cores waited while the host ran other guests)."""
    times = psutil.cpu_times()
    return {"total": sum(times), "steal": getattr(times, "steal", 0.0)}


def loop_seconds() -> float:
    """Seconds of this process's CPU for a fixed loop of pure Python (`sum(range(10**7))`), the
    least of three: how fast the machine runs Python at that moment. Steal does not show every
    slowdown of a shared machine: one read 0.22 s when a session began and 0.38-0.43 s for most of
    the hours after, idle or loaded, steal 0.1% (bench/profile_notes.md, twenty-first pass)."""
    times = []
    for _ in range(3):
        start = time.process_time()
        sum(range(10**7))
        times.append(time.process_time() - start)
    return min(times)


def _loop(seconds: float | None) -> str:
    return "not recorded" if seconds is None else f"{seconds:.2f} s"


def _stolen(start: dict | None, end: dict | None) -> str:
    if not start or not end or end["total"] <= start["total"]:
        return "not recorded"
    return f"{(end['steal'] - start['steal']) / (end['total'] - start['total']):.1%}"


def environment(database_url: str, redis_url: str, sizes) -> dict:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs ({_cpu_model()}), {_memory()} RAM, "
        f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_build": _python_build(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "database": _database(database_url),
        "redis": _redis(redis_url),
        "commit": _git(),
        "load_end": list(os.getloadavg()),
        "cpu_end": cpu_clock(),
        "loop_end": loop_seconds(),
        "sizes": dataclasses.asdict(sizes),
    }


# --- figures ------------------------------------------------------------------------------------


# Each checkout cell's CPU, by process (bench/run.py: `cpu_over`), then all of them together.
CPU_PARTS = ("shop", "payment system", "PostgreSQL", "load generator", "all")


def checkout_figures(rows: list[dict], think: float) -> list[dict]:
    """Medians over each cell's windows, and the cell's ceiling: no checkout is faster than the
    shopper's `think` s, so W sync workers do at most W / think a second, N shoppers N / think."""
    out = []
    for row in rows:
        runs = row["runs"]
        serving = servers.GUNICORN_WORKERS if row["mode"] == "sync" else row["shoppers"]
        completed = sum(r["completed"] for r in runs)
        spent, seconds = row["cpu"]["spent"], row["cpu"]["seconds"]
        spent_all = sum(spent.values())
        out.append(
            {
                "mode": row["mode"],
                "shoppers": row["shoppers"],
                "per_second": median([r["per_second"] for r in runs]),
                "ceiling": serving / think,
                "p50": median([r["pay"]["p50"] for r in runs]),
                "p99": median([r["pay"]["p99"] for r in runs]),
                "page_p99": median([r["page"]["p99"] for r in runs]),
                "answered": median([r.get("pay_answered", r["pay"]["n"]) for r in runs]),
                "unanswered": median([r["pay_unanswered"] for r in runs]),
                "errors": median([r["errors"] for r in runs]),
                "runs": len(runs),
                # Over all the windows: the cores the measured processes kept busy together, and
                # each one's CPU per checkout completed.
                "cores": spent_all / seconds,
                "cpu_ms": {
                    part: t * 1000 / max(1, completed)
                    for part, t in {**spent, "all": spent_all}.items()
                },
            }
        )
    return out


def push_figures(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        rates = sorted({b["rate"] for b in row["bursts"]})
        for rate in rates:
            bursts = [b for b in row["bursts"] if b["rate"] == rate]
            out.append(
                {
                    "server": row["server"],
                    "layer": row["layer"],
                    "sockets": row["sockets"],
                    "rate": rate,
                    "p50": median([b["p50"] for b in bursts]),
                    "p99": median([b["p99"] for b in bursts]),
                    "max": median([b["max"] for b in bursts]),
                    "lost": sum(b["lost"] for b in bursts),
                    "sent": sum(b["lost"] + b["n"] for b in bursts),
                    "bursts": len(bursts),
                }
            )
    return out


def waiting_figures(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        runs = row["runs"]
        out.append(
            {
                "mode": row["mode"],
                "shoppers": row["shoppers"],
                "cpu_waiting": median([r["cpu_per_minute_waiting"] for r in runs]),
                "cpu_results": median([r["cpu_per_minute_results"] for r in runs]),
                "polls": median([r["polls_per_second"] for r in runs]),
                "mean_shown": median([r["shown"]["mean"] for r in runs]),
                "p99_shown": median([r["shown"]["p99"] for r in runs]),
                "lost": median([r["shown"]["lost"] for r in runs]),
                "runs": len(runs),
            }
        )
    return out


def _find(rows: list[dict], **match) -> dict | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def _ratio(a: float, b: float) -> float:
    if b:
        return a / b
    return float("inf") if a else float("nan")


def _throughput_ratio(callback: float, sync: float) -> tuple[str, bool | None]:
    """The ratio and whether it meets 50x; None where a side finished nothing (no ratio)."""
    if sync and callback:
        return f"{callback / sync:.1f}x", callback / sync >= 50
    return f"{callback:.1f}/s vs {sync:.1f}/s: no ratio (a side completed no checkout)", None


def _ratio_ceiling(shoppers: int) -> float:
    """N shoppers over W workers: the ratio of the two modes' ceilings (N / T over W / T)."""
    return shoppers / servers.GUNICORN_WORKERS


def _cpu_bound(callback: dict, sync: dict, cpus: int) -> str:
    """Why a ratio the ceilings allow was missed: the checkouts a second the machine's cores can
    give at the CPU per checkout this cell measured (every process: shop, payment system,
    PostgreSQL, load generator), against 50x; where they would allow 50x, how busy they were."""
    spent = callback.get("cpu_ms", {}).get("all")
    if not spent or not sync["per_second"]:
        return ""
    most = cpus * 1000 / spent
    ratio = most / sync["per_second"]
    if ratio >= 50:
        busy = _cores_busy(callback, cpus)
        if not busy:
            return ""
        return (
            f"{busy}, which at {spent:.1f} ms a checkout (every process) serve at most "
            f"{most:.1f}/s, {ratio:.1f}x"
        )
    return (
        f"**no**: the machine's CPU, {cpus} cores at {spent:.1f} ms a checkout (every process), "
        f"serves at most {most:.1f}/s, {ratio:.1f}x; 50x needs {spent * ratio / 50:.1f} ms or less"
    )


def _latency(seconds: float) -> str:
    """How fast the payment system's API answered (SANDBOX_API_LATENCY), ending a sentence."""
    if not seconds:
        return ", its API answering in a few ms on loopback."
    return (
        f", its API answering each call {seconds * 1000:g} ms late, as a real payment system's "
        "across the internet (`SANDBOX_API_LATENCY`)."
    )


def _cores_busy(callback: dict, cpus: int) -> str | bool:
    """A missed Pay p99, with how busy the cores were: on a fast machine it held while they had
    room (section 5, twelfth pass), on a slower one not always (seventeenth pass)."""
    if "cores" not in callback:
        return False
    return f"**no**: {callback['cores']:.2f} of the {cpus} cores busy"


# Measured beside the shop's own, for comparison: what the shop used before it replaced them.
REPLACED = {
    "daphne": "daphne, which the shop's server (`manage.py serve`, uvicorn) replaced",
    "inmemory": "Channels' stock layer, which `local` replaced",
}


def _unless_replaced(met: bool, *names: str) -> bool | str:
    """A target missed by something the shop replaced says so (still a miss)."""
    replaced = [REPLACED[name] for name in names if name in REPLACED]
    return f"**no**: {'; '.join(replaced)}" if replaced and not met else met


def targets(
    checkout: list[dict],
    push: list[dict],
    memory: list[dict],
    waiting: list[dict],
    churn: list[dict] = (),
    cpus: int = os.cpu_count() or 1,
):
    """(target, figure, met) for each target of the issue that this run measured; met is True,
    False, None (not measured) or a sentence for a miss that says why, where the run shows it."""
    out = []
    for shoppers in sorted({r["shoppers"] for r in checkout}):
        sync, cb = (
            _find(checkout, mode="sync", shoppers=shoppers),
            _find(checkout, mode="callback", shoppers=shoppers),
        )
        if sync and cb:
            figure, met = _throughput_ratio(cb["per_second"], sync["per_second"])
            ceiling = _ratio_ceiling(shoppers)
            workers = f"({shoppers} shoppers / {servers.GUNICORN_WORKERS} workers)"
            if ceiling < 50 and met is not None:
                met = f"**no**: out of reach, the ceilings allow {ceiling:.1f}x {workers}"
            elif ceiling == 50 and met is False:
                # The callback mode never quite reaches its ceiling (each checkout takes the
                # shopper's time and then some): 50x only while the old mode falls short of its.
                met = (
                    f"**no**: at the edge, the ceilings allow exactly {ceiling:.1f}x {workers}, "
                    "reached only while the old mode falls short of its ceiling"
                )
            elif met is False:
                met = _cpu_bound(cb, sync, cpus) or met
            out.append(
                (
                    f"callback >= 50x sync throughput, {shoppers} shoppers",
                    f"{figure} (ceilings' ratio {ceiling:.1f}x)",
                    met,
                )
            )
            out.append(
                (
                    f"callback Pay p99 < 50 ms, {shoppers} shoppers",
                    f"{cb['p99']:.1f} ms",
                    cb["p99"] < 50 or _cores_busy(cb, cpus),
                )
            )
    for server in sorted({r["server"] for r in push}):
        for layer, size, rate, limit in (("redis", 5000, 200, 50), ("local", 1000, None, 20)):
            for row in push:
                if (row["server"], row["layer"], row["sockets"]) == (server, layer, size) and (
                    rate is None or row["rate"] == rate
                ):
                    ok = _unless_replaced(row["p99"] < limit and row["lost"] == 0, server)
                    out.append(
                        (
                            f"push p99 < {limit} ms, {layer}, {size} sockets, {row['rate']}/s, {server}",
                            f"{row['p99']:.1f} ms, {row['lost']} lost",
                            ok,
                        )
                    )
    for row in churn:
        out.append(
            (
                f"push p99 < 50 ms, {row['layer']}, {row['sockets']} sockets, {row['rate']}/s, "
                "uvicorn, "
                f"{row['reopened_per_second']:.0f} sockets/s closing and opening, "
                f"{row['collector']} collector",
                f"{row['p99']:.1f} ms, {row['lost']} lost",
                row["p99"] < 50 and row["lost"] == 0,
            )
        )
    for row in memory:
        kib = row["bytes_per_socket"] / 1024
        out.append(
            (
                f"<= 20 KiB per idle socket, {row['server']}, {row['layer']}, {row['sockets']}",
                f"{kib:.1f} KiB",
                _unless_replaced(kib <= 20, row["server"], row["layer"]),
            )
        )
    push_row, poll_row = _find(waiting, mode="push"), _find(waiting, mode="poll")
    if push_row and poll_row:
        share = _ratio(push_row["cpu_waiting"], poll_row["cpu_waiting"])
        out.append(
            (
                "push CPU <= 1/20 of polling's (waiting)",
                f"1/{1 / share:.0f}"
                if share
                else f"0 vs {poll_row['cpu_waiting']:.1f} s/min (push: under the CPU clock's "
                "10 ms tick in the window)",
                share <= 1 / 20,
            )
        )
    return out  # fmt: skip


# --- writing ------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return "-" if value != value else f"{value:,.1f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _save(fig, path: Path) -> str:
    """Write a chart as PNG, free its figure, and return the file's name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def charts(checkout, push, waiting, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    names = []
    if checkout:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        sizes = sorted({r["shoppers"] for r in checkout})
        for i, mode in enumerate(("sync", "callback")):
            values = [
                (_find(checkout, mode=mode, shoppers=n) or {}).get("per_second", 0) for n in sizes
            ]
            ax.bar([x + i * 0.4 for x in range(len(sizes))], values, width=0.4, label=mode)
        ax.set_xticks([x + 0.2 for x in range(len(sizes))], [f"{n} shoppers" for n in sizes])
        ax.set_yscale("log")
        ax.set_ylabel("completed checkouts / s (log)")
        ax.legend()
        ax.set_title("Sync (gunicorn) vs callback (uvicorn)")
        names.append(_save(fig, out / "checkout.png"))
    if push:
        fig, ax = plt.subplots(figsize=(7, 4))
        for key in sorted({(r["server"], r["layer"], r["sockets"]) for r in push}):
            rows = sorted(
                (r for r in push if (r["server"], r["layer"], r["sockets"]) == key),
                key=lambda r: r["rate"],
            )
            ax.plot(
                [r["rate"] for r in rows],
                [r["p99"] for r in rows],
                marker="o",
                label="/".join(map(str, key)),
            )
        ax.set_yscale("log")
        ax.set_xlabel("notifications / s")
        ax.set_ylabel("p99 push latency, ms (log)")
        ax.legend(fontsize=7)
        ax.set_title("Notification POST to panel on the socket")
        names.append(_save(fig, out / "push.png"))
    if waiting:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.bar([r["mode"] for r in waiting], [r["cpu_waiting"] for r in waiting])
        ax.set_ylabel("server CPU s per minute")
        ax.set_title(f"{waiting[0]['shoppers']} waiting shoppers")
        names.append(_save(fig, out / "waiting.png"))
    return names  # fmt: skip


def _met(ok: bool | None) -> str:
    return "not measured" if ok is None else "yes" if ok else "**no**"


def _loads(loads) -> str:
    return ", ".join(f"{x:.2f}" for x in loads) if loads else "not recorded"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def replaced_run(path: Path) -> dict | None:
    """The run whose results a new one overwrites (`results.json`), if it measured the machine's
    speed: its commit, date and `bench.cost` figures."""
    try:
        results = json.loads(path.read_text())
        env = results["environment"]
        return {"commit": env["commit"], "date": env["date"], "cost": results["cost"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _speed(steps: list[dict], before: dict | None = None) -> list[str]:
    """The machine's speed: `bench.cost`'s CPU per request, in one process with nothing else;
    beside it the run this one replaces, if any, since a table that moved may only say that the
    machine did (bench/profile_notes.md, thirteenth pass)."""
    if not steps:
        return []
    header = ["step", "per", "shop ms CPU", "PostgreSQL ms CPU"]
    rows = [[x["step"], x["per"], f"{x['process']:.2f}", _ms(x["postgres"])] for x in steps]
    then = {x["step"]: x["process"] for x in (before or {}).get("cost", [])}
    compared = []
    if then:
        header += [f"shop ms CPU in the run this replaces (`{before['commit']}`)", "now / then"]
        for row, x in zip(rows, steps, strict=True):
            was = then.get(x["step"])
            row += ["-", "-"] if not was else [f"{was:.2f}", f"{x['process'] / was:.2f}"]
        compared = [
            f"Beside it, the run this one replaces ({before['date']}, commit "
            f"`{before['commit']}`): where a step's CPU differs between the two, the tables below "
            "differ for that reason too, whatever the code did.",
            "",
        ]
    return [
        "## The machine's speed",
        "",
        "CPU per request with no load: `python -m bench.cost "
        f"{steps[0]['count']}` (each step {steps[0]['count']} times, one after another, through "
        "the shop's ASGI application in one process; what each step is: `bench/cost.py`), at "
        "the start of the run; PostgreSQL's CPU is all of its processes' (for pay, the "
        "sandbox's queries too). The same code costs more on a slower or busier machine: "
        "compare these figures before comparing another run's.",
        "",
        *compared,
        _table(header, rows),
        "",
    ]


def _faults(faults: list[str], shown: int = 20) -> list[str]:
    """The header's line on the logs (`bench.logs`), with the first faults if there are any."""
    if not faults:
        return [
            "- Logs: no warning, error or traceback in any server's log or the load generator's "
            "(`bench/logs.py` reads them after the run)"
        ]
    listed = [fault.replace("`", "'") for fault in faults[:shown]]
    return [
        f"- **Logs: {len(faults)} warnings, errors or tracebacks** (`bench/logs.py`; `make bench` "
        f"fails on any), the first {len(listed)} below; the figures of a run with faults are "
        "not to be trusted until they are understood",
        *(f"  - `{fault}`" for fault in listed),
    ]


def _small_only(s: dict) -> str:
    pairs = s.get("push_small_only") or ()
    sizes = s["sockets"]
    if not pairs or len(sizes) < 2:
        return ""
    named = ", ".join(f"{layer} on {server}" for server, layer in pairs)
    return (
        f" Measured at {sizes[0]} sockets only, to keep the run to a few minutes (opening "
        f"{sizes[-1]} sockets takes about a minute per server here): {named}. At {sizes[-1]}: "
        "the other pairs."
    )


def _largest_only(s: dict) -> str:
    pairs = s.get("push_largest_only") or ()
    if not pairs:
        return ""
    named = ", ".join(f"{layer} on {server}" for server, layer in pairs)
    return (
        f" Several processes behind Redis, at {s['sockets'][-1]} sockets only: {named} (`uvicorn "
        "--workers N`: N processes on one port; the kernel shares the sockets and the "
        "notifications among them, Redis carries each push to the process holding the socket; "
        "memory and CPU are the sum over the processes)."
    )


def memory_figures(rows: list[dict]) -> list[dict]:
    """Memory per idle socket of each push cell, with the figure of each part its fleet grew in
    (a run from before parts were measured has one, over its whole opening)."""
    keep = ("server", "layer", "sockets", "bytes_per_socket", "failed_sockets")
    return [
        {
            **{k: row[k] for k in keep},
            "parts": row.get("bytes_per_socket_parts", [row["bytes_per_socket"]]),
        }
        for row in rows
    ]


def write(results: dict, *, out: Path, charts: Path, argv=()) -> None:
    s = results["environment"]["sizes"]
    checkout = checkout_figures(results.get("checkout", []), s["think_seconds"])
    push = push_figures(results.get("push", []))
    memory = memory_figures(results.get("push", []))
    waiting = waiting_figures(results.get("waiting", []))
    churn = results.get("churn", [])
    env = results["environment"]
    pictures = globals()["charts"](checkout, push, waiting, charts)
    rel = os.path.relpath(charts, out.parent)
    s = env["sizes"]
    command = "make bench" + (" (quick: python -m bench.run --quick)" if results["quick"] else "")
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand, except "
        "`bench/profile_notes.md`, which is copied in at the end.",
        "",
        f"- Date: {env['date']}, commit `{env['commit']}`, {results['seconds']:.0f} s in all "
        f"(the harness, from the first server started to this file written)",
        f"- Load average (1, 5, 15 min) at the start: {_loads(results.get('load_start'))}; "
        f"at the end: {_loads(env.get('load_end'))}; CPU time the host gave other guests "
        f"meanwhile (steal): {_stolen(results.get('cpu_start'), env.get('cpu_end'))}; "
        f"CPU for a fixed loop of Python (`sum(range(10**7))`, least of three) at the start: "
        f"{_loop(results.get('loop_start'))}, at the end: {_loop(env.get('loop_end'))} (a "
        "machine that slowed meanwhile reads longer at the end)",
        f"- Machine: {env['machine']}; a shared machine (the load averages above show how busy "
        "it was), so compare ratios within this run, not absolute figures across runs (the "
        "machine's speed below tells how fast this one was)",
        f"- Python {env['python']}{_build_note(env)}; "
        + ", ".join(f"{k} {v}" for k, v in env["packages"].items()),
        f"- Database: {env['database']}; channel layer store: {env['redis']}",
        f"- Reproduce: `{command}` with `DATABASE_URL` (PostgreSQL) and `REDIS_URL` set, "
        f"e.g. `DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench "
        f"REDIS_URL=redis://127.0.0.1:6379/8 make bench`; arguments: `{' '.join(argv)}`",
        "- Load comes from `bench/load.py`, a separate process; the server is sampled through "
        "/proc (psutil). Each push figure is the median over its bursts, each checkout figure "
        "over its measurement windows, each memory figure over the parts its fleet grew in, "
        "each waiting figure over its runs, the churn's p50 and p99 over its windows. How many "
        "runs, windows or bursts each figure has is in the last column of its table: where it "
        "says 1, that cell ran once (the time budget of a few minutes for the whole run affords "
        "no more).",
        *_faults(results.get("faults", [])),
        "",
        *_speed(results.get("cost", []), replaced_run(charts / "results.json")),
        "## Targets",
        "",
        _table(
            ["target", "measured", "met"],
            [
                [t, f, ok if isinstance(ok, str) else _met(ok)]
                for t, f, ok in targets(checkout, push, memory, waiting, churn)
            ],
        ),
        "",
    ]
    if checkout:
        workers = servers.GUNICORN_WORKERS
        warm = s["checkout_ramp_seconds"] + s["checkout_warmup_seconds"]
        few = min(r["shoppers"] for r in checkout)
        ours = next(
            (r.get("server") for r in results["checkout"] if r["mode"] == "callback"), "uvicorn"
        )
        parts += [
            "## 1. Synchronous vs callback checkout",
            "",
            f"Each shopper, in a closed loop: loads the order's page (`GET /orders/<biz>/`, "
            f"from the same server as Pay), presses Pay, decides "
            f"{s['think_seconds']} s after the payment system has the payment (approves at the "
            f"sandbox's cashier), and waits for the paid panel, then starts over with a new order. "
            f"**sync**: `bench/views.py:old_pay`, a sync view blocking on "
            f"`POST /sandbox/v1/payments/sync`, under gunicorn with {workers} sync workers "
            f"(pinned: 2 per core); its shoppers learn that their payment exists from the "
            f"sandbox's table, one query for all of them every 50 ms. **callback**: "
            f"`POST /orders/<biz>/pay/` under {ours} (`uvicorn xN`: N processes on one port, their "
            f"sockets' pushes shared through Redis) answers the pending panel; the result comes by "
            f"notification and socket. The sandbox runs as its own uvicorn process"
            + _latency(s.get("payment_latency", 0.0)),
            "",
            f"Shoppers arrive spread over {s['checkout_ramp_seconds']} s; after "
            f"{s['checkout_warmup_seconds']} s more of warm-up, {s['checkout_runs']} consecutive "
            f"windows of {s['checkout_window_seconds']} s each are measured (seconds "
            f"{warm:g} to {warm + s['checkout_runs'] * s['checkout_window_seconds']:g} of the "
            f"run), and every figure is the median over those windows (the runs column). "
            f"Checkouts/s: paid panels seen (sync: paid answers) within the window. Pay p50/p99: "
            f"the Pays answered within the window, and those still unanswered at its end with the "
            f"time they had waited, so a figure with unanswered Pays is a lower bound; page p99 "
            f"likewise for the page's GET. Each sync "
            f"cell gets fresh servers (its workers stay blocked on payments nobody decides once "
            f"the load stops); the callback cells share one set, which nothing blocks.",
            "",
            f"Ceilings: no checkout takes less than the shopper's {s['think_seconds']} s, so "
            f"{workers} sync workers complete at most {workers} / {s['think_seconds']} = "
            f"{workers / s['think_seconds']:.3g} checkouts/s, and N callback shoppers at most "
            f"N / {s['think_seconds']}: with the old mode at its ceiling, the ratio cannot exceed "
            f"N / {workers}, the ceilings' ratio (it exceeds that only by as much as the old mode "
            f"falls short of its own): {few / workers:g}x at {few} shoppers, so a target above "
            f"that is out of reach there by arithmetic. In a closed loop the old mode's shopper "
            f"waits, in steady state, about N / (checkouts/s) - {s['think_seconds']} s a checkout "
            f"(minutes at 1,000 shoppers), for a free worker for the page and again for Pay; the "
            f"windows end long before, hence its unanswered Pays. Where "
            f"the callback mode falls short of its ceiling, the limit is the machine's CPU "
            f"({os.cpu_count()} cores, shared by the servers, PostgreSQL and the load generator: "
            f"the last table) and, at 1,000 shoppers, the one thread per process that does every "
            f'socket\'s database work (see "The Pay path" in section 5).',
            "",
            _table(
                [
                    "shoppers",
                    "mode",
                    "checkouts/s",
                    "ceiling /s",
                    "Pay p50 ms",
                    "Pay p99 ms",
                    "page p99 ms",
                    "Pays answered",
                    "unanswered at end",
                    "errors",
                    "runs",
                ],
                [
                    [
                        r["shoppers"],
                        r["mode"],
                        r["per_second"],
                        r["ceiling"],
                        r["p50"],
                        r["p99"],
                        r["page_p99"],
                        r["answered"],
                        r["unanswered"],
                        r["errors"],
                        r["runs"],
                    ]
                    for r in checkout
                ],
            ),
            "",
            _table(
                ["shoppers", "callback / sync throughput", "ceilings' ratio (shoppers / workers)"],
                [
                    [
                        n,
                        _throughput_ratio(
                            _find(checkout, mode="callback", shoppers=n)["per_second"],
                            _find(checkout, mode="sync", shoppers=n)["per_second"],
                        )[0],
                        f"{_ratio_ceiling(n):.1f}x",
                    ]
                    for n in sorted({r["shoppers"] for r in checkout})
                ],
            ),
            "",
            f"Where the CPU went over the measured windows: how many of the machine's "
            f"{os.cpu_count()} cores the processes kept busy together, and each one's CPU time "
            f"(with all of its processes: the shop's workers, PostgreSQL's backends) in ms per "
            f"checkout completed in them. The payment system is the sandbox, the stand-in for "
            f"the real one; PostgreSQL's figure is all of its work meanwhile (the old mode's "
            f"look-up of its shoppers' payments every 50 ms included).",
            "",
            _table(
                ["shoppers", "mode", f"cores busy (of {os.cpu_count()})", *CPU_PARTS],
                [
                    [
                        r["shoppers"],
                        r["mode"],
                        f"{r['cores']:.2f}",
                        *(_ms(r["cpu_ms"].get(part)) for part in CPU_PARTS),
                    ]
                    for r in checkout
                ],
            ),
            "",
        ]
        if "checkout.png" in pictures:
            parts += [f"![checkouts per second]({rel}/checkout.png)", ""]
    if push:
        parts += [
            "## 2. Push latency",
            "",
            f"N sockets open on N waiting orders (owner's session cookie, allowed Origin); signed "
            f"`payment.succeeded` notifications are POSTed to `/payments/notify/sandbox/` at the "
            f"rate for {s['burst_seconds']} s bursts, {s['repeats']} bursts per rate, after one "
            f"burst not counted each time the fleet grew (it meets the server's collector catching "
            f"up with the new sockets); latency is from "
            f"the POST to the paid panel arriving on that order's socket. Each server and layer "
            f"gets one process (unless named xN) and one fleet of sockets, grown from one size to the next and never "
            f"reconnected between rates: each burst uses sockets no burst used before, and used "
            f"ones stay open (idle, paid). `local` is "
            f"`shop.channel_layers.LocalChannelLayer`, `inmemory` Channels' stock "
            f"`InMemoryChannelLayer` (the before; {tuple(s['inmemory_rates'])}/s on one server), `redis` "
            f"channels_redis. Lost: no panel within {s['drain_seconds']} s after the burst."
            + _small_only(s)
            + _largest_only(s),
            "",
            _table(
                [
                    "sockets",
                    "layer",
                    "server",
                    "rate /s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "lost / sent",
                    "bursts",
                ],
                [
                    [
                        r["sockets"],
                        r["layer"],
                        r["server"],
                        r["rate"],
                        r["p50"],
                        r["p99"],
                        r["max"],
                        f"{r['lost']} / {r['sent']}",
                        r["bursts"],
                    ]
                    for r in push
                ],
            ),
            "",
        ]
        if "push.png" in pictures:
            parts += [f"![push latency]({rel}/push.png)", ""]
    if churn:
        parts += [
            "## 2b. Push latency while shoppers come and go",
            "",
            f"The bursts above open no socket while they run. Here {churn[0]['sockets']} sockets "
            f"are open under uvicorn (one process, {churn[0]['layer']} layer), notifications "
            f"arrive at {s['churn_rate']}/s and {s['churn_reopens']} shoppers a second leave and "
            "come back (a socket whose result was seen closes, its order waits again, a new "
            "socket opens on it), as in a shop where pages open and close all the time: for "
            f"{s['churn_warmup_seconds']:g} s not counted (the full passes of the collector that "
            "follow the fleet's growth, in either variant), then for "
            f"{s['churn_seconds']:g} s whose every notification counts, in "
            f"{s.get('churn_windows', 1)} consecutive windows by when it was sent: p50 and p99 "
            "are medians over the windows (the runs column), p99.9 and max over all of them. "
            "New sockets are what Python's cycle collector counts towards its full passes, which "
            "walk every socket's objects and stop the process meanwhile. **shop's** collector: "
            "what each full pass keeps is frozen, so the next walks only what came since "
            "(`shop/collector.py`, `GC_FREEZE_SURVIVORS`); **Python's**: "
            "`GC_FREEZE_SURVIVORS=0`. Each its own server and fleet. Late: shown more than "
            f"{s['drain_seconds']:g} s after the cell's end, within "
            f"{s['churn_late_seconds']:g} s more (in the latencies too); "
            "lost: not shown by then.",
            "",
            _table(
                [
                    "collector",
                    "sockets",
                    "rate /s",
                    "reopened /s",
                    "p50 ms",
                    "p99 ms",
                    "p99.9 ms",
                    "max ms",
                    "late / lost / sent",
                    "runs",
                ],
                [
                    [
                        r["collector"],
                        r["sockets"],
                        r["rate"],
                        r["reopened_per_second"],
                        r["p50"],
                        r["p99"],
                        r["p999"],
                        r["max"],
                        f"{r['late']} / {r['lost']} / {r['sent']}",
                        r.get("windows", 1),
                    ]
                    for r in churn
                ],
            ),
            "",
        ]
    if push:
        parts += [
            "## 3. Memory per idle socket",
            "",
            "The smallest fleet grows from the first 20 sockets (which load the code paths; 20 "
            "more at a time until each process of a server with several has served some, as one "
            "may take a whole burst), a larger one from where the previous size's bursts left "
            "it (so what the bursts allocated is not charged to idle sockets). Its new sockets "
            f"open in {s.get('memory_parts', 1)} equal parts, each a run: the server's RSS growth "
            "over the part, divided by the sockets the part opened. Each figure is the median "
            "over the parts, beside the smallest and largest part. Each socket offers "
            "permessage-deflate, as browsers do; both servers decline it.",
            "",
            _table(
                [
                    "server",
                    "layer",
                    "sockets",
                    "KiB per socket",
                    "parts' least / most KiB",
                    "sockets refused",
                    "runs",
                ],
                [
                    [
                        r["server"],
                        r["layer"],
                        r["sockets"],
                        r["bytes_per_socket"] / 1024,
                        f"{min(r['parts']) / 1024:.1f} / {max(r['parts']) / 1024:.1f}",
                        r["failed_sockets"],
                        len(r["parts"]),
                    ]
                    for r in memory
                ],
            ),
            "",
        ]
    if waiting:
        parts += [
            "## 4. Push vs polling",
            "",
            f"{waiting[0]['shoppers']} shoppers wait for their result under uvicorn: **push** with "
            f"one socket each, **poll** with `GET /bench/poll/<biz>/` every {s['poll_interval']} s "
            f'(what an `hx-trigger="every 1s"` panel does; `bench/views.py:poll`). Server CPU '
            f"(user + system, from /proc) over {s['idle_seconds']} s of waiting, then while all "
            f"results arrive for {s.get('waiting_results', waiting[0]['shoppers'])} of them over "
            f"{s['result_seconds']} s; time until shown is from the "
            f"notification's POST to the paid panel reaching the shopper. Lost: not shown within "
            f"{s['drain_seconds']} s (push) or {s.get('poll_drain_seconds', s['drain_seconds'])} s "
            f"(poll) after the last result; the means leave them out. Both servers let "
            f"`HTTP_MAX_CONCURRENT` requests into Django at once; the other polls wait their turn.",
            "",
            _table(
                [
                    "mode",
                    "CPU s/min waiting",
                    "CPU s/min with results",
                    "polls/s",
                    "mean until shown ms",
                    "p99 until shown ms",
                    "lost",
                    "runs",
                ],
                [
                    [
                        r["mode"],
                        r["cpu_waiting"],
                        r["cpu_results"],
                        r["polls"],
                        r["mean_shown"],
                        r["p99_shown"],
                        r["lost"],
                        r["runs"],
                    ]
                    for r in waiting
                ],
            ),
            "",
        ]
        if "waiting.png" in pictures:
            parts += [f"![CPU while waiting]({rel}/waiting.png)", ""]
    if s.get("notes"):
        parts += ["## Notes", "", *[f"- {n}" for n in s["notes"]], ""]
    if PROFILE_NOTES.exists():
        parts += [PROFILE_NOTES.read_text().rstrip(), ""]
    out.write_text("\n".join(parts))
