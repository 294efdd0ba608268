"""The in-process cost tools keep working: `python -m bench.cost` (a notification, a shopper's
requests, a socket and a push) and `python -m bench.sandbox_cost` (a checkout's three steps at the
payment system)."""

import os
import re
import subprocess
import sys

import pytest
from django.db import connection

from tests.conftest import require
from tests.realtime.streams import postgres_url
from tests.servers import ROOT


def figures(module: str, count: int, unit: str) -> list[tuple[str, float]]:
    """Run `python -m <module> <count>`; its `name: N ms CPU per <unit> (count)` lines."""
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    run = subprocess.run(
        [sys.executable, "-m", module, str(count)],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": postgres_url(connection.settings_dict)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = re.findall(rf"^(\w+): ([\d.]+) ms CPU per {unit}.* \({count}\)$", run.stdout, re.M)
    return [(name, float(ms)) for name, ms in lines]


@pytest.mark.parametrize(
    "module, unit, names",
    [
        ("bench.cost", "", ["request", "page", "poll", "pay", "connect", "push"]),
        ("bench.sandbox_cost", "checkout", ["create", "approve", "deliver", "total"]),
    ],
)
def test_each_tool_measures_every_step(transactional_db, module, unit, names):
    measured = figures(module, 3, unit)
    assert [name for name, _ in measured] == names
    assert all(ms > 0 for _, ms in measured)
