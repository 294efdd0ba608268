"""BENCHMARKS.md, its charts and docs/bench/results.json, from what `bench.run` measured.

Every headline cell stands beside an earlier run's (docs/bench/results.json as the commit given by
`--baseline` has it, the last committed run by default), with the ratio now / then: the machines
are shared and noisy, so a figure means most next to another measured the same way, and the
machine-speed yardstick says how fast each run's was.
"""

import json
import os
import platform
import re
import statistics
import subprocess
import time
from importlib import metadata
from pathlib import Path

import psutil

from bench.processes import GUNICORN_WORKERS, ROOT
from bench.providers import HEADING

PACKAGES = (
    "Django", "channels", "channels-redis", "daphne", "Twisted", "redis", "websockets",
    "gunicorn", "aiohttp", "psycopg",
)  # fmt: skip
RESULTS = "docs/bench/results.json"
PARTS = ("shop", "payment system", "PostgreSQL", "Redis", "load generator")

# The headline cells: key, what is measured, unit, target (comparison, bound) or None.
HEADLINE = [
    ("push_redis_p99", "push p99, Redis, 2 daphne processes, 5,000 sockets, 200/s", "ms", ("<=", 50)),
    ("push_embedded_p99", "push p99, embedded default, 1 daphne, 1,000 sockets, 100/s", "ms", ("<=", 20)),
    ("push_herd_p99", "push p99, embedded default, 1,000 sockets, 100/s, while the reconciler works through 1,000 overdue orders", "ms", ("<=", 100)),
    ("memory_1000", "memory per idle socket, production server, 1,000 sockets", "KiB", ("<=", 40)),
    ("memory_5000", "memory per idle socket, production server, 5,000 sockets", "KiB", ("<=", 40)),
    ("cpu_per_checkout", "shop CPU per checkout, callback, 200 shoppers", "ms", ("<=", 2 * 12.8)),
    ("ratio", "callback / sync throughput, 200 shoppers", "x", (">=", 40)),
    ("callback_per_second", "callback checkouts/s, 200 shoppers", "/s", None),
    ("sync_per_second", "sync checkouts/s, 200 shoppers", "/s", None),
    ("callback_pay_p99", "callback Pay p99, 200 shoppers", "ms", None),
    ("loop_start", "yardstick at the start (less is faster)", "s", None),
    ("loop_end", "yardstick at the end", "s", None),
]  # fmt: skip

# For each target: the public levers and upstream tickets that would close a miss.
PROFILE = "function by function: docs/profile-history.md, 'The stock stack (issue 31)'"
LEVERS = {
    "push_redis_p99": (
        "More cores: the design scales by adding server processes behind Redis, and at this CPU "
        "per notification two processes need two cores of their own. Less CPU per notification: "
        "the endpoint already skips Django's handler (a Channels consumer, docs/design.md "
        "'Notifications ahead of Django'); of the rest, the ORM's queries that apply the result "
        f"are the largest share; {PROFILE}."
    ),
    "push_embedded_p99": (
        "One process cannot do more than a core's worth. Channels documents "
        "`InMemoryChannelLayer` as not for production: it walks every channel and group on each "
        "send and receive (django/channels#933), 14% of the process's CPU with 1,000 sockets "
        "(docs/profile-history.md, 'A lever measured, then taken'); production runs "
        f"channels_redis. {PROFILE}."
    ),
    "memory_1000": (
        "What daphne (Twisted + autobahn) and Channels' consumer stack keep per connection; "
        "django/daphne#373 tracks connection memory upstream. The levers are more memory or more "
        "processes, not a copy of the server's protocol; issue 31 allows unmodified uvicorn as a "
        "second documented server if a run shows it pays."
    ),
    "cpu_per_checkout": (
        "Pages and Pay go through Django's ASGI handler: a thread per request (asgiref's "
        "`ThreadSensitiveContext`: django/asgiref#306 and #458 track that cost upstream) and two "
        "thread hops for each of Django's synchronous middleware, which have no async versions "
        "(Django's async docs, 'Performance'). The documented split (plain HTTP under a WSGI "
        "server, Channels' deployment docs) would take the page's share, not Pay's: Pay waits on "
        "the payment system without a worker, which a WSGI worker cannot do. A sync-only "
        "middleware listed last runs the chain in one switch (measured 10% less CPU per "
        f"checkout, not taken: docs/profile-history.md); {PROFILE}."
    ),
    "ratio": (
        "The callback mode is bound by the machine's cores (CPU per checkout by process, "
        "section 4): less CPU per checkout (the levers of the target above) or more cores; the "
        "sync mode is bound by its workers, so the ratio grows with shoppers only while the "
        "callback mode has CPU to spare."
    ),
}
LEVERS["push_herd_p99"] = (
    "First the embedded default's own levers (the target above): without the herd the one process "
    "is already saturated by the notifications. For the herd's share: `RECONCILE_RATE` and "
    "`RECONCILE_MAX_IN_FLIGHT` (settings) bound how much of the machine the reconciler's queries "
    "and writes take at once, and a lower rate spreads the same herd over more time; the "
    "reconciler is a process of its own that talks only to PostgreSQL and the payment system, so "
    "it can run at a lower CPU priority (`nice` in supervisord's command line) or on another "
    "machine. The payment system's share is the bench's: the sandbox runs on these cores, a "
    "provider's API does not."
)
LEVERS["memory_5000"] = LEVERS["memory_1000"]
# The push cells of the headline, by the run's key for each.
PUSH_CELLS = {"push_redis_p99": "redis", "push_embedded_p99": "embedded", "push_herd_p99": "herd"}


