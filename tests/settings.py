"""Test settings: the shop's settings, on PostgreSQL whenever one answers.

PostgreSQL is the production database and the one whose locking the tests must prove, so the suite
uses it when DATABASE_URL names one or the default local server answers; otherwise SQLite, and the
tests that need PostgreSQL skip (or fail under REQUIRE_SERVICES=1).
"""

import os
import socket

os.environ.setdefault("SANDBOX_RETRY_SCALE", "0.01")
# Development: the embedded defaults (tests of production start servers with DEBUG=0).
os.environ.setdefault("DEBUG", "1")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


if "DATABASE_URL" not in os.environ and _answers("127.0.0.1", 5432):
    os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/test"

from shop.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
