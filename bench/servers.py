"""The servers a benchmark runs: the shop under daphne, uvicorn or gunicorn, and the sandbox.

All are `tests.servers.ShopServer` processes (a free port, a log file, stopped for sure at exit)
with production settings (DEBUG off, so no query log grows) and the bench-only URLs. The sandbox
always runs as its own uvicorn process, so the payment system is never the bottleneck being
measured; the shop servers neither mount it nor run the reconciler.
"""

from __future__ import annotations

import psutil
import psycopg

from tests.servers import ShopServer, free_port

# Pinned here, not tuned per run: the old way as it used to be served, 2 sync workers per core.
GUNICORN_WORKERS = 4
SECRETS = {
    "SECRET_KEY": "bench-secret-key-not-for-production",
    "SANDBOX_API_KEY": "sk_bench",
    "SANDBOX_NOTIFY_SECRET": "whsec_bench",
}


def base_env(database_url: str) -> dict[str, str]:
    """What every server and the load generator share."""
    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "0",
        "HTTPS": "0",  # plain HTTP on loopback: no TLS proxy in front, so no redirect to https
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "RECONCILE_IN_SERVER": "0",
        # The watchlist's catch-up sweep would hide a lost push; nothing is lost here if it works.
        "WATCH_INTERVAL": "3600",
        # Every bench socket comes from 127.0.0.1: main's per-client cap (50) would refuse the rest.
        "WS_MAX_PER_CLIENT": "0",
        **SECRETS,
    }


def command(kind: str, port: int) -> list[str]:
    """How `kind` is started: daphne, uvicorn, "uvicorn xN" (N worker processes on one port, so
    only with the Redis layer) or gunicorn (the old mode's sync workers).

    uvicorn is `manage.py serve`, the shop's own server as production runs it (HOST and PORT come
    from the environment `ShopServer` sets); daphne, which it replaced, runs from its command line
    with the handshake timeout the shop used to give it (5 s drops sockets in a connect burst)."""
    kind, _, workers = kind.partition(" x")
    if kind == "daphne":
        return [
            "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            "--websocket_connect_timeout", "60", "shop.asgi:application",
        ]  # fmt: skip
    if kind == "uvicorn":
        return ["manage.py", "serve", "--workers", workers or "1"]
    if kind == "gunicorn":
        return [
            "-m", "gunicorn", "bench.wsgi:application", "-b", f"127.0.0.1:{port}",
            "-w", str(GUNICORN_WORKERS), "--worker-class", "sync", "--timeout", "600",
            "--backlog", "2048", "--log-level", "warning",
        ]  # fmt: skip
    raise ValueError(kind)


def server(
    kind: str, *, database_url: str, tmp_dir, env: dict[str, str | None] | None = None, name=None
) -> ShopServer:
    port = free_port()
    return ShopServer(
        name=name or kind,
        port=port,
        database_url=database_url,
        tmp_dir=tmp_dir,
        env={**base_env(database_url), "SANDBOX_ENABLED": "0", **(env or {})},
        command=command(kind, port),
        ready_timeout=60,
    )


def sandbox(*, database_url: str, tmp_dir, latency: float = 0.0) -> ShopServer:
    """The payment system, its API answering each call `latency` seconds later."""
    return server(
        "uvicorn",
        database_url=database_url,
        tmp_dir=tmp_dir,
        env={
            "SANDBOX_ENABLED": "1",
            "SANDBOX_RETRY_SCALE": "0.01",
            "SANDBOX_API_LATENCY": str(latency),
        },
        name="sandbox",
    )


def shop(
    kind: str,
    *,
    database_url: str,
    tmp_dir,
    sandbox_url: str,
    layer: str,
    redis_url: str,
    env: dict[str, str] | None = None,
):
    """The shop under `kind`, with the channel layer `layer` (local, inmemory or redis), and
    `env` on top of the benchmark's settings."""
    env = {
        "PAYMENT_GATEWAY_URL": sandbox_url + "/sandbox/",
        "REDIS_URL": redis_url if layer == "redis" else None,
        "BENCH_CHANNEL_LAYER": layer,
        **(env or {}),
    }
    name = f"{kind.replace(' ', '')}-{layer}"
    return server(kind, database_url=database_url, tmp_dir=tmp_dir, env=env, name=name)


def sockets_held(pid: int, port: int) -> list[int]:
    """How many connections to `port` each process of a server that accepts them holds: its
    workers' if it has some (uvicorn's supervisor only listens), else its own."""

    def on_port(process: psutil.Process, status: str) -> int:
        return sum(
            c.status == status and c.laddr.port == port for c in process.net_connections("tcp")
        )

    root = psutil.Process(pid)
    workers = [child for child in root.children() if on_port(child, psutil.CONN_LISTEN)]
    return [on_port(process, psutil.CONN_ESTABLISHED) for process in workers or [root]]


def postgres_pid(database_url: str) -> int | None:
    """The pid of PostgreSQL's postmaster (its processes are its children), if `database_url` is a
    PostgreSQL server on this machine."""
    if not database_url.startswith("postgres"):
        return None
    with psycopg.connect(database_url) as db:
        (backend,) = db.execute("SELECT pg_backend_pid()").fetchone()
    try:
        process = psutil.Process(backend)
        if process.name().startswith("postgres"):
            return process.ppid()
    except psutil.Error:
        pass
    return None


def usage(pid: int) -> dict[str, float]:
    """Resident memory (bytes) and CPU time (s) of a server and its worker processes (psutil)."""
    rss = cpu = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            rss += process.memory_info().rss
            cpu += times.user + times.system
        except psutil.NoSuchProcess:
            pass  # a worker that exited between the listing and the reading
    return {"rss": rss, "cpu": cpu}
