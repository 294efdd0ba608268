"""The load generator, always a process of its own: `python -m bench.load '<json params>'`.

It makes its shoppers in the database, drives the servers over HTTP (aiohttp) and WebSockets
(websockets), and talks to `bench.run` over its standard streams: it prints `STEP <name> <json>`
when a phase is reached, waits for a line back (the runner samples the servers meanwhile), and ends
with `RESULT <json>`. Its own log goes to standard error.

No kept load tool fits these cells: each figure ties an HTTP request to a WebSocket message (a
notification to its push) or chains one shopper's requests across servers and a socket.
"""

import asyncio
import gc
import itertools
import json
import os
import random
import re
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
django.setup()

import aiohttp  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from bench import fixtures  # noqa: E402

# Any 32 letters or digits are a valid CSRF secret; the same in the cookie and the header is what
# a browser holding the cookie sends.
CSRF = "benchbenchbenchbenchbenchbench32"
STATUS = re.compile(r'data-status="(\w+)"')
CASHIER = re.compile(r"/sandbox/cashier/(pay_[0-9a-f]{24})")
PANEL_ID = re.compile(r'name="panel" value="([\w-]+)"')
CONNECT_AT_ONCE = 50


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary_ms(seconds: list[float]) -> dict:
    return {
        "n": len(seconds),
        "p50": percentile(seconds, 50) * 1000,
        "p99": percentile(seconds, 99) * 1000,
        "max": max(seconds) * 1000 if seconds else float("nan"),
    }


async def step(name: str, **info: object) -> None:
    """Tell the runner a phase is reached; go on once it has taken its samples."""
    print(f"STEP {name} {json.dumps(info)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def cookies(session_key: str) -> str:
    return f"sessionid={session_key}; csrftoken={CSRF}"


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=600),
    )


class Socket:
    """One checkout page's status socket on server `base`: when it first saw each status, and the
    panel id its Pay form names."""

    def __init__(self, shopper: fixtures.Shopper, base: str, biz: str = "", payment_id: str = ""):
        self.shopper, self.base = shopper, base
        self.biz = biz or shopper.orders[0]
        self.payment_id = payment_id or shopper.payment_ids[0]
        self.status = self.panel_id = ""
        self.seen: dict[str, float] = {}
        self.changed = asyncio.Event()
        self.ws = self.reader = None

    async def open(self) -> None:
        self.ws = await connect(
            self.base.replace("http", "ws", 1) + f"/ws/order/{self.biz}/",
            origin=self.base,
            additional_headers={"Cookie": cookies(self.shopper.session_key)},
            ping_interval=None,  # browsers send no pings
            open_timeout=60,
            close_timeout=2,
        )
        self.reader = asyncio.ensure_future(self._read())
        if await self.wait_for("", 60) is None:
            raise TimeoutError("no first panel")

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                found = STATUS.search(message)
                if found:
                    self.status = found.group(1)
                    panel = PANEL_ID.search(message)
                    self.panel_id = panel.group(1) if panel else ""
                    self.seen.setdefault(self.status, time.perf_counter())
                    self.changed.set()
        except Exception as error:  # a socket the server dropped: its pushes count as lost
            log("socket closed", type(error).__name__, error)

    async def wait_for(self, status: str, timeout: float) -> float | None:
        """When `status` was first seen (perf_counter; "" for any), or None if not in time."""
        deadline = time.perf_counter() + timeout
        while (status not in self.seen) if status else not self.seen:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), deadline - time.perf_counter())
            except TimeoutError:
                return None
        return self.seen[status] if status else min(self.seen.values())

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()


async def open_all(sockets: list[Socket]) -> int:
    """Open sockets, CONNECT_AT_ONCE at a time; return how many failed."""
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def one(socket: Socket) -> int:
        async with gate:
            try:
                await socket.open()
                return 0
            except Exception as error:  # counted and reported, never hidden
                log("socket failed", type(error).__name__, error)
                return 1

    failed = sum(await asyncio.gather(*(one(s) for s in sockets)))
    # The fleet lives until the end: kept out of this process's full collections, which would
    # pause it (and charge the pause to the server's latency).
    gc.freeze()
    return failed


async def close_all(sockets: list[Socket]) -> None:
    gate = asyncio.Semaphore(200)

    async def one(socket: Socket) -> None:
        async with gate:
            await socket.close()

    await asyncio.gather(*(one(s) for s in sockets), return_exceptions=True)


