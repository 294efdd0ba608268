"""Catalogue, buying, the checkout page and the Pay button, as the shopper's browser uses them."""

import re

import pytest
from django.urls import reverse

from checkout.models import Order, OrderStatus
from tests import fake_http
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def buy(client) -> Order:
    f.product()
    response = client.post(reverse("checkout:order_new"), {"product": "tea"})
    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/orders/{order.biz}/"
    return order


def test_catalogue_lists_products_with_a_csrf_protected_buy_form(client):
    f.product()
    html = client.get("/").content.decode()
    assert "Tea" in html and "¥19.99" in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_buy_form_refuses_a_post_without_csrf_token():
    from django.test import Client

    f.product()
    response = Client(enforce_csrf_checks=True).post("/orders/", {"product": "tea"})
    assert response.status_code == 403
    assert not Order.objects.exists()


def test_buying_creates_an_unguessable_order_owned_by_the_session(client):
    order = buy(client)
    assert re.fullmatch(r"[0-9a-f]{32}", order.biz)
    assert order.amount == 1999 and order.currency == "CNY"
    assert order.status == OrderStatus.UNPAID
    page = client.get(f"/orders/{order.biz}/").content.decode()
    assert page.count('id="payment-status"') == 1
    assert 'data-status="unpaid"' in page
    assert f'hx-ws:connect="/ws/order/{order.biz}/"' in page


def test_buying_an_unknown_product_is_404_and_creates_nothing(client):
    assert client.post("/orders/", {"product": "nope"}).status_code == 404
    assert not Order.objects.exists()


def test_another_session_gets_404_on_the_order_page(client):
    from django.test import Client

    order = buy(client)
    assert Client().get(f"/orders/{order.biz}/").status_code == 404
    assert Client().post(f"/orders/{order.biz}/pay/").status_code == 404


def test_page_serves_htmx_from_our_own_static_files(client):
    order = buy(client)
    page = client.get(f"/orders/{order.biz}/").content.decode()
    assert "/static/vendor/htmx/htmx.min.js" in page
    assert "/static/vendor/htmx/ext/hx-ws.js" in page
    assert "://cdn" not in page and "unpkg" not in page


@pytest.mark.parametrize(
    "misbehaviour",
    [{"status": 500}, {"status": 200, "body": b"not json"}, {"status": 201, "delay": 2.0}],
    ids=["error", "garbage", "slow"],
)
def test_payment_system_trouble_shows_a_retry_and_keeps_the_order_payable(
    client, settings, misbehaviour
):
    settings.PAYMENT_GATEWAY_TIMEOUT = 0.5
    order = buy(client)
    with fake_http.answering(**misbehaviour) as url:
        settings.PAYMENT_GATEWAY_URL = url
        response = client.post(f"/orders/{order.biz}/pay/")
    html = response.content.decode()
    assert response.status_code == 503
    assert 'data-status="unpaid"' in html
    assert "try again" in html.lower()
    assert f'hx-post="/orders/{order.biz}/pay/"' in html
    assert Order.objects.get().status == OrderStatus.UNPAID


def test_payment_system_down_shows_a_retry(client, settings):
    settings.PAYMENT_GATEWAY_URL = "http://127.0.0.1:9/"
    order = buy(client)
    response = client.post(f"/orders/{order.biz}/pay/")
    assert response.status_code == 503
    assert Order.objects.get().status == OrderStatus.UNPAID


def test_an_expired_order_cannot_start_a_payment(client):
    from datetime import timedelta

    from django.utils import timezone

    order = buy(client)
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(f"/orders/{order.biz}/pay/")
    assert response.status_code == 503
    assert "over" in response.content.decode()


def test_pay_answers_htmx_with_the_panel_alone_and_a_plain_post_with_the_page(client, settings):
    """A browser that posted the Pay form itself (no htmx yet) is shown a whole page."""
    settings.PAYMENT_GATEWAY_URL = "http://127.0.0.1:9/"
    order = buy(client)
    fragment = client.post(f"/orders/{order.biz}/pay/", headers=HTMX).content.decode()
    page = client.post(f"/orders/{order.biz}/pay/", headers={"Sec-Fetch-Mode": "navigate"})
    assert fragment.lstrip().startswith('<div id="payment-status"') and "<html" not in fragment
    assert page.status_code == 503 and page.content.decode().startswith("<!doctype html>")


def test_a_retry_from_a_sockets_panel_names_that_panel_again(client, settings):
    """The error's panel replaces the socket's in the page, so its retry is pressed there too; the
    page's own panel names none (checkout.consumers)."""
    settings.PAYMENT_GATEWAY_URL = "http://127.0.0.1:9/"
    order = buy(client)
    assert 'name="panel"' not in client.get(f"/orders/{order.biz}/").content.decode()
    response = client.post(f"/orders/{order.biz}/pay/", {"panel": "AbCdEf012_-x"}, headers=HTMX)
    assert response.status_code == 503
    assert '<input type="hidden" name="panel" value="AbCdEf012_-x">' in response.content.decode()


def test_pay_answers_only_post(client):
    order = buy(client)
    assert client.get(f"/orders/{order.biz}/pay/").status_code == 405
