"""Chaos, end to end: the shop as `make run` serves it (embedded sandbox, reconciler in the server),
driven over real HTTP while the payment system drops, duplicates and reorders its notifications and
the shop answers 500 for a while. Every order ends in the payment system's truth, changed once.

The server's SQLite file is read directly to count what it recorded; its log holds the
reconciler's structured lines.
"""

import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests import fake_http
from tests.servers import ShopServer, free_port

API_KEY = "sk_sandbox_dev_only"  # the embedded default, as `make run` has it
FINAL = ("paid", "failed", "expired")
TTL = 6  # seconds an order may wait for payment in this server
WAIT = 30.0  # how long to wait for orders to settle before the test fails


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Iterator[tuple[ShopServer, fake_http.FailingProxy]]:
    """One embedded shop whose notify_url goes through a proxy that can play dead."""
    port = free_port()
    with fake_http.failing_proxy(f"http://127.0.0.1:{port}") as (proxy_url, proxy):
        server = ShopServer(
            name="chaos",
            port=port,
            tmp_dir=tmp_path_factory.mktemp("chaos"),
            env={
                "SITE_URL": proxy_url,  # the payment system calls back through the proxy
                "PAYMENT_GATEWAY_URL": f"http://127.0.0.1:{port}/sandbox/",
                "ORDER_PAYMENT_TTL": str(TTL),
                "RECONCILE_QUERY_AFTER": "2",
                "RECONCILE_INTERVAL": "0.5",
            },
        )
        with server:
            yield server, proxy


@pytest.fixture
def server(shop) -> ShopServer:
    server, proxy = shop
    proxy.fail_next(0)
    httpx.delete(server.url + "/sandbox/v1/knobs", headers=_auth()).raise_for_status()
    return server


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def knobs(server: ShopServer, **values) -> None:
    httpx.post(server.url + "/sandbox/v1/knobs", json=values, headers=_auth()).raise_for_status()


class Shopper:
    """A browser without the browser: session and CSRF cookies, the forms a shopper submits."""

    def __init__(self, server: ShopServer) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=15)
        self.http.get("/").raise_for_status()

    def _csrf(self) -> str:
        return self.http.cookies["csrftoken"]

    def buy(self) -> str:
        form = {"product": _slug(self), "csrfmiddlewaretoken": self._csrf()}
        answer = self.http.post("/orders/", data=form)
        assert answer.status_code == 302, answer.text
        return answer.headers["location"].strip("/").split("/")[-1]

    def pay(self, biz: str) -> str:
        answer = self.http.post(
            f"/orders/{biz}/pay/", headers={"X-CSRFToken": self._csrf(), "HX-Request": "true"}
        )
        assert answer.status_code == 200, answer.text
        assert 'data-status="pending"' in answer.text
        return re.search(r"/sandbox/cashier/(pay_[0-9a-f]{24})", answer.text).group(1)

    def decide(self, payment_id: str, decision: str) -> None:
        answer = self.http.post(
            f"/sandbox/cashier/{payment_id}",
            data={"decision": decision, "csrfmiddlewaretoken": self._csrf()},
        )
        assert answer.status_code == 200, answer.text


def _slug(shopper: Shopper) -> str:
    page = shopper.http.get("/").text
    return re.search(r'name="product" value="([^"]+)"', page).group(1)