async def notify(http: aiohttp.ClientSession, base: str, socket: Socket) -> tuple[int, float]:
    """POST a signed `payment.succeeded` for the socket's order; its status and answer time."""
    body = fixtures.notice(socket.biz, socket.payment_id)
    start = time.perf_counter()
    url = f"{base}/payments/notify/sandbox/"
    async with http.post(url, data=body, headers=fixtures.signed(body)) as answer:
        await answer.read()
        return answer.status, time.perf_counter() - start


def other(bases: list[str], base: str) -> str:
    """With several servers, the notification goes to one that does not hold the socket, so
    every push crosses the channel layer between processes."""
    return bases[(bases.index(base) + 1) % len(bases)]


async def burst(http, bases: list[str], sockets: list[Socket], rate: float, drain: float) -> dict:
    """One notification per socket, `rate` a second; latency from the POST to the paid panel on
    the socket. Lost: not seen within `drain` s after the last POST."""
    sent = []
    start = time.perf_counter()
    for i, socket in enumerate(sockets):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(notify(http, other(bases, socket.base), socket))
        sent.append((socket, time.perf_counter(), task))
    deadline = time.perf_counter() + drain
    seconds, lost = [], 0
    for socket, sent_at, _ in sent:
        seen = await socket.wait_for("paid", deadline - time.perf_counter())
        if seen is None:
            lost += 1
        else:
            seconds.append(seen - sent_at)
    answers = await asyncio.gather(*(task for _, _, task in sent), return_exceptions=True)
    answered = [a[1] for a in answers if isinstance(a, tuple) and a[0] == 200]
    return {
        **summary_ms(seconds),
        "lost": lost,
        "notify_errors": len(answers) - len(answered),
        "answer_p99": percentile(answered, 99) * 1000,
        "latencies_ms": [round(s * 1000, 3) for s in seconds],
    }


# --- scenarios ----------------------------------------------------------------------------------


async def push(p: dict) -> dict:
    """Push latency and memory per idle socket: one fleet of waiting orders' sockets, spread over
    the servers, grown to each size in parts (the runner samples RSS after each), then bursts of
    notifications at the largest size, the first not counted.

    With a `herd`, that many more waiting orders fall due for the reconciler together before the
    bursts, which start once its first answer is in; the runner gets how many it has answered at
    the bursts' start and end."""
    bases, sizes, parts, warm = p["bases"], p["sockets"], p["memory_parts"], p["warm"]
    per_burst = round(p["rate"] * p["burst_seconds"])
    shoppers = await asyncio.to_thread(fixtures.shoppers_create, warm + sizes[-1], pending=True)
    herd = await asyncio.to_thread(fixtures.herd_create, p["herd"]) if p.get("herd") else []
    sockets = [Socket(s, bases[i % len(bases)]) for i, s in enumerate(shoppers)]
    warmers, fleet = sockets[:warm], sockets[warm:]
    async with client() as http:
        # Sockets and pushes before the memory baseline: every code path loaded, every
        # connection (database, Redis) opened.
        failed = await open_all(warmers)
        await burst(http, bases, warmers, p["rate"], p["drain_seconds"])
        await step("baseline", sockets=0)
        opened = 0
        for size in sizes:
            start = opened
            for part in range(1, parts + 1):
                end = start + (size - start) * part // parts
                failed += await open_all(fleet[opened:end])
                opened = end
                await step("opened", sockets=opened, size=size)
        waiting = iter([s for s in fleet if s.status == "pending"])
        bursts, herd_info = [], {}
        if herd:
            await asyncio.to_thread(fixtures.herd_due, herd)
            herd_info["reconciled"] = await herd_started(herd)
        await step("bursts_start", **herd_info)
        for number in range(p["bursts"] + 1):
            batch = list(itertools.islice(waiting, per_burst))
            result = await burst(http, bases, batch, p["rate"], p["drain_seconds"])
            log("burst", number, {k: v for k, v in result.items() if k != "latencies_ms"})
            if number:  # the first after the fleet grew is not counted
                bursts.append(result)
        if herd:
            herd_info["reconciled"] = await asyncio.to_thread(fixtures.herd_heard, herd)
        await step("bursts_end", notifications=per_burst * (p["bursts"] + 1), **herd_info)
        await close_all(sockets)
    return {"failed_sockets": failed, "bursts": bursts}


async def herd_started(herd: list[str], timeout: float = 30) -> int:
    """Once the reconciler has the payment system's first answer about the herd: how many."""
    deadline = time.perf_counter() + timeout
    while not (heard := await asyncio.to_thread(fixtures.herd_heard, herd)):
        if time.perf_counter() > deadline:
            raise TimeoutError("the reconciler did not start on the herd")
        await asyncio.sleep(0.1)
    return heard


