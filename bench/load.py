"""The load generator, always a process of its own: `python -m bench.load '<json params>'`.

It makes its shoppers in the database, drives the servers over HTTP and WebSockets, and talks to
`bench.run` over its standard streams: it prints `STEP <name>` when a phase is reached (the runner
then samples the server's memory and CPU) and waits for a line back before it goes on; its last
line is `RESULT <json>`. Its own logs go to standard error.
"""

import asyncio
import gc
import json
import os
import random
import re
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

import aiohttp  # noqa: E402

from bench import fixtures  # noqa: E402
from bench.stats import median, percentile, summary_ms  # noqa: E402

# Any 32 letters or digits are a valid CSRF secret; sending the same in the cookie and the header
# (or form) is what a browser holding the cookie does.
CSRF = "benchbenchbenchbenchbenchbench32"
STATUS = re.compile(r'data-status="(\w+)"')
CASHIER = re.compile(r"/sandbox/cashier/(pay_[0-9a-f]{24})")
PANEL_ID = re.compile(r'name="panel" value="([\w-]+)"')  # in a socket's Pay form
CONNECT_AT_ONCE = 50


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


async def step(name: str, **info: object) -> str:
    """Tell the runner a phase is reached, wait until it has taken its samples; its answer."""
    print(f"STEP {name} {json.dumps(info)}", flush=True)
    return (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()


def cookies(session_key: str) -> str:
    return f"sessionid={session_key}; csrftoken={CSRF}"


class Socket:
    """One checkout page's socket: remembers the status of each panel it receives, and when, and
    the panel id its Pay form names (which the page's Pay, pressed there, sends)."""

    def __init__(self, shopper: fixtures.Shopper, biz: str, payment_id: str = "") -> None:
        self.shopper, self.biz, self.payment_id = shopper, biz, payment_id
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.status = ""
        self.panel_id = ""
        self.changed = asyncio.Event()
        self.seen_at: dict[str, float] = {}
        self.reader: asyncio.Task | None = None

    async def open(self, http: aiohttp.ClientSession, base: str, ws_base: str) -> None:
        self.status, self.seen_at = "", {}
        self.ws = await http.ws_connect(
            f"{ws_base}/ws/order/{self.biz}/",
            headers={"Cookie": cookies(self.shopper.session_key), "Origin": base},
            heartbeat=None,
            autoping=True,
            # Offered as browsers offer it: a server that accepts holds a zlib state per socket.
            compress=15,
        )
        self.reader = asyncio.ensure_future(self._read())
        await self.wait_any()

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            found = STATUS.search(message.data)
            if found:
                self.status = found.group(1)
                panel = PANEL_ID.search(message.data)
                self.panel_id = panel.group(1) if panel else ""
                self.seen_at.setdefault(self.status, time.perf_counter())
                self.changed.set()

    async def wait_any(self, timeout: float = 60) -> str:
        await asyncio.wait_for(self.changed.wait(), timeout)
        return self.status

    async def wait_for(self, status: str, timeout: float) -> float | None:
        """When `status` was seen (perf_counter), or None if not within `timeout` seconds."""
        deadline = time.perf_counter() + timeout
        while status not in self.seen_at:
            self.changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return None
        return self.seen_at[status]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()


async def open_all(http, base: str, sockets: list[Socket]) -> int:
    """Open sockets, CONNECT_AT_ONCE at a time; return how many failed."""
    ws_base = base.replace("http://", "ws://")
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    failed = 0

    async def one(socket: Socket) -> None:
        nonlocal failed
        async with gate:
            try:
                await socket.open(http, base, ws_base)
            except Exception as error:  # counted and reported, never hidden
                failed += 1
                log("socket failed", type(error).__name__, error)

    await asyncio.gather(*(one(s) for s in sockets))
    # The fleet lives until the end of the run: keep it out of this process's full collections,
    # which with 5,000 sockets paused it for up to ~230 ms, a delay it would have charged to the
    # server's latency.
    gc.freeze()
    return failed


def client(timeout: float = 120) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


async def notify(http, base: str, socket: Socket) -> int:
    body = fixtures.notice(socket.biz, socket.payment_id)
    async with http.post(
        f"{base}/payments/notify/sandbox/", data=body, headers=fixtures.signed(body)
    ) as answer:
        await answer.read()
        return answer.status


async def send_at_rate(http, base: str, sockets: list[Socket], rate: float) -> list[tuple]:
    """Send one signed notification per socket, `rate` per second; return (socket, sent_at, task)."""
    sent = []
    start = time.perf_counter()
    for i, socket in enumerate(sockets):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent.append(
            (socket, time.perf_counter(), asyncio.ensure_future(notify(http, base, socket)))
        )
    return sent


async def latencies(sent: list[tuple], drain: float) -> dict:
    """Wait for every socket to show paid; latencies from its notification's POST."""
    seconds, lost, errors = await results_seen(sent, drain)
    return {**summary_ms(seconds), "lost": lost, "notify_errors": errors}


async def results_seen(sent: list[tuple], drain: float) -> tuple[list[float], int, int]:
    """Each result's latency in seconds, how many were lost and how many notifications failed."""
    deadline = time.perf_counter() + drain
    seconds, lost = [], 0
    for socket, sent_at, _ in sent:
        seen = await socket.wait_for("paid", max(0.0, deadline - time.perf_counter()))
        if seen is None:
            lost += 1
        else:
            seconds.append(seen - sent_at)
    # A notification still unanswered a second after the deadline counts as an error; waiting
    # for it (up to the client's 120 s) measured nothing and made the polling run take minutes.
    tasks = [task for _, _, task in sent]
    if tasks:
        await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()) + 1)
    for task in tasks:
        task.cancel()
    statuses = await asyncio.gather(*tasks, return_exceptions=True)
    return seconds, lost, sum(1 for s in statuses if s != 200)


