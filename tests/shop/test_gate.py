import asyncio

from shop.gate import Gate


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
    assert not gate.semaphores["shoppers"].locked()


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
    assert not gate.semaphores["machines"].locked()


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
    assert gate.semaphores["machines"]._value == 1
