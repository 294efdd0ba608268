"""`python -m bench.providers` alone: it measures every provider and rewrites its own section of
BENCHMARKS.md, leaving every other line as it was. Nothing here is timed."""

import os
import re
import subprocess
import sys

from bench import providers
from bench.processes import ROOT

BEFORE = "# Benchmarks\n\n- Date: then\n\n## 4. Synchronous vs callback checkout\n\n| a | b |\n"
AFTER = "## Method\n\n- One `make bench` runs every cell.\n"
SECTION = [providers.HEADING, "", "new figures", ""]


def test_the_section_goes_before_the_method_and_then_replaces_itself():
    first = providers.replace_section(BEFORE + "\n" + AFTER, SECTION)
    assert first == BEFORE + "\n" + "\n".join(SECTION) + "\n" + AFTER

    again = providers.replace_section(first, [providers.HEADING, "", "newer figures", ""])
    assert again == first.replace("new figures", "newer figures")
    assert again.count(providers.HEADING) == 1


def test_without_a_method_heading_the_section_is_added_at_the_end():
    assert providers.replace_section(BEFORE, SECTION) == BEFORE + "\n".join(SECTION) + "\n"


def test_run_alone_it_writes_a_figure_for_each_provider_and_nothing_else(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(BEFORE + "\n" + AFTER)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shop.settings", "DEBUG": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.providers", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr

    text = out.read_text()
    assert text.startswith(BEFORE + "\n" + providers.HEADING + "\n")
    assert text.endswith("\n" + AFTER)
    section = text.split(providers.HEADING)[1].split("\n## ")[0]
    assert "quick counts" in section and "CPUs (" in section
    for label in ("sandbox", "Alipay", "WeChat Pay", "Stripe"):
        row = re.search(
            rf"^\| {label} \| [^|]+ \| [\d,]+ \| (\d+\.\d{{4}}) \| (\d+\.\d{{2}}) \|", section, re.M
        )
        assert row, label
        assert float(row[1]) > 0
    assert re.search(r"^\| sandbox \| [^|]+ \| [\d,]+ \| [\d.]+ \| 1\.00 \|", section, re.M)
