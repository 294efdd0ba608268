"""The WeChat Pay adapter against a local fake of API v3, WeChat's documented samples, and
`wechatpayv3` as an independent oracle."""

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import wechatpayv3.utils
from django.core.exceptions import ImproperlyConfigured
from django.http.request import HttpHeaders
from wechatpayv3.core import Core

from checkout.gateways import rsa
from checkout.gateways.base import GatewayError, NoticeRejected, PaymentRequest
from checkout.gateways.wechatpay import (
    WechatPayConfig,
    WechatPayGateway,
    answer_message,
    authorization,
    request_message,
)
from checkout.models import PaymentStatus
from tests.fake_http import answering
from tests.fakes import private_pem, public_pem
from tests.fakes.wechatpay import FakeWechatPay, new_key

NOTIFY_URL = "https://shop.example/payments/notify/wechatpay/"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWechatPay]:
    fake = FakeWechatPay()
    await fake.start()
    yield fake
    await fake.stop()


def config_for(fake: FakeWechatPay, **changes: Any) -> WechatPayConfig:
    config = WechatPayConfig(
        mchid=fake.mchid,
        appid=fake.appid,
        apiv3_key=fake.apiv3_key,
        cert_serial=fake.cert_serial,
        private_key=fake.merchant_key,
        public_key_id=fake.public_key_id,
        public_key=fake.platform_key.public_key(),
        api_url=fake.url,
    )
    return replace(config, **changes)


@pytest.fixture
def gateway(fake: FakeWechatPay) -> WechatPayGateway:
    return WechatPayGateway(config_for(fake))


def order(amount: int = 8800, **changes: Any) -> PaymentRequest:
    request = PaymentRequest(
        biz=uuid4().hex,
        amount=amount,
        currency="CNY",
        description="Ceramic mug",
        notify_url=NOTIFY_URL,
        expire_at=datetime.now(UTC) + timedelta(minutes=15),
    )
    return replace(request, **changes)


# Start, query, close.


async def test_start_answers_the_code_url_to_scan_and_a_pending_payment(fake, gateway):
    request = order()
    payment = await gateway.start(request)
    trade = fake.trades[request.biz]
    assert payment.status == PaymentStatus.PENDING
    assert payment.cashier_url == trade.code_url and payment.cashier_url.startswith("weixin://")
    assert (payment.payment_id, payment.biz) == (f"wechatpay:{request.biz}", request.biz)
    assert (payment.amount, payment.currency) == (8800, "CNY")
    assert (trade.total, trade.notify_url, trade.description) == (8800, NOTIFY_URL, "Ceramic mug")
    assert trade.time_expire.endswith("+08:00")
    assert datetime.fromisoformat(trade.time_expire) == request.expire_at.replace(microsecond=0)


async def test_start_again_is_the_same_payment(fake, gateway):
    request = order()
    first = await gateway.start(request)
    assert await gateway.start(request) == first
    assert len(fake.trades) == 1


async def test_start_for_an_order_paid_meanwhile_answers_paid(fake, gateway):
    request = order()
    await gateway.start(request)
    fake.pay(request.biz)
    payment = await gateway.start(request)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.payment_id == f"wechatpay:{request.biz}"


@pytest.mark.parametrize(
    "changes",
    [{"currency": "USD"}, {"notify_url": NOTIFY_URL + "?order=1"}, {"biz": "a/b"}],
)
async def test_start_refuses_what_wechat_pay_would(fake, gateway, changes):
    with pytest.raises(GatewayError):
        await gateway.start(order(**changes))
    assert fake.requests == []


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("SUCCESS", PaymentStatus.SUCCEEDED),
        ("REFUND", PaymentStatus.SUCCEEDED),
        ("USERPAYING", PaymentStatus.PENDING),
        ("CLOSED", PaymentStatus.CLOSED),
        ("REVOKED", PaymentStatus.CLOSED),
        ("PAYERROR", PaymentStatus.FAILED),
    ],
)
async def test_query_reports_the_trade_state(fake, gateway, state, status):
    request = order()
    await gateway.start(request)
    fake.pay(request.biz, state)
    payment = await gateway.query(biz=request.biz)
    assert payment is not None
    assert payment.status == status
    assert (payment.payment_id, payment.amount, payment.currency) == (
        f"wechatpay:{request.biz}",
        8800,
        "CNY",
    )
    assert (payment.paid_at is not None) == (status == PaymentStatus.SUCCEEDED)


