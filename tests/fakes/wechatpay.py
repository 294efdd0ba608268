"""A local WeChat Pay API v3 for the tests: Native pay, query and close by out_trade_no, speaking
WeChat's wire format (signed requests checked, every answer signed, notices AES-256-GCM encrypted)
with keys made at test time, on a free port in the test's event loop (or with the keys and the
port `python -m tests.fakes.serve` gives it).

It shares no code with the adapter: it signs with `wechatpayv3` (the test oracle) and checks the
requests' signatures with `cryptography`, each over the message as WeChat documents it.

`code_url` stays `weixin://wxpay/bizpayurl?pr=...`, as WeChat's (only its app opens it), so the
fake's own root page lists the open trades, each with a Pay button, and `/pay/<out_trade_no>` is
one trade's page: Pay (the encrypted, signed TRANSACTION.SUCCESS notice goes to the trade's
notify_url, again on a schedule until the answer is 200 or 204) or Decline (PAYERROR, which WeChat
Pay does not notify: the shop finds it by querying)."""

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html import escape
from typing import Any
from urllib.parse import quote

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wechatpayv3.utils import rsa_sign
from tests.fakes import pages, serve
from tests.fakes.delivery import Delivery, Notifier

BEIJING = timezone(timedelta(hours=8))
SCHEMA = "WECHATPAY2-SHA256-RSA2048"
AUTHORIZATION = re.compile(
    SCHEMA + r' mchid="(?P<mchid>[^"]*)",nonce_str="(?P<nonce>[^"]*)",signature="(?P<signature>'
    r'[^"]*)",timestamp="(?P<timestamp>[0-9]+)",serial_no="(?P<serial>[^"]*)"'
)
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OPEN_STATES = ("NOTPAY", "USERPAYING")


def new_key() -> crypto_rsa.RSAPrivateKey:
    return crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Trade:
    appid: str
    mchid: str
    description: str
    out_trade_no: str
    total: int
    notify_url: str
    time_expire: str
    code_url: str
    trade_state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: str = ""

    def payable(self) -> bool:
        """Open, and before its time_expire (an RFC 3339 time with an offset)."""
        expiry = datetime.fromisoformat(self.time_expire)
        return self.trade_state in OPEN_STATES and datetime.now(expiry.tzinfo) < expiry

    def as_json(self) -> dict[str, Any]:
        """A query's answer, as WeChat gives it (an unpaid one has no currency, only the payer's)."""
        data: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_state": self.trade_state,
            "trade_state_desc": self.trade_state,
            "amount": {"total": self.total, "payer_currency": "CNY"},
            "promotion_detail": [],
            "scene_info": {"device_id": ""},
        }
        if self.transaction_id:
            data.update(
                transaction_id=self.transaction_id,
                trade_type="NATIVE",
                bank_type="OTHERS",
                attach="",
                success_time=self.success_time,
                payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            )
            data["amount"].update(currency="CNY", payer_total=self.total)
        return data


