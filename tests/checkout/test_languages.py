"""English and Simplified Chinese: from Accept-Language, a switch on the page, and on the socket."""

import re
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.utils import translation

from checkout.models import OrderStatus
from shop.asgi import application
from tests.checkout import factories as f
from tests.checkout.html import parse_page

PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def po_entries(text: str) -> dict[str, str]:
    """msgid -> msgstr of a .po file (the subset of the format makemessages writes)."""
    entries = {}
    pattern = r'^msgid ((?:"(?:[^"\\]|\\.)*"\n)+)msgstr ((?:"(?:[^"\\]|\\.)*"\n?)+)'
    for match in re.finditer(pattern, text, re.M):
        msgid, msgstr = (
            "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', part)).replace('\\"', '"')
            for part in match.groups()
        )
        if msgid:
            entries[msgid] = msgstr
    return entries


def test_compiled_catalogue_matches_the_po_file_and_translates_everything():
    """The .mo is committed: it must say what the .po says (else `make messages` was not run)."""
    entries = po_entries(PO.read_text())
    assert entries and all(entries.values()), "an empty msgstr in the .po"
    with translation.override("zh-hans"):
        for msgid, msgstr in entries.items():
            assert translation.gettext(msgid) == msgstr, msgid


@pytest.mark.django_db
def test_accept_language_chinese_gets_the_catalogue_in_chinese(client):
    f.product()
    response = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    html = response.content.decode()
    assert parse_page(html).get("lang") == "zh-hans"
    assert "本店商品" in html and "¥19.99" in html


@pytest.mark.django_db
def test_accept_language_english_or_anything_else_gets_english(client):
    f.product()
    for header in ("en-GB,en;q=0.9", "fr-FR", ""):
        html = client.get("/", headers={"Accept-Language": header}).content.decode()
        assert 'lang="en"' in html and "Our shop" in html, header


@pytest.mark.django_db
def test_the_switch_on_the_page_sets_the_language_and_returns_to_the_page(client):
    f.product()
    page = client.get("/").content.decode()
    assert 'name="language" value="zh-hans"' in page and 'action="/i18n/setlang/"' in page
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    # The choice wins over the browser's Accept-Language.
    html = client.get("/", headers={"Accept-Language": "en"}).content.decode()
    assert "本店商品" in html and 'aria-pressed="true">简体中文' in html


def socket(order, session, headers: list[tuple[bytes, bytes]]):
    cookie = f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
    extra = [(name, value) for name, value in headers if name != b"cookie"]
    cookies = "; ".join([cookie, *(v.decode() for n, v in headers if n == b"cookie")])
    return WebsocketCommunicator(
        application,
        f"/ws/order/{order.biz}/",
        headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookies.encode()), *extra],
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "headers, expected",
    [
        ([(b"accept-language", b"zh-CN,zh;q=0.9")], "等待付款"),
        ([(b"cookie", b"django_language=zh-hans"), (b"accept-language", b"en")], "等待付款"),
        ([(b"cookie", b"django_language=en"), (b"accept-language", b"zh-CN")], "Waiting for"),
        ([], "Waiting for your payment"),
    ],
    ids=["accept-language", "cookie-over-header", "english-cookie", "default"],
)
async def test_the_socket_pushes_panels_in_the_shoppers_language(headers, expected):
    session = await sync_to_async(f.shopper_session)()
    order = await sync_to_async(f.order)(session, status=OrderStatus.PENDING)
    communicator = socket(order, session, headers)
    connected, _ = await communicator.connect()
    assert connected
    html = await communicator.receive_from()
    assert 'data-status="pending"' in html and expected in html
    await communicator.disconnect()
