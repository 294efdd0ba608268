"""A local WeChat Pay API v3 for the tests: Native pay, query and close by out_trade_no, speaking
WeChat's wire format (signed requests checked, every answer signed, notices AES-256-GCM encrypted)
with keys made at test time. It runs on a free port in the test's event loop.

It shares no code with the adapter: it signs with `wechatpayv3` (the test oracle) and checks the
requests' signatures with `cryptography`, each over the message as WeChat documents it."""

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wechatpayv3.utils import rsa_sign
from tests.fakes import serve

BEIJING = timezone(timedelta(hours=8))
SCHEMA = "WECHATPAY2-SHA256-RSA2048"
AUTHORIZATION = re.compile(
    SCHEMA + r' mchid="(?P<mchid>[^"]*)",nonce_str="(?P<nonce>[^"]*)",signature="(?P<signature>'
    r'[^"]*)",timestamp="(?P<timestamp>[0-9]+)",serial_no="(?P<serial>[^"]*)"'
)
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")


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
    url: str = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/v3/pay/transactions/native", self._native)
        app.router.add_get("/v3/pay/transactions/out-trade-no/{biz}", self._query)
        app.router.add_post("/v3/pay/transactions/out-trade-no/{biz}/close", self._close)
        self._runner, self.url = await serve(app)

    async def stop(self) -> None:
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

    def notice_body(self, transaction: dict[str, Any], *, apiv3_key: str | None = None) -> bytes:
        envelope = {
            "id": "EV-2018022511223320873",
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
        elif (trade.total, trade.description) != (total, data["description"]):
            return self._error(400, "INVALID_REQUEST", "201 商户订单号重复")
        return self._answer(200, {"code_url": trade.code_url})

    async def _query(self, request: web.Request) -> web.Response:
        if await self._authorized(request) is None:
            return web.json_response({"code": "SIGN_ERROR", "message": "签名错误"}, status=401)
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