async def test_query_of_an_unpaid_trade_is_pending(fake, gateway):
    request = order()
    await gateway.start(request)
    payment = await gateway.query(biz=request.biz)
    assert payment is not None and payment.status == PaymentStatus.PENDING
    method, path, body = fake.requests[-1]
    assert (method, path, body) == (
        "GET",
        f"/v3/pay/transactions/out-trade-no/{request.biz}?mchid={fake.mchid}",
        b"",
    )


async def test_query_of_an_order_wechat_pay_never_saw_is_none(gateway):
    assert await gateway.query(biz=uuid4().hex) is None


@pytest.mark.parametrize("field", ["mchid", "appid", "out_trade_no"])
async def test_a_query_answered_about_another_merchant_or_order_is_not_trusted(
    fake, gateway, field
):
    request = order()
    await gateway.start(request)
    setattr(fake.trades[request.biz], field, "1900000000")
    with pytest.raises(GatewayError):
        await gateway.query(biz=request.biz)


async def test_a_long_description_is_cut_to_127_bytes_of_utf8(fake, gateway):
    request = order(description="青花瓷杯" * 40)
    await gateway.start(request)
    sent = fake.trades[request.biz].description
    assert request.description.startswith(sent) and 124 < len(sent.encode()) <= 127


async def test_close_closes_an_unpaid_payment(fake, gateway):
    request = order()
    started = await gateway.start(request)
    payment = await gateway.close(payment_id=started.payment_id)
    assert payment.status == PaymentStatus.CLOSED
    assert fake.trades[request.biz].trade_state == "CLOSED"
    closes = [r for r in fake.requests if r[1].endswith("/close")]
    assert closes == [
        (
            "POST",
            f"/v3/pay/transactions/out-trade-no/{request.biz}/close",
            json.dumps({"mchid": fake.mchid}).encode(),
        )
    ]


async def test_a_closed_payment_is_never_started_again(fake, gateway):
    """WeChat Pay refuses a closed out_trade_no (ORDERCLOSED): the shop offers another provider
    instead of asking (`Gateway.starts_after_close`)."""
    request = order()
    started = await gateway.start(request)
    await gateway.close(payment_id=started.payment_id)
    assert gateway.starts_after_close is False
    with pytest.raises(GatewayError, match="ORDERCLOSED"):
        await gateway.start(request)


async def test_close_of_a_payment_paid_first_reports_it_paid(fake, gateway):
    request = order()
    started = await gateway.start(request)
    fake.pay(request.biz)
    payment = await gateway.close(payment_id=started.payment_id)
    assert payment.status == PaymentStatus.SUCCEEDED


async def test_close_refuses_another_gateways_payment_id(fake, gateway):
    with pytest.raises(GatewayError):
        await gateway.close(payment_id="pay_0123456789abcdef01234567")
    assert fake.requests == []


# Answers are trusted only once verified.


async def test_a_request_signed_with_another_key_is_refused_by_wechat_pay(fake):
    gateway = WechatPayGateway(config_for(fake, private_key=new_key()))
    with pytest.raises(GatewayError, match="401"):
        await gateway.start(order())


