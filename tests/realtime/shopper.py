"""A shopper and the cashier over plain HTTP, through the shop's forms, for tests against real
server processes: buy, Pay, approve."""

from __future__ import annotations

import re

import httpx


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]


def buy(client: httpx.Client) -> str:
    """Buy the catalogue's first product; the order's biz."""
    page = client.get("/").text
    slug = re.search(r'name="product" value="([^"]+)"', page)[1]
    bought = client.post(
        "/orders/", data={"product": slug, "csrfmiddlewaretoken": csrf_token(page)}
    )
    assert bought.status_code == 302, bought.text
    return re.search(r"/orders/([0-9a-f]{32})/", bought.headers["location"])[1]


def pay(client: httpx.Client, biz: str) -> str:
    """Press Pay (as htmx does); the cashier URL the pending panel links to."""
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "HX-Request": "true"}
    paid = client.post(f"/orders/{biz}/pay/", headers=headers)
    assert paid.status_code == 200 and 'data-status="pending"' in paid.text, paid.text
    return re.search(r'<a [^>]*class="[^"]*cashier-link[^>]*href="([^"]+)"', paid.text)[1]


def approve(cashier_url: str) -> None:
    """What the shopper's phone does at the cashier."""
    with httpx.Client(timeout=15) as phone:
        form = phone.get(cashier_url).text
        answer = phone.post(
            cashier_url, data={"csrfmiddlewaretoken": csrf_token(form), "decision": "approve"}
        )
        assert answer.status_code < 400, answer.text
