import os

import channels.db
import pytest
from asgiref.sync import SyncToAsync
from django.db import connection, connections

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def require(available: bool, reason: str) -> None:
    """Skip the calling test when a service is missing, or fail under REQUIRE_SERVICES=1."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture
def postgres() -> None:
    """For tests whose behaviour depends on PostgreSQL (row locks, real concurrency)."""
    require(connection.vendor == "postgresql", "needs PostgreSQL")


@pytest.fixture(autouse=True)
def close_worker_connections():
    """Async code reaches the database from asgiref's one worker thread; close its connections so
    that the test database can be dropped at the end."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture(autouse=True)
def keep_the_tests_transaction(monkeypatch):
    """Channels' `database_sync_to_async` closes old connections around each call, as Django does
    around each request; Django's TestCase turns the latter off so that the connection holding a
    test's transaction stays open, and this does the same for the former."""

    def close_old_connections(**kwargs) -> None:
        for conn in connections.all(initialized_only=True):
            if not conn.in_atomic_block:
                conn.close_if_unusable_or_obsolete()

    monkeypatch.setattr(channels.db, "close_old_connections", close_old_connections)
