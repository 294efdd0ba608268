import os

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
