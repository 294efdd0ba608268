"""`python -m bench.sandbox_cost` keeps working: it measures a checkout's three sandbox steps."""

import os
import re
import subprocess
import sys

from django.db import connection

from tests.conftest import require
from tests.realtime.streams import postgres_url
from tests.servers import ROOT


def test_the_sandbox_cost_tool_measures_create_approve_and_deliver(transactional_db):
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    run = subprocess.run(
        [sys.executable, "-m", "bench.sandbox_cost", "3"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": postgres_url(connection.settings_dict)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    figures = re.findall(r"^(\w+): ([\d.]+) ms CPU per checkout \(3\)$", run.stdout, re.M)
    assert [name for name, _ in figures] == ["create", "approve", "deliver", "total"]
    assert all(float(ms) > 0 for _, ms in figures)
