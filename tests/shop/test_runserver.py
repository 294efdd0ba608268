"""`python manage.py runserver` is daphne's (daphne first in INSTALLED_APPS): with its autoreloader
on, a designer who edits a panel template sees the change on the next request, and the same server
answers the status WebSocket."""

import asyncio
import secrets
import time

import httpx

from tests.realtime.shopper import buy
from tests.realtime.streams import SESSION_COOKIE, next_status, open_stream
from tests.servers import ROOT, ShopServer, free_port

PAID_PANEL = ROOT / "templates/checkout/panels/paid.html"
BLOCK = "{% block panel %}\n"


def gallery_shows(url: str, text: str, timeout: float) -> bool:
    """GET the gallery until it shows `text`; False if it never does within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        page = httpx.get(url + "/gallery/", timeout=10)
        assert page.status_code == 200, page.text
        if text in page.text:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)


def designer_edit_shows(url: str, original: str, marker: str) -> bool:
    """Edit the paid panel, and reload the gallery until the edit shows. The autoreloader compares
    each file with what it saw on its previous look, once a second, so an edit made before its
    first look at the file (just after the start) goes unseen: the designer saves again."""
    edited = original.replace(BLOCK, f"{BLOCK}<p>{marker}</p>\n", 1)
    for _ in range(5):
        PAID_PANEL.write_text(edited)
        if gallery_shows(url, marker, timeout=3):
            return True
    return False


async def first_status(url: str, biz: str, session_key: str) -> str:
    stream = await open_stream(url, biz, session_key)
    try:
        return await next_status(stream)
    finally:
        await stream.close()


def test_runserver_shows_an_edited_panel_template_at_once_and_serves_the_status_socket(tmp_path):
    port = free_port()
    server = ShopServer(
        name="runserver",
        port=port,
        tmp_dir=tmp_path,
        command=("manage.py", "runserver", f"127.0.0.1:{port}"),  # with the autoreloader
        reconcile=False,
        deliver=False,
    )
    marker = f"designer-{secrets.token_hex(8)}"
    original = PAID_PANEL.read_text()
    assert BLOCK in original
    server.start()
    try:
        assert gallery_shows(server.url, "Paid. Thank you!", timeout=0)
        assert not gallery_shows(server.url, marker, timeout=0)

        try:
            assert designer_edit_shows(server.url, original, marker), server.log_tail()
        finally:
            PAID_PANEL.write_text(original)

        with httpx.Client(base_url=server.url, timeout=15) as shopper:
            biz = buy(shopper)
            session_key = shopper.cookies[SESSION_COOKIE]
        assert asyncio.run(first_status(server.url, biz, session_key)) == "unpaid"
    finally:
        server.stop()
