"""A local Alipay open-platform gateway: face-to-face precreate, query, close, and notices.

It speaks Alipay's wire format as the open platform documents it, on its own (it imports nothing
from the adapter it tests): requests are form fields checked against the app's public key over
the sorted pairs without `sign` and empty values; answers are `{"<method>_response": {...},
"sign": ...}` signed over the exact text of the response value; notices are form fields signed
over the sorted pairs without `sign` and `sign_type`, empty values kept. A trade exists only once
its code is scanned (`scan`), as at Alipay.

The `qr_code` it answers is a page of its own (`/qr/<out_trade_no>`), where a person or a browser
test plays the shopper's app: Pay (scan and pay; the signed TRADE_SUCCESS notice goes to the trade's
notify_url, again on a schedule until the answer is `success`), Cancel (scanned, left unpaid:
nothing is sent) or Let it time out (closed; a TRADE_CLOSED notice). `/` lists the trades.
"""

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from html import escape
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from tests.fakes import load_private, load_public, pages, rsa_sign, rsa_verifies, serve
from tests.fakes.delivery import Delivery, Notifier

BEIJING = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
NOT_EXIST = {
    "code": "40004",
    "msg": "Business Failed",
    "sub_code": "ACQ.TRADE_NOT_EXIST",
    "sub_msg": "交易不存在",
}