# --- scenarios ----------------------------------------------------------------------------------


async def push(p: dict) -> dict:
    """Push latency: one fleet of sockets grown to each size in turn, bursts at each rate there.

    The fleet is never closed between sizes or rates: reconnecting thousands of sockets is what
    made a full run take half an hour. Sockets a burst used stay open (paid) and idle.
    """
    base, sizes, parts = p["base"], sorted(p["sockets"]), p.get("memory_parts", 1)
    shoppers = await asyncio.to_thread(fixtures.shoppers_create, sizes[-1], pending=True)
    sockets = [Socket(s, s.orders[0], s.payment_ids[0]) for s in shoppers]
    async with client() as http:
        # Sockets that load the code paths before the memory baseline, `batch` at a time until the
        # runner has seen each of the server's processes serve some.
        batch = min(p.get("warm", 20), sizes[0] // 2)
        warm = failed = 0
        answer = "more"
        while answer == "more" and warm + batch <= sizes[0] // 2:
            failed += await open_all(http, base, sockets[warm : warm + batch])
            warm += batch
            answer = await step("warm", sockets=warm)
        log(f"push: {warm} sockets opened before the memory baseline")
        opened, fresh, used = warm, [], []
        bursts, failures = [], {}
        for size in sizes:
            # In parts, each sampled: memory per socket is the median over the parts.
            ends = [opened + (size - opened) * (i + 1) // parts for i in range(parts)]
            for i, end in enumerate(ends):
                failed += await open_all(http, base, sockets[opened:end])
                fresh += [s for s in sockets[opened:end] if s.status == "pending"]
                opened = end
                if i < parts - 1:
                    await step(f"open_{size}_part_{i + 1}", sockets=end)
            if size == sizes[0]:
                fresh += [s for s in sockets[:warm] if s.status == "pending"]
            failures[size] = failed
            await step(f"open_{size}", sockets=size, failed=failed)
            # A first burst, not counted: the first after the fleet grew meets the server's
            # collector catching up with the new sockets (a full collection, ~0.3 s at 5,000).
            plan = [(p["rates"][0], "warm-up")]
            plan += [(rate, repeat) for rate in p["rates"] for repeat in range(p["repeats"])]
            for rate, repeat in plan:
                count = max(1, int(rate * p["burst_seconds"]))
                if len(fresh) < count:
                    # Put used orders back to waiting and reopen their sockets (not measured).
                    await asyncio.to_thread(fixtures.orders_reset_pending, [s.biz for s in used])
                    for s in used:
                        await s.close()
                    await open_all(http, base, used)
                    fresh += [s for s in used if s.status == "pending"]
                    used = []
                batch, fresh = fresh[:count], fresh[count:]
                used += batch
                sent = await send_at_rate(http, base, batch, rate)
                result = await latencies(sent, p["drain_seconds"])
                log("push", size, rate, repeat, result)
                if repeat != "warm-up":
                    bursts.append({"sockets": size, "rate": rate, "repeat": repeat, **result})
            await step(f"bursts_{size}")
        churned = {}
        if p.get("churn_seconds"):  # after the bursts at the largest size
            churned = await churn(http, base, fresh, used, p)
            log("churn", churned)
        for s in sockets:
            await s.close()
    return {"failed_sockets": failures, "bursts": bursts, "churn": churned}


async def churn(http, base: str, fresh: list[Socket], used: list[Socket], p: dict) -> dict:
    """Shoppers coming and going while results arrive, as in a shop (the bursts above close no
    socket): one notification every 1 / `churn_rate` s to a waiting socket, while `churn_reopens`
    shoppers a second leave and come back (a socket whose result was seen closes, its order waits
    again, and a new socket opens on it). For `churn_warmup_seconds` not counted (the collector's
    passes that follow the fleet's growth), then `churn_seconds` whose every result counts."""
    seconds, rate, reopens = p["churn_seconds"], p["churn_rate"], p["churn_reopens"]
    warmup = p["churn_warmup_seconds"]
    waiting: dict[Socket, tuple[float, asyncio.Task]] = {}  # notified, result not yet taken
    seen: list[tuple[float, float]] = []  # (sent at, seconds until shown) of those counted
    tasks: list[asyncio.Task] = []
    reopened = failed = counted = 0
    done = asyncio.Event()

    async def come_and_go() -> None:
        nonlocal reopened, failed
        start, batch = time.perf_counter(), max(1, reopens // 10)
        while not done.is_set():
            leaving = [s for s in used if s not in waiting or "paid" in s.seen_at][:batch]
            for s in leaving:
                used.remove(s)
                if s in waiting:
                    sent_at, _ = waiting.pop(s)
                    if sent_at >= counted_from:
                        seen.append((sent_at, s.seen_at["paid"] - sent_at))
            if leaving:
                await asyncio.to_thread(fixtures.orders_reset_pending, [s.biz for s in leaving])
                for s in leaving:
                    await s.close()
                failed += await open_all(http, base, leaving)
                fresh.extend(s for s in leaving if s.status == "pending")
                reopened += len(leaving)
            await asyncio.sleep(
                max(0.01, start + (reopened + batch) / reopens - time.perf_counter())
            )

    mover = asyncio.ensure_future(come_and_go())
    start = time.perf_counter()
    counted_from = start + warmup
    while time.perf_counter() < counted_from + seconds and fresh:
        socket = fresh.pop(0)
        used.append(socket)
        sent_at = time.perf_counter()
        counted += sent_at >= counted_from
        tasks.append(asyncio.ensure_future(notify(http, base, socket)))
        waiting[socket] = (sent_at, tasks[-1])
        await asyncio.sleep(max(0.0, start + len(tasks) / rate - time.perf_counter()))
    done.set()
    await mover
    # A saturated server shows some results after the drain: waited for `churn_late_seconds`
    # more, they count as late (in the latencies too), and only those never shown as lost.
    last = [(s, t, task) for s, (t, task) in waiting.items() if t >= counted_from]
    drained_by = time.perf_counter() + p["drain_seconds"]
    _, lost, _ = await results_seen(last, p["drain_seconds"] + p["churn_late_seconds"])
    late = sum(1 for s, _, _ in last if s.seen_at.get("paid", drained_by) > drained_by)
    statuses = await asyncio.gather(*tasks, return_exceptions=True)
    seen += [(t, s.seen_at["paid"] - t) for s, t, _ in last if "paid" in s.seen_at]
    # p50 and p99 are medians over consecutive windows of the counted seconds, by when each
    # notification was sent; the rarer figures (p99.9, max) need all of them at once.
    windows = p.get("churn_windows", 1)
    width = seconds / windows
    by_window = [[] for _ in range(windows)]
    for sent_at, latency in seen:
        by_window[min(windows - 1, int((sent_at - counted_from) / width))].append(latency)
    summaries = [summary_ms(latencies) for latencies in by_window if latencies]
    every = [latency for _, latency in seen]
    return {
        **summary_ms(every),
        "p50": median([w["p50"] for w in summaries]),
        "p99": median([w["p99"] for w in summaries]),
        "windows": len(summaries),
        "p999": percentile(every, 99.9) * 1000,
        "late": late,
        "lost": lost,
        "notify_errors": sum(1 for s in statuses if s != 200),
        "sent": counted,
        "reopened_per_second": reopened / (warmup + seconds),
        "failed_sockets": failed,
        "seconds": seconds,
        "rate": rate,
    }


class PaymentsFound:
    """When each awaited order's payment exists at the sandbox, for the old mode's shoppers.

    The blocked Pay answers nothing until the shopper decides, so the shopper learns the payment
    from the sandbox: one query over all waiting orders every `interval` s, straight from the
    sandbox's table, instead of each shopper polling its API (at 1,000 shoppers that was thousands
    of requests a second, on the cores the measured servers need).
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.waiting: dict[str, asyncio.Future] = {}

    async def payment_id(self, biz: str) -> str:
        future = self.waiting[biz] = asyncio.get_running_loop().create_future()
        try:
            return await future
        finally:
            self.waiting.pop(biz, None)

    async def run(self) -> None:
        from sandbox.models import Payment

        def found(bizs: list[str]) -> list[tuple[str, str]]:
            return list(
                Payment.objects.filter(out_trade_no__in=bizs).values_list("out_trade_no", "id")
            )

        while True:
            await asyncio.sleep(self.interval)
            if self.waiting:
                for biz, payment_id in await asyncio.to_thread(found, list(self.waiting)):
                    future = self.waiting.get(biz)
                    if future is not None and not future.done():
                        future.set_result(payment_id)


class Windows:
    """What happened in each measurement window: checkouts completed, pages and Pays answered
    (and still waiting at its end), errors."""

    REQUESTS = ("page", "pay")

    def __init__(self, start: float, width: float, count: int) -> None:
        self.start, self.width, self.count = start, width, count
        self.completed = [0] * count
        self.errors: list[list[str]] = [[] for _ in range(count)]
        # Per request kind: each window's answer times, and the waits still open at its end.
        self.answers = {kind: [[] for _ in range(count)] for kind in self.REQUESTS}
        self.unanswered = {kind: [[] for _ in range(count)] for kind in self.REQUESTS}
        # Per request kind: when each shopper's request in flight was sent.
        self.in_flight: dict[str, dict[int, float]] = {kind: {} for kind in self.REQUESTS}

    def index(self, when: float) -> int | None:
        i = int((when - self.start) // self.width)
        return i if when >= self.start and i < self.count else None

    def sent(self, kind: str, shopper: int) -> None:
        self.in_flight[kind][shopper] = time.perf_counter()

    def answered(self, kind: str, shopper: int) -> None:
        t0, t1 = self.in_flight[kind].pop(shopper), time.perf_counter()
        i = self.index(t1)
        if i is not None:
            self.answers[kind][i].append(t1 - t0)

    def complete(self, when: float) -> None:
        i = self.index(when)
        if i is not None:
            self.completed[i] += 1

    def error(self, when: float, kind: str) -> None:
        i = self.index(when)
        if i is not None:
            self.errors[i].append(kind)

    async def snapshot_in_flight(self) -> None:
        """At each window's end, a request still unanswered counts with the time it has waited."""
        for i in range(self.count):
            end = self.start + (i + 1) * self.width
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            for kind, sent in self.in_flight.items():
                self.unanswered[kind][i] = [end - t0 for t0 in sent.values()]

    def results(self) -> list[dict]:
        return [
            {
                "completed": self.completed[i],
                "per_second": self.completed[i] / self.width,
                **{
                    kind: summary_ms(self.answers[kind][i] + self.unanswered[kind][i])
                    for kind in self.REQUESTS
                },
                "pay_answered": len(self.answers["pay"][i]),
                "pay_unanswered": len(self.unanswered["pay"][i]),
                "errors": len(self.errors[i]),
                "error_kinds": sorted(set(self.errors[i]))[:5],
            }
            for i in range(self.count)
        ]


async def checkout(p: dict) -> dict:
    """Shoppers in a closed loop: load the order's page, Pay, decide after `think` s, see the
    result (the old mode: in Pay's answer; ours: on the page's socket, opened before Pay).

    They arrive spread over `ramp` s; after `warmup` more seconds, `windows` consecutive windows of
    `window` s each are measured (checkouts completed and Pays answered in each, and the Pays still
    waiting at its end), and the run ends.
    """
    base, sandbox, mode = p["base"], p["sandbox"], p["mode"]
    think = p["think_seconds"]
    shoppers = await asyncio.to_thread(
        fixtures.shoppers_create, p["shoppers"], orders_each=p["orders_each"]
    )
    closed, given_up = await asyncio.to_thread(fixtures.sandbox_leftovers_drop)
    log(f"checkout: closed {closed} payments and gave up {given_up} notices left from before")
    payments = PaymentsFound()
    errors_total: list[str] = []

    async def approve(http, payment_id: str) -> None:
        """Decide `think` s after the payment exists (the shopper cannot pay before that)."""
        await asyncio.sleep(think)
        async with http.post(
            f"{sandbox}/sandbox/cashier/{payment_id}",
            data={"decision": "approve", "csrfmiddlewaretoken": CSRF},
            headers={"Cookie": f"csrftoken={CSRF}"},
        ) as answer:
            await answer.read()
            if answer.status != 200:
                raise RuntimeError(f"cashier {answer.status}")

    async def decide_when_found(http, biz: str) -> None:
        await approve(http, await payments.payment_id(biz))

    async def shopper_loop(http, index: int, shopper: fixtures.Shopper, arrive: float) -> None:
        await asyncio.sleep(arrive)
        headers = {
            "Cookie": cookies(shopper.session_key),
            "X-CSRFToken": CSRF,
            "HX-Request": "true",
        }
        page_headers = {"Cookie": cookies(shopper.session_key)}

        def error(kind: str) -> None:
            errors_total.append(kind)
            windows.error(time.perf_counter(), kind)

        for biz in shopper.orders:
            # The order's page, as the shopper's browser loads it before the Pay button shows.
            windows.sent("page", index)
            async with http.get(f"{base}/orders/{biz}/", headers=page_headers) as page:
                html = await page.text()
            windows.answered("page", index)
            if page.status != 200 or 'id="payment-status"' not in html:
                error(f"page {page.status}")
                continue
            if mode == "sync":
                decide = asyncio.ensure_future(decide_when_found(http, biz))
                windows.sent("pay", index)
                try:
                    async with http.post(f"{base}/bench/old-pay/{biz}/", headers=headers) as a:
                        html, status = await a.text(), a.status
                except BaseException:
                    decide.cancel()  # the run ended (or the server failed) mid-Pay
                    raise
                windows.answered("pay", index)
                if 'data-status="paid"' not in html:
                    decide.cancel()  # the payment may never have been made
                    error(f"old pay {status}")
                    continue
                try:
                    await decide
                except RuntimeError as failed:
                    error(str(failed))
                    continue
            else:
                socket = Socket(shopper, biz)
                await socket.open(http, base, base.replace("http://", "ws://"))
                windows.sent("pay", index)
                # Pressed in the socket's first panel, as htmx posts its form.
                form = {"panel": socket.panel_id}
                pay = http.post(f"{base}/orders/{biz}/pay/", data=form, headers=headers)
                async with pay as answer:
                    html = await answer.text()
                windows.answered("pay", index)
                found = CASHIER.search(html)
                if answer.status != 200 or not found:
                    error(f"pay {answer.status}")
                    await socket.close()
                    continue
                try:
                    await approve(http, found.group(1))
                except RuntimeError as failed:
                    error(str(failed))
                    await socket.close()
                    continue
                seen = await socket.wait_for("paid", 60)
                await socket.close()
                if seen is None:
                    error("no paid panel")
                    continue
            windows.complete(time.perf_counter())
        error("ran out of orders")

    async with client(timeout=3600) as http:
        await step("ready")
        start = time.perf_counter()
        windows = Windows(
            start + p["ramp_seconds"] + p["warmup_seconds"], p["window_seconds"], p["windows"]
        )
        watcher = asyncio.ensure_future(payments.run())

        async def shopper(index: int, one: fixtures.Shopper) -> None:
            try:
                await shopper_loop(http, index, one, random.uniform(0, p["ramp_seconds"]))
            except Exception as failed:  # this shopper stops; counted, never hidden
                errors_total.append(type(failed).__name__)
                windows.error(time.perf_counter(), type(failed).__name__)
                log("shopper failed", type(failed).__name__, failed)

        tasks = [asyncio.ensure_future(shopper(i, s)) for i, s in enumerate(shoppers)]
        # The runner samples the processes' CPU over the measured windows.
        await asyncio.sleep(max(0.0, windows.start - time.perf_counter()))
        await step("windows_start")
        await windows.snapshot_in_flight()
        await step("windows_end")
        for task in [*tasks, watcher]:
            task.cancel()
        await asyncio.gather(*tasks, watcher, return_exceptions=True)
    return {
        "windows": windows.results(),
        "errors_outside_windows": len(errors_total) - sum(len(e) for e in windows.errors),
    }


async def waiting(p: dict) -> dict:
    """N shoppers waiting for their result: on a socket (push) or polling every second."""
    base, n, mode = p["base"], p["shoppers"], p["mode"]
    shoppers = await asyncio.to_thread(fixtures.shoppers_create, n, pending=True)
    sockets = [Socket(s, s.orders[0], s.payment_ids[0]) for s in shoppers]
    async with client() as http:
        pollers: list[asyncio.Task] = []
        polls = 0
        if mode == "push":
            failed = await open_all(http, base, sockets)
        else:
            failed = 0

            async def poll(socket: Socket) -> None:
                nonlocal polls
                headers = {"Cookie": cookies(socket.shopper.session_key), "HX-Request": "true"}
                await asyncio.sleep(random.uniform(0, p["interval"]))
                due = time.perf_counter()
                while True:
                    async with http.get(f"{base}/bench/poll/{socket.biz}/", headers=headers) as a:
                        html = await a.text()
                    polls += 1
                    found = STATUS.search(html)
                    if found:
                        socket.seen_at.setdefault(found.group(1), time.perf_counter())
                        socket.changed.set()
                        if found.group(1) == "paid":
                            return
                    due = max(due + p["interval"], time.perf_counter())
                    await asyncio.sleep(due - time.perf_counter())

            pollers = [asyncio.ensure_future(poll(s)) for s in sockets]
            await asyncio.sleep(p["interval"] * 2)  # every poller has started
        await step("waiting", failed=failed)
        polls_before = polls
        await asyncio.sleep(p["idle_seconds"])
        await step("idle_done", polls=polls - polls_before)
        random.shuffle(sockets)
        # Results for some of them: the rate (results / result_seconds) is what loads the server.
        results = min(n, p.get("results", n))
        sent = await send_at_rate(http, base, sockets[:results], results / p["result_seconds"])
        result = await latencies(sent, p["drain_seconds"])
        await step("results_done")
        for task in pollers:
            task.cancel()
        for s in sockets:
            await s.close()
    return {"failed_sockets": failed, "shown": result}


SCENARIOS = {"push": push, "checkout": checkout, "waiting": waiting}


def main() -> None:
    params = json.loads(sys.argv[1])
    result = asyncio.run(SCENARIOS[params["scenario"]](params))
    print("RESULT " + json.dumps(result), flush=True)
    fixtures.database_close()  # the harness waits for this process to exit


if __name__ == "__main__":
    main()
