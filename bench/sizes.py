"""How big each benchmark is: the full run of `make bench`, and the quick one `make test` runs."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sizes:
    # 1. sync vs callback: shoppers in a closed loop, each deciding `think` s after Pay. They
    # arrive over the ramp; after the warm-up, `checkout_runs` consecutive windows are measured.
    shoppers: tuple[int, ...] = (50, 200, 1000)
    think_seconds: float = 2.0
    # What serves the callback mode when Redis is there: N uvicorn processes sharing pushes.
    callback_server: str = "uvicorn x2"
    checkout_ramp_seconds: float = 2.0
    checkout_warmup_seconds: float = 3.0
    checkout_window_seconds: float = 5.0
    checkout_runs: int = 3
    # Seconds the payment system's API takes to answer each call (SANDBOX_API_LATENCY): 0 is the
    # sandbox on loopback, a few ms; a real one's is 0.1-0.5 s.
    payment_latency: float = 0.0
    # 2. and 3. push latency and memory per socket.
    push_servers: tuple[str, ...] = ("daphne", "uvicorn")
    push_layers: tuple[str, ...] = ("local", "redis")
    sockets: tuple[int, ...] = (1000, 5000)
    rates: tuple[int, ...] = (100, 200, 500)
    burst_seconds: float = 0.4
    repeats: int = 3
    drain_seconds: float = 4.0
    # Each size's new sockets are opened in this many parts, memory per socket measured in each.
    memory_parts: int = 3
    # Channels' stock layer, the "before": one server, fewer rates (at 5,000 it takes seconds).
    inmemory_server: str = "uvicorn"
    inmemory_rates: tuple[int, ...] = (100, 200)
    # (server, layer) pairs measured at the largest fleet only: several processes behind Redis.
    push_largest_only: tuple[tuple[str, str], ...] = (("uvicorn x2", "redis"),)
    # (server, layer) pairs measured at the smallest fleet only, to keep `make bench` short: the
    # "before" layer, which at 5,000 sockets took seconds a push. Every other pair is measured at
    # both sizes, as the grid asks (about a minute more each on a 2-core machine).
    push_small_only: tuple[tuple[str, str], ...] = (("uvicorn", "inmemory"),)
    # 2b. push while shoppers come and go: the largest fleet on Redis under the shop's server, with
    # the shop's collector policy and with Python's own; `churn_rate` notifications and
    # `churn_reopens` sockets closed and opened again a second, for `churn_warmup_seconds` not
    # counted (the collector's passes after the fleet's growth), then `churn_seconds`.
    churn_warmup_seconds: float = 20.0
    churn_seconds: float = 40.0
    # Its p50 and p99 are medians over this many consecutive windows of churn_seconds.
    churn_windows: int = 4
    churn_rate: int = 100
    churn_reopens: int = 40
    # After the drain, how much longer a result not yet shown is waited for: shown then, it is
    # late (its latency counted); not even then, lost.
    churn_late_seconds: float = 30.0
    # 4. push vs polling.
    waiting_shoppers: int = 2000
    poll_interval: float = 1.0
    idle_seconds: float = 5.0
    # Results for this many of them over result_seconds: 100/s, what one process sustains here.
    waiting_results: int = 500
    result_seconds: float = 5.0
    # How long after the last result a polling shopper may still see it and not count as lost: a
    # saturated server answers each poller only every several seconds.
    poll_drain_seconds: float = 30.0
    waiting_runs: int = 3
    # The machine's speed: CPU per request in one process, no load (`bench.cost`, PostgreSQL only).
    cost_steps: int = 300
    notes: list[str] = field(default_factory=list)


FULL = Sizes()

QUICK = Sizes(
    shoppers=(5,),
    think_seconds=0.3,
    checkout_ramp_seconds=0.3,
    checkout_warmup_seconds=0.5,
    checkout_window_seconds=1.0,
    checkout_runs=2,
    # Two sizes, so the fleet grows once; past 50, main's per-client socket cap would show.
    sockets=(20, 60),
    push_small_only=(),
    push_largest_only=(),
    rates=(20,),
    burst_seconds=0.5,
    repeats=1,
    drain_seconds=5.0,
    inmemory_rates=(20,),
    churn_warmup_seconds=0.5,
    churn_seconds=1.0,
    churn_windows=2,
    churn_rate=20,
    churn_reopens=10,
    churn_late_seconds=5.0,
    waiting_shoppers=20,
    waiting_results=20,
    poll_interval=0.5,
    idle_seconds=1.0,
    result_seconds=1.0,
    poll_drain_seconds=5.0,
    waiting_runs=1,
    cost_steps=3,
)
