"""A local Stripe for tests: the Checkout Session endpoints the shop calls, in Stripe's wire format
(form-encoded requests with `Authorization: Bearer`, JSON answers, errors as `{"error": {...}}`,
`Idempotency-Key` replays), and webhook events signed as Stripe signs them.

A session's `url` is a page of the fake (`/c/pay/<session id>`, as Stripe's is on
checkout.stripe.com), standing in for Stripe Checkout: Pay completes the session (paid) and sends
`checkout.session.completed`, Cancel goes back to the session's `cancel_url` and changes nothing,
Let it expire expires it and sends `checkout.session.expired`. Stripe has no notify_url per
session: events go to the one `webhook_url` (the endpoint registered at Stripe), each attempt signed
with the time it is sent, again on a schedule until a 2xx answer. Expiring a session through the
API sends `checkout.session.expired` too, as at Stripe. Without a `webhook_url` nothing is sent."""

import hashlib
import hmac
import json
import secrets
import string
import time
from collections.abc import Callable
from html import escape
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from tests.fakes import pages, serve
from tests.fakes.delivery import Build, Delivery, Notifier

ALPHANUMERIC = string.ascii_letters + string.digits
MIN_EXPIRY = 30 * 60
MAX_EXPIRY = 24 * 60 * 60


def stripe_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def new_secret_key() -> str:
    return stripe_id("sk_test_", 99)


def new_webhook_secret() -> str:
    return stripe_id("whsec_", 32)


def sign(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back into objects: `a[b][0][c]=v` is {"a": {"b": [{"c": "v"}]}}."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head] + [part.rstrip("]") for part in rest.split("[")] if rest else [head]
        node: Any = root
        for part, following in zip(path, path[1:] + [None], strict=True):
            if following is None:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_lists(node[key]) for key in sorted(node, key=int)]
    return {key: _lists(value) for key, value in node.items()}


def stripe_accepts(status: int, body: bytes) -> bool:
    """Stripe counts any 2xx as delivered."""
    return 200 <= status < 300