def beijing(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def pairs(fields: dict[str, str], *, leave_out: set[str], keep_empty: bool) -> bytes:
    chosen = sorted(
        (k, v) for k, v in fields.items() if k not in leave_out and (keep_empty or v != "")
    )
    return "&".join(f"{k}={v}" for k, v in chosen).encode()


@dataclass
class Trade:
    out_trade_no: str
    total_amount: str
    subject: str
    notify_url: str
    qr_code: str
    trade_no: str = ""  # given when the code is scanned
    status: str = "WAIT_BUYER_PAY"
    paid_at: datetime | None = None
    time_expire: str = ""  # Beijing time, as the precreate gave it

    def expired(self) -> bool:
        if not self.time_expire:
            return False
        expiry = datetime.strptime(self.time_expire, TIME_FORMAT).replace(tzinfo=BEIJING)
        return datetime.now(UTC) >= expiry


def alipay_accepts(status: int, body: bytes) -> bool:
    """Alipay stops delivering once the merchant answers the seven characters `success`."""
    return status == 200 and body.strip() == b"success"


@dataclass
class FakeAlipay:
    app_id: str
    app_public_key: str  # PEM: checks the shop's requests
    alipay_private_key: str  # PEM: signs answers and notices
    trades: dict[str, Trade] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    # How the next answers are spoiled, to test the shop's checks: "unsigned", "bad_signature",
    # "tampered" (changed after signing), or a PEM private key to sign with instead of Alipay's.
    forge: str | None = None
    # The next this many gateway calls are answered HTTP 429, as a rate-limiting edge does.
    throttle: int = 0
    url: str = ""  # the gateway: <base>/gateway.do
    base: str = ""
    # Notices sent from the pages, with their retries; each trade's, by out_trade_no.
    notifier: Notifier = field(default_factory=Notifier)
    deliveries: dict[str, list[Delivery]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/gateway.do", self._gateway)
        app.router.add_get("/", self._index)
        app.router.add_get("/qr/{biz}", self._code_page)
        app.router.add_post("/qr/{biz}", self._code_action)
        self._runner, self.base = await serve(app, host, port)
        self.url = f"{self.base}/gateway.do"
        return self.url

    async def stop(self) -> None:
        await self.notifier.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # The shopper's side.

    def scan(self, biz: str) -> Trade:
        trade = self.trades[biz]
        trade.trade_no = trade.trade_no or datetime.now(BEIJING).strftime("%Y%m%d") + "".join(
            secrets.choice("0123456789") for _ in range(20)
        )
        return trade

    def pay(self, biz: str) -> Trade:
        trade = self.scan(biz)
        trade.status, trade.paid_at = "TRADE_SUCCESS", datetime.now(UTC)
        return trade

    # Notices.

    def notice_fields(
        self, biz: str, *, notify_time: datetime | None = None, **overrides: str
    ) -> dict[str, str]:
        """The fields of a trade_status_sync notice about `biz`, unsigned."""
        trade = self.trades[biz]
        now = notify_time or datetime.now(UTC)
        fields = {
            "notify_time": beijing(now),
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(17),
            "charset": "utf-8",
            "version": "1.0",
            "app_id": self.app_id,
            "auth_app_id": self.app_id,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": trade.total_amount,
            "receipt_amount": trade.total_amount,
            "buyer_id": "2088102169481075",
            "buyer_logon_id": "csq***@sandbox.com",
            "seller_id": "2088102179075543",
            "subject": trade.subject,
            "gmt_create": beijing(now - timedelta(seconds=30)),
            "fund_bill_list": json.dumps(
                [{"amount": trade.total_amount, "fundChannel": "ALIPAYACCOUNT"}],
                separators=(",", ":"),
            ),
        }
        if trade.paid_at is not None:
            fields["gmt_payment"] = beijing(trade.paid_at)
        fields.update(overrides)
        return fields

    def sign_notice(
        self, fields: dict[str, str], *, key: str | None = None, request_rule: bool = False
    ) -> dict[str, str]:
        """`fields` with `sign_type` and `sign`, as Alipay signs a notice (or, with
        `request_rule`, as a request is signed: the mix-up that the shop must refuse)."""
        private = load_private(key or self.alipay_private_key)
        if request_rule:
            signed = {**fields, "sign_type": "RSA2"}
            content = pairs(signed, leave_out={"sign"}, keep_empty=False)
        else:
            content = pairs(fields, leave_out={"sign", "sign_type"}, keep_empty=True)
        return {**fields, "sign_type": "RSA2", "sign": rsa_sign(private, content)}

    def notice(self, biz: str, **overrides: str) -> bytes:
        """A genuine notice's body about `biz` as it now stands."""
        return urlencode(self.sign_notice(self.notice_fields(biz, **overrides))).encode()

    async def notify(self, biz: str) -> tuple[int, bytes]:
        """Deliver a notice to the trade's notify_url, as Alipay does: the shop's answer."""
        async with aiohttp.ClientSession() as session:
            async with session.post(
                self.trades[biz].notify_url, data=self.notice(biz), headers={"Content-Type": FORM}
            ) as response:
                return response.status, await response.read()

    async def deliver(self, biz: str) -> Delivery | None:
        """Notify the trade as it now stands, as Alipay does: the first attempt answered, and
        later ones (each with its own notify_time, the same notify_id) until one is accepted.
        None when the precreate gave no notify_url."""
        trade = self.trades[biz]
        if not trade.notify_url:
            return None
        fields = self.notice_fields(biz)

        def build() -> tuple[dict[str, str], bytes]:
            sent = {**fields, "notify_time": beijing(datetime.now(UTC))}
            return {"Content-Type": FORM}, urlencode(self.sign_notice(sent)).encode()

        delivery = await self.notifier.deliver(
            f"{trade.status} notice", trade.notify_url, build, alipay_accepts
        )
        self.deliveries.setdefault(biz, []).append(delivery)
        return delivery

    # The pages that stand in for the shopper's Alipay app.

    async def _index(self, request: web.Request) -> web.Response:
        rows = [
            (
                f'<a href="/qr/{quote(trade.out_trade_no, safe="")}">'
                f"{escape(trade.out_trade_no)}</a>",
                escape(trade.subject),
                escape(trade.total_amount),
                f'<span data-status="{escape(trade.status)}">{escape(trade.status)}</span>',
            )
            for trade in reversed(self.trades.values())
        ]
        body = pages.listing(("out_trade_no", "subject", "yuan", "status"), rows)
        return pages.page("Alipay", "Trades", body)

    async def _code_page(self, request: web.Request) -> web.Response:
        trade = self.trades.get(request.match_info["biz"])
        if trade is None:
            return pages.missing("Alipay", "code")
        body = (
            f'<p class="amount">¥{escape(trade.total_amount)}</p>'
            f"<p>{escape(trade.subject)} · out_trade_no <code>{escape(trade.out_trade_no)}</code>"
            + (f" · trade_no <code>{escape(trade.trade_no)}</code>" if trade.trade_no else "")
            + "</p>"
            + pages.status_line("trade_status", trade.status if trade.trade_no else "not scanned")
        )
        if self._payable(trade):
            body += pages.actions(
                request.path,
                [("pay", "Pay"), ("cancel", "Cancel"), ("time_out", "Let it time out")],
            )
            body += pages.note(
                "Pay: the trade is paid and a TRADE_SUCCESS notice goes to the shop. Cancel: the "
                "code is scanned and left unpaid, and Alipay sends nothing. Let it time out: the "
                "trade is closed and a TRADE_CLOSED notice goes to the shop."
            )
        elif trade.status == "WAIT_BUYER_PAY":
            body += pages.note(f"This code expired at {trade.time_expire} (Beijing time).")
        if not trade.notify_url:
            body += pages.note("The precreate gave no notify_url: Alipay notifies nobody.")
        body += pages.deliveries(self.deliveries.get(trade.out_trade_no, []))
        return pages.page("Alipay", f"Pay {trade.subject}", body)

    async def _code_action(self, request: web.Request) -> web.Response:
        trade = self.trades.get(request.match_info["biz"])
        if trade is None:
            return pages.missing("Alipay", "code")
        action = (await request.post()).get("action")
        if action not in ("pay", "cancel", "time_out"):
            return pages.page("Alipay", "Unknown action", "", status=400)
        if not self._payable(trade):
            body = pages.status_line("trade_status", trade.status)
            return pages.page("Alipay", "This code can no longer be paid", body, status=409)
        if action == "pay":
            self.pay(trade.out_trade_no)
            await self.deliver(trade.out_trade_no)
        elif action == "cancel":
            self.scan(trade.out_trade_no)
        else:
            self.scan(trade.out_trade_no).status = "TRADE_CLOSED"
            await self.deliver(trade.out_trade_no)
        raise web.HTTPSeeOther(request.path)

    @staticmethod
    def _payable(trade: Trade) -> bool:
        return trade.status == "WAIT_BUYER_PAY" and not trade.expired()

    # The open platform's gateway.

    async def _gateway(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) if request.method == "POST" else {}
        form = {**dict(request.query), **form}
        self.requests.append({k: str(v) for k, v in form.items()})
        if self.throttle > 0:
            self.throttle -= 1
            return web.Response(status=429, text="Too Many Requests")
        method = str(form.get("method", ""))
        key = method.replace(".", "_") + "_response"
        problem = self._check(form)
        if problem:
            # Alipay does not sign these gateway errors.
            value = {"code": "40002", "msg": "Invalid Arguments", "sub_code": problem}
            return self.answer(key, value, signed=False)
        biz_content = json.loads(form["biz_content"])
        handler = {
            "alipay.trade.precreate": self._precreate,
            "alipay.trade.query": self._query,
            "alipay.trade.close": self._close,
        }.get(method)
        if handler is None:
            return self.answer(key, {"code": "40004", "sub_code": "isv.invalid-method"})
        return self.answer(key, handler(biz_content, form))

    def _check(self, form: dict) -> str:
        for name in ("app_id", "method", "charset", "sign_type", "timestamp", "version", "sign"):
            if not form.get(name):
                return f"isv.missing-{name.replace('_', '-')}"
        if form["app_id"] != self.app_id:
            return "isv.invalid-app-id"
        if (form["charset"], form["sign_type"], form["version"]) != ("utf-8", "RSA2", "1.0"):
            return "isv.invalid-parameter"
        if form.get("format", "JSON") != "JSON":
            return "isv.invalid-format"
        try:
            sent = datetime.strptime(form["timestamp"], TIME_FORMAT).replace(tzinfo=BEIJING)
        except ValueError:
            return "isv.invalid-timestamp"
        if abs((sent - datetime.now(UTC)).total_seconds()) > 600:
            return "isv.invalid-timestamp"
        content = pairs(form, leave_out={"sign"}, keep_empty=False)
        if not rsa_verifies(load_public(self.app_public_key), content, form["sign"]):
            return "isv.invalid-signature"
        return ""

    def _precreate(self, biz: dict, form: dict) -> dict:
        out_trade_no = biz["out_trade_no"]
        datetime.strptime(biz["time_expire"], TIME_FORMAT)
        trade = self.trades.get(out_trade_no)
        if trade is None:
            trade = self.trades[out_trade_no] = Trade(
                out_trade_no=out_trade_no,
                total_amount=biz["total_amount"],
                subject=biz["subject"],
                notify_url=form.get("notify_url", ""),
                # Alipay's is https://qr.alipay.com/<token>, which its app opens; this one opens
                # the fake's page that stands in for the app.
                qr_code=f"{self.base}/qr/{quote(out_trade_no, safe='')}",
                time_expire=biz["time_expire"],
            )
        elif trade.status == "TRADE_CLOSED":  # a closed out_trade_no is never open again
            return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_HAS_CLOSE"}
        elif trade.status != "WAIT_BUYER_PAY":
            return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_HAS_SUCCESS"}
        return {
            "code": "10000",
            "msg": "Success",
            "out_trade_no": out_trade_no,
            "qr_code": trade.qr_code,
        }

    def _query(self, biz: dict, form: dict) -> dict:
        trade = self.trades.get(biz["out_trade_no"])
        if trade is None or not trade.trade_no:
            return NOT_EXIST
        answer = {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "csq***@sandbox.com",
            "trade_status": trade.status,
            "total_amount": trade.total_amount,
        }
        if trade.paid_at is not None:
            answer["send_pay_date"] = beijing(trade.paid_at)
        return answer

    def _close(self, biz: dict, form: dict) -> dict:
        trade = self.trades.get(biz["out_trade_no"])
        if trade is None or not trade.trade_no:
            return NOT_EXIST
        if trade.status != "WAIT_BUYER_PAY":
            return {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_STATUS_ERROR"}
        trade.status = "TRADE_CLOSED"
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
        }

    def answer(self, key: str, value: dict, *, signed: bool = True) -> web.Response:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        signer = self.alipay_private_key
        if self.forge not in (None, "unsigned", "bad_signature", "tampered"):
            signer = self.forge
        sign = rsa_sign(load_private(signer), text.encode())
        if self.forge == "bad_signature":
            sign = rsa_sign(load_private(signer), text.encode() + b" ")
        if self.forge == "tampered":
            text = text.replace("WAIT_BUYER_PAY", "TRADE_SUCCESS")
        if self.forge == "unsigned" or not signed:
            body = f'{{"{key}":{text}}}'
        else:
            body = f'{{"{key}":{text},"sign":"{sign}"}}'
        return web.Response(body=body.encode(), content_type="text/html", charset="utf-8")
