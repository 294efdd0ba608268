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
    assert gate.semaphore is not None and not gate.semaphore.locked()


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


async def test_the_payment_systems_notifications_never_wait():
    release = asyncio.Event()
    served = []

    async def app(scope, receive, send):
        served.append(scope["path"])
        if scope["path"] == "/":
            await release.wait()

    gate = Gate(app, limit=1)
    page = asyncio.ensure_future(gate({"path": "/"}, None, None))
    queued = asyncio.ensure_future(gate({"path": "/"}, None, None))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(gate({"path": "/payments/notify/sandbox/"}, None, None), 1)
    assert served == ["/", "/payments/notify/sandbox/"]  # the second page still waits
    release.set()
    await asyncio.gather(page, queued)
