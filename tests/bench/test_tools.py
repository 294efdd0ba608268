"""The in-process cost tools keep working: `python -m bench.cost` (a notification, a shopper's
requests, a socket and a push) and `python -m bench.sandbox_cost` (a checkout's three steps at the
payment system); `make bench` reports the first as the machine's speed."""

import os
import subprocess
import sys

import pytest
from django.db import connection

from bench import run
from bench.cpu import parse
from bench.sizes import QUICK
from tests.conftest import require
from tests.realtime.streams import postgres_url
from tests.servers import ROOT


def figures(module: str, count: int) -> list[dict]:
    """Run `python -m <module> <count>`; its lines of CPU per step (`bench.cpu`)."""
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    tool = subprocess.run(
        [sys.executable, "-m", module, str(count)],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": postgres_url(connection.settings_dict)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tool.returncode == 0, tool.stderr
    return [line for line in parse(tool.stdout) if line["count"] == count]


TOOLS = {
    "bench.cost": ["request", "page", "poll", "pay", "connect", "push"],
    "bench.sandbox_cost": ["create", "approve", "deliver", "total"],
}


@pytest.mark.parametrize("module, names", TOOLS.items())
def test_each_tool_measures_every_step(transactional_db, module, names):
    measured = figures(module, 3)
    assert [line["step"] for line in measured] == names
    assert all(line["process"] > 0 for line in measured)


def test_make_bench_reports_the_machines_speed(transactional_db, tmp_path):
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    out = tmp_path / "BENCHMARKS.md"
    database = postgres_url(connection.settings_dict)
    args = ["--quick", "--only", "cost", "--database-url", database, "--redis-url", ""]
    results = run.main([*args, "--out", str(out), "--charts", str(tmp_path)])
    assert [step["step"] for step in results["cost"]] == TOOLS["bench.cost"]
    assert all(step["count"] == QUICK.cost_steps for step in results["cost"])
    text = out.read_text()
    assert "## The machine's speed" in text
    assert text.index("## The machine's speed") < text.index("## Targets")