def query(server: ShopServer, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(server.tmp_dir / f"{server.name}.sqlite3", timeout=10) as db:
        return db.execute(sql, params).fetchall()


def statuses(server: ShopServer, bizs: list[str]) -> dict[str, str]:
    marks = ",".join("?" * len(bizs))
    sql = f"SELECT biz, status FROM checkout_order WHERE biz IN ({marks})"
    return dict(query(server, sql, *bizs))


def wait_until(condition, what: str, server: ShopServer) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {WAIT:.0f} s\n{server.log_tail()}")
        time.sleep(0.2)


def settled(server: ShopServer, bizs: list[str]) -> None:
    wait_until(
        lambda: all(s in FINAL for s in statuses(server, bizs).values()), "orders settled", server
    )


def deliveries_done(server: ShopServer, payment_ids: list[str]) -> None:
    marks = ",".join("?" * len(payment_ids))
    sql = (
        "SELECT count(*) FROM sandbox_notification"
        f" WHERE payment_id IN ({marks}) AND state = 'pending'"
    )
    wait_until(lambda: query(server, sql, *payment_ids)[0][0] == 0, "deliveries done", server)


def changes(server: ShopServer, bizs: list[str]) -> Counter:
    """How often each order's status was changed to a final one, by notification or reconciler."""
    marks = ",".join("?" * len(bizs))
    rows = query(
        server,
        f"SELECT biz FROM checkout_notification WHERE biz IN ({marks}) AND outcome IN (?, ?, ?)",
        *bizs,
        *FINAL,
    )
    counted = Counter(biz for (biz,) in rows)
    for biz, outcome in reconcile_steps(server):
        if biz in bizs and outcome in FINAL:
            counted[biz] += 1
    return counted


def changed_once(server: ShopServer, bizs: list[str]) -> None:
    """Each order changed to its final status exactly once. The reconciler logs its step after
    the step's commit, so `settled` can see the status before the line is in the log: wait for
    every order's line first (a second change would still count 2)."""
    wait_until(lambda: set(changes(server, bizs)) >= set(bizs), "every change recorded", server)
    assert changes(server, bizs) == Counter(bizs)


def reconcile_steps(server: ShopServer) -> list[tuple[str, str]]:
    return re.findall(r"reconcile step=\w+ biz=(\w+) payment=\S+ outcome=(\w+)", server.log_text())


def test_with_every_notification_dropped_orders_resolve_and_unpaid_ones_expire_by_themselves(
    server,
):
    knobs(server, drop=True)
    shopper = Shopper(server)
    approved, declined, abandoned, never_paid = (shopper.buy() for _ in range(4))
    for biz, decision in ((approved, "approve"), (declined, "decline")):
        shopper.decide(shopper.pay(biz), decision)
    abandoned_payment = shopper.pay(abandoned)
    bizs = [approved, declined, abandoned, never_paid]

    settled(server, bizs)

    assert statuses(server, bizs) == {
        approved: "paid",
        declined: "failed",
        abandoned: "expired",  # closed at the payment system by the reconciler, then expired
        never_paid: "expired",  # nobody pressed Pay: the server's own reconciler expired it
    }
    marks = ",".join("?" * len(bizs))
    sql = f"SELECT count(*) FROM checkout_notification WHERE biz IN ({marks})"
    came = query(server, sql, *bizs)
    assert came == [(0,)], "no notification came: all of it was learnt by asking"
    assert query(server, "SELECT status FROM sandbox_payment WHERE id = ?", abandoned_payment) == [
        ("closed",)
    ]
    changed_once(server, bizs)
    page = shopper.http.get(f"/orders/{never_paid}/")
    assert 'data-status="expired"' in page.text
    steps = dict(reconcile_steps(server))
    assert steps[approved] == "paid" and steps[declined] == "failed"


def test_duplicated_reordered_and_probed_notifications_change_each_order_once(server):
    knobs(server, duplicate=3, reorder_ms=300, bad_signature_probes=True)
    shopper = Shopper(server)
    bizs = [shopper.buy() for _ in range(4)]
    payments = [shopper.pay(biz) for biz in bizs]
    for i, payment_id in enumerate(payments):
        shopper.decide(payment_id, "approve" if i % 2 == 0 else "decline")

    settled(server, bizs)
    deliveries_done(server, payments)

    found = statuses(server, bizs)
    assert [found[biz] for biz in bizs] == ["paid", "failed", "paid", "failed"]
    changed_once(server, bizs)
    marks = ",".join("?" * len(bizs))
    accepted = Counter(
        biz
        for (biz,) in query(
            server,
            "SELECT biz FROM checkout_notification"
            f" WHERE biz IN ({marks}) AND verdict = 'accepted'",
            *bizs,
        )
    )
    assert all(accepted[biz] >= 4 for biz in bizs), accepted  # every copy recorded
    probes = query(
        server, "SELECT count(*) FROM checkout_notification WHERE verdict = 'bad_signature'"
    )[0][0]
    assert probes >= len(bizs)
    assert query(server, "SELECT count(*) FROM checkout_flag")[0][0] == 0


def test_a_shop_answering_500_for_a_while_gets_the_results_from_the_retries(shop, server):
    _, proxy = shop
    shopper = Shopper(server)
    bizs = [shopper.buy() for _ in range(3)]
    payments = [shopper.pay(biz) for biz in bizs]
    proxy.fail_next(6)
    for payment_id in payments:
        shopper.decide(payment_id, "approve")

    settled(server, bizs)
    deliveries_done(server, payments)

    assert proxy.failed == 6
    assert set(statuses(server, bizs).values()) == {"paid"}
    changed_once(server, bizs)
    marks = ",".join("?" * len(payments))
    attempts = query(
        server,
        "SELECT n.payment_id, a.status_code FROM sandbox_deliveryattempt a"
        " JOIN sandbox_notification n ON n.id = a.notification_id"
        f" WHERE n.payment_id IN ({marks}) ORDER BY a.number",
        *payments,
    )
    assert sorted(code for _, code in attempts).count(500) == 6
    states = query(
        server,
        f"SELECT state, last_status FROM sandbox_notification WHERE payment_id IN ({marks})",
        *payments,
    )
    assert states == [("delivered", 200)] * 3, "every notification got through in the end"
