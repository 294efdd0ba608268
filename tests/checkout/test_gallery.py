"""The designers' panel gallery: every sample in every language, naming its templates."""

import pytest
from django.contrib.auth.models import User

from checkout.gallery import SAMPLES
from tests.checkout.html import by_id, parse_page

pytestmark = pytest.mark.django_db


def test_gallery_shows_every_sample_in_both_languages_with_its_template_files(client, settings):
    settings.DEBUG = True
    response = client.get("/gallery/")
    assert response.status_code == 200
    html = response.content.decode()
    root = parse_page(html)  # the whole page parses strictly
    panels = by_id(root, "payment-status")
    assert len(panels) == len(SAMPLES) * len(settings.LANGUAGES)
    assert {p.get("data-status") for p in panels} == {s.status for s in SAMPLES}
    for sample in SAMPLES:
        for name in sample.templates:
            assert f"templates/{name}" in html
    assert "等待付款" in html and "Waiting for your payment" in html


def test_gallery_is_hidden_from_shoppers_outside_debug(client, settings):
    settings.DEBUG = False
    assert client.get("/gallery/").status_code == 404


def test_gallery_is_open_to_staff_outside_debug(client, settings):
    settings.DEBUG = False
    client.force_login(User.objects.create_user("designer", is_staff=True))
    assert client.get("/gallery/").status_code == 200