async def steps(p: dict) -> dict:
    """A checkout taken apart: `count` shoppers, one request at a time, step by step (each page,
    then each socket, each Pay, each notification with its push), so that the runner's samples
    between the steps give the servers' CPU per step. A few shoppers go first, not counted."""
    base, count, warm = p["bases"][0], p["count"], p["warm"]
    shoppers = await asyncio.to_thread(fixtures.shoppers_create, warm + count)
    sockets = [Socket(s, base) for s in shoppers]
    async with client() as http:

        async def page(s: Socket) -> None:
            headers = {"Cookie": cookies(s.shopper.session_key)}
            async with http.get(f"{base}/orders/{s.biz}/", headers=headers) as answer:
                if answer.status != 200 or 'id="payment-status"' not in await answer.text():
                    raise RuntimeError(f"page {answer.status}")

        async def pay(s: Socket) -> None:
            headers = {
                "Cookie": cookies(s.shopper.session_key),
                "X-CSRFToken": CSRF,
                "HX-Request": "true",
            }
            url, form = f"{base}/orders/{s.biz}/pay/", {"panel": s.panel_id}
            async with http.post(url, data=form, headers=headers) as answer:
                found = CASHIER.search(await answer.text())
                if answer.status != 200 or not found:
                    raise RuntimeError(f"pay {answer.status}")
            s.payment_id = found.group(1)

        async def notification(s: Socket) -> None:
            status, _ = await notify(http, base, s)
            if status != 200 or await s.wait_for("paid", 10) is None:
                raise RuntimeError(f"notification {status}, status {s.status}")

        plan = [("page", page), ("connect", Socket.open), ("pay", pay), ("push", notification)]
        for name, action in plan:
            for s in sockets[:warm]:
                await action(s)
        await close_all(sockets[:warm])
        await step("start")
        for name, action in plan:
            for s in sockets[warm:]:
                await action(s)
            await step(name, count=count)
        await close_all(sockets)
    return {"count": count}


class PaymentsFound:
    """When each awaited order's payment exists at the sandbox, for the old mode's shoppers, whose
    blocked Pay says nothing until they decide: one query over all of them every `interval` s,
    straight from the sandbox's table, rather than each shopper polling its API."""

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
            payments = Payment.objects.filter(out_trade_no__in=bizs)
            return list(payments.values_list("out_trade_no", "id"))

        while True:
            await asyncio.sleep(self.interval)
            if self.waiting:
                for biz, payment_id in await asyncio.to_thread(found, list(self.waiting)):
                    future = self.waiting.get(biz)
                    if future is not None and not future.done():
                        future.set_result(payment_id)