@pytest.mark.parametrize(
    "knobs",
    [
        {"answer_key": "other"},
        {"answer_skew": -301},
        {"answer_skew": 301},
        {"probe": True},
    ],
    ids=["wrong key", "old", "future", "SIGNTEST probe"],
)
async def test_an_answer_that_does_not_verify_is_not_trusted(fake, gateway, knobs):
    request = order()
    await gateway.start(request)
    fake.pay(request.biz)
    for knob, value in knobs.items():
        setattr(fake, knob, new_key() if value == "other" else value)
    for call in (
        gateway.start(order()),
        gateway.query(biz=request.biz),
        gateway.query(biz="x" * 32),
    ):
        with pytest.raises(GatewayError, match="not trusted"):
            await call


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b'{"code_url": "weixin://wxpay/bizpayurl?pr=unsigned"}', "not trusted"),
        (502, b"<html>Bad Gateway</html>", "HTTP 502"),
    ],
)
async def test_an_unsigned_or_broken_answer_is_an_error(fake, status, body, error):
    with answering(status, body) as url:
        gateway = WechatPayGateway(config_for(fake, api_url=url))
        with pytest.raises(GatewayError, match=error):
            await gateway.start(order())
        with pytest.raises(GatewayError, match=error):
            await gateway.query(biz=uuid4().hex)


async def test_an_unsigned_not_found_is_not_taken_for_no_payment(fake):
    with answering(404, b'{"code": "ORDER_NOT_EXIST", "message": "unsigned"}') as url:
        gateway = WechatPayGateway(config_for(fake, api_url=url))
        with pytest.raises(GatewayError, match="not trusted"):
            await gateway.query(biz=uuid4().hex)


async def test_a_slow_answer_is_an_error_within_the_timeout(fake, settings):
    settings.PAYMENT_GATEWAY_TIMEOUT = 0.2
    with answering(200, delay=2) as url:
        gateway = WechatPayGateway(config_for(fake, api_url=url))
        started = time.monotonic()
        with pytest.raises(GatewayError, match="Timeout"):
            await gateway.query(biz=uuid4().hex)
        assert time.monotonic() - started < 1


async def test_an_answer_signed_under_another_public_key_id_is_not_trusted(fake):
    gateway = WechatPayGateway(config_for(fake, public_key_id="PUB_KEY_ID_0000000000000000"))
    with pytest.raises(GatewayError, match="Wechatpay-Serial"):
        await gateway.start(order())


async def test_an_answer_within_the_window_is_trusted(fake, gateway):
    fake.answer_skew = -290
    assert (await gateway.start(order())).status == PaymentStatus.PENDING


# Notifications.


async def test_a_genuine_notice_is_accepted(fake, gateway):
    request = order()
    await gateway.start(request)
    trade = fake.pay(request.biz)
    headers, body = fake.notice(request.biz)
    notice = gateway.verify_notice(headers=headers, body=body)
    assert notice.event_id == "EV-2018022511223320873"
    payment = notice.payment
    assert payment == await gateway.query(biz=request.biz)  # the same payment, the same id
    assert (payment.status, payment.amount, payment.currency) == (
        PaymentStatus.SUCCEEDED,
        8800,
        "CNY",
    )
    assert payment.paid_at == datetime.fromisoformat(trade.success_time)


def paid_trade(fake: FakeWechatPay, **changes: Any) -> dict[str, Any]:
    """A paid transaction as a notice carries it, with `changes`."""
    trade = {
        "appid": fake.appid,
        "mchid": fake.mchid,
        "out_trade_no": uuid4().hex,
        "transaction_id": "4200000985202103031441826014",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2026-12-07T21:00:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 8800, "payer_total": 8800, "currency": "CNY", "payer_currency": "CNY"},
    }
    return trade | changes


def signed(fake: FakeWechatPay, body: bytes, **signing: Any) -> tuple[dict[str, str], bytes]:
    return fake.signed_headers(body, **signing), body


def refused(gateway: WechatPayGateway, headers: dict[str, str], body: bytes) -> str:
    with pytest.raises(NoticeRejected) as caught:
        gateway.verify_notice(headers=headers, body=body)
    return caught.value.verdict


def test_a_notice_is_accepted_whatever_the_case_of_its_headers(fake):
    gateway = WechatPayGateway(config_for(fake))
    headers, body = signed(fake, fake.notice_body(paid_trade(fake)))
    lower = {name.lower(): value for name, value in headers.items()}
    assert gateway.verify_notice(headers=lower, body=body).payment.status == "succeeded"
    # As the view passes them: Django's request.headers, built from the WSGI/ASGI META.
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    django_headers = HttpHeaders(meta)
    assert gateway.verify_notice(headers=django_headers, body=body).payment.status == "succeeded"