def error(status: int, message: str, **fields: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", **fields}}
    return web.json_response(body, status=status)


class FakeStripe:
    """Sessions in memory; `tamper` rewrites each session answered, `drop_next_answer` closes the
    connection instead of answering the next create (after creating the session)."""

    def __init__(
        self,
        *,
        secret_key: str | None = None,
        webhook_secret: str | None = None,
        webhook_url: str = "",
        notifier: Notifier | None = None,
    ) -> None:
        self.secret_key = secret_key or new_secret_key()
        self.webhook_secret = webhook_secret or new_webhook_secret()
        self.webhook_url = webhook_url  # where events go; none are sent without it
        self.notifier = notifier or Notifier()
        self.deliveries: dict[str, list[Delivery]] = {}  # each session's events, as sent
        self.names: dict[str, str] = {}  # each session's product, for its page
        self.sessions: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # each create's parameters, as Stripe parsed them
        self.replayed = 0
        self.tamper: Callable[[dict[str, Any]], Any] | None = None
        self.drop_next_answer = False
        # The next this many answers to a create (a replay included) are lost on the way back.
        self.drop_answers = 0
        # The Idempotency-Key of each create, as sent (None without one), replays included.
        self.idempotency_keys: list[str | None] = []
        # The next this many API calls are answered 429 (rate_limit), as Stripe does.
        self.throttle = 0
        self._keys: dict[str, tuple[dict[str, Any], int, bytes]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self._create)
        app.router.add_get("/v1/checkout/sessions/{id}", self._retrieve)
        app.router.add_post("/v1/checkout/sessions/{id}/expire", self._expire)
        app.router.add_get("/", self._index)
        app.router.add_get("/c/pay/{id}", self._checkout_page)
        app.router.add_post("/c/pay/{id}", self._checkout_action)
        self._runner, self.url = await serve(app, host, port)
        return self.url

    async def stop(self) -> None:
        await self.notifier.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # What happens at Stripe outside the shop's calls.

    def open_session(
        self,
        *,
        client_reference_id: str | None,
        amount: int,
        currency: str,
        success_url: str | None = None,
        cancel_url: str | None = None,
        expires_at: int | None = None,
    ) -> dict[str, Any]:
        """A new Checkout Session, open and unpaid, as Stripe's create makes it, kept in `sessions`
        (without `expires_at`, Stripe's default: 24 hours)."""
        session_id = stripe_id("cs_test_", 58)
        created = int(time.time())
        # A fake that is not served has no page of its own: the address is Stripe's.
        page = self.url or "https://checkout.stripe.com"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": cancel_url,
            "client_reference_id": client_reference_id,
            "created": created,
            "currency": currency,
            "expires_at": created + MAX_EXPIRY if expires_at is None else expires_at,
            "livemode": False,
            "metadata": {},
            "mode": "payment",
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": success_url,
            "url": f"{page}/c/pay/{session_id}",
        }
        self.sessions[session_id] = session
        return session

    def complete(self, session_id: str, *, payment_status: str = "paid") -> None:
        """The shopper pays on the hosted page; "unpaid" for a delayed method (a bank debit)."""
        self.sessions[session_id].update(status="complete", payment_status=payment_status)

    def expire(self, session_id: str) -> None:
        self.sessions[session_id]["status"] = "expired"

    def event(self, session_id: str, event_type: str, **changes: Any) -> bytes:
        """The webhook event's body, as Stripe sends it (snapshot: the session inside)."""
        body = {
            "id": stripe_id("evt_", 24),
            "object": "event",
            "api_version": "2025-09-30.clover",
            "created": int(time.time()),
            "data": {"object": dict(self.sessions[session_id])},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        body.update(changes)
        return json.dumps(body).encode()

    def signature_header(
        self, body: bytes, *, timestamp: int | None = None, secret: str | None = None
    ) -> str:
        timestamp = int(time.time()) if timestamp is None else timestamp
        return f"t={timestamp},v1={sign(body, secret or self.webhook_secret, timestamp)}"

    def notice(self, session_id: str, event_type: str) -> tuple[dict[str, str], bytes]:
        body = self.event(session_id, event_type)
        return {"Stripe-Signature": self.signature_header(body)}, body

    def _sender(self, session_id: str, event_type: str) -> Build:
        """The event as the session now stands, and how each attempt to send it is built."""
        body = self.event(session_id, event_type)

        def build() -> tuple[dict[str, str], bytes]:
            return {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": self.signature_header(body),
            }, body

        return build

    async def deliver(self, session_id: str, event_type: str) -> Delivery | None:
        """Send the event to the webhook endpoint now (its first answer awaited, retries later)."""
        if not self.webhook_url:
            return None
        build = self._sender(session_id, event_type)
        delivery = await self.notifier.deliver(event_type, self.webhook_url, build, stripe_accepts)
        self.deliveries.setdefault(session_id, []).append(delivery)
        return delivery

    def deliver_soon(self, session_id: str, event_type: str) -> None:
        """Send the event in the background, as Stripe does after answering an API call."""
        if not self.webhook_url:
            return
        build = self._sender(session_id, event_type)
        delivery = self.notifier.deliver_soon(event_type, self.webhook_url, build, stripe_accepts)
        self.deliveries.setdefault(session_id, []).append(delivery)

    # The pages that stand in for Stripe Checkout.

    async def _index(self, request: web.Request) -> web.Response:
        rows = [
            (
                f'<a href="/c/pay/{escape(session["id"])}">{escape(session["id"][:24])}…</a>',
                escape(str(session["client_reference_id"])),
                escape(self.names.get(session["id"], "")),
                escape(pages.money(session["amount_total"], session["currency"])),
                f'<span data-status="{escape(session["status"])}">'
                f"{escape(session['status'])} / {escape(session['payment_status'])}</span>",
            )
            for session in reversed(self.sessions.values())
        ]
        headings = ("session", "client_reference_id", "product", "amount", "status")
        body = pages.listing(headings, rows)
        if not self.webhook_url:
            body += pages.note("No webhook endpoint is set: no events are sent.")
        return pages.page("Stripe", "Checkout Sessions", body)

    async def _checkout_page(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return pages.missing("Stripe", "Checkout Session")
        body = (
            f'<p class="amount">'
            f"{escape(pages.money(session['amount_total'], session['currency']))}</p>"
            f"<p>{escape(self.names.get(session['id'], ''))} · client_reference_id "
            f"<code>{escape(str(session['client_reference_id']))}</code></p>"
            + pages.status_line("status", session["status"])
            + f"<p>payment_status: <strong>{escape(session['payment_status'])}</strong></p>"
        )
        if self._payable(session):
            body += pages.actions(
                request.path, [("pay", "Pay"), ("cancel", "Cancel"), ("expire", "Let it expire")]
            )
            body += pages.note(
                "Pay: the session completes, paid, and checkout.session.completed goes to the "
                "webhook endpoint. Cancel: back to the shop, the session stays open. Let it expire: "
                "the session expires and checkout.session.expired is sent."
            )
        elif session["status"] == "open":
            body += pages.note("This session is past its expires_at.")
        if session["status"] == "complete" and session.get("success_url"):
            url = escape(session["success_url"])
            body += f'<p><a id="return" href="{url}">Return to the shop</a></p>'
        if not self.webhook_url:
            body += pages.note("No webhook endpoint is set: no events are sent.")
        body += pages.deliveries(self.deliveries.get(session["id"], []))
        return pages.page("Stripe", "Pay", body)

    async def _checkout_action(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return pages.missing("Stripe", "Checkout Session")
        action = (await request.post()).get("action")
        if action not in ("pay", "cancel", "expire"):
            return pages.page("Stripe", "Unknown action", "", status=400)
        if not self._payable(session):
            body = pages.status_line("status", session["status"])
            return pages.page("Stripe", "This session can no longer be paid", body, status=409)
        if action == "pay":
            self.complete(session["id"])
            session["payment_intent"] = stripe_id("pi_", 24)
            await self.deliver(session["id"], "checkout.session.completed")
        elif action == "cancel":
            raise web.HTTPSeeOther(session.get("cancel_url") or request.path)
        else:
            self.expire(session["id"])
            await self.deliver(session["id"], "checkout.session.expired")
        raise web.HTTPSeeOther(request.path)

    @staticmethod
    def _payable(session: dict[str, Any]) -> bool:
        return session["status"] == "open" and time.time() < session["expires_at"]

    # The API.

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.secret_key}"

    def _throttled(self) -> web.Response | None:
        if self.throttle <= 0:
            return None
        self.throttle -= 1
        body = {
            "error": {
                "code": "rate_limit",
                "message": "Request rate limit exceeded.",
                "type": "invalid_request_error",
            }
        }
        return web.json_response(body, status=429)

    def _lose(self, request: web.Request) -> None:
        """Close the connection instead of answering, if `drop_answers` says so."""
        if self.drop_answers > 0:
            self.drop_answers -= 1
            request.transport.close()

    def _answer(self, session: dict[str, Any]) -> web.Response:
        shown = self.tamper(dict(session)) if self.tamper else session
        return web.json_response(shown)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return error(401, "Invalid API Key provided")
        if (limited := self._throttled()) is not None:
            return limited
        if request.content_type != "application/x-www-form-urlencoded":
            return error(400, "Invalid request: the body must be form-encoded")
        params = nested(parse_qsl(await request.text(), keep_blank_values=True))
        key = request.headers.get("Idempotency-Key")
        self.idempotency_keys.append(key)
        if key in self._keys:
            first, status, body = self._keys[key]
            if first != params:
                return web.json_response(
                    {
                        "error": {
                            "message": "Keys for idempotent requests can only be used with the "
                            "same parameters they were first used with.",
                            "type": "idempotency_error",
                        }
                    },
                    status=400,
                )
            self.replayed += 1
            self._lose(request)
            return web.Response(
                body=body,
                status=status,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        answer = self._new_session(params)
        if key:
            self._keys[key] = (params, answer.status, answer.body)
        if self.drop_next_answer:
            self.drop_next_answer = False
            request.transport.close()  # the answer is lost on the way back
        self._lose(request)
        return answer

    def _new_session(self, params: dict[str, Any]) -> web.Response:
        if params.get("mode") != "payment":
            return error(400, "Missing required param: mode.", param="mode")
        try:
            (item,) = params["line_items"]
            price = item["price_data"]
            amount = int(price["unit_amount"]) * int(item["quantity"])
            name = price["product_data"]["name"]
            currency = price["currency"]
        except (KeyError, TypeError, ValueError):
            return error(400, "Invalid line_items", param="line_items")
        expires_at = int(params.get("expires_at", time.time() + MAX_EXPIRY))
        if not MIN_EXPIRY <= expires_at - time.time() <= MAX_EXPIRY:
            return error(
                400,
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                "Checkout Session creation.",
                param="expires_at",
            )
        session = self.open_session(
            client_reference_id=params.get("client_reference_id"),
            amount=amount,
            currency=currency,
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            expires_at=expires_at,
        )
        self.names[session["id"]] = name
        self.created.append(params | {"name": name})
        return self._answer(session)

    async def _retrieve(self, request: web.Request) -> web.Response:
        found = self._session(request)
        return found if isinstance(found, web.Response) else self._answer(found)

    async def _expire(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if isinstance(session, web.Response):
            return session
        if session["status"] != "open":
            return error(
                400,
                'Only Checkout Sessions with a status in ["open"] can be expired.',
            )
        session["status"] = "expired"
        self.deliver_soon(session["id"], "checkout.session.expired")
        return self._answer(session)

    def _session(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The session the request's path names, or Stripe's refusal: unauthorized, throttled,
        or no such session."""
        if not self._authorized(request):
            return error(401, "Invalid API Key provided")
        if (limited := self._throttled()) is not None:
            return limited
        session = self.sessions.get(request.match_info["id"])
        return _missing(request.match_info["id"]) if session is None else session


def _missing(session_id: str) -> web.Response:
    return error(
        404, f"No such checkout.session: '{session_id}'", code="resource_missing", param="session"
    )
