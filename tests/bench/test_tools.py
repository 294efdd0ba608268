"""The in-process cost tools keep working: `python -m bench.cost` (a notification, a shopper's
requests, a socket and a push) and `python -m bench.sandbox_cost` (a checkout's three steps at the
payment system); `make bench` reports the first as the machine's speed; `python -m bench.profile`
samples the server under notifications."""

import os
import subprocess
import sys

import pytest
from django.db import connection

from bench import profile, run
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


def test_profile_shares_count_a_function_once_per_stack_whatever_its_lines():
    stacks = [
        "run (a.py:1);view (b.py:5);query (c.py:9) 3",
        "run (a.py:1);view (b.py:6) 1",
        "run (a.py:2);run (a.py:3);render (d.py:4) 2",
    ]
    total, inclusive, own = profile.shares(stacks)
    assert total == 6
    assert inclusive == {"run (a.py)": 6, "view (b.py)": 4, "query (c.py)": 3, "render (d.py)": 2}
    assert own == {"query (c.py)": 3, "view (b.py)": 1, "render (d.py)": 2}


def test_the_profiler_samples_the_server_through_the_notification_bursts(tmp_path):
    """`python -m bench.profile` at a tiny size, on its own SQLite file: the bursts reach their
    sockets, and py-spy's samples show the shop applying the results."""
    tool = subprocess.run(
        [
            # 200 notifications a burst: at 20, a fast machine's ~20 samples holding the GIL
            # could all miss result_apply (one CI run did).
            sys.executable, "-m", "bench.profile", "--sockets", "400", "--rate", "50",
            "--seconds", "4", "--top", "1000", "--redis-url", "",
            "--database-url", f"sqlite:///{tmp_path / 'bench.sqlite3'}",
        ],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert tool.returncode == 0, tool.stderr
    assert "(200 notifications, 0 lost)" in tool.stdout
    assert "result_apply (checkout/services/results.py)" in tool.stdout
