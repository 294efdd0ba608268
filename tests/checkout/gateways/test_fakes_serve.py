"""The fakes as local servers (`python -m tests.fakes.serve`, `make fakes`), started as a subprocess
the way a browser test or a shop owner starts them: the env file they write is read with honcho's
own parser and turned into the adapters' configuration by their Config classes; their shopper
pages are driven over HTTP; every notice they send lands on a small stand-in for the shop's notify
routes, and the adapters verify it."""

import asyncio
import json
import os
import socket
import stat
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest
import stripe
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import override_settings
from multidict import CIMultiDict

from checkout.gateways.alipay import AlipayConfig, AlipayGateway
from checkout.gateways.base import NoticeRejected, PaymentNotice, PaymentRequest
from checkout.gateways.stripe import StripeConfig, StripeGateway
from checkout.gateways.wechatpay import WechatPayConfig, WechatPayGateway
from checkout.models import PaymentStatus
from tests.fakes.process import Served, launch, serve
from tests.servers import PROVIDER_ENV

ALIPAY_ROUTE = "/payments/notify/alipay/"
WECHATPAY_ROUTE = "/payments/notify/wechatpay/"
STRIPE_ROUTE = "/payments/notify/stripe/"
SETTINGS = PROVIDER_ENV  # every one of the shop's provider settings
PRIVATE_KEY_FILES = ("ALIPAY_PRIVATE_KEY_FILE", "WECHATPAY_PRIVATE_KEY_FILE")
PUBLIC_KEY_FILES = ("ALIPAY_PUBLIC_KEY_FILE", "WECHATPAY_PUBLIC_KEY_FILE")


# The shop's notify routes, stood in for.


@dataclass
class Received:
    path: str
    headers: CIMultiDict
    body: bytes
    notice: PaymentNotice | None  # as the adapter verified it on arrival
    answered: int


