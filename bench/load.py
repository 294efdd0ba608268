"""The load generator, always a process of its own: `python -m bench.load '<json params>'`.

It makes its shoppers in the database, drives the servers over HTTP and WebSockets, and talks to
`bench.run` over its standard streams: it prints `STEP <name>` when a phase is reached (the runner
then samples the server's memory and CPU) and waits for a line back before it goes on; its last
line is `RESULT <json>`. Its own logs go to standard error.
"""

import asyncio
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
from bench.stats import summary_ms  # noqa: E402

# Any 32 letters or digits are a valid CSRF secret; sending the same in the cookie and the header
# (or form) is what a browser holding the cookie does.
CSRF = "benchbenchbenchbenchbenchbench32"
STATUS = re.compile(r'data-status="(\w+)"')
CASHIER = re.compile(r"/sandbox/cashier/(pay_[0-9a-f]{24})")
CONNECT_AT_ONCE = 50


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


async def step(name: str, **info: object) -> None:
    """Tell the runner a phase is reached and wait until it has taken its samples."""
    print(f"STEP {name} {json.dumps(info)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def cookies(session_key: str) -> str:
    return f"sessionid={session_key}; csrftoken={CSRF}"


class Socket:
    """One checkout page's socket: remembers the status of each panel it receives, and when."""

    def __init__(self, shopper: fixtures.Shopper, biz: str, payment_id: str = "") -> None:
        self.shopper, self.biz, self.payment_id = shopper, biz, payment_id
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.status = ""
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
    errors = sum(1 for s in statuses if s != 200)
    return {**summary_ms(seconds), "lost": lost, "notify_errors": errors}


# --- scenarios ----------------------------------------------------------------------------------


async def push(p: dict) -> dict:
    """Push latency: one fleet of sockets grown to each size in turn, bursts at each rate there.

    The fleet is never closed between sizes or rates: reconnecting thousands of sockets is what
    made a full run take half an hour. Sockets a burst used stay open (paid) and idle.
    """
    base, sizes = p["base"], sorted(p["sockets"])
    shoppers = await asyncio.to_thread(fixtures.shoppers_create, sizes[-1], pending=True)
    sockets = [Socket(s, s.orders[0], s.payment_ids[0]) for s in shoppers]
    async with client() as http:
        warm = min(p.get("warm", 20), sizes[0] // 2)
        failed = await open_all(http, base, sockets[:warm])
        await step("warm", sockets=warm)
        opened, fresh, used = warm, [], []
        bursts, failures = [], {}
        for size in sizes:
            failed += await open_all(http, base, sockets[opened:size])
            fresh += [s for s in sockets[opened:size] if s.status == "pending"]
            if opened == warm:
                fresh += [s for s in sockets[:warm] if s.status == "pending"]
            opened = size
            failures[size] = failed
            await step(f"open_{size}", sockets=size, failed=failed)
            for rate in p["rates"]:
                for repeat in range(p["repeats"]):
                    count = max(1, int(rate * p["burst_seconds"]))
                    if len(fresh) < count:
                        # Put used orders back to waiting and reopen their sockets (not measured).
                        await asyncio.to_thread(
                            fixtures.orders_reset_pending, [s.biz for s in used]
                        )
                        for s in used:
                            await s.close()
                        await open_all(http, base, used)
                        fresh += [s for s in used if s.status == "pending"]
                        used = []
                    batch, fresh = fresh[:count], fresh[count:]
                    used += batch
                    sent = await send_at_rate(http, base, batch, rate)
                    result = await latencies(sent, p["drain_seconds"])
                    bursts.append({"sockets": size, "rate": rate, "repeat": repeat, **result})
                    log("push", size, rate, repeat, result)
            await step(f"bursts_{size}")
        for s in sockets:
            await s.close()
    return {"failed_sockets": failures, "bursts": bursts}


async def checkout(p: dict) -> dict:
    """Shoppers in a closed loop: open the page, Pay, decide after `think` s, see the result."""
    base, sandbox, mode = p["base"], p["sandbox"], p["mode"]
    think, duration = p["think_seconds"], p["duration"]
    shoppers = await asyncio.to_thread(
        fixtures.shoppers_create, p["shoppers"], orders_each=p["orders_each"]
    )
    pay_seconds: list[float] = []
    in_flight: dict[int, float] = {}
    completed: list[float] = []
    errors: list[str] = []

    async def approve(http, biz: str, payment_id: str) -> None:
        """Decide `think` s after the payment exists (the shopper cannot pay before that)."""
        while not payment_id:  # the old mode: wait for the payment the blocked worker starts
            async with http.get(
                f"{sandbox}/sandbox/v1/payments",
                params={"out_trade_no": biz},
                headers={"Authorization": f"Bearer {p['api_key']}"},
            ) as answer:
                if answer.status == 200:
                    payment_id = (await answer.json())["payment_id"]
                    break
            await asyncio.sleep(0.2)
        await asyncio.sleep(think)
        async with http.post(
            f"{sandbox}/sandbox/cashier/{payment_id}",
            data={"decision": "approve", "csrfmiddlewaretoken": CSRF},
            headers={"Cookie": f"csrftoken={CSRF}"},
        ) as answer:
            await answer.read()
            if answer.status != 200:
                errors.append(f"cashier {answer.status}")

    async def shopper_loop(http, index: int, shopper: fixtures.Shopper) -> None:
        await asyncio.sleep(random.uniform(0, think))  # arrivals spread, not a stampede
        headers = {
            "Cookie": cookies(shopper.session_key),
            "X-CSRFToken": CSRF,
            "HX-Request": "true",
        }
        for biz in shopper.orders:
            t0 = time.perf_counter()
            in_flight[index] = t0
            if mode == "sync":
                decide = asyncio.ensure_future(approve(http, biz, ""))
                try:
                    async with http.post(f"{base}/bench/old-pay/{biz}/", headers=headers) as a:
                        html, status = await a.text(), a.status
                except BaseException:
                    decide.cancel()  # the run ended (or the server failed) mid-Pay
                    raise
                pay_seconds.append(time.perf_counter() - t0)
                del in_flight[index]
                await decide
                if 'data-status="paid"' not in html:
                    errors.append(f"old pay {status}")
                    continue
            else:
                socket = Socket(shopper, biz)
                await socket.open(http, base, base.replace("http://", "ws://"))
                t0 = time.perf_counter()
                in_flight[index] = t0
                async with http.post(f"{base}/orders/{biz}/pay/", headers=headers) as answer:
                    html = await answer.text()
                pay_seconds.append(time.perf_counter() - t0)
                del in_flight[index]
                found = CASHIER.search(html)
                if answer.status != 200 or not found:
                    errors.append(f"pay {answer.status}")
                    await socket.close()
                    continue
                await approve(http, biz, found.group(1))
                seen = await socket.wait_for("paid", 60)
                await socket.close()
                if seen is None:
                    errors.append("no paid panel")
                    continue
            completed.append(time.perf_counter())
        errors.append("ran out of orders")

    async with client(timeout=3600) as http:
        await step("ready")
        start = time.perf_counter()
        tasks = [asyncio.ensure_future(shopper_loop(http, i, s)) for i, s in enumerate(shoppers)]
        await asyncio.sleep(duration)
        end = time.perf_counter()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # A Pay still unanswered at the end took at least this long: counted, so p99 is not flattered.
    censored = [end - t0 for t0 in in_flight.values()]
    done = [t for t in completed if t <= end]
    return {
        "completed": len(done),
        "per_second": len(done) / (end - start),
        "pay": summary_ms(pay_seconds + censored),
        "pay_unanswered": len(censored),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
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


if __name__ == "__main__":
    main()