class Windows:
    """Per measurement window: checkouts completed, Pays answered (and those still waiting at its
    end, counted with the time they had waited), errors."""

    def __init__(self, start: float, width: float, count: int) -> None:
        self.start, self.width, self.count = start, width, count
        self.completed = [0] * count
        self.errors = [0] * count
        self.answers: list[list[float]] = [[] for _ in range(count)]
        self.unanswered: list[list[float]] = [[] for _ in range(count)]
        self.in_flight: dict[int, float] = {}  # shopper -> when its Pay was sent

    def index(self, when: float) -> int | None:
        i = int((when - self.start) // self.width)
        return i if when >= self.start and i < self.count else None

    def pay_sent(self, shopper: int) -> None:
        self.in_flight[shopper] = time.perf_counter()

    def pay_answered(self, shopper: int) -> None:
        sent, now = self.in_flight.pop(shopper), time.perf_counter()
        if (i := self.index(now)) is not None:
            self.answers[i].append(now - sent)

    def count_in(self, counts: list[int]) -> None:
        if (i := self.index(time.perf_counter())) is not None:
            counts[i] += 1

    async def close_each(self) -> None:
        for i in range(self.count):
            end = self.start + (i + 1) * self.width
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            self.unanswered[i] = [end - sent for sent in self.in_flight.values()]

    def results(self) -> list[dict]:
        return [
            {
                "completed": self.completed[i],
                "per_second": self.completed[i] / self.width,
                "pay": summary_ms(self.answers[i] + self.unanswered[i]),
                "pay_unanswered": len(self.unanswered[i]),
                "errors": self.errors[i],
            }
            for i in range(self.count)
        ]


async def checkout(p: dict) -> dict:
    """Shoppers in a closed loop: load the order's page, Pay, decide `think` s after the payment
    exists (approve at the sandbox's cashier), see the result (sync: in Pay's answer; callback: on
    the page's socket, opened before Pay), start over with the next order. Each request goes to
    the next server in turn, as a round-robin proxy sends it.

    They arrive over `ramp` s; after `warmup` s more, `windows` windows of `window` s are
    measured, and the run ends."""
    bases, sandbox, mode, think = p["bases"], p["sandbox"], p["mode"], p["think_seconds"]
    turn = itertools.count()
    shoppers = await asyncio.to_thread(
        fixtures.shoppers_create, p["shoppers"], orders_each=p["orders_each"]
    )
    closed, given_up = await asyncio.to_thread(fixtures.sandbox_leftovers_drop)
    log(f"checkout: closed {closed} payments and gave up {given_up} notices left from before")
    payments = PaymentsFound()

    def server() -> str:
        return bases[next(turn) % len(bases)]

    async def approve(http, payment_id: str) -> None:
        await asyncio.sleep(think)
        url = f"{sandbox}/sandbox/cashier/{payment_id}"
        form = {"decision": "approve", "csrfmiddlewaretoken": CSRF}
        async with http.post(url, data=form, headers={"Cookie": f"csrftoken={CSRF}"}) as answer:
            await answer.read()
            if answer.status != 200:
                raise RuntimeError(f"cashier {answer.status}")

    async def decide_when_found(http, biz: str) -> None:
        await approve(http, await payments.payment_id(biz))

    async def one_checkout(http, index: int, shopper: fixtures.Shopper, biz: str) -> None:
        cookie = {"Cookie": cookies(shopper.session_key)}
        async with http.get(f"{server()}/orders/{biz}/", headers=cookie) as page:
            if page.status != 200 or 'id="payment-status"' not in await page.text():
                raise RuntimeError(f"page {page.status}")
        headers = {**cookie, "X-CSRFToken": CSRF, "HX-Request": "true"}
        if mode == "sync":
            decision = asyncio.ensure_future(decide_when_found(http, biz))
            windows.pay_sent(index)
            try:
                async with http.post(f"{server()}/bench/old-pay/{biz}/", headers=headers) as a:
                    html, status = await a.text(), a.status
                windows.pay_answered(index)
                if 'data-status="paid"' not in html:
                    raise RuntimeError(f"old pay {status}")
                await decision
            finally:
                decision.cancel()
            return
        socket = Socket(shopper, server(), biz)
        try:
            await socket.open()
            windows.pay_sent(index)
            form = {"panel": socket.panel_id}  # pressed in the socket's panel, as htmx posts it
            async with http.post(f"{server()}/orders/{biz}/pay/", data=form, headers=headers) as a:
                html, status = await a.text(), a.status
            windows.pay_answered(index)
            found = CASHIER.search(html)
            if status != 200 or not found:
                raise RuntimeError(f"pay {status}")
            await approve(http, found.group(1))
            if await socket.wait_for("paid", 60) is None:
                raise RuntimeError("no paid panel")
        finally:
            await socket.close()

    async def shopper_loop(http, index: int, shopper: fixtures.Shopper) -> None:
        await asyncio.sleep(random.uniform(0, p["ramp_seconds"]))
        for biz in shopper.orders:
            try:
                await one_checkout(http, index, shopper, biz)
            except Exception as error:  # this order fails, counted; the shopper goes on
                log("checkout failed", type(error).__name__, error)
                windows.in_flight.pop(index, None)
                windows.count_in(windows.errors)
                continue
            windows.count_in(windows.completed)
        log("shopper ran out of orders")

    async with client() as http:
        await step("ready")
        start = time.perf_counter() + p["ramp_seconds"] + p["warmup_seconds"]
        windows = Windows(start, p["window_seconds"], p["windows"])
        watcher = asyncio.ensure_future(payments.run())
        tasks = [asyncio.ensure_future(shopper_loop(http, i, s)) for i, s in enumerate(shoppers)]
        await asyncio.sleep(max(0.0, windows.start - time.perf_counter()))
        await step("windows_start")
        await windows.close_each()
        await step("windows_end")
        for task in [*tasks, watcher]:
            task.cancel()
        await asyncio.gather(*tasks, watcher, return_exceptions=True)
    return {"windows": windows.results()}


SCENARIOS = {"push": push, "steps": steps, "checkout": checkout}


def main() -> None:
    params = json.loads(sys.argv[1])
    result = asyncio.run(SCENARIOS[params["scenario"]](params))
    print("RESULT " + json.dumps(result), flush=True)
    fixtures.database_close()


if __name__ == "__main__":
    main()
