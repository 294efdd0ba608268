"""Fixtures for tests against real shop processes sharing PostgreSQL and Redis.

The servers use the test run's own PostgreSQL database (the test is transactional, so what it
writes is committed and visible to them, and flushed afterwards), and Redis DB 4 of the local
Redis, or a redis-server of the test's own where the test must stop Redis.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import require
from tests.realtime.streams import RedisServer, postgres_url
from tests.servers import Servers, ShopServer, daphne_command, free_port

SHARED_REDIS = "redis://127.0.0.1:6379/4"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def shared_database(transactional_db) -> str:
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    return postgres_url(connection.settings_dict)


@pytest.fixture
def shared_redis() -> str:
    require(_redis_answers(), "needs Redis on 127.0.0.1:6379")
    return SHARED_REDIS


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    require(shutil.which("redis-server") is not None, "needs redis-server (apt-get install redis)")
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


class Shops(Servers):
    """Shop processes a test starts on the shared test database; all stopped at teardown, their
    logs shown on failure."""

    def __init__(self, tmp_dir: Path, database_url: str) -> None:
        super().__init__(tmp_dir)
        self.database_url = database_url

    def start(
        self,
        name: str,
        *,
        daphne: bool = False,
        reconcile: bool = True,
        deliver: bool = True,
        **env: str,
    ) -> ShopServer:
        """A shop on the shared database; with `daphne`, served as production serves it (the
        default: `runserver`, as `make run` does)."""
        port = free_port()
        server = self.new(
            name=name,
            database_url=self.database_url,
            env=env,
            port=port,
            command=daphne_command(port) if daphne else None,
            reconcile=reconcile,
            deliver=deliver,
        )
        # Migrations are the test database's already; the catalogue the tests seed themselves.
        server.prepared = True
        return server.start()


@pytest.fixture
def shops(tmp_path: Path, shared_database: str) -> Iterator[Shops]:
    made = Shops(tmp_path, shared_database)
    try:
        yield made
    finally:
        made.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    shops = getattr(item, "funcargs", {}).get("shops")
    if report.when == "call" and report.failed and shops is not None:
        report.sections.extend(shops.diagnose(item.name))
    return report
