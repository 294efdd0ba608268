"""Django's database sessions, read in SQL built once (`shop.sql`).

Every shopper's page, Pay and socket handshake reads its session first. Through the ORM, whose
query is compiled again on each read, that read was 70% of finding the shopper's order for a Pay
or a page (bench/profile_notes.md, tenth pass). Here the same row is read by the same condition (the
key, and not expired), with the statement built once; writing sessions is Django's.
"""

from functools import cache

from django.contrib.sessions.backends import db
from django.db import connection
from django.utils import timezone

from shop import sql


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        with connection.cursor() as cursor:
            cursor.execute(_session_sql(self.model), [self.session_key, timezone.now()])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None  # as Django's: a missing or expired session starts anew
            return None
        return sql.from_row(self.model, row)


@cache
def _session_sql(model) -> str:
    key, expiry = sql.column(model, "session_key"), sql.column(model, "expire_date")
    return f"SELECT {sql.columns(model)} FROM {sql.table(model)} WHERE {key} = %s AND {expiry} > %s"
