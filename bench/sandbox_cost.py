"""`python -m bench.sandbox_cost [N]`: CPU time one checkout costs the sandbox, in one process.

What the sandbox serves for each checkout of the benchmark, one checkout after another, through
its ASGI application with its delivery loop running (as `bench.servers.sandbox` serves it):
  - create: the shop's `POST /sandbox/v1/payments`;
  - approve: the shopper's approval at the cashier (`POST /sandbox/cashier/<id>`);
  - deliver: the signed notification the delivery loop then sends to a merchant endpoint (another
    process, answering 200 at once) and records, until the loop sleeps again.
CPU is this process's (every thread), divided by N. Needs DATABASE_URL (PostgreSQL).
"""

import asyncio
import json
import multiprocessing
import os
import socket
import sys
import time

from bench.cpu import Cost
from bench.servers import SECRETS, base_env

os.environ.update(
    {**base_env(os.environ["DATABASE_URL"]), "SANDBOX_ENABLED": "1", "SANDBOX_RETRY_SCALE": "0.01"}
)

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402

from bench.asgi_request import asgi_request  # noqa: E402
from bench.load import CSRF  # noqa: E402
from sandbox.models import DeliveryState, Notification  # noqa: E402
from shop.asgi import application  # noqa: E402

WARM = 20
SETTLE_SECONDS = 0.05  # after an approval: the delivery is sent, recorded, and the loop sleeps


def _answer_200(listener: socket.socket) -> None:
    """The merchant: answers every request 200 on a kept-alive connection (its own process)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    async def main() -> None:
        server = await asyncio.start_server(serve, sock=listener)
        await server.serve_forever()

    asyncio.run(main())


async def checkout(port: int, index: int) -> tuple[float, float, float]:
    """One checkout's three steps; the CPU seconds of each."""
    body = {
        "out_trade_no": f"{os.getpid()}x{index}x{time.time_ns()}",
        "amount": 1999,
        "currency": "CNY",
        "description": "Bench tea",
        "notify_url": f"http://127.0.0.1:{port}/payments/notify/sandbox/",
        "expire_at": int(time.time()) + 900,
    }
    headers = {
        "Authorization": f"Bearer {SECRETS['SANDBOX_API_KEY']}",
        "Content-Type": "application/json",
        "Idempotency-Key": body["out_trade_no"],
    }
    t0 = time.process_time()
    status, answer = await asgi_request(
        application, "POST", "/sandbox/v1/payments", json.dumps(body).encode(), headers
    )
    assert status == 201, (status, answer)
    payment_id = json.loads(answer)["payment_id"]
    t1 = time.process_time()
    status, answer = await asgi_request(
        application,
        "POST",
        f"/sandbox/cashier/{payment_id}",
        f"decision=approve&csrfmiddlewaretoken={CSRF}".encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={CSRF}"},
    )
    assert status == 200, (status, answer)
    t2 = time.process_time()
    await asyncio.sleep(SETTLE_SECONDS)
    return t1 - t0, t2 - t1, time.process_time() - t2


async def main(count: int) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    merchant = multiprocessing.get_context("fork").Process(target=_answer_200, args=(listener,))
    merchant.start()
    port = listener.getsockname()[1]
    try:
        steps = [await checkout(port, i) for i in range(WARM + count)][WARM:]
        delivered = await sync_to_async(
            Notification.objects.filter(
                state=DeliveryState.DELIVERED, payment__notify_url__contains=f":{port}/"
            ).count
        )()
        assert delivered == WARM + count, f"{delivered} of {WARM + count} delivered"
    finally:
        merchant.kill()
    names = ("create", "approve", "deliver")
    totals = [sum(step[i] for step in steps) * 1000 / count for i in range(3)]
    for name, ms in [*zip(names, totals, strict=True), ("total", sum(totals))]:
        print(Cost(ms, None).line(name, "checkout", count))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
