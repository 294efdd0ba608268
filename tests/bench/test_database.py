"""`make bench` creates the PostgreSQL database its DATABASE_URL names when it is missing."""

import uuid

import psycopg
import pytest
from django.db import connection

from bench.run import database_create


@pytest.fixture
def missing_database(postgres):
    settings = connection.settings_dict
    name = f"bench_{uuid.uuid4().hex[:12]}"
    server = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}"
    yield f"{server}/{name}", f"{server}/postgres", name
    with psycopg.connect(f"{server}/postgres", autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}"')


def exists(maintenance_url: str, name: str) -> bool:
    with psycopg.connect(maintenance_url) as db:
        return bool(db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone())


def test_a_missing_database_is_created_and_an_existing_one_kept(missing_database):
    url, maintenance_url, name = missing_database
    assert not exists(maintenance_url, name)
    database_create(url)
    assert exists(maintenance_url, name)
    with psycopg.connect(url) as db:
        db.execute("CREATE TABLE kept (id int)")
    database_create(url)  # already there: left as it is
    with psycopg.connect(url) as db:
        assert db.execute("SELECT count(*) FROM kept").fetchone() == (0,)