@dataclass
class FakeWechatPay:
    mchid: str = "1900009191"
    appid: str = "wxd678efh567hg6787"
    apiv3_key: str = field(default_factory=lambda: secrets.token_hex(16))
    cert_serial: str = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"
    public_key_id: str = "PUB_KEY_ID_0114232134912410000000000000"
    merchant_key: crypto_rsa.RSAPrivateKey = field(default_factory=new_key)
    platform_key: crypto_rsa.RSAPrivateKey = field(default_factory=new_key)
    trades: dict[str, Trade] = field(default_factory=dict)
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    # Knobs for the tests: who signs answers, how far off the answers' clock is, a probe.
    answer_key: crypto_rsa.RSAPrivateKey | None = None
    answer_skew: int = 0
    probe: bool = False
    # The next this many API calls are answered 429 FREQUENCY_LIMITED, as WeChat Pay does.
    throttle: int = 0
    url: str = ""
    # Notices sent from the pages, with their retries; each trade's, by out_trade_no.
    notifier: Notifier = field(default_factory=Notifier)
    deliveries: dict[str, list[Delivery]] = field(default_factory=dict)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/v3/pay/transactions/native", self._native)
        app.router.add_get("/v3/pay/transactions/out-trade-no/{biz}", self._query)
        app.router.add_post("/v3/pay/transactions/out-trade-no/{biz}/close", self._close)
        app.router.add_get("/", self._index)
        app.router.add_get("/pay/{biz}", self._trade_page)
        app.router.add_post("/pay/{biz}", self._trade_action)
        self._runner, self.url = await serve(app, host, port)

    async def stop(self) -> None:
        await self.notifier.close()
        await self._runner.cleanup()

    def pay(self, biz: str, state: str = "SUCCESS") -> Trade:
        """The shopper scans and pays (or the trade reaches `state` another way)."""
        trade = self.trades[biz]
        trade.trade_state = state
        if state in ("SUCCESS", "REFUND"):
            trade.transaction_id = "4200000" + secrets.choice("123456789") + "9" * 20
            trade.success_time = datetime.now(BEIJING).isoformat(timespec="seconds")
        return trade

    # Signing, as WeChat Pay does it.

    def signed_headers(
        self,
        body: bytes,
        *,
        timestamp: int | None = None,
        key: crypto_rsa.RSAPrivateKey | None = None,
        serial: str | None = None,
    ) -> dict[str, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        nonce = secrets.token_hex(16)
        signature = rsa_sign(key or self.platform_key, f"{timestamp}\n{nonce}\n{body.decode()}\n")
        return {
            "Wechatpay-Serial": self.public_key_id if serial is None else serial,
            "Wechatpay-Timestamp": str(timestamp),
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Signature-Type": SCHEMA,
        }

    def encrypt(self, plain: bytes, *, key: str | None = None) -> dict[str, str]:
        nonce = secrets.token_hex(6)  # 12 ASCII characters, as WeChat's
        associated_data = "transaction"
        ciphertext = AESGCM((key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), plain, associated_data.encode()
        )
        return {
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "nonce": nonce,
            "associated_data": associated_data,
            "original_type": "transaction",
        }

    def notice_body(
        self,
        transaction: dict[str, Any],
        *,
        apiv3_key: str | None = None,
        event_id: str = "EV-2018022511223320873",
    ) -> bytes:
        envelope = {
            "id": event_id,
            "create_time": datetime.now(BEIJING).isoformat(timespec="seconds"),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": self.encrypt(json.dumps(transaction).encode(), key=apiv3_key),
        }
        return json.dumps(envelope, ensure_ascii=False).encode()

    def notice(self, biz: str, **signing: Any) -> tuple[dict[str, str], bytes]:
        """The notification WeChat Pay posts once `biz` is paid: headers and body."""
        body = self.notice_body(self.trades[biz].as_json())
        return self.signed_headers(body, **signing), body

    async def deliver(self, biz: str) -> Delivery:
        """Notify the trade's payment as WeChat Pay does: one event (its id and encrypted resource
        fixed), each attempt signed with the time it is sent; later attempts until one is
        answered 200 or 204."""
        trade = self.trades[biz]
        event_id = "EV-" + datetime.now(BEIJING).strftime("%Y%m%d%H%M%S") + secrets.token_hex(4)
        body = self.notice_body(trade.as_json(), event_id=event_id)

        def build() -> tuple[dict[str, str], bytes]:
            headers = self.signed_headers(body)
            headers["Content-Type"] = "application/json"
            headers["Request-ID"] = secrets.token_hex(16)
            return headers, body

        delivery = await self.notifier.deliver(
            "TRANSACTION.SUCCESS notice",
            trade.notify_url,
            build,
            lambda status, answer: status in (200, 204),
        )
        self.deliveries.setdefault(biz, []).append(delivery)
        return delivery

    # The pages that stand in for the shopper's WeChat app.

    async def _index(self, request: web.Request) -> web.Response:
        rows = []
        for trade in reversed(self.trades.values()):
            link = quote(trade.out_trade_no, safe="")
            pay = pages.actions(f"/pay/{link}", [("pay", "Pay")]) if trade.payable() else ""
            rows.append(
                (
                    f'<a href="/pay/{link}">{escape(trade.out_trade_no)}</a>',
                    escape(trade.description),
                    escape(pages.money(trade.total, "CNY")),
                    f'<span data-status="{escape(trade.trade_state)}">'
                    f"{escape(trade.trade_state)}</span>",
                    pay,
                )
            )
        body = pages.note(
            "A Native trade's code_url (weixin://...) opens only in WeChat: pay it here instead."
        ) + pages.listing(("out_trade_no", "description", "amount", "trade_state", ""), rows)
        return pages.page("WeChat Pay", "Trades", body)

    async def _trade_page(self, request: web.Request) -> web.Response:
        trade = self.trades.get(request.match_info["biz"])
        if trade is None:
            return pages.missing("WeChat Pay", "trade")
        body = (
            f'<p class="amount">{escape(pages.money(trade.total, "CNY"))}</p>'
            f"<p>{escape(trade.description)} · out_trade_no "
            f"<code>{escape(trade.out_trade_no)}</code> · code_url "
            f"<code>{escape(trade.code_url)}</code></p>"
            + pages.status_line("trade_state", trade.trade_state)
        )
        if trade.payable():
            body += pages.actions(
                f"/pay/{quote(trade.out_trade_no, safe='')}",
                [("pay", "Pay"), ("decline", "Decline")],
            )
            body += pages.note(
                "Pay: the trade is paid and a TRANSACTION.SUCCESS notice goes to the shop. Decline: "
                "the payment fails (PAYERROR); WeChat Pay notifies only success, so nothing is "
                "sent and the shop learns it by querying."
            )
        elif trade.trade_state in OPEN_STATES:
            body += pages.note(f"This trade expired at {trade.time_expire}.")
        body += pages.deliveries(self.deliveries.get(trade.out_trade_no, []))
        return pages.page("WeChat Pay", f"Pay {trade.description}", body)

    async def _trade_action(self, request: web.Request) -> web.Response:
        trade = self.trades.get(request.match_info["biz"])
        if trade is None:
            return pages.missing("WeChat Pay", "trade")
        action = (await request.post()).get("action")
        if action not in ("pay", "decline"):
            return pages.page("WeChat Pay", "Unknown action", "", status=400)
        if not trade.payable():
            body = pages.status_line("trade_state", trade.trade_state)
            return pages.page("WeChat Pay", "This trade can no longer be paid", body, status=409)
        if action == "pay":
            self.pay(trade.out_trade_no)
            await self.deliver(trade.out_trade_no)
        else:
            self.pay(trade.out_trade_no, "PAYERROR")
        raise web.HTTPSeeOther(f"/pay/{quote(trade.out_trade_no, safe='')}")

    # The API.

    def _answer(self, status: int, data: Any = None) -> web.Response:
        body = b"" if data is None else json.dumps(data, ensure_ascii=False).encode()
        headers = self.signed_headers(
            body, timestamp=int(time.time()) + self.answer_skew, key=self.answer_key
        )
        if self.probe:
            headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
        headers["Request-ID"] = secrets.token_hex(16)
        if data is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return web.Response(status=status, body=body, headers=headers)

    def _error(self, status: int, code: str, message: str) -> web.Response:
        return self._answer(status, {"code": code, "message": message})

    def _throttled(self) -> web.Response | None:
        if self.throttle <= 0:
            return None
        self.throttle -= 1
        return self._error(429, "FREQUENCY_LIMITED", "频率超限")

    async def _authorized(self, request: web.Request) -> bytes | None:
        """The body, if the request is signed by the merchant's key within 300 s."""
        body = await request.read()
        self.requests.append((request.method, request.path_qs, body))
        match = AUTHORIZATION.fullmatch(request.headers.get("Authorization", ""))
        if not match or match["mchid"] != self.mchid or match["serial"] != self.cert_serial:
            return None
        if abs(int(match["timestamp"]) - time.time()) > 300:
            return None
        message = (
            (
                f"{request.method}\n{request.raw_path}\n{match['timestamp']}\n{match['nonce']}\n"
            ).encode()
            + body
            + b"\n"
        )
        try:
            self.merchant_key.public_key().verify(
                base64.b64decode(match["signature"]), message, padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            return None
        return body

    async def _native(self, request: web.Request) -> web.Response:
        body = await self._authorized(request)
        if body is None:
            return web.json_response({"code": "SIGN_ERROR", "message": "签名错误"}, status=401)
        if (limited := self._throttled()) is not None:
            return limited
        try:
            data = json.loads(body)
            total = data["amount"]["total"]
            valid = (
                data["appid"] == self.appid
                and data["mchid"] == self.mchid
                and OUT_TRADE_NO.fullmatch(data["out_trade_no"])
                and data["amount"].get("currency", "CNY") == "CNY"
                and type(total) is int
                and total > 0
                and "?" not in data["notify_url"]
                and datetime.fromisoformat(data["time_expire"]).tzinfo is not None
                and 1 <= len(data["description"]) <= 127
            )
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            return self._error(400, "PARAM_ERROR", "参数错误")
        trade = self.trades.get(data["out_trade_no"])
        if trade is None:
            trade = self.trades[data["out_trade_no"]] = Trade(
                appid=data["appid"],
                mchid=data["mchid"],
                description=data["description"],
                out_trade_no=data["out_trade_no"],
                total=total,
                notify_url=data["notify_url"],
                time_expire=data["time_expire"],
                code_url="weixin://wxpay/bizpayurl?pr=" + secrets.token_urlsafe(6),
            )
        elif trade.trade_state in ("SUCCESS", "REFUND"):
            return self._error(403, "ORDERPAID", "该订单已支付")
        elif trade.trade_state == "CLOSED":  # a closed out_trade_no is never open again
            return self._error(400, "ORDERCLOSED", "订单已关闭")
        elif (trade.total, trade.description) != (total, data["description"]):
            return self._error(400, "INVALID_REQUEST", "201 商户订单号重复")
        return self._answer(200, {"code_url": trade.code_url})

    async def _query(self, request: web.Request) -> web.Response:
        if await self._authorized(request) is None:
            return web.json_response({"code": "SIGN_ERROR", "message": "签名错误"}, status=401)
        if (limited := self._throttled()) is not None:
            return limited
        if request.query.get("mchid") != self.mchid:
            return self._error(400, "PARAM_ERROR", "mchid")
        trade = self.trades.get(request.match_info["biz"])
        if trade is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        return self._answer(200, trade.as_json())

    async def _close(self, request: web.Request) -> web.Response:
        body = await self._authorized(request)
        if body is None:
            return web.json_response({"code": "SIGN_ERROR", "message": "签名错误"}, status=401)
        if (limited := self._throttled()) is not None:
            return limited
        if json.loads(body) != {"mchid": self.mchid}:
            return self._error(400, "PARAM_ERROR", "mchid")
        trade = self.trades.get(request.match_info["biz"])
        if trade is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        if trade.trade_state in ("SUCCESS", "REFUND"):
            return self._error(400, "ORDERPAID", "订单已支付")
        if trade.trade_state in ("NOTPAY", "USERPAYING"):
            trade.trade_state = "CLOSED"
        return self._answer(204)
