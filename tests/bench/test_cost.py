"""`python -m bench.cost` keeps working: it measures a notification, a shopper's requests, a socket
and a push."""

import os
import re
import subprocess
import sys

from django.db import connection

from tests.conftest import require
from tests.realtime.streams import postgres_url
from tests.servers import ROOT


def test_the_cost_tool_measures_requests_a_socket_and_a_push(transactional_db):
    require(connection.vendor == "postgresql", "needs PostgreSQL")
    run = subprocess.run(
        [sys.executable, "-m", "bench.cost", "5"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": postgres_url(connection.settings_dict)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    figures = re.findall(
        r"^(request|page|poll|pay|connect|push): ([\d.]+) ms CPU per .* \(5\)$", run.stdout, re.M
    )
    assert [name for name, _ in figures] == ["request", "page", "poll", "pay", "connect", "push"]
    assert all(float(ms) > 0 for _, ms in figures)
