"""`shop.sessions` reads a session as Django's database sessions do, in one query."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shop.sessions import SessionStore

pytestmark = pytest.mark.django_db


def saved(data: dict) -> str:
    session = db.SessionStore()
    session.update(data)
    session.save()
    return session.session_key


def test_a_session_reads_what_djangos_reads_in_one_query():
    key = saved({"shopper": "token-1", "cart": [1, 2]})
    ours = SessionStore(key)
    with CaptureQueriesContext(connection) as queries:
        assert ours["shopper"] == "token-1"
    assert len(queries) == 1
    assert dict(ours.items()) == dict(db.SessionStore(key).items())
    assert ours.session_key == key


@pytest.mark.parametrize("case", ["expired", "unknown"])
def test_an_expired_or_unknown_session_reads_empty_and_gets_a_new_key_when_saved(case):
    key = saved({"shopper": "token-1"})
    if case == "expired":
        Session.objects.filter(pk=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    else:
        key = "x" * 32
    session = SessionStore(key)
    assert session.get("shopper") is None
    assert session.session_key is None  # as Django's: never saved under a key it did not make
    session["shopper"] = "token-2"
    session.save()
    assert session.session_key != key
    assert db.SessionStore(session.session_key)["shopper"] == "token-2"