@dataclass
class Receiver:
    """Records every POST and answers it as the shop would (the adapter's verdict, its
    notice_answer), except that it answers 500 to the next `fail[biz]` notices about `biz`."""

    url: str = ""
    gateways: dict[str, Any] = field(default_factory=dict)
    fail: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: CIMultiDict, body: bytes) -> tuple[int, bytes, str]:
        gateway = self.gateways.get(path)
        if gateway is None:
            return 404, b"no such route", "text/plain"
        try:
            notice = gateway.verify_notice(headers=headers, body=body)
        except NoticeRejected:
            notice = None
        with self.lock:
            biz = notice.payment.biz if notice else ""
            if notice and self.fail[biz] > 0:
                self.fail[biz] -= 1
                answer = (500, b"the shop is down", "text/plain")
            else:
                # The shop's statuses: 200 once recorded, 400 for a notice it refuses.
                answer = gateway.notice_answer(status=200 if notice else 400)
            self.received.append(Received(path, headers, body, notice, answer[0]))
        return answer

    def about(self, biz: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.notice and r.notice.payment.biz == biz]

    def wait_for(self, biz: str, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(found := self.about(biz)) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} notices about {biz}"
            time.sleep(0.05)
        return found


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, content, content_type = receiver.answer(
                self.path, CIMultiDict(self.headers.items()), body
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


# The fakes' process.


@pytest.fixture(scope="module")
def served(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = serve(
        tmp_path_factory.mktemp("fakes"),
        "--stripe-webhook-url",
        receiver.url + STRIPE_ROUTE,
        "--retry-delays",
        "0.3,0.3",
    )
    yield served
    assert served.stop() == 0, served.log.read_text()


@dataclass
class Gateways:
    alipay: AlipayGateway
    wechatpay: WechatPayGateway
    stripe: StripeGateway


@pytest.fixture(scope="module")
def gateways(served: Served, receiver: Receiver) -> Gateways:
    """The adapters as the shop would make them from the env file."""
    with override_settings(**served.env):
        found = Gateways(
            AlipayGateway(AlipayConfig.from_settings()),
            WechatPayGateway(WechatPayConfig.from_settings()),
            StripeGateway(StripeConfig.from_settings()),
        )
    receiver.gateways.update(
        {ALIPAY_ROUTE: found.alipay, WECHATPAY_ROUTE: found.wechatpay, STRIPE_ROUTE: found.stripe}
    )
    return found


def order(receiver: Receiver, route: str, amount: int = 8800) -> PaymentRequest:
    biz = uuid4().hex
    return PaymentRequest(
        biz=biz,
        amount=amount,
        currency="CNY",
        description="Ceramic mug",
        notify_url=receiver.url + route,
        expire_at=datetime.now(UTC) + timedelta(minutes=15),
        return_url=f"http://127.0.0.1:8000/orders/{biz}/",
    )


async def fetch(url: str, action: str | None = None, **options: Any) -> tuple[int, str]:
    """GET a page, or POST its form's `action` button (following the redirect, by default)."""
    async with aiohttp.ClientSession() as client:
        if action is None:
            response = await client.get(url, **options)
        else:
            response = await client.post(url, data={"action": action}, **options)
        async with response:
            return response.status, await response.text()


def button(action: str, label: str) -> str:
    return f'<button type="submit" name="action" value="{action}">{label}</button>'


def status_of(page: str) -> str:
    return page.split('id="status" data-status="', 1)[1].split('"', 1)[0]


# The env file.


def test_the_env_file_holds_every_setting_for_the_three_providers(served):
    env = served.env
    assert set(env) == SETTINGS
    assert env["PAYMENT_PROVIDERS"] == "sandbox,alipay,wechatpay,stripe"
    assert env["ALIPAY_GATEWAY_URL"] == served.ready["alipay"] + "/gateway.do"
    assert env["WECHATPAY_API_URL"] == served.ready["wechatpay"]
    assert env["STRIPE_API_URL"] == served.ready["stripe"]
    ports = {env[name].split(":")[2].split("/")[0] for name in SETTINGS if name.endswith("_URL")}
    assert len(ports) == 3 and "0" not in ports
    for name in PRIVATE_KEY_FILES + PUBLIC_KEY_FILES:
        path = Path(env[name])
        assert path.is_absolute() and path.is_relative_to(served.keys.resolve()), name
    for name in PRIVATE_KEY_FILES:
        path = Path(env[name])
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    for name in PUBLIC_KEY_FILES:
        key = serialization.load_pem_public_key(Path(env[name]).read_bytes())
        assert isinstance(key, rsa.RSAPublicKey)
    assert stat.S_IMODE(served.env_file.stat().st_mode) == 0o600


def test_the_adapters_config_classes_take_the_env_file_as_it_is(served):
    env = served.env
    with override_settings(**env):
        alipay = AlipayConfig.from_settings()
        wechatpay = WechatPayConfig.from_settings()
        stripe_config = StripeConfig.from_settings()
    assert alipay.gateway_url == env["ALIPAY_GATEWAY_URL"] and alipay.app_id == env["ALIPAY_APP_ID"]
    assert wechatpay.api_url == env["WECHATPAY_API_URL"]
    assert wechatpay.public_key_id == env["WECHATPAY_PUBLIC_KEY_ID"]
    assert len(wechatpay.apiv3_key) == 32
    assert stripe_config.api_url == env["STRIPE_API_URL"] and not stripe_config.livemode
    assert stripe_config.webhook_secret.startswith("whsec_")


def test_a_posix_shell_reads_the_env_file_as_honcho_does(served):
    shown = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; set +a; exec env -0', "sh", str(served.env_file)],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
    ).stdout
    exported = dict(item.split("=", 1) for item in shown.decode().split("\0") if "=" in item)
    assert {name: exported[name] for name in SETTINGS} == served.env


def test_a_second_run_reuses_the_keys_and_ids(tmp_path):
    first = serve(tmp_path)
    try:
        env = first.env
        files = {name: Path(env[name]).read_bytes() for name in PRIVATE_KEY_FILES}
    finally:
        assert first.stop() == 0
    second = serve(tmp_path)
    try:
        again = second.env
        assert {k: v for k, v in again.items() if not k.endswith("_URL")} == {
            k: v for k, v in env.items() if not k.endswith("_URL")
        }
        assert {name: Path(again[name]).read_bytes() for name in PRIVATE_KEY_FILES} == files
    finally:
        assert second.stop() == 0


def test_a_port_in_use_is_named_and_nothing_is_written(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = launch(tmp_path, "--dir", str(tmp_path / "keys"), "--port", str(port - 1))
        assert process.wait(timeout=60) == 1
    assert f"127.0.0.1:{port}" in (tmp_path / "serve.log").read_text()
    assert not (tmp_path / "keys" / "env").exists()


# Alipay: the qr_code is the fake's page.


async def test_alipays_page_pays_the_trade_and_the_shop_gets_a_notice_it_verifies(
    served, gateways, receiver
):
    request = order(receiver, ALIPAY_ROUTE)
    payment = await gateways.alipay.start(request)
    assert payment.cashier_url == f"{served.ready['alipay']}/qr/{request.biz}"
    status, page = await fetch(payment.cashier_url)
    assert status == 200 and button("pay", "Pay") in page and button("cancel", "Cancel") in page
    assert "¥88.00" in page
    listing = (await fetch(served.ready["alipay"] + "/"))[1]
    assert f'<a href="/qr/{request.biz}">' in listing
    assert await gateways.alipay.query(biz=request.biz) is None  # not scanned yet

    status, page = await fetch(payment.cashier_url, "pay")
    assert status == 200 and status_of(page) == "TRADE_SUCCESS"
    (received,) = receiver.about(request.biz)
    assert received.path == ALIPAY_ROUTE and received.answered == 200
    assert received.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    notice = gateways.alipay.verify_notice(headers=received.headers, body=received.body)
    assert notice.payment.status == PaymentStatus.SUCCEEDED
    assert (notice.payment.biz, notice.payment.amount, notice.payment.currency) == (
        request.biz,
        8800,
        "CNY",
    )
    # The page shows what the shop answered, and offers no second payment.
    assert 'data-state="accepted"' in page and "HTTP 200" in page and "<samp>success</samp>" in page
    assert button("pay", "Pay") not in page
    paid = await gateways.alipay.query(biz=request.biz)
    assert paid.status == PaymentStatus.SUCCEEDED and paid.paid_at == notice.payment.paid_at
    assert (await fetch(payment.cashier_url, "pay"))[0] == 409


async def test_alipay_sends_again_until_the_shop_answers_success(served, gateways, receiver):
    request = order(receiver, ALIPAY_ROUTE)
    payment = await gateways.alipay.start(request)
    receiver.fail[request.biz] = 2
    status, page = await fetch(payment.cashier_url, "pay")
    assert 'data-state="retrying"' in page and "HTTP 500" in page
    first, second, third = receiver.wait_for(request.biz, 3)
    assert [r.answered for r in (first, second, third)] == [500, 500, 200]
    for received in (first, second, third):
        notice = gateways.alipay.verify_notice(headers=received.headers, body=received.body)
        assert notice.payment.status == PaymentStatus.SUCCEEDED
    # One notification (one notify_id), delivered three times.
    assert first.notice.event_id == second.notice.event_id == third.notice.event_id
    deadline = time.monotonic() + 5
    while 'data-state="accepted"' not in (page := (await fetch(payment.cashier_url))[1]):
        assert time.monotonic() < deadline, page
        await asyncio.sleep(0.05)
    assert page.count('class="attempt"') == 3


async def test_alipay_cancel_leaves_the_trade_unpaid_and_a_time_out_closes_it(
    served, gateways, receiver
):
    request = order(receiver, ALIPAY_ROUTE)
    payment = await gateways.alipay.start(request)
    status, page = await fetch(payment.cashier_url, "cancel")
    assert status == 200 and status_of(page) == "WAIT_BUYER_PAY"
    assert receiver.about(request.biz) == []  # Alipay says nothing of a scanned, unpaid code
    assert (await gateways.alipay.query(biz=request.biz)).status == PaymentStatus.PENDING

    status, page = await fetch(payment.cashier_url, "time_out")
    assert status_of(page) == "TRADE_CLOSED" and button("pay", "Pay") not in page
    (received,) = receiver.about(request.biz)
    notice = gateways.alipay.verify_notice(headers=received.headers, body=received.body)
    assert notice.payment.status == PaymentStatus.CLOSED and received.answered == 200
    assert (await gateways.alipay.query(biz=request.biz)).status == PaymentStatus.CLOSED


# WeChat Pay: the code_url stays weixin://; the fake's root page lists the trades.


async def test_wechat_pays_list_pays_the_trade_and_the_shop_gets_a_notice_it_verifies(
    served, gateways, receiver
):
    request = order(receiver, WECHATPAY_ROUTE, amount=1999)
    payment = await gateways.wechatpay.start(request)
    assert payment.cashier_url.startswith("weixin://wxpay/bizpayurl?pr=")
    base = served.ready["wechatpay"]
    status, listing = await fetch(base + "/")
    form = f'<form method="post" action="/pay/{request.biz}">{button("pay", "Pay")}</form>'
    assert status == 200 and form in listing

    status, page = await fetch(f"{base}/pay/{request.biz}", "pay")
    assert status == 200 and status_of(page) == "SUCCESS"
    (received,) = receiver.about(request.biz)
    assert received.path == WECHATPAY_ROUTE and received.answered == 204
    notice = gateways.wechatpay.verify_notice(headers=received.headers, body=received.body)
    assert notice.payment.status == PaymentStatus.SUCCEEDED
    assert (notice.payment.biz, notice.payment.amount) == (request.biz, 1999)
    assert json.loads(received.body)["event_type"] == "TRANSACTION.SUCCESS"
    assert "HTTP 204" in page and 'data-state="accepted"' in page
    assert (await gateways.wechatpay.query(biz=request.biz)).status == PaymentStatus.SUCCEEDED
    assert form not in (await fetch(base + "/"))[1]


async def test_a_declined_wechat_payment_is_not_notified_and_queries_failed(
    served, gateways, receiver
):
    request = order(receiver, WECHATPAY_ROUTE)
    await gateways.wechatpay.start(request)
    url = f"{served.ready['wechatpay']}/pay/{request.biz}"
    assert button("decline", "Decline") in (await fetch(url))[1]
    status, page = await fetch(url, "decline")
    assert status_of(page) == "PAYERROR" and button("pay", "Pay") not in page
    assert receiver.about(request.biz) == []
    assert (await gateways.wechatpay.query(biz=request.biz)).status == PaymentStatus.FAILED


# Stripe: the session's url is the fake's Checkout page; events go to the webhook endpoint.


async def test_stripes_checkout_page_completes_the_session_and_sends_a_signed_event(
    served, gateways, receiver
):
    request = order(receiver, STRIPE_ROUTE)
    payment = await gateways.stripe.start(request)
    assert payment.cashier_url == f"{served.ready['stripe']}/c/pay/{payment.payment_id}"
    status, page = await fetch(payment.cashier_url)
    assert status == 200 and status_of(page) == "open" and button("pay", "Pay") in page

    status, page = await fetch(payment.cashier_url, "pay")
    assert status == 200 and status_of(page) == "complete"
    (received,) = receiver.about(request.biz)
    assert received.path == STRIPE_ROUTE and received.answered == 200
    notice = gateways.stripe.verify_notice(headers=received.headers, body=received.body)
    assert notice.payment.status == PaymentStatus.SUCCEEDED
    assert (notice.payment.payment_id, notice.payment.amount) == (payment.payment_id, 8800)
    # Stripe's own library takes it too.
    event = stripe.Webhook.construct_event(
        received.body, received.headers["Stripe-Signature"], served.env["STRIPE_WEBHOOK_SECRET"]
    )
    assert event["type"] == "checkout.session.completed"
    assert event["data"]["object"]["payment_status"] == "paid"
    assert f'<a id="return" href="{request.return_url}">' in page
    assert "HTTP 200" in page and 'data-state="accepted"' in page
    queried = await gateways.stripe.query(biz=request.biz, payment_id=payment.payment_id)
    assert queried.status == PaymentStatus.SUCCEEDED


async def test_stripe_cancel_goes_back_to_the_shop_and_letting_it_expire_closes_it(
    served, gateways, receiver
):
    request = order(receiver, STRIPE_ROUTE)
    payment = await gateways.stripe.start(request)
    async with aiohttp.ClientSession() as client:
        async with client.post(
            payment.cashier_url, data={"action": "cancel"}, allow_redirects=False
        ) as response:
            assert response.status == 303
            # The session's cancel_url: the order's page.
            assert response.headers["Location"] == request.return_url
    queried = await gateways.stripe.query(biz=request.biz, payment_id=payment.payment_id)
    assert queried.status == PaymentStatus.PENDING
    assert receiver.about(request.biz) == []

    status, page = await fetch(payment.cashier_url, "expire")
    assert status_of(page) == "expired" and button("pay", "Pay") not in page
    (received,) = receiver.about(request.biz)
    assert json.loads(received.body)["type"] == "checkout.session.expired"
    notice = gateways.stripe.verify_notice(headers=received.headers, body=received.body)
    assert notice.payment.status == PaymentStatus.CLOSED


async def test_a_session_the_shop_expires_sends_checkout_session_expired(
    served, gateways, receiver
):
    request = order(receiver, STRIPE_ROUTE)
    payment = await gateways.stripe.start(request)
    closed = await gateways.stripe.close(payment_id=payment.payment_id)
    assert closed.status == PaymentStatus.CLOSED
    (received,) = receiver.wait_for(request.biz, 1)
    assert json.loads(received.body)["type"] == "checkout.session.expired"
    notice = gateways.stripe.verify_notice(headers=received.headers, body=received.body)
    assert notice.payment.status == PaymentStatus.CLOSED
    status, page = await fetch(payment.cashier_url)
    assert status_of(page) == "expired" and button("pay", "Pay") not in page
