"""The admin finds any order, payment or notification from the id a person holds, and links them."""

import pytest
from django.urls import reverse

from checkout.models import Flag, Notification, Order, Payment
from tests import asgi
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_order():
    order = f.order()
    payment = f.payment(order)
    body = f.notice_body(order, pay_id=payment.payment_id)
    assert f.notify(body).status_code == 200
    return order, payment, Notification.objects.get(biz=order.biz)


def changelist(admin_client, model: str, **params) -> str:
    response = admin_client.get(reverse(f"admin:checkout_{model}_changelist"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_an_order_is_found_by_biz_payment_id_or_event_id(admin_client, paid_order):
    order, payment, notification = paid_order
    other = f.order()
    for term in (order.biz, payment.payment_id, notification.event_id):
        html = changelist(admin_client, "order", q=term)
        assert order.biz in html and other.biz not in html, term


def test_payments_and_notifications_are_found_by_their_ids(admin_client, paid_order):
    order, payment, notification = paid_order
    for term in (order.biz, payment.payment_id, notification.event_id):
        assert payment.payment_id in changelist(admin_client, "payment", q=term), term
    for term in (notification.event_id, order.biz, payment.payment_id):
        assert notification.event_id in changelist(admin_client, "notification", q=term), term


def test_lists_filter_by_status_and_date(admin_client, paid_order):
    order, _, _ = paid_order
    assert order.biz in changelist(admin_client, "order", status="paid")
    assert order.biz not in changelist(admin_client, "order", status="pending")
    day = order.created_at
    html = changelist(admin_client, "order", created_at__year=day.year, created_at__month=day.month)
    assert order.biz in html


def change_page(admin_client, model: str, pk: int) -> str:
    return admin_client.get(reverse(f"admin:checkout_{model}_change", args=[pk])).content.decode()


def test_order_links_to_its_notifications_and_payment_links_to_its_order(admin_client, paid_order):
    order, payment, _ = paid_order
    page = change_page(admin_client, "order", order.pk)
    assert f"/admin/checkout/notification/?biz={order.biz}" in page
    assert payment.payment_id in page
    page = change_page(admin_client, "payment", payment.pk)
    assert reverse("admin:checkout_order_change", args=[order.pk]) in page


def test_a_notification_shows_its_raw_body_as_text_and_cannot_be_changed(admin_client, paid_order):
    order, _, notification = paid_order
    url = reverse("admin:checkout_notification_change", args=[notification.pk])
    page = admin_client.get(url).content.decode()
    assert "<pre" in page and f"&quot;out_trade_no&quot;: &quot;{order.biz}&quot;" in page
    assert f"/admin/checkout/order/?biz={order.biz}" in page
    assert 'name="_save"' not in page  # view only: the record of what was sent stays as it was
    assert admin_client.post(url, {"verdict": "malformed"}).status_code == 403
    assert Notification.objects.get(pk=notification.pk).verdict == "accepted"
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_a_notification_shows_its_length_and_hash(admin_client, paid_order):
    _, _, notification = paid_order
    page = change_page(admin_client, "notification", notification.pk)
    assert notification.body_sha256 in page and str(notification.body_length) in page
    assert "a refused request keeps no more" not in page  # accepted: the whole body


def test_a_refused_notification_shows_what_was_kept_of_how_much(admin_client):
    body = b"{" + b"x" * 4999
    assert asgi.post(f.SANDBOX_ROUTE, body, content_type="application/json").status_code == 400
    refused = Notification.objects.get(verdict="bad_signature")
    page = change_page(admin_client, "notification", refused.pk)
    assert "The first 1024 of 5000 bytes: a refused request keeps no more." in page
    assert refused.body_sha256 in page


def test_flagged_cases_are_listed_and_found_by_biz_payment_id_or_event_id(admin_client, paid_order):
    order, payment, notification = paid_order
    Flag.objects.create(order=order, kind=Flag.Kind.PAID_AFTER_EXPIRY)
    other = f.order()
    Flag.objects.create(order=other, kind=Flag.Kind.AMOUNT_MISMATCH)
    listed = admin_client.get(reverse("admin:checkout_flag_changelist"))
    assert len(listed.context["cl"].result_list) == 2
    for term in (order.biz, payment.payment_id, notification.event_id):
        response = admin_client.get(reverse("admin:checkout_flag_changelist"), {"q": term})
        assert [flag.order for flag in response.context["cl"].result_list] == [order], term


def test_the_admin_is_for_staff_only(client, paid_order):
    order, _, _ = paid_order
    response = client.get(reverse("admin:checkout_order_changelist"), {"q": order.biz})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_payments_notifications_and_orders_show_and_filter_by_provider(admin_client, paid_order):
    order, payment, notification = paid_order
    other = f.order()
    theirs = f.payment(other, provider="alipay")
    Payment.objects.filter(pk=theirs.pk).update(payment_id=f"alipay:{other.biz}")
    assert payment.payment_id in changelist(admin_client, "payment", gateway="sandbox")
    html = changelist(admin_client, "payment", gateway="alipay")
    assert f"alipay:{other.biz}" in html and payment.payment_id not in html
    assert notification.event_id in changelist(admin_client, "notification", gateway="sandbox")
    assert notification.event_id not in changelist(admin_client, "notification", gateway="stripe")
    html = changelist(admin_client, "order", provider="alipay")
    assert other.biz in html and order.biz not in html
    assert ">provider<" in changelist(admin_client, "payment").lower().replace(" ", "")