@pytest.mark.parametrize("skew", [-299, 299])
def test_a_notice_within_300_seconds_either_way_is_accepted(fake, skew):
    gateway = WechatPayGateway(config_for(fake))
    body = fake.notice_body(paid_trade(fake))
    headers, body = signed(fake, body, timestamp=int(time.time()) + skew)
    gateway.verify_notice(headers=headers, body=body)


def forgeries(fake: FakeWechatPay) -> dict[str, tuple[dict[str, str], bytes]]:
    body = fake.notice_body(paid_trade(fake))
    now = int(time.time())
    headers = fake.signed_headers(body)
    flipped = base64.b64decode(headers["Wechatpay-Signature"])
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    envelope = json.loads(body)
    envelope["id"] = "EV-0000000000000000000"
    ciphertext = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    ciphertext[0] ^= 1
    tampered = json.loads(body)
    tampered["resource"]["ciphertext"] = base64.b64encode(ciphertext).decode()
    tampered_body = json.dumps(tampered).encode()
    return {
        "bad signature": (
            headers | {"Wechatpay-Signature": base64.b64encode(flipped).decode()},
            body,
        ),
        "wrong key": signed(fake, body, key=new_key()),
        "old": signed(fake, body, timestamp=now - 301),
        # 303, not 301: still over 300 s ahead when the check runs a second or two later.
        "future": signed(fake, body, timestamp=now + 303),
        "tampered after signing": (headers, json.dumps(envelope).encode()),
        "tampered ciphertext, signed again": signed(fake, tampered_body),
        "another APIv3 key": signed(fake, fake.notice_body(paid_trade(fake), apiv3_key="k" * 32)),
        "wrong mchid": signed(fake, fake.notice_body(paid_trade(fake, mchid="1900000000"))),
        "wrong appid": signed(fake, fake.notice_body(paid_trade(fake, appid="wx0000000000000000"))),
        "another public key id": signed(fake, body, serial="PUB_KEY_ID_0000000000000000"),
        "platform certificate serial": signed(
            fake, body, serial="5157F09EFDC096DE15EBE81A47057A72"
        ),
        "SIGNTEST probe": (
            headers
            | {"Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]},
            body,
        ),
        "no signature": ({k: v for k, v in headers.items() if k != "Wechatpay-Signature"}, body),
        "no headers": ({}, body),
        "unknown signature type": (headers | {"Wechatpay-Signature-Type": "SM2"}, body),
        "timestamp not a number": (headers | {"Wechatpay-Timestamp": "1e9"}, body),
        "nonce with a newline": (headers | {"Wechatpay-Nonce": "a\nb"}, body),
    }


def test_every_forged_notice_is_refused_as_a_bad_signature(fake):
    gateway = WechatPayGateway(config_for(fake))
    verdicts = {name: refused(gateway, *forgery) for name, forgery in forgeries(fake).items()}
    assert verdicts == dict.fromkeys(verdicts, "bad_signature")


def malformed_bodies(fake: FakeWechatPay) -> dict[str, bytes]:
    genuine = json.loads(fake.notice_body(paid_trade(fake)))

    def envelope(**changes: Any) -> bytes:
        return json.dumps(genuine | changes).encode()

    def resource(**changes: Any) -> bytes:
        return envelope(resource=genuine["resource"] | changes)

    def transaction(value: Any) -> bytes:
        return envelope(resource=fake.encrypt(json.dumps(value).encode()))

    amount = paid_trade(fake)["amount"]
    return {
        "empty": b"",
        "not JSON": b'{"id":',
        "an array": b"[]",
        "deeply nested": b"[" * 30_000 + b"]" * 30_000,
        "no resource": envelope(resource=None),
        "refund event": envelope(event_type="REFUND.SUCCESS"),
        "plain resource": envelope(resource_type="plain"),
        "id not a string": envelope(id=7),
        "bad create_time": envelope(create_time="yesterday"),
        "other algorithm": resource(algorithm="AEAD_SM4_GCM"),
        "ciphertext not base64": resource(ciphertext="!!!"),
        "nonce not a string": resource(nonce=12),
        "resource not JSON": envelope(resource=fake.encrypt(b"paid")),
        "resource an array": transaction([]),
        "unpaid": transaction(paid_trade(fake, trade_state="NOTPAY")),
        "unknown state": transaction(paid_trade(fake, trade_state="PAID")),
        "amount a string": transaction(paid_trade(fake, amount=amount | {"total": "88.00"})),
        "amount a bool": transaction(paid_trade(fake, amount=amount | {"total": True})),
        "amount zero": transaction(paid_trade(fake, amount=amount | {"total": 0})),
        "amount too large": transaction(paid_trade(fake, amount=amount | {"total": 2**31})),
        "no currency": transaction(paid_trade(fake, amount={"total": 8800})),
        "no transaction_id": transaction(paid_trade(fake, transaction_id=None)),
        "success_time without offset": transaction(
            paid_trade(fake, success_time="2026-12-07T21:00:00")
        ),
        "out_trade_no too long": transaction(paid_trade(fake, out_trade_no="a" * 33)),
        "oversized": b" " * (64 * 1024 + 1),
    }


def test_every_malformed_notice_signed_by_wechat_pay_is_refused_as_malformed(fake):
    gateway = WechatPayGateway(config_for(fake))
    verdicts = {
        name: refused(gateway, fake.signed_headers(body), body)
        for name, body in malformed_bodies(fake).items()
    }
    assert verdicts == dict.fromkeys(verdicts, "malformed")


def test_garbage_is_refused_never_raised(fake):
    gateway = WechatPayGateway(config_for(fake))
    headers = fake.signed_headers(b"x")
    for body in (b"", b"\x00" * 10, b"\xff\xfe{}", "支付成功".encode(), b"{}" * 40_000):
        for garbled in (
            headers,
            {k: "\x00\xff" for k in headers},
            {k: "9" * 5000 for k in headers},
        ):
            with pytest.raises(NoticeRejected):
                gateway.verify_notice(headers=garbled, body=body)


def test_the_notice_answer_is_wechat_pays_own(fake):
    gateway = WechatPayGateway(config_for(fake))
    assert gateway.notice_answer(status=200)[0] in (200, 204)
    status, body, content_type = gateway.notice_answer(status=500)
    assert status >= 400 and content_type == "application/json"
    assert json.loads(body)["code"] == "FAIL"
    assert gateway.notice_answer(status=400)[0] == 400


# WeChat Pay's documented samples.

# From WeChat Pay's signing guide (pay.weixin.qq.com/doc/v3/merchant/4012365336), as quoted with
# its sample merchant key and the signature it gives in a public SDK's tests: PKCS#1 v1.5 is
# deterministic, so the same key and string give the same signature, byte for byte.
DOC_TIMESTAMP = 1554208460
DOC_NONCE = "593BEC0C930BF1AFEB40B4A08C8FB242"
DOC_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCm2mb6q8gMKH/3
CNTbpJAIrbqiBiQGEOtjGcBrDYltsGynWgNscqT7WvfzU14FQbYcQUC5T4Wvva7m
i3fIp3OgX8VqMDNA0qebnr38Pe6kqiLyZgFpJPXlSKDyPyqhRbVTbXssvSMQeVKc
dXeVxoNNeoOlNFHgF/P0io6AmAVnz+hN8SiZKuOsth5/zUTLGvtkgxBcQooQrtXh
RcpLT798OyIb9xeJ2HO3xRtMv2+perEzb4gMibI74UBz+2QEbnkubPE+2jU2rRZu
dnNEz/BPOt3Qj/w2V6/G0VumGDh6+UeMU0jv4aupHztWITC4Akn0l7lBCNy3lgl8
VFaJnkIxAgMBAAECggEAYGL8aESB7NwciDWW2UdoWUsa7GxFtSdjAz2mFXGdeTsY
mVh7b9OOkRGM+Qio4LqEHDBp1mMk5E/cUJwy1zw8pGGO5nfvs7u9TT3XnHaefIs4
YvUgTYAneIuLRkXNN5rQU+CD7mVYczTSz0Vgjqo9wa1LjUz7G0xbBmJgTdMEFGJs
eJjy6AbJo0CGIwp6HJbTm4CmOUgXnnDAIbEGTIRImkZFH/rzneIeR7oZ77FVwxr1
CZB2gfRCov/yRPbw8vnryYkmvQ7D/ze3j5097vRg/MoDGBSdoOwcmo75vyofr0AS
zytMjmHYyifqkf5slPropSiJeGf4p/7gtKyF6dE/XQKBgQDVAlJ+4U5ZVGOuDc3+
sAhz8CTzgFNlq9vKuSoFK6hOz2L+cwj+E7NXGkOe2DsHHZNy2Xqxk7caKhPEp1z9
hhpMpyLVMoFt6CKemyoRBWDCQwLLwem9SZF/IAyovBkLiH36P42Jm26gUkNMKC/5
Zhtqxf6RZgRQzbVudJi47vIRCwKBgQDIh0+v27Oo+DM3fhObH4I1NrXpWOEGH7OQ
G1dEsMuFYF4hjGhg0kBEP3w9vVdl2+mRllZKTsx9oqjb8OibPLLIH8xsdbAB0WLf
JvjLu4wl/ILUzN1RI03dWnnv2EnEeQn6c3hizvrJ9wR5U4ue9RPVnQooJ0hZF1PU
uCL5fWK3MwKBgElReU/PAYbh80WP3t3Rfbdaa32dKBeQ5iCLR5lsA4zM+YgX1HqQ
EWTj126vgvHaDkyz6vWAoL/Sx+cirHFfXWIRDX5Q2hgYlQH+6qXdMgbrxeSYpHnQ
/tHBGFpkFELSAnrGsVMyOwvYBO4LzyeLK9i+ufcWJFoj1FVmsMLHDG8tAoGARdbi
iQQCoYG4DMarO2aQ6cmhN6EN1h0qY7EyBqlwaIZ0okiNfdMcMOjPc41DKCWcRmlO
qlihXcxN9TQFPzO3rH1urAOdBjUPs1qWYhZyrDQyuLyVBBJApyxAtajloDjrob+f
mQIvVDHk7ACN6xG+E7K6+9salnTKbJapD618uQMCgYBNy6XUvzLkP/A1U/UZdtcx
l8GwU/dturLxz4CyGbqDw4ubaYY2e13lnqHUqQgPtiSyH51nq3tdo8G0YAJdfkSv
KvnfslW91fyEBUKnkdW1o3/1UFU/wprZ7ixVL/F42A4xDu7OFE8EnweJOZ0jWceE
OdhCkaIGBCfRnlECRK8UyQ==
-----END PRIVATE KEY-----
"""
DOC_BODY = (
    '{"appid":"wxd678efh567hg6787","mchid":"1900007291","description":"Image形象店-深圳腾大-QQ公仔",'
    '"out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/'
    'pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWe'
    'S6o"}}'
)
DOC_SIGNATURE = (
    "jnks4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1OQBbKYhFGvt7iqYpDSTQkp7Uq1slt"
    "aQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1CAn9QiJuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAO"
    "P3/sPObg6V5Ee4EzwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe5kwoDpw4Ulqfu9z8OFDG"
    "bDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdUtoE0liJGW3RGUNE0t4v01A=="
)


def test_the_request_message_is_wechats_documented_string_byte_for_byte():
    message = request_message("GET", "/v3/certificates", DOC_TIMESTAMP, DOC_NONCE, b"")
    assert message == b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"


def test_the_documented_order_is_signed_as_wechat_documents():
    message = request_message(
        "POST", "/v3/pay/transactions/jsapi", DOC_TIMESTAMP, DOC_NONCE, DOC_BODY.encode()
    )
    assert message == (
        f"POST\n/v3/pay/transactions/jsapi\n1554208460\n{DOC_NONCE}\n{DOC_BODY}\n".encode()
    )
    assert rsa.sign(rsa.private_key(DOC_KEY), message) == DOC_SIGNATURE


def test_an_answer_signed_by_wechat_pay_verifies():
    """A Native pay answer as WeChat Pay signed it (its public key, quoted in the same tests)."""
    public_key = rsa.public_key(
        "-----BEGIN PUBLIC KEY-----\n"
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwXNI6sdlknHBnK8Fu2U6\n"
        "Cwor9qY747jP8KAfeBMeveEt1TqaHkLfaSD07trZLhGpfs8/AHqjhgSMO1O10YQW\n"
        "OrrJ4hjIWPKqxbgrYMkBQc+mwdiWp4W3ByCqxBRagCveCXRWCmuJYovl9H/bsDI0\n"
        "iGbpVtEOghJtfciisYSgxcLufUDTRkvwxjIBK1pCRjk33jJ5YTBWTHMRtMAOcFLN\n"
        "F6hdEYdX8SPsgHHeLZ5Lv2T/686w1xtgCHef/sd4uSfWmyzsalQdHG/e4IyYmrhx\n"
        "+O3VBoNDzE3nx23bFeV/RVNCG7cV6VhmYokJNHa/erIPkEmEFID6A5wQOXuxUkmJ\n"
        "WwIDAQAB\n"
        "-----END PUBLIC KEY-----\n"
    )
    signature = (
        "mfI1CPqvBrgcXfgXMFjdNIhBf27ACE2YyeWsWV9ZI7T7RU0vHvbQpu9Z32ogzc+k8ZC5n3kz7h70eWKjgqNdKQF0"
        "eRp8mVKlmfzMLBVHbssB9jEZEDXThOX1XFqX7s7ymia1hoHQxQagPGzkdWxtlZPZ4ZPvr1RiqkgAu6Is8MZgXXrR"
        "oBKqjmSdrP1N7uxzJ/cjfSiis9FiLjuADoqmQ1P7p2N876YPAol7Rn0+GswwAwxldbdLrmVSjfytfSBJFqTMHn4i"
        "tojgxSWWN1byuckQt8hSTEv/Lg97QoeGniYP17T80pJeQyL3b+295FPHSO2AtvCgyIbKMZ0BALilAA=="
    )
    body = b'{"code_url":"weixin://wxpay/bizpayurl?pr=JyC91EIz1"}'
    message = answer_message("1722850421", "d824f2e086d3c1df967785d13fcd22ef", body)
    assert rsa.verifies(public_key, message, signature)
    assert not rsa.verifies(public_key, message.replace(b"JyC9", b"JyC8"), signature)


# wechatpayv3 as an independent oracle.


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "GET",
            "/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1230000109",
            "",
        ),
        ("POST", "/v3/pay/transactions/native", DOC_BODY),
    ],
)
def test_our_authorization_is_the_one_wechatpayv3_builds(fake, monkeypatch, method, path, body):
    config = config_for(fake)
    monkeypatch.setattr(wechatpayv3.utils.time, "time", lambda: DOC_TIMESTAMP + 0.5)
    theirs = wechatpayv3.utils.build_authorization(
        path,
        method,
        fake.mchid,
        fake.cert_serial,
        fake.merchant_key,
        data=body,
        nonce_str=DOC_NONCE,
    )
    ours = authorization(
        config, method, path, body.encode(), timestamp=DOC_TIMESTAMP, nonce=DOC_NONCE
    )
    assert ours == theirs


def test_wechatpayv3_verifies_and_decrypts_the_notices_we_accept(fake):
    """The fake signs with wechatpayv3 (its signatures verify under ours, above); here its
    verifier and decrypter agree with ours on the same notice."""
    gateway = WechatPayGateway(config_for(fake))
    transaction = paid_trade(fake)
    headers, body = signed(fake, fake.notice_body(transaction))
    core = Core(
        mchid=fake.mchid,
        cert_serial_no=fake.cert_serial,
        private_key=private_pem(fake.merchant_key),
        apiv3_key=fake.apiv3_key,
        public_key=public_pem(fake.platform_key),
        public_key_id=fake.public_key_id,
    )
    decrypted = core.callback(headers, body)
    assert decrypted is not None and decrypted["resource"] == transaction
    payment = gateway.verify_notice(headers=headers, body=body).payment
    assert (payment.biz, payment.amount) == (transaction["out_trade_no"], 8800)
    # And a forgery that both refuse.
    forged = headers | signed(fake, body, key=new_key())[0]
    assert core.callback(forged, body) is None
    assert refused(gateway, forged, body) == "bad_signature"


def test_our_answer_message_verifies_under_wechatpayv3(fake):
    body = '{"code_url":"weixin://wxpay/bizpayurl?pr=支付"}'
    signature = rsa.sign(fake.platform_key, answer_message("1722850421", "abc", body.encode()))
    key = fake.platform_key.public_key()
    assert wechatpayv3.utils.rsa_verify("1722850421", "abc", body, signature, key)
    assert not wechatpayv3.utils.rsa_verify("1722850422", "abc", body, signature, key)


# Settings.


@pytest.fixture
def wechat_settings(settings, tmp_path: Path):
    key, platform = new_key(), new_key()
    (tmp_path / "merchant.pem").write_text(private_pem(key))
    (tmp_path / "platform.pem").write_text(public_pem(platform))
    settings.WECHATPAY_MCHID = "1900009191"
    settings.WECHATPAY_APPID = "wxd678efh567hg6787"
    settings.WECHATPAY_APIV3_KEY = "0123456789abcdef0123456789ABCDEF"
    settings.WECHATPAY_CERT_SERIAL = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"
    settings.WECHATPAY_PRIVATE_KEY_FILE = str(tmp_path / "merchant.pem")
    settings.WECHATPAY_PUBLIC_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"
    settings.WECHATPAY_PUBLIC_KEY_FILE = str(tmp_path / "platform.pem")
    return settings


def test_the_config_is_read_from_the_contracts_settings(wechat_settings):
    config = WechatPayConfig.from_settings()
    assert (config.mchid, config.api_url) == ("1900009191", "https://api.mch.weixin.qq.com")
    wechat_settings.WECHATPAY_API_URL = "http://127.0.0.1:9/"
    assert WechatPayConfig.from_settings().api_url == "http://127.0.0.1:9/"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WECHATPAY_MCHID", "", "WECHATPAY_MCHID"),
        ("WECHATPAY_PUBLIC_KEY_FILE", None, "WECHATPAY_PUBLIC_KEY_FILE"),
        ("WECHATPAY_APIV3_KEY", "0123456789abcdef", "WECHATPAY_APIV3_KEY"),
        ("WECHATPAY_APIV3_KEY", "0123456789abcdef0123456789abcdé", "WECHATPAY_APIV3_KEY"),
        ("WECHATPAY_PUBLIC_KEY_ID", "5157F09EFDC096DE15EBE81A47057A72", "WECHATPAY_PUBLIC_KEY_ID"),
        ("WECHATPAY_PRIVATE_KEY_FILE", "/nonexistent.pem", "WECHATPAY_PRIVATE_KEY_FILE"),
        ("WECHATPAY_PUBLIC_KEY_FILE", "PRIVATE", "WECHATPAY_PUBLIC_KEY_FILE"),
    ],
)
def test_a_missing_or_bad_setting_is_named(wechat_settings, name, value, message):
    if value is None:
        delattr(wechat_settings, name)
    elif value == "PRIVATE":  # a private key where WeChat Pay's public key belongs
        setattr(wechat_settings, name, wechat_settings.WECHATPAY_PRIVATE_KEY_FILE)
    else:
        setattr(wechat_settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        WechatPayConfig.from_settings()