# --- the machine and the run ---------------------------------------------------------------------


def yardstick() -> dict:
    """How fast the machine runs Python now (CPU seconds for `sum(range(10**7))`, least of three),
    its load averages, and its CPU clock (for the share stolen by other guests)."""
    loops = []
    for _ in range(3):
        start = time.process_time()
        sum(range(10**7))
        loops.append(time.process_time() - start)
    times = psutil.cpu_times()
    return {
        "loop": min(loops),
        "load": list(os.getloadavg()),
        "cpu_total": sum(times),
        "cpu_steal": getattr(times, "steal", 0.0),
    }


def _first_line(path: str, prefix: str) -> str:
    for line in Path(path).read_text().splitlines():
        if line.startswith(prefix):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _git(*args: str) -> str:
    try:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return ""
    return run.stdout if run.returncode == 0 else ""


def host() -> dict:
    """When, at which commit, on what machine and Python: what every section's figures need."""
    memory = int(_first_line("/proc/meminfo", "MemTotal").split()[0]) / 1024 / 1024
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no").strip())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": _git("rev-parse", "--short", "HEAD").strip() + (" + changes" if dirty else ""),
        "machine": f"{os.cpu_count()} CPUs ({_first_line('/proc/cpuinfo', 'model name')}), "
        f"{memory:.1f} GiB RAM, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def environment(database_url: str, redis_url: str) -> dict:
    import psycopg
    import redis

    with psycopg.connect(database_url) as db:
        postgres = db.execute("SHOW server_version").fetchone()[0]
    return {
        **host(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "database": f"PostgreSQL {postgres}",
        "redis": "Redis " + redis.Redis.from_url(redis_url).info("server")["redis_version"],
    }


# A record at WARNING or above in each format a run writes: Django's and daphne's ("<date> <time>
# LEVEL ..."), gunicorn's ("[<date> <time> <zone>] [pid] [LEVEL] ...").
RECORD = re.compile(r"^(?:\S+ ){2,4}\[?(WARNING|ERROR|CRITICAL)\]?\s")
TRACEBACK = "Traceback (most recent call last):"


def faults(logs: Path) -> list[str]:
    """Every warning, error and traceback in the run's logs: a server that fails rarely shows in
    a figure, so the run reads them and fails on any."""
    found = []
    for path in sorted(logs.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            record = RECORD.match(line)
            after_record = number > 1 and RECORD.match(lines[number - 2])
            if record or (line.startswith(TRACEBACK) and not after_record):
                found.append(f"{path.name}:{number}: {line.strip()[:300]}")
    return found


# --- figures -------------------------------------------------------------------------------------


def _median(values) -> float:
    values = [v for v in values if v == v]  # no NaN
    return statistics.median(values) if values else float("nan")


def push_figures(cell: dict) -> dict:
    bursts = cell["bursts"]
    cpu, notifications = cell["bursts_cpu"], cell["bursts_cpu"]["notifications"]
    return {
        "p50": _median(b["p50"] for b in bursts),
        "p99": _median(b["p99"] for b in bursts),
        "max": max((b["max"] for b in bursts), default=float("nan")),
        "answer_p99": _median(b["answer_p99"] for b in bursts),
        "lost": sum(b["lost"] for b in bursts),
        "errors": sum(b["notify_errors"] for b in bursts),
        "sent": sum(b["n"] + b["lost"] for b in bursts),
        "bursts": len(bursts),
        "cores": sum(cpu["cpu"].values()) / cpu["seconds"],
        "shop_ms": cpu["cpu"]["shop"] * 1000 / notifications,
    }


def herd_figures(cell: dict) -> dict:
    """What the reconciler got through during the bursts, and the CPU each process spent."""
    cpu, herd = cell["bursts_cpu"], cell["herd"]
    seconds = cpu["seconds"]
    return {
        **herd,
        "seconds": seconds,
        "per_second": herd["during"] / seconds,
        "cores": {part: spent / seconds for part, spent in cpu["cpu"].items()},
        "reconciler_ms": cpu["cpu"]["reconciler"] * 1000 / max(1, herd["during"]),
    }


def checkout_figures(cell: dict, think: float, shoppers: int) -> dict:
    windows = cell["windows"]
    completed = sum(w["completed"] for w in windows)
    serving = GUNICORN_WORKERS if cell["mode"] == "sync" else shoppers
    return {
        "per_second": _median(w["per_second"] for w in windows),
        "ceiling": serving / think,
        "pay_p50": _median(w["pay"]["p50"] for w in windows),
        "pay_p99": _median(w["pay"]["p99"] for w in windows),
        "unanswered": _median(w["pay_unanswered"] for w in windows),
        "errors": sum(w["errors"] for w in windows),
        "windows": len(windows),
        "cores": sum(cell["cpu"].values()) / cell["seconds"],
        "ms": {part: s * 1000 / max(1, completed) for part, s in cell["cpu"].items()},
    }


def headline(results: dict) -> dict:
    """The headline cells of a run of this harness."""
    sizes = results["sizes"]
    sync = checkout_figures(results["sync"], sizes["think_seconds"], sizes["shoppers"])
    callback = checkout_figures(results["callback"], sizes["think_seconds"], sizes["shoppers"])
    memory = {m["sockets"]: m["per_socket"] / 1024 for m in results["redis"]["memory"]}
    small, large = sizes["redis_sockets"][0], sizes["redis_sockets"][-1]
    return {
        "push_redis_p99": push_figures(results["redis"])["p99"],
        "push_embedded_p99": push_figures(results["embedded"])["p99"],
        "push_herd_p99": push_figures(results["herd"])["p99"],
        "memory_1000": memory[small],
        "memory_5000": memory[large],
        "cpu_per_checkout": callback["ms"]["shop"],
        "ratio": callback["per_second"] / sync["per_second"] if sync["per_second"] else None,
        "callback_per_second": callback["per_second"],
        "sync_per_second": sync["per_second"],
        "callback_pay_p99": callback["pay_p99"],
        "loop_start": results["start"]["loop"],
        "loop_end": results["end"]["loop"],
    }


def headline_of_7b7bded(old: dict) -> tuple[dict, dict]:
    """The same cells from the custom stack's last run (commit 7b7bded, another schema), and what
    each measured then."""

    def row(rows, **match):
        return next(r for r in rows if all(r[k] == v for k, v in match.items()))

    def push(server, layer, sockets, rate):
        bursts = row(old["push"], server=server, layer=layer, sockets=sockets)["bursts"]
        return _median(b["p99"] for b in bursts if b["rate"] == rate)

    def checkout(mode):
        cell = row(old["checkout"], mode=mode, shoppers=200)
        completed = sum(r["completed"] for r in cell["runs"])
        return cell, _median(r["per_second"] for r in cell["runs"]), completed

    def memory(server, sockets):
        return row(old["push"], server=server, layer="redis", sockets=sockets)["bytes_per_socket"]

    callback, callback_rate, completed = checkout("callback")
    _, sync_rate, _ = checkout("sync")
    figures = {
        "push_redis_p99": push("uvicorn x2", "redis", 5000, 200),
        "push_embedded_p99": push("uvicorn", "local", 1000, 100),
        "memory_1000": memory("uvicorn", 1000) / 1024,
        "memory_5000": memory("uvicorn x2", 5000) / 1024,
        "cpu_per_checkout": callback["cpu"]["spent"]["shop"] * 1000 / completed,
        "ratio": callback_rate / sync_rate,
        "callback_per_second": callback_rate,
        "sync_per_second": sync_rate,
        "callback_pay_p99": _median(r["pay"]["p99"] for r in callback["runs"]),
        "loop_start": old["loop_start"],
        "loop_end": old["environment"]["loop_end"],
    }
    serve = "`manage.py serve` (patched uvicorn)"
    what = {
        "push_redis_p99": f"{serve} x2, the shop's Redis layer",
        "push_embedded_p99": f"{serve}, the shop's in-process layer",
        "memory_1000": f"{serve}, Redis, one process",
        "memory_5000": f"{serve} x2, Redis",
        "cpu_per_checkout": f"{serve} x2, Redis",
        "ratio": f"{serve} x2 against gunicorn",
        "callback_per_second": f"{serve} x2, Redis",
        "callback_pay_p99": f"{serve} x2, Redis",
    }
    return figures, what


def before(baseline: str = "HEAD") -> dict | None:
    """The run to compare with: docs/bench/results.json as commit `baseline` has it (by default
    the last committed run)."""
    text = _git("show", f"{baseline}:{RESULTS}")
    if not text:
        return None
    old = json.loads(text)
    meta = {"commit": old["environment"]["commit"], "date": old["environment"]["date"]}
    if "headline" in old:
        return {**meta, "figures": old["headline"], "what": {}, "steps": old.get("steps_ms", {})}
    figures, what = headline_of_7b7bded(old)
    cost = {step["step"]: step["process"] for step in old.get("cost", [])}
    steps = {
        "page": cost.get("page"),
        "connect": cost.get("connect"),
        "pay": cost.get("pay"),
        "push": (cost["request"] + cost["push"]) if "request" in cost else None,
    }
    return {**meta, "figures": figures, "what": what, "steps": steps, "steps_in_process": True}


def steps_ms(results: dict) -> dict[str, dict[str, float]]:
    count = results["steps"]["count"]
    return {
        step: {part: s * 1000 / count for part, s in cell["cpu"].items()}
        for step, cell in results["steps"]["steps"].items()
    }


def _speed(results: dict, then) -> float | None:
    """How much slower this run's machine ran the yardstick than the earlier run's."""
    old = (then or {}).get("figures", {})
    if not old.get("loop_start") or not old.get("loop_end"):
        return None
    now = min(results["start"]["loop"], results["end"]["loop"])
    return now / min(old["loop_start"], old["loop_end"])


def verdict(key: str, value: float | None) -> bool | None:
    target = dict((k, t) for k, _, _, t in HEADLINE)[key]
    if target is None or value is None or value != value:
        return None if target is None else False
    comparison, bound = target
    return value <= bound if comparison == "<=" else value >= bound


# --- writing -------------------------------------------------------------------------------------


def _n(value, digits: int = 1) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def charts(results: dict, then: dict | None, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, label, target in (
        ("redis", "Redis, 2 daphne, 5,000 sockets, 200/s", 50),
        ("embedded", "embedded, 1 daphne, 1,000 sockets, 100/s", 20),
        ("herd", "the same, the reconciler's herd meanwhile", 100),
    ):
        latencies = sorted(x for b in results[key]["bursts"] for x in b["latencies_ms"])
        if latencies:
            share = [(i + 1) / len(latencies) for i in range(len(latencies))]
            (line,) = ax.plot(latencies, share, label=label)
            ax.axvline(target, color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("notification POST to paid panel on the socket, ms (dotted: target p99)")
    ax.set_ylabel("share of pushes")
    ax.set_title("Push latency")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "push.png", dpi=100)
    plt.close(fig)

    now = headline(results)
    short = {
        "push_redis_p99": "push p99, Redis",
        "push_embedded_p99": "push p99, embedded",
        "push_herd_p99": "push p99, embedded, herd",
        "memory_1000": "KiB per socket, 1,000",
        "memory_5000": "KiB per socket, 5,000",
        "cpu_per_checkout": "shop CPU per checkout",
        "ratio": "callback / sync (higher is better)",
        "loop_start": "yardstick (the machine)",
    }
    old = (then or {}).get("figures", {})
    ratios = [now[k] / old[k] if old.get(k) and now[k] else float("nan") for k in short]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.barh(range(len(short)), ratios, color="tab:blue")
    for i, ratio in enumerate(ratios):
        if ratio == ratio:
            ax.annotate(f"{ratio:.2f}x", (ratio, i), xytext=(4, 0), textcoords="offset points")
    ax.axvline(1, color="black", linewidth=1)
    ax.set_xscale("log")
    if any(r == r for r in ratios):
        ax.set_xlim(right=max(r for r in ratios if r == r) * 4)
    ax.set_yticks(range(len(short)), list(short.values()))
    ax.invert_yaxis()
    ax.set_xlabel(f"now / then ({(then or {}).get('commit', 'no committed run')}), log scale")
    ax.set_title("Headline cells against the earlier run")
    fig.tight_layout()
    fig.savefig(out / "now-then.png", dpi=100)
    plt.close(fig)
    return ["push.png", "now-then.png"]


def write(results: dict, *, out: Path, charts_dir: Path, argv=(), baseline: str = "HEAD") -> None:
    then = before(baseline)
    now = headline(results)
    results["headline"] = now
    results["steps_ms"] = {step: ms["shop"] for step, ms in steps_ms(results).items()}
    results["before"] = then
    (charts_dir).mkdir(parents=True, exist_ok=True)
    (charts_dir / "results.json").write_text(json.dumps(results, indent=1))
    images = charts(results, then, charts_dir)
    out.write_text("\n".join(document(results, then, images, charts_dir, out, argv)) + "\n")


def document(
    results: dict, then, images: list[str], charts_dir: Path, out: Path, argv
) -> list[str]:
    env, now = results["environment"], results["headline"]
    start, end = results["start"], results["end"]
    rel = os.path.relpath(charts_dir, out.parent)
    old = (then or {}).get("figures", {})
    commit = (then or {}).get("commit", "none")
    stolen = (end["cpu_steal"] - start["cpu_steal"]) / max(
        1e-9, end["cpu_total"] - start["cpu_total"]
    )
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand. How the figures of "
        "the custom serving stack this one replaced were found: "
        "[docs/profile-history.md](docs/profile-history.md).",
        "",
        f"- Date: {env['date']}, commit `{env['commit']}`, {results['seconds']:.0f} s in all"
        + (
            " (**quick sizes**: a test of the harness, not a measurement)"
            if results["quick"]
            else ""
        ),
        f"- Machine: {env['machine']}; shared, so compare ratios within a run, and runs through the "
        "yardstick below",
        f"- Python {env['python']}; "
        + ", ".join(f"{name} {version}" for name, version in env["packages"].items()),
        f"- {env['database']}; {env['redis']}",
        "- Reproduce: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench "
        "REDIS_URL=redis://127.0.0.1:6379/8 make bench`"
        + (f" (arguments: `{' '.join(argv)}`)" if argv else ""),
        "- Logs: "
        + (
            "no warning, error or traceback in any server's log or the load generator's"
            if not results["faults"]
            else f"**{len(results['faults'])} faults** (the run failed): "
            + "; ".join(f"`{f}`" for f in results["faults"][:10])
        ),
        "",
        "## The machine's speed",
        "",
        "CPU seconds for a fixed loop of Python (`sum(range(10**7))`, least of three) at the start "
        "and the end of the run, and the load averages: a slower or busier machine reads higher, "
        "and every figure below is slower with it.",
        "",
        *_table(
            [
                "",
                "loop at the start s",
                "loop at the end s",
                "load average (1, 5, 15 min) at the start",
                "at the end",
            ],
            [
                [
                    "now",
                    _n(start["loop"], 3),
                    _n(end["loop"], 3),
                    ", ".join(_n(x, 2) for x in start["load"]),
                    ", ".join(_n(x, 2) for x in end["load"]),
                ],
                [
                    f"then (`{commit}`)",
                    _n(old.get("loop_start"), 3),
                    _n(old.get("loop_end"), 3),
                    "",
                    "",
                ],
            ],
        ),  # fmt: skip
        "",
        f"CPU time the host gave other guests meanwhile (steal): {stolen:.1%}. The yardstick "
        f"(the lesser of start and end) reads {_n(_speed(results, then), 2)}x the earlier "
        "run's: a CPU figure's ratio now / then below is that much the machine's.",
        "",
        f"## Headline cells beside an earlier run (`{commit}`, {(then or {}).get('date', '-')})",
        "",
    ]
    rows = []
    for key, label, unit, target in HEADLINE:
        if key.startswith("loop"):
            continue
        value, was = now.get(key), old.get(key)
        met = verdict(key, value)
        rows.append(
            [
                label,
                f"{target[0]} {_n(target[1])} {unit}" if target else "",
                f"{_n(value)} {unit}",
                f"{_n(was)} {unit}",
                _n(value / was, 2) if value and was else "-",
                (then or {}).get("what", {}).get(key, "the same cell"),
                "" if met is None else ("yes" if met else "**no**"),
            ]
        )
    lines += _table(
        ["cell", "target", "now", "then", "now / then", "then measured on", "met"], rows
    )
    lines += ["", f"![now against then]({rel}/{images[1]})", "", "## Targets met and missed", ""]
    lines += targets_text(results, then)
    lines += details(results, then, rel, images)
    if "providers" in results:
        lines += providers_section(results["providers"])
    lines += method()
    return lines


def _push_profile(f: dict, rate: int, cpus: int) -> str:
    need = f["shop_ms"] * rate / 1000
    return (
        f"p50 {_n(f['p50'])} ms, p99 {_n(f['p99'])}, max {_n(f['max'])}; the notification "
        f"request's own answer p99 {_n(f['answer_p99'])} ms, so the time is spent queueing for "
        f"the CPU of the server that takes the notification, not in the channel layer; the servers' CPU per notification with its push {_n(f['shop_ms'], 2)} ms, "
        f"which at {rate}/s is {_n(need, 2)} cores for the servers alone; {_n(f['cores'], 2)} of "
        f"{cpus} cores busy during the bursts (every process); {f['lost']} lost"
    )


def _spread(cell: dict) -> str:
    p99s = [b["p99"] for b in cell["bursts"]]
    return f"{_n(min(p99s, default=None), 0)}-{_n(max(p99s, default=None), 0)}"


def targets_text(results: dict, then) -> list[str]:
    now, sizes = results["headline"], results["sizes"]
    redis, embedded = push_figures(results["redis"]), push_figures(results["embedded"])
    herd, herd_push = herd_figures(results["herd"]), push_figures(results["herd"])
    added = herd_push["p99"] - embedded["p99"]
    callback = checkout_figures(results["callback"], sizes["think_seconds"], sizes["shoppers"])
    steps = steps_ms(results)
    cpus = os.cpu_count() or 1
    profiles = {
        "push_redis_p99": _push_profile(redis, results["redis"]["rate"], cpus),
        "push_embedded_p99": _push_profile(embedded, results["embedded"]["rate"], cpus),
        "push_herd_p99": _push_profile(herd_push, results["herd"]["rate"], cpus)
        + f"; without the herd (the embedded cell above, this run) p99 {_n(embedded['p99'])} ms, "
        f"so the herd adds {added:+,.1f} ms ({100 * added / herd_push['p99']:+.0f}% of this p99), "
        f"where single bursts' p99s spread over {_spread(results['embedded'])} ms without it and "
        f"{_spread(results['herd'])} ms with it; the reconciler had the payment system's answer "
        f"for {herd['during']:,} of the {herd['orders']:,} orders during the "
        f"{_n(herd['seconds'])} s of bursts ({_n(herd['per_second'])}/s, {herd['before']:,} "
        f"before them), busy {_n(herd['cores']['reconciler'], 2)} cores "
        f"({_n(herd['reconciler_ms'], 2)} ms per order), the payment system "
        f"{_n(herd['cores']['payment system'], 2)}, PostgreSQL "
        f"{_n(herd['cores'].get('PostgreSQL'), 2)} (all its work, other databases' too), the "
        f"shop's one process {_n(herd['cores']['shop'], 2)}",
        "memory_1000": "RSS growth per socket in each part of the opening: "
        + ", ".join(
            f"{m['sockets']:,}: " + " / ".join(_n(p / 1024) for p in m["parts"]) + " KiB"
            for m in results["redis"]["memory"]
        ),
        "cpu_per_checkout": "the shop's CPU per step, one request at a time (section 3): "
        + ", ".join(f"{step} {_n(ms['shop'], 2)} ms" for step, ms in steps.items())
        + f"; {_n(sum(ms['shop'] for ms in steps.values()), 2)} ms in all, against "
        f"{_n(now['cpu_per_checkout'], 2)} ms per checkout under load; the yardstick reads "
        f"{_n(_speed(results, then), 2)}x the earlier run's, that much of the ratio is "
        "the machine",
        "ratio": f"{_n(callback['cores'], 2)} of {cpus} cores busy in the callback cell; CPU per "
        "checkout, all processes: "
        + ", ".join(f"{part} {_n(ms, 1)} ms" for part, ms in callback["ms"].items())
        + f"; at {_n(sum(callback['ms'].values()), 1)} ms a checkout, {cpus} cores serve at most "
        f"{_n(cpus * 1000 / max(1e-9, sum(callback['ms'].values())))}/s",
    }
    profiles["memory_5000"] = profiles["memory_1000"]
    lines = []
    for key, label, unit, target in HEADLINE:
        if target is None:
            continue
        met = verdict(key, now[key])
        lost = key in PUSH_CELLS and push_figures(results[PUSH_CELLS[key]])["lost"]
        state = "met" if met and not lost else "**missed**"
        lines.append(
            f"- {label}: {_n(now[key])} {unit} against {target[0]} {_n(target[1])} {unit}: {state}."
        )
        if not met or lost:
            lines.append(f"  - Where the time goes (measured): {profiles[key]}.")
            lines.append(f"  - Lever: {LEVERS[key]}")
    return lines + [""]


def details(results: dict, then, rel: str, images: list[str]) -> list[str]:
    sizes = results["sizes"]
    lines = ["## 1. Push latency", ""]
    lines.append(
        "A fleet of sockets on waiting orders (the owner's session cookie, an allowed Origin), "
        "spread over the servers; signed `payment.succeeded` notifications POSTed to "
        "`/payments/notify/sandbox/` at the rate, in bursts of "
        f"{_n(sizes['burst_seconds'])} s after one burst not counted; latency from the POST to the "
        "paid panel on that order's socket. With two servers every notification goes to the "
        "process that does not hold the socket, so every push crosses Redis. Lost: not seen "
        f"{_n(sizes['drain_seconds'])} s after the burst. Each figure is the median over the "
        "bursts (max: over all). The herd: the embedded cell again, with "
        f"{sizes['herd_orders']:,} more waiting orders whose pending payments exist at the "
        "sandbox all falling due together before the bursts (a sale's first minute), and "
        "`python manage.py reconcile` querying them meanwhile; the bursts start once it has its "
        "first answer. PostgreSQL's cores are all of the server's work, other databases' too. On the in-memory layer the reconciler cannot push: its queries and "
        "writes only load the machine, and nothing it learns (the payments are still pending) "
        "would change a panel."
    )
    lines.append("")
    rows = []
    for key, server in (
        ("redis", f"daphne x{sizes['redis_servers']}"),
        ("embedded", "daphne"),
        ("herd", "daphne, the reconciler's herd meanwhile"),
    ):
        cell, f = results[key], push_figures(results[key])
        rows.append(
            [
                server, cell["layer"], f"{cell['sockets']:,}", cell["rate"], _n(f["p50"]),
                _n(f["p99"]), _n(f["max"]), _n(f["answer_p99"]), f"{f['lost']} / {f['sent']}",
                f["errors"], cell["failed_sockets"], _n(f["cores"], 2), _n(f["shop_ms"], 2),
                f["bursts"],
            ]
        )  # fmt: skip
    lines += _table(
        ["servers", "layer", "sockets", "rate /s", "p50 ms", "p99 ms", "max ms", "notification answered p99 ms", "lost / sent", "notification errors", "sockets refused", "cores busy", "servers' CPU per notification ms", "bursts"],
        rows,
    )  # fmt: skip
    herd = herd_figures(results["herd"])
    lines += [
        "",
        "The herd during the bursts: orders the reconciler had the payment system's answer for, "
        "and the cores each process kept busy (CPU seconds over the bursts' seconds):",
        "",
    ]
    lines += _table(
        ["due at once", "answered before the bursts", "answered during them", "per second", "reconciler cores", "reconciler CPU per order ms", "payment system cores", "PostgreSQL cores", "shop cores", "seconds"],
        [[f"{herd['orders']:,}", herd["before"], herd["during"], _n(herd["per_second"]),
          _n(herd["cores"]["reconciler"], 2), _n(herd["reconciler_ms"], 2),
          _n(herd["cores"]["payment system"], 2), _n(herd["cores"].get("PostgreSQL"), 2),
          _n(herd["cores"]["shop"], 2), _n(herd["seconds"])]],
    )  # fmt: skip
    lines += ["", f"![push latency]({rel}/{images[0]})", "", "## 2. Memory per idle socket", ""]
    lines.append(
        "The production server (daphne, Redis, the two processes summed): from a baseline taken "
        f"after {sizes['warm_sockets']} sockets and a burst to them had loaded every code path, "
        f"each size's new sockets open in {sizes['memory_parts']} parts; each part's RSS growth "
        "over the sockets it opened; the figure is the median over the parts. Beside it the "
        "embedded default's single process. Sockets offer permessage-deflate, as browsers do."
    )
    lines.append("")
    rows = []
    for key, server in (
        ("redis", f"daphne x{sizes['redis_servers']}, Redis"),
        ("embedded", "daphne, in-memory"),
    ):
        for m in results[key]["memory"]:
            parts = " / ".join(_n(p / 1024) for p in m["parts"])
            rows.append([server, f"{m['sockets']:,}", _n(m["per_socket"] / 1024), parts])
    lines += _table(["server", "sockets", "KiB per socket", "each part KiB"], rows)  # fmt: skip
    lines += ["", "## 3. A checkout's CPU, step by step", ""]
    old_steps = (then or {}).get("steps", {})
    in_process = (then or {}).get("steps_in_process")
    lines.append(
        f"{results['steps']['count']} shoppers, one request at a time on one daphne process (Redis "
        "layer): every page, then every socket's connect (its first panel), every Pay (the call "
        "to the payment system and the pending push), every notification (with its push to the "
        "open socket); CPU of each process over each step, per shopper. "
        + (
            f"Then: `bench.cost` at `{then['commit']}`, the same steps inside one process through "
            "the ASGI application with no server, so daphne's own share is not in it."
            if in_process
            else ""
        )
    )
    lines.append("")
    steps = steps_ms(results)
    rows = []
    for step, ms in steps.items():
        was = old_steps.get(step)
        rows.append(
            [step, _n(ms["shop"], 2), _n(ms.get("payment system"), 2), _n(ms.get("PostgreSQL"), 2),
             _n(ms.get("Redis"), 2), _n(was, 2), _n(ms["shop"] / was, 2) if was else "-"]
        )  # fmt: skip
    total = sum(ms["shop"] for ms in steps.values())
    was_total = sum(v for v in old_steps.values() if v) if old_steps else None
    rows.append(
        [
            "**all**",
            _n(total, 2),
            "",
            "",
            "",
            _n(was_total, 2),
            _n(total / was_total, 2) if was_total else "-",
        ]
    )
    lines += _table(["step", "shop ms", "payment system ms", "PostgreSQL ms", "Redis ms", "shop ms then", "now / then"], rows)  # fmt: skip
    lines += ["", "## 4. Synchronous vs callback checkout", ""]
    lines.append(
        f"{sizes['shoppers']} shoppers in a closed loop: each loads its order's page, presses Pay, "
        f"approves at the sandbox's cashier {_n(sizes['think_seconds'])} s after the payment "
        "exists, and sees the result, then starts over with a new order. **sync**: "
        "`bench/views.py:old_pay`, a view blocking on the sandbox's "
        f"`POST /sandbox/v1/payments/sync` under gunicorn with {GUNICORN_WORKERS} sync workers "
        "(its shoppers learn their payment from the sandbox's table, one query every 50 ms; the "
        "sandbox's notifications, which change nothing by then, go to a daphne process beside it, "
        "counted with the shop: the notification endpoint is a Channels consumer). "
        f"**callback**: `POST /orders/<biz>/pay/` under {results['callback']['server']} on Redis, "
        "the result by notification (the sandbox's `sandbox_deliver` process) and socket, each "
        "request to the next server in turn. Shoppers arrive over "
        f"{_n(sizes['ramp_seconds'])} s; after {_n(sizes['warmup_seconds'])} s more, "
        f"{sizes['windows']} windows of {_n(sizes['window_seconds'])} s are measured; figures are "
        "medians over the windows. Pay p99 counts a Pay unanswered at a window's end with the "
        f"time it had waited. Ceiling: no checkout is faster than the think time, so "
        f"{GUNICORN_WORKERS} workers finish at most {GUNICORN_WORKERS} / "
        f"{_n(sizes['think_seconds'])} s a second and N shoppers N / {_n(sizes['think_seconds'])} s."
    )
    lines.append("")
    rows, cpu_rows = [], []
    for mode in ("sync", "callback"):
        cell = results[mode]
        f = checkout_figures(cell, sizes["think_seconds"], sizes["shoppers"])
        rows.append(
            [mode, cell["server"], _n(f["per_second"]), _n(f["ceiling"]), _n(f["pay_p50"]),
             _n(f["pay_p99"]), _n(f["unanswered"], 0), f["errors"], f["windows"]]
        )  # fmt: skip
        cpu_rows.append(
            [mode, _n(f["cores"], 2), *(_n(f["ms"].get(part), 1) for part in PARTS),
             _n(sum(f["ms"].values()), 1)]
        )  # fmt: skip
    lines += _table(["mode", "server", "checkouts/s", "ceiling /s", "Pay p50 ms", "Pay p99 ms", "unanswered at a window's end", "errors", "windows"], rows)  # fmt: skip
    lines += ["", "CPU per checkout completed in the windows, ms, by process (the shop's servers, the payment system's two processes, all of PostgreSQL's and Redis' work meanwhile):", ""]  # fmt: skip
    lines += _table(["mode", "cores busy", *PARTS, "all"], cpu_rows)
    return lines + [""]


def providers_section(cell: dict) -> list[str]:
    """Section 5, the notification CPU per provider (`bench.providers`): a section that its
    module also writes alone, so it carries its own date and machine."""
    env, providers = cell["environment"], cell["providers"]
    lines = [HEADING, ""]
    lines.append(
        "The CPU one notification's verification costs the shop, per payment provider: each "
        "gateway's `verify_notice(headers=..., body=...)` in one process (no server, no "
        "database), given genuine notices freshly signed as each provider signs them (the "
        "sandbox's by its own signer, Alipay's, WeChat Pay's and Stripe's by the fakes in "
        "`tests/fakes/`, RSA-2048 keys made at run time), the gateways configured with their "
        "`Config` dataclasses. CPU time (`time.process_time`) over "
        f"{cell['iterations']:,} notices, cycling through {cell['pool']} signed just before "
        f"(each verified once first, then {cell['warm']:,} not counted); each figure is the "
        f"median of {cell['rounds']} rounds, the providers one after another in each round, "
        "and the ratio is to the sandbox's in the same round (median over the rounds): the "
        "machine is shared, compare within a run. The steps after it are timed alone on the "
        "same notices: the signature check (HMAC-SHA256 of the header, or RSA-2048 SHA-256 "
        "PKCS#1 v1.5 verify over the signed text), WeChat Pay's AES-256-GCM decryption of its "
        "resource, and reading the body (`json.loads`, or for Alipay's form urllib's "
        "`parse_qsl`); the rest is what the gateway does besides: building the signed text, "
        "reading the decrypted resource, checking each field (dates through `strptime`). "
        "Only the gateway's share of a notification: section 1's servers' CPU per "
        "notification adds the request, the stored notification, the order's update and the "
        "push."
    )
    lines += [
        "",
        f"- Date: {env['date']}, commit `{env['commit']}`; written by `python -m "
        "bench.providers` (this section alone) or `make bench`"
        + (
            " (**quick counts**: a test of the harness, not a measurement)" if cell["quick"] else ""
        ),
        f"- Machine: {env['machine']}; Python {env['python']}, {env['crypto']}; "
        f"`sum(range(10**7))` {_n(env['loop'], 3)} s of CPU at the start",
        "",
    ]
    rows = []
    for figures in providers.values():
        steps = figures["steps_ms"]
        rest = figures["ms"] - sum(steps.values())
        rows.append(
            [figures["label"], figures["checked"], f"{figures['bytes']:,.0f}",
             _n(figures["ms"], 4), _n(figures["ratio"], 2),
             f"{_n(min(figures['rounds_ms']), 4)}-{_n(max(figures['rounds_ms']), 4)}",
             _n(steps.get("signature"), 4), _n(steps.get("decrypt"), 4),
             _n(steps.get("parse"), 4), _n(rest, 4)]
        )  # fmt: skip
    lines += _table(
        ["provider", "what is checked", "notice bytes", "CPU per notification ms", "/ sandbox", "rounds' range ms", "signature check ms", "decrypt ms", "reading the body ms", "the rest ms"],
        rows,
    )  # fmt: skip
    return lines + [""]


def method() -> list[str]:
    return [
        "## Method",
        "",
        "- One `make bench` runs every cell, one after another on the same machine. Each cell "
        "gets fresh shop servers, started as production starts them (`python -m daphne -b "
        "127.0.0.1 -p PORT shop.asgi:application`, settings from the environment, DEBUG off, "
        "plain HTTP on loopback; the old mode: `python -m gunicorn bench.wsgi:application -w "
        f"{GUNICORN_WORKERS} --worker-class sync` and one daphne process for the notifications). The payment system, the sandbox, runs as a "
        "daphne process of its own and `python manage.py sandbox_deliver`, started once for the "
        "cells that need it. The herd's reconciler is `python manage.py reconcile` as "
        "deploy/supervisord.conf runs it, at its default pace, looking for due orders every "
        "second (`RECONCILE_INTERVAL=1`, so that it takes the herd up sooner; while due orders "
        "remain it does not sleep).",
        "- Load comes from `bench/load.py`, always a separate process (aiohttp for HTTP, "
        "websockets for the sockets). No kept load tool fits: every figure ties a request to a "
        "socket's message, or chains one shopper's requests across servers and a socket.",
        "- CPU and memory are read from /proc through psutil at each step the load generator "
        "reports; CPU is user + system time of each process and its children.",
        "- The earlier run is `docs/bench/results.json` as the `--baseline` commit has it (by "
        "default HEAD: the last committed run); a run of the "
        "custom stack (before issue 31) is read through the cells that measured the same thing "
        "then (the column 'then measured on').",
        "- A missed target is written down with what the run measured of it and the public lever "
        "or upstream ticket that would close it; none is closed by copying framework code.",
        "- The history of how the figures of the stack this replaced were found: "
        "[docs/profile-history.md](docs/profile-history.md).",
    ]
