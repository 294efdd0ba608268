import asyncio

import pytest

from shop.gate import Gate, Lane


async def test_at_most_the_limit_is_inside_and_the_rest_go_in_arrival_order():
    inside, most, order = 0, 0, []
    release = asyncio.Event()

    async def app(scope, receive, send):
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        order.append(scope["n"])
        await release.wait()
        inside -= 1

    gate = Gate(app, limit=2)
    calls = [asyncio.ensure_future(gate({"path": "/", "n": n}, None, None)) for n in range(5)]
    await asyncio.sleep(0.01)
    assert (inside, order) == (2, [0, 1])
    release.set()
    await asyncio.gather(*calls)
    assert most == 2 and order == [0, 1, 2, 3, 4]


async def test_a_failing_request_gives_its_place_back():
    async def app(scope, receive, send):
        raise RuntimeError("view crashed")

    gate = Gate(app, limit=1)
    for _ in range(3):  # would wait forever if the first failure kept the only place
        try:
            await asyncio.wait_for(gate({"path": "/"}, None, None), 1)
        except RuntimeError:
            pass
    assert gate.lanes["shoppers"].inside == 0


async def test_zero_means_no_limit():
    inside = 0
    release = asyncio.Event()

    async def app(scope, receive, send):
        nonlocal inside
        inside += 1
        await release.wait()

    gate = Gate(app, limit=0)
    calls = [asyncio.ensure_future(gate({"path": "/"}, None, None)) for _ in range(100)]
    await asyncio.sleep(0.01)
    assert inside == 100
    release.set()
    await asyncio.gather(*calls)


NOTIFY = "/payments/notify/sandbox/"


async def test_the_payment_systems_notifications_never_wait_behind_shoppers():
    release = asyncio.Event()
    served = []

    async def app(scope, receive, send):
        served.append(scope["path"])
        if scope["path"] == "/":
            await release.wait()

    gate = Gate(app, limit=1, machine_limit=1)
    page = asyncio.ensure_future(gate({"path": "/"}, None, None))
    queued = asyncio.ensure_future(gate({"path": "/"}, None, None))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(gate({"path": NOTIFY}, None, None), 1)
    assert served == ["/", NOTIFY]  # the second page still waits
    release.set()
    await asyncio.gather(page, queued)


async def test_notifications_wait_for_each_other_in_their_own_lane_and_shoppers_do_not():
    release = asyncio.Event()
    served = []

    async def app(scope, receive, send):
        served.append((scope["path"], scope["n"]))
        if scope["path"] == NOTIFY:
            await release.wait()

    gate = Gate(app, limit=1, machine_limit=2)
    notices = [asyncio.ensure_future(gate({"path": NOTIFY, "n": n}, None, None)) for n in range(3)]
    await asyncio.sleep(0.01)
    assert served == [(NOTIFY, 0), (NOTIFY, 1)]  # the third waits for a place among them
    await asyncio.wait_for(gate({"path": "/", "n": "page"}, None, None), 1)  # a shopper does not
    release.set()
    await asyncio.gather(*notices)
    assert served[2:] == [("/", "page"), (NOTIFY, 2)]
    assert gate.lanes["machines"].inside == 0


async def test_the_sandboxs_api_holds_no_thread_and_waits_for_no_lane():
    """Its views are async (they await the database and, for the old mode, the shopper): the
    lane that bounds threads does not apply, or the old mode's blocked calls would queue there."""
    release = asyncio.Event()
    inside = 0

    async def app(scope, receive, send):
        nonlocal inside
        inside += 1
        await release.wait()

    gate = Gate(app, limit=1, machine_limit=1)
    calls = [
        asyncio.ensure_future(gate({"path": "/sandbox/v1/payments/sync"}, None, None))
        for _ in range(5)
    ]
    await asyncio.sleep(0.01)
    assert inside == 5
    release.set()
    await asyncio.gather(*calls)


async def test_a_notification_waits_for_a_place_only_so_long(monkeypatch):
    """The lane spreads a burst; it never holds a result back for long, however slow the ones
    inside are (and it gives back only the places it took)."""
    monkeypatch.setattr("shop.gate.MACHINE_PATIENCE", 0.05)
    release = asyncio.Event()
    served = []

    async def app(scope, receive, send):
        served.append(scope["n"])
        if scope["n"] == 0:
            await release.wait()

    gate = Gate(app, limit=1, machine_limit=1)
    first = asyncio.ensure_future(gate({"path": NOTIFY, "n": 0}, None, None))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(gate({"path": NOTIFY, "n": 1}, None, None), 1)  # in after 0.05 s
    assert served == [0, 1] and not first.done()
    release.set()
    await first
    assert gate.lanes["machines"].inside == 0


async def test_requests_that_act_go_in_before_those_that_look():
    """A shopper who pressed Pay has started to pay: under load, a Pay (or a buy) goes in before
    the pages that wait, each kind in arrival order."""
    served = []
    release = asyncio.Event()

    async def app(scope, receive, send):
        served.append(scope["n"])
        if scope["n"] == "page0":
            await release.wait()

    def request(n: str):
        method = "POST" if n.startswith("pay") else "GET"
        return asyncio.ensure_future(gate({"path": "/", "method": method, "n": n}, None, None))

    gate = Gate(app, limit=1)
    calls = [request("page0")]
    await asyncio.sleep(0.01)
    calls += [request(n) for n in ("page1", "pay0", "page2", "pay1")]
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(*calls)
    assert served == ["page0", "pay0", "pay1", "page1", "page2"]
    assert gate.lanes["shoppers"].inside == 0


async def test_a_request_that_stops_waiting_leaves_no_place_taken():
    release = asyncio.Event()

    async def app(scope, receive, send):
        await release.wait()

    gate = Gate(app, limit=1)
    holder = asyncio.ensure_future(gate({"path": "/", "n": 0}, None, None))
    await asyncio.sleep(0.01)
    gone = asyncio.ensure_future(gate({"path": "/", "method": "POST"}, None, None))
    waiting = asyncio.ensure_future(gate({"path": "/"}, None, None))
    await asyncio.sleep(0.01)
    gone.cancel()  # the browser left while it waited
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, waiting), 1)
    assert gone.cancelled() and gate.lanes["shoppers"].inside == 0


async def test_a_place_given_to_a_request_that_is_gone_goes_to_the_next_in_line():
    lane = Lane(1)
    assert await lane.enter(acts=False)
    gone = asyncio.ensure_future(lane.enter(acts=True))
    waiting = asyncio.ensure_future(lane.enter(acts=False))
    await asyncio.sleep(0.01)
    lane.leave()  # the place goes to the first in line...
    gone.cancel()  # ...which is cancelled before it could go in
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await asyncio.wait_for(waiting, 1) and lane.inside == 1
    lane.leave()
    assert lane.inside == 0
