"""`make bench` in miniature: every comparison runs end to end and yields sane figures.

This keeps the benchmark from rotting; it asserts nothing about speed (that is what BENCHMARKS.md
is for), only that each measurement happened and is self-consistent.
"""

import dataclasses
import math
import re
import statistics

import pytest

from bench import report, run
from bench.sizes import QUICK


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    # Its own SQLite file and the embedded layers only: nothing shared with the rest of the suite.
    results = run.main(
        [
            "--quick",
            "--database-url", f"sqlite:///{tmp / 'bench.sqlite3'}",
            "--redis-url", "",
            "--out", str(tmp / "BENCHMARKS.md"),
            "--charts", str(tmp / "charts"),
        ]
    )  # fmt: skip
    return tmp, results


def test_the_report_has_every_section_and_its_charts(quick):
    tmp, _ = quick
    text = (tmp / "BENCHMARKS.md").read_text()
    for heading in (
        "## Targets",
        "## 1. Synch",
        "## 2. Push latency",
        "## 2b. Push latency while shoppers come and go",
        "## 3. Memory",
        "## 4. Push",
    ):
        assert heading in text
    assert "CPUs (" in text and "Reproduce:" in text
    assert re.search(r"meanwhile \(steal\): \d+\.\d%", text)  # how busy the host was
    # and how fast it ran Python, before and after
    assert re.search(r"least of three\) at the start: \d+\.\d\d s, at the end: \d+\.\d\d s", text)
    for chart in ("checkout.png", "push.png", "waiting.png"):
        assert (tmp / "charts" / chart).read_bytes().startswith(b"\x89PNG")


def test_no_server_logged_a_fault(quick):
    tmp, results = quick
    assert results["faults"] == []
    assert (
        "- Logs: no warning, error or traceback in any server's log"
        in (tmp / "BENCHMARKS.md").read_text()
    )


def test_both_checkout_modes_complete_checkouts_without_errors(quick):
    _, results = quick
    assert {row["mode"] for row in results["checkout"]} == {"sync", "callback"}
    for row in results["checkout"]:
        assert len(row["runs"]) == QUICK.checkout_runs  # one result per measurement window
        for result in row["runs"]:
            assert result["errors"] == 0, result
            assert result["completed"] > 0 and result["per_second"] > 0
            # Each checkout loads its page first: the page's answers are timed as Pay's are.
            for request in ("page", "pay"):
                assert 0 < result[request]["p50"] <= result[request]["p99"], request
        # The CPU each process spent over the windows (no PostgreSQL here: SQLite).
        assert row["cpu"]["seconds"] > 0
        assert set(row["cpu"]["spent"]) == {"shop", "payment system", "load generator"}
        assert all(spent > 0 for spent in row["cpu"]["spent"].values()), row["cpu"]


def test_the_checkout_section_says_where_the_cpu_went(quick):
    tmp, _ = quick
    text = (tmp / "BENCHMARKS.md").read_text()
    assert "| shoppers | mode | cores busy (of " in text
    assert ") | shop | payment system | PostgreSQL | load generator | all |" in text
    rows = re.findall(
        r"^\| 5 \| (sync|callback) \| (\d+\.\d\d) \| [\d.]+ \| [\d.]+ \| - \|", text, re.M
    )
    assert sorted(mode for mode, _ in rows) == ["callback", "sync"]
    assert all(float(cores) > 0 for _, cores in rows)


def test_the_targets_table_says_when_the_ratio_is_out_of_reach_by_arithmetic(quick):
    tmp, _ = quick
    text = (tmp / "BENCHMARKS.md").read_text()
    # 5 shoppers over 4 workers: the ceilings allow 1.2x, whatever the servers do.
    assert "out of reach, the ceilings allow 1.2x (5 shoppers / 4 workers)" in text


def test_every_push_reaches_its_socket_and_latencies_are_ordered(quick):
    _, results = quick
    layers = {(row["server"], row["layer"]) for row in results["push"]}
    assert {("daphne", "local"), ("uvicorn", "local"), ("uvicorn", "inmemory")} <= layers
    for row in results["push"]:
        assert row["failed_sockets"] == 0
        assert math.isfinite(row["bytes_per_socket"])
        for burst in row["bursts"]:
            assert burst["lost"] == 0 and burst["notify_errors"] == 0, burst
            assert 0 < burst["p50"] <= burst["p99"] <= burst["max"]


def test_sockets_come_and_go_under_each_collector_and_every_push_arrives(quick):
    _, results = quick
    assert [row["collector"] for row in results["churn"]] == ["shop's", "Python's"]
    for row in results["churn"]:
        assert row["sent"] > 0 and row["reopened_per_second"] > 0, row
        assert row["failed_sockets"] == 0, row
        assert row["lost"] == 0 and row["notify_errors"] == 0, row
        assert row["n"] == row["sent"]  # every result seen, each counted once
        assert 0 <= row["late"] <= row["n"]  # seen after the drain: among those seen
        assert 0 < row["p50"] <= row["p99"] <= row["p999"] <= row["max"]
        assert row["windows"] == QUICK.churn_windows, row  # p50 and p99: medians over them


def test_each_part_writes_its_own_sections(quick, tmp_path):
    """`--only push` (no churn) still reports memory per socket; the churn alone reports neither."""
    _, results = quick
    report.write({**results, "churn": []}, out=tmp_path / "push.md", charts=tmp_path / "c")
    text = (tmp_path / "push.md").read_text()
    assert "## 2. Push latency" in text and "## 3. Memory" in text and "## 2b." not in text
    report.write({**results, "push": []}, out=tmp_path / "churn.md", charts=tmp_path / "c")
    text = (tmp_path / "churn.md").read_text()
    assert "## 2b." in text and "## 2. Push latency" not in text and "## 3. Memory" not in text


def test_one_fleet_grows_through_every_size_with_its_memory_per_socket(quick):
    _, results = quick
    sizes = {(row["server"], row["layer"]): [] for row in results["push"]}
    for row in results["push"]:
        sizes[(row["server"], row["layer"])].append(row["sockets"])
        assert math.isfinite(row["bytes_per_socket"]), row
        # Each size's new sockets opened in parts, the figure the median of theirs.
        parts = row["bytes_per_socket_parts"]
        assert len(parts) == QUICK.memory_parts > 1, row
        assert row["bytes_per_socket"] == statistics.median(parts), row
        assert {burst["sockets"] for burst in row["bursts"]} == {row["sockets"]}
    assert sizes and all(found == [20, 60] for found in sizes.values()), sizes


def test_push_and_polling_both_show_every_result(quick):
    _, results = quick
    by_mode = {row["mode"]: row["runs"][0] for row in results["waiting"]}
    assert by_mode["push"]["shown"]["lost"] == by_mode["poll"]["shown"]["lost"] == 0
    assert by_mode["poll"]["polls_per_second"] > 0
    assert by_mode["push"]["polls_per_second"] == 0
    for result in by_mode.values():
        assert result["cpu_per_minute_waiting"] >= 0 and result["shown"]["mean"] > 0


def test_no_inmemory_rates_means_no_inmemory_cell(tmp_path):
    """`--set 'inmemory_rates=[]'` (bench/profile_notes.md's memory command) leaves the stock
    layer out instead of starting a load generator with no rate to run."""

    def layers(sizes):
        bench = run.Bench(sizes=sizes, database_url="", redis_url="", tmp_dir=tmp_path)
        return [layer for _, layer, _, _ in bench.push_cells()]

    assert layers(QUICK) == ["local", "local", "inmemory"]
    assert layers(dataclasses.replace(QUICK, inmemory_rates=())) == ["local", "local"]
