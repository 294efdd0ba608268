"""`bench.report` on figures given here (no servers): the last committed run read back, verdicts,
and the faults in a run's logs."""

import math

import pytest

from bench import report


def old_run() -> dict:
    """A run of the custom stack (commit 7b7bded's schema), reduced to the cells read back."""

    def push(server, layer, sockets, bytes_per_socket, p99):
        bursts = [{"rate": rate, "p99": p99} for rate in (100, 200)]
        bursts += [{"rate": 200, "p99": p99 - 1}, {"rate": 200, "p99": 99.0}]
        return {"server": server, "layer": layer, "sockets": sockets, "bursts": bursts} | {
            "bytes_per_socket": bytes_per_socket
        }

    def checkout(mode, rates, shop_seconds, p99):
        runs = [{"per_second": r, "completed": int(r * 5), "pay": {"p99": p99}} for r in rates]
        return {
            "mode": mode,
            "shoppers": 200,
            "runs": runs,
            "cpu": {"spent": {"shop": shop_seconds}},
        }

    return {
        "loop_start": 0.15,
        "environment": {"loop_end": 0.16, "commit": "7b7bded", "date": "2026-11-29 08:10 UTC"},
        "push": [
            push("uvicorn x2", "redis", 5000, 17.0 * 1024, 6.0),
            push("uvicorn", "redis", 1000, 18.0 * 1024, 5.0),
            push("uvicorn", "local", 1000, 18.5 * 1024, 5.5),
        ],
        "checkout": [
            checkout("sync", [1.8, 2.0, 1.6], 10.0, 14_000.0),
            checkout("callback", [70.0, 80.0, 75.0], 4.5, 300.0),
        ],
    }


def test_the_custom_stacks_run_is_read_through_the_cells_that_measured_the_same():
    figures, what = report.headline_of_7b7bded(old_run())

    assert figures["push_redis_p99"] == 6.0  # median over the bursts at 200/s
    assert figures["push_embedded_p99"] == 5.5  # the shop's in-process layer then
    assert figures["memory_1000"] == 18.0 and figures["memory_5000"] == 17.0
    assert figures["callback_per_second"] == 75.0 and figures["sync_per_second"] == 1.8
    assert figures["ratio"] == pytest.approx(75.0 / 1.8)
    assert figures["cpu_per_checkout"] == pytest.approx(4.5 * 1000 / (350 + 400 + 375))
    assert (figures["loop_start"], figures["loop_end"]) == (0.15, 0.16)
    assert "x2" in what["push_redis_p99"]


@pytest.mark.parametrize(
    ("key", "value", "met"),
    [
        ("push_redis_p99", 49.9, True),
        ("push_redis_p99", 50.1, False),
        ("ratio", 40.0, True),
        ("ratio", 39.9, False),
        ("ratio", None, False),
        ("memory_5000", math.nan, False),
        ("callback_per_second", 1.0, None),  # no target
    ],
)
def test_a_target_is_met_only_by_a_measured_figure_within_its_bound(key, value, met):
    assert report.verdict(key, value) is met


def test_every_warning_error_and_traceback_in_the_logs_is_a_fault_once(tmp_path):
    (tmp_path / "daphne-redis-1.log").write_text(
        '127.0.0.1:5 - - [08/Dec/2026:04:13:34] "GET /healthz" 200 69\n'
        "2026-12-08 04:13:36,055 INFO checkout.services.notifications ok ERROR in a message\n"
        "2026-12-08 04:13:37,000 ERROR django.request Internal Server Error: /payments/\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "RuntimeError: boom\n"
    )
    (tmp_path / "gunicorn.log").write_text(
        "[2026-12-08 04:13:37 +0000] [42] [ERROR] Worker (pid:43) was sent SIGKILL!\n"
    )
    (tmp_path / "sandbox-deliver.log").write_text(
        "Traceback (most recent call last):\nValueError\n"
    )
    (tmp_path / "results.json").write_text("ERROR is not a log\n")

    found = [fault.split(": ", 1)[0] for fault in report.faults(tmp_path)]

    assert found == ["daphne-redis-1.log:3", "gunicorn.log:1", "sandbox-deliver.log:1"]
